//! The policy gate's decisions on hand-made plans.

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
fn an_install_command_disables_a_module_pulled_in_too() {
    let p = Policy::parse("p", "mode = \"permissive\"\n").unwrap();
    let mut pl = plan(
        &[("xt_LOG", Via::Name)],
        &[
            (
                "nf_log_syslog",
                Reason::SoftdepPre {
                    of: "xt_LOG".into(),
                },
            ),
            ("xt_LOG", req("xt_LOG")),
        ],
    );
    pl.steps[0].action = Action::Disabled {
        command: "/bin/false".into(),
        source: "/etc/modprobe.d/off.conf line 3".into(),
    };
    let e = p.check(&["xt_LOG"], &pl, &BTreeMap::new()).unwrap_err();
    assert_eq!(e.module, "nf_log_syslog");
    assert_eq!(e.context, " (softdep of xt_LOG)");
    assert_eq!(
        e.reason,
        "disabled by install command in /etc/modprobe.d/off.conf line 3"
    );
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
