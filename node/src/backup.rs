//! `saldo backup` and `saldo restore`: a data directory in one file.
//!
//! The backup is a tar archive of a consistent copy of the database (SQLite's
//! `VACUUM INTO` reads one snapshot while the node and other commands go on
//! writing), the device's keys and its configuration file. It is written to a
//! temporary file beside the target, synced, then linked under its name only
//! if nothing is there (an existing file is never replaced). It holds the
//! device's secret key: it is created readable by its owner only.
//!
//! A restore unpacks into a fresh directory beside the target, checks that
//! it opens as a node, marks it restored (it records nothing before its node
//! has started and asked the hub for its own log, see
//! `node::own_log`) and renames it into place.

use std::fs::{self, File};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use saldo_sync::{AuthorId, Seq};

use crate::node::{CONTACTS_KEY_FILE, DATABASE_FILE, KEY_FILE, Node, NodeError};

/// The configuration file of a data directory.
const CONFIG_FILE: &str = crate::cli::CONFIG_FILE;
/// What a backup holds; the first two must be there.
const BACKUP_FILES: [&str; 4] = [DATABASE_FILE, KEY_FILE, CONTACTS_KEY_FILE, CONFIG_FILE];
/// The largest database a restore unpacks (a hub of a large realm stays far below).
pub const DATABASE_BYTES_MAX: u64 = 256 * 1024 * 1024 * 1024;
/// The largest key or configuration file a restore unpacks.
pub const SMALL_FILE_BYTES_MAX: u64 = 64 * 1024;
/// Most entries a restore reads from an archive before refusing it.
const ARCHIVE_ENTRIES_MAX: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path} exists already: a backup never replaces a file; choose a new name")]
    OutExists { path: String },
    #[error("{path} holds no Saldo node (no {DATABASE_FILE} and {KEY_FILE}): name the data directory the node runs on")]
    NoNode { path: String },
    #[error("{path} is not empty: a restore creates a new data directory; choose an absent or empty one")]
    NotEmpty { path: String },
    #[error("{path} is not a Saldo backup: {why}")]
    NotABackup { path: String, why: String },
    #[error("cannot use {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("the database copy failed: {0}")]
    Storage(#[from] crate::store::StoreError),
    #[error("the database cannot be opened: {0}")]
    Open(#[from] crate::store::OpenError),
    #[error("the restored copy does not open as a node: {0}")]
    Node(Box<NodeError>),
}

impl From<NodeError> for BackupError {
    fn from(error: NodeError) -> BackupError {
        BackupError::Node(Box::new(error))
    }
}

type Result<T> = std::result::Result<T, BackupError>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io { path: path.display().to_string(), source }
}

/// What a backup wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackupReport {
    pub out: PathBuf,
    pub files: Vec<String>,
    pub bytes: u64,
}

/// What a restore created.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RestoreReport {
    pub data: PathBuf,
    pub id: String,
    pub realm: String,
    pub hub: bool,
    /// The highest seq of its own log the copy holds.
    pub own_head: u64,
}

fn parent_of(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Writes a backup of the node in `dir` to `out`, which must not exist.
pub fn backup(dir: &Path, out: &Path) -> Result<BackupReport> {
    if fs::symlink_metadata(out).is_ok() {
        return Err(BackupError::OutExists { path: out.display().to_string() });
    }
    if !dir.join(DATABASE_FILE).is_file() || !dir.join(KEY_FILE).is_file() {
        return Err(BackupError::NoNode { path: dir.display().to_string() });
    }
    let parent = parent_of(out);
    // The database copy, beside the target (same file system, removed on any error).
    let staging = tempfile::Builder::new().prefix(".saldo-backup").tempdir_in(parent).map_err(io(parent))?;
    let copy = staging.path().join(DATABASE_FILE);
    crate::store::Store::open(&dir.join(DATABASE_FILE))?.copy_into(&copy)?;
    let mut archive_file = tempfile::Builder::new().prefix(".saldo-backup").tempfile_in(parent).map_err(io(parent))?;
    let mut files = Vec::new();
    {
        let mut archive = tar::Builder::new(archive_file.as_file_mut());
        archive.mode(tar::HeaderMode::Deterministic);
        for name in BACKUP_FILES {
            let source = if name == DATABASE_FILE { copy.clone() } else { dir.join(name) };
            let mut file = match File::open(&source) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && name != KEY_FILE => continue,
                Err(e) => return Err(io(&source)(e)),
            };
            let len = file.metadata().map_err(io(&source))?.len();
            let mut header = tar::Header::new_gnu();
            header.set_size(len);
            header.set_mode(0o600);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_cksum();
            archive.append_data(&mut header, name, &mut file).map_err(io(&source))?;
            files.push(name.to_string());
        }
        archive.finish().map_err(io(out))?;
    }
    let file = archive_file.as_file_mut();
    file.flush().map_err(io(out))?;
    file.sync_all().map_err(io(out))?;
    let bytes = file.stream_position().map_err(io(out))?;
    // Linked under its name only if nothing is there, even if something
    // appeared meanwhile.
    archive_file.persist_noclobber(out).map_err(|e| match e.error.kind() {
        std::io::ErrorKind::AlreadyExists => BackupError::OutExists { path: out.display().to_string() },
        _ => io(out)(e.error),
    })?;
    sync_dir(parent);
    Ok(BackupReport { out: out.to_path_buf(), files, bytes })
}

