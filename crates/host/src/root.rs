//! One root for every host path: `/` in production, a fixture tree in tests.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Root {
    dir: PathBuf,
}

impl Root {
    /// A relative root is made absolute against the working directory, as kmod does.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        let dir = if dir.is_absolute() {
            dir
        } else {
            std::env::current_dir()
                .map(|cwd| cwd.join(&dir))
                .unwrap_or(dir)
        };
        Self { dir }
    }

    pub fn system() -> Self {
        Self {
            dir: PathBuf::from("/"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn is_system(&self) -> bool {
        self.dir == Path::new("/")
    }

    /// A host path (`"etc/modprobe.d"`, no leading slash) under this root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel.trim_start_matches('/'))
    }

    /// The prefix kmod puts before `/lib/modules/...` for `-d ROOT`: nothing for `/`.
    pub fn prefix(&self) -> String {
        if self.is_system() {
            String::new()
        } else {
            self.dir.to_string_lossy().trim_end_matches('/').to_string()
        }
    }

    /// The release of the kernel this root runs (`proc/sys/kernel/osrelease`).
    pub fn kernel_release(&self) -> std::io::Result<String> {
        let s = std::fs::read_to_string(self.path("proc/sys/kernel/osrelease"))?;
        Ok(s.trim().to_string())
    }
}
