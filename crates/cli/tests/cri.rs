//! containerd's CRI API (Debian's containerd 1.6) driven the way kubelet drives it: a
//! private containerd configured by `modgate install containerd --write` (runtime handler
//! `modgate` whose BinaryName is modgate-runtime), and a CRI v1 client (engine/cri.py)
//! making kubelet's calls for a host-network pod: RunPodSandbox with the handler and the
//! pod annotation `modgate.io/kernel-modules`, CreateContainer, StartContainer,
//! StopPodSandbox, RemovePodSandbox.
//!
//! How a pod holds modules: containerd copies a pod annotation that matches the runtime's
//! `pod_annotations` into the OCI config of the sandbox (pause) container and of every
//! container of the pod. Each of them runs the hook, so the sandbox holds the modules from
//! RunPodSandbox until StopPodSandbox stops it, and each container holds them while it
//! runs; since the sandbox outlives its containers, the pod holds them from sandbox start
//! to sandbox stop. A refused request fails RunPodSandbox, so no container of the pod
//! is created.

mod engine;
mod realrt;

use std::path::{Path, PathBuf};
use std::process::Command;

use engine::*;
use realrt::*;

const IMAGE: &str = "localhost/modgate-busybox:latest";
const ANNOTATION: &str = "modgate.io/kernel-modules";

struct Cri {
    containerd: Option<Proc>,
    py: PathBuf,
    dir: Fixture,
}

impl Cri {
    fn start(test: &str) -> Option<Cri> {
        if !can_run(
            test,
            &["containerd", "ctr", "runc", "busybox", "tar", "sha256sum"],
        ) {
            return None;
        }
        let py = match env_file("MODGATE_ENGINES_PY") {
            Ok(p) => p,
            Err(why) => {
                unavailable(test, &format!("no CRI client: {why}"));
                return None;
            }
        };
        let dir = Fixture::new("mg-cri");
        let d = dir.path();
        let wrapper = dir.wrapper();
        std::fs::create_dir_all(d.join("etc/containerd")).expect("mkdir");
        std::fs::create_dir_all(d.join("logs")).expect("mkdir");
        // What this host needs for CRI (see TESTBED): then modgate adds its runtime.
        let config = format!(
            "{}\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = {IMAGE:?}\n  restrict_oom_score_adj = true\n  [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n    snapshotter = \"native\"\n  [plugins.\"io.containerd.grpc.v1.cri\".cni]\n    bin_dir = {:?}\n    conf_dir = {:?}\n",
            containerd_base_config(d),
            d.join("cni/bin").display().to_string(),
            d.join("cni/conf").display().to_string(),
        );
        let conf = d.join("etc/containerd/config.toml");
        std::fs::write(&conf, config).expect("config.toml");
        modgate(
            &[
                "--root",
                d.to_str().expect("utf-8"),
                "install",
                "containerd",
                "--write",
                "--binary",
                MODGATE,
                "--wrapper",
                wrapper.to_str().expect("utf-8"),
            ],
            &[],
        );
        let written = std::fs::read_to_string(&conf).expect("read");
        eprintln!("--- {}\n{written}", conf.display());
        let parsed: toml::Value = toml::from_str(&written).expect("config.toml is TOML");
        let cri = &parsed["plugins"]["io.containerd.grpc.v1.cri"];
        let runtime = &cri["containerd"]["runtimes"]["modgate"];
        assert_eq!(
            runtime["options"]["BinaryName"].as_str(),
            wrapper.to_str(),
            "{written}"
        );
        // The pod annotation reaches the OCI configs only through these globs.
        let globs = |k: &str| {
            runtime
                .get(k)
                .and_then(|v| v.as_array())
                .map(|a| a.iter().filter_map(|s| s.as_str()).collect::<Vec<_>>())
                .unwrap_or_default()
        };
        assert!(
            globs("pod_annotations").contains(&"modgate.io/*"),
            "modgate install containerd did not write pod_annotations = [\"modgate.io/*\"] for its runtime:\n{written}"
        );
        assert!(
            globs("container_annotations").contains(&"modgate.io/*"),
            "modgate install containerd did not write container_annotations = [\"modgate.io/*\"]:\n{written}"
        );
        // The default runtime stays usable for every other pod.
        assert!(
            cri["containerd"]["runtimes"].get("runc").is_some(),
            "modgate install containerd did not keep containerd's default runc runtime:\n{written}"
        );

        let containerd = containerd(d, &conf, &d.join("runtime.toml"));
        let c = Cri {
            containerd: Some(containerd),
            py,
            dir,
        };
        c.image();
        Some(c)
    }

