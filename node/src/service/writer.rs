//! The node's one writer: a thread that owns the [`Node`] and runs the jobs
//! sent to it, the front ends' first. Reads do not come here (they have
//! connections of their own, see `readers`), so a search never waits behind
//! an ingest; a top-up waits at most for the job running when it arrives.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use saldo_sync::Frontier;
use saldo_sync::reconcile::ForkSummary;
use tokio::sync::{broadcast, watch};

use crate::node::{Node, NodeError, WalletChanges};

type Job = Box<dyn FnOnce(&mut Node) + Send>;

/// Wallets whose balances moved, published after every job that moved any.
pub(crate) type WalletsMoved = Arc<WalletChanges>;

#[derive(Default)]
struct Queues {
    /// Front ends' jobs (a top-up, a review): run before any bulk job.
    urgent: VecDeque<Job>,
    /// Sync sessions' and imports' jobs.
    bulk: VecDeque<Job>,
    /// Every handle dropped: the thread ends once the queues are empty.
    closed: bool,
}

struct Jobs {
    queues: Mutex<Queues>,
    ready: Condvar,
}

impl Jobs {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Closes the queues when the last handle goes, and waits for the thread
/// to finish the jobs queued and close the database: a command that ends
/// right after leaves it closed cleanly (no `-shm` file left behind).
struct CloseOnDrop {
    jobs: Arc<Jobs>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.jobs.lock().closed = true;
        self.jobs.ready.notify_all();
        let thread = self.thread.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        // Not when a job of the thread itself dropped the last handle.
        if let Some(thread) = thread.filter(|t| t.thread().id() != std::thread::current().id()) {
            // A job that panicked already said so.
            let _ = thread.join();
        }
    }
}

/// Says when the node's thread has ended: its last jobs done, the work it
/// does when idle done (receipts due at the hub queued) and the database
/// closed. The last handle is not always dropped where it can be waited for
/// (a job's closure may hold it, and the thread cannot join itself), so a
/// process about to exit waits on this instead.
#[derive(Debug, Clone, Default)]
pub struct WriterDone(Arc<(Mutex<bool>, Condvar)>);

impl WriterDone {
    /// Blocks until the node's thread has ended.
    pub fn wait(&self) {
        let (ended, changed) = &*self.0;
        let mut ended = ended.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while !*ended {
            ended = changed.wait(ended).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }
}

/// Marks the thread ended when it returns or unwinds.
struct EndsOnDrop(WriterDone);

impl Drop for EndsOnDrop {
    fn drop(&mut self) {
        let (ended, changed) = &*(self.0).0;
        *ended.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        changed.notify_all();
    }
}

/// Access to the node's thread from async tasks.
#[derive(Clone)]
pub struct NodeHandle {
    jobs: Arc<Jobs>,
    _close: Arc<CloseOnDrop>,
    /// Set once the thread has ended.
    pub(crate) done: WriterDone,
    /// The node's frontier, updated after every change this process makes
    /// and when a poll sees another process's.
    pub(crate) frontier: watch::Sender<Frontier>,
    /// What the node holds of forked authors, updated with the frontier.
    pub(crate) forks: watch::Sender<Vec<ForkSummary>>,
    /// Wallets whose balances a job of this process moved.
    pub(crate) wallets: broadcast::Sender<WalletsMoved>,
    /// Bumped whenever receipts due became messages of the outbox.
    pub(crate) outbox: watch::Sender<u64>,
}

impl fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NodeHandle")
    }
}

/// How many receipts due one transaction turns into messages: a top-up
/// arriving meanwhile waits for one such batch at most.
const RECEIPTS_PER_BATCH: u32 = crate::store::outbox::RECEIPTS_DUE_PER_ROW as u32;

/// How long receipts due wait at most while jobs keep the writer busy.
const RECEIPTS_WAIT_MAX: Duration = Duration::from_secs(1);

