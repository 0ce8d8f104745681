//! Resolved settings: the root, the kernel release, the configuration search path.

use std::collections::BTreeMap;
use std::path::PathBuf;

use modgate_host::context::Context;
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

    pub fn context(&self) -> Result<Context, modgate_host::moddir::ModDirError> {
        Context::open(self.root.clone(), self.release.clone(), &self.config_dirs)
    }

    /// The running kernel's module directory and configuration, when there is one (for
    /// the commands that work without it: `gc`, `unload`, `status`).
    pub fn running_context(g: &Global) -> Option<Context> {
        Self::resolve(g).ok().and_then(|s| s.context().ok())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid --annotation {0:?}: expected KEY=VALUE")]
pub struct BadAnnotation(String);

pub fn annotations(list: &[String]) -> Result<BTreeMap<String, String>, BadAnnotation> {
    list.iter()
        .map(|a| {
            a.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| BadAnnotation(a.clone()))
        })
        .collect()
}
