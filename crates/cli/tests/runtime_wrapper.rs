//! `modgate-runtime` with the real runc: it adds modgate's hooks to a bundle's
//! config.json for create and run (once), leaves other subcommands and containers that
//! request nothing alone, and runs the runtime named by MODGATE_RUNTIME or runtime.toml.
//! The hook runs against a fixture root (set in runtime.toml's hook_args) in which the
//! requested modules are live.

mod realrt;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use realrt::*;
use serde_json::{json, Value};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        fixture_root(d, IP_VS_LIVE);
        busybox_rootfs(&d.join("rootfs"));
        std::fs::create_dir_all(d.join("bin")).expect("mkdir");
        std::os::unix::fs::symlink(MODGATE, d.join("bin/modgate-runtime")).expect("link");
        let toml = format!(
            "hook_args = [\"--root\", {:?}, \"--log\", {:?}]\n",
            d.join("fixture-root").display().to_string(),
            d.join("hook.log").display().to_string()
        );
        std::fs::write(d.join("runtime.toml"), toml).expect("runtime.toml");
        Env { dir }
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A bundle like `runc spec` makes, running `echo hello`, with `env` added.
    fn bundle(&self, name: &str, env: &[&str], hooks: Option<Value>) -> PathBuf {
        let b = self.p(name);
        std::fs::create_dir_all(&b).expect("mkdir bundle");
        let out = Command::new("runc")
            .arg("spec")
            .current_dir(&b)
            .output()
            .expect("runc spec");
        assert!(out.status.success(), "runc spec");
        let mut c: Value =
            serde_json::from_slice(&std::fs::read(b.join("config.json")).expect("read"))
                .expect("json");
        c["root"]["path"] = json!(self.p("rootfs").display().to_string());
        c["process"]["terminal"] = json!(false);
        c["process"]["args"] = json!(["sh", "-c", "echo hello"]);
        for e in env {
            c["process"]["env"]
                .as_array_mut()
                .expect("env")
                .push(json!(e));
        }
        if let Some(h) = hooks {
            c["hooks"] = h;
        }
        std::fs::write(
            b.join("config.json"),
            serde_json::to_string_pretty(&c).expect("ser"),
        )
        .expect("write");
        b
    }

    fn wrapper(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.p("bin/modgate-runtime"));
        c.env("MODGATE_RUNTIME_CONFIG", self.p("runtime.toml"))
            .env_remove("MODGATE_RUNTIME")
            .arg("--root")
            .arg(self.p("runc-state"))
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn runc(&self, args: &[&str]) -> Command {
        let mut c = Command::new("runc");
        c.arg("--root").arg(self.p("runc-state")).args(args);
        c
    }

    fn log(&self) -> PathBuf {
        self.p("hook.log")
    }
}

fn config(b: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(b.join("config.json")).expect("read")).expect("json")
}

fn modgate_hooks(c: &Value, stage: &str) -> usize {
    c["hooks"][stage]
        .as_array()
        .map(|l| l.iter().filter(|h| h["path"] == json!(MODGATE)).count())
        .unwrap_or(0)
}

#[test]
fn run_adds_the_hooks_and_the_request_is_served() {
    if !can_run(
        "run_adds_the_hooks_and_the_request_is_served",
        &["runc", "busybox"],
    ) {
        return;
    }
    let e = Env::new();
    let b = e.bundle("b1", &["KERNEL_MODULES=ip_vs"], None);
    let before = config(&b);
    let id = id("run");
    let t = std::time::Instant::now();
    let out = run(
        &mut e.wrapper(&["run", "--bundle", b.to_str().expect("utf8"), &id]),
        "modgate-runtime run",
    );
    eprintln!("modgate-runtime run took {:?}", t.elapsed());
    assert!(out.status.success());
    assert_eq!(stdout(&out), "hello\n");
    let after = config(&b);
    assert_eq!(modgate_hooks(&after, "prestart"), 1);
    assert_eq!(modgate_hooks(&after, "poststop"), 1);
    assert_eq!(after["hooks"]["prestart"][0]["args"][3], json!("--root"));
    // Every other field means what it meant.
    let mut stripped = after.clone();
    stripped.as_object_mut().expect("obj").remove("hooks");
    assert_eq!(stripped, before);
    let pre = log_lines(&e.log(), "prestart");
    assert_eq!(pre.len(), 1, "{pre:?}");
    assert!(
        pre[0].contains(&format!("container={id}"))
            && pre[0].contains("requested=ip_vs")
            && pre[0].contains("decision=allowed"),
        "{pre:?}"
    );
    assert_eq!(log_lines(&e.log(), "poststop").len(), 1);
}

#[test]
fn a_denied_module_stops_the_container() {
    if !can_run("a_denied_module_stops_the_container", &["runc", "busybox"]) {
        return;
    }
    let e = Env::new();
    let b = e.bundle("b2", &["KERNEL_MODULES=dccp"], None);
    let id = id("deny");
    let out = run(
        &mut e.wrapper(&["run", "-b", b.to_str().expect("utf8"), &id]),
        "modgate-runtime run (dccp)",
    );
    let _ = e.runc(&["delete", "-f", &id]).output();
    assert!(!out.status.success());
    let err = stderr(&out);
    // runc quotes the hook's stderr inside its own message.
    assert!(
        err.contains(&format!(
            "stderr: modgate: container {id}: module \\\"dccp\\\" denied by policy"
        )),
        "{err}"
    );
    assert!(!stdout(&out).contains("hello"));
}