/// Turns one batch of receipts due into messages of the outbox (at the
/// hub), and says so to the sender. When that failed, when to try again.
fn expand_receipts_due(node: &mut Node, queued: &watch::Sender<u64>) -> Option<Instant> {
    match node.expand_receipts_due(RECEIPTS_PER_BATCH) {
        Ok(0) => None,
        Ok(_) => {
            queued.send_modify(|n| *n += 1);
            None
        }
        Err(e) => {
            // Left due, and tried again shortly.
            tracing::warn!("outbox: cannot queue the receipts due yet: {e}");
            Some(Instant::now() + RECEIPTS_WAIT_MAX)
        }
    }
}

/// What the node's thread does next.
enum Idle {
    /// Not idle: a job.
    No(Job),
    /// Receipts due become messages of the outbox.
    ExpandReceipts,
    /// The write-ahead log is copied into the database.
    Checkpoint,
}

/// How many batches of moved wallets a slow listener may fall behind
/// before it is told it lagged (and reloads what it shows).
const WALLET_EVENTS_QUEUED_MAX: usize = 256;

/// The node's thread: jobs in order (urgent ones first), receipts due turned
/// into messages when idle (and at least once a second when busy), moved
/// wallets published to whoever listens; until the handle closes the queues.
fn run(node: &mut Node, jobs: &Jobs, moved: &broadcast::Sender<WalletsMoved>, queued: &watch::Sender<u64>) {
    // When receipts due were last turned into messages, and when
    // to try again after that failed (the database busy, say).
    let (mut expanded_at, mut retry_at) = (Instant::now(), None::<Instant>);
    // Whether anything was written since the write-ahead log was last
    // looked at while idle.
    let mut wrote = false;
    loop {
        let job = {
            let mut queues = jobs.lock();
            loop {
                if let Some(job) = queues.urgent.pop_front().or_else(|| queues.bulk.pop_front()) {
                    break Idle::No(job);
                }
                // Idle: receipts due become messages now.
                let due = node.store().receipts_maybe_due();
                if due && retry_at.is_none_or(|at| Instant::now() >= at) {
                    break Idle::ExpandReceipts;
                }
                // Then the write-ahead log goes into the database, so that
                // the next top-up's commit does not do it.
                if std::mem::take(&mut wrote) {
                    break Idle::Checkpoint;
                }
                if queues.closed {
                    return;
                }
                queues = match retry_at.filter(|_| due) {
                    Some(at) => {
                        let wait = at.saturating_duration_since(Instant::now());
                        jobs.ready.wait_timeout(queues, wait).map_or_else(|e| e.into_inner().0, |r| r.0)
                    }
                    None => jobs.ready.wait(queues).unwrap_or_else(std::sync::PoisonError::into_inner),
                };
            }
        };
        let job = match job {
            Idle::No(job) => job,
            Idle::ExpandReceipts => {
                retry_at = expand_receipts_due(node, queued);
                expanded_at = Instant::now();
                wrote = true;
                continue;
            }
            Idle::Checkpoint => {
                if let Err(e) = node.checkpoint_when_idle() {
                    // SQLite checkpoints in a later commit instead.
                    tracing::warn!("cannot copy the write-ahead log into the database now: {e}");
                }
                continue;
            }
        };
        job(node);
        wrote = true;
        // Under a steady stream of jobs, receipts wait at most a second.
        if expanded_at.elapsed() >= RECEIPTS_WAIT_MAX && retry_at.is_none_or(|at| Instant::now() >= at) {
            retry_at = expand_receipts_due(node, queued);
            expanded_at = Instant::now();
        }
        // Balances are read only for someone listening (an open page):
        // a catch-up moves thousands of wallets per call.
        if moved.receiver_count() == 0 {
            node.forget_wallet_changes();
            continue;
        }
        let changes = node.take_wallet_changes();
        if !changes.is_empty() {
            // A listener that went meanwhile is no error.
            let _ = moved.send(Arc::new(changes));
        }
    }
}

