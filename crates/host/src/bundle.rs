//! The one reader (and writer) of a bundle's `config.json`. The bundle directory is
//! opened once; the config is then opened relative to it without following a symbolic
//! link, without blocking on a FIFO, only when it is a regular file and only up to
//! [`MAX_CONFIG_BYTES`]. A rewrite goes to a temporary file in that same directory and
//! replaces the entry with renameat(2), so whatever stands at `config.json` (a link
//! swapped in meanwhile included) is replaced, never written through.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use modgate_core::oci::{ConfigView, OciError, MAX_CONFIG_BYTES};
use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Uid};

/// The config file runtimes read unless told otherwise.
pub const CONFIG_NAME: &str = "config.json";

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot open bundle {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("bundle config {name:?} is not a file name in the bundle")]
    Name { name: String },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is a symbolic link: refused", path.display())]
    Symlink { path: PathBuf },
    #[error("{} is not a regular file: refused", path.display())]
    NotRegular { path: PathBuf },
    #[error("{} is larger than {MAX_CONFIG_BYTES} bytes", path.display())]
    TooLarge { path: PathBuf },
    #[error("invalid {}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: OciError,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// An open bundle directory.
#[derive(Debug)]
pub struct Bundle {
    dir: OwnedFd,
    path: PathBuf,
}

/// A config as read: its bytes, and who owned it with what mode (a rewrite keeps both).
#[derive(Debug, Clone)]
pub struct BundleConfig {
    /// The file's path, for messages.
    pub path: PathBuf,
    /// The document byte for byte (the runtime wrapper edits it without decoding it).
    pub raw: Vec<u8>,
    mode: u32,
    uid: u32,
    gid: u32,
}

impl BundleConfig {
    /// The fields the hook reads (`process.env`, `annotations`).
    pub fn view(&self) -> Result<ConfigView, BundleError> {
        ConfigView::parse(&self.raw).map_err(|source| BundleError::Parse {
            path: self.path.clone(),
            source,
        })
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn check_name(name: &str) -> Result<(), BundleError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(BundleError::Name { name: name.into() });
    }
    Ok(())
}

