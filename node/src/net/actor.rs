//! The node's own thread: network tasks send it closures through a [`NodeHandle`].

use crate::node::{Node, NodeError};
use anyhow::Result;
use saldo_sync::Frontier;
use std::fmt;
use tokio::sync::watch;

type Job = Box<dyn FnOnce(&mut Node) + Send>;

/// Access to the node's thread from async tasks.
#[derive(Clone)]
pub struct NodeHandle {
    jobs: std::sync::mpsc::Sender<Job>,
    /// The node's frontier, updated after every change this process makes
    /// and when a poll sees another process's.
    pub(super) frontier: watch::Sender<Frontier>,
    /// What the node holds of forked authors, updated with the frontier.
    pub(super) forks: watch::Sender<Vec<saldo_sync::reconcile::ForkSummary>>,
}

impl fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NodeHandle")
    }
}

impl NodeHandle {
    /// Moves `node` to a thread of its own.
    pub fn spawn(mut node: Node) -> Result<NodeHandle> {
        let frontier = watch::Sender::new(node.frontier()?);
        let forks = watch::Sender::new(node.fork_summaries()?);
        let (jobs, receive) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new().name("saldo-node".into()).spawn(move || {
            while let Ok(job) = receive.recv() {
                job(&mut node);
            }
        })?;
        Ok(NodeHandle { jobs, frontier, forks })
    }

    /// Runs `f` on the node's thread.
    pub async fn call<R: Send + 'static>(&self, f: impl FnOnce(&mut Node) -> R + Send + 'static) -> R {
        let (send, receive) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |node| {
            let _ = send.send(f(node));
        });
        self.jobs.send(job).expect("the node thread outlives its handles");
        receive.await.expect("the node thread answers every job")
    }

    /// Re-reads the frontier and what is held of forked authors, and tells
    /// the sessions if either moved.
    pub async fn refresh_frontier(&self) -> Result<()> {
        let (frontier, forks) =
            self.call(|node| Ok::<_, NodeError>((node.frontier()?, node.fork_summaries()?))).await?;
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
