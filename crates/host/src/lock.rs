//! The locks of the state store, all `flock`s under `ROOT/run/modgate`:
//!
//! - the host lock (`lock`): a hook holds it shared, so hooks run side by side;
//!   `status`, `gc` and `unload` hold it exclusive, and so see a store no hook is
//!   changing;
//! - [`FileLock`]: one per module (a hook holds the locks of the modules it names, in
//!   name order, while it loads or releases them) and one per container (its hooks, one
//!   at a time; a record still loading whose container lock is free belongs to a hook
//!   that died).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

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
    /// The exclusive lock: no hook runs while it is held. Blocks until it is ours.
    /// Another hook holding the lock finishes within its own deadline, and ours still
    /// runs: the caller's watchdog bounds the wait.
    pub fn acquire(root: &Root) -> Result<Self, LockError> {
        let (path, file) = open_lock_file(&state_dir(root)?.join("lock"))?;
        file.lock().map_err(|source| LockError { path, source })?;
        Ok(Self { _file: file })
    }

    /// The shared lock a hook holds: other hooks run meanwhile, `status`, `gc` and
    /// `unload` wait.
    pub fn shared(root: &Root) -> Result<Self, LockError> {
        let (path, file) = open_lock_file(&state_dir(root)?.join("lock"))?;
        file.lock_shared()
            .map_err(|source| LockError { path, source })?;
        Ok(Self { _file: file })
    }
}

fn open_lock_file(path: &Path) -> Result<(PathBuf, File), LockError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| LockError {
            path: path.to_path_buf(),
            source,
        })?;
    Ok((path.to_path_buf(), file))
}

/// An exclusive `flock` on one file, held until dropped. The file may be removed by
/// its holder ([`FileLock::remove`]): a waiter that then gets the lock of the removed
/// file sees it and locks the new one instead.
pub struct FileLock {
    path: PathBuf,
    file: File,
}

impl FileLock {
    /// Blocks until the lock is ours alone.
    pub fn acquire(path: &Path) -> Result<Self, LockError> {
        Self::acquire_as(path, true)
    }

    /// Blocks until the lock is ours, shared with other shared holders; `exclusive`
    /// says which.
    pub fn acquire_as(path: &Path, exclusive: bool) -> Result<Self, LockError> {
        loop {
            let (path, file) = open_lock_file(path)?;
            let locked = if exclusive {
                file.lock()
            } else {
                file.lock_shared()
            };
            locked.map_err(|source| LockError {
                path: path.clone(),
                source,
            })?;
            if still_linked(&path, &file) {
                return Ok(Self { path, file });
            }
        }
    }

    /// The lock if nobody holds it; `None` when someone does.
    pub fn try_acquire(path: &Path) -> Result<Option<Self>, LockError> {
        let (path, file) = open_lock_file(path)?;
        match file.try_lock() {
            Ok(()) if still_linked(&path, &file) => Ok(Some(Self { path, file })),
            // Removed meanwhile: its holder has finished with it.
            Ok(()) => Ok(None),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(source)) => Err(LockError { path, source }),
        }
    }

    /// Removes the lock file, then lets go of the lock.
    pub fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
        drop(self.file);
    }
}

/// Whether `path` is still the file we hold open.
fn still_linked(path: &Path, file: &File) -> bool {
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_lock_excludes_and_survives_removal() {
        let t = tempfile::tempdir().expect("tempdir");
        let p = t.path().join("c.lock");
        let a = FileLock::acquire(&p).expect("lock");
        assert!(FileLock::try_acquire(&p).expect("try").is_none(), "held");
        let waiter = std::thread::spawn({
            let p = p.clone();
            move || FileLock::acquire(&p).expect("lock")
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        a.remove();
        let b = waiter.join().expect("thread");
        assert!(p.exists(), "the waiter locked a new file");
        assert!(FileLock::try_acquire(&p).expect("try").is_none());
        drop(b);
        assert!(FileLock::try_acquire(&p).expect("try").is_some());
    }

    #[test]
    fn hooks_share_the_host_lock_and_admin_commands_exclude_them() {
        let t = tempfile::tempdir().expect("tempdir");
        let root = Root::new(t.path());
        let a = HostLock::shared(&root).expect("shared");
        let b = HostLock::shared(&root).expect("a second hook is not blocked");
        let (tx, rx) = std::sync::mpsc::channel();
        let r2 = root.clone();
        let admin = std::thread::spawn(move || {
            let _x = HostLock::acquire(&r2).expect("exclusive");
            tx.send(()).expect("send");
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(rx.try_recv().is_err(), "gc waits for the hooks");
        drop((a, b));
        admin.join().expect("thread");
        assert!(rx.try_recv().is_ok());
    }
}
