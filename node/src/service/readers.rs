//! Connections for reading, beside the writer's: a search or a balance
//! reads the last committed state (SQLite WAL) and never waits behind the
//! writer's transaction, however long an ingest call runs.

use std::path::PathBuf;
use std::sync::Mutex;

use crate::node::{Node, NodeError};

/// Read connections kept open between calls (more are opened while many
/// requests read at once, and closed after).
const IDLE_READERS_MAX: usize = 8;

/// Most reads at once. More would each open a connection (a read costs far
/// less than opening one) and contend for the same cores: 50 counters
/// reading their receipts at once made the pool open and drop connections
/// at every top-up (`saldo-bench http` saw p99 grow fourfold).
const READS_AT_ONCE_MAX: usize = IDLE_READERS_MAX;

#[derive(Debug)]
pub(crate) struct Readers {
    /// The node's data directory; `None` for a node in memory, whose reads
    /// go to the writer.
    dir: Option<PathBuf>,
    idle: Mutex<Vec<Node>>,
    /// Leave to read: one per connection the pool keeps.
    pub(crate) permits: tokio::sync::Semaphore,
}

impl Readers {
    pub(crate) fn new(dir: Option<PathBuf>) -> Readers {
        Readers { dir, idle: Mutex::new(Vec::new()), permits: tokio::sync::Semaphore::new(READS_AT_ONCE_MAX) }
    }

    pub(crate) fn available(&self) -> bool {
        self.dir.is_some()
    }

    /// Runs `f` on a read connection (blocking: call it off the async threads).
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Node) -> R) -> Result<R, NodeError> {
        let dir = self.dir.as_ref().expect("callers check available()");
        let idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        let mut node = match idle {
            Some(node) => node,
            None => Node::open_to_read(dir)?,
        };
        let out = f(&mut node);
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < IDLE_READERS_MAX {
            idle.push(node);
        }
        Ok(out)
    }
}
