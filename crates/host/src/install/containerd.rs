//! containerd: a CRI runtime whose BinaryName is the wrapper, printed (or, with
//! `--write`, merged into `/etc/containerd/config.toml`), and its RuntimeClass.

use modgate_core::engine::containerd;

use super::{malformed, read, InstallError, Plan};
use crate::root::Root;

pub const CONFIG_TOML: &str = "/etc/containerd/config.toml";

pub struct ContainerdOptions {
    pub wrapper: String,
    pub write: bool,
}

pub fn plan(root: &Root, o: &ContainerdOptions) -> Result<Plan, InstallError> {
    let mut plan = Plan::default();
    let existing = read(root, CONFIG_TOML)?;
    if o.write {
        let edit =
            containerd::merge(existing.as_deref(), &o.wrapper, CONFIG_TOML).map_err(malformed)?;
        plan.write(root, CONFIG_TOML, edit, existing.is_some(), 0o644);
        plan.notes
            .push("restart containerd to apply: systemctl restart containerd".into());
    } else {
        let snippet =
            containerd::snippet(existing.as_deref(), &o.wrapper, CONFIG_TOML).map_err(malformed)?;
        plan.notes.push(format!(
            "add to {CONFIG_TOML} (or run again with --write), then restart containerd:\n{snippet}"
        ));
    }
    super::docker::wrapper_note(root, &o.wrapper, &mut plan);
    plan.notes.push(format!(
        "Kubernetes: apply this RuntimeClass and set runtimeClassName: modgate on the pod:\n{}",
        containerd::runtime_class()
    ));
    plan.notes.push(format!(
        "or directly: ctr run --rm --runc-binary {} --env KERNEL_MODULES=ip_vs docker.io/library/busybox:latest demo true",
        o.wrapper
    ));
    Ok(plan)
}
