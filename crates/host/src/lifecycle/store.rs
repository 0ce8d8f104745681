//! The state store, `ROOT/run/modgate` (a tmpfs in production: empty after a reboot,
//! like the kernel's module list). Laid out so that a hook reads and writes only its
//! own container and the modules it names, whatever the number of containers:
//!
//! - `containers/KEY.json`: one record per container, KEY the SHA-256 of its id
//!   ([`record_key`]); `containers/KEY.lock`, the container's lock;
//! - `modules/NAME/owned.json`: present when modgate inserted NAME (its ledger entry);
//!   `modules/NAME/holders/KEY`: one empty file per container holding NAME;
//!   `modules/NAME/pending/KEY`: one per hook about to insert NAME (written before the
//!   insertion, gone when the load is recorded); `modules/NAME/lock`, the module's lock;
//! - `seq`: the insertion counter (newest is removed first).
//!
//! A record is changed only under its container's lock, a module's files only under the
//! module's lock; every file write is atomic (temp file, fsync, rename, fsync of the
//! directory). A file that does not parse is moved to `corrupt/` with a warning: a
//! damaged record never stops a hook.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use modgate_core::record::{record_key, ContainerRecord, DocError, Owned, MAX_DOC_BYTES};
use modgate_core::ModuleName;

use crate::lock::{state_dir, FileLock, LockError};
use crate::root::Root;

pub const CONTAINERS: &str = "containers";
pub const MODULES: &str = "modules";
pub const CORRUPT: &str = "corrupt";
pub const OWNED: &str = "owned.json";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("state store: cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("state store: cannot record container {id:?}")]
    Record {
        id: String,
        #[source]
        source: DocError,
    },
    #[error("container {id:?} of bundle {ours} is already recorded for bundle {theirs}: ids must be unique across runtimes and namespaces on one host")]
    IdInUse {
        id: String,
        ours: String,
        theirs: String,
    },
}

pub(super) fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StateError {
    let path = path.to_path_buf();
    move |source| StateError::Io {
        action,
        path,
        source,
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Which list of a module a container is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    /// It holds the module.
    Holders,
    /// Its hook is about to insert the module.
    Pending,
}

impl List {
    fn dir(self) -> &'static str {
        match self {
            List::Holders => "holders",
            List::Pending => "pending",
        }
    }
}

/// Whether a container has a record, without any lock: the poststop of a container
/// that asked for nothing (nearly all of them) stops here.
pub fn has_record(root: &Root, id: &str) -> bool {
    root.path("run/modgate")
        .join(CONTAINERS)
        .join(format!("{}.json", record_key(id)))
        .symlink_metadata()
        .is_ok()
}

/// The files of the store. It takes no lock itself: callers hold the ones that cover
/// what they touch.
pub struct Store {
    dir: PathBuf,
    warnings: Vec<String>,
}

