//! The state store, `ROOT/run/modgate` (a tmpfs in production: empty after a reboot,
//! like the kernel's module list): `modules.json`, the ledger of modules modgate
//! inserted, and `containers/ID.json`, one record per container. Every change is made
//! under the host lock, every write is atomic (temp file, fsync, rename, fsync of the
//! directory), and a file that does not parse is moved to `corrupt/` with a warning:
//! a damaged record never stops a hook.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use modgate_core::record::{record_key, ContainerRecord, Ledger, MAX_DOC_BYTES};

use crate::lock::{state_dir, HostLock, LockError};
use crate::root::Root;

pub const LEDGER: &str = "modules.json";
pub const CONTAINERS: &str = "containers";
pub const CORRUPT: &str = "corrupt";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Dir(#[from] LockError),
    #[error("state store: cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StateError {
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

/// The store, open for changes: only while the host lock is held.
pub struct Store<'l> {
    dir: PathBuf,
    ledger: Ledger,
    warnings: Vec<String>,
    _lock: &'l HostLock,
}

/// Whether a container has a record, without the lock: the poststop of a container
/// that asked for nothing (nearly all of them) stops here.
pub fn has_record(root: &Root, id: &str) -> bool {
    root.path("run/modgate")
        .join(CONTAINERS)
        .join(format!("{}.json", record_key(id)))
        .symlink_metadata()
        .is_ok()
}

