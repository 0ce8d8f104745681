//! Policy files over the built-in default, key by key: a file that sets only `unload`
//! keeps the default's allow and deny lists. Each key remembers where its value came
//! from, and a key that lets more through than the default is named as widening it.

use std::collections::BTreeMap;

use serde::Deserialize;

use modgate_integrity::{Sha256Pin, Taint};

use super::integrity::{Integrity, Vermagic};
use super::{Mode, Policy, PolicyError, Unload, DEFAULT_POLICY, DEFAULT_SOURCE};
use crate::name::underscores;

/// Where a key's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => f.write_str(DEFAULT_SOURCE),
            Origin::File(path) => f.write_str(path),
        }
    }
}

/// A key whose value lets more through than the built-in default's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Widening {
    pub key: &'static str,
    pub why: String,
}

/// A policy file as written: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    mode: Option<Mode>,
    allow: Option<Vec<String>>,
    deny: Option<Vec<String>>,
    allow_aliases: Option<bool>,
    max_modules: Option<usize>,
    require_annotations: Option<BTreeMap<String, String>>,
    unload: Option<Unload>,
    never_unload: Option<Vec<String>>,
    require_signature: Option<bool>,
    trusted_certs: Option<Vec<String>>,
    pins: Option<BTreeMap<String, String>>,
    vermagic: Option<Vermagic>,
    deny_taint: Option<Taint>,
}

/// Every key, in the order `policy show` prints them.
pub const KEYS: &[&str] = &[
    "mode",
    "allow",
    "deny",
    "allow_aliases",
    "max_modules",
    "require_annotations",
    "unload",
    "never_unload",
    "require_signature",
    "trusted_certs",
    "pins",
    "vermagic",
    "deny_taint",
];

fn read(source: &str, text: &str) -> Result<PolicyFile, PolicyError> {
    toml::from_str(text).map_err(|e| {
        let at = e.span().map(|s| s.start).unwrap_or(0).min(text.len());
        PolicyError {
            source_file: source.to_string(),
            line: Some(text[..at].matches('\n').count() + 1),
            message: e.message().trim().replace('\n', " "),
        }
    })
}

/// The built-in default: a file that must set every key.
pub(super) fn default_policy() -> Result<Policy, PolicyError> {
    let f = read(DEFAULT_SOURCE, DEFAULT_POLICY)?;
    let missing = |key: &str| PolicyError {
        source_file: DEFAULT_SOURCE.to_string(),
        line: None,
        message: format!("the default must set {key}"),
    };
    let mut p = Policy {
        mode: f.mode.ok_or_else(|| missing("mode"))?,
        allow: Vec::new(),
        deny: Vec::new(),
        allow_aliases: f.allow_aliases.ok_or_else(|| missing("allow_aliases"))?,
        max_modules: f.max_modules.ok_or_else(|| missing("max_modules"))?,
        require_annotations: BTreeMap::new(),
        unload: f.unload.ok_or_else(|| missing("unload"))?,
        never_unload: Vec::new(),
        integrity: Integrity {
            require_signature: f
                .require_signature
                .ok_or_else(|| missing("require_signature"))?,
            trusted_certs: Vec::new(),
            pins: BTreeMap::new(),
            vermagic: f.vermagic.ok_or_else(|| missing("vermagic"))?,
            deny_taint: Taint::default(),
        },
        source: DEFAULT_SOURCE.to_string(),
        origins: KEYS.iter().map(|k| (*k, Origin::Default)).collect(),
    };
    for key in [
        "allow",
        "deny",
        "require_annotations",
        "never_unload",
        "trusted_certs",
        "pins",
        "deny_taint",
    ] {
        let set = match key {
            "allow" => f.allow.is_some(),
            "never_unload" => f.never_unload.is_some(),
            "deny" => f.deny.is_some(),
            "require_annotations" => f.require_annotations.is_some(),
            "trusted_certs" => f.trusted_certs.is_some(),
            "pins" => f.pins.is_some(),
            _ => f.deny_taint.is_some(),
        };
        if !set {
            return Err(missing(key));
        }
    }
    overlay(&mut p, DEFAULT_SOURCE, f, &Origin::Default)?;
    Ok(p)
}

/// Lays the keys a file sets over `p`.
pub(super) fn apply(p: &mut Policy, source: &str, text: &str) -> Result<(), PolicyError> {
    let f = read(source, text)?;
    p.source = source.to_string();
    overlay(p, source, f, &Origin::File(source.to_string()))
}

