//! What the runtime hands the hook: the OCI state on stdin (bounded) and the bundle's
//! `config.json` (read by [`crate::bundle`]: no symlink, no special file, bounded).

use std::io::Read;
use std::path::Path;

use modgate_core::oci::{ConfigView, State};

use super::HookError;
pub use crate::bundle::BundleError;
use crate::bundle::{Bundle, CONFIG_NAME};

/// Largest state document accepted on stdin.
pub const MAX_STATE_BYTES: u64 = 1 << 20;

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

/// Reads the fields the hook needs from `BUNDLE/config.json`, through the one bundle
/// reader the runtime wrapper uses too.
pub fn read_config(state: &State) -> Result<ConfigView, BundleError> {
    let dir = Path::new(state.bundle().unwrap_or("."));
    let (_bundle, config) = Bundle::open_config(dir, CONFIG_NAME)?;
    config.view()
}
