//! Docker for real (Debian's docker.io, dockerd 20.10): a private dockerd configured with
//! the daemon.json `modgate install docker --root DIR` writes (runtime "modgate" =
//! modgate-runtime), on a private containerd (as Debian's docker.service runs it), then
//! `docker run --runtime modgate -e KERNEL_MODULES=...`. Docker 20.10 has no
//! `--annotation`: a request travels only in the environment. The wrapper's settings
//! file (MODGATE_RUNTIME_CONFIG, passed from containerd through the shim) points the hook
//! at a fixture root in which the requested modules are live.

mod engine;
mod realrt;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use engine::*;
use realrt::*;

/// Debian's client and daemon: /usr/local/bin/docker may be a newer client that needs an
/// API this daemon does not speak.
const DOCKER: &str = "/usr/bin/docker";
const DOCKERD: &str = "/usr/sbin/dockerd";
const IMAGE: &str = "modgate-busybox:latest";

struct Docker {
    // Dropped in this order: dockerd first, then its containerd, then the files.
    dockerd: Option<Proc>,
    containerd: Option<Proc>,
    dir: Fixture,
}

impl Docker {
    fn start(test: &str) -> Option<Docker> {
        if !can_run(test, &["containerd", "runc", "busybox", "tar"]) {
            return None;
        }
        for bin in [DOCKER, DOCKERD] {
            if !Path::new(bin).is_file() {
                unavailable(test, &format!("{bin} not installed (Debian's docker.io)"));
                return None;
            }
        }
        // Short: the shims' sockets live under these directories.
        let dir = Fixture::new("mg-dk");
        let d = dir.path();
        let wrapper = dir.wrapper();

        // What the operator has, then what modgate adds to it.
        std::fs::create_dir_all(d.join("etc/docker")).expect("mkdir");
        std::fs::write(
            d.join("etc/docker/daemon.json"),
            serde_json::json!({
                "deprecated-key-path": d.join("key.json"),
                "data-root": d.join("data"),
                "exec-root": d.join("e"),
                "pidfile": d.join("docker.pid"),
            })
            .to_string(),
        )
        .expect("daemon.json");
        modgate(
            &[
                "--root",
                d.to_str().expect("utf-8"),
                "install",
                "docker",
                "--binary",
                MODGATE,
                "--wrapper",
                wrapper.to_str().expect("utf-8"),
            ],
            &[],
        );
        let config: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(d.join("etc/docker/daemon.json")).expect("read"),
        )
        .expect("daemon.json is JSON");
        assert_eq!(
            config["runtimes"]["modgate"]["path"].as_str(),
            wrapper.to_str()
        );
        assert!(config["deprecated-key-path"].is_string(), "{config}");

        std::fs::write(d.join("containerd.toml"), containerd_base_config(d)).expect("config");
        let containerd = containerd(d, &d.join("containerd.toml"), &d.join("runtime.toml"));
        let sock = d.join("docker.sock");
        let mut c = Command::new(DOCKERD);
        c.arg("--config-file")
            .arg(d.join("etc/docker/daemon.json"))
            .arg("--containerd")
            .arg(d.join("ctrd.sock"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--bridge=none",
                "--storage-driver=vfs",
            ]);
        let dockerd = Proc::spawn("dockerd", &mut c, d.join("dockerd.log"), || {
            sock.exists()
                && Command::new(DOCKER)
                    .arg("-H")
                    .arg(format!("unix://{}", sock.display()))
                    .arg("version")
                    .output()
                    .is_ok_and(|o| o.status.success())
        });
        let dk = Docker {
            dockerd: Some(dockerd),
            containerd: Some(containerd),
            dir,
        };
        dk.image();
        Some(dk)
    }

    fn docker(&self) -> Command {
        let mut c = Command::new(DOCKER);
        c.arg("-H")
            .arg(format!("unix://{}", self.dir.p("docker.sock").display()))
            .stdin(Stdio::null());
        c
    }

    fn image(&self) {
        busybox_rootfs(&self.dir.p("rootfs"));
        tar_of(&self.dir.p("rootfs"), &self.dir.p("rootfs.tar"));
        let out = run(
            self.docker()
                .arg("import")
                .arg(self.dir.p("rootfs.tar"))
                .arg(IMAGE),
            "docker import",
        );
        assert!(out.status.success(), "docker import failed");
    }

    fn run(&self, args: &[&str]) -> Output {
        let t = Instant::now();
        let out = run(
            self.docker().args(args),
            &format!("docker {}", args.join(" ")),
        );
        eprintln!("docker {} took {:?}", args[0], t.elapsed());
        out
    }

    /// `docker run --rm --runtime modgate --network none [-e ENV] IMAGE sh -c 'echo hello'`.
    fn run_hello(&self, env: Option<&str>) -> Output {
        let mut args = vec!["run", "--rm", "--runtime", "modgate", "--network", "none"];
        if let Some(e) = env {
            args.extend(["-e", e]);
        }
        args.extend([IMAGE, "sh", "-c", "echo hello"]);
        self.run(&args)
    }

    fn daemon_logs(&self) -> String {
        let tail = |p: &Option<Proc>| p.as_ref().map(Proc::log_tail).unwrap_or_default();
        format!("{}\n{}", tail(&self.dockerd), tail(&self.containerd))
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        drop(self.dockerd.take());
        drop(self.containerd.take());
    }
}

