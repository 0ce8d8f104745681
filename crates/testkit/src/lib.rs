//! Test support for modgate's integration tests: copies of the fixture root
//! (`tests/fixtures/roots/basic`, a fake module tree with modprobe.d and /proc files)
//! that a test can change, the kernel fakes ([`FakeKernel`], [`RecordingSyscalls`]),
//! and [`TestEnv`], a temp tree to drive the `modgate` binary in.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub use modgate_host::kernel::fake::{Call, FakeKernel, RecordingSyscalls};

mod env;
pub use env::TestEnv;

/// The seed request: what a system container asks for in the project's first use.
pub const SEED_REQUEST: &str = "ip_vs,ip_vs_wrr";

/// What the seed request loads in the fixture root, in order.
pub const SEED_CLOSURE: [&str; 5] = [
    "crc32c_generic",
    "libcrc32c",
    "nf_conntrack",
    "ip_vs",
    "ip_vs_wrr",
];

/// The kernel release of the fixture root.
pub const FIXTURE_RELEASE: &str = "6.1.0-fixture";

/// The fixture root in the repository (read-only: copy it before changing anything).
pub fn basic_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/roots/basic")
}

/// Copies the fixture root to `dst` and marks `live` modules as loaded.
pub fn fixture_root(dst: &Path, live: &[&str]) -> PathBuf {
    copy_dir(&basic_root(), dst);
    set_live(dst, live);
    dst.to_path_buf()
}

/// Recursive copy of a small directory tree of plain files.
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("mkdir");
    for e in std::fs::read_dir(src).expect("readdir").flatten() {
        let to = dst.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).expect("copy");
        }
    }
}

/// Makes modules look loaded as the kernel shows them: `initstate` = `live`, `refcnt`
/// 0, an empty `holders` directory, under `ROOT/sys/module/NAME`.
pub fn set_live(root: &Path, names: &[&str]) {
    modgate_host::kernel::fake::write_live(root, names);
}

/// Runs a command with `stdin` fed to it and its output captured. A command that exits
/// before reading its input (a hook refusing early) is not an error here.
pub fn run_with_stdin(cmd: &mut Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let written = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes());
    if let Err(e) = written {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
    }
    child.wait_with_output().expect("wait")
}

/// Runs `cmd` with `stdin` handed over the way lxc (iSulad's lcr runtime) hands OCI
/// hooks their state: a non-blocking pipe, written only after the process started (here
/// 200 ms after), so that its first read finds the pipe empty.
pub fn run_with_late_nonblocking_stdin(cmd: &mut Command, stdin: &str) -> Output {
    let (r, mut w) = std::io::pipe().expect("pipe");
    let flags = rustix::fs::fcntl_getfl(&r).expect("F_GETFL");
    rustix::fs::fcntl_setfl(&r, flags | rustix::fs::OFlags::NONBLOCK).expect("F_SETFL");
    let child = cmd
        .stdin(r)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(std::time::Duration::from_millis(200));
    if let Err(e) = w.write_all(stdin.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
    }
    drop(w);
    child.wait_with_output().expect("wait")
}

/// The real kernel tree `scripts/fetch-kernel` unpacked, as `(root, release)`, when the
/// environment names one (`MODGATE_KERNEL_ROOT`, `MODGATE_KERNEL_RELEASE`). Without it a
/// test skips, saying so, unless `MODGATE_REQUIRE_REAL` is set: then it fails.
pub fn real_tree() -> Option<(String, String)> {
    match (
        std::env::var("MODGATE_KERNEL_ROOT"),
        std::env::var("MODGATE_KERNEL_RELEASE"),
    ) {
        (Ok(root), Ok(kv)) => Some((root, kv)),
        _ => {
            assert!(
                std::env::var_os("MODGATE_REQUIRE_REAL").is_none(),
                "MODGATE_REQUIRE_REAL is set but MODGATE_KERNEL_ROOT/RELEASE are not"
            );
            eprintln!(
                "skipped: no real kernel tree (set MODGATE_KERNEL_ROOT and MODGATE_KERNEL_RELEASE)"
            );
            None
        }
    }
}
