//! deploy/kubernetes: every manifest (and the example pod of docs/kubernetes.md) checked
//! offline against the current Kubernetes schema by `kubernetes-validate --strict` (in
//! the venv of `scripts/engines venv`); the policy of the ConfigMap parsing and widening
//! nothing; and the node agent's scripts run against a temp directory standing for the
//! node's root: install, sync (policy swap, Node Feature Discovery file) and uninstall.

mod engine;
mod realrt;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use engine::*;
use realrt::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn deploy() -> PathBuf {
    repo().join("deploy/kubernetes")
}

/// The manifests: every YAML file of deploy/kubernetes but the kustomization.
fn manifests() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(deploy())
        .expect("deploy/kubernetes")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| !p.ends_with("kustomization.yaml"))
        .collect();
    v.sort();
    v
}

fn python(test: &str) -> Option<PathBuf> {
    match env_file("MODGATE_ENGINES_PY") {
        Ok(p) => Some(p),
        Err(why) => {
            unavailable(test, &format!("no kubernetes-validate: {why}"));
            None
        }
    }
}

fn validate(py: &Path, files: &[PathBuf]) -> Output {
    run(
        Command::new(py)
            .args(["-m", "kubernetes_validate", "--strict", "--no-warn"])
            .args(files),
        "kubernetes-validate",
    )
}

/// A value of a YAML document, through the venv's PyYAML (a kubernetes-validate
/// dependency): `expr` is Python on `doc`.
fn yaml_value(py: &Path, file: &Path, expr: &str) -> String {
    let out = run(
        Command::new(py)
            .arg("-c")
            .arg(format!(
            "import sys, yaml; doc = yaml.safe_load(open(sys.argv[1])); sys.stdout.write({expr})"
        ))
            .arg(file),
        "yaml",
    );
    assert!(out.status.success());
    stdout(&out)
}

