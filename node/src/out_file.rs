//! Files the `saldo` command line writes where an operator asked (`--out`):
//! only regular files, written whole.
//!
//! A file is written to a temporary file in the same directory, synced, then
//! renamed over the destination, so a failure (a full disk, a kill) leaves
//! the destination as it was and no half-written file under its name. A
//! rename replaces whatever the name points at, so the destination is checked
//! first, and again just before the rename: a missing name or a regular file
//! is written; a directory, a symbolic link (its target would be silently
//! detached), a named pipe (FIFO), a device (`/dev/null`) or a socket is
//! refused, saying to give the path of a regular file. Nothing is streamed
//! through a pipe or a device: a reader at the other end could see half a
//! file.

use std::fs::File;
use std::io::{BufWriter, Read as _, Write};
use std::os::unix::fs::FileTypeExt as _;
use std::path::Path;

/// Why a destination given with `--out` is not written.
#[derive(Debug, thiserror::Error)]
pub enum OutFileError {
    #[error(
        "{path} is a symbolic link (to {target}): saldo does not replace a link; give the path of the file itself, or a new name"
    )]
    Symlink { path: String, target: String },
    #[error("{path} is a directory: give the name of a file to write inside it")]
    Directory { path: String },
    #[error(
        "{path} is {what}, not a regular file: saldo writes only regular files, whole; write to a file and copy it from there"
    )]
    NotRegular { path: String, what: &'static str },
    #[error("cannot check {path}: {source}")]
    Inspect { path: String, source: std::io::Error },
    #[error("cannot write in {dir}: {source}")]
    CreateTemporary { dir: String, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
}

/// Refuses a destination that is not a regular file or a new name; reads
/// nothing from it and changes nothing.
pub fn check_destination(path: &Path) -> Result<(), OutFileError> {
    let shown = path.display().to_string();
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(OutFileError::Inspect { path: shown, source }),
    };
    let kind = meta.file_type();
    if kind.is_file() {
        return Ok(());
    }
    if kind.is_symlink() {
        let target = std::fs::read_link(path).map_or_else(|_| "?".to_string(), |t| t.display().to_string());
        return Err(OutFileError::Symlink { path: shown, target });
    }
    if kind.is_dir() {
        return Err(OutFileError::Directory { path: shown });
    }
    let what = if kind.is_fifo() {
        "a named pipe (FIFO)"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "something else"
    };
    Err(OutFileError::NotRegular { path: shown, what })
}

/// Writes `path` whole with what `fill` writes (buffered), or leaves it as
/// it was: see the module's comment.
pub fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), OutFileError> {
    check_destination(path)?;
    let shown = || path.display().to_string();
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let temp = tempfile::Builder::new()
        .prefix(".saldo-")
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(|source| OutFileError::CreateTemporary { dir: dir.display().to_string(), source })?;
    let written = (|| {
        let mut out = BufWriter::new(temp.as_file());
        fill(&mut out)?;
        out.flush()?;
        drop(out);
        temp.as_file().sync_all()
    })();
    written.map_err(|source| OutFileError::Write { path: shown(), source })?;
    // Checked again: the name may have become something else meanwhile.
    check_destination(path)?;
    temp.persist(path).map_err(|e| OutFileError::Write { path: shown(), source: e.error })?;
    Ok(())
}

/// [`write_atomically`] of bytes already in memory.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), OutFileError> {
    write_atomically(path, |out| out.write_all(bytes))
}

/// Opens `path` for reading only if it is a regular file no larger than
/// `bytes_max`, and reads it (a FIFO given by mistake would block the
/// command; a huge file would fill memory).
pub fn read_bounded(path: &Path, bytes_max: u64, what: &str) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context as _;
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read the {what} {}", path.display()))?;
    if !meta.is_file() {
        anyhow::bail!("{} is not a regular file: give the path of the {what}", path.display());
    }
    if meta.len() > bytes_max {
        anyhow::bail!("{} is {} bytes, over the {what} limit of {bytes_max}", path.display(), meta.len());
    }
    let file = File::open(path).with_context(|| format!("cannot read the {what} {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(bytes_max + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    if bytes.len() as u64 > bytes_max {
        anyhow::bail!("{} grew over the {what} limit of {bytes_max} bytes while it was read", path.display());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_destination_as_it_was_and_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        std::fs::write(&path, b"before").unwrap();
        let failed = write_atomically(&path, |out| {
            out.write_all(&[0u8; 100_000])?;
            Err(std::io::Error::other("the disk is full"))
        });
        assert!(matches!(failed, Err(OutFileError::Write { .. })), "{failed:?}");
        assert_eq!(std::fs::read(&path).unwrap(), b"before");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "a temporary file was left behind");
        write_bytes(&path, b"after").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"after");
    }
}