#[test]
fn docker_run_with_the_modgate_runtime_holds_until_stop() {
    let Some(dk) = Docker::start("docker_run_with_the_modgate_runtime_holds_until_stop") else {
        return;
    };
    let out = dk.run_hello(Some("KERNEL_MODULES=ip_vs,ip_vs_wrr"));
    assert_served_and_released(&out, &dk.dir, || dk.daemon_logs());
    assert_eq!(log_lines(&dk.dir.log(), "poststop").len(), 1);

    // Detached: held under Docker's container id while it runs, released at stop.
    let out = dk.run(&[
        "run",
        "-d",
        "--runtime",
        "modgate",
        "--network",
        "none",
        "-e",
        "KERNEL_MODULES=ip_vs",
        IMAGE,
        "sleep",
        "1000",
    ]);
    assert!(
        out.status.success(),
        "docker run -d failed:\n{}",
        dk.daemon_logs()
    );
    let id = first_line(&out);
    assert_eq!(
        holders(&dk.dir.fx()),
        vec![id.clone()],
        "{}",
        status(&dk.dir.fx())
    );
    assert!(dk.run(&["stop", "-t", "1", &id]).status.success());
    assert_released(&dk.dir.fx());
    assert!(dk.run(&["rm", &id]).status.success());
}

#[test]
fn docker_refusals_show_modgates_line_and_no_request_runs() {
    let Some(dk) = Docker::start("docker_refusals_show_modgates_line_and_no_request_runs") else {
        return;
    };
    for (env, what) in [
        ("KERNEL_MODULES=dccp", "module \"dccp\" denied by policy"),
        (
            "KERNEL_MODULES=ip_vs;reboot",
            "item \"ip_vs;reboot\" of KERNEL_MODULES is not a module name",
        ),
    ] {
        let out = dk.run_hello(Some(env));
        assert!(!out.status.success(), "docker run succeeded with {env}");
        // Docker's CLI: 125 for an error of the daemon that is not about a missing or
        // unexecutable command.
        assert_eq!(out.status.code(), Some(125), "{env}");
        assert_modgate_refused(&stderr(&out), what);
        assert!(!stdout(&out).contains("hello"));
    }
    assert!(holders(&dk.dir.fx()).is_empty(), "{}", status(&dk.dir.fx()));

    // No request: the wrapper adds no hooks, the container runs.
    let out = dk.run_hello(None);
    assert!(
        out.status.success(),
        "docker run failed:\n{}",
        dk.daemon_logs()
    );
    assert_eq!(stdout(&out), "hello\n");
    assert!(holders(&dk.dir.fx()).is_empty());
    let left = dk.run(&["ps", "-a", "-q"]);
    assert_eq!(stdout(&left).trim(), "", "containers left behind");
}
