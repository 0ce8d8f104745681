//! The hook binary end to end, against a copy of the fixture root in which the modules
//! a test asks for are already live (this host kernel cannot load modules; the VM suite
//! loads for real). Every refusal must exit non-zero with one `modgate:` line.

use std::path::PathBuf;
use std::process::{Command, Output};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        modgate_testkit::fixture_root(&dir.path().join("root"), &[]);
        std::fs::create_dir_all(dir.path().join("bundle")).expect("mkdir bundle");
        Self { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    fn live(&self, names: &[&str]) {
        modgate_testkit::set_live(&self.root(), names);
    }

    fn config(&self, env: &[&str], annotations: &[(&str, &str)]) {
        let env: Vec<String> = env.iter().map(|e| format!("{e:?}")).collect();
        let ann: Vec<String> = annotations
            .iter()
            .map(|(k, v)| format!("{k:?}:{v:?}"))
            .collect();
        let text = format!(
            r#"{{"ociVersion":"1.0.2","process":{{"terminal":false,"env":[{}],"args":["sh"]}},"root":{{"path":"rootfs"}},"annotations":{{{}}}}}"#,
            env.join(","),
            ann.join(",")
        );
        std::fs::write(self.bundle().join("config.json"), text).expect("write config");
    }

    fn state(&self, id: &str) -> String {
        format!(
            r#"{{"ociVersion":"1.0.2","id":"{id}","status":"creating","pid":4242,"bundle":"{}"}}"#,
            self.bundle().display()
        )
    }

    fn hook(&self, args: &[&str], stdin: &str) -> Output {
        run(
            Command::new(env!("CARGO_BIN_EXE_modgate"))
                .arg("--root")
                .arg(self.root())
                .arg("hook")
                .args(args),
            stdin,
        )
    }
}

