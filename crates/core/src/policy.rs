//! The policy gate: which container may load which module. Evaluated on the resolved
//! plan before anything touches the kernel: `deny` against the whole closure, `allow`
//! against the requested modules, plus aliases, limits, blacklists and install commands.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::fnmatch::fnmatch;
use crate::name::underscores;
use crate::plan::{Action, Plan, Reason};

/// The built-in default, used when there is no policy file.
pub const DEFAULT_POLICY: &str = include_str!("../default-policy.toml");
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

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub mode: Mode,
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
    #[serde(default)]
    pub allow_aliases: bool,
    #[serde(default = "default_max")]
    pub max_modules: usize,
    #[serde(default)]
    pub require_annotations: BTreeMap<String, String>,
    #[serde(default = "default_unload")]
    pub unload: Unload,
    /// Where the policy came from, for messages.
    #[serde(skip)]
    pub source: String,
}

fn default_max() -> usize {
    16
}

fn default_unload() -> Unload {
    Unload::Never
}

#[derive(Debug, thiserror::Error)]
#[error("invalid policy {source_file}: line {line}: {message}")]
pub struct PolicyError {
    pub source_file: String,
    pub line: usize,
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
    pub fn parse(source: &str, text: &str) -> Result<Self, PolicyError> {
        let mut p: Policy = toml::from_str(text).map_err(|e| {
            let at = e.span().map(|s| s.start).unwrap_or(0).min(text.len());
            PolicyError {
                source_file: source.to_string(),
                line: text[..at].matches('\n').count() + 1,
                message: e.message().trim().replace('\n', " "),
            }
        })?;
        p.source = source.to_string();
        p.allow = p.allow.iter().map(|g| underscores(g)).collect();
        p.deny = p.deny.iter().map(|g| underscores(g)).collect();
        Ok(p)
    }

    pub fn builtin_default() -> Self {
        match Self::parse(DEFAULT_SOURCE, DEFAULT_POLICY) {
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
        let mut pl = plan(&[("cramfs", Via::Name)], &[("cramfs", req("cramfs"))]);
        pl.steps[0].action = Action::Disabled {
            command: "/bin/false".into(),
            source: "/etc/modprobe.d/x.conf".into(),
        };
        assert!(p
            .check(&["cramfs"], &pl, &BTreeMap::new())
            .unwrap_err()
            .reason
            .contains("install command"));
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
        assert!(
            Policy::parse("p", "allow = []\n").is_err(),
            "mode is required"
        );
        let p = Policy::parse(
            "p",
            "mode = \"allowlist\"\nunload = \"on-last-release\"\nallow = [\"ip-vs*\"]\n",
        )
        .unwrap();
        assert_eq!(p.unload, Unload::OnLastRelease);
        assert_eq!(p.allow, ["ip_vs*"]);
    }
}
