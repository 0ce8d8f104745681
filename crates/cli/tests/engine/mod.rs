//! Shared by the tests that drive real container engines built or started for the test
//! (iSulad with runc or lcr, dockerd, containerd's CRI): where each engine is (set by
//! `scripts/engines env`), a private daemon's life, and the checks the tests share.
//! Without an engine a test says why and passes, unless MODGATE_REQUIRE_REAL=1, where it
//! fails.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::realrt::*;

/// Says why a test cannot run here: fails under MODGATE_REQUIRE_REAL=1, else skips.
pub fn unavailable(test: &str, why: &str) -> bool {
    if std::env::var("MODGATE_REQUIRE_REAL").as_deref() == Ok("1") {
        panic!("{test}: {why}, and MODGATE_REQUIRE_REAL=1");
    }
    eprintln!("skipped {test}: {why}");
    false
}

/// A file named by an environment variable, if the variable is set and the file exists.
pub fn env_file(var: &str) -> Result<PathBuf, String> {
    let v = std::env::var_os(var)
        .ok_or_else(|| format!("{var} is not set (see scripts/engines env)"))?;
    let p = PathBuf::from(v);
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!("{var}={} does not exist", p.display()))
    }
}

/// Serialises the tests that share one engine instance (fixed socket and state paths);
/// a test that failed while holding it does not stop the others.
pub fn serial(m: &'static Mutex<()>) -> MutexGuard<'static, ()> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Polls `cond` for up to `secs` seconds.
pub fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    cond()
}