fn overlay(p: &mut Policy, source: &str, f: PolicyFile, from: &Origin) -> Result<(), PolicyError> {
    let mut set = |key: &'static str| {
        p.origins.insert(key, from.clone());
    };
    let error = |message: String| PolicyError {
        source_file: source.to_string(),
        line: None,
        message,
    };
    let pins = match f.pins {
        Some(pins) => {
            let mut out = BTreeMap::new();
            for (module, pin) in pins {
                let pin: Sha256Pin = pin
                    .parse()
                    .map_err(|m| error(format!("[pins] {module}: {m}")))?;
                out.insert(underscores(&module), pin);
            }
            set("pins");
            Some(out)
        }
        None => None,
    };
    let deny_taint = f.deny_taint;
    let globs = |v: Vec<String>| v.iter().map(|g| underscores(g)).collect::<Vec<_>>();
    for (key, given) in [
        ("mode", f.mode.is_some()),
        ("allow", f.allow.is_some()),
        ("deny", f.deny.is_some()),
        ("allow_aliases", f.allow_aliases.is_some()),
        ("max_modules", f.max_modules.is_some()),
        ("require_annotations", f.require_annotations.is_some()),
        ("unload", f.unload.is_some()),
        ("never_unload", f.never_unload.is_some()),
        ("require_signature", f.require_signature.is_some()),
        ("trusted_certs", f.trusted_certs.is_some()),
        ("vermagic", f.vermagic.is_some()),
        ("deny_taint", deny_taint.is_some()),
    ] {
        if given {
            set(key);
        }
    }
    let i = &mut p.integrity;
    i.require_signature = f.require_signature.unwrap_or(i.require_signature);
    i.trusted_certs = f
        .trusted_certs
        .unwrap_or(std::mem::take(&mut i.trusted_certs));
    i.pins = pins.unwrap_or(std::mem::take(&mut i.pins));
    i.vermagic = f.vermagic.unwrap_or(i.vermagic);
    i.deny_taint = deny_taint.unwrap_or(i.deny_taint);
    if i.require_signature && i.trusted_certs.is_empty() {
        return Err(error(
            "require_signature = true needs at least one trusted_certs entry".into(),
        ));
    }
    p.mode = f.mode.unwrap_or(p.mode);
    p.allow = f.allow.map(globs).unwrap_or(std::mem::take(&mut p.allow));
    p.deny = f.deny.map(globs).unwrap_or(std::mem::take(&mut p.deny));
    p.allow_aliases = f.allow_aliases.unwrap_or(p.allow_aliases);
    p.max_modules = f.max_modules.unwrap_or(p.max_modules);
    p.require_annotations = f
        .require_annotations
        .unwrap_or(std::mem::take(&mut p.require_annotations));
    p.unload = f.unload.unwrap_or(p.unload);
    p.never_unload = f
        .never_unload
        .map(globs)
        .unwrap_or(std::mem::take(&mut p.never_unload));
    Ok(())
}

