//! Resolved settings: the root, the kernel release, the configuration search path.

use std::path::PathBuf;

use modgate_host::root::Root;

use crate::cli::Global;

pub struct Settings {
    pub root: Root,
    pub release: String,
    pub config_dirs: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot tell the kernel release (give --kernel-release)")]
pub struct NoRelease(#[source] std::io::Error);

impl Settings {
    pub fn resolve(g: &Global) -> Result<Self, NoRelease> {
        let root = Root::new(&g.root);
        let release = match &g.kernel_release {
            Some(r) => r.clone(),
            None => root.kernel_release().map_err(NoRelease)?,
        };
        Ok(Self {
            root,
            release,
            config_dirs: g.config_dirs.clone(),
        })
    }
}