    fn daemon_log(&self) -> String {
        self.containerd
            .as_ref()
            .map(Proc::log_tail)
            .unwrap_or_default()
    }

    /// The sandbox image and the containers' image: busybox sleeping.
    fn image(&self) {
        busybox_rootfs(&self.dir.p("rootfs"));
        let archive = self.dir.p("image.tar");
        oci_image_archive(
            &self.dir.p("rootfs"),
            IMAGE,
            &["/bin/sleep", "1000000"],
            &archive,
        );
        let out = run(
            Command::new("ctr")
                .arg("--address")
                .arg(self.dir.p("ctrd.sock"))
                .args([
                    "-n",
                    "k8s.io",
                    "images",
                    "import",
                    "--snapshotter",
                    "native",
                ])
                .arg(&archive),
            "ctr images import",
        );
        assert!(out.status.success(), "ctr images import failed");
    }

    /// One CRI call; Err holds the gRPC status and details (what kubelet reports).
    fn call(&self, name: &str, arg: serde_json::Value) -> Result<serde_json::Value, String> {
        let out = run(
            Command::new("timeout")
                .arg("180")
                .arg(&self.py)
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/engine/cri.py"))
                .arg(self.dir.p("ctrd.sock"))
                .arg(name)
                .arg(arg.to_string()),
            &format!("cri {name}"),
        );
        if out.status.success() {
            Ok(serde_json::from_slice(&out.stdout).expect("cri.py output"))
        } else {
            Err(stderr(&out))
        }
    }

    fn pod(&self, name: &str, request: Option<&str>) -> serde_json::Value {
        let mut annotations = serde_json::Map::new();
        if let Some(r) = request {
            annotations.insert(ANNOTATION.into(), r.into());
        }
        serde_json::json!({
            "name": name,
            "uid": format!("uid-{name}-{}", std::process::id()),
            "namespace": "default",
            "annotations": annotations,
            "log_directory": self.dir.p("logs").join(name),
        })
    }

    fn run_pod(&self, pod: &serde_json::Value, handler: &str) -> Result<String, String> {
        self.call(
            "run_pod",
            serde_json::json!({"pod": pod, "handler": handler}),
        )
        .map(|v| v["id"].as_str().expect("pod id").to_string())
    }

    /// CreateContainer and StartContainer of one sleeping container in the pod.
    fn start_container(&self, pod_id: &str, pod: &serde_json::Value) -> String {
        let c = self
            .call(
                "create_container",
                serde_json::json!({
                    "pod_id": pod_id, "pod": pod, "name": "main", "image": IMAGE,
                    "command": ["/bin/sleep", "1000"],
                }),
            )
            .unwrap_or_else(|e| panic!("CreateContainer: {e}\n{}", self.daemon_log()));
        let id = c["id"].as_str().expect("container id").to_string();
        self.call("start_container", serde_json::json!({"id": id}))
            .unwrap_or_else(|e| panic!("StartContainer: {e}\n{}", self.daemon_log()));
        id
    }

    /// StopPodSandbox then RemovePodSandbox, as kubelet does when a pod is deleted.
    fn remove_pod(&self, id: &str) {
        self.call("stop_pod", serde_json::json!({"id": id}))
            .unwrap_or_else(|e| panic!("StopPodSandbox: {e}"));
        self.call("remove_pod", serde_json::json!({"id": id}))
            .unwrap_or_else(|e| panic!("RemovePodSandbox: {e}"));
    }
}

