//! Shared by the tests that drive real runtimes (runc, podman, containerd): whether they
//! can run here, a fixture root in which the requested modules are already live (this
//! host kernel has no module support; the VM suite loads for real), and a busybox root
//! file system.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const MODGATE: &str = env!("CARGO_BIN_EXE_modgate");

/// Whether the test can run: the tools exist and we are root. Without them the test
/// says why and passes, unless MODGATE_REQUIRE_REAL=1 (CI), where it fails.
pub fn can_run(test: &str, tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| which(t).is_none())
        .collect();
    let why = if !missing.is_empty() {
        format!("{} not installed", missing.join(", "))
    } else if !is_root() {
        "not running as root".to_string()
    } else {
        return true;
    };
    if std::env::var("MODGATE_REQUIRE_REAL").as_deref() == Ok("1") {
        panic!("{test}: {why}, and MODGATE_REQUIRE_REAL=1");
    }
    eprintln!("skipped {test}: {why}");
    false
}

pub fn which(tool: &str) -> Option<PathBuf> {
    modgate_host::which::in_path(std::env::var_os("PATH").as_deref(), tool, None)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|u| u.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// A copy of `tests/fixtures/roots/basic` in which `live` modules are loaded.
pub fn fixture_root(dir: &Path, live: &[&str]) -> PathBuf {
    modgate_testkit::fixture_root(&dir.join("fixture-root"), live)
}

/// ip_vs and everything its plan holds, live.
pub const IP_VS_LIVE: &[&str] = &["ip_vs", "nf_conntrack", "libcrc32c", "crc32c_generic"];

/// A busybox root file system (Debian's busybox is static).
pub fn busybox_rootfs(dir: &Path) {
    let busybox = which("busybox").expect("busybox");
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "root"] {
        std::fs::create_dir_all(dir.join(d)).expect("mkdir");
    }
    std::fs::copy(&busybox, dir.join("bin/busybox")).expect("copy busybox");
    for a in ["sh", "echo", "cat", "true", "sleep"] {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(a)).expect("symlink");
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").expect("passwd");
    std::fs::write(dir.join("etc/group"), "root:x:0:\n").expect("group");
}

pub fn show(what: &str, out: &Output) {
    eprintln!(
        "{what}: {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    show(what, &out);
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The hook log lines of one stage.
pub fn log_lines(log: &Path, stage: &str) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&format!("stage={stage} ")))
        .map(str::to_string)
        .collect()
}

/// A container id unique to this test process.
pub fn id(name: &str) -> String {
    format!("mg-{name}-{}", std::process::id())
}