impl NodeHandle {
    /// Moves `node` to a thread of its own.
    pub fn spawn(mut node: Node) -> Result<NodeHandle, NodeError> {
        let frontier = watch::Sender::new(node.frontier()?);
        let forks = watch::Sender::new(node.fork_summaries()?);
        let (wallets, _) = broadcast::channel(WALLET_EVENTS_QUEUED_MAX);
        let jobs = Arc::new(Jobs { queues: Mutex::new(Queues::default()), ready: Condvar::new() });
        let (thread_jobs, moved) = (jobs.clone(), wallets.clone());
        let outbox = watch::Sender::new(0u64);
        let queued = outbox.clone();
        let done = WriterDone::default();
        let ends = EndsOnDrop(done.clone());
        let thread = std::thread::Builder::new()
            .name("saldo-node".into())
            .spawn(move || {
                run(&mut node, &thread_jobs, &moved, &queued);
                // The database closed first, then the thread is said to have ended.
                drop(node);
                drop(ends);
            })
            .map_err(|source| NodeError::Io { path: "the node's thread".into(), source })?;
        let close = CloseOnDrop { jobs: jobs.clone(), thread: Mutex::new(Some(thread)) };
        Ok(NodeHandle { _close: Arc::new(close), jobs, done, frontier, forks, wallets, outbox })
    }

    fn queue<R: Send + 'static>(
        &self,
        urgent: bool,
        f: impl FnOnce(&mut Node) -> R + Send + 'static,
    ) -> tokio::sync::oneshot::Receiver<R> {
        let (send, receive) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |node| {
            let _ = send.send(f(node));
        });
        {
            let mut queues = self.jobs.lock();
            if urgent { queues.urgent.push_back(job) } else { queues.bulk.push_back(job) }
        }
        self.jobs.ready.notify_one();
        receive
    }

    /// Queues `f` on the node's thread before any bulk job, without waiting
    /// for it (it answers its callers itself).
    pub(crate) fn queue_urgent(&self, f: impl FnOnce(&mut Node) + Send + 'static) {
        drop(self.queue(true, f));
    }

    /// Runs `f` on the node's thread after the jobs queued before it.
    pub async fn call<R: Send + 'static>(&self, f: impl FnOnce(&mut Node) -> R + Send + 'static) -> R {
        self.queue(false, f).await.expect("the node thread answers every job")
    }

    /// Runs `f` on the node's thread before any bulk job still queued: what
    /// a person at a counter waits for.
    pub async fn call_urgent<R: Send + 'static>(&self, f: impl FnOnce(&mut Node) -> R + Send + 'static) -> R {
        self.queue(true, f).await.expect("the node thread answers every job")
    }

    /// Re-reads the frontier and what is held of forked authors, and tells
    /// the sessions if either moved.
    pub async fn refresh_frontier(&self) -> Result<(), NodeError> {
        let (frontier, forks) = self
            .call_urgent(|node| {
                // Another process (`saldo topup` beside a running hub) may
                // have left receipts due: looked for at every poll.
                node.store().receipts_may_be_due();
                Ok::<_, NodeError>((node.frontier()?, node.fork_summaries()?))
            })
            .await?;
        self.frontier.send_if_modified(|current| {
            let changed = *current != frontier;
            *current = frontier;
            changed
        });
        self.forks.send_if_modified(|current| {
            let changed = *current != forks;
            *current = forks;
            changed
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_idle_the_writer_copies_the_write_ahead_log_into_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let name = saldo_sync::Label::parse("Comune di Prova").unwrap();
        let handle = NodeHandle::spawn(Node::init_realm(dir.path(), &name).unwrap()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let frames_left = || runtime.block_on(handle.call(|node| node.store().wal_frames_left().unwrap()));
        // A job that leaves 24 MiB in the log: more than the writer copies
        // when idle, less than SQLite would copy inside a commit.
        runtime.block_on(handle.call(|node| node.set_meta_text("test filler", &"x".repeat(24 << 20)).unwrap()));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = frames_left();
            if left == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "{left} pages of the log still not in the database");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
