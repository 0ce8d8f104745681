//! `modgate install TARGET` against temporary roots (`--root`): what each target writes,
//! that a second run changes nothing, that other keys survive, and that a malformed file
//! is refused and left exactly as it was.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = "/usr/local/bin/modgate";

struct Root(tempfile::TempDir);

impl Root {
    fn new() -> Self {
        let r = Root(tempfile::tempdir().expect("tempdir"));
        // A root-owned, executable modgate where the hooks point (we run as root in CI;
        // elsewhere the ownership warning is expected and not checked).
        r.write("usr/local/bin/modgate", "#!/bin/sh\n");
        r.chmod("usr/local/bin/modgate", 0o755);
        r
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.0.path().join(rel)
    }
    fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    fn chmod(&self, rel: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(self.path(rel), std::fs::Permissions::from_mode(mode))
            .expect("chmod");
    }
    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }
    fn json(&self, rel: &str) -> serde_json::Value {
        serde_json::from_str(&self.read(rel)).expect("json")
    }
    fn install(&self, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_modgate"))
            .arg("--root")
            .arg(self.0.path())
            .arg("install")
            .args(args)
            .output()
            .expect("run modgate");
        eprintln!(
            "modgate install {args:?}: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
    fn ok(&self, args: &[&str]) -> String {
        let out = self.install(args);
        assert!(out.status.success(), "install {args:?} failed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    /// Every file under the root with its content (links as `-> target`).
    fn snapshot(&self) -> Vec<(String, String)> {
        let mut v = Vec::new();
        walk(self.0.path(), self.0.path(), &mut v);
        v.sort();
        v
    }
}

fn walk(dir: &Path, base: &Path, out: &mut Vec<(String, String)>) {
    for e in std::fs::read_dir(dir).expect("readdir").flatten() {
        let p = e.path();
        let rel = p.strip_prefix(base).expect("prefix").display().to_string();
        let ft = e.file_type().expect("type");
        if ft.is_symlink() {
            out.push((
                rel,
                format!("-> {}", std::fs::read_link(&p).expect("link").display()),
            ));
        } else if ft.is_dir() {
            walk(&p, base, out);
        } else {
            out.push((rel, std::fs::read_to_string(&p).unwrap_or_default()));
        }
    }
}

/// Runs the same install twice: the second run must change nothing and say so.
fn twice(root: &Root, args: &[&str]) -> String {
    let first = root.ok(args);
    let snap = root.snapshot();
    let second = root.ok(args);
    assert_eq!(
        root.snapshot(),
        snap,
        "second run of {args:?} changed files"
    );
    assert!(second.contains("unchanged: "), "{second}");
    assert!(
        !second.contains("wrote ") && !second.contains("created "),
        "{second}"
    );
    first
}

fn args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = extra.to_vec();
    v.extend(["--binary", BIN]);
    v
}

#[test]
fn isulad_hook_spec() {
    let r = Root::new();
    let out = twice(&r, &args(&["isulad"]));
    assert!(
        out.contains("isula run --rm --hook-spec /etc/modgate/isulad-hookspec.json"),
        "{out}"
    );
    let spec = r.json("etc/modgate/isulad-hookspec.json");
    assert_eq!(spec["prestart"][0]["path"], BIN);
    assert_eq!(
        spec["prestart"][0]["args"],
        serde_json::json!(["modgate", "hook", "prestart"])
    );
    assert_eq!(
        spec["poststop"][0]["args"],
        serde_json::json!(["modgate", "hook", "poststop"])
    );
    // --output elsewhere, with hook arguments.
    twice(
        &r,
        &args(&[
            "isulad",
            "--output",
            "/srv/spec.json",
            "--hook-arg=--policy",
            "--hook-arg=/p.toml",
        ]),
    );
    assert_eq!(
        r.json("srv/spec.json")["prestart"][0]["args"],
        serde_json::json!(["modgate", "hook", "prestart", "--policy", "/p.toml"])
    );
}

#[test]
fn isulad_says_when_it_would_refuse_the_hook() {
    let r = Root::new();
    r.chmod("usr/local/bin/modgate", 0o777);
    let out = r.ok(&args(&["isulad", "--dry-run"]));
    assert!(
        out.contains(
            "warning: iSulad will refuse this hook: /usr/local/bin/modgate is world-writable"
        ),
        "{out}"
    );
    assert!(
        out.contains("would create /etc/modgate/isulad-hookspec.json"),
        "{out}"
    );
    assert!(!r.path("etc/modgate").exists(), "--dry-run wrote something");
    let out = r.ok(&["isulad", "--dry-run", "--binary", "/opt/none/modgate"]);
    assert!(out.contains("/opt/none/modgate does not exist"), "{out}");
    let bad = r.install(&["isulad", "--binary", "relative/modgate"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--binary must be an absolute path"));
}

#[test]
fn isulad_daemon_default_merges() {
    let r = Root::new();
    let daemon = "{\n    \"group\": \"isula\",\n    \"hook-spec\": \"/etc/default/isulad/hooks/default.json\",\n    \"log-level\": \"ERROR\"\n}\n";
    r.write("etc/isulad/daemon.json", daemon);
    r.write(
        "etc/default/isulad/hooks/default.json",
        r#"{"prestart":[{"path":"/usr/bin/other-hook","args":["other-hook"]}],"poststart":[]}"#,
    );
    twice(&r, &args(&["isulad", "--daemon-default"]));
    // daemon.json names a spec already: untouched.
    assert_eq!(r.read("etc/isulad/daemon.json"), daemon);
    let spec = r.json("etc/default/isulad/hooks/default.json");
    assert_eq!(spec["prestart"][0]["path"], "/usr/bin/other-hook");
    assert_eq!(spec["prestart"][1]["path"], BIN);
    assert_eq!(spec["poststart"], serde_json::json!([]));
    assert!(r.path("etc/default/isulad/hooks/default.json.bak").exists());

    // No hook-spec in daemon.json: it gains the default one, other keys kept.
    let r = Root::new();
    r.write(
        "etc/isulad/daemon.json",
        r#"{"group":"isula","storage-driver":"overlay2"}"#,
    );
    twice(&r, &args(&["isulad", "--daemon-default"]));
    let d = r.json("etc/isulad/daemon.json");
    assert_eq!(d["hook-spec"], "/etc/default/isulad/hooks/default.json");
    assert_eq!(d["storage-driver"], "overlay2");
    assert_eq!(
        r.json("etc/default/isulad/hooks/default.json")["poststop"][0]["path"],
        BIN
    );
}

#[test]
fn hooks_d_always_and_annotation() {
    let r = Root::new();
    let out = twice(&r, &args(&["hooks-d"]));
    assert!(
        out.contains("podman run --rm -e KERNEL_MODULES=ip_vs"),
        "{out}"
    );
    let dir = "usr/share/containers/oci/hooks.d";
    for stage in ["prestart", "poststop"] {
        let f = r.json(&format!("{dir}/modgate-{stage}.json"));
        assert_eq!(f["version"], "1.0.0");
        assert_eq!(f["when"], serde_json::json!({"always": true}));
        assert_eq!(f["stages"], serde_json::json!([stage]));
        assert_eq!(f["hook"]["path"], BIN);
    }
    // Switching to --when annotation rewrites both files, keeping .bak.
    let out = twice(&r, &args(&["hooks-d", "--when", "annotation"]));
    assert!(
        out.contains("--annotation modgate.io/kernel-modules=ip_vs"),
        "{out}"
    );
    let f = r.json(&format!("{dir}/modgate-prestart.json"));
    assert_eq!(
        f["when"]["annotations"]["^modgate\\.io/kernel-modules$"],
        ".+"
    );
    let bak: serde_json::Value =
        serde_json::from_str(&r.read(&format!("{dir}/modgate-prestart.json.bak"))).expect("bak");
    assert_eq!(bak["when"], serde_json::json!({"always": true}));
    // Another directory: the run line names it.
    let out = r.ok(&args(&["hooks-d", "--dir", "/etc/test-hooks"]));
    assert!(
        out.contains("podman --hooks-dir /etc/test-hooks run"),
        "{out}"
    );
    assert!(r.path("etc/test-hooks/modgate-poststop.json").exists());
}

#[test]
fn docker_daemon_json() {
    let r = Root::new();
    let original = r#"{
  "log-driver": "journald",
  "runtimes": {"nvidia": {"path": "nvidia-container-runtime", "runtimeArgs": []}},
  "default-runtime": "runc",
  "features": {"buildkit": true}
}
"#;
    r.write("etc/docker/daemon.json", original);
    let out = twice(&r, &args(&["docker"]));
    assert!(
        out.contains("docker run --rm --runtime modgate -e KERNEL_MODULES=ip_vs"),
        "{out}"
    );
    let d = r.json("etc/docker/daemon.json");
    assert_eq!(
        d["runtimes"]["modgate"]["path"],
        "/usr/local/bin/modgate-runtime"
    );
    assert_eq!(d["runtimes"]["nvidia"]["path"], "nvidia-container-runtime");
    assert_eq!(d["default-runtime"], "runc");
    assert_eq!(d["features"]["buildkit"], true);
    assert_eq!(d["log-driver"], "journald");
    assert_eq!(r.read("etc/docker/daemon.json.bak"), original);
    // --default, and a wrapper of our choosing.
    twice(
        &r,
        &[
            "docker",
            "--default",
            "--wrapper",
            "/opt/mg/modgate-runtime",
        ],
    );
    let d = r.json("etc/docker/daemon.json");
    assert_eq!(d["default-runtime"], "modgate");
    assert_eq!(d["runtimes"]["modgate"]["path"], "/opt/mg/modgate-runtime");
    // No daemon.json yet: created.
    let r = Root::new();
    twice(&r, &args(&["docker"]));
    assert!(!r.path("etc/docker/daemon.json.bak").exists());
}

#[test]
fn containerd_config_toml() {
    let r = Root::new();
    // What Debian's containerd package ships, plus an operator's comment.
    let original = r#"version = 2
# keep this comment
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.internal.v1.opt"]
    path = "/var/lib/containerd/opt"
"#;
    r.write("etc/containerd/config.toml", original);
    // Without --write: printed, nothing written.
    let out = r.ok(&args(&["containerd"]));
    assert!(out.contains("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.modgate.options]\n  BinaryName = \"/usr/local/bin/modgate-runtime\""), "{out}");
    assert!(
        out.contains("kind: RuntimeClass") && out.contains("handler: modgate"),
        "{out}"
    );
    assert!(
        out.contains("ctr run --rm --runc-binary /usr/local/bin/modgate-runtime"),
        "{out}"
    );
    assert_eq!(r.read("etc/containerd/config.toml"), original);
    twice(&r, &args(&["containerd", "--write"]));
    let text = r.read("etc/containerd/config.toml");
    assert!(text.starts_with(original), "{text}");
    let t: toml::Table = toml::from_str(&text).expect("toml");
    let rt = &t["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]["modgate"];
    assert_eq!(rt["runtime_type"].as_str(), Some("io.containerd.runc.v2"));
    assert_eq!(
        rt["options"]["BinaryName"].as_str(),
        Some("/usr/local/bin/modgate-runtime")
    );
    assert_eq!(
        t["plugins"]["io.containerd.internal.v1.opt"]["path"].as_str(),
        Some("/var/lib/containerd/opt")
    );
    assert_eq!(r.read("etc/containerd/config.toml.bak"), original);
}

#[test]
fn malformed_files_are_refused_and_left_alone() {
    let cases: &[(&[&str], &str, &str)] = &[
        (&["docker"], "etc/docker/daemon.json", "{\"runtimes\": {\n"),
        (&["docker"], "etc/docker/daemon.json", "{\"runtimes\": []}"),
        (
            &["containerd", "--write"],
            "etc/containerd/config.toml",
            "version = 2\n[plugins\n",
        ),
        (
            &["isulad"],
            "etc/modgate/isulad-hookspec.json",
            "{\"prestart\": {}}",
        ),
        (
            &["isulad", "--daemon-default"],
            "etc/isulad/daemon.json",
            "not json",
        ),
        (
            &["hooks-d"],
            "usr/share/containers/oci/hooks.d/modgate-prestart.json",
            "{",
        ),
    ];
    for (target, file, text) in cases {
        let r = Root::new();
        r.write(file, text);
        let before = r.snapshot();
        let out = r.install(&args(target));
        assert!(!out.status.success(), "{target:?} accepted {text:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with(&format!("modgate: nothing written: /{file}")),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert_eq!(r.snapshot(), before, "{target:?} touched files");
    }
}

#[test]
fn syscontainer_tools_link_and_revert() {
    let r = Root::new();
    let hook = "var/lib/isulad/hooks/syscontainer-hooks";
    r.write(hook, "#!/bin/sh\necho old hook\n");
    r.chmod(hook, 0o750);
    let out = r.ok(&args(&["syscontainer-tools", "--dry-run"]));
    assert!(out.contains("would make /var/lib/isulad/hooks/syscontainer-hooks a link to /usr/local/bin/modgate (keeping the old file as /var/lib/isulad/hooks/syscontainer-hooks.bak)"), "{out}");
    assert!(!r
        .path("var/lib/isulad/hooks/syscontainer-hooks.bak")
        .exists());
    twice(&r, &args(&["syscontainer-tools"]));
    assert_eq!(
        std::fs::read_link(r.path(hook)).expect("link"),
        Path::new(BIN)
    );
    assert_eq!(
        r.read("var/lib/isulad/hooks/syscontainer-hooks.bak"),
        "#!/bin/sh\necho old hook\n"
    );
    let out = r.ok(&["syscontainer-tools", "--revert"]);
    assert!(
        out.contains("restored /var/lib/isulad/hooks/syscontainer-hooks"),
        "{out}"
    );
    assert_eq!(r.read(hook), "#!/bin/sh\necho old hook\n");
    assert!(!r
        .path("var/lib/isulad/hooks/syscontainer-hooks.bak")
        .exists());
    // Nothing left to revert.
    let out = r.install(&["syscontainer-tools", "--revert"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to revert"));
}

#[test]
fn root_links_never_lead_out_of_the_root() {
    // An absolute link under --root means that path in the root, as if the root were /.
    let outside = tempfile::tempdir().expect("tempdir");
    let host = outside.path().join("daemon.json");
    std::fs::write(&host, "{\"host\": true}\n").expect("write");
    let r = Root::new();
    std::fs::create_dir_all(r.path("etc/docker")).expect("mkdir");
    std::os::unix::fs::symlink(&host, r.path("etc/docker/daemon.json")).expect("link");
    let up = "../../../../../../../../../../../../..".to_string()
        + outside.path().to_str().expect("utf8");
    std::fs::create_dir_all(r.path("etc/containerd")).expect("mkdir");
    std::os::unix::fs::symlink(
        format!("{up}/config.toml"),
        r.path("etc/containerd/config.toml"),
    )
    .expect("link");
    r.ok(&args(&["docker"]));
    r.ok(&args(&["containerd", "--write"]));
    assert_eq!(
        std::fs::read_to_string(&host).expect("read"),
        "{\"host\": true}\n"
    );
    let left: Vec<_> = std::fs::read_dir(outside.path())
        .expect("readdir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left.len(), 1, "files appeared outside the root: {left:?}");
    // The links' targets, taken inside the root, got the configuration.
    let inside = r.path(host.to_str().expect("utf8").trim_start_matches('/'));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(inside).expect("read")).expect("json");
    assert_eq!(
        v["runtimes"]["modgate"]["path"],
        "/usr/local/bin/modgate-runtime"
    );
    let toml = r.path(
        outside
            .path()
            .join("config.toml")
            .to_str()
            .expect("utf8")
            .trim_start_matches('/'),
    );
    assert!(std::fs::read_to_string(toml)
        .expect("read")
        .contains("BinaryName"));
}

#[test]
fn syscontainer_tools_keeps_the_first_original() {
    let r = Root::new();
    let hook = "var/lib/isulad/hooks/syscontainer-hooks";
    r.write(hook, "#!/bin/sh\necho old hook\n");
    r.ok(&["syscontainer-tools", "--binary", BIN]);
    r.ok(&["syscontainer-tools", "--binary", "/opt/modgate/bin/modgate"]);
    r.ok(&["syscontainer-tools", "--binary", BIN]);
    assert_eq!(
        std::fs::read_link(r.path(hook)).expect("link"),
        Path::new(BIN)
    );
    let bak = r.path("var/lib/isulad/hooks/syscontainer-hooks.bak");
    assert!(!std::fs::symlink_metadata(&bak)
        .expect("bak")
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read_to_string(&bak).expect("bak"),
        "#!/bin/sh\necho old hook\n"
    );
    r.ok(&["syscontainer-tools", "--revert"]);
    assert_eq!(r.read(hook), "#!/bin/sh\necho old hook\n");
}

/// Whether this process is root (owns the files it creates), which running a hook
/// iSulad-style needs; MODGATE_REQUIRE_REAL turns the skip into a failure.
fn as_root(test: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let d = tempfile::tempdir().expect("tempdir");
    let root = std::fs::metadata(d.path()).expect("stat").uid() == 0;
    if !root {
        assert!(
            std::env::var_os("MODGATE_REQUIRE_REAL").is_none(),
            "{test} needs root"
        );
        eprintln!("skipping {test}: needs root");
    }
    root
}

#[test]
fn the_original_syscontainer_hook_still_runs_after_modgate() {
    if !as_root("the_original_syscontainer_hook_still_runs_after_modgate") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().expect("tempdir");
    let dir = d.path().join("hooks");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let record = d.path().join("record");
    // The original: records its arguments and its stdin, as syscontainer-hooks sets up
    // devices, mounts and networks from them.
    let bak = dir.join("syscontainer-hooks.bak");
    std::fs::write(
        &bak,
        format!(
            "#!/bin/sh\necho \"$*\" >> {0}\ncat >> {0}\necho >> {0}\n",
            record.display()
        ),
    )
    .expect("write");
    std::fs::set_permissions(&bak, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let link = dir.join("syscontainer-hooks");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_modgate"), &link).expect("link");
    let bundle = d.path().join("bundle");
    std::fs::create_dir_all(&bundle).expect("mkdir");
    let call = |env: &str, stage: &str| {
        std::fs::write(
            bundle.join("config.json"),
            format!(r#"{{"process":{{"env":["PATH=/bin"{env}]}}}}"#),
        )
        .expect("write");
        let state = format!(
            r#"{{"ociVersion":"1.0.2","id":"c1","status":"creating","pid":1,"bundle":"{}"}}"#,
            bundle.display()
        );
        // As iSulad's lcr runtime calls it: the state comes late on a non-blocking pipe.
        let out = modgate_testkit::run_with_late_nonblocking_stdin(
            std::process::Command::new(&link).args(["--state", stage]),
            &state,
        );
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        (out.status.success(), state)
    };
    // Nothing requested: modgate has nothing to do, the original does the rest.
    let (ok, state) = call("", "prestart");
    assert!(ok);
    let rec = std::fs::read_to_string(&record).expect("the original hook did not run");
    assert_eq!(rec, format!("--state prestart\n{state}\n"));
    // A refused request stops at modgate: the original never loads the module.
    std::fs::remove_file(&record).expect("rm");
    let (ok, _) = call(r#","KERNEL_MODULES=dccp""#, "prestart");
    assert!(!ok, "a denied module was accepted");
    assert!(
        !record.exists(),
        "the original ran after modgate refused the container"
    );
    // Poststop always reaches the original (its clean-up).
    let (ok, _) = call("", "poststop");
    assert!(ok);
    assert!(std::fs::read_to_string(&record)
        .expect("record")
        .contains("--state poststop"));
}