fn run(cmd: &mut Command, stdin: &str) -> Output {
    modgate_testkit::run_with_stdin(cmd, stdin)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A refusal: non-zero, exactly one stderr line, starting `modgate:`, containing `want`.
fn assert_refused(o: &Output, want: &str) {
    let e = stderr(o);
    assert!(!o.status.success(), "must fail; stderr: {e}");
    assert_eq!(e.lines().count(), 1, "one line expected: {e}");
    assert!(e.starts_with("modgate: "), "{e}");
    assert!(e.contains(want), "{e:?} should contain {want:?}");
}

const SEED: [&str; 5] = [
    "crc32c_generic",
    "libcrc32c",
    "nf_conntrack",
    "ip_vs",
    "ip_vs_wrr",
];

#[test]
fn no_request_exits_zero_quietly() {
    let e = Env::new();
    e.config(&["PATH=/bin"], &[]);
    let o = e.hook(&["prestart"], &e.state("c1"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stderr.is_empty() && o.stdout.is_empty());
}

#[test]
fn seed_request_with_modules_live_succeeds() {
    let e = Env::new();
    e.live(&SEED);
    e.config(&["KERNEL_MODULES=ip_vs,ip_vs_wrr"], &[]);
    let o = e.hook(&["prestart"], &e.state("c1"));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = e.hook(&["createRuntime"], &e.state("c1"));
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn annotation_route_and_merge() {
    let e = Env::new();
    e.live(&["dummy"]);
    e.config(&["PATH=/bin"], &[("modgate.io/kernel-modules", "dummy")]);
    assert!(e.hook(&["prestart"], &e.state("c1")).status.success());
    // The annotation adds to the environment's request: dccp there is still refused.
    e.config(
        &["KERNEL_MODULES=dummy"],
        &[("modgate.io/kernel-modules", "dccp")],
    );
    assert_refused(
        &e.hook(&["prestart"], &e.state("c2")),
        "module \"dccp\" denied by policy",
    );
}

#[test]
fn refusals_name_container_module_and_reason() {
    let e = Env::new();
    e.live(&SEED);
    let cases: &[(&str, &str)] = &[
        ("KERNEL_MODULES=dccp", "container c9: module \"dccp\" denied by policy built-in default policy: listed in deny (dccp*)"),
        ("KERNEL_MODULES=-r,ip_vs", "container c9: invalid request: item \"-r\" of KERNEL_MODULES is not a module name"),
        ("KERNEL_MODULES=ip_vs,--force", "item \"--force\""),
        ("KERNEL_MODULES=ip_vs;reboot", "item \"ip_vs;reboot\""),
        ("KERNEL_MODULES=nosuchmod", "container c9: module \"nosuchmod\" not found in"),
        ("KERNEL_MODULES=crc32c", "it is an alias of \"crc32c_generic\" and allow_aliases is false"),
        ("KERNEL_MODULES=cramfs", "module \"cramfs\" denied by policy"),
        ("KERNEL_MODULES=veth", "blacklisted in"),
    ];
    for (env, want) in cases {
        e.config(&[env], &[]);
        assert_refused(&e.hook(&["prestart"], &e.state("c9")), want);
    }
}

#[test]
fn ip_vs_with_an_unknown_module_refuses_the_whole_request() {
    let e = Env::new();
    e.config(&["KERNEL_MODULES=ip_vs,nosuchmod"], &[]);
    // Nothing is live and the kernel here cannot load: had modgate tried ip_vs first it
    // would fail with a load error; it must fail on planning, before loading anything.
    assert_refused(
        &e.hook(&["prestart"], &e.state("c1")),
        "module \"nosuchmod\" not found",
    );
}

#[test]
fn bad_input_fails_closed() {
    let e = Env::new();
    e.config(&["KERNEL_MODULES=dummy"], &[]);
    assert_refused(
        &e.hook(&["prestart"], "not json"),
        "invalid OCI state on stdin",
    );
    assert_refused(&e.hook(&["prestart"], ""), "invalid OCI state on stdin");
    assert_refused(&e.hook(&["prestart"], r#"{"id":"c1"}"#), "no bundle");
    assert_refused(
        &e.hook(&["prestart"], r#"{"id":"c1","bundle":"/nonexistent/b"}"#),
        "container c1: cannot read /nonexistent/b/config.json",
    );
    std::fs::write(e.bundle().join("config.json"), "{").expect("write");
    assert_refused(
        &e.hook(&["prestart"], &e.state("c1")),
        "config.json: invalid config.json",
    );
    assert_refused(
        &e.hook(&["createContainer"], &e.state("c1")),
        "runs inside the container's namespaces",
    );
    assert_refused(
        &e.hook(&["bogus"], &e.state("c1")),
        "unknown hook stage \"bogus\"",
    );
}

#[test]
fn symlinked_or_huge_config_is_refused() {
    let e = Env::new();
    e.config(&["KERNEL_MODULES=dummy"], &[]);
    let real = e.dir.path().join("elsewhere.json");
    std::fs::rename(e.bundle().join("config.json"), &real).expect("mv");
    std::os::unix::fs::symlink(&real, e.bundle().join("config.json")).expect("symlink");
    assert_refused(&e.hook(&["prestart"], &e.state("c1")), "cannot read");
    std::fs::remove_file(e.bundle().join("config.json")).expect("rm");
    let f = std::fs::File::create(e.bundle().join("config.json")).expect("create");
    f.set_len(17 << 20).expect("grow");
    assert_refused(&e.hook(&["prestart"], &e.state("c1")), "larger than");
}

#[test]
fn legacy_bundle_path_and_syscontainer_hooks_name() {
    let e = Env::new();
    e.live(&["dummy"]);
    e.config(&["KERNEL_MODULES=dummy"], &[]);
    let link = e.dir.path().join("syscontainer-hooks");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_modgate"), &link).expect("symlink");
    let log = e.dir.path().join("hook.log");
    let state = format!(
        r#"{{"ociVersion":"1.0.0","id":"old1","pid":1,"bundlePath":"{}"}}"#,
        e.bundle().display()
    );
    let o = run(
        Command::new(&link)
            .arg("--root")
            .arg(e.root())
            .args(["--state", "prestart", "--with-relabel", "--log"])
            .arg(&log),
        &state,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&log).expect("log written");
    assert!(
        text.contains("container=old1") && text.contains("decision=allowed"),
        "{text}"
    );
    assert!(text.contains("--with-relabel is accepted"), "{text}");
    e.config(&["KERNEL_MODULES=dccp"], &[]);
    let o = run(
        Command::new(&link)
            .arg("--root")
            .arg(e.root())
            .args(["--state", "prestart"]),
        &state,
    );
    assert!(!o.status.success());
}

#[test]
fn policy_file_permissive_and_require_annotations() {
    let e = Env::new();
    e.live(&["dummy", "veth"]);
    std::fs::create_dir_all(e.root().join("etc/modgate")).expect("mkdir");
    std::fs::write(
        e.root().join("etc/modgate/policy.toml"),
        "mode = \"permissive\"\ndeny = [\"dccp*\"]\n[require_annotations]\n\"system.container\" = \"true\"\n",
    )
    .expect("write");
    e.config(&["KERNEL_MODULES=dummy"], &[]);
    assert_refused(
        &e.hook(&["prestart"], &e.state("c1")),
        "lacks the annotation system.container=true",
    );
    e.config(&["KERNEL_MODULES=dummy"], &[("system.container", "true")]);
    assert!(e.hook(&["prestart"], &e.state("c1")).status.success());
    std::fs::write(
        e.root().join("etc/modgate/policy.toml"),
        "mode = \"permissive\"\nbogus_key = 1\n",
    )
    .expect("write");
    assert_refused(&e.hook(&["prestart"], &e.state("c1")), "invalid policy");
}

#[test]
fn poststart_does_nothing() {
    let e = Env::new();
    e.config(&["KERNEL_MODULES=dccp"], &[]);
    assert!(e.hook(&["poststart"], "").status.success());
}
