//! modgate-runtime, the runc-compatible wrapper for engines without hooks.d (Docker,
//! containerd): its settings (`/etc/modgate/runtime.toml`), reading the real runtime's
//! command line ([`runc_args`]), finding the real runtime, adding modgate's hooks to a
//! bundle's `config.json` (read and rewritten through [`crate::bundle`]), handing over
//! to the real runtime with exec(2), and its doctor check.

pub mod config;
pub mod inject;
pub mod runc_args;

use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use modgate_core::oci::ConfigView;

use crate::bundle::{Bundle, BundleError};
use crate::configfile::{self, ConfigFileError};
use crate::doctor::{Check, Status};
use crate::engines::{EngineError, HookCommand, STAGES};
use crate::root::Root;
use crate::which;
pub use config::{WrapperConfig, WrapperConfigError};

/// The wrapper's settings file, under the root.
pub const CONFIG_PATH: &str = "etc/modgate/runtime.toml";
/// Names another settings file (tests, or a second wrapper with other settings).
pub const CONFIG_ENV: &str = "MODGATE_RUNTIME_CONFIG";
/// Names the real runtime, over the settings file.
pub const RUNTIME_ENV: &str = "MODGATE_RUNTIME";

#[derive(Debug, thiserror::Error)]
pub enum WrapperError {
    #[error(transparent)]
    ConfigFile(#[from] ConfigFileError),
    #[error(transparent)]
    Config(#[from] WrapperConfigError),
    #[error("runtime {name:?} not found in PATH (set runtime in {CONFIG_PATH} or {RUNTIME_ENV})")]
    NotFound { name: String },
    #[error("bundle {}", bundle.display())]
    Bundle {
        bundle: PathBuf,
        #[source]
        source: BundleError,
    },
    #[error("bundle {}: cannot add modgate's hooks", bundle.display())]
    Inject {
        bundle: PathBuf,
        #[source]
        source: EngineError,
    },
    #[error("cannot run {}", path.display())]
    Exec {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The settings: `$MODGATE_RUNTIME_CONFIG`, else `ROOT/etc/modgate/runtime.toml`; no
/// file means the defaults.
pub fn load_config(root: &Root, explicit: Option<&Path>) -> Result<WrapperConfig, WrapperError> {
    let path = explicit
        .map(Path::to_path_buf)
        .unwrap_or_else(|| root.path(CONFIG_PATH));
    match configfile::read_optional(&path)? {
        None if explicit.is_none() => Ok(WrapperConfig::default()),
        None => Err(ConfigFileError::Read {
            path,
            source: std::io::ErrorKind::NotFound.into(),
        }
        .into()),
        Some(text) => Ok(WrapperConfig::parse(&path.display().to_string(), &text)?),
    }
}

/// The real runtime: a path as given, or the first executable of that name in `path`
/// that is not this program (a wrapper installed as `runc` must not call itself).
pub fn find_runtime(
    name: &str,
    path: Option<&OsStr>,
    this: &Path,
) -> Result<PathBuf, WrapperError> {
    if name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    which::in_path(path, name, Some(this)).ok_or_else(|| WrapperError::NotFound {
        name: name.to_string(),
    })
}

/// Adds modgate's hooks to the bundle's config unless they are there, or unless the
/// container asks for no module at all (its config is then left untouched). Returns
/// whether the file was rewritten.
pub fn prepare_bundle(
    bundle: &Path,
    config_name: &str,
    hook: &HookCommand,
) -> Result<bool, WrapperError> {
    let berr = |source| WrapperError::Bundle {
        bundle: bundle.to_path_buf(),
        source,
    };
    let (dir, config) = Bundle::open_config(bundle, config_name).map_err(berr)?;
    // A config that asks for nothing needs no hook. One whose request is invalid gets
    // the hook, which refuses the container with the reason.
    if let Ok(view) = ConfigView::parse(&config.raw) {
        if view.request().is_ok_and(|r| r.is_empty()) {
            return Ok(false);
        }
    }
    let what = config.path.display().to_string();
    let new = inject::add_hooks(&config.raw, hook, &STAGES, &what).map_err(|source| {
        WrapperError::Inject {
            bundle: bundle.to_path_buf(),
            source,
        }
    })?;
    let Some(new) = new else { return Ok(false) };
    dir.rewrite(&config, new.as_bytes()).map_err(berr)?;
    Ok(true)
}

/// Replaces this process with the real runtime, arguments unchanged. Returns only on
/// failure.
pub fn exec(runtime: &Path, args: &[OsString]) -> WrapperError {
    let source = std::process::Command::new(runtime)
        .arg0(runtime.as_os_str())
        .args(args)
        .exec();
    WrapperError::Exec {
        path: runtime.to_path_buf(),
        source,
    }
}

/// `doctor`'s check of the wrapper: its settings, and the runtime it would run.
pub fn check(root: &Root) -> Check {
    let name = "runtime wrapper";
    let config = match load_config(root, None) {
        Ok(c) => c,
        Err(e) => {
            return Check::new(name, Status::Fail, modgate_core::error_line(&e))
                .fix(format!("correct /{CONFIG_PATH}"))
        }
    };
    let rt = config.runtime(None).to_string();
    let found = if rt.contains('/') {
        root.resolve(&rt)
            .is_ok_and(|p| p.is_file())
            .then(|| rt.clone())
    } else {
        which::in_root(root, &rt)
    };
    match found {
        Some(p) => Check::new(name, Status::Ok, format!("modgate-runtime runs {p}")),
        None => Check::new(
            name,
            Status::Fail,
            format!("modgate-runtime would run {rt:?}, which is not installed"),
        )
        .fix(format!("install {rt}, or set runtime in /{CONFIG_PATH}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn finds_the_runtime_but_never_itself() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let me = a.join("runc");
        std::fs::write(&me, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&me, std::fs::Permissions::from_mode(0o755)).unwrap();
        let real = b.join("runc");
        std::fs::write(&real, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(b.join("crun"), "not executable").unwrap();
        let path = std::env::join_paths([&a, &b]).unwrap();
        assert_eq!(find_runtime("runc", Some(&path), &me).unwrap(), real);
        assert_eq!(
            find_runtime("runc", Some(&path), Path::new("/nonexistent")).unwrap(),
            me
        );
        assert!(find_runtime("crun", Some(&path), &me).is_err());
        assert_eq!(
            find_runtime("/opt/youki", None, &me).unwrap(),
            Path::new("/opt/youki")
        );
    }

    #[test]
    fn prepares_bundles() {
        let d = tempfile::tempdir().unwrap();
        let hook = HookCommand::new("/usr/bin/modgate");
        let cfg = d.path().join("config.json");
        // No request: untouched.
        std::fs::write(&cfg, r#"{"process":{"env":["PATH=/bin"]}}"#).unwrap();
        assert!(!prepare_bundle(d.path(), "config.json", &hook).unwrap());
        // A request: hooks added once.
        std::fs::write(&cfg, r#"{"process":{"env":["KERNEL_MODULES=ip_vs"]}}"#).unwrap();
        assert!(prepare_bundle(d.path(), "config.json", &hook).unwrap());
        assert!(!prepare_bundle(d.path(), "config.json", &hook).unwrap());
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
        assert_eq!(v["hooks"]["prestart"][0]["path"], "/usr/bin/modgate");
        // An invalid request still gets the hook (which refuses it with the reason).
        std::fs::write(&cfg, r#"{"process":{"env":["KERNEL_MODULES=-r"]}}"#).unwrap();
        assert!(prepare_bundle(d.path(), "config.json", &hook).unwrap());
        let e = prepare_bundle(&d.path().join("missing"), "config.json", &hook).unwrap_err();
        assert!(e.to_string().starts_with("bundle "), "{e}");
        std::fs::write(
            &cfg,
            r#"{"annotations":{"modgate.io/kernel-modules":"x"},"hooks":[]}"#,
        )
        .unwrap();
        assert!(matches!(
            prepare_bundle(d.path(), "config.json", &hook),
            Err(WrapperError::Inject { .. })
        ));
    }

    /// The wrapper runs as root on a bundle an engine prepared from a container's
    /// image and settings: it must never read or write through what stands at
    /// config.json other than a regular file of the bundle itself.
    #[test]
    fn prepare_refuses_links_fifos_and_huge_configs() {
        let d = tempfile::tempdir().unwrap();
        let hook = HookCommand::new("/usr/bin/modgate");
        let host = d.path().join("host.json");
        let host_text = r#"{"process":{"env":["KERNEL_MODULES=ip_vs"]}}"#;
        std::fs::write(&host, host_text).unwrap();
        let b = d.path().join("b");
        std::fs::create_dir(&b).unwrap();
        let cfg = b.join("config.json");

        std::os::unix::fs::symlink(&host, &cfg).unwrap();
        let e = prepare_bundle(&b, "config.json", &hook).unwrap_err();
        assert!(e.to_string().starts_with("bundle "), "{e}");
        assert!(
            modgate_core::error_line(&e).contains("is a symbolic link"),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&host).unwrap(), host_text);
        std::fs::remove_file(&cfg).unwrap();

        rustix::fs::mknodat(
            rustix::fs::CWD,
            &cfg,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let (b2, h2) = (b.clone(), hook.clone());
        std::thread::spawn(move || {
            let _ = tx.send(prepare_bundle(&b2, "config.json", &h2).map_err(|e| e.to_string()));
        });
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("the wrapper hung on a FIFO config.json");
        assert!(got.is_err(), "{got:?}");
        std::fs::remove_file(&cfg).unwrap();

        let f = std::fs::File::create(&cfg).unwrap();
        f.set_len(modgate_core::oci::MAX_CONFIG_BYTES + 1).unwrap();
        let e = prepare_bundle(&b, "config.json", &hook).unwrap_err();
        assert!(
            modgate_core::error_line(&e).contains("is larger than"),
            "{e}"
        );

        // crun's --config names a file in the bundle, not a path elsewhere.
        assert!(prepare_bundle(&b, "../host.json", &hook).is_err());
        assert_eq!(std::fs::read_to_string(&host).unwrap(), host_text);
    }

    /// The finding this guards against: a container's bundle whose config.json an
    /// attacker keeps swapping between a regular file and a link to a host file. The
    /// old wrapper read through the link and rewrote the link's target as root.
    #[test]
    fn prepare_never_writes_through_a_swapped_link() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let d = tempfile::tempdir().unwrap();
        let hook = HookCommand::new("/usr/bin/modgate");
        let text = r#"{"process":{"env":["KERNEL_MODULES=ip_vs"]}}"#;
        let host = d.path().join("host.json");
        std::fs::write(&host, text).unwrap();
        std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o600)).unwrap();
        let b = d.path().join("b");
        std::fs::create_dir(&b).unwrap();
        std::fs::write(b.join("config.json"), text).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let swapper = {
            let (b, host, stop) = (b.clone(), host.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = std::fs::write(b.join(".fresh"), text);
                    let _ = std::fs::rename(b.join(".fresh"), b.join("config.json"));
                    let _ = std::os::unix::fs::symlink(&host, b.join(".link"));
                    let _ = std::fs::rename(b.join(".link"), b.join("config.json"));
                }
            })
        };
        let start = std::time::Instant::now();
        let mut rewrites = 0;
        while start.elapsed() < std::time::Duration::from_secs(2) {
            if prepare_bundle(&b, "config.json", &hook).unwrap_or(false) {
                rewrites += 1;
            }
            if std::fs::read_to_string(&host).unwrap() != text {
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        swapper.join().unwrap();
        assert_eq!(
            std::fs::read_to_string(&host).unwrap(),
            text,
            "host file rewritten"
        );
        let mode = std::fs::metadata(&host).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(rewrites > 0, "the race never let a rewrite through");
    }

    #[test]
    fn config_file() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        assert_eq!(load_config(&root, None).unwrap(), WrapperConfig::default());
        assert!(load_config(&root, Some(&d.path().join("nope.toml"))).is_err());
        std::fs::create_dir_all(d.path().join("etc/modgate")).unwrap();
        std::fs::write(d.path().join(CONFIG_PATH), "runtime = \"crun\"\n").unwrap();
        assert_eq!(load_config(&root, None).unwrap().runtime(None), "crun");
        std::fs::write(d.path().join(CONFIG_PATH), "runtime = [\n").unwrap();
        assert!(load_config(&root, None).is_err());
    }
}