#[test]
fn a_config_that_has_the_hook_does_not_get_a_second() {
    if !can_run(
        "a_config_that_has_the_hook_does_not_get_a_second",
        &["runc", "busybox"],
    ) {
        return;
    }
    let e = Env::new();
    let fx = e.p("fixture-root").display().to_string();
    let log = e.log().display().to_string();
    let hooks = json!({"prestart": [
        {"path": "/bin/true", "args": ["true"]},
        {"path": MODGATE, "args": ["modgate", "hook", "prestart", "--root", fx, "--log", log]}
    ]});
    let b = e.bundle("b3", &["KERNEL_MODULES=ip_vs"], Some(hooks));
    let id = id("once");
    let out = run(
        &mut e.wrapper(&["run", &format!("--bundle={}", b.display()), &id]),
        "modgate-runtime run (hooked)",
    );
    assert!(out.status.success());
    let c = config(&b);
    assert_eq!(modgate_hooks(&c, "prestart"), 1);
    assert_eq!(c["hooks"]["prestart"][0]["path"], "/bin/true");
    assert_eq!(modgate_hooks(&c, "poststop"), 1);
    assert_eq!(
        log_lines(&e.log(), "prestart").len(),
        1,
        "the hook ran more than once"
    );
    // A second run adds nothing either.
    let text = std::fs::read(b.join("config.json")).expect("read");
    let id2 = id.clone() + "b";
    assert!(run(
        &mut e.wrapper(&["run", "-b", b.to_str().expect("utf8"), &id2]),
        "again"
    )
    .status
    .success());
    assert_eq!(std::fs::read(b.join("config.json")).expect("read"), text);
}

#[test]
fn a_container_that_requests_nothing_is_left_alone() {
    if !can_run(
        "a_container_that_requests_nothing_is_left_alone",
        &["runc", "busybox"],
    ) {
        return;
    }
    let e = Env::new();
    let b = e.bundle("b4", &[], None);
    let before = std::fs::read(b.join("config.json")).expect("read");
    // No --bundle: the working directory is the bundle.
    let mut cmd = e.wrapper(&["run", &id("none")]);
    cmd.current_dir(&b);
    let out = run(&mut cmd, "modgate-runtime run (no request)");
    assert!(out.status.success());
    assert_eq!(stdout(&out), "hello\n");
    assert_eq!(std::fs::read(b.join("config.json")).expect("read"), before);
}

