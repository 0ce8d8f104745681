//! podman and CRI-O: OCI hooks.d files, one per stage.

use modgate_core::engine::hooksd::{self, When};
use modgate_core::engine::STAGES;

use super::{malformed, read, HookTarget, InstallError, Plan};
use crate::root::Root;

pub const DEFAULT_DIR: &str = "/usr/share/containers/oci/hooks.d";
/// The directories podman and CRI-O read by default.
pub const ENGINE_DIRS: [&str; 2] = [
    "/usr/share/containers/oci/hooks.d",
    "/etc/containers/oci/hooks.d",
];

pub struct HooksdOptions {
    pub target: HookTarget,
    /// Host path of the hooks.d directory.
    pub dir: String,
    pub when: When,
}

pub fn plan(root: &Root, o: &HooksdOptions) -> Result<Plan, InstallError> {
    let mut plan = Plan::default();
    let dir = o.dir.trim_end_matches('/');
    for stage in STAGES {
        let shown = format!("{dir}/{}", hooksd::file_name(stage));
        let existing = read(root, &shown)?;
        let edit = hooksd::merge(existing.as_deref(), &o.target.hook, stage, o.when, &shown)
            .map_err(malformed)?;
        plan.write(root, &shown, edit, existing.is_some(), 0o644);
    }
    for p in o.target.problems(root) {
        plan.notes.push(format!("warning: {p}"));
    }
    let hooks_dir = if ENGINE_DIRS.contains(&dir) {
        String::new()
    } else {
        plan.notes.push(format!(
            "{dir} is not a directory podman or CRI-O reads by default: pass --hooks-dir {dir} to podman, or add it to hooks_dir in crio.conf"
        ));
        format!(" --hooks-dir {dir}")
    };
    plan.notes.push(match o.when {
        When::Always => format!(
            "run containers with: podman{hooks_dir} run --rm -e KERNEL_MODULES=ip_vs busybox true"
        ),
        When::Annotation => format!(
            "run containers with: podman{hooks_dir} run --rm --annotation modgate.io/kernel-modules=ip_vs busybox true\n\
             (Kubernetes on CRI-O: metadata.annotations: {{modgate.io/kernel-modules: ip_vs}} on the pod)"
        ),
    });
    Ok(plan)
}