impl Bundle {
    /// Opens the bundle directory (the runtime's own path: a link to the directory is
    /// followed, as the runtime follows it).
    pub fn open(path: &Path) -> Result<Self, BundleError> {
        let dir = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| BundleError::Open {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        Ok(Self {
            dir,
            path: path.to_path_buf(),
        })
    }

    /// Opens the bundle and reads its config `name` in one step; a bundle directory that
    /// cannot be opened is reported as the config that cannot be read.
    pub fn open_config(path: &Path, name: &str) -> Result<(Self, BundleConfig), BundleError> {
        check_name(name)?;
        let bundle = Self::open(path).map_err(|e| match e {
            BundleError::Open { source, .. } => BundleError::Read {
                path: path.join(name),
                source,
            },
            e => e,
        })?;
        let config = bundle.read_config(name)?;
        Ok((bundle, config))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads `name` (a file name in the bundle, `config.json` unless crun's `--config`
    /// names another).
    pub fn read_config(&self, name: &str) -> Result<BundleConfig, BundleError> {
        check_name(name)?;
        let path = self.path.join(name);
        let read_err = |source: std::io::Error| BundleError::Read {
            path: path.clone(),
            source,
        };
        // O_NONBLOCK: opening a FIFO for reading returns at once instead of waiting for a
        // writer; it is then refused as not a regular file.
        let fd = rustix::fs::openat(
            &self.dir,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            rustix::io::Errno::LOOP => BundleError::Symlink { path: path.clone() },
            e => read_err(e.into()),
        })?;
        let st = rustix::fs::fstat(&fd).map_err(|e| read_err(e.into()))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(BundleError::NotRegular { path });
        }
        if st.st_size as u64 > MAX_CONFIG_BYTES {
            return Err(BundleError::TooLarge { path });
        }
        let mut raw = Vec::with_capacity(st.st_size as usize);
        std::fs::File::from(fd)
            .take(MAX_CONFIG_BYTES + 1)
            .read_to_end(&mut raw)
            .map_err(read_err)?;
        // The file may have grown since fstat.
        if raw.len() as u64 > MAX_CONFIG_BYTES {
            return Err(BundleError::TooLarge { path });
        }
        Ok(BundleConfig {
            path,
            raw,
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
        })
    }

    /// Reads `config.json` and its fields the hook needs.
    pub fn read_view(&self) -> Result<ConfigView, BundleError> {
        self.read_config(CONFIG_NAME)?.view()
    }

    /// Replaces the config that `old` was read from with `data`, keeping its owner and
    /// mode: a temporary file in the bundle directory, synced, then renamed over the
    /// entry.
    pub fn rewrite(&self, old: &BundleConfig, data: &[u8]) -> Result<(), BundleError> {
        let name = old.path.file_name().map(OsString::from).unwrap_or_default();
        let tmp = format!(
            ".{}.modgate-{}-{}",
            name.to_string_lossy(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let write_err = |source: std::io::Error| BundleError::Write {
            path: old.path.clone(),
            source,
        };
        let fd = rustix::fs::openat(
            &self.dir,
            tmp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| write_err(e.into()))?;
        let result = (|| -> std::io::Result<()> {
            let mut f = std::fs::File::from(fd);
            f.write_all(data)?;
            // Only root can give a file away; anyone else keeps their own.
            if rustix::process::geteuid().is_root() {
                rustix::fs::fchown(
                    &f,
                    Some(Uid::from_raw(old.uid)),
                    Some(Gid::from_raw(old.gid)),
                )?;
            }
            rustix::fs::fchmod(&f, Mode::from_raw_mode(old.mode))?;
            f.sync_all()?;
            rustix::fs::renameat(&self.dir, tmp.as_str(), &self.dir, &name)?;
            Ok(())
        })();
        if let Err(e) = result {
            let _ = rustix::fs::unlinkat(&self.dir, tmp.as_str(), AtFlags::empty());
            return Err(write_err(e));
        }
        // Makes the rename durable; a failure here does not undo it.
        let _ = rustix::fs::fsync(&self.dir);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::time::{Duration, Instant};

    const CFG: &str = r#"{"process":{"env":["KERNEL_MODULES=ip_vs"]}}"#;

    fn bundle_with(cfg: &str) -> (tempfile::TempDir, Bundle) {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(CONFIG_NAME), cfg).unwrap();
        let b = Bundle::open(d.path()).unwrap();
        (d, b)
    }

    #[test]
    fn reads_raw_and_view() {
        let (_d, b) = bundle_with(CFG);
        let c = b.read_config(CONFIG_NAME).unwrap();
        assert_eq!(c.raw, CFG.as_bytes());
        let r = b.read_view().unwrap().request().unwrap();
        assert_eq!(r.names().len(), 1);
        for bad in ["", ".", "..", "../config.json", "/etc/passwd", "a/b"] {
            assert!(
                matches!(b.read_config(bad), Err(BundleError::Name { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            b.read_config("nope.json"),
            Err(BundleError::Read { .. })
        ));
        let (_d, b) = bundle_with("{");
        assert!(matches!(b.read_view(), Err(BundleError::Parse { .. })));
        assert!(matches!(
            Bundle::open(Path::new("/nonexistent/b")),
            Err(BundleError::Open { .. })
        ));
        let e = Bundle::open_config(Path::new("/nonexistent/b"), CONFIG_NAME).unwrap_err();
        assert!(
            e.to_string() == "cannot read /nonexistent/b/config.json",
            "{e}"
        );
    }

    #[test]
    fn refuses_a_symlinked_config() {
        let d = tempfile::tempdir().unwrap();
        let outside = d.path().join("host.json");
        std::fs::write(&outside, CFG).unwrap();
        let bundle = d.path().join("b");
        std::fs::create_dir(&bundle).unwrap();
        std::os::unix::fs::symlink(&outside, bundle.join(CONFIG_NAME)).unwrap();
        let b = Bundle::open(&bundle).unwrap();
        let e = b.read_config(CONFIG_NAME).unwrap_err();
        assert!(matches!(e, BundleError::Symlink { .. }), "{e}");
        assert!(
            e.to_string()
                .ends_with("config.json is a symbolic link: refused"),
            "{e}"
        );
    }

    #[test]
    fn refuses_a_fifo_promptly() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join(CONFIG_NAME);
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let b = Bundle::open(d.path()).unwrap();
        // A read that blocked would hang this test; run it on a thread and give up after
        // a few seconds instead.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(b.read_config(CONFIG_NAME).map(|_| ()));
        });
        let start = Instant::now();
        let got = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("read blocked on a FIFO");
        assert!(
            matches!(got, Err(BundleError::NotRegular { .. })),
            "{got:?}"
        );
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn refuses_an_oversized_config() {
        let d = tempfile::tempdir().unwrap();
        let f = std::fs::File::create(d.path().join(CONFIG_NAME)).unwrap();
        f.set_len(MAX_CONFIG_BYTES + 1).unwrap();
        let b = Bundle::open(d.path()).unwrap();
        assert!(matches!(
            b.read_config(CONFIG_NAME),
            Err(BundleError::TooLarge { .. })
        ));
    }

    #[test]
    fn rewrite_keeps_mode_and_leaves_no_temp() {
        let (d, b) = bundle_with(CFG);
        let p = d.path().join(CONFIG_NAME);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        let c = b.read_config(CONFIG_NAME).unwrap();
        b.rewrite(&c, b"{}").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "{}");
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o7777, 0o640);
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn rewrite_never_goes_through_a_symlink() {
        // config.json read as a regular file, then swapped for a link to a host file
        // before the write: the link is replaced, the host file is untouched.
        let d = tempfile::tempdir().unwrap();
        let outside = d.path().join("host.json");
        std::fs::write(&outside, "host").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o600)).unwrap();
        let bundle = d.path().join("b");
        std::fs::create_dir(&bundle).unwrap();
        let cfg = bundle.join(CONFIG_NAME);
        std::fs::write(&cfg, CFG).unwrap();
        let b = Bundle::open(&bundle).unwrap();
        let c = b.read_config(CONFIG_NAME).unwrap();
        std::fs::remove_file(&cfg).unwrap();
        std::os::unix::fs::symlink(&outside, &cfg).unwrap();
        b.rewrite(&c, b"{\"new\":1}").unwrap();
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "host");
        assert_eq!(std::fs::metadata(&outside).unwrap().mode() & 0o777, 0o600);
        assert!(!std::fs::symlink_metadata(&cfg)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&cfg).unwrap(), "{\"new\":1}");
    }
}