impl Drop for Cri {
    fn drop(&mut self) {
        // Pods left by a failed assertion: stop them so the shims and containers go.
        if let Ok(v) = self.call("list_pods", serde_json::json!({})) {
            for id in v["ids"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i.as_str())
            {
                let _ = self.call("stop_pod", serde_json::json!({"id": id}));
                let _ = self.call("remove_pod", serde_json::json!({"id": id}));
            }
        }
        drop(self.containerd.take());
    }
}

#[test]
fn cri_pod_holds_its_modules_from_sandbox_start_to_sandbox_stop() {
    let Some(c) = Cri::start("cri_pod_holds_its_modules_from_sandbox_start_to_sandbox_stop") else {
        return;
    };
    let pod = c.pod("ipvs", Some("ip_vs,ip_vs_wrr"));
    let pod_id = c
        .run_pod(&pod, "modgate")
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", c.daemon_log()));
    // The sandbox asked and holds.
    let pre = log_lines(&c.dir.log(), "prestart");
    assert_eq!(pre.len(), 1, "{pre:?}");
    assert!(
        pre[0].contains(&format!("container={pod_id}"))
            && pre[0].contains("requested=ip_vs,ip_vs_wrr")
            && pre[0].contains("decision=allowed"),
        "{pre:?}"
    );
    assert_eq!(holders(&c.dir.fx()), vec![pod_id.clone()]);

    // Its container carries the pod's annotation too, and holds while it runs.
    let ctr = c.start_container(&pod_id, &pod);
    let mut both = vec![pod_id.clone(), ctr.clone()];
    both.sort();
    assert_eq!(holders(&c.dir.fx()), both, "{}", status(&c.dir.fx()));

    // The container stops: the pod (its sandbox) still holds.
    c.call(
        "stop_container",
        serde_json::json!({"id": ctr, "timeout": 1}),
    )
    .unwrap_or_else(|e| panic!("StopContainer: {e}"));
    assert!(
        wait_for(10, || holders(&c.dir.fx()) == vec![pod_id.clone()]),
        "{}",
        status(&c.dir.fx())
    );

    c.remove_pod(&pod_id);
    assert_released(&c.dir.fx());
    let pods = c.call("list_pods", serde_json::json!({})).expect("list");
    assert_eq!(pods["ids"], serde_json::json!([]));
}

#[test]
fn cri_refused_pod_fails_with_modgates_line_and_unrequesting_pods_run() {
    let Some(c) = Cri::start("cri_refused_pod_fails_with_modgates_line_and_unrequesting_pods_run")
    else {
        return;
    };
    let err = c
        .run_pod(&c.pod("dccp", Some("dccp")), "modgate")
        .expect_err("a pod asking for dccp started");
    assert_modgate_refused(&err, "module \"dccp\" denied by policy");
    let err = c
        .run_pod(&c.pod("inject", Some("ip_vs,-r")), "modgate")
        .expect_err("a pod with an invalid request started");
    assert_modgate_refused(&err, "is not a module name: begins with '-'");
    assert!(holders(&c.dir.fx()).is_empty(), "{}", status(&c.dir.fx()));

    // No request, with modgate's handler: the wrapper adds no hook, the pod runs.
    let pod = c.pod("plain", None);
    let id = c
        .run_pod(&pod, "modgate")
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", c.daemon_log()));
    c.start_container(&id, &pod);
    assert!(holders(&c.dir.fx()).is_empty());
    c.remove_pod(&id);

    // The default handler keeps working next to modgate's.
    let pod = c.pod("default", None);
    let id = c
        .run_pod(&pod, "")
        .unwrap_or_else(|e| panic!("RunPodSandbox (default runtime): {e}\n{}", c.daemon_log()));
    c.start_container(&id, &pod);
    c.remove_pod(&id);
    let allowed = log_lines(&c.dir.log(), "prestart")
        .into_iter()
        .filter(|l| l.contains("decision=allowed"))
        .count();
    assert_eq!(allowed, 0, "a pod without a request was served");
}