/// Makes a rename durable (best effort: not every file system syncs a directory).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Creates the data directory `dir` (absent or empty) from the backup `from`.
pub fn restore(from: &Path, dir: &Path) -> Result<RestoreReport> {
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(BackupError::NotEmpty { path: dir.display().to_string() });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(dir)(e)),
    }
    let parent = parent_of(dir);
    fs::create_dir_all(parent).map_err(io(parent))?;
    let staging = tempfile::Builder::new().prefix(".saldo-restore").tempdir_in(parent).map_err(io(parent))?;
    unpack(from, staging.path())?;
    let report = {
        let mut node = Node::open(staging.path())?;
        node.mark_restored()?;
        let id = node.author().ok_or(NodeError::NoKey)?;
        RestoreReport {
            data: dir.to_path_buf(),
            id: id.to_hex(),
            realm: node.realm_name().to_string(),
            hub: node.is_hub(),
            own_head: own_head(&mut node, &id)?.0,
        }
    };
    let staged = staging.keep();
    // Over an empty directory, rename replaces it.
    if let Err(e) = fs::rename(&staged, dir) {
        let _ = fs::remove_dir_all(&staged);
        return Err(io(dir)(e));
    }
    sync_dir(parent);
    Ok(report)
}

fn own_head(node: &mut Node, id: &AuthorId) -> std::result::Result<Seq, NodeError> {
    let tx = node.store_mut().read()?;
    Ok(tx.author(id)?.map_or(Seq(0), |a| a.head_seq))
}

/// Unpacks the files of a backup into `into`, refusing anything else.
fn unpack(from: &Path, into: &Path) -> Result<()> {
    let not_a_backup = |why: String| BackupError::NotABackup { path: from.display().to_string(), why };
    let file = File::open(from).map_err(io(from))?;
    let mut archive = tar::Archive::new(file);
    let mut found: Vec<&str> = Vec::new();
    for (i, entry) in archive.entries().map_err(|e| not_a_backup(e.to_string()))?.enumerate() {
        if i >= ARCHIVE_ENTRIES_MAX {
            return Err(not_a_backup(format!("it holds more than {ARCHIVE_ENTRIES_MAX} files")));
        }
        let mut entry = entry.map_err(|e| not_a_backup(e.to_string()))?;
        let path = entry.path().map_err(|e| not_a_backup(e.to_string()))?.into_owned();
        let name = path.to_str().and_then(|p| BACKUP_FILES.iter().find(|n| **n == p)).copied().ok_or_else(|| {
            not_a_backup(format!("it holds {}, which is not part of a data directory", path.display()))
        })?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(not_a_backup(format!("{name} is not a regular file")));
        }
        if found.contains(&name) {
            return Err(not_a_backup(format!("it holds {name} twice")));
        }
        let max = if name == DATABASE_FILE { DATABASE_BYTES_MAX } else { SMALL_FILE_BYTES_MAX };
        let size = entry.header().size().map_err(|e| not_a_backup(e.to_string()))?;
        if size > max {
            return Err(not_a_backup(format!("its {name} is {size} bytes, more than {max}")));
        }
        let target = into.join(name);
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            // Keys above all: readable by their owner only.
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut out = options.open(&target).map_err(io(&target))?;
        let copied = std::io::copy(&mut (&mut entry).take(max), &mut out).map_err(io(&target))?;
        if copied != size {
            return Err(not_a_backup(format!("its {name} is cut short")));
        }
        out.sync_all().map_err(io(&target))?;
        found.push(name);
    }
    for needed in [DATABASE_FILE, KEY_FILE] {
        if !found.contains(&needed) {
            return Err(not_a_backup(format!("it holds no {needed}")));
        }
    }
    Ok(())
}
