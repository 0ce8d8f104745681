//! Hosts migrating from syscontainer-tools: its hook binary is moved to
//! `syscontainer-hooks.bak` (once: a later install never overwrites that copy) and its
//! slot becomes a link to modgate, so every existing hookspec.json keeps working. Called
//! by that name, modgate serves the container's modules, then runs the original hook
//! with the same arguments and state for everything else it does (block-device limits,
//! devices, bind mounts, network interfaces and routes, relabelling); the modules are
//! live by then, so its own modprobe finds nothing to do. `--revert` puts the original
//! back.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::check::exec_problems;
use super::{is_modgate_path, Action, HookTarget, InstallError, InstallPlan, Wiring};
use crate::configfile::backup_path;
use crate::root::Root;

pub const HOOK: &str = "/var/lib/isulad/hooks/syscontainer-hooks";

pub fn plan(root: &Root, target: &HookTarget, revert: bool) -> Result<InstallPlan, InstallError> {
    let mut plan = InstallPlan::default();
    // The slot itself, not what a link there points to.
    let path =
        root.resolve_entry(HOOK)
            .map_err(|source| crate::configfile::ConfigFileError::Read {
                path: root.path(HOOK),
                source,
            })?;
    let bak = backup_path(&path);
    let saved = std::fs::symlink_metadata(&bak).is_ok();
    let bin = &target.hook.path;
    let meta = std::fs::symlink_metadata(&path).ok();
    let link = meta
        .as_ref()
        .filter(|m| m.file_type().is_symlink())
        .and_then(|_| std::fs::read_link(&path).ok());
    if revert {
        if !saved {
            return Err(InstallError::Refused(format!(
                "nothing to revert: {HOOK}.bak does not exist"
            )));
        }
        if meta.is_some() && link.is_none() {
            return Err(InstallError::Refused(format!(
                "{HOOK} is not a link (it is not modgate's): not replacing it with {HOOK}.bak"
            )));
        }
        plan.actions.push(Action::Restore {
            path,
            shown: HOOK.into(),
            from: bak,
        });
        plan.notes
            .push("containers started from now on run the old syscontainer-hooks".into());
        return Ok(plan);
    }
    let ours = link
        .as_ref()
        .is_some_and(|t| is_modgate_path(&t.to_string_lossy(), bin));
    match &link {
        Some(t) if t.as_os_str() == bin.as_str() => plan.unchanged.push(HOOK.into()),
        // Already modgate (another --binary): relink, and leave the saved original be.
        _ if ours => plan.actions.push(Action::Link {
            path,
            shown: HOOK.into(),
            target: bin.clone(),
            existed: false,
        }),
        _ if meta.is_some() && saved => {
            return Err(InstallError::Refused(format!(
                "{HOOK}.bak already holds a saved hook: not replacing it with {HOOK} (move one of them away first)"
            )))
        }
        _ => plan.actions.push(Action::Link {
            path,
            shown: HOOK.into(),
            target: bin.clone(),
            existed: meta.is_some(),
        }),
    }
    for p in target.problems(root) {
        plan.notes
            .push(format!("warning: iSulad will refuse this hook: {p}"));
    }
    plan.notes.push(format!(
        "existing hook specs that call syscontainer-hooks --state STAGE now run modgate for KERNEL_MODULES, then the original hook ({HOOK}.bak, when there) for everything else"
    ));
    Ok(plan)
}

/// The hook slot, when it links to modgate, added to iSulad's wiring.
pub fn check(root: &Root, w: &mut Wiring) {
    if let Ok(target) = std::fs::read_link(root.path(HOOK)) {
        let target = target.display().to_string();
        if is_modgate_path(&target, "") {
            w.configured.push(format!("{HOOK} links to {target}"));
            w.runs(root, &target);
        }
    }
}

/// The original hook to run after modgate, when modgate was started as
/// `syscontainer-hooks`: `syscontainer-hooks.bak` beside the path it was started by
/// (iSulad passes the hook's path as `argv[0]`), or in iSulad's hook directory when
/// started by a bare name. Only a root-owned executable that no one else can write is
/// run; anything else is ignored, as iSulad would refuse it.
pub fn original(argv0: &Path) -> Option<PathBuf> {
    let dir = match argv0.parent() {
        Some(d) if argv0.is_absolute() => d.to_path_buf(),
        _ => Path::new(HOOK).parent()?.to_path_buf(),
    };
    let bak = dir.join("syscontainer-hooks.bak");
    let shown = bak.to_str()?;
    exec_problems(&Root::system(), shown)
        .is_empty()
        .then_some(bak)
}

/// The stage iSulad names in the arguments of `syscontainer-hooks`: `--state STAGE` or
/// `--state=STAGE`.
pub fn stage(args: &[OsString]) -> Option<String> {
    let mut it = args.iter().map(|a| a.to_string_lossy());
    while let Some(a) = it.next() {
        if a == "--state" {
            return it.next().map(|s| s.into_owned());
        }
        if let Some(s) = a.strip_prefix("--state=") {
            return Some(s.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn hook_target(bin: &str) -> HookTarget {
        HookTarget {
            hook: super::super::HookCommand::new(bin),
        }
    }

    #[test]
    fn the_original_is_saved_once() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        let slot = d.path().join(HOOK.trim_start_matches('/'));
        std::fs::create_dir_all(slot.parent().unwrap()).unwrap();
        std::fs::write(&slot, "original").unwrap();
        for bin in ["/usr/bin/modgate", "/opt/other/modgate", "/usr/bin/modgate"] {
            plan(&root, &hook_target(bin), false)
                .unwrap()
                .apply()
                .unwrap();
            assert_eq!(std::fs::read_link(&slot).unwrap(), Path::new(bin));
            assert_eq!(
                std::fs::read_to_string(backup_path(&slot)).unwrap(),
                "original"
            );
        }
        // A hook put back by a reinstalled syscontainer-tools is not saved over it.
        std::fs::remove_file(&slot).unwrap();
        std::fs::write(&slot, "reinstalled").unwrap();
        let e = plan(&root, &hook_target("/usr/bin/modgate"), false).unwrap_err();
        assert!(e.to_string().contains("already holds a saved hook"), "{e}");
        std::fs::remove_file(&slot).unwrap();
        plan(&root, &hook_target("/usr/bin/modgate"), false)
            .unwrap()
            .apply()
            .unwrap();
        plan(&root, &hook_target("/usr/bin/modgate"), true)
            .unwrap()
            .apply()
            .unwrap();
        assert_eq!(std::fs::read_to_string(&slot).unwrap(), "original");
    }

    #[test]
    fn finds_a_safe_original() {
        let d = tempfile::tempdir().unwrap();
        let bak = d.path().join("syscontainer-hooks.bak");
        let argv0 = d.path().join("syscontainer-hooks");
        assert_eq!(original(&argv0), None);
        std::fs::write(&bak, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&bak, std::fs::Permissions::from_mode(0o755)).unwrap();
        let root_owned = rustix::process::geteuid().is_root();
        assert_eq!(original(&argv0).is_some(), root_owned);
        std::fs::set_permissions(&bak, std::fs::Permissions::from_mode(0o757)).unwrap();
        assert_eq!(original(&argv0), None);
    }

    #[test]
    fn stages() {
        let a = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            stage(&a(&["--state", "poststop"])).as_deref(),
            Some("poststop")
        );
        assert_eq!(
            stage(&a(&["--log", "/l", "--state=prestart"])).as_deref(),
            Some("prestart")
        );
        assert_eq!(stage(&a(&["--with-relabel"])), None);
    }
}
