//! Configuration files of other programs, read and written the way an operator can
//! trust: reads that tell "absent" from "unreadable", and writes that go to a temporary
//! file in the same directory, are synced, take the old file's mode and owner and
//! replace it with rename(2), after the old content was kept as `FILE.bak`.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not UTF-8 text", path.display())]
    NotText { path: PathBuf },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The file's text, `None` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<String>, ConfigFileError> {
    match std::fs::read(path) {
        Ok(b) => String::from_utf8(b)
            .map(Some)
            .map_err(|_| ConfigFileError::NotText {
                path: path.to_path_buf(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigFileError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// `FILE.bak` next to `FILE`.
pub fn backup_path(path: &Path) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(".bak");
    PathBuf::from(s)
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.modgate-{}-{n}", std::process::id()))
}

/// Where a write to `path` lands: a symbolic link's target, so that a link an operator
/// set up (for example into a configuration repository) stays a link.
fn resolve(path: &Path) -> PathBuf {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path).unwrap_or(path.into()),
        _ => path.to_path_buf(),
    }
}

/// Replaces (or creates) `path` with `data` in one rename. A new file gets `mode`; an
/// existing one keeps its mode and owner.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), ConfigFileError> {
    let path = resolve(path);
    let err = |source| ConfigFileError::Write {
        path: path.clone(),
        source,
    };
    let old = std::fs::metadata(&path).ok();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = temp_path(&path);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(data)?;
        let mode = old.as_ref().map(|m| m.mode() & 0o7777).unwrap_or(mode);
        if let Some(m) = &old {
            std::os::unix::fs::fchown(&f, Some(m.uid()), Some(m.gid()))?;
        }
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    sync_dir(&path);
    Ok(())
}

/// Makes the rename durable; a failure here does not undo the write, so it is ignored.
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// Copies the current content of `path` to `path.bak` (atomically, same mode).
pub fn backup(path: &Path) -> Result<PathBuf, ConfigFileError> {
    let path = resolve(path);
    let bak = backup_path(&path);
    let data = std::fs::read(&path).map_err(|source| ConfigFileError::Read {
        path: path.clone(),
        source,
    })?;
    let mode = std::fs::metadata(&path)
        .map(|m| m.mode() & 0o7777)
        .unwrap_or(0o644);
    // A stale backup from an earlier run is replaced; write_atomic keeps its owner,
    // so start from a fresh file.
    let _ = std::fs::remove_file(&bak);
    write_atomic(&bak, &data, mode)?;
    Ok(bak)
}

/// Makes `path` a symbolic link to `target` in one rename (whatever was there is gone:
/// the caller keeps it first).
pub fn link_atomic(path: &Path, target: &str) -> Result<(), ConfigFileError> {
    let err = |source| ConfigFileError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = temp_path(path);
    std::os::unix::fs::symlink(target, &tmp).map_err(err)?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    sync_dir(path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_keep_mode_and_backup() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/daemon.json");
        assert_eq!(read_optional(&p).unwrap(), None);
        write_atomic(&p, b"one", 0o640).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o640);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let bak = backup(&p).unwrap();
        write_atomic(&p, b"two", 0o644).unwrap();
        assert_eq!(read_optional(&p).unwrap().as_deref(), Some("two"));
        assert_eq!(std::fs::read_to_string(&bak).unwrap(), "one");
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(&bak).unwrap().mode() & 0o777, 0o600);
        // No temporary file left behind.
        let names: Vec<_> = std::fs::read_dir(d.path().join("sub"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn writes_through_links_and_links_atomically() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real.json");
        std::fs::write(&real, "x").unwrap();
        let link = d.path().join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomic(&link, b"y", 0o644).unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "y");
        link_atomic(&link, "/usr/bin/modgate").unwrap();
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            Path::new("/usr/bin/modgate")
        );
        assert!(read_optional(d.path()).is_err());
        std::fs::write(d.path().join("bin"), [0xff, 0xfe]).unwrap();
        assert!(matches!(
            read_optional(&d.path().join("bin")),
            Err(ConfigFileError::NotText { .. })
        ));
    }
}
