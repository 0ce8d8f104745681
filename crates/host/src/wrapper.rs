//! modgate-runtime's edges: its settings (`/etc/modgate/runtime.toml`), finding the
//! real runtime, adding modgate's hooks to a bundle's `config.json`, and handing over to
//! the real runtime with exec(2).

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use modgate_core::engine::{inject, EngineError, HookCommand, STAGES};
use modgate_core::oci::{ConfigView, MAX_CONFIG_BYTES};
use modgate_core::wrapper_config::{WrapperConfig, WrapperConfigError};

use crate::configfile::{self, ConfigFileError};
use crate::root::Root;

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
    #[error("bundle {}: cannot read {}", bundle.display(), path.display())]
    Read {
        bundle: PathBuf,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("bundle {}: {} is larger than {MAX_CONFIG_BYTES} bytes", bundle.display(), path.display())]
    TooLarge { bundle: PathBuf, path: PathBuf },
    #[error("bundle {}: cannot add modgate's hooks", bundle.display())]
    Inject {
        bundle: PathBuf,
        #[source]
        source: EngineError,
    },
    #[error("bundle {}: cannot rewrite its config", bundle.display())]
    Write {
        bundle: PathBuf,
        #[source]
        source: ConfigFileError,
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

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
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
    let dirs = path.map(std::env::split_paths).into_iter().flatten();
    for dir in dirs {
        let candidate = dir.join(name);
        let executable =
            std::fs::metadata(&candidate).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0);
        if executable && !same_file(&candidate, this) {
            return Ok(candidate);
        }
    }
    Err(WrapperError::NotFound {
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
    let path = bundle.join(config_name);
    let err = |source| WrapperError::Read {
        bundle: bundle.to_path_buf(),
        path: path.clone(),
        source,
    };
    let file = std::fs::File::open(&path).map_err(err)?;
    let mut data = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(err)?;
    if data.len() as u64 > MAX_CONFIG_BYTES {
        return Err(WrapperError::TooLarge {
            bundle: bundle.to_path_buf(),
            path,
        });
    }
    // A config that asks for nothing needs no hook. One whose request is invalid gets
    // the hook, which refuses the container with the reason.
    if let Ok(view) = ConfigView::parse(&data) {
        if view.request().is_ok_and(|r| r.is_empty()) {
            return Ok(false);
        }
    }
    let what = path.display().to_string();
    let new =
        inject::add_hooks(&data, hook, &STAGES, &what).map_err(|source| WrapperError::Inject {
            bundle: bundle.to_path_buf(),
            source,
        })?;
    let Some(new) = new else { return Ok(false) };
    configfile::write_atomic(&path, new.as_bytes(), 0o644).map_err(|source| {
        WrapperError::Write {
            bundle: bundle.to_path_buf(),
            source,
        }
    })?;
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
