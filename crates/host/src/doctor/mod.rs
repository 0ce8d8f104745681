//! `modgate doctor`: one check per thing modgate needs (the kernel, the module
//! directory, the policy, each container engine), each read under the root and judged
//! in the same module, with what to do when it is not fine.

mod kernel;
mod moddir;
mod policy;

use serde::Serialize;

use crate::engines::{containerd, docker, hooksd, isulad};
use crate::root::Root;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Works, but worth knowing.
    Warn,
    /// Blocks modgate from working.
    Fail,
    /// Not applicable here (an engine that is not installed).
    Skip,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub(crate) fn new(name: &str, status: Status, detail: impl Into<String>) -> Self {
        Self {
            name: name.to_string(),
            status,
            detail: detail.into(),
            fix: None,
        }
    }

    pub(crate) fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    /// One line: `STATUS  NAME: DETAIL (fix: ...)`.
    pub fn line(&self) -> String {
        let mut s = format!("{:<4}  {}: {}", self.status.label(), self.name, self.detail);
        if let Some(f) = &self.fix {
            s.push_str(" -- fix: ");
            s.push_str(f);
        }
        s
    }
}

/// Whether any check blocks modgate.
pub fn blocking(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.status == Status::Fail)
}

/// Every check, in the order they are printed.
pub fn run(root: &Root, release: Option<String>) -> Vec<Check> {
    let mut checks = kernel::checks(root);
    checks.push(moddir::check(root, release));
    checks.push(policy::check(root));
    checks.push(isulad::wiring(root).check());
    checks.extend(hooksd::wirings(root).iter().map(|w| w.check()));
    let d = docker::wiring(root);
    let c = containerd::wiring(root);
    let wrapped = !d.configured.is_empty() || !c.configured.is_empty();
    checks.push(d.check());
    checks.push(c.check());
    if wrapped {
        checks.push(crate::wrapper::check(root));
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_blocking() {
        let ok = Check::new("a", Status::Ok, "fine");
        let bad = Check::new("b", Status::Fail, "broken").fix("mend it");
        assert_eq!(ok.line(), "ok    a: fine");
        assert_eq!(bad.line(), "FAIL  b: broken -- fix: mend it");
        assert!(!blocking(std::slice::from_ref(&ok)));
        assert!(blocking(&[ok, bad]));
    }

    #[test]
    fn an_empty_root_is_blocked_and_names_every_engine() {
        let d = tempfile::tempdir().unwrap();
        let checks = run(&Root::new(d.path()), None);
        assert!(blocking(&checks));
        let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
        for n in [
            "kernel modules",
            "module directory",
            "policy",
            "engine iSulad",
            "engine podman",
            "engine CRI-O",
            "engine Docker",
            "engine containerd",
        ] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
        assert!(!names.contains(&"runtime wrapper"));
    }
}