/// The ```yaml blocks of a Markdown file that are Kubernetes objects.
fn yaml_blocks(md: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(md).expect("read markdown");
    let mut blocks = Vec::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        match (&mut cur, line.trim_end()) {
            (None, "```yaml") => cur = Some(String::new()),
            (Some(b), "```") => {
                if b.contains("apiVersion:") && b.contains("kind:") {
                    blocks.push(b.clone());
                }
                cur = None;
            }
            (Some(b), l) => {
                b.push_str(l);
                b.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

#[test]
fn every_manifest_and_the_documented_pod_validate_against_the_schema() {
    let Some(py) = python("every_manifest_and_the_documented_pod_validate_against_the_schema")
    else {
        return;
    };
    let files = manifests();
    assert!(files.len() >= 4, "{files:?}");
    let out = validate(&py, &files);
    assert!(out.status.success(), "invalid manifests");
    for f in &files {
        assert!(
            stdout(&out).contains(&format!("{} passed", f.display())),
            "{} not validated",
            f.display()
        );
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let blocks = yaml_blocks(&repo().join("docs/kubernetes.md"));
    assert!(
        !blocks.is_empty(),
        "docs/kubernetes.md has no example objects"
    );
    let docs: Vec<PathBuf> = blocks
        .iter()
        .enumerate()
        .map(|(n, b)| {
            let p = dir.path().join(format!("doc-{n}.yaml"));
            std::fs::write(&p, b).expect("write");
            p
        })
        .collect();
    assert!(
        validate(&py, &docs).status.success(),
        "invalid example in docs/kubernetes.md"
    );

    // The validator is strict: a misspelt field fails.
    let ds = std::fs::read_to_string(deploy().join("daemonset.yaml")).expect("read");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, ds.replace("hostPID:", "hostPid:")).expect("write");
    assert!(
        !validate(&py, &[bad]).status.success(),
        "a misspelt field passed"
    );
}

#[test]
fn kustomization_lists_every_manifest() {
    let Some(py) = python("kustomization_lists_every_manifest") else {
        return;
    };
    let listed = yaml_value(
        &py,
        &deploy().join("kustomization.yaml"),
        "'\\n'.join(sorted(doc['resources']))",
    );
    let files: Vec<String> = manifests()
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    assert_eq!(listed.lines().collect::<Vec<_>>(), files);
}

#[test]
fn policy_configmap_parses_and_widens_nothing() {
    let Some(py) = python("policy_configmap_parses_and_widens_nothing") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        yaml_value(
            &py,
            &deploy().join("configmap-policy.yaml"),
            "doc['data']['policy.toml']",
        ),
    )
    .expect("policy");
    let out = run(
        Command::new(MODGATE)
            .arg("--root")
            .arg(dir.path())
            .args(["policy", "show", "--policy"])
            .arg(&policy),
        "modgate policy show",
    );
    assert!(
        out.status.success(),
        "the ConfigMap's policy does not parse"
    );
    assert!(
        !stdout(&out).contains("widens the default"),
        "the shipped policy widens the default"
    );
}

fn agent(script: &str, host: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new("sh");
    c.arg(deploy().join("agent").join(script))
        .args(args)
        .env("HOST", host)
        .env("MODGATE", MODGATE)
        .env("TMPDIR", host.parent().expect("parent"));
    for (k, v) in env {
        c.env(k, v);
    }
    run(&mut c, &format!("{script} {args:?}"))
}

#[test]
fn agent_installs_into_containerd_and_uninstalls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = dir.path().join("host");
    let conf = host.join("etc/containerd/config.toml");
    std::fs::create_dir_all(conf.parent().expect("parent")).expect("mkdir");
    let original =
        "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"pause:3.9\"\n";
    std::fs::write(&conf, original).expect("config");
    let env = [("ENGINE", "auto"), ("RESTART_ENGINE", "false")];

    // No engine socket: auto-detection finds nothing and says so.
    let out = agent("install.sh", &host, &env, &["install"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no container engine found"),
        "{}",
        stderr(&out)
    );

    let env = [("ENGINE", "containerd"), ("RESTART_ENGINE", "false")];
    let out = agent("install.sh", &host, &env, &["install"]);
    assert!(out.status.success(), "install.sh failed");
    let bin = host.join("usr/local/bin/modgate");
    assert_eq!(
        std::fs::read(&bin).expect("installed binary"),
        std::fs::read(MODGATE).expect("binary")
    );
    assert_eq!(
        std::fs::read_link(host.join("usr/local/bin/modgate-runtime")).expect("link"),
        Path::new("modgate")
    );
    let written: toml::Value =
        toml::from_str(&std::fs::read_to_string(&conf).expect("read")).expect("toml");
    let cri = &written["plugins"]["io.containerd.grpc.v1.cri"];
    assert_eq!(
        cri["containerd"]["runtimes"]["modgate"]["options"]["BinaryName"].as_str(),
        Some("/usr/local/bin/modgate-runtime")
    );
    assert_eq!(cri["sandbox_image"].as_str(), Some("pause:3.9"));
    // Again: nothing changes (so the engine would not be restarted).
    let out = agent("install.sh", &host, &env, &["install"]);
    assert!(out.status.success());
    assert!(stderr(&out).contains("unchanged"), "{}", stderr(&out));

    let out = agent("install.sh", &host, &env, &["uninstall"]);
    assert!(out.status.success(), "uninstall failed");
    assert_eq!(std::fs::read_to_string(&conf).expect("read"), original);
    assert!(!bin.exists() && !host.join("usr/local/bin/modgate-runtime").exists());
}

#[test]
fn agent_sync_installs_only_a_policy_that_parses_and_publishes_features() {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = modgate_testkit::fixture_root(&dir.path().join("host"), &["ip_vs"]);
    let src = dir.path().join("policy.toml");
    std::fs::write(&src, "mode = \"allowlist\"\nallow = [\"ip_vs\", \"ip_vs_wrr\", \"crc32c_generic\", \"xt_*\", \"dccp\"]\ndeny = [\"dccp\"]\n")
        .expect("policy");
    let env = [
        ("POLICY_SRC", src.to_str().expect("utf-8")),
        ("ONCE", "1"),
        ("KERNEL_RELEASE", "6.1.0-fixture"),
    ];
    let out = agent("sync.sh", &host, &env, &[]);
    assert!(out.status.success(), "sync.sh failed");
    let policy = host.join("etc/modgate/policy.toml");
    assert_eq!(
        std::fs::read(&policy).expect("installed policy"),
        std::fs::read(&src).expect("src")
    );
    let features = std::fs::read_to_string(
        host.join("etc/kubernetes/node-feature-discovery/features.d/modgate"),
    )
    .expect("feature file");
    let lines: Vec<&str> = features.lines().collect();
    assert_eq!(
        lines,
        [
            "modgate-installed=true",
            "modgate-allowed-ip_vs=true",
            "modgate-live-ip_vs=true",
            "modgate-allowed-ip_vs_wrr=true",
            "modgate-allowed-crc32c_generic=true",
        ],
        "{features}"
    );

    // A policy that does not parse never replaces the node's.
    std::fs::write(&src, "mode = \"allowlist\nallow = [\n").expect("policy");
    let out = agent("sync.sh", &host, &env, &[]);
    assert!(out.status.success());
    assert!(stderr(&out).contains("does not parse"), "{}", stderr(&out));
    assert!(std::fs::read_to_string(&policy)
        .expect("policy")
        .contains("\"ip_vs_wrr\""));
    let left: Vec<_> = std::fs::read_dir(host.join("etc/modgate"))
        .expect("dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, ["policy.toml"], "temporary files left behind");
}
