//! Finds and reads the policy: `--policy FILE`, else `ROOT/etc/modgate/policy.toml`,
//! else the built-in default.

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
            if !p.exists() {
                return Ok(Policy::builtin_default());
            }
            p
        }
    };
    let text = std::fs::read_to_string(&path).map_err(|source| PolicyFileError::Read {
        path: path.clone(),
        source,
    })?;
    Ok(Policy::parse(&path.display().to_string(), &text)?)
}