impl Store {
    pub fn open(root: &Root) -> Result<Self, StateError> {
        let dir = state_dir(root)?;
        mkdir(&dir.join(CONTAINERS))?;
        mkdir(&dir.join(MODULES))?;
        Ok(Store {
            dir,
            warnings: Vec::new(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Warnings gathered so far (damaged files moved aside), emptied.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    fn record_path(&self, key: &str) -> PathBuf {
        self.dir.join(CONTAINERS).join(format!("{key}.json"))
    }

    fn module_dir(&self, m: &str) -> PathBuf {
        self.dir.join(MODULES).join(m)
    }

    pub fn container_lock(&self, key: &str) -> Result<FileLock, StateError> {
        Ok(FileLock::acquire(
            &self.dir.join(CONTAINERS).join(format!("{key}.lock")),
        )?)
    }

    /// The lock of a container whose hook may have died: `None` while a hook holds it.
    pub fn try_container_lock(&self, key: &str) -> Result<Option<FileLock>, StateError> {
        Ok(FileLock::try_acquire(
            &self.dir.join(CONTAINERS).join(format!("{key}.lock")),
        )?)
    }

    /// A module's lock: exclusive to insert, recover or remove it; shared to add or
    /// drop a holder entry of a module that is live.
    pub fn module_lock(&self, m: &str, exclusive: bool) -> Result<FileLock, StateError> {
        let d = self.module_dir(m);
        mkdir(&d)?;
        Ok(FileLock::acquire_as(&d.join("lock"), exclusive)?)
    }

    /// The record stored under `key`, checked to be the one for that key.
    pub fn record(&mut self, key: &str) -> Result<Option<ContainerRecord>, StateError> {
        let path = self.record_path(key);
        let Some(bytes) = self.read(&path)? else {
            return Ok(None);
        };
        match ContainerRecord::parse(&bytes, key) {
            Ok(r) => Ok(Some(r)),
            Err(e) => {
                self.set_aside(&path, &e.to_string())?;
                Ok(None)
            }
        }
    }

    /// Every readable record, sorted by id; damaged ones are moved aside.
    pub fn records(&mut self) -> Result<Vec<ContainerRecord>, StateError> {
        let d = self.dir.join(CONTAINERS);
        let mut out = Vec::new();
        for name in list(&d)? {
            if name.ends_with(".lock") {
                continue;
            }
            let Some(key) = name.strip_suffix(".json") else {
                self.set_aside(&d.join(&name), "not a record file name")?;
                continue;
            };
            if let Some(r) = self.record(key)? {
                out.push(r);
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    pub fn put_record(&self, record: &ContainerRecord) -> Result<(), StateError> {
        let bytes = record.render().map_err(|source| StateError::Record {
            id: record.id.clone(),
            source,
        })?;
        let name = format!("{}.json", record_key(&record.id));
        write_atomic(&self.dir.join(CONTAINERS), &name, &bytes)
    }

    pub fn remove_record(&self, id: &str) -> Result<(), StateError> {
        remove(&self.record_path(&record_key(id)))
    }

    /// The ledger entry of a module: `Some` when modgate inserted it.
    pub fn owned(&mut self, m: &str) -> Result<Option<Owned>, StateError> {
        let path = self.module_dir(m).join(OWNED);
        let Some(bytes) = self.read(&path)? else {
            return Ok(None);
        };
        match Owned::parse(&bytes) {
            Ok(o) => Ok(Some(o)),
            // Without its entry modgate does not own the module, so it never removes it.
            Err(e) => {
                self.set_aside(&path, &e.to_string())?;
                Ok(None)
            }
        }
    }

    pub fn put_owned(&self, m: &str, owned: &Owned) -> Result<(), StateError> {
        let d = self.module_dir(m);
        mkdir(&d)?;
        write_atomic(&d, OWNED, &owned.render())
    }

    pub fn remove_owned(&self, m: &str) -> Result<(), StateError> {
        remove(&self.module_dir(m).join(OWNED))
    }

    /// Every module the store has a directory for, sorted.
    pub fn modules(&mut self) -> Result<Vec<ModuleName>, StateError> {
        let d = self.dir.join(MODULES);
        let mut out = Vec::new();
        for name in list(&d)? {
            match ModuleName::parse(&name) {
                Ok(m) if m.as_str() == name => out.push(m),
                _ => {
                    let path = d.join(&name);
                    let _ = std::fs::remove_dir_all(&path);
                    let msg = format!(
                        "state store: {} is not a module's directory; removed",
                        path.display()
                    );
                    tracing::warn!("{msg}");
                    self.warnings.push(msg);
                }
            }
        }
        Ok(out)
    }

    pub fn add_to(&self, list: List, m: &str, key: &str) -> Result<(), StateError> {
        let d = self.module_dir(m).join(list.dir());
        mkdir(&d)?;
        let path = d.join(key);
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(io_err("create", &path))?;
        sync_dir(&d)
    }

    pub fn remove_from(&self, list: List, m: &str, key: &str) -> Result<(), StateError> {
        remove(&self.module_dir(m).join(list.dir()).join(key))
    }

    /// The keys in a module's list, unsorted; `first` stops after one.
    pub fn keys(&self, list: List, m: &str, first: bool) -> Result<Vec<String>, StateError> {
        let d = self.module_dir(m).join(list.dir());
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("read", &d)(e)),
        };
        let mut out = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            out.push(name);
            if first {
                break;
            }
        }
        Ok(out)
    }

    /// Removes a module's directory: only under the exclusive host lock, when nothing
    /// of it is left (not owned, held by nobody).
    pub fn forget_module(&self, m: &str) -> Result<(), StateError> {
        let d = self.module_dir(m);
        match std::fs::remove_dir_all(&d) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &d)(e)),
        }
    }

    /// Removes a container's lock file: only under the exclusive host lock, when no
    /// hook holds it.
    pub fn remove_container_lock(&self, key: &str) -> Result<(), StateError> {
        remove(&self.dir.join(CONTAINERS).join(format!("{key}.lock")))
    }

    /// Removes the lock files of containers without a record: only under the exclusive
    /// host lock, when no hook holds one.
    pub fn remove_container_locks_except(
        &self,
        keep: &std::collections::BTreeSet<String>,
    ) -> Result<(), StateError> {
        let d = self.dir.join(CONTAINERS);
        for name in list(&d)? {
            if let Some(key) = name.strip_suffix(".lock") {
                if !keep.contains(key) {
                    remove(&d.join(&name))?;
                }
            }
        }
        Ok(())
    }

    /// The next insertion number: a counter in `seq`, under its own short lock, since
    /// hooks inserting different modules run side by side.
    pub fn next_seq(&mut self) -> Result<u64, StateError> {
        let _lock = FileLock::acquire(&self.dir.join("seq.lock"))?;
        let last = self.current_seq()?;
        let next = last + 1;
        write_atomic(&self.dir, "seq", format!("{next}\n").as_bytes())?;
        Ok(next)
    }

    /// The last insertion number given out.
    pub fn current_seq(&mut self) -> Result<u64, StateError> {
        let path = self.dir.join("seq");
        Ok(match self.read(&path)? {
            Some(b) => String::from_utf8_lossy(&b)
                .trim()
                .parse::<u64>()
                .unwrap_or(0),
            None => 0,
        })
    }

    /// Temp files left by writers that were killed between the write and the rename.
    /// Only with the exclusive host lock: then no write is in flight.
    pub fn remove_leftovers(&mut self) -> Result<(), StateError> {
        let mut dirs = vec![self.dir.clone(), self.dir.join(CONTAINERS)];
        for m in list(&self.dir.join(MODULES))? {
            dirs.push(self.dir.join(MODULES).join(m));
        }
        for d in dirs {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') && name.ends_with(".tmp") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(())
    }

    /// A file's bytes; `None` when it does not exist. A symlink, a special file or an
    /// oversized file counts as damaged and is moved aside.
    fn read(&mut self, path: &Path) -> Result<Option<Vec<u8>>, StateError> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(path);
        let file = match file {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                self.set_aside(path, "a symbolic link")?;
                return Ok(None);
            }
            Err(e) => return Err(io_err("open", path)(e)),
        };
        let meta = file.metadata().map_err(io_err("stat", path))?;
        if !meta.is_file() || meta.len() > MAX_DOC_BYTES {
            self.set_aside(path, "not a regular file of at most 1 MiB")?;
            return Ok(None);
        }
        let mut buf = Vec::with_capacity(meta.len() as usize);
        file.take(MAX_DOC_BYTES)
            .read_to_end(&mut buf)
            .map_err(io_err("read", path))?;
        Ok(Some(buf))
    }

