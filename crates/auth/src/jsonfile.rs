//! Files the server and the CLI both change (the auth store, the sealed secrets, the key
//! file): a change takes an exclusive lock on a sibling lock file, reads, applies itself, and
//! replaces the file atomically (write, fsync, rename, fsync the directory), so a crash leaves
//! either the old file or the new one. Mode 0600: these files hold hashes, sealed secrets and
//! keys.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// Holds `dir/<name>` locked until dropped.
pub(crate) struct Lock(#[allow(dead_code)] std::fs::File);

/// Takes the exclusive lock `dir/<name>` (created if missing), waiting for other holders.
pub(crate) fn lock(dir: &Path, name: &str) -> Result<Lock> {
    let path = dir.join(name);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("open", &path, e))?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive).map_err(|e| Error::io("lock", &path, e.into()))?;
    Ok(Lock(f))
}

/// The file's (mtime in ns, size), to tell whether another process changed it.
pub(crate) fn stamp(path: &Path) -> Option<(i128, u64)> {
    let st = rustix::fs::stat(path).ok()?;
    Some((i128::from(st.st_mtime) * 1_000_000_000 + i128::from(st.st_mtime_nsec), st.st_size as u64))
}

/// The file parsed as JSON, or `None` if it does not exist.
pub(crate) fn read<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::Corrupt { path: path.to_path_buf(), message: e.to_string() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// Replaces `path` with `bytes` atomically, mode 0600.
pub(crate) fn replace(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| Error::io("create", &tmp, e))?;
        f.write_all(bytes).and_then(|()| f.sync_all()).map_err(|e| Error::io("write", &tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io("rename", &tmp, e))?;
    if let Some(dir) = path.parent().and_then(|d| std::fs::File::open(d).ok()) {
        let _ = dir.sync_all();
    }
    Ok(())
}
