//! iSulad: a hook spec for `isula run --hook-spec FILE`, or modgate's entries merged
//! into the daemon-wide spec that `hook-spec` in `/etc/isulad/daemon.json` names.

use modgate_core::engine::hookspec;

use super::{malformed, read, HookTarget, InstallError, Plan};
use crate::root::Root;

pub const DEFAULT_OUTPUT: &str = "/etc/modgate/isulad-hookspec.json";
pub const DAEMON_JSON: &str = "/etc/isulad/daemon.json";
pub const DEFAULT_DAEMON_SPEC: &str = "/etc/default/isulad/hooks/default.json";

pub struct IsuladOptions {
    pub target: HookTarget,
    /// Where to write the per-container spec (host path).
    pub output: String,
    /// Merge into the daemon-wide spec instead.
    pub daemon_default: bool,
}

pub fn plan(root: &Root, o: &IsuladOptions) -> Result<Plan, InstallError> {
    let mut plan = Plan::default();
    let spec_path = if o.daemon_default {
        let daemon = read(root, DAEMON_JSON)?;
        let named = match &daemon {
            Some(t) => hookspec::daemon_spec_path(t, DAEMON_JSON).map_err(malformed)?,
            None => None,
        };
        let spec = named
            .clone()
            .unwrap_or_else(|| DEFAULT_DAEMON_SPEC.to_string());
        match (&daemon, &named) {
            (Some(t), None) => {
                let edit =
                    hookspec::daemon_json_with_spec(t, &spec, DAEMON_JSON).map_err(malformed)?;
                plan.write(root, DAEMON_JSON, edit, true, 0o644);
            }
            (None, _) => plan.notes.push(format!(
                "no {DAEMON_JSON}: set \"hook-spec\": \"{spec}\" in iSulad's daemon configuration"
            )),
            _ => {}
        }
        spec
    } else {
        o.output.clone()
    };
    let existing = read(root, &spec_path)?;
    let edit =
        hookspec::merge(existing.as_deref(), &o.target.hook, &spec_path).map_err(malformed)?;
    plan.write(root, &spec_path, edit, existing.is_some(), 0o644);

    for p in o.target.problems(root) {
        plan.notes
            .push(format!("warning: iSulad will refuse this hook: {p}"));
    }
    if o.daemon_default {
        plan.notes
            .push("restart iSulad to apply: systemctl restart isulad".into());
        plan.notes
            .push("then: isula run --rm -e KERNEL_MODULES=ip_vs busybox true".into());
    } else {
        plan.notes.push(format!(
            "run containers with: isula run --rm --hook-spec {spec_path} -e KERNEL_MODULES=ip_vs busybox true"
        ));
    }
    Ok(plan)
}
