//! iSulad for real (built from ../shared/engines by scripts/engines; containers run with
//! runc through isulad-shim): the hook spec `modgate install isulad` writes, given to
//! `isula run --hook-spec`; the daemon-wide spec of `--daemon-default` after a real
//! restart of the daemon; and the syscontainer-hooks link of `install syscontainer-tools`
//! serving an old-style hook spec. The hook runs against a fixture root in which the
//! requested modules are live (this host kernel has no module support).

mod engine;
mod realrt;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

use engine::*;
use realrt::*;

const IMAGE: &str = "modgate-busybox:latest";

/// One isulad at a time: the engine script's socket and state paths are fixed.
static ISULAD: Mutex<()> = Mutex::new(());

fn isulad(test: &str) -> Option<(Isulad, MutexGuard<'static, ()>, Fixture)> {
    isulad_test(
        test,
        "MODGATE_ISULAD_SH",
        &["runc", "busybox", "tar", "unshare"],
        &ISULAD,
        "mg-isulad",
    )
}

/// The daemon with the script's configuration and the test image.
fn start(i: &Isulad) -> Daemon<'_> {
    let d = i.start();
    i.image(IMAGE);
    d
}

/// `isula run --rm [--hook-spec SPEC] [-e ENV] IMAGE sh -c 'echo hello'`.
fn run_hello(i: &Isulad, spec: Option<&str>, env: Option<&str>) -> Output {
    let mut args = vec!["run", "--rm"];
    if let Some(spec) = spec {
        args.extend(["--hook-spec", spec]);
    }
    if let Some(env) = env {
        args.extend(["-e", env]);
    }
    args.extend([IMAGE, "sh", "-c", "echo hello"]);
    i.run_isula(&args)
}

fn assert_refused(out: &Output, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(125),
        "isula run must exit 125 on refusal"
    );
    assert_modgate_refused(&stderr(out), what);
    assert!(!stdout(out).contains("hello"), "the container ran");
}

#[test]
fn hook_spec_allowed_request_holds_until_the_container_stops() {
    let Some((i, _one, f)) = isulad("hook_spec_allowed_request_holds_until_the_container_stops")
    else {
        return;
    };
    let spec = f.installed_hook_spec();
    let spec = spec.to_str().expect("utf-8");
    let _d = start(&i);

    let out = run_hello(&i, Some(spec), Some("KERNEL_MODULES=ip_vs,ip_vs_wrr"));
    assert_served_and_released(&out, &f, || i.log());
    assert_eq!(log_lines(&f.log(), "poststop").len(), 1);

    // Detached: the container holds the modules while it runs, under iSulad's id.
    let out = i.run_isula(&[
        "run",
        "-d",
        "--hook-spec",
        spec,
        "-e",
        "KERNEL_MODULES=ip_vs",
        IMAGE,
        "sleep",
        "1000",
    ]);
    i.assert_ok("isula run -d", &out, &f.log());
    let id = first_line(&out);
    let _c = Containers {
        i: &i,
        ids: vec![id.clone()],
    };
    assert_eq!(id.len(), 64, "container id {id:?}");
    assert_eq!(holders(&f.fx()), vec![id.clone()], "{}", status(&f.fx()));
    let stop = i.run_isula(&["stop", "-t", "1", &id]);
    assert!(stop.status.success());
    assert_released(&f.fx());
}

#[test]
fn hook_spec_refusals_exit_125_with_modgates_line() {
    let Some((i, _one, f)) = isulad("hook_spec_refusals_exit_125_with_modgates_line") else {
        return;
    };
    let spec = f.installed_hook_spec();
    let spec = spec.to_str().expect("utf-8");
    let _d = start(&i);
    let run_with = |env: &str| run_hello(&i, Some(spec), Some(env));

    assert_refused(
        &run_with("KERNEL_MODULES=dccp"),
        "module \"dccp\" denied by policy",
    );
    // Injection attempts stop at the request grammar, before anything is planned.
    assert_refused(
        &run_with("KERNEL_MODULES=-r ip_vs"),
        "invalid request: item \"-r ip_vs\" of KERNEL_MODULES is not a module name",
    );
    assert_refused(
        &run_with("KERNEL_MODULES=a;b"),
        "invalid request: item \"a;b\" of KERNEL_MODULES is not a module name",
    );
    // Refused containers hold nothing, and --rm left none behind.
    assert!(holders(&f.fx()).is_empty(), "{}", status(&f.fx()));
    let ps = i.run_isula(&["ps", "-a", "-q"]);
    assert_eq!(stdout(&ps).trim(), "", "containers left behind");

    // No request: the hook returns at once and logs nothing.
    let logged = log_lines(&f.log(), "prestart").len();
    let out = run_hello(&i, Some(spec), None);
    i.assert_ok("isula run", &out, &f.log());
    assert_eq!(stdout(&out), "hello\n");
    assert_eq!(log_lines(&f.log(), "prestart").len(), logged);
    assert!(holders(&f.fx()).is_empty());
}