/// `modgate status --json` on a fixture root.
pub fn status(root: &Path) -> serde_json::Value {
    let out = Command::new(MODGATE)
        .arg("--root")
        .arg(root)
        .args(["status", "--json"])
        .output()
        .expect("modgate status");
    assert!(out.status.success(), "modgate status: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("status json")
}

/// The containers that hold modules on a fixture root.
pub fn holders(root: &Path) -> Vec<String> {
    status(root)["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_string())
        .collect()
}

/// Waits until no container holds anything on the fixture root (poststop ran), and
/// says who still does if that does not happen.
pub fn assert_released(root: &Path) {
    let released = wait_for(10, || holders(root).is_empty());
    assert!(released, "still held: {}", status(root));
}

/// The hook log lines of one stage for one container (ids are 64 hex digits in iSulad,
/// so a prefix is enough to tell).
pub fn stage_lines(log: &Path, stage: &str) -> Vec<String> {
    log_lines(log, stage)
}

/// The ip_vs plan and ip_vs_wrr, live on the fixture root: the seed request.
pub const IPVS_WRR_LIVE: &[&str] = &[
    "ip_vs",
    "ip_vs_wrr",
    "nf_conntrack",
    "libcrc32c",
    "crc32c_generic",
];

/// A test's directory under /tmp (short: the shims' sockets live under it) holding `fx`,
/// a fixture root in which the seed request's modules are live, and the hook's log.
pub struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new(prefix: &str) -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in("/tmp")
            .expect("tempdir");
        modgate_testkit::fixture_root(&dir.path().join("fx"), IPVS_WRR_LIVE);
        Fixture { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn fx(&self) -> PathBuf {
        self.p("fx")
    }

    pub fn log(&self) -> PathBuf {
        self.p("hook.log")
    }

    /// The `--hook-arg`s that point the hook at the fixture root and the log.
    pub fn hook_args(&self) -> Vec<String> {
        vec![
            "--hook-arg=--root".into(),
            format!("--hook-arg={}", self.fx().display()),
            "--hook-arg=--log".into(),
            format!("--hook-arg={}", self.log().display()),
        ]
    }

    /// `modgate install isulad --output SPEC` with the hook pointed at this fixture: the
    /// per-container hook spec's path.
    pub fn installed_hook_spec(&self) -> PathBuf {
        let spec = self.p("hookspec.json");
        modgate(
            &[
                "install",
                "isulad",
                "--output",
                spec.to_str().expect("utf-8"),
            ],
            &self.hook_args(),
        );
        spec
    }

    /// `modgate --root ROOT install syscontainer-tools` (its hook slot becomes a link to
    /// modgate), and a hook spec as syscontainer-tools users have it, calling that slot
    /// with this fixture's root and log.
    pub fn syscontainer_hook_spec(&self, root: &Path) -> serde_json::Value {
        std::fs::create_dir_all(root).expect("mkdir");
        modgate(
            &[
                "--root",
                root.to_str().expect("utf-8"),
                "install",
                "syscontainer-tools",
            ],
            &[],
        );
        let hook = root.join("var/lib/isulad/hooks/syscontainer-hooks");
        assert_eq!(std::fs::read_link(&hook).expect("link"), Path::new(MODGATE));
        let entry = |stage: &str| {
            serde_json::json!({
                "path": hook,
                "args": ["syscontainer-hooks", "--state", stage, "--root", self.fx(), "--log", self.log()],
                "env": [],
                "timeout": 30
            })
        };
        serde_json::json!({
            "prestart": [entry("prestart")],
            "poststart": [entry("poststart")],
            "poststop": [entry("poststop")]
        })
    }

    /// The runtime wrapper's settings (`runtime.toml`, pointing the hook at this fixture)
    /// and the wrapper's link `bin/modgate-runtime`, returned.
    pub fn wrapper(&self) -> PathBuf {
        runtime_settings(&self.p("runtime.toml"), &self.fx(), &self.log());
        wrapper_link(self.path())
    }
}

/// `modgate ARGS EXTRA`, which must succeed.
pub fn modgate(args: &[&str], extra: &[String]) -> Output {
    let out = run(
        Command::new(MODGATE).args(args).args(extra),
        &format!("modgate {}", args.join(" ")),
    );
    assert!(out.status.success(), "modgate {args:?} failed");
    out
}

/// A container that ran `echo hello` with the seed request (ip_vs,ip_vs_wrr): it printed
/// hello, its one prestart was allowed, and poststop released it all. `logs` tells why
/// the container did not run.
pub fn assert_served_and_released(out: &Output, f: &Fixture, logs: impl Fn() -> String) {
    assert!(
        out.status.success(),
        "the container did not run:\n{}",
        logs()
    );
    assert_eq!(stdout(out), "hello\n");
    let pre = log_lines(&f.log(), "prestart");
    assert_eq!(pre.len(), 1, "{pre:?}");
    assert!(
        pre[0].contains("requested=ip_vs,ip_vs_wrr") && pre[0].contains("decision=allowed"),
        "{pre:?}"
    );
    assert_released(&f.fx());
}

/// A busybox system-container root file system: busybox `init` with a two-line inittab.
pub fn system_rootfs(dir: &Path) {
    busybox_rootfs(dir);
    for d in ["sbin", "run", "var"] {
        std::fs::create_dir_all(dir.join(d)).expect("mkdir");
    }
    std::os::unix::fs::symlink("../bin/busybox", dir.join("sbin/init")).expect("init link");
    std::fs::write(
        dir.join("etc/inittab"),
        "::sysinit:/bin/echo sysinit-ran\n::respawn:/bin/sleep 100000\n",
    )
    .expect("inittab");
}

/// A tar of `dir`, for `isula import` / `docker import` / `ctr images import`.
pub fn tar_of(dir: &Path, tar: &Path) {
    let st = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(tar)
        .arg(".")
        .status()
        .expect("tar");
    assert!(st.success(), "tar failed");
}

/// A private iSulad, through the engine script of `../shared/engines` that builds it,
/// starts and stops it (fixed state directory: one daemon of a flavour at a time).
pub struct Isulad {
    pub script: PathBuf,
    /// The environment `isula` needs: ISULAD_HOST, PATH, ISULAD_TMPDIR, LOCPATH.
    pub env: Vec<(String, String)>,
    /// The install prefix (PREFIX/bin/isulad, PREFIX/etc/isulad/daemon.json).
    pub prefix: PathBuf,
    /// The state directory (socket, pid files, daemon log).
    pub run: PathBuf,
}

impl Isulad {
    /// The engine named by `var` (MODGATE_ISULAD_SH or MODGATE_ISULAD_LCR_SH), if it is
    /// built.
    pub fn find(var: &str) -> Result<Isulad, String> {
        let script = env_file(var)?;
        let out = Command::new("bash")
            .arg("-c")
            .arg(r#"eval "$(bash "$0" env)" && printf '%s\n' "ISULAD_HOST=$ISULAD_HOST" "ISULAD_TMPDIR=$ISULAD_TMPDIR" "PATH=$PATH" "LOCPATH=${LOCPATH:-}""#)
            .arg(&script)
            .output()
            .map_err(|e| format!("{}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!("{} env: {}", script.display(), stderr(&out)));
        }
        let env: Vec<(String, String)> = stdout(&out)
            .lines()
            .filter_map(|l| l.split_once('='))
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let path = get("PATH").unwrap_or_default();
        let bin = PathBuf::from(path.split(':').next().unwrap_or_default());
        if !bin.join("isulad").is_file() {
            return Err(format!(
                "iSulad is not built ({} missing: run scripts/engines build)",
                bin.join("isulad").display()
            ));
        }
        let sock = get("ISULAD_HOST").unwrap_or_default();
        let run = Path::new(sock.trim_start_matches("unix://"))
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Ok(Isulad {
            script,
            prefix: bin.parent().expect("prefix").to_path_buf(),
            run,
            env,
        })
    }

    fn envs(&self, c: &mut Command) {
        for (k, v) in &self.env {
            c.env(k, v);
        }
    }

    /// A step of the engine script (start, stop).
    pub fn step(&self, step: &str) -> Output {
        run(
            Command::new("bash")
                .arg(&self.script)
                .arg(step)
                .stdin(Stdio::null()),
            &format!("{} {step}", self.script.display()),
        )
    }

    /// Starts the daemon with the script's configuration; stopped when the guard drops.
    pub fn start(&self) -> Daemon<'_> {
        let out = self.step("start");
        assert!(
            out.status.success(),
            "isulad did not start:\n{}",
            self.log()
        );
        Daemon { isulad: self }
    }

    pub fn isula(&self) -> Command {
        let mut c = Command::new(self.prefix.join("bin/isula"));
        self.envs(&mut c);
        c.stdin(Stdio::null());
        c
    }

    /// `isula ARGS`, shown and timed.
    pub fn run_isula(&self, args: &[&str]) -> Output {
        let t = Instant::now();
        let out = run(
            self.isula().args(args),
            &format!("isula {}", args.join(" ")),
        );
        eprintln!(
            "isula {} took {:?}",
            args.first().unwrap_or(&""),
            t.elapsed()
        );
        out
    }

    /// What the daemon log says went wrong: its last 15 ERROR lines, then its last 10
    /// lines without lxc's routine closing of inherited fds.
    pub fn log(&self) -> String {
        let log = std::fs::read_to_string(self.run.join("isulad.log")).unwrap_or_default();
        let last = |lines: Vec<&str>, n: usize| {
            let from = lines.len().saturating_sub(n);
            lines[from..].join("\n")
        };
        let errors = log.lines().filter(|l| l.contains(" ERROR ")).collect();
        let tail = log
            .lines()
            .filter(|l| !l.contains("lxc_check_inherited"))
            .collect();
        format!(
            "--- daemon log, errors\n{}\n--- daemon log, last lines\n{}",
            last(errors, 15),
            last(tail, 10)
        )
    }

    /// `isula stop -t 3 ID`, which must succeed (as [`Isulad::assert_ok`]).
    pub fn stop(&self, id: &str, hook_log: &Path) {
        self.assert_ok(
            "isula stop",
            &self.run_isula(&["stop", "-t", "3", id]),
            hook_log,
        );
    }

    /// Asserts that an `isula` command succeeded; if not, says how it ended, what it
    /// printed, what the hook logged to `hook_log` and what the daemon logged.
    pub fn assert_ok(&self, what: &str, out: &Output, hook_log: &Path) {
        assert!(
            out.status.success(),
            "{what} failed: {}\n--- stderr\n{}\n--- hook log\n{}\n{}",
            out.status,
            stderr(out).trim_end(),
            std::fs::read_to_string(hook_log)
                .unwrap_or_default()
                .trim_end(),
            self.log()
        );
    }

    pub fn pidfile(&self) -> PathBuf {
        self.run.join("isulad.daemon.pid")
    }

    /// Imports a busybox image under `name` unless the daemon has it (the graph is
    /// kept between runs).
    pub fn image(&self, name: &str) {
        let have = self.isula().args(["inspect", name]).output();
        if have.is_ok_and(|o| o.status.success()) {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        busybox_rootfs(&dir.path().join("rootfs"));
        let tar = dir.path().join("rootfs.tar");
        tar_of(&dir.path().join("rootfs"), &tar);
        let out = self.run_isula(&["import", tar.to_str().expect("utf-8"), name]);
        assert!(out.status.success(), "isula import failed");
    }

    /// Removes a container whatever its state (cleanup).
    pub fn rm(&self, id: &str) {
        let _ = self.isula().args(["rm", "-f", id]).output();
    }
}

/// Containers of a test, removed whatever happens (declare after the daemon's guard so
/// they go first; lxc and isulad-shim keep containers running when isulad stops).
pub struct Containers<'a> {
    pub i: &'a Isulad,
    pub ids: Vec<String>,
}

impl Drop for Containers<'_> {
    fn drop(&mut self) {
        for id in &self.ids {
            self.i.rm(id);
        }
    }
}

/// A running iSulad; stopped (through the script, which also removes the cgroup parent
/// it made) when dropped.
pub struct Daemon<'a> {
    pub isulad: &'a Isulad,
}

impl Drop for Daemon<'_> {
    fn drop(&mut self) {
        let _ = self.isulad.step("stop");
    }
}