    /// Moves a damaged file to `corrupt/NAME.MILLIS` and warns.
    pub(super) fn set_aside(&mut self, path: &Path, why: &str) -> Result<(), StateError> {
        let corrupt = self.dir.join(CORRUPT);
        mkdir(&corrupt)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let to = corrupt.join(format!("{name}.{}", now_ms()));
        match std::fs::rename(path, &to) {
            Ok(()) => {}
            // Another hook set it aside first.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err("move aside", path)(e)),
        }
        if let Some(parent) = path.parent() {
            sync_dir(parent)?;
        }
        sync_dir(&corrupt)?;
        let msg = format!(
            "state store: {} is damaged ({why}); moved to {}",
            path.display(),
            to.display()
        );
        tracing::warn!("{msg}");
        self.warnings.push(msg);
        Ok(())
    }
}

/// The names in a directory, sorted, hidden ones left out.
fn list(d: &Path) -> Result<Vec<String>, StateError> {
    let mut names: Vec<String> = match std::fs::read_dir(d) {
        Ok(e) => e
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err("read", d)(e)),
    };
    names.sort();
    Ok(names)
}

fn remove(path: &Path) -> Result<(), StateError> {
    match std::fs::remove_file(path) {
        Ok(()) => match path.parent() {
            Some(d) => sync_dir(d),
            None => Ok(()),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove", path)(e)),
    }
}

fn mkdir(dir: &Path) -> Result<(), StateError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err("create", dir))
}

fn sync_dir(dir: &Path) -> Result<(), StateError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync", dir))
}

/// Writes `dir/name` so that a reader, or a crash, sees the old bytes or the new ones.
/// The temp name is fixed: the lock covering the file means one writer.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StateError> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(io_err("create", &tmp))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io_err("write", &tmp))?;
    let path = dir.join(name);
    std::fs::rename(&tmp, &path).map_err(io_err("rename into place", &path))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests;
