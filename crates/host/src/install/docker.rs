//! Docker: the runtime wrapper registered in `/etc/docker/daemon.json`.

use modgate_core::engine::docker;

use super::{malformed, read, InstallError, Plan};
use crate::configfile;
use crate::root::Root;

pub const DAEMON_JSON: &str = "/etc/docker/daemon.json";

pub struct DockerOptions {
    /// Host path of modgate-runtime.
    pub wrapper: String,
    /// Also make it Docker's default runtime.
    pub default: bool,
}

pub fn plan(root: &Root, o: &DockerOptions) -> Result<Plan, InstallError> {
    let mut plan = Plan::default();
    let existing = read(root, DAEMON_JSON)?;
    let edit = docker::merge(existing.as_deref(), &o.wrapper, o.default, DAEMON_JSON)
        .map_err(malformed)?;
    plan.write(root, DAEMON_JSON, edit, existing.is_some(), 0o644);
    wrapper_note(root, &o.wrapper, &mut plan);
    plan.notes
        .push("reload Docker to apply: systemctl reload docker".into());
    let runtime = if o.default { "" } else { "--runtime modgate " };
    plan.notes.push(format!(
        "run containers with: docker run --rm {runtime}-e KERNEL_MODULES=ip_vs busybox true"
    ));
    Ok(plan)
}

/// Warns when the wrapper is not there (yet).
pub(super) fn wrapper_note(root: &Root, wrapper: &str, plan: &mut Plan) {
    if configfile::file_meta(&root.path(wrapper)).is_none() {
        plan.notes.push(format!(
            "warning: {wrapper} does not exist: link it to modgate (ln -s modgate {wrapper}) or give --wrapper"
        ));
    }
}
