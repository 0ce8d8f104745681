//! [`TestEnv`]: a temp directory holding a copy of the fixture root (`root/`), bundles
//! (`bundles/ID/config.json`) and a hook log, and the `modgate` binary run against it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct TestEnv {
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl TestEnv {
    /// A copy of the fixture root with `live` modules loaded. `bin` is the binary under
    /// test: `env!("CARGO_BIN_EXE_modgate")` in the caller's test.
    pub fn new(bin: &str, live: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        crate::fixture_root(&dir.path().join("root"), live);
        Self {
            dir,
            bin: PathBuf::from(bin),
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// modgate's state store under the root.
    pub fn store(&self) -> PathBuf {
        self.root().join("run/modgate")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("hook.log")
    }

    /// What the hooks logged so far (`--log`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn live(&self, names: &[&str]) {
        crate::set_live(&self.root(), names);
    }

    /// Adds modules to the fixture's module tree: a stand-in file
    /// `kernel/extra/NAME.ko` each and its line in `modules.dep`, no dependencies.
    pub fn add_modules(&self, names: &[&str]) {
        let dir = self.root().join("lib/modules").join(crate::FIXTURE_RELEASE);
        std::fs::create_dir_all(dir.join("kernel/extra")).expect("mkdir");
        let mut dep = std::fs::read_to_string(dir.join("modules.dep")).expect("modules.dep");
        for n in names {
            std::fs::write(
                dir.join(format!("kernel/extra/{n}.ko")),
                format!("stand-in {n}\n"),
            )
            .expect("module file");
            dep.push_str(&format!("kernel/extra/{n}.ko:\n"));
        }
        std::fs::write(dir.join("modules.dep"), dep).expect("modules.dep");
    }

    /// Writes `ROOT/etc/modgate/policy.toml`.
    pub fn policy(&self, text: &str) {
        let p = self.root().join("etc/modgate/policy.toml");
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("policy");
    }

    pub fn bundle(&self, id: &str) -> PathBuf {
        self.dir.path().join("bundles").join(id)
    }

    /// Writes the bundle's `config.json` with this environment and these annotations
    /// (any string, control characters and NUL included, written as valid JSON).
    pub fn config(&self, id: &str, env: &[&str], annotations: &[(&str, &str)]) -> PathBuf {
        let b = self.bundle(id);
        std::fs::create_dir_all(&b).expect("mkdir bundle");
        let ann: serde_json::Map<String, serde_json::Value> = annotations
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
            .collect();
        let config = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"terminal": false, "env": env, "args": ["sh"]},
            "root": {"path": "rootfs"},
            "annotations": ann,
        });
        std::fs::write(b.join("config.json"), config.to_string()).expect("write config");
        b
    }

    /// A bundle whose container asks for `modules` through `KERNEL_MODULES`.
    pub fn request(&self, id: &str, modules: &str) -> PathBuf {
        self.config(id, &[&format!("KERNEL_MODULES={modules}")], &[])
    }

    /// The OCI state a runtime passes the hook for container `id`.
    pub fn state(&self, id: &str) -> String {
        self.state_of(id, id)
    }

    /// The OCI state of container `id` whose bundle is `bundles/BUNDLE` (any id, as
    /// valid JSON).
    pub fn state_of(&self, id: &str, bundle: &str) -> String {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "id": id,
            "status": "creating",
            "pid": 4242,
            "bundle": self.bundle(bundle).display().to_string(),
        })
        .to_string()
    }

    /// `modgate --root ROOT ARGS...` with `stdin`.
    pub fn modgate(&self, args: &[&str], stdin: &str) -> Output {
        crate::run_with_stdin(
            Command::new(&self.bin)
                .arg("--root")
                .arg(self.root())
                .args(args),
            stdin,
        )
    }

    /// `modgate hook ARGS...` with `stdin` (no log).
    pub fn hook(&self, args: &[&str], stdin: &str) -> Output {
        let mut all = vec!["hook"];
        all.extend_from_slice(args);
        self.modgate(&all, stdin)
    }

    /// `modgate hook STAGE --log LOG` for container `id`.
    pub fn hook_logged(&self, stage: &str, id: &str) -> Output {
        let log = self.log_path().display().to_string();
        self.hook(&[stage, "--log", &log], &self.state(id))
    }
}
