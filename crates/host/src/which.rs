//! Finding an executable by name: in `$PATH` (the runtime wrapper's real runtime) or in
//! the usual binary directories under a root (`doctor` telling whether an engine is
//! installed). One lookup, so both agree on what counts as "installed".

use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::root::Root;

/// The directories `doctor` looks in, as host paths without the leading slash.
pub const BIN_DIRS: [&str; 6] = [
    "usr/local/sbin",
    "usr/local/bin",
    "usr/sbin",
    "usr/bin",
    "sbin",
    "bin",
];

fn executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// The first executable regular file `name` in `dirs` that is not `skip` (a wrapper
/// installed as `runc` must not find itself).
pub fn in_dirs<I, P>(dirs: I, name: &str, skip: Option<&Path>) -> Option<PathBuf>
where
    I: IntoIterator<Item = P>,
    P: AsRef<Path>,
{
    dirs.into_iter()
        .map(|d| d.as_ref().join(name))
        .find(|c| executable(c) && !skip.is_some_and(|s| same_file(c, s)))
}

/// `name` in a `PATH` value.
pub fn in_path(path: Option<&OsStr>, name: &str, skip: Option<&Path>) -> Option<PathBuf> {
    in_dirs(
        path.map(std::env::split_paths).into_iter().flatten(),
        name,
        skip,
    )
}

/// `name` in the usual binary directories under the root, as a host path. Any regular
/// file counts: this tells whether a program is installed, not whether it would run.
pub fn in_root(root: &Root, name: &str) -> Option<String> {
    BIN_DIRS
        .iter()
        .find(|d| {
            root.resolve(&format!("{d}/{name}"))
                .is_ok_and(|p| p.is_file())
        })
        .map(|d| format!("/{d}/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn put(p: &Path, mode: u32) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn path_lookup_skips_itself_and_non_executables() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        let me = a.join("runc");
        put(&me, 0o755);
        let real = b.join("runc");
        put(&real, 0o755);
        put(&b.join("crun"), 0o644);
        let path = std::env::join_paths([&a, &b]).unwrap();
        assert_eq!(in_path(Some(&path), "runc", Some(&me)), Some(real));
        assert_eq!(in_path(Some(&path), "runc", None), Some(me.clone()));
        assert_eq!(in_path(Some(&path), "crun", Some(&me)), None);
        assert_eq!(in_path(None, "runc", None), None);
    }

    #[test]
    fn root_lookup_gives_host_paths() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        put(&d.path().join("usr/sbin/dockerd"), 0o755);
        put(&d.path().join("usr/bin/podman"), 0o644);
        std::fs::create_dir_all(d.path().join("bin/crun")).unwrap();
        assert_eq!(
            in_root(&root, "dockerd").as_deref(),
            Some("/usr/sbin/dockerd")
        );
        assert_eq!(in_root(&root, "podman").as_deref(), Some("/usr/bin/podman"));
        assert_eq!(in_root(&root, "crun"), None);
        assert_eq!(in_root(&root, "crio"), None);
    }
}
