//! The resolver: from a name to a load plan, with kmod's lookup order and its dependency
//! and softdep walk, so that the plan lists what `modprobe` would load, in its order.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::config::Config;
use crate::moddb::{DbError, ModuleDb};
use crate::name::{alias_normalize, modname_from_path, NameError};
use crate::plan::{Action, Plan, Reason, Step, Target, Via};

/// What the running kernel says of a module (`/sys/module/NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModState {
    Live,
    /// Being loaded right now by someone else.
    Coming,
    Going,
    /// `/sys/module/NAME` exists without `initstate`: built into the kernel.
    Builtin,
    Absent,
}

/// The kernel's module list, as the resolver needs it.
pub trait KernelView {
    fn state(&self, name: &str) -> ModState;
}

/// A kernel with nothing loaded (for `--format modprobe`, which ignores live state).
pub struct NothingLoaded;

impl KernelView for NothingLoaded {
    fn state(&self, _: &str) -> ModState {
        ModState::Absent
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("invalid module name {name:?}")]
    InvalidName {
        name: String,
        #[source]
        source: NameError,
    },
    #[error("module {name:?} not found in {dir} (modules.dep, modules.alias, builtin)")]
    NotFound { name: String, dir: String },
    #[error("cannot read the module index in {dir}")]
    Index {
        dir: String,
        #[source]
        source: DbError,
    },
}

#[derive(Debug)]
struct Mod {
    name: String,
    alias: Option<String>,
    path: Option<String>,
    deps: Option<Vec<usize>>,
    builtin: bool,
    /// An install command set by the lookup itself (found through `install NAME`), with
    /// where it was given (`FILE line N`).
    install: Option<(String, String)>,
    via: Via,
}

/// Resolves names against one module directory and one configuration.
pub struct Resolver<'r> {
    db: &'r ModuleDb<'r>,
    config: &'r Config,
    /// `ROOT/lib/modules/KV`, as it appears in printed paths.
    dirname: &'r str,
    mods: Vec<Mod>,
    by_key: HashMap<(String, Option<String>), usize>,
    /// What the kernel said of each module, asked once a plan: a module several targets
    /// depend on has one state in the plan.
    states: RefCell<HashMap<String, ModState>>,
}

#[derive(Clone, Copy)]
struct Entry {
    module: usize,
    reason_of: Option<usize>,
    kind: EntryKind,
}

#[derive(Clone, Copy, PartialEq)]
enum EntryKind {
    Target,
    Dep,
    Pre,
    Post,
}

impl<'r> Resolver<'r> {
    pub fn new(db: &'r ModuleDb<'r>, config: &'r Config, dirname: &'r str) -> Self {
        Self {
            db,
            config,
            dirname,
            mods: Vec::new(),
            by_key: HashMap::new(),
            states: RefCell::default(),
        }
    }

    /// The kernel's state of `name`, asked once per resolver.
    fn state(&self, name: &str, kernel: &dyn KernelView) -> ModState {
        *self
            .states
            .borrow_mut()
            .entry(name.to_string())
            .or_insert_with(|| kernel.state(name))
    }

    fn err(&self, source: DbError) -> ResolveError {
        ResolveError::Index {
            dir: self.dirname.to_string(),
            source,
        }
    }

    fn module(&mut self, name: &str, alias: Option<&str>, via: Via) -> usize {
        let key = (name.to_string(), alias.map(str::to_string));
        if let Some(&i) = self.by_key.get(&key) {
            return i;
        }
        let i = self.mods.len();
        self.mods.push(Mod {
            name: name.to_string(),
            alias: alias.map(str::to_string),
            path: None,
            deps: None,
            builtin: false,
            install: None,
            via,
        });
        self.by_key.insert(key, i);
        i
    }

    fn join(&self, rel: &str) -> String {
        if rel.starts_with('/') {
            rel.to_string()
        } else {
            format!("{}/{}", self.dirname, rel)
        }
    }

    /// kmod's `kmod_module_parse_depline`: sets the path (if unset) and the dependency
    /// list, which is the line's dependencies in reverse, i.e. load order.
    fn parse_depline(&mut self, m: usize, line: &str) {
        if self.mods[m].deps.is_some() {
            return;
        }
        let Some((path, deps)) = line.split_once(':') else {
            self.mods[m].deps = Some(Vec::new());
            return;
        };
        if self.mods[m].path.is_none() {
            self.mods[m].path = Some(self.join(path));
        }
        let mut list = Vec::new();
        for dep in deps.split([' ', '\t']).filter(|d| !d.is_empty()) {
            let name = modname_from_path(dep);
            let d = self.module(&name, None, Via::Name);
            if self.mods[d].path.is_none() {
                self.mods[d].path = Some(self.join(dep));
            }
            list.push(d);
        }
        list.reverse();
        self.mods[m].deps = Some(list);
    }