impl Policy {
    /// The keys whose values let more through than the built-in default: a more lenient
    /// mode, aliases, a larger request, allow patterns or fewer deny patterns than the
    /// default's, weaker integrity rules.
    pub fn widening(&self) -> Vec<Widening> {
        let d = Policy::builtin_default();
        let mut out = Vec::new();
        let mut push = |key, why: String| out.push(Widening { key, why });
        if self.mode == Mode::Permissive && d.mode == Mode::Allowlist {
            push(
                "mode",
                "permissive allows every module that is not denied".into(),
            );
        }
        if self.allow_aliases && !d.allow_aliases {
            push("allow_aliases", "containers may request aliases".into());
        }
        if self.max_modules > d.max_modules {
            push(
                "max_modules",
                format!(
                    "{} names per request, default {}",
                    self.max_modules, d.max_modules
                ),
            );
        }
        let extra: Vec<&str> = self
            .allow
            .iter()
            .filter(|g| !d.allow.contains(g))
            .map(String::as_str)
            .collect();
        if !extra.is_empty() {
            push(
                "allow",
                format!("allows {} beyond the default", extra.join(", ")),
            );
        }
        let dropped: Vec<&str> = d
            .deny
            .iter()
            .filter(|g| !self.deny.contains(g))
            .map(String::as_str)
            .collect();
        if !dropped.is_empty() {
            push("deny", format!("no longer denies {}", dropped.join(", ")));
        }
        if d.integrity.require_signature && !self.integrity.require_signature {
            push(
                "require_signature",
                "signatures are no longer required".into(),
            );
        }
        if d.integrity.vermagic == Vermagic::Match && self.integrity.vermagic == Vermagic::Any {
            push(
                "vermagic",
                "modules built for another kernel are no longer refused".into(),
            );
        }
        let untainted = d
            .integrity
            .deny_taint
            .difference(&self.integrity.deny_taint)
            .names();
        if !untainted.is_empty() {
            push(
                "deny_taint",
                format!("no longer refuses {}", untainted.join(", ")),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_in_the_default_and_the_key_list() {
        let d = Policy::builtin_default();
        assert_eq!(d.origins.len(), KEYS.len());
        assert!(d.origins.values().all(|o| *o == Origin::Default));
        assert!(d.widening().is_empty());
    }

    #[test]
    fn a_file_that_sets_one_key_keeps_the_rest_of_the_default() {
        let d = Policy::builtin_default();
        let p =
            Policy::parse("/etc/modgate/policy.toml", "unload = \"on-last-release\"\n").unwrap();
        assert_eq!(p.unload, Unload::OnLastRelease);
        assert_eq!(p.mode, Mode::Allowlist);
        assert_eq!(p.allow, d.allow);
        assert_eq!(p.deny, d.deny);
        assert_eq!(
            p.origins["unload"],
            Origin::File("/etc/modgate/policy.toml".into())
        );
        assert_eq!(p.origins["allow"], Origin::Default);
        assert_eq!(p.source, "/etc/modgate/policy.toml");
        assert!(p.widening().is_empty());
    }

    #[test]
    fn never_unload_has_a_default_and_a_file_replaces_it() {
        let d = Policy::builtin_default();
        assert_eq!(d.never_unloads("br_netfilter"), Some("br_netfilter"));
        assert_eq!(d.never_unloads("veth"), None);
        let p = Policy::parse("p", "never_unload = [\"veth\", \"ip-vs*\"]\n").unwrap();
        assert_eq!(p.never_unload, ["veth", "ip_vs*"]);
        assert_eq!(p.never_unloads("ip_vs_wrr"), Some("ip_vs*"));
        assert_eq!(
            p.never_unloads("br_netfilter"),
            None,
            "the file's list replaces the default's"
        );
        assert_eq!(p.origins["never_unload"], Origin::File("p".into()));
        let p = Policy::parse("p", "unload = \"on-last-release\"\n").unwrap();
        assert_eq!(p.never_unload, d.never_unload);
        assert_eq!(p.origins["never_unload"], Origin::Default);
        assert!(Policy::parse("p", "never_unload = \"veth\"\n").is_err());
    }

    #[test]
    fn widening_keys_are_named() {
        let p = Policy::parse(
            "p",
            "mode = \"permissive\"\nallow_aliases = true\nmax_modules = 64\nallow = [\"e1000e\"]\ndeny = [\"dccp*\"]\n",
        )
        .unwrap();
        let keys: Vec<&str> = p.widening().iter().map(|w| w.key).collect();
        assert_eq!(
            keys,
            ["mode", "allow_aliases", "max_modules", "allow", "deny"]
        );
        let deny = p.widening().into_iter().find(|w| w.key == "deny").unwrap();
        assert!(deny.why.contains("sctp*"), "{}", deny.why);
        assert!(!deny.why.contains("dccp*"), "{}", deny.why);
    }

    #[test]
    fn integrity_keys_parse_and_are_checked() {
        let hex = "ab".repeat(32);
        let p = Policy::parse(
            "p",
            &format!(
                "require_signature = true\ntrusted_certs = [\"/etc/modgate/certs\"]\nvermagic = \"match\"\ndeny_taint = [\"unsigned\", \"out-of-tree\", \"unsigned\"]\n[pins]\nip-vs = \"sha256:{hex}\"\n"
            ),
        )
        .unwrap();
        let i = &p.integrity;
        assert!(i.require_signature && i.checks_files());
        assert_eq!(i.vermagic, Vermagic::Match);
        assert_eq!(i.deny_taint.names(), ["out-of-tree", "unsigned"]);
        assert_eq!(i.pins["ip_vs"].to_string(), format!("sha256:{hex}"));
        assert!(!Policy::builtin_default().integrity.checks_files());

        let e = Policy::parse("p", "[pins]\nip_vs = \"md5:00\"\n").unwrap_err();
        assert!(e.to_string().contains("[pins] ip_vs"), "{e}");
        let e = Policy::parse("p", "require_signature = true\ntrusted_certs = []\n").unwrap_err();
        assert!(e.to_string().contains("trusted_certs"), "{e}");
        assert!(Policy::parse("p", "deny_taint = [\"sparkly\"]\n").is_err());
        assert!(Policy::parse("p", "vermagic = \"close\"\n").is_err());
    }
}
