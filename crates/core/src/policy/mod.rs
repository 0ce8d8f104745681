//! The policy gate: which container may load which module. Evaluated on the resolved
//! plan before anything touches the kernel: `deny` against the whole closure, `allow`
//! against the requested modules, plus aliases, limits, blacklists and install commands.
//! A policy file overrides the built-in default key by key (`layer`); the integrity keys
//! (`integrity`) say what a module file must be before the kernel gets it.

mod integrity;
mod layer;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

pub use integrity::{Integrity, Vermagic};
pub use layer::{Origin, Widening, KEYS};
pub use modgate_integrity::{Sha256Pin, Taint};

use crate::fnmatch::fnmatch;
use crate::plan::{Action, Plan, Reason};

/// The built-in default, used when there is no policy file.
pub const DEFAULT_POLICY: &str = include_str!("../../default-policy.toml");
pub const DEFAULT_SOURCE: &str = "built-in default policy";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Allowlist,
    Permissive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unload {
    Never,
    OnLastRelease,
}

/// The effective policy: the built-in default with a policy file's keys over it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Policy {
    pub mode: Mode,
    pub allow: Vec<String>,
    pub deny: Vec<String>,
    pub allow_aliases: bool,
    pub max_modules: usize,
    pub require_annotations: BTreeMap<String, String>,
    pub unload: Unload,
    /// Modules (globs) modgate never removes, whatever `unload` says: for users it cannot
    /// see (a setting like `br_netfilter`'s, devices in other network namespaces).
    pub never_unload: Vec<String>,
    #[serde(flatten)]
    pub integrity: Integrity,
    /// Where the policy came from, for messages: the file, or the built-in default.
    #[serde(skip)]
    pub source: String,
    /// Where each key's value came from.
    #[serde(skip)]
    pub origins: BTreeMap<&'static str, Origin>,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid policy {source_file}: {}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct PolicyError {
    pub source_file: String,
    /// The line the error is on, where the TOML parser could tell.
    pub line: Option<usize>,
    pub message: String,
}

/// A refusal: which module, and why, citing the policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("module {module:?}{context} denied by policy {policy}: {reason}")]
pub struct Denial {
    pub module: String,
    /// ` (dependency of ip_vs)` when the module was not asked for directly.
    pub context: String,
    pub policy: String,
    pub reason: String,
}

/// Why a request was allowed, one line per requested module.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Allowed {
    pub module: String,
    pub rule: String,
}

impl Policy {
    /// The `never_unload` pattern that matches `module`, if one does.
    pub fn never_unloads(&self, module: &str) -> Option<&str> {
        self.never_unload
            .iter()
            .find(|g| fnmatch(g, module))
            .map(String::as_str)
    }

    /// A policy file over the built-in default: the keys it sets replace the default's,
    /// the others keep the default's values.
    pub fn parse(source: &str, text: &str) -> Result<Self, PolicyError> {
        let mut p = Self::builtin_default();
        layer::apply(&mut p, source, text)?;
        Ok(p)
    }

    /// The built-in default, which sets every key. Parsed once per process: every
    /// policy file is layered over it, and `widening` compares against it.
    pub fn builtin_default() -> Self {
        static DEFAULT: OnceLock<Policy> = OnceLock::new();
        DEFAULT
            .get_or_init(|| match layer::default_policy() {
                Ok(p) => p,
                // The default ships inside the binary and is parsed by a unit test.
                Err(e) => panic!("built-in default policy does not parse: {e}"),
            })
            .clone()
    }

    fn deny(&self, module: &str, context: String, reason: String) -> Denial {
        Denial {
            module: module.to_string(),
            context,
            policy: self.source.clone(),
            reason,
        }
    }

    /// Decides a container's request: the plan of what it means, and the container's
    /// annotations. `requested` are the names as the container gave them.
    pub fn check(
        &self,
        requested: &[&str],
        plan: &Plan,
        annotations: &BTreeMap<String, String>,
    ) -> Result<Vec<Allowed>, Denial> {
        let first = requested.first().copied().unwrap_or("");
        for (k, v) in &self.require_annotations {
            if annotations.get(k) != Some(v) {
                return Err(self.deny(
                    first,
                    String::new(),
                    format!("the container lacks the annotation {k}={v} that the policy requires"),
                ));
            }
        }
        if requested.len() > self.max_modules {
            return Err(self.deny(
                first,
                String::new(),
                format!(
                    "{} modules requested, max_modules is {}",
                    requested.len(),
                    self.max_modules
                ),
            ));
        }
        for t in &plan.targets {
            if !self.allow_aliases && !t.via.is_module_name() {
                return Err(self.deny(
                    &t.requested,
                    String::new(),
                    format!(
                        "it is an alias of {:?} and allow_aliases is false (request module names)",
                        t.module
                    ),
                ));
            }
            if let Some(file) = &t.blacklisted {
                return Err(self.deny(&t.module, String::new(), format!("blacklisted in {file}")));
            }
        }
        for s in &plan.steps {
            let context = match &s.reason {
                Reason::Requested { .. } => String::new(),
                Reason::Dependency { of } => format!(" (dependency of {of})"),
                Reason::SoftdepPre { of } | Reason::SoftdepPost { of } => {
                    format!(" (softdep of {of})")
                }
            };
            if let Some(g) = self.deny.iter().find(|g| fnmatch(g, &s.module)) {
                return Err(self.deny(&s.module, context, format!("listed in deny ({g})")));
            }
            // A soft dependency is an optional extra that modprobe.d or the module itself
            // asks for, not something the requested module needs: it must be allowed in
            // its own right, or any allowed module could bring in anything.
            let softdep = matches!(
                s.reason,
                Reason::SoftdepPre { .. } | Reason::SoftdepPost { .. }
            );
            if softdep
                && self.mode == Mode::Allowlist
                && matches!(s.action, Action::Insert { .. })
                && !self.allow.iter().any(|g| fnmatch(g, &s.module))
            {
                return Err(self.deny(
                    &s.module,
                    context,
                    "a soft dependency not in the allow list (allow it, or remove the softdep)"
                        .into(),
                ));
            }
            // modgate never runs install commands, so a module an admin gave one is never
            // loaded: not when asked for, not as a dependency or softdep of something else.
            if let Action::Disabled { source, .. } = &s.action {
                return Err(self.deny(
                    &s.module,
                    context,
                    format!("disabled by install command in {source}"),
                ));
            }
        }
        let mut allowed = Vec::new();
        for t in &plan.targets {
            let rule = match self.mode {
                Mode::Permissive => "permissive mode, not denied".to_string(),
                Mode::Allowlist => match self.allow.iter().find(|g| fnmatch(g, &t.module)) {
                    Some(g) => format!("allow {g}"),
                    None => {
                        return Err(self.deny(
                            &t.module,
                            String::new(),
                            "not in the allow list".to_string(),
                        ));
                    }
                },
            };
            allowed.push(Allowed {
                module: t.module.clone(),
                rule,
            });
        }
        Ok(allowed)
    }
}

#[cfg(test)]
mod tests;
