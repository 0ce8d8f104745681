//! containerd (Debian's package) with modgate-runtime as the runc binary of
//! `ctr run --runc-binary`: containerd's runc shim calls the wrapper with its own global
//! options (--root, --log, --log-format json), the wrapper adds the hooks, runc runs them.
//! A private containerd is started for the test (its own root, state and socket).

mod realrt;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use realrt::*;

struct Containerd {
    dir: tempfile::TempDir,
    child: Child,
}

impl Containerd {
    fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("mg-ctrd")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let d = dir.path();
        let fx = fixture_root(d, IP_VS_LIVE);
        busybox_rootfs(&d.join("rootfs"));
        std::fs::create_dir_all(d.join("bin")).expect("mkdir");
        std::os::unix::fs::symlink(MODGATE, d.join("bin/modgate-runtime")).expect("link");
        std::fs::write(
            d.join("runtime.toml"),
            format!(
                "hook_args = [\"--root\", {:?}, \"--log\", {:?}]\n",
                fx.display().to_string(),
                d.join("hook.log").display().to_string()
            ),
        )
        .expect("runtime.toml");
        std::fs::write(
            d.join("config.toml"),
            format!(
                "version = 2\nroot = {:?}\nstate = {:?}\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = {:?}\n",
                d.join("root").display().to_string(),
                d.join("state").display().to_string(),
                d.join("sock").display().to_string()
            ),
        )
        .expect("config.toml");
        // The shim and the wrapper inherit containerd's environment.
        let child = Command::new("containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .env("MODGATE_RUNTIME_CONFIG", d.join("runtime.toml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("containerd.log")).expect("log"))
            .spawn()
            .expect("start containerd");
        let c = Containerd { dir, child };
        let t = Instant::now();
        while !c.p("sock").exists() {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "containerd did not start:\n{}",
                c.daemon_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("containerd up in {:?}", t.elapsed());
        c
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.p("containerd.log")).unwrap_or_default()
    }

    fn run(&self, id: &str, env: &str) -> std::process::Output {
        let t = Instant::now();
        let out = run(
            Command::new("ctr")
                .arg("--address")
                .arg(self.p("sock"))
                .args(["-n", "modgate", "run", "--rm", "--rootfs", "--runc-binary"])
                .arg(self.p("bin/modgate-runtime"))
                .args(["--env", env])
                .arg(self.p("rootfs"))
                .args([id, "/bin/sh", "-c", "echo hello"])
                .stdin(Stdio::null()),
            &format!("ctr run {env}"),
        );
        eprintln!("ctr run {env} took {:?}", t.elapsed());
        out
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Our own child: ask it to stop, then make sure.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn log(c: &Containerd, stage: &str) -> Vec<String> {
    log_lines(Path::new(&c.p("hook.log")), stage)
}

#[test]
fn ctr_run_with_the_wrapper_as_runc_binary() {
    if !can_run(
        "ctr_run_with_the_wrapper_as_runc_binary",
        &["containerd", "ctr", "runc", "busybox"],
    ) {
        return;
    }
    let c = Containerd::start();
    let ok = c.run(&id("ok"), "KERNEL_MODULES=ip_vs");
    assert!(ok.status.success(), "ctr run failed:\n{}", c.daemon_log());
    assert_eq!(stdout(&ok), "hello\n");
    let pre = log(&c, "prestart");
    assert_eq!(pre.len(), 1, "{pre:?}");
    assert!(
        pre[0].contains("requested=ip_vs") && pre[0].contains("decision=allowed"),
        "{pre:?}"
    );
    assert_eq!(log(&c, "poststop").len(), 1);

    let denied = c.run(&id("deny"), "KERNEL_MODULES=dccp");
    assert!(!denied.status.success());
    let err = stderr(&denied);
    assert!(
        err.contains("stderr: modgate: container ")
            && err.contains("module \"dccp\" denied by policy"),
        "{err}"
    );
    assert!(!stdout(&denied).contains("hello"));
}