    fn deps(&mut self, m: usize) -> Result<Vec<usize>, ResolveError> {
        if self.mods[m].deps.is_none() {
            let name = self.mods[m].name.clone();
            match self.db.dep_line(&name).map_err(|e| self.err(e))? {
                Some(line) => self.parse_depline(m, &line),
                None => self.mods[m].deps = Some(Vec::new()),
            }
        }
        Ok(self.mods[m].deps.clone().unwrap_or_default())
    }

    /// kmod's `kmod_module_new_from_lookup`: every module a name stands for, trying
    /// config aliases, module names, symbols, install/remove commands, modules.alias,
    /// builtin names and builtin aliases, in that order; the first that finds anything wins.
    pub fn lookup(&mut self, given: &str) -> Result<Vec<usize>, ResolveError> {
        let key = alias_normalize(given).map_err(|source| ResolveError::InvalidName {
            name: given.to_string(),
            source,
        })?;
        let mut found = Vec::new();

        let config = self.config;
        for a in &config.aliases {
            if crate::fnmatch::fnmatch(&a.pattern, &key) {
                found.push(self.module(
                    &a.module,
                    Some(&a.pattern),
                    Via::ConfigAlias(a.source.to_string()),
                ));
            }
        }
        if !found.is_empty() {
            return Ok(found);
        }

        if !key.contains(':') {
            if let Some(line) = self.db.dep_line(&key).map_err(|e| self.err(e))? {
                let m = self.module(&key, None, Via::Name);
                self.parse_depline(m, &line);
                return Ok(vec![m]);
            }
        }

        if key.starts_with("symbol:") {
            for real in self.db.symbols(&key).map_err(|e| self.err(e))? {
                found.push(self.module(&real, Some(&key), Via::Symbol));
            }
            if !found.is_empty() {
                return Ok(found);
            }
        }

        if let Some(c) = config.install.iter().find(|c| c.module == key) {
            let m = self.module(&key, None, Via::InstallCommand);
            self.mods[m].install = Some((c.command.clone(), c.place()));
            return Ok(vec![m]);
        }
        if config.remove.iter().any(|c| c.module == key) {
            return Ok(vec![self.module(&key, None, Via::Name)]);
        }

        for real in self.db.aliases(&key).map_err(|e| self.err(e))? {
            found.push(self.module(&real, Some(&key), Via::Alias));
        }
        if !found.is_empty() {
            return Ok(found);
        }

        if self.db.is_builtin(&key).map_err(|e| self.err(e))? {
            let m = self.module(&key, None, Via::Builtin);
            self.mods[m].builtin = true;
            return Ok(vec![m]);
        }

        for real in self.db.builtin_aliases(&key).map_err(|e| self.err(e))? {
            let m = self.module(&real, Some(&key), Via::BuiltinAlias);
            self.mods[m].builtin = true;
            found.push(m);
        }
        Ok(found)
    }

    fn softdeps(&mut self, m: usize) -> (Vec<usize>, Vec<usize>) {
        let Some(sd) = self.config.softdep_for(&self.mods[m].name) else {
            return (Vec::new(), Vec::new());
        };
        let (pre_names, post_names) = (sd.pre.clone(), sd.post.clone());
        // kmod logs a failed softdep lookup and carries on; so does the plan.
        let mut lookup_all = |names: &[String]| -> Vec<usize> {
            names
                .iter()
                .flat_map(|n| self.lookup(n).unwrap_or_default())
                .collect()
        };
        let pre = lookup_all(&pre_names);
        let post = lookup_all(&post_names);
        (pre, post)
    }

    fn probe_list(
        &mut self,
        m: usize,
        kind: EntryKind,
        parent: Option<usize>,
        visited: &mut Vec<bool>,
        out: &mut Vec<Entry>,
    ) -> Result<(), ResolveError> {
        if visited.len() < self.mods.len() {
            visited.resize(self.mods.len(), false);
        }
        if visited[m] {
            return Ok(());
        }
        visited[m] = true;
        for d in self.deps(m)? {
            self.fill_softdep(d, EntryKind::Dep, Some(m), visited, out)?;
        }
        self.fill_softdep(m, kind, parent, visited, out)
    }

    fn fill_softdep(
        &mut self,
        m: usize,
        kind: EntryKind,
        parent: Option<usize>,
        visited: &mut Vec<bool>,
        out: &mut Vec<Entry>,
    ) -> Result<(), ResolveError> {
        let (pre, post) = self.softdeps(m);
        for p in pre {
            self.probe_list(p, EntryKind::Pre, Some(m), visited, out)?;
        }
        out.push(Entry {
            module: m,
            reason_of: parent,
            kind,
        });
        for p in post {
            self.probe_list(p, EntryKind::Post, Some(m), visited, out)?;
        }
        Ok(())
    }

