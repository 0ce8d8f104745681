//! What every engine's doctor check shares: whether an executable an engine runs would
//! be accepted (iSulad's rules: absolute, a root-owned regular file, not world-writable),
//! whether the engine is installed, and the one verdict line of an engine.

use std::os::unix::fs::MetadataExt;

use crate::doctor::{Check, Status};
use crate::root::Root;
use crate::which;

/// Ownership and mode of a hook executable, as iSulad checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileMeta {
    uid: u32,
    mode: u32,
    is_file: bool,
}

/// Why iSulad (and prudence) would refuse this hook executable; empty when fine.
fn problems_of(path: &str, meta: Option<FileMeta>) -> Vec<String> {
    let mut p = Vec::new();
    if !path.starts_with('/') {
        p.push(format!("{path} is not an absolute path"));
    }
    match meta {
        None => p.push(format!("{path} does not exist")),
        Some(m) => {
            if !m.is_file {
                p.push(format!("{path} is not a regular file"));
            }
            if m.uid != 0 {
                p.push(format!("{path} is owned by uid {}, not root", m.uid));
            }
            if m.mode & 0o002 != 0 {
                p.push(format!("{path} is world-writable"));
            }
            if m.is_file && m.mode & 0o111 == 0 {
                p.push(format!("{path} is not executable"));
            }
        }
    }
    p
}

/// Why an engine would refuse to run the executable at host path `path` under the root
/// (links followed, as an engine's `stat` does); empty when fine.
pub fn exec_problems(root: &Root, path: &str) -> Vec<String> {
    let meta = root
        .resolve(path)
        .and_then(std::fs::metadata)
        .ok()
        .map(|m| FileMeta {
            uid: m.uid(),
            mode: m.mode(),
            is_file: m.is_file(),
        });
    problems_of(path, meta)
}

/// What shows an engine is installed: its binary in the usual directories, or its
/// configuration file (host paths).
pub fn installed(root: &Root, bin: &str, config: &str) -> Option<String> {
    which::in_root(root, bin).or_else(|| {
        let there = root.resolve(config).is_ok_and(|p| p.exists());
        there.then(|| config.to_string())
    })
}

/// One container engine: whether it is there and how modgate is wired into it.
#[derive(Debug, Clone, Default)]
pub struct Wiring {
    pub name: String,
    /// What shows it is installed (its binary or configuration), if anything.
    pub installed: Option<String>,
    /// Where modgate is wired in (files, with the hook or wrapper they name).
    pub configured: Vec<String>,
    /// What is wrong with that wiring.
    pub problems: Vec<String>,
    /// The command that wires modgate in.
    pub install: String,
}

impl Wiring {
    pub fn new(name: &str, installed: Option<String>, install: &str) -> Self {
        Self {
            name: name.into(),
            installed,
            install: install.into(),
            ..Default::default()
        }
    }

    /// Records an executable the engine will run, with what is wrong with it.
    pub fn runs(&mut self, root: &Root, path: &str) {
        self.problems.extend(exec_problems(root, path));
    }

    /// The engine's doctor line.
    pub fn check(&self) -> Check {
        let name = format!("engine {}", self.name);
        if !self.problems.is_empty() {
            // Two hook entries naming one bad binary make one problem, said once.
            let mut problems: Vec<&str> = Vec::new();
            for p in &self.problems {
                if !problems.contains(&p.as_str()) {
                    problems.push(p);
                }
            }
            return Check::new(&name, Status::Fail, problems.join("; ")).fix(format!(
                "install modgate at the path named (root-owned, not world-writable), or point the entries at one: {} --binary PATH",
                self.install
            ));
        }
        match (&self.installed, self.configured.is_empty()) {
            (_, false) => Check::new(&name, Status::Ok, self.configured.join("; ")),
            (Some(how), true) => Check::new(
                &name,
                Status::Warn,
                format!("installed ({how}) but modgate is not wired in"),
            )
            .fix(self.install.clone()),
            (None, true) => Check::new(&name, Status::Skip, "not installed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_paths() {
        let good = FileMeta {
            uid: 0,
            mode: 0o100755,
            is_file: true,
        };
        let cases: Vec<(&str, Option<FileMeta>, usize)> = vec![
            ("/usr/bin/modgate", Some(good), 0),
            ("usr/bin/modgate", Some(good), 1),
            ("/usr/bin/modgate", None, 1),
            ("/usr/bin/modgate", Some(FileMeta { uid: 1000, ..good }), 1),
            (
                "/usr/bin/modgate",
                Some(FileMeta {
                    mode: 0o100777,
                    ..good
                }),
                1,
            ),
            (
                "/usr/bin/modgate",
                Some(FileMeta {
                    mode: 0o100644,
                    ..good
                }),
                1,
            ),
            (
                "/usr/bin",
                Some(FileMeta {
                    is_file: false,
                    mode: 0o40755,
                    ..good
                }),
                1,
            ),
        ];
        for (path, meta, n) in cases {
            assert_eq!(problems_of(path, meta).len(), n, "{path} {meta:?}");
        }
    }

    #[test]
    fn exec_problems_under_a_root() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        std::fs::create_dir_all(d.path().join("usr/bin")).unwrap();
        let bin = d.path().join("usr/bin/modgate");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o777)).unwrap();
        let p = exec_problems(&root, "/usr/bin/modgate");
        assert!(p.iter().any(|p| p.ends_with("is world-writable")), "{p:?}");
        assert_eq!(
            exec_problems(&root, "/usr/bin/none"),
            ["/usr/bin/none does not exist"]
        );
    }

    #[test]
    fn verdicts() {
        let base = Wiring::new("podman", None, "modgate install hooks-d");
        let cases = vec![
            (base.clone(), Status::Skip),
            (
                Wiring {
                    installed: Some("/usr/bin/podman".into()),
                    ..base.clone()
                },
                Status::Warn,
            ),
            (
                Wiring {
                    configured: vec!["x".into()],
                    ..base.clone()
                },
                Status::Ok,
            ),
            (
                Wiring {
                    configured: vec!["x".into()],
                    problems: vec!["p".into(), "p".into()],
                    ..base.clone()
                },
                Status::Fail,
            ),
        ];
        for (f, want) in cases {
            assert_eq!(f.check().status, want, "{f:?}");
        }
        let twice = Wiring {
            problems: vec!["p".into(), "p".into()],
            ..base
        };
        assert!(twice.check().detail == "p", "{:?}", twice.check());
    }
}
