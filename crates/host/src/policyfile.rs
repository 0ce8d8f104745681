//! Finds and reads the policy: `--policy FILE`, else `ROOT/etc/modgate/policy.toml`,
//! else the built-in default. Only a path with nothing at all there (no file, no link)
//! means the default: a dangling link, a directory or an unreadable file is an error, so
//! a broken policy never quietly becomes the default.

use std::path::{Path, PathBuf};

use modgate_core::policy::{Policy, PolicyError};

use crate::root::Root;

pub const POLICY_PATH: &str = "etc/modgate/policy.toml";

#[derive(Debug, thiserror::Error)]
pub enum PolicyFileError {
    #[error("cannot read policy {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Parse(#[from] PolicyError),
}

pub fn load(root: &Root, explicit: Option<&Path>) -> Result<Policy, PolicyFileError> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let p = root.path(POLICY_PATH);
            match std::fs::symlink_metadata(&p) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Ok(Policy::builtin_default());
                }
                Err(source) => return Err(PolicyFileError::Read { path: p, source }),
                Ok(_) => p,
            }
        }
    };
    let text = std::fs::read_to_string(&path).map_err(|source| PolicyFileError::Read {
        path: path.clone(),
        source,
    })?;
    Ok(Policy::parse(&path.display().to_string(), &text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with(f: impl FnOnce(&Path)) -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("etc/modgate")).expect("mkdir");
        f(&dir.path().join(POLICY_PATH));
        let root = Root::new(dir.path());
        (dir, root)
    }

    #[test]
    fn only_an_absent_path_means_the_default() {
        let (_d, root) = root_with(|_| {});
        assert_eq!(
            load(&root, None).expect("default").source,
            "built-in default policy"
        );

        let (_d, root) = root_with(|p| {
            std::os::unix::fs::symlink("/nonexistent/policy.toml", p).expect("symlink")
        });
        let e = load(&root, None).expect_err("a dangling link is an error");
        assert!(matches!(e, PolicyFileError::Read { .. }), "{e:?}");

        let (_d, root) = root_with(|p| std::fs::create_dir(p).expect("mkdir"));
        assert!(load(&root, None).is_err(), "a directory is an error");

        let (_d, root) = root_with(|p| std::fs::write(p, "mode = \"sideways\"\n").expect("write"));
        assert!(matches!(load(&root, None), Err(PolicyFileError::Parse(_))));

        let (_d, root) = root_with(|p| std::fs::write(p, "max_modules = 3\n").expect("write"));
        assert_eq!(load(&root, None).expect("policy").max_modules, 3);
    }
}