/// Starts isulad in a private mount namespace in which the engine's configuration
/// directories are those of `root` (where `modgate install --root ROOT` wrote): the
/// daemon reads exactly what modgate wrote, and the host's files stay untouched.
fn start_with_root<'a>(i: &'a Isulad, root: &Path, binds: &[(PathBuf, PathBuf)]) -> Daemon<'a> {
    let mut script = String::from("set -e\n");
    for (from, to) in binds {
        script.push_str(&format!(
            "mount --bind '{}' '{}'\n",
            from.display(),
            to.display()
        ));
    }
    script.push_str(&format!(
        "cd / && exec setsid '{}' >'{}' 2>&1 </dev/null\n",
        i.prefix.join("bin/isulad").display(),
        i.run.join("isulad.log").display()
    ));
    std::fs::write(root.join("start.sh"), script).expect("start.sh");
    let mut c = Command::new("unshare");
    c.args(["-m", "--propagation", "private", "sh"])
        .arg(root.join("start.sh"))
        .stdin(std::process::Stdio::null());
    for (k, v) in &i.env {
        c.env(k, v);
    }
    let mut child = c.spawn().expect("unshare isulad");
    // The script's `stop` stops the daemon named in this file (and cleans up after it).
    std::fs::write(i.pidfile(), child.id().to_string()).expect("pid file");
    let d = Daemon { isulad: i };
    let up = wait_for(60, || {
        matches!(child.try_wait(), Ok(Some(_)))
            || i.isula()
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success())
    }) && matches!(child.try_wait(), Ok(None));
    // Reap it when the script's `stop` has ended it.
    std::thread::spawn(move || child.wait());
    assert!(up, "isulad did not start:\n{}", i.log());
    d
}

#[test]
fn daemon_default_spec_applies_after_a_restart() {
    let Some((i, _one, f)) = isulad("daemon_default_spec_applies_after_a_restart") else {
        return;
    };
    // The configuration the script runs isulad with (it writes it at start).
    let d = start(&i);
    // Before: no daemon-wide hook, a request is not served (nothing is held).
    let out = run_hello(&i, None, Some("KERNEL_MODULES=dccp"));
    assert!(out.status.success());
    drop(d);

    // ROOT/etc/isulad/daemon.json is the daemon's (compiled-in PREFIX/etc/isulad); the
    // spec it names (PREFIX/etc/default/isulad/hooks/default.json) is ROOT/PREFIX/...
    let root = f.p("root");
    let etc = i.prefix.join("etc/isulad");
    let hooks_dir = i.prefix.join("etc/default/isulad/hooks");
    let rooted_hooks = root.join(hooks_dir.strip_prefix("/").expect("absolute"));
    std::fs::create_dir_all(&rooted_hooks).expect("mkdir");
    // The whole directory: it is bind-mounted over the daemon's (daemon_constants.json...).
    modgate_testkit::copy_dir(&etc, &root.join("etc/isulad"));
    let shipped = std::fs::read_to_string(hooks_dir.join("default.json")).expect("default.json");
    std::fs::write(rooted_hooks.join("default.json"), &shipped).expect("copy");
    let daemon_json = std::fs::read_to_string(root.join("etc/isulad/daemon.json")).expect("read");
    assert!(daemon_json.contains(&hooks_dir.join("default.json").display().to_string()));

    modgate(
        &[
            "--root",
            root.to_str().expect("utf-8"),
            "install",
            "isulad",
            "--daemon-default",
        ],
        &f.hook_args(),
    );
    let merged = std::fs::read_to_string(rooted_hooks.join("default.json")).expect("merged");
    assert!(merged.contains(MODGATE), "{merged}");
    // The daemon.json already named its spec: left as it was.
    assert_eq!(
        std::fs::read_to_string(root.join("etc/isulad/daemon.json")).expect("read"),
        daemon_json
    );

    let _d = start_with_root(
        &i,
        &root,
        &[(root.join("etc/isulad"), etc), (rooted_hooks, hooks_dir)],
    );

    // Every container now gets the hooks, without --hook-spec.
    let out = run_hello(&i, None, Some("KERNEL_MODULES=ip_vs,ip_vs_wrr"));
    assert_served_and_released(&out, &f, || i.log());

    let out = run_hello(&i, None, Some("KERNEL_MODULES=dccp"));
    assert_refused(&out, "module \"dccp\" denied by policy");

    let out = run_hello(&i, None, None);
    assert!(out.status.success(), "no request: isula run failed");
    assert!(holders(&f.fx()).is_empty());
}

#[test]
fn syscontainer_tools_link_serves_an_old_hook_spec() {
    let Some((i, _one, f)) = isulad("syscontainer_tools_link_serves_an_old_hook_spec") else {
        return;
    };
    // A hook spec as syscontainer-tools users have it, plus the fixture root.
    let spec = f.p("hookspec.json");
    std::fs::write(&spec, f.syscontainer_hook_spec(&f.p("root")).to_string()).expect("spec");
    let spec = spec.to_str().expect("utf-8");
    let _d = start(&i);

    let out = run_hello(&i, Some(spec), Some("KERNEL_MODULES=ip_vs,ip_vs_wrr"));
    assert_served_and_released(&out, &f, || i.log());

    let out = i.run_isula(&[
        "run",
        "--rm",
        "--hook-spec",
        spec,
        "-e",
        "KERNEL_MODULES=ip_vs,-r",
        IMAGE,
        "true",
    ]);
    assert_refused(&out, "item \"-r\" of KERNEL_MODULES is not a module name");
    assert!(holders(&f.fx()).is_empty());
}