impl<'l> Store<'l> {
    pub fn open(root: &Root, lock: &'l HostLock) -> Result<Self, StateError> {
        let dir = state_dir(root)?;
        let records = dir.join(CONTAINERS);
        mkdir(&records)?;
        let mut store = Store {
            dir,
            ledger: Ledger::default(),
            warnings: Vec::new(),
            _lock: lock,
        };
        // A writer killed between its temp file and the rename leaves the temp file;
        // under the lock no write is in flight, so any temp file is such a leftover.
        for d in [store.dir.clone(), records] {
            for e in std::fs::read_dir(&d).map_err(io_err("read", &d))?.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') && name.ends_with(".tmp") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let path = store.dir.join(LEDGER);
        if let Some(bytes) = store.read(&path)? {
            match Ledger::parse(&bytes) {
                Ok(l) => store.ledger = l,
                // Without the ledger modgate owns nothing, so it removes nothing: safe.
                Err(e) => store.set_aside(&path, &e.to_string())?,
            }
        }
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn ledger_mut(&mut self) -> &mut Ledger {
        &mut self.ledger
    }

    pub fn save_ledger(&self) -> Result<(), StateError> {
        write_atomic(&self.dir, LEDGER, &self.ledger.render())
    }

    /// Warnings gathered so far (damaged files moved aside), emptied.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    fn record_path(&self, id: &str) -> PathBuf {
        self.dir
            .join(CONTAINERS)
            .join(format!("{}.json", record_key(id)))
    }

    /// Every readable record, sorted by id; damaged ones are moved aside.
    pub fn records(&mut self) -> Result<Vec<ContainerRecord>, StateError> {
        let d = self.dir.join(CONTAINERS);
        let mut names: Vec<String> = std::fs::read_dir(&d)
            .map_err(io_err("read", &d))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        let mut out = Vec::new();
        for name in names {
            let path = d.join(&name);
            let Some(key) = name.strip_suffix(".json") else {
                self.set_aside(&path, "not a record file name")?;
                continue;
            };
            if let Some(r) = self.load_record(&path, key)? {
                out.push(r);
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    pub fn record(&mut self, id: &str) -> Result<Option<ContainerRecord>, StateError> {
        let path = self.record_path(id);
        self.load_record(&path, &record_key(id))
    }

    fn load_record(
        &mut self,
        path: &Path,
        key: &str,
    ) -> Result<Option<ContainerRecord>, StateError> {
        let Some(bytes) = self.read(path)? else {
            return Ok(None);
        };
        match ContainerRecord::parse(&bytes, key) {
            Ok(r) => Ok(Some(r)),
            Err(e) => {
                self.set_aside(path, &format!("{e}"))?;
                Ok(None)
            }
        }
    }

    pub fn put(&self, record: &ContainerRecord) -> Result<(), StateError> {
        let name = format!("{}.json", record_key(&record.id));
        write_atomic(&self.dir.join(CONTAINERS), &name, &record.render())
    }

    pub fn remove(&self, id: &str) -> Result<(), StateError> {
        let path = self.record_path(id);
        match std::fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir.join(CONTAINERS)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &path)(e)),
        }
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
    fn set_aside(&mut self, path: &Path, why: &str) -> Result<(), StateError> {
        let corrupt = self.dir.join(CORRUPT);
        mkdir(&corrupt)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let to = corrupt.join(format!("{name}.{}", now_ms()));
        std::fs::rename(path, &to).map_err(io_err("move aside", path))?;
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
/// The temp name is fixed: the host lock means one writer.
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
mod tests {
    use super::*;
    use crate::lifecycle::testing::{mn, mns};
    use modgate_core::record::RecordStage;

    fn setup() -> (tempfile::TempDir, Root) {
        let t = tempfile::tempdir().expect("tempdir");
        let root = Root::new(t.path());
        (t, root)
    }

    #[test]
    fn records_and_ledger_round_trip() {
        let (_t, root) = setup();
        let lock = HostLock::acquire(&root).expect("lock");
        let mut s = Store::open(&root, &lock).expect("open");
        let mut r = ContainerRecord::new("a/b", RecordStage::Holding);
        r.holds = mns(&["ip_vs"]);
        s.put(&r).expect("put");
        assert!(has_record(&root, "a/b"));
        s.ledger_mut().insert(&mn("ip_vs"), "a/b", 5, None);
        s.save_ledger().expect("save");
        drop(s);
        let mut s = Store::open(&root, &lock).expect("open");
        assert!(s.ledger().owns("ip_vs"));
        assert_eq!(s.record("a/b").expect("read"), Some(r.clone()));
        assert_eq!(s.records().expect("list"), [r]);
        s.remove("a/b").expect("remove");
        s.remove("a/b").expect("removing twice is fine");
        assert!(!has_record(&root, "a/b"));
        assert!(s.take_warnings().is_empty());
    }

    #[test]
    fn damaged_files_are_moved_aside_with_a_warning() {
        let (t, root) = setup();
        let lock = HostLock::acquire(&root).expect("lock");
        let dir = t.path().join("run/modgate");
        std::fs::create_dir_all(dir.join(CONTAINERS)).expect("mkdir");
        std::fs::write(dir.join(LEDGER), "{garbage").expect("write");
        std::fs::write(dir.join("containers/bad.json"), "\0\0").expect("write");
        std::fs::write(dir.join("containers/odd"), "{}").expect("write");
        std::os::unix::fs::symlink("/etc/passwd", dir.join("containers/link.json"))
            .expect("symlink");
        std::fs::write(dir.join("containers/.good.json.tmp"), "half").expect("write");
        let good = ContainerRecord::new("good", RecordStage::Holding);
        std::fs::write(dir.join("containers/good.json"), good.render()).expect("write");

        let mut s = Store::open(&root, &lock).expect("open");
        assert_eq!(s.ledger(), &Ledger::default());
        assert_eq!(s.records().expect("list"), [good]);
        let w = s.take_warnings();
        assert_eq!(w.len(), 4, "{w:?}");
        assert!(w[0].contains("modules.json is damaged"), "{w:?}");
        assert!(w
            .iter()
            .any(|m| m.contains("link.json is damaged (a symbolic link)")));
        let aside: Vec<String> = std::fs::read_dir(dir.join(CORRUPT))
            .expect("corrupt dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(aside.len(), 4, "{aside:?}");
        assert!(!dir.join("containers/.good.json.tmp").exists());
        assert!(
            std::fs::read_to_string("/etc/passwd").is_ok(),
            "target untouched"
        );
    }
}
