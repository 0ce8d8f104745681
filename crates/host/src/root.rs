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

    /// Where host path `p` really is under this root, symbolic links resolved as if the
    /// root were `/`: an absolute link target starts again at the root and `..` stops
    /// there, so the result never leaves the root. Components that do not exist are
    /// kept as they are (a file about to be created). On `/` this is the path itself.
    pub fn resolve(&self, p: &str) -> std::io::Result<PathBuf> {
        self.resolve_from(p, true)
    }

    /// Like [`Root::resolve`], but a link in the last component is not followed (for
    /// replacing, linking or renaming that entry itself).
    pub fn resolve_entry(&self, p: &str) -> std::io::Result<PathBuf> {
        self.resolve_from(p, false)
    }

    fn resolve_from(&self, p: &str, follow_last: bool) -> std::io::Result<PathBuf> {
        use std::ffi::OsString;
        if self.is_system() {
            return Ok(self.path(p));
        }
        let mut todo: Vec<OsString> = Path::new(p)
            .components()
            .rev()
            .map(|c| c.as_os_str().to_owned())
            .collect();
        let mut out = self.dir.clone();
        let mut links = 0;
        while let Some(c) = todo.pop() {
            match c.to_str() {
                Some("/" | "." | "") => continue,
                Some("..") => {
                    if out != self.dir {
                        out.pop();
                    }
                    continue;
                }
                _ => {}
            }
            let next = out.join(&c);
            let last = todo.is_empty();
            match std::fs::symlink_metadata(&next) {
                Ok(m) if m.file_type().is_symlink() && (follow_last || !last) => {
                    links += 1;
                    // The kernel's own limit on links in one lookup.
                    if links > 40 {
                        return Err(std::io::Error::from_raw_os_error(libc::ELOOP));
                    }
                    let target = std::fs::read_link(&next)?;
                    if target.is_absolute() {
                        out = self.dir.clone();
                    }
                    todo.extend(target.components().rev().map(|c| c.as_os_str().to_owned()));
                }
                _ => out = next,
            }
        }
        Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_links_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path().join("r"));
        let r = |p: &str| d.path().join("r").join(p);
        std::fs::create_dir_all(r("etc/real")).unwrap();
        std::fs::create_dir_all(d.path().join("outside")).unwrap();
        // An absolute link, a relative one climbing past the root, a link to a dir.
        std::os::unix::fs::symlink(d.path().join("outside/x.json"), r("etc/abs.json")).unwrap();
        std::os::unix::fs::symlink("../../../../outside/x.json", r("etc/up.json")).unwrap();
        std::os::unix::fs::symlink("/etc/real", r("etc/dir")).unwrap();
        std::os::unix::fs::symlink("loop", r("etc/loop")).unwrap();
        let outside = d.path().join("outside/x.json");
        let inside = r(outside.to_str().unwrap().trim_start_matches('/'));
        let cases: Vec<(&str, PathBuf)> = vec![
            ("/etc/abs.json", inside),
            ("/etc/up.json", r("outside/x.json")),
            ("/etc/dir/a.json", r("etc/real/a.json")),
            ("etc/new/b.json", r("etc/new/b.json")),
            ("/../../etc/real", r("etc/real")),
        ];
        for (p, want) in cases {
            assert_eq!(root.resolve(p).unwrap(), want, "{p}");
        }
        assert_eq!(
            root.resolve_entry("/etc/dir/abs.json").unwrap(),
            r("etc/real/abs.json")
        );
        assert_eq!(
            root.resolve_entry("/etc/abs.json").unwrap(),
            r("etc/abs.json")
        );
        assert!(root.resolve("/etc/loop").is_err());
        assert_eq!(
            Root::system().resolve("/etc/x").unwrap(),
            PathBuf::from("/etc/x")
        );
    }
}