/// The first line of stdout: the container id `isula run -d`/`create` prints.
pub fn first_line(o: &Output) -> String {
    stdout(o)
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// What a refused request looks like to the user of the engine: modgate's own line.
/// iSulad may show it only inside runc's JSON log record, where its quotes are escaped.
pub fn assert_modgate_refused(err: &str, what: &str) {
    let escaped = what.replace('"', "\\\"");
    assert!(
        err.contains("modgate: container ") && (err.contains(what) || err.contains(&escaped)),
        "expected modgate's refusal ({what}) in:\n{err}"
    );
}

/// A daemon this test started (its own child): SIGTERM when dropped, SIGKILL after 20 s.
pub struct Proc {
    pub name: &'static str,
    pub child: std::process::Child,
    pub log: PathBuf,
}

impl Proc {
    /// Spawns `cmd` with its output in `log`, then waits up to 60 s for `ready`.
    pub fn spawn(
        name: &'static str,
        cmd: &mut Command,
        log: PathBuf,
        ready: impl FnMut() -> bool,
    ) -> Proc {
        let file = std::fs::File::create(&log).expect("daemon log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log fd"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let mut p = Proc { name, child, log };
        let t = Instant::now();
        let mut ready = ready;
        let up = wait_for(60, || ready() || matches!(p.child.try_wait(), Ok(Some(_))));
        assert!(
            up && matches!(p.child.try_wait(), Ok(None)),
            "{name} did not start:\n{}",
            p.log_tail()
        );
        eprintln!("{name} up in {:?}", t.elapsed());
        p
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("{} did not stop on SIGTERM: killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The runtime wrapper's settings file that points the hook at a fixture root and a log
/// (given to the engine as MODGATE_RUNTIME_CONFIG: the shim passes it to the wrapper).
pub fn runtime_settings(file: &Path, fx: &Path, log: &Path) {
    std::fs::write(
        file,
        format!(
            "hook_args = [\"--root\", {:?}, \"--log\", {:?}]\n",
            fx.display().to_string(),
            log.display().to_string()
        ),
    )
    .expect("runtime settings");
}

/// `DIR/bin/modgate-runtime`, a link to the modgate under test (the name selects the
/// wrapper).
pub fn wrapper_link(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let w = bin.join("modgate-runtime");
    std::os::unix::fs::symlink(MODGATE, &w).expect("link");
    w
}

/// A private containerd (Debian's 1.6) whose root, state and socket live under `dir`,
/// started with `config` (a version 2 config.toml) and MODGATE_RUNTIME_CONFIG=`settings`.
pub fn containerd(dir: &Path, config: &Path, settings: &Path) -> Proc {
    let sock = dir.join("ctrd.sock");
    let mut c = Command::new("containerd");
    c.arg("--config")
        .arg(config)
        .arg("--address")
        .arg(&sock)
        .env("MODGATE_RUNTIME_CONFIG", settings);
    Proc::spawn("containerd", &mut c, dir.join("containerd.log"), || {
        sock.exists()
    })
}

/// The settings every private containerd here needs: its own root and state.
pub fn containerd_base_config(dir: &Path) -> String {
    format!(
        "version = 2\nroot = {:?}\nstate = {:?}\n",
        dir.join("ctrd-root").display().to_string(),
        dir.join("ctrd-state").display().to_string(),
    )
}

/// `sha256:HEX` of a file (coreutils' sha256sum) and its size.
fn digest(file: &Path) -> (String, u64) {
    let out = Command::new("sha256sum")
        .arg(file)
        .output()
        .expect("sha256sum");
    assert!(out.status.success(), "sha256sum failed");
    let hex = stdout(&out)
        .split_whitespace()
        .next()
        .expect("digest")
        .to_string();
    let size = std::fs::metadata(file).expect("stat").len();
    (format!("sha256:{hex}"), size)
}

/// An OCI image archive (an image layout in a tar) of one uncompressed layer holding
/// `rootfs`, named `name` for containerd's importer, whose default command is `cmd`.
pub fn oci_image_archive(rootfs: &Path, name: &str, cmd: &[&str], archive: &Path) {
    let layout = archive.with_extension("layout");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("mkdir");
    let blob = |src: &Path| {
        let (d, size) = digest(src);
        std::fs::rename(src, blobs.join(d.trim_start_matches("sha256:"))).expect("blob");
        (d, size)
    };
    let layer = layout.join("layer.tar");
    tar_of(rootfs, &layer);
    let (layer_d, layer_size) = blob(&layer);
    let config = layout.join("config.json");
    let json = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": cmd, "Env": ["PATH=/bin:/sbin"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_d]},
    });
    std::fs::write(&config, json.to_string()).expect("config");
    let (config_d, config_size) = blob(&config);
    let manifest = layout.join("manifest.json");
    let json = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_d, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_d, "size": layer_size}],
    });
    std::fs::write(&manifest, json.to_string()).expect("manifest");
    let (manifest_d, manifest_size) = blob(&manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_d,
            "size": manifest_size,
            "annotations": {"io.containerd.image.name": name},
        }],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).expect("index");
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
    tar_of(&layout, archive);
}

/// The iSulad build that the engine script in `var` runs, when this host has `tools` and
/// the script; otherwise the test says why it cannot run (and fails under
/// `MODGATE_REQUIRE_REAL`).
pub fn isulad_for(test: &str, var: &str, tools: &[&str]) -> Option<Isulad> {
    if !crate::realrt::can_run(test, tools) {
        return None;
    }
    match Isulad::find(var) {
        Ok(i) => Some(i),
        Err(why) => {
            unavailable(test, &why);
            None
        }
    }
}

/// The start of an iSulad test: the engine (as `isulad_for`), this test's turn at it
/// (`turn` serialises the tests of one engine) and its fixture (directory named `prefix`).
pub fn isulad_test(
    test: &str,
    var: &str,
    tools: &[&str],
    turn: &'static Mutex<()>,
    prefix: &str,
) -> Option<(Isulad, MutexGuard<'static, ()>, Fixture)> {
    let i = isulad_for(test, var, tools)?;
    let one = serial(turn);
    Some((i, one, Fixture::new(prefix)))
}
