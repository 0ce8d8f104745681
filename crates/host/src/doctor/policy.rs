//! The policy file: absent (the built-in default applies), valid, or invalid (every
//! request is refused until it is corrected).

use modgate_core::policy::{Mode, Policy, DEFAULT_SOURCE};

use super::{Check, Status};
use crate::policyfile::{self, POLICY_PATH};
use crate::root::Root;

/// The policy file and what came of reading it.
#[derive(Debug, Clone)]
enum Facts {
    Missing { path: String, default: Policy },
    Parsed(Policy),
    Invalid { error: String },
}

impl Facts {
    /// Read the way the hook reads it, so the doctor and the hook never disagree.
    fn read(root: &Root) -> Self {
        match policyfile::load(root, None) {
            Ok(p) if p.source == DEFAULT_SOURCE => Facts::Missing {
                path: format!("/{POLICY_PATH}"),
                default: p,
            },
            Ok(p) => Facts::Parsed(p),
            Err(e) => Facts::Invalid {
                error: modgate_core::error_line(&e),
            },
        }
    }
}

/// The policy's check.
pub fn check(root: &Root) -> Check {
    verdict(&Facts::read(root))
}

fn verdict(f: &Facts) -> Check {
    let name = "policy";
    let summary = |p: &Policy| {
        format!(
            "mode {}, {} allow pattern(s), {} deny pattern(s), at most {} modules per request",
            match p.mode {
                Mode::Allowlist => "allowlist",
                Mode::Permissive => "permissive",
            },
            p.allow.len(),
            p.deny.len(),
            p.max_modules
        )
    };
    match f {
        Facts::Missing { path, default } => Check::new(
            name,
            Status::Ok,
            format!("no {path}: the built-in default applies ({})", summary(default)),
        ),
        Facts::Parsed(p) if !p.widening().is_empty() => {
            let wider: Vec<String> = p
                .widening()
                .iter()
                .map(|w| format!("{}: {}", w.key, w.why))
                .collect();
            Check::new(
                name,
                Status::Warn,
                format!(
                    "{}: {}; widens the built-in default: {}",
                    p.source,
                    summary(p),
                    wider.join("; ")
                ),
            )
            .fix("`modgate policy show` prints each key and where it came from")
        }
        Facts::Parsed(p) => Check::new(name, Status::Ok, format!("{}: {}", p.source, summary(p))),
        Facts::Invalid { error } => Check::new(name, Status::Fail, error.clone())
            .fix("correct the file (`modgate policy default` prints a valid one); until then every request is refused"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_table() {
        let default = Policy::builtin_default();
        let permissive = Policy::parse("/p.toml", "mode = \"permissive\"").unwrap();
        assert_eq!(
            verdict(&Facts::Missing {
                path: "/etc/modgate/policy.toml".into(),
                default: default.clone()
            })
            .status,
            Status::Ok
        );
        assert_eq!(verdict(&Facts::Parsed(default)).status, Status::Ok);
        assert_eq!(verdict(&Facts::Parsed(permissive)).status, Status::Warn);
        assert_eq!(
            verdict(&Facts::Invalid {
                error: "bad".into()
            })
            .status,
            Status::Fail
        );
    }

    #[test]
    fn reads_a_root() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        assert_eq!(check(&root).status, Status::Ok);
        let p = root.path(POLICY_PATH);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "mode = \"permissive\"\n").unwrap();
        assert_eq!(check(&root).status, Status::Warn);
        std::fs::write(&p, "mode = [\n").unwrap();
        assert_eq!(check(&root).status, Status::Fail);
        std::fs::write(&p, "deny = [\"dccp*\"]\n").unwrap();
        let c = check(&root);
        assert_eq!(c.status, Status::Warn);
        assert!(
            c.detail.contains("deny: no longer denies sctp*"),
            "{}",
            c.detail
        );
        std::fs::write(&p, "unload = \"on-last-release\"\n").unwrap();
        assert_eq!(check(&root).status, Status::Ok);
        std::fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink("/nonexistent", &p).unwrap();
        assert_eq!(
            check(&root).status,
            Status::Fail,
            "a dangling link is not the default"
        );
    }
}
