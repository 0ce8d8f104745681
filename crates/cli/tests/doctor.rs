//! `modgate doctor` against fixture roots: one line per check, JSON with --json, and an
//! exit status that is non-zero exactly when something blocks modgate.

mod realrt;

use std::path::Path;
use std::process::{Command, Output};

use realrt::*;
use serde_json::Value;

/// A host that can run modgate, with podman and Docker wired in.
fn good_host(d: &Path) -> std::path::PathBuf {
    let root = fixture_root(d, &[]);
    let w = |rel: &str, text: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    };
    w("proc/modules", "");
    w("proc/sys/kernel/modules_disabled", "0\n");
    w(
        "proc/self/status",
        "Name:\tmodgate\nCapEff:\t000001ffffffffff\n",
    );
    w("sys/module/module/parameters/sig_enforce", "N\n");
    w(
        "sys/kernel/security/lockdown",
        "[none] integrity confidentiality\n",
    );
    // The fixture's module files predate this index.
    w("lib/modules/6.1.0-fixture/modules.dep.bin", "");
    w("usr/bin/podman", "");
    w("usr/bin/runc", "");
    w("usr/local/bin/modgate", "#!/bin/sh\n");
    std::fs::create_dir_all(root.join("usr/local/bin")).expect("mkdir");
    std::os::unix::fs::symlink("modgate", root.join("usr/local/bin/modgate-runtime"))
        .expect("link");
    use std::os::unix::fs::PermissionsExt;
    for f in ["usr/local/bin/modgate", "usr/bin/runc"] {
        std::fs::set_permissions(root.join(f), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    for target in [&["hooks-d"][..], &["docker"]] {
        let out = Command::new(MODGATE)
            .arg("--root")
            .arg(&root)
            .arg("install")
            .args(target)
            .args(["--binary", "/usr/local/bin/modgate"])
            .output()
            .expect("install");
        assert!(out.status.success(), "install {target:?}");
    }
    root
}

fn doctor(root: &Path, json: bool) -> Output {
    let mut c = Command::new(MODGATE);
    c.arg("--root").arg(root).arg("doctor");
    if json {
        c.arg("--json");
    }
    run(&mut c, "modgate doctor")
}

fn statuses(root: &Path) -> (bool, Vec<(String, String)>) {
    let out = doctor(root, true);
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        v["ok"],
        Value::Bool(out.status.success()),
        "exit status and \"ok\" disagree"
    );
    let checks = v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().expect("name").to_string(),
                c["status"].as_str().expect("status").to_string(),
            )
        })
        .collect();
    (out.status.success(), checks)
}

fn status_of<'a>(checks: &'a [(String, String)], name: &str) -> &'a str {
    checks
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, s)| s.as_str())
        .unwrap_or("absent")
}

#[test]
fn a_good_host_passes() {
    if !can_run("a_good_host_passes", &[]) {
        return;
    }
    let t = tempfile::tempdir().expect("tempdir");
    let root = good_host(t.path());
    let (ok, checks) = statuses(&root);
    assert!(ok, "{checks:?}");
    for (name, want) in [
        ("kernel modules", "ok"),
        ("modules_disabled", "ok"),
        ("signatures", "ok"),
        ("CAP_SYS_MODULE", "ok"),
        ("module directory", "ok"),
        ("policy", "ok"),
        ("engine iSulad", "skip"),
        ("engine podman", "ok"),
        ("engine CRI-O", "ok"),
        ("engine Docker", "ok"),
        ("engine containerd", "skip"),
        ("runtime wrapper", "ok"),
    ] {
        assert_eq!(status_of(&checks, name), want, "{name}: {checks:?}");
    }
    let text = stdout(&doctor(&root, false));
    assert_eq!(text.lines().count(), checks.len(), "{text}");
    assert!(text.lines().any(|l| l.starts_with("ok    engine podman: ")
            && l.contains("/usr/share/containers/oci/hooks.d/modgate-prestart.json runs /usr/local/bin/modgate at prestart (always)")), "{text}");
}

#[test]
fn what_blocks_modgate_fails() {
    if !can_run("what_blocks_modgate_fails", &[]) {
        return;
    }
    // (what to break, the check that fails)
    type Break = fn(&Path);
    let cases: &[(Break, &str)] = &[
        (
            |r| std::fs::remove_file(r.join("proc/modules")).expect("rm"),
            "kernel modules",
        ),
        (
            |r| std::fs::write(r.join("proc/sys/kernel/modules_disabled"), "1\n").expect("w"),
            "modules_disabled",
        ),
        (
            |r| {
                std::fs::write(r.join("proc/self/status"), "CapEff:\t00000000a80425fb\n")
                    .expect("w")
            },
            "CAP_SYS_MODULE",
        ),
        (
            |r| std::fs::remove_dir_all(r.join("lib/modules")).expect("rm"),
            "module directory",
        ),
        (
            |r| {
                std::fs::create_dir_all(r.join("etc/modgate")).expect("mkdir");
                std::fs::write(
                    r.join("etc/modgate/policy.toml"),
                    "mode = \"allowlist\"\nallow = [\n",
                )
                .expect("w")
            },
            "policy",
        ),
        (
            |r| std::fs::remove_file(r.join("usr/local/bin/modgate")).expect("rm"),
            "engine podman",
        ),
        (
            |r| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(
                    r.join("usr/local/bin/modgate"),
                    std::fs::Permissions::from_mode(0o777),
                )
                .expect("chmod")
            },
            "engine Docker",
        ),
        (
            |r| std::fs::remove_file(r.join("usr/bin/runc")).expect("rm"),
            "runtime wrapper",
        ),
    ];
    for (i, (breaker, check)) in cases.iter().enumerate() {
        let t = tempfile::tempdir().expect("tempdir");
        let root = good_host(t.path());
        breaker(&root);
        let (ok, checks) = statuses(&root);
        assert!(!ok, "case {i}: {checks:?}");
        assert_eq!(status_of(&checks, check), "fail", "case {i}: {checks:?}");
        let text = stdout(&doctor(&root, false));
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("FAIL  {check}:")))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(line.contains(" -- fix: "), "no fix in {line}");
    }
}

#[test]
fn warnings_do_not_fail() {
    if !can_run("warnings_do_not_fail", &[]) {
        return;
    }
    let t = tempfile::tempdir().expect("tempdir");
    let root = good_host(t.path());
    std::fs::write(root.join("sys/module/module/parameters/sig_enforce"), "Y\n").expect("w");
    std::fs::remove_file(root.join("lib/modules/6.1.0-fixture/modules.dep.bin")).expect("rm");
    std::fs::write(root.join("usr/bin/containerd"), "").expect("w");
    let (ok, checks) = statuses(&root);
    assert!(ok, "{checks:?}");
    assert_eq!(status_of(&checks, "signatures"), "warn");
    assert_eq!(status_of(&checks, "module directory"), "warn");
    assert_eq!(status_of(&checks, "engine containerd"), "warn");
}
