//! The host-wide lock that serialises every change modgate makes to the kernel's module
//! list and to its state store: `ROOT/run/modgate/lock`, held with `flock`.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;

use crate::root::Root;

#[derive(Debug, thiserror::Error)]
#[error("cannot lock {}", path.display())]
pub struct LockError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Held until dropped.
pub struct HostLock {
    _file: File,
}

/// The state directory, created (mode 0700) if needed.
pub fn state_dir(root: &Root) -> Result<PathBuf, LockError> {
    let dir = root.path("run/modgate");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|source| LockError {
            path: dir.clone(),
            source,
        })?;
    Ok(dir)
}

impl HostLock {
    /// Blocks until the lock is ours. Another hook holding it finishes within its own
    /// deadline, and ours still runs: the caller's watchdog bounds the wait.
    pub fn acquire(root: &Root) -> Result<Self, LockError> {
        let path = state_dir(root)?.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|source| LockError {
                path: path.clone(),
                source,
            })?;
        file.lock().map_err(|source| LockError { path, source })?;
        Ok(Self { _file: file })
    }
}