    fn has_softdeps(&mut self, m: usize) -> bool {
        let (pre, post) = self.softdeps(m);
        !pre.is_empty() || !post.is_empty()
    }

    /// Plans loading `names`, in order. Live state comes from `kernel`.
    pub fn plan(&mut self, names: &[&str], kernel: &dyn KernelView) -> Result<Plan, ResolveError> {
        let mut plan = Plan::default();
        for &name in names {
            let found = self.lookup(name)?;
            if found.is_empty() {
                return Err(ResolveError::NotFound {
                    name: name.to_string(),
                    dir: self.dirname.to_string(),
                });
            }
            for top in found {
                self.plan_one(name, top, kernel, &mut plan)?;
            }
        }
        Ok(plan)
    }

    fn plan_one(
        &mut self,
        asked: &str,
        top: usize,
        kernel: &dyn KernelView,
        plan: &mut Plan,
    ) -> Result<(), ResolveError> {
        let config = self.config;
        let blacklisted = config
            .blacklisted(&self.mods[top].name)
            .map(|b| b.source.to_string());
        plan.targets.push(Target {
            requested: asked.to_string(),
            module: self.mods[top].name.clone(),
            via: self.mods[top].via.clone(),
            blacklisted: blacklisted.clone(),
        });
        // modprobe skips a blacklisted module only when it was asked for by an alias.
        if blacklisted.is_some() && self.mods[top].alias.is_some() {
            return Ok(());
        }
        let mut required = vec![top];
        required.extend(self.deps(top)?);
        let mut entries = Vec::new();
        let mut visited = Vec::new();
        self.probe_list(top, EntryKind::Target, None, &mut visited, &mut entries)?;

        for e in entries {
            let m = e.module;
            let name = self.mods[m].name.clone();
            let options = config.options_for(&name, self.mods[m].alias.as_deref());
            let install = match &self.mods[m].install {
                Some(c) => Some(c.clone()),
                None => config
                    .install_for(&name)
                    .map(|c| (c.command.clone(), c.place())),
            };
            // kmod's module_options_concat leaves a space after non-empty options.
            let shown = if options.is_empty() {
                String::new()
            } else {
                format!("{options} ")
            };
            let ignore_cmd = self.has_softdeps(m);
            if self.mods[m].path.is_none() {
                self.deps(m)?;
            }
            let builtin =
                self.mods[m].builtin || self.db.is_builtin(&name).map_err(|e| self.err(e))?;
            // What modprobe would do, for --show-depends: kmod ignores the install
            // command of a module that has softdeps and inserts the module instead.
            let line = match (&install, &self.mods[m].path) {
                (Some((command, _)), _) if !ignore_cmd => {
                    Some(format!("install {command} {shown}"))
                }
                (_, Some(path)) => Some(format!("insmod {path} {shown}")),
                (_, None) if builtin => Some(format!("builtin {name}")),
                (_, None) => None,
            };
            plan.modprobe_lines.extend(line);
            // What modgate does: it never runs install commands, and an admin's
            // `install NAME /bin/false` means "never load NAME", softdeps or not.
            let action = match (&install, &self.mods[m].path) {
                (Some((command, source)), _) => Action::Disabled {
                    command: command.clone(),
                    source: source.clone(),
                },
                (None, Some(path)) => match self.state(&name, kernel) {
                    ModState::Live => Action::Loaded,
                    ModState::Coming => Action::Coming,
                    ModState::Builtin => Action::Builtin,
                    ModState::Going | ModState::Absent => Action::Insert {
                        path: path.clone(),
                        options: options.clone(),
                    },
                },
                (None, None) if builtin => Action::Builtin,
                (None, None) => Action::Missing,
            };
            let reason = match (e.kind, e.reason_of) {
                (EntryKind::Target, _) | (_, None) => Reason::Requested {
                    name: asked.to_string(),
                },
                (EntryKind::Dep, Some(p)) => Reason::Dependency {
                    of: self.mods[p].name.clone(),
                },
                (EntryKind::Pre, Some(p)) => Reason::SoftdepPre {
                    of: self.mods[p].name.clone(),
                },
                (EntryKind::Post, Some(p)) => Reason::SoftdepPost {
                    of: self.mods[p].name.clone(),
                },
            };
            let step = Step {
                module: name,
                action,
                reason,
                required: required.contains(&m),
            };
            plan.push_step(step);
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;
