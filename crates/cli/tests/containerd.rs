//! containerd (Debian's package) with modgate-runtime as the runc binary of
//! `ctr run --runc-binary`: containerd's runc shim calls the wrapper with its own global
//! options (--root, --log, --log-format json), the wrapper adds the hooks, runc runs them.
//! A private containerd is started for the test (its own root, state and socket).

mod engine;
mod realrt;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use engine::*;
use realrt::*;

struct Containerd {
    // Dropped in this order: the daemon, then its files.
    daemon: Proc,
    dir: tempfile::TempDir,
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
        wrapper_link(d);
        runtime_settings(&d.join("runtime.toml"), &fx, &d.join("hook.log"));
        std::fs::write(
            d.join("config.toml"),
            format!(
                "{}disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n",
                containerd_base_config(d)
            ),
        )
        .expect("config.toml");
        // The shim and the wrapper inherit containerd's environment.
        let daemon = containerd(d, &d.join("config.toml"), &d.join("runtime.toml"));
        Containerd { daemon, dir }
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn daemon_log(&self) -> String {
        self.daemon.log_tail()
    }

    fn run(&self, id: &str, env: &str) -> std::process::Output {
        let t = Instant::now();
        let out = run(
            Command::new("ctr")
                .arg("--address")
                .arg(self.p("ctrd.sock"))
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

/// Starts containerd on `config`, waits for `sock` and returns what `ctr plugins ls`
/// says of the CRI plugin (`ok` or `error`), with the daemon's log for messages.
fn cri_status(config: &Path, sock: &Path, log: &Path) -> (String, String) {
    let mut child = Command::new("containerd")
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log"))
        .spawn()
        .expect("start containerd");
    let t = Instant::now();
    let daemon_log = || std::fs::read_to_string(log).unwrap_or_default();
    while !sock.exists() && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = Command::new("ctr")
        .arg("--address")
        .arg(sock)
        .args(["plugins", "ls"])
        .output()
        .expect("ctr plugins ls");
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
    let status = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| {
            l.starts_with("io.containerd.grpc.v1") && l.split_whitespace().nth(1) == Some("cri")
        })
        .and_then(|l| l.split_whitespace().last().map(str::to_string))
        .unwrap_or_else(|| format!("missing ({})", String::from_utf8_lossy(&out.stderr)));
    (status, daemon_log())
}

#[test]
fn the_cri_plugin_loads_with_the_installed_config() {
    if !can_run(
        "the_cri_plugin_loads_with_the_installed_config",
        &["containerd", "ctr"],
    ) {
        return;
    }
    let default = Command::new("containerd")
        .args(["config", "default"])
        .output()
        .expect("containerd config default");
    assert!(default.status.success());
    let default = String::from_utf8(default.stdout).expect("utf8");
    // Debian's stock /etc/containerd/config.toml, which leaves the CRI plugin's runtimes
    // to containerd's defaults.
    let stock = "version = 2\n\n[plugins]\n  [plugins.\"io.containerd.grpc.v1.cri\"]\n    [plugins.\"io.containerd.grpc.v1.cri\".cni]\n      bin_dir = \"/usr/lib/cni\"\n      conf_dir = \"/etc/cni/net.d\"\n  [plugins.\"io.containerd.internal.v1.opt\"]\n    path = \"/var/lib/containerd/opt\"\n";
    for (name, base) in [("stock", stock.to_string()), ("default", default)] {
        let d = tempfile::Builder::new()
            .prefix("mg-cri")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let p = |rel: &str| d.path().join(rel).display().to_string();
        // A private containerd: its own root, state and socket, no overlay here.
        let mut text = base
            .replace(
                "root = \"/var/lib/containerd\"",
                &format!("root = {:?}", p("root")),
            )
            .replace(
                "state = \"/run/containerd\"",
                &format!("state = {:?}", p("state")),
            )
            .replace(
                "address = \"/run/containerd/containerd.sock\"",
                &format!("address = {:?}", p("sock")),
            )
            .replace("snapshotter = \"overlayfs\"", "snapshotter = \"native\"")
            .replace(
                "path = \"/var/lib/containerd/opt\"",
                &format!("path = {:?}", p("opt")),
            )
            .replace(
                "path = \"/opt/containerd\"",
                &format!("path = {:?}", p("opt")),
            );
        if name == "stock" {
            text = text.replacen(
                "version = 2\n",
                &format!(
                    "version = 2\nroot = {:?}\nstate = {:?}\n[grpc]\n  address = {:?}\n",
                    p("root"),
                    p("state"),
                    p("sock")
                ),
                1,
            );
            text.push_str(
                "[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"native\"\n",
            );
        }
        let config = d.path().join("r/etc/containerd/config.toml");
        std::fs::create_dir_all(config.parent().expect("parent")).expect("mkdir");
        std::fs::write(&config, &text).expect("write");
        let out = run(
            Command::new(MODGATE)
                .arg("--root")
                .arg(d.path().join("r"))
                .args([
                    "install",
                    "containerd",
                    "--write",
                    "--wrapper",
                    "/usr/local/bin/modgate-runtime",
                ]),
            "modgate install containerd --write",
        );
        assert!(out.status.success());
        let merged = std::fs::read_to_string(&config).expect("read");
        let t: toml::Table = toml::from_str(&merged).expect("toml");
        let rts = &t["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"];
        assert_eq!(
            rts["runc"]["runtime_type"].as_str(),
            Some("io.containerd.runc.v2"),
            "{name}"
        );
        assert_eq!(
            rts["modgate"]["pod_annotations"].as_array().map(Vec::len),
            Some(1),
            "{name}"
        );
        let (status, log) = cri_status(&config, &d.path().join("sock"), &d.path().join("log"));
        assert_eq!(
            status, "ok",
            "{name}: CRI plugin did not load:\n{merged}\n{log}"
        );
    }
}
