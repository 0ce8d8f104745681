//! Hosts migrating from syscontainer-tools: its hook binary replaced by a link to
//! modgate (which behaves as the old hook when called by that name), so every existing
//! hookspec.json keeps working; `--revert` puts the old binary back.

use super::{is_modgate_path, Action, HookTarget, InstallError, Plan, Wiring};
use crate::configfile::backup_path;
use crate::root::Root;

pub const HOOK: &str = "/var/lib/isulad/hooks/syscontainer-hooks";

pub fn plan(root: &Root, target: &HookTarget, revert: bool) -> Result<Plan, InstallError> {
    let mut plan = Plan::default();
    let path = root.path(HOOK);
    let bin = &target.hook.path;
    let meta = std::fs::symlink_metadata(&path).ok();
    let link = meta
        .as_ref()
        .filter(|m| m.file_type().is_symlink())
        .and_then(|_| std::fs::read_link(&path).ok());
    if revert {
        let bak = backup_path(&path);
        if std::fs::symlink_metadata(&bak).is_err() {
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
    match &link {
        Some(t) if t.as_os_str() == bin.as_str() => plan.unchanged.push(HOOK.into()),
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
    plan.notes.push(
        "existing hook specs that call syscontainer-hooks --state STAGE now run modgate; KERNEL_MODULES works as before"
            .into(),
    );
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
