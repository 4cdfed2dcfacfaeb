//! Who writes next when several writers share one data directory: a writer
//! that waits (a top-up at the counter) goes before the next transaction of
//! bulk work (a bundle import, a catch-up, a CSV import), also when the two
//! are different processes.
//!
//! SQLite lets one connection write at a time and keeps no queue: a writer
//! that finds the database locked polls for it (its busy handler), and a bulk
//! writer that commits and begins again at once wins nearly every time. So a
//! writer says that it is about to wait for the database with a shared lock
//! on a file beside it (`saldo.db-waiting`), held until it has the database's
//! lock. A bulk writer looks at that file's lock every few operations and
//! commits early when somebody waits; before each of its transactions, it
//! takes the lock exclusively and lets go of it at once: while anybody waits
//! it cannot, and it gives way (for at most [`GIVE_WAY_MAX`], so that a
//! writer stuck for another reason cannot stop an import). The operating system drops the
//! locks of a process that dies: a killed writer never blocks anybody.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

/// The file beside a database `saldo.db` whose lock says who waits: `saldo.db-waiting`.
pub const WAITING_FILE_SUFFIX: &str = "-waiting";
/// Longest a bulk writer gives way to waiting writers before one of its
/// transactions.
pub const GIVE_WAY_MAX: Duration = Duration::from_secs(1);
/// How often a bulk writer that gives way looks whether anybody still waits.
const GIVE_WAY_POLL: Duration = Duration::from_micros(200);

/// The waiting-writers file of one connection (none for a database in memory,
/// or where the file cannot be created: then nobody is given way to).
#[derive(Debug)]
pub struct Writers {
    file: Option<File>,
}

impl Writers {
    /// The waiting-writers file beside `database`, created if need be.
    pub fn beside(database: &Path) -> Writers {
        let mut name = database.as_os_str().to_owned();
        name.push(WAITING_FILE_SUFFIX);
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(name).ok();
        Writers { file }
    }

    /// No file: a database in memory has one connection.
    pub fn alone() -> Writers {
        Writers { file: None }
    }

    /// Says that this connection waits to write, until the guard is dropped.
    pub fn wait(&self) -> Waiting<'_> {
        // A bulk writer holds the lock exclusively for an instant only.
        Waiting(self.file.as_ref().filter(|file| file.lock_shared().is_ok()))
    }

    /// Whether a connection waits to write now.
    pub fn anybody_waits(&self) -> bool {
        let Some(file) = &self.file else {
            return false;
        };
        match file.try_lock() {
            Ok(()) => {
                let _ = file.unlock();
                false
            }
            Err(TryLockError::WouldBlock) => true,
            Err(_) => false,
        }
    }

    /// Lets every connection that waits to write go first, for at most
    /// [`GIVE_WAY_MAX`]; returns how long it gave way.
    pub fn give_way(&self) -> Duration {
        let started = Instant::now();
        let Some(file) = &self.file else {
            return Duration::ZERO;
        };
        loop {
            match file.try_lock() {
                Ok(()) => {
                    let _ = file.unlock();
                    break;
                }
                Err(TryLockError::WouldBlock) if started.elapsed() < GIVE_WAY_MAX => std::thread::sleep(GIVE_WAY_POLL),
                Err(_) => break,
            }
        }
        started.elapsed()
    }
}

/// A connection waiting to write; it stops waiting when dropped.
#[derive(Debug)]
pub struct Waiting<'a>(Option<&'a File>);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(file) = self.0 {
            let _ = file.unlock();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_work_gives_way_while_a_writer_waits_and_goes_on_once_it_has_its_turn() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("saldo.db");
        let (counter, import) = (Writers::beside(&database), Writers::beside(&database));
        assert!(import.give_way() < Duration::from_millis(50), "nobody waits: no pause");
        assert!(!import.anybody_waits());
        let waiting = counter.wait();
        assert!(import.anybody_waits());
        let gave_way = std::thread::scope(|scope| {
            scope.spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                drop(waiting);
            });
            import.give_way()
        });
        assert!(gave_way >= Duration::from_millis(100) && gave_way < GIVE_WAY_MAX, "{gave_way:?}");
        assert!(import.give_way() < Duration::from_millis(50), "the writer has had its turn");
    }

    #[test]
    fn a_writer_that_never_gets_its_turn_holds_bulk_work_back_for_a_bounded_time() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("saldo.db");
        let (stuck, import) = (Writers::beside(&database), Writers::beside(&database));
        let _waiting = stuck.wait();
        let gave_way = import.give_way();
        assert!(gave_way >= GIVE_WAY_MAX && gave_way < GIVE_WAY_MAX * 2, "{gave_way:?}");
    }

    #[test]
    fn a_database_held_too_long_is_no_storage_failure_and_names_no_sqlite_code() {
        let locked = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            Some("database is locked".into()),
        );
        let message = crate::node::NodeError::from(crate::store::StoreError::from(locked)).to_string();
        assert!(message.contains("another process is writing to this data directory"), "{message}");
        assert!(!message.contains("locked") && !message.contains("code"), "{message}");
    }
}
