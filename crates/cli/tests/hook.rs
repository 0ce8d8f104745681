//! The hook binary end to end, against a copy of the fixture root in which the modules
//! a test asks for are already live (this host kernel cannot load modules; the VM suite
//! loads for real). Every refusal must exit non-zero with one `modgate:` line.

use std::process::{Command, Output};

use modgate_testkit::{TestEnv, SEED_CLOSURE as SEED, SEED_REQUEST};

fn env() -> TestEnv {
    TestEnv::new(env!("CARGO_BIN_EXE_modgate"), &[])
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

#[test]
fn no_request_exits_zero_quietly() {
    let e = env();
    e.config("c1", &["PATH=/bin"], &[]);
    let o = e.hook(&["prestart"], &e.state("c1"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stderr.is_empty() && o.stdout.is_empty());
}

#[test]
fn seed_request_with_modules_live_succeeds() {
    let e = env();
    e.live(&SEED);
    e.config("c1", &[&format!("KERNEL_MODULES={SEED_REQUEST}")], &[]);
    let o = e.hook(&["prestart"], &e.state("c1"));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = e.hook(&["createRuntime"], &e.state("c1"));
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn annotation_route_and_merge() {
    let e = env();
    e.live(&["dummy"]);
    e.config(
        "c1",
        &["PATH=/bin"],
        &[("modgate.io/kernel-modules", "dummy")],
    );
    assert!(e.hook(&["prestart"], &e.state("c1")).status.success());
    // The annotation adds to the environment's request: dccp there is still refused.
    e.config(
        "c2",
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
    let e = env();
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
        e.config("c9", &[env], &[]);
        assert_refused(&e.hook(&["prestart"], &e.state("c9")), want);
    }
}

#[test]
fn ip_vs_with_an_unknown_module_refuses_the_whole_request() {
    let e = env();
    e.config("c1", &["KERNEL_MODULES=ip_vs,nosuchmod"], &[]);
    // Nothing is live and the kernel here cannot load: had modgate tried ip_vs first it
    // would fail with a load error; it must fail on planning, before loading anything.
    assert_refused(
        &e.hook(&["prestart"], &e.state("c1")),
        "module \"nosuchmod\" not found",
    );
}

#[test]
fn bad_input_fails_closed() {
    let e = env();
    e.config("c1", &["KERNEL_MODULES=dummy"], &[]);
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
    std::fs::write(e.bundle("c1").join("config.json"), "{").expect("write");
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
    let e = env();
    e.config("c1", &["KERNEL_MODULES=dummy"], &[]);
    let real = e.dir().join("elsewhere.json");
    std::fs::rename(e.bundle("c1").join("config.json"), &real).expect("mv");
    std::os::unix::fs::symlink(&real, e.bundle("c1").join("config.json")).expect("symlink");
    assert_refused(
        &e.hook(&["prestart"], &e.state("c1")),
        "config.json is a symbolic link: refused",
    );
    std::fs::remove_file(e.bundle("c1").join("config.json")).expect("rm");
    // A FIFO would block a reader forever: refused at once, without waiting for a writer.
    let made = Command::new("mkfifo")
        .arg(e.bundle("c1").join("config.json"))
        .status()
        .expect("mkfifo");
    assert!(made.success());
    assert_refused(
        &e.hook(&["prestart"], &e.state("c1")),
        "config.json is not a regular file: refused",
    );
    std::fs::remove_file(e.bundle("c1").join("config.json")).expect("rm");
    let f = std::fs::File::create(e.bundle("c1").join("config.json")).expect("create");
    f.set_len(17 << 20).expect("grow");
    assert_refused(&e.hook(&["prestart"], &e.state("c1")), "larger than");
}

#[test]
fn legacy_bundle_path_and_syscontainer_hooks_name() {
    let e = env();
    e.live(&["dummy"]);
    e.config("c1", &["KERNEL_MODULES=dummy"], &[]);
    let link = e.dir().join("syscontainer-hooks");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_modgate"), &link).expect("symlink");
    let log = e.dir().join("hook.log");
    let state = format!(
        r#"{{"ociVersion":"1.0.0","id":"old1","pid":1,"bundlePath":"{}"}}"#,
        e.bundle("c1").display()
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
    e.config("c1", &["KERNEL_MODULES=dccp"], &[]);
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
fn a_state_written_late_to_a_nonblocking_pipe_is_waited_for() {
    // lxc's OCI hooks: stdin is an O_NONBLOCK pipe that lxc writes after the fork. The
    // hook must wait for the state, not refuse the container on EAGAIN.
    let e = env();
    e.live(&SEED);
    e.config("c1", &[&format!("KERNEL_MODULES={SEED_REQUEST}")], &[]);
    let log = e.log_path();
    let o = modgate_testkit::run_with_late_nonblocking_stdin(
        Command::new(env!("CARGO_BIN_EXE_modgate"))
            .arg("--root")
            .arg(e.root())
            .args(["hook", "prestart", "--log"])
            .arg(&log),
        &e.state("c1"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(e.log().contains("decision=allowed"), "{}", e.log());
}

/// `modgate hook prestart --timeout 1` started through `sh -c PREFIX; exec modgate ...`
/// with a stdin that stays open and empty: how it ended, or `None` if it still ran after
/// 15 s (then it is killed).
fn hook_whose_state_never_comes(e: &TestEnv, prefix: &str) -> Option<std::process::ExitStatus> {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            r#"{prefix}; exec "$0" --root "$1" hook prestart --timeout 1"#
        ))
        .arg(env!("CARGO_BIN_EXE_modgate"))
        .arg(e.root())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let _open = child.stdin.take();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(15) {
        if let Some(st) = child.try_wait().expect("wait") {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn a_state_that_never_comes_ends_at_the_timeout_even_with_sigalrm_ignored() {
    use std::os::unix::process::ExitStatusExt;
    let e = env();
    // SIGALRM ignored by the runtime survives exec: the hook must not inherit a
    // disarmed deadline.
    for prefix in [":", "trap '' ALRM"] {
        let st = hook_whose_state_never_comes(&e, prefix)
            .unwrap_or_else(|| panic!("({prefix}) the hook still ran 15 s after its 1 s timeout"));
        assert_eq!(st.signal(), Some(libc::SIGALRM), "({prefix}) {st}");
    }
}

#[test]
fn policy_file_permissive_and_require_annotations() {
    let e = env();
    e.live(&["dummy", "veth"]);
    std::fs::create_dir_all(e.root().join("etc/modgate")).expect("mkdir");
    std::fs::write(
        e.root().join("etc/modgate/policy.toml"),
        "mode = \"permissive\"\ndeny = [\"dccp*\"]\n[require_annotations]\n\"system.container\" = \"true\"\n",
    )
    .expect("write");
    e.config("c1", &["KERNEL_MODULES=dummy"], &[]);
    assert_refused(
        &e.hook(&["prestart"], &e.state("c1")),
        "lacks the annotation system.container=true",
    );
    e.config(
        "c1",
        &["KERNEL_MODULES=dummy"],
        &[("system.container", "true")],
    );
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
    let e = env();
    e.config("c1", &["KERNEL_MODULES=dccp"], &[]);
    assert!(e.hook(&["poststart"], "").status.success());
}

#[test]
fn a_denial_reaches_the_log_once() {
    let e = env();
    e.config("c1", &["KERNEL_MODULES=dccp"], &[]);
    let log = e.log_path().display().to_string();
    let o = e.hook(&["prestart", "--log", &log], &e.state("c1"));
    assert_refused(&o, "module \"dccp\" denied by policy");
    let text = e.log();
    assert_eq!(text.matches("denied by policy").count(), 1, "{text}");
    assert!(text.contains("decision=denied"), "{text}");
}

/// The engine may start the hook with standard error closed: the log file
/// must not take descriptor 2's number and receive the error line as well.
#[test]
fn closed_standard_descriptors_are_not_reused() {
    let e = env();
    e.config("c1", &["KERNEL_MODULES=dccp"], &[]);
    let state = e.dir().join("state.json");
    std::fs::write(&state, e.state("c1")).expect("state");
    let o = Command::new("sh")
        .arg("-c")
        .arg(r#"exec 2>&-; "$0" --root "$1" hook prestart --log "$2" < "$3""#)
        .arg(env!("CARGO_BIN_EXE_modgate"))
        .arg(e.root())
        .arg(e.log_path())
        .arg(&state)
        .output()
        .expect("sh");
    assert!(!o.status.success(), "a denial must fail");
    let text = e.log();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("decision=denied"), "{text}");
}

#[test]
fn modprobe_configuration_warnings_go_to_the_log() {
    let e = env();
    e.live(&["dummy"]);
    std::fs::write(
        e.root().join("etc/modprobe.d/broken.conf"),
        "frobnicate dummy\n",
    )
    .expect("write");
    e.config("c1", &["KERNEL_MODULES=dummy"], &[]);
    let log = e.log_path().display().to_string();
    let o = e.hook(&["prestart", "--log", &log], &e.state("c1"));
    assert!(o.status.success(), "{}", stderr(&o));
    let text = e.log();
    assert!(
        text.contains("broken.conf line 1: ignoring bad line starting with 'frobnicate'"),
        "{text}"
    );
}

#[test]
fn a_policy_path_that_is_present_but_broken_fails_closed() {
    let e = env();
    e.live(&SEED);
    e.config("c1", &[&format!("KERNEL_MODULES={SEED_REQUEST}")], &[]);
    let policy = e.root().join("etc/modgate/policy.toml");
    std::fs::create_dir_all(policy.parent().expect("parent")).expect("mkdir");
    std::os::unix::fs::symlink("/nonexistent/policy.toml", &policy).expect("symlink");
    assert_refused(&e.hook(&["prestart"], &e.state("c1")), "cannot read policy");
    std::fs::remove_file(&policy).expect("rm");
    std::fs::create_dir(&policy).expect("mkdir");
    assert_refused(&e.hook(&["prestart"], &e.state("c1")), "cannot read policy");
}

#[test]
fn a_container_id_cannot_forge_log_lines_or_reach_a_terminal() {
    let e = env();
    e.live(&["dummy"]);
    e.request("c1", "dummy");
    let evil = "evil\nFORGED decision=allowed\u{1b}[31m";
    let state = format!(
        r#"{{"ociVersion":"1.0.2","id":{},"bundle":"{}"}}"#,
        serde_json::to_string(evil).expect("json"),
        e.bundle("c1").display()
    );
    let log = e.log_path().display().to_string();
    let o = e.hook(&["prestart", "--log", &log], &state);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = e.log();
    assert_eq!(text.lines().count(), 1, "one event, one line: {text:?}");
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert!(text.contains("evil\\nFORGED"), "{text:?}");
    let status = e.modgate(&["--kernel-release", "6.1.0-fixture", "status"], "");
    let out = String::from_utf8_lossy(&status.stdout);
    assert!(
        !out.contains('\u{1b}') && !out.contains("\nFORGED"),
        "{out:?}"
    );
    // A refusal for such a container is still one line, with no raw escape.
    e.request("c2", "dccp");
    let state2 = state.replace("/c1", "/c2");
    let o = e.hook(&["prestart", "--log", &log], &state2);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(!err.contains('\u{1b}'), "{err:?}");
    assert!(!e.log().contains('\u{1b}'));
}

#[test]
fn a_load_past_its_budget_fails_closed_before_inserting() {
    let e = env();
    e.live(&["crc32c_generic", "libcrc32c"]);
    std::fs::create_dir_all(e.root().join("proc")).expect("mkdir");
    std::fs::write(e.root().join("proc/modules"), "").expect("proc/modules");
    e.config("c1", &[&format!("KERNEL_MODULES={SEED_REQUEST}")], &[]);
    let o = e.hook(&["prestart", "--load-budget-ms", "0"], &e.state("c1"));
    assert_refused(
        &o,
        "container c1: the load ran past its budget of 0ns before inserting module \"nf_conntrack\"",
    );
    let records = std::fs::read_dir(e.store().join("containers"))
        .map(|d| {
            d.flatten()
                .filter(|f| f.path().extension().is_some_and(|x| x == "json"))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(records, 0, "a failed load leaves no record");
}
