//! `modgate policy`: a policy file lies over the built-in default key by key, and
//! `policy show` says where each key came from and what widens the default.

use std::path::Path;
use std::process::{Command, Output};

fn modgate(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modgate"))
        .arg("--root")
        .arg(root)
        .args(["--kernel-release", "6.1.0-fixture"])
        .args(args)
        .output()
        .expect("run modgate")
}

fn root_with_policy(dir: &Path, policy: Option<&str>) -> std::path::PathBuf {
    let root = modgate_testkit::fixture_root(&dir.join("root"), &[]);
    if let Some(text) = policy {
        std::fs::create_dir_all(root.join("etc/modgate")).expect("mkdir");
        std::fs::write(root.join("etc/modgate/policy.toml"), text).expect("write policy");
    }
    root
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_file_that_sets_only_unload_keeps_the_default_lists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = root_with_policy(dir.path(), Some("unload = \"on-last-release\"\n"));
    let ok = modgate(&root, &["policy", "check", "ip_vs", "ip_vs_wrr"]);
    assert!(ok.status.success(), "{}", stdout(&ok));
    assert!(
        stdout(&ok).contains("allowed: ip_vs (allow ip_vs"),
        "{}",
        stdout(&ok)
    );
    let denied = modgate(&root, &["policy", "check", "dccp"]);
    assert_eq!(denied.status.code(), Some(1));
    assert!(
        stdout(&denied).contains("listed in deny (dccp*)"),
        "{}",
        stdout(&denied)
    );
}

#[test]
fn show_names_each_keys_origin_and_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = root_with_policy(
        dir.path(),
        Some("unload = \"on-last-release\"\nmax_modules = 4\n"),
    );
    let out = modgate(&root, &["policy", "show"]);
    assert!(out.status.success());
    let text = stdout(&out);
    let file = root.join("etc/modgate/policy.toml").display().to_string();
    assert!(
        text.contains(&format!("unload = \"on-last-release\"  # {file}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("max_modules = 4  # {file}")),
        "{text}"
    );
    assert!(
        text.contains("mode = \"allowlist\"  # built-in default policy"),
        "{text}"
    );
    assert!(
        text.contains(
            "never_unload = [\"br_netfilter\", \"bonding\", \"tun\"]  # built-in default policy"
        ),
        "{text}"
    );
    assert!(!text.contains("widens the default"), "{text}");
    // What `show` prints is itself a policy file that means the same.
    let again = dir.path().join("shown.toml");
    std::fs::write(&again, &text).expect("write");
    let out2 = modgate(
        &root,
        &["policy", "show", "--policy", again.to_str().expect("utf-8")],
    );
    assert!(
        out2.status.success(),
        "{}",
        String::from_utf8_lossy(&out2.stderr)
    );
    let strip = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split("  # ").next().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(strip(&text), strip(&stdout(&out2)));
}

#[test]
fn show_flags_keys_that_widen_the_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = root_with_policy(dir.path(), Some("mode = \"permissive\"\ndeny = []\n"));
    let text = stdout(&modgate(&root, &["policy", "show"]));
    assert!(
        text.contains(
            "# widens the default: mode: permissive allows every module that is not denied"
        ),
        "{text}"
    );
    assert!(
        text.contains("# widens the default: deny: no longer denies dccp*"),
        "{text}"
    );
    // And the wider policy really lets more through.
    let ok = modgate(&root, &["policy", "check", "dccp"]);
    assert!(ok.status.success(), "{}", stdout(&ok));
}

#[test]
fn without_a_file_the_default_applies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = root_with_policy(dir.path(), None);
    let text = stdout(&modgate(&root, &["policy", "show"]));
    assert!(
        text.starts_with("# effective policy (built-in default policy)"),
        "{text}"
    );
    assert!(text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .all(|l| l.ends_with("# built-in default policy")));
}

use modgate_testkit::real_tree;

#[test]
fn every_module_the_default_allows_by_name_loads_with_its_closure_on_a_real_kernel() {
    let Some((root, kv)) = real_tree() else {
        return;
    };
    let shown = Command::new(env!("CARGO_BIN_EXE_modgate"))
        .args(["policy", "show", "--policy", "/dev/null"])
        .output()
        .expect("run modgate");
    let text = stdout(&shown);
    let allow_line = text
        .lines()
        .find(|l| l.starts_with("allow = "))
        .expect("allow line");
    let names: Vec<&str> = allow_line
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|n| !n.contains(['*', '?', '[']))
        .collect();
    let conf = tempfile::tempdir().expect("tempdir");
    let (mut allowed, mut absent) = (0, Vec::new());
    for name in &names {
        let out = Command::new(env!("CARGO_BIN_EXE_modgate"))
            .args(["--root", &root, "--kernel-release", &kv, "--config-dir"])
            .arg(conf.path())
            .args(["policy", "check", name])
            .output()
            .expect("run modgate");
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("not found in") {
            absent.push(*name);
            continue;
        }
        assert!(out.status.success(), "{name}: {}{err}", stdout(&out));
        allowed += 1;
    }
    println!("default policy: {allowed} listed modules allowed with their closure on {kv}; not in this kernel: {absent:?}");
    assert!(
        allowed > 100,
        "only {allowed} of {} listed modules were found",
        names.len()
    );
}

#[test]
fn an_admins_install_command_denies_a_module_with_softdeps_on_a_real_kernel() {
    let Some((root, kv)) = real_tree() else {
        return;
    };
    // kmod ignores install commands of modules that have softdeps and would load these;
    // modgate never runs install commands, so it never loads them.
    let conf = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        conf.path().join("off.conf"),
        "install xt_LOG /bin/false\ninstall ksmbd /bin/false\n",
    )
    .expect("write");
    let policy = conf.path().join("permissive.toml");
    std::fs::write(&policy, "mode = \"permissive\"\n").expect("write");
    for (name, policy_args) in [
        ("xt_LOG", vec![]),
        ("ksmbd", vec!["--policy", policy.to_str().expect("utf-8")]),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_modgate"))
            .args(["--root", &root, "--kernel-release", &kv, "--config-dir"])
            .arg(conf.path())
            .args(["policy", "check", name])
            .args(&policy_args)
            .output()
            .expect("run modgate");
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stdout(&out));
        assert!(
            stdout(&out).contains("disabled by install command in")
                && stdout(&out).contains("off.conf line"),
            "{name}: {}",
            stdout(&out)
        );
    }
}

#[test]
fn output_into_a_closed_pipe_is_not_an_error() {
    let Some((root, kv)) = real_tree() else {
        return;
    };
    // `modgate config` prints megabytes (the index dumps): the reader leaves after none.
    let mut child = Command::new(env!("CARGO_BIN_EXE_modgate"))
        .args(["--root", &root, "--kernel-release", &kv, "config"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?} {err}", out.status);
    assert!(!err.contains("panicked"), "{err}");
}
