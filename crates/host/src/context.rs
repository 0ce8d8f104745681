//! Everything a command needs about one host: its root, kernel release, module
//! directory and modprobe configuration, opened once.

use std::path::PathBuf;

use modgate_core::{Config, KernelView, Plan, ResolveError, Resolver};

use crate::moddir::{ModDirError, ModuleDir};
use crate::modprobe_d;
use crate::root::Root;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    ModDir(#[from] ModDirError),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
}

pub struct Context {
    pub root: Root,
    pub release: String,
    pub dir: ModuleDir,
    pub config: Config,
}

impl Context {
    pub fn open(root: Root, release: String, config_dirs: &[PathBuf]) -> Result<Self, ModDirError> {
        let dir = ModuleDir::open(&root, &release)?;
        let config = modprobe_d::load(&root, config_dirs, &dir.dir);
        Ok(Self {
            root,
            release,
            dir,
            config,
        })
    }

    /// The modules `modules.alias` names for `key` (`rtnl-link-veth`); nothing when the
    /// index cannot be read.
    pub fn alias_targets(&self, key: &str) -> Vec<String> {
        self.dir
            .db()
            .ok()
            .and_then(|db| db.aliases(key).ok())
            .unwrap_or_default()
    }

    pub fn plan(&self, names: &[&str], kernel: &dyn KernelView) -> Result<Plan, PlanError> {
        let db = self.dir.db()?;
        let mut r = Resolver::new(&db, &self.config, &self.dir.dirname);
        Ok(r.plan(names, kernel)?)
    }
}
