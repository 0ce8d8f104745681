//! podman with the hooks.d files `modgate install hooks-d` writes (in a --hooks-dir),
//! with runc. The hook runs against a fixture root (passed with --hook-arg) in which the
//! requested modules are live: this host kernel has no module support.

mod realrt;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use realrt::*;

const IMAGE: &str = "localhost/modgate-test:latest";

/// podman storage of these tests, kept between runs (one directory, reused) with the
/// busybox image imported once. Short paths: conmon's sockets live under the run root.
fn storage() -> &'static Path {
    static S: OnceLock<PathBuf> = OnceLock::new();
    S.get_or_init(|| {
        let s = PathBuf::from("/tmp/modgate-podman-test");
        let exists = podman(&s)
            .args(["image", "exists", IMAGE])
            .status()
            .is_ok_and(|st| st.success());
        if exists {
            return s;
        }
        let rootfs = s.join("rootfs");
        let _ = std::fs::remove_dir_all(&rootfs);
        busybox_rootfs(&rootfs);
        let mut tar = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .args(["-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .expect("tar");
        let out = podman(&s)
            .args(["import", "-", IMAGE])
            .stdin(tar.stdout.take().expect("tar stdout"))
            .output()
            .expect("podman import");
        assert!(tar.wait().is_ok_and(|st| st.success()), "tar failed");
        show("podman import", &out);
        assert!(out.status.success(), "podman import failed");
        s
    })
}

fn podman(storage: &Path) -> Command {
    let mut c = Command::new("podman");
    c.arg("--root")
        .arg(storage.join("root"))
        .arg("--runroot")
        .arg(storage.join("run"))
        .args([
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
        ]);
    c
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    /// `modgate install hooks-d` into DIR/hooks with extra `install` arguments.
    fn new(install: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let fx = fixture_root(d, IP_VS_LIVE);
        let log = d.join("hook.log");
        let out = run(
            Command::new(MODGATE)
                .arg("--root")
                .arg(d)
                .args(["install", "hooks-d", "--dir", "/hooks", "--binary", MODGATE])
                .arg("--hook-arg=--root")
                .arg(format!("--hook-arg={}", fx.display()))
                .arg("--hook-arg=--log")
                .arg(format!("--hook-arg={}", log.display()))
                .args(install),
            "modgate install hooks-d",
        );
        assert!(out.status.success());
        Env { dir }
    }

    fn hooks(&self) -> PathBuf {
        self.dir.path().join("hooks")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("hook.log")
    }

    /// `podman run` with the working flags for this host; `opts` go before the image.
    fn run(&self, opts: &[&str]) -> Output {
        let mut c = podman(storage());
        c.arg("--hooks-dir")
            .arg(self.hooks())
            .args([
                "run",
                "--rm",
                "--network",
                "none",
                "--ulimit",
                "nofile=1024:1024",
            ])
            .args(["--ulimit", "nproc=1024:1024", "--runtime", "runc"])
            .args(opts)
            .args([IMAGE, "sh", "-c", "echo hello"])
            .stdin(Stdio::null());
        let t = Instant::now();
        let out = run(&mut c, &format!("podman run {opts:?}"));
        eprintln!("podman run {opts:?} took {:?}", t.elapsed());
        out
    }
}

fn assert_ran(out: &Output) {
    assert!(out.status.success(), "podman run failed");
    assert_eq!(stdout(out), "hello\n");
}

fn assert_denied(out: &Output, module: &str) {
    assert!(!out.status.success(), "podman run succeeded");
    let err = stderr(out);
    assert!(
        err.contains("stderr: modgate: container ")
            && err.contains(&format!("module \"{module}\" denied by policy")),
        "{err}"
    );
    assert!(!stdout(out).contains("hello"));
}

#[test]
fn always_allowed_module_runs() {
    if !can_run("always_allowed_module_runs", &["podman", "runc", "busybox"]) {
        return;
    }
    let e = Env::new(&[]);
    assert_ran(&e.run(&["-e", "KERNEL_MODULES=ip_vs"]));
    let pre = log_lines(&e.log(), "prestart");
    assert_eq!(pre.len(), 1, "{pre:?}");
    assert!(
        pre[0].contains("requested=ip_vs") && pre[0].contains("decision=allowed"),
        "{pre:?}"
    );
    assert_eq!(
        log_lines(&e.log(), "poststop").len(),
        1,
        "poststop hook did not run"
    );
}

#[test]
fn always_denied_module_fails_with_modgates_message() {
    if !can_run(
        "always_denied_module_fails_with_modgates_message",
        &["podman", "runc", "busybox"],
    ) {
        return;
    }
    let e = Env::new(&["--when", "always"]);
    assert_denied(&e.run(&["-e", "KERNEL_MODULES=dccp"]), "dccp");
    // The annotation asks too, in this mode.
    assert_denied(
        &e.run(&["--annotation", "modgate.io/kernel-modules=dccp"]),
        "dccp",
    );
}

#[test]
fn always_no_request_runs_untouched() {
    if !can_run(
        "always_no_request_runs_untouched",
        &["podman", "runc", "busybox"],
    ) {
        return;
    }
    let e = Env::new(&[]);
    assert_ran(&e.run(&[]));
    // The hook ran and returned at once: it logs nothing without a request.
    assert!(log_lines(&e.log(), "prestart").is_empty());
}

#[test]
fn annotation_mode_fires_only_with_the_annotation() {
    if !can_run(
        "annotation_mode_fires_only_with_the_annotation",
        &["podman", "runc", "busybox"],
    ) {
        return;
    }
    let e = Env::new(&["--when", "annotation"]);
    // Without the annotation the hook does not run, so even a denied request passes.
    assert_ran(&e.run(&["-e", "KERNEL_MODULES=dccp"]));
    assert!(log_lines(&e.log(), "prestart").is_empty());
    assert_denied(
        &e.run(&["--annotation", "modgate.io/kernel-modules=dccp"]),
        "dccp",
    );
    assert_ran(&e.run(&["--annotation", "modgate.io/kernel-modules=ip_vs"]));
    let pre = log_lines(&e.log(), "prestart");
    assert_eq!(pre.len(), 2, "{pre:?}");
    assert!(
        pre[1].contains("requested=ip_vs") && pre[1].contains("decision=allowed"),
        "{pre:?}"
    );
}