#[test]
fn other_subcommands_pass_through() {
    if !can_run("other_subcommands_pass_through", &["runc", "busybox"]) {
        return;
    }
    let e = Env::new();
    let b = e.bundle("b5", &["KERNEL_MODULES=ip_vs"], None);
    let id = id("pass");
    let out = e
        .wrapper(&["create", "--bundle", b.to_str().expect("utf8"), &id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("create");
    assert!(out.success(), "create failed");
    assert_eq!(modgate_hooks(&config(&b), "prestart"), 1);
    let via = run(&mut e.wrapper(&["state", &id]), "modgate-runtime state");
    let direct = run(&mut e.runc(&["state", &id]), "runc state");
    assert!(via.status.success());
    let (v, d): (Value, Value) = (
        serde_json::from_slice(&via.stdout).expect("state json"),
        serde_json::from_slice(&direct.stdout).expect("state json"),
    );
    assert_eq!(v, d);
    assert_eq!(v["status"], "created");
    assert_eq!(
        log_lines(&e.log(), "prestart").len(),
        1,
        "runc create runs prestart"
    );
    let del = run(
        &mut e.wrapper(&["delete", "--force", &id]),
        "modgate-runtime delete",
    );
    assert!(del.status.success());
    assert!(
        !e.runc(&["state", &id])
            .output()
            .expect("state")
            .status
            .success(),
        "still there after delete"
    );
    let v1 = run(&mut e.wrapper(&["--version"]), "modgate-runtime --version");
    let v2 = run(Command::new("runc").arg("--version"), "runc --version");
    assert_eq!(v1.stdout, v2.stdout);
}

#[test]
fn the_runtime_is_chosen_by_env_then_config() {
    if !can_run(
        "the_runtime_is_chosen_by_env_then_config",
        &["runc", "crun"],
    ) {
        return;
    }
    let e = Env::new();
    let version = |env: Option<&str>| {
        let mut c = e.wrapper(&["--version"]);
        if let Some(v) = env {
            c.env("MODGATE_RUNTIME", v);
        }
        run(&mut c, "modgate-runtime --version")
    };
    assert!(stdout(&version(Some("crun"))).starts_with("crun version"));
    assert!(stdout(&version(None)).starts_with("runc version"));
    let mut toml = std::fs::read_to_string(e.p("runtime.toml")).expect("read");
    toml.push_str("runtime = \"crun\"\n");
    std::fs::write(e.p("runtime.toml"), toml).expect("write");
    assert!(stdout(&version(None)).starts_with("crun version"));
    assert!(stdout(&version(Some("runc"))).starts_with("runc version"));
    let missing = version(Some("no-such-runtime"));
    assert!(!missing.status.success());
    assert_eq!(stderr(&missing), "modgate-runtime: runtime \"no-such-runtime\" not found in PATH (set runtime in etc/modgate/runtime.toml or MODGATE_RUNTIME)\n");
}

#[test]
fn errors_name_the_wrapper_and_the_bundle() {
    if !can_run("errors_name_the_wrapper_and_the_bundle", &["runc"]) {
        return;
    }
    let e = Env::new();
    let b = e.p("no-such-bundle");
    let log = e.p("runc-log.json");
    let out = run(
        Command::new(e.p("bin/modgate-runtime"))
            .env("MODGATE_RUNTIME_CONFIG", e.p("runtime.toml"))
            .args([
                "--log",
                log.to_str().expect("utf8"),
                "--log-format",
                "json",
                "create",
                "--bundle",
                b.to_str().expect("utf8"),
                "x",
            ]),
        "modgate-runtime create (no bundle)",
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    let want = format!("modgate-runtime: bundle {0}: cannot read {0}/config.json: No such file or directory (os error 2)\n", b.display());
    assert_eq!(err, want);
    let line: Value = serde_json::from_str(std::fs::read_to_string(&log).expect("log").trim())
        .expect("json line");
    assert_eq!(line["level"], "error");
    assert_eq!(line["msg"], json!(want.trim_end()));
}

#[test]
fn a_creating_command_whose_bundle_is_unclear_is_refused() {
    if !can_run(
        "a_creating_command_whose_bundle_is_unclear_is_refused",
        &["runc", "busybox"],
    ) {
        return;
    }
    let e = Env::new();
    let b = e.bundle("b6", &["KERNEL_MODULES=ip_vs"], None);
    let before = std::fs::read(b.join("config.json")).expect("read");
    let bs = b.to_str().expect("utf8");
    let attached = format!("-b{bs}");
    // runc reads none of these as a bundle (it refuses them itself): the wrapper must
    // not guess one either, nor pass the command on unhooked.
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["create", "--unknown", "-b", bs, "u1"], "create"),
        (vec!["create", "--bund", bs, "u2"], "create"),
        (vec!["run", &attached, "u3"], "run"),
        (vec!["create", "--pid-file", "-b", bs, "u4"], "create"),
        (vec!["--bogus-global", "create", "-b", bs, "u5"], "create"),
        (vec!["restore", "-b"], "restore"),
    ];
    for (args, command) in cases {
        let out = run(&mut e.wrapper(&args), "modgate-runtime (unclear bundle)");
        assert!(!out.status.success(), "{args:?} accepted");
        let err = stderr(&out);
        assert!(
            err.starts_with(&format!(
                "modgate-runtime: refusing {command}: cannot tell its bundle from the arguments: "
            )),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert_eq!(std::fs::read(b.join("config.json")).expect("read"), before);
    }
    assert!(
        !e.runc(&["state", "u1"])
            .output()
            .expect("state")
            .status
            .success(),
        "a refused create reached runc"
    );
}

#[test]
fn restore_and_crun_syntax_get_the_hooks() {
    if !can_run(
        "restore_and_crun_syntax_get_the_hooks",
        &["runc", "crun", "busybox"],
    ) {
        return;
    }
    let e = Env::new();
    // (runtime, arguments before the id, bundle): the runtime may then fail (crun on
    // this host's cgroups, runc restore without an image); the hooks are added first.
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        ("runc", vec!["restore".into(), "--bundle".into()], "r1"),
        ("crun", vec!["create".into(), "--bund".into()], "c1"),
        ("crun", vec!["create".into()], "c2"),
    ];
    for (runtime, mut args, name) in cases {
        let b = e.bundle(name, &["KERNEL_MODULES=ip_vs"], None);
        let bs = b.display().to_string();
        match args.len() {
            1 => args.push(format!("-b{bs}")),
            _ => args.push(bs),
        }
        let id = id(name);
        args.push(id.clone());
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        // A created container's init would hold captured output open: discard it, and
        // keep only stderr (the wrapper's refusal would be there).
        let out = run(
            e.wrapper(&argv)
                .env("MODGATE_RUNTIME", runtime)
                .stdout(Stdio::null()),
            "modgate-runtime (restore / crun syntax)",
        );
        let _ = Command::new(runtime)
            .arg("--root")
            .arg(e.p("runc-state"))
            .args(["delete", "-f", &id])
            .output();
        assert!(
            !stderr(&out).contains("refusing"),
            "{runtime} {args:?}: {}",
            stderr(&out)
        );
        assert_eq!(
            modgate_hooks(&config(&b), "prestart"),
            1,
            "{runtime} {args:?}"
        );
    }
}
