//! What the runtime hands the hook: the OCI state on stdin and the bundle's
//! `config.json`, read with limits (no symlink, no special file, bounded sizes).

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use modgate_core::oci::{ConfigView, OciError, State, MAX_CONFIG_BYTES};

use super::HookError;

/// Largest state document accepted on stdin.
pub const MAX_STATE_BYTES: u64 = 1 << 20;

/// Why the bundle's `config.json` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is larger than {MAX_CONFIG_BYTES} bytes", path.display())]
    TooLarge { path: PathBuf },
    #[error("{}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: OciError,
    },
}

pub fn read_state(mut stdin: impl Read) -> Result<State, HookError> {
    let mut buf = Vec::new();
    stdin
        .by_ref()
        .take(MAX_STATE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(HookError::Stdin)?;
    if buf.len() as u64 > MAX_STATE_BYTES {
        return Err(HookError::StdinTooLarge);
    }
    Ok(State::parse(&buf)?)
}

/// Reads `BUNDLE/config.json`: no symlink, no special file, at most 16 MiB.
pub fn read_config(state: &State) -> Result<ConfigView, BundleError> {
    let bundle = Path::new(state.bundle().unwrap_or("."));
    let path = bundle.join("config.json");
    let err = |source| BundleError::Read {
        path: path.clone(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(&path)
        .map_err(err)?;
    let meta = file.metadata().map_err(err)?;
    if !meta.is_file() {
        return Err(err(std::io::Error::other("not a regular file")));
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(BundleError::TooLarge { path });
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(err)?;
    if buf.len() as u64 > MAX_CONFIG_BYTES {
        return Err(BundleError::TooLarge { path });
    }
    ConfigView::parse(&buf).map_err(|source| BundleError::Parse { path, source })
}
