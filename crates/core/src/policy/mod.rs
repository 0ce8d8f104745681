//! The policy gate: which container may load which module. Evaluated on the resolved
//! plan before anything touches the kernel: `deny` against the whole closure, `allow`
//! against the requested modules, plus aliases, limits, blacklists and install commands.
//! A policy file overrides the built-in default key by key (`layer`); the integrity keys
//! (`integrity`) say what a module file must be before the kernel gets it.

mod integrity;
mod layer;

use std::collections::BTreeMap;

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
    /// A policy file over the built-in default: the keys it sets replace the default's,
    /// the others keep the default's values.
    pub fn parse(source: &str, text: &str) -> Result<Self, PolicyError> {
        let mut p = Self::builtin_default();
        layer::apply(&mut p, source, text)?;
        Ok(p)
    }

    /// The built-in default, which sets every key.
    pub fn builtin_default() -> Self {
        match layer::default_policy() {
            Ok(p) => p,
            // The default ships inside the binary and is parsed by a unit test.
            Err(e) => panic!("built-in default policy does not parse: {e}"),
        }
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
            if let (Action::Disabled { source, .. }, Reason::Requested { .. }) =
                (&s.action, &s.reason)
            {
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
mod tests {
    use super::*;
    use crate::plan::{Step, Target, Via};

    fn plan(targets: &[(&str, Via)], steps: &[(&str, Reason)]) -> Plan {
        let mut p = Plan::default();
        for (m, via) in targets {
            p.targets.push(Target {
                requested: m.to_string(),
                module: m.to_string(),
                via: via.clone(),
                blacklisted: None,
            });
        }
        for (m, r) in steps {
            p.steps.push(Step {
                module: m.to_string(),
                action: Action::Insert {
                    path: format!("/x/{m}.ko"),
                    options: String::new(),
                },
                reason: r.clone(),
                required: true,
            });
        }
        p
    }

    fn req(m: &str) -> Reason {
        Reason::Requested { name: m.into() }
    }

    #[test]
    fn default_policy_parses_and_allows_the_seed_example() {
        let p = Policy::builtin_default();
        assert_eq!(p.mode, Mode::Allowlist);
        let dep = |of: &str| Reason::Dependency { of: of.into() };
        let pl = plan(
            &[("ip_vs", Via::Name), ("ip_vs_wrr", Via::Name)],
            &[
                ("libcrc32c", dep("ip_vs")),
                ("nf_conntrack", dep("ip_vs")),
                ("ip_vs", req("ip_vs")),
                ("ip_vs_wrr", req("ip_vs_wrr")),
            ],
        );
        let ok = p
            .check(&["ip_vs", "ip_vs_wrr"], &pl, &BTreeMap::new())
            .unwrap();
        assert_eq!(ok[0].rule, "allow ip_vs");
    }

    #[test]
    fn default_policy_denies_dccp_and_unlisted() {
        let p = Policy::builtin_default();
        let e = p
            .check(
                &["dccp"],
                &plan(&[("dccp", Via::Name)], &[("dccp", req("dccp"))]),
                &BTreeMap::new(),
            )
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "module \"dccp\" denied by policy built-in default policy: listed in deny (dccp*)"
        );
        let e = p
            .check(
                &["e1000e"],
                &plan(&[("e1000e", Via::Name)], &[("e1000e", req("e1000e"))]),
                &BTreeMap::new(),
            )
            .unwrap_err();
        assert_eq!(e.reason, "not in the allow list");
    }

    #[test]
    fn deny_covers_the_whole_closure() {
        let p = Policy::parse(
            "/etc/modgate/policy.toml",
            "mode = \"permissive\"\ndeny = [\"libcrc32c\"]\n",
        )
        .unwrap();
        let pl = plan(
            &[("ip_vs", Via::Name)],
            &[
                ("libcrc32c", Reason::Dependency { of: "ip_vs".into() }),
                ("ip_vs", req("ip_vs")),
            ],
        );
        let e = p.check(&["ip_vs"], &pl, &BTreeMap::new()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "module \"libcrc32c\" (dependency of ip_vs) denied by policy /etc/modgate/policy.toml: listed in deny (libcrc32c)"
        );
    }

    #[test]
    fn aliases_annotations_and_limits() {
        let p = Policy::parse(
            "p",
            "mode = \"permissive\"\nmax_modules = 2\n[require_annotations]\n\"system.container\" = \"true\"\n",
        )
        .unwrap();
        let mut ann = BTreeMap::new();
        let pl = plan(&[("dummy", Via::Name)], &[("dummy", req("dummy"))]);
        assert!(p
            .check(&["dummy"], &pl, &ann)
            .unwrap_err()
            .reason
            .contains("system.container=true"));
        ann.insert("system.container".to_string(), "true".to_string());
        assert!(p.check(&["dummy"], &pl, &ann).is_ok());
        assert!(p
            .check(&["a", "b", "c"], &pl, &ann)
            .unwrap_err()
            .reason
            .contains("max_modules is 2"));
        let alias = plan(
            &[("dummy", Via::Alias)],
            &[("dummy", req("rtnl-link-dummy"))],
        );
        assert!(p
            .check(&["rtnl-link-dummy"], &alias, &ann)
            .unwrap_err()
            .reason
            .contains("allow_aliases is false"));
    }

    #[test]
    fn blacklisted_and_install_disabled_are_denied() {
        let p = Policy::parse("p", "mode = \"permissive\"\n").unwrap();
        let mut pl = plan(&[("veth", Via::Name)], &[("veth", req("veth"))]);
        pl.targets[0].blacklisted = Some("/etc/modprobe.d/b.conf".into());
        assert_eq!(
            p.check(&["veth"], &pl, &BTreeMap::new())
                .unwrap_err()
                .reason,
            "blacklisted in /etc/modprobe.d/b.conf"
        );
        let mut pl = plan(&[("ksmbd", Via::Name)], &[("ksmbd", req("ksmbd"))]);
        pl.steps[0].action = Action::Disabled {
            command: "/bin/false".into(),
            source: "/etc/modprobe.d/x.conf".into(),
        };
        assert!(p
            .check(&["ksmbd"], &pl, &BTreeMap::new())
            .unwrap_err()
            .reason
            .contains("install command"));
    }

    #[test]
    fn softdeps_must_be_allowed_in_their_own_right() {
        let softdep = |of: &str| Reason::SoftdepPre { of: of.into() };
        let p = Policy::parse("p", "allow = [\"ip_vs\", \"libcrc32c\"]\n").unwrap();
        let pl = plan(
            &[("ip_vs", Via::Name)],
            &[
                ("crc32c_generic", softdep("libcrc32c")),
                ("libcrc32c", Reason::Dependency { of: "ip_vs".into() }),
                ("ip_vs", req("ip_vs")),
            ],
        );
        let e = p.check(&["ip_vs"], &pl, &BTreeMap::new()).unwrap_err();
        assert_eq!(e.module, "crc32c_generic");
        assert_eq!(e.context, " (softdep of libcrc32c)");
        assert!(e.reason.contains("soft dependency"), "{e}");
        // Allowed by name, it loads; a hard dependency needs no allow entry.
        let p = Policy::parse("p", "allow = [\"ip_vs\", \"crc32c*\"]\n").unwrap();
        assert!(p.check(&["ip_vs"], &pl, &BTreeMap::new()).is_ok());
        // Permissive mode lets softdeps through unless denied.
        let p = Policy::parse("p", "mode = \"permissive\"\n").unwrap();
        assert!(p.check(&["ip_vs"], &pl, &BTreeMap::new()).is_ok());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let e = Policy::parse("p", "mode = \"allowlist\"\nalow = []\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid policy p: line 2: unknown field `alow`"),
            "{e}"
        );
        assert!(Policy::parse("p", "mode = \"yolo\"\n").is_err());
        // Every key is optional: the file's keys lie over the built-in default.
        let empty = Policy::parse("p", "allow = []\n").unwrap();
        assert_eq!(empty.mode, Mode::Allowlist);
        assert!(empty.allow.is_empty());
        let p = Policy::parse(
            "p",
            "mode = \"allowlist\"\nunload = \"on-last-release\"\nallow = [\"ip-vs*\"]\n",
        )
        .unwrap();
        assert_eq!(p.unload, Unload::OnLastRelease);
        assert_eq!(p.allow, ["ip_vs*"]);
    }
}
