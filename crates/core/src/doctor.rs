//! `modgate doctor`'s judgements: facts the host side gathered (file contents, modes,
//! times) in, one verdict per check out, each with what to do when it is not fine.

use serde::Serialize;

use crate::policy::{Mode, Policy};

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
    fn new(name: &str, status: Status, detail: impl Into<String>) -> Self {
        Self {
            name: name.to_string(),
            status,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fix(mut self, fix: impl Into<String>) -> Self {
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

/// What the kernel says about loading modules.
#[derive(Debug, Clone, Default)]
pub struct KernelFacts {
    pub proc_modules: bool,
    /// `/proc/sys/kernel/modules_disabled`.
    pub modules_disabled: Option<String>,
    /// `/sys/module/module/parameters/sig_enforce`.
    pub sig_enforce: Option<String>,
    /// `/sys/kernel/security/lockdown`, like `[none] integrity confidentiality`.
    pub lockdown: Option<String>,
    /// `CapEff` of `/proc/self/status` (hex).
    pub cap_eff: Option<String>,
}

const CAP_SYS_MODULE: u32 = 16;

fn has_cap(hex: &str, bit: u32) -> Option<bool> {
    u64::from_str_radix(hex.trim(), 16)
        .ok()
        .map(|v| v & (1 << bit) != 0)
}

/// The selected lockdown mode: the word in brackets.
fn lockdown_mode(s: &str) -> Option<&str> {
    let start = s.find('[')? + 1;
    let end = s[start..].find(']')? + start;
    Some(&s[start..end])
}

pub fn kernel(f: &KernelFacts) -> Vec<Check> {
    let mut out = Vec::new();
    out.push(if f.proc_modules {
        Check::new(
            "kernel modules",
            Status::Ok,
            "the running kernel loads modules (/proc/modules)",
        )
    } else {
        Check::new(
            "kernel modules",
            Status::Fail,
            "no /proc/modules: the running kernel was built without loadable module support",
        )
        .fix("boot a kernel built with CONFIG_MODULES=y, or build the needed drivers in")
    });
    out.push(match f.modules_disabled.as_deref().map(str::trim) {
        Some("0") => Check::new(
            "modules_disabled",
            Status::Ok,
            "kernel.modules_disabled = 0",
        ),
        Some("1") => Check::new(
            "modules_disabled",
            Status::Fail,
            "kernel.modules_disabled = 1: no module can be loaded until the next boot",
        )
        .fix(
            "remove kernel.modules_disabled=1 from /etc/sysctl.conf and /etc/sysctl.d, then reboot",
        ),
        Some(v) => Check::new(
            "modules_disabled",
            Status::Warn,
            format!("unexpected kernel.modules_disabled = {v:?}"),
        ),
        None if !f.proc_modules => {
            Check::new("modules_disabled", Status::Skip, "no module support")
        }
        None => Check::new(
            "modules_disabled",
            Status::Warn,
            "cannot read /proc/sys/kernel/modules_disabled",
        ),
    });
    let enforce = f.sig_enforce.as_deref().map(str::trim) == Some("Y");
    let lockdown = f
        .lockdown
        .as_deref()
        .and_then(lockdown_mode)
        .filter(|m| *m != "none");
    out.push(match (enforce, lockdown) {
        (false, None) => Check::new(
            "signatures",
            Status::Ok,
            format!(
                "signatures not enforced{}",
                if f.lockdown.is_some() { ", lockdown none" } else { "" }
            ),
        ),
        (e, l) => {
            let mut why = Vec::new();
            if e {
                why.push("module.sig_enforce=1".to_string());
            }
            if let Some(m) = l {
                why.push(format!("lockdown={m}"));
            }
            Check::new(
                "signatures",
                Status::Warn,
                format!("only signed modules load ({}); the distribution's own modules are signed", why.join(", ")),
            )
            .fix("sign out-of-tree modules with a key the kernel trusts (a loaded unsigned module fails with EKEYREJECTED)")
        }
    });
    out.push(match f.cap_eff.as_deref().and_then(|h| has_cap(h, CAP_SYS_MODULE)) {
        Some(true) => Check::new("CAP_SYS_MODULE", Status::Ok, "this process holds CAP_SYS_MODULE"),
        Some(false) => Check::new(
            "CAP_SYS_MODULE",
            Status::Fail,
            "this process lacks CAP_SYS_MODULE, which loading a module needs",
        )
        .fix("run modgate (and this check) as root in the host's user namespace; runtimes run hooks that way"),
        None => Check::new("CAP_SYS_MODULE", Status::Warn, "cannot read CapEff from /proc/self/status"),
    });
    out
}

/// The module directory of the running kernel.
#[derive(Debug, Clone, Default)]
pub struct ModDirFacts {
    pub release: Option<String>,
    /// The directory found (host path), if any.
    pub dir: Option<String>,
    /// Modification time (seconds) of `modules.dep.bin`.
    pub dep_bin: Option<i64>,
    pub dep_text: bool,
    /// The most recently changed module file and its time.
    pub newest: Option<(String, i64)>,
}

pub fn module_dir(f: &ModDirFacts) -> Check {
    let name = "module directory";
    let Some(kv) = &f.release else {
        return Check::new(
            name,
            Status::Fail,
            "cannot tell the running kernel's release",
        )
        .fix("give --kernel-release");
    };
    let Some(dir) = &f.dir else {
        return Check::new(
            name,
            Status::Fail,
            format!("no /lib/modules/{kv} (nor /usr/lib/modules/{kv})"),
        )
        .fix(format!("install the modules package of kernel {kv}"));
    };
    let depmod = format!("run depmod {kv}");
    match (f.dep_bin, f.dep_text) {
        (None, false) => Check::new(
            name,
            Status::Fail,
            format!("{dir} has no modules.dep.bin nor modules.dep"),
        )
        .fix(depmod),
        (None, true) => Check::new(
            name,
            Status::Warn,
            format!(
                "{dir} has modules.dep but no modules.dep.bin: modgate reads the slower text form"
            ),
        )
        .fix(depmod),
        (Some(t), _) => match &f.newest {
            Some((m, mt)) if *mt > t => Check::new(
                name,
                Status::Warn,
                format!(
                    "{dir}/modules.dep.bin is older than {m}: modules added since are not found"
                ),
            )
            .fix(depmod),
            _ => Check::new(name, Status::Ok, format!("{dir}, indexes up to date")),
        },
    }
}

/// The policy file and what came of reading it.
#[derive(Debug, Clone)]
pub enum PolicyFacts {
    Missing { path: String, default: Policy },
    Parsed(Policy),
    Invalid { error: String },
}

pub fn policy(f: &PolicyFacts) -> Check {
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
        PolicyFacts::Missing { path, default } => Check::new(
            name,
            Status::Ok,
            format!("no {path}: the built-in default applies ({})", summary(default)),
        ),
        PolicyFacts::Parsed(p) if p.mode == Mode::Permissive => Check::new(
            name,
            Status::Warn,
            format!("{}: {}: containers may load any module not denied", p.source, summary(p)),
        ),
        PolicyFacts::Parsed(p) => Check::new(name, Status::Ok, format!("{}: {}", p.source, summary(p))),
        PolicyFacts::Invalid { error } => Check::new(name, Status::Fail, error.clone())
            .fix("correct the file (`modgate policy default` prints a valid one); until then every request is refused"),
    }
}

/// Ownership and mode of a hook executable, as iSulad checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta {
    pub uid: u32,
    pub mode: u32,
    pub is_file: bool,
}

/// Why iSulad (and prudence) would refuse this hook executable; empty when fine.
pub fn hook_path_problems(path: &str, meta: Option<FileMeta>) -> Vec<String> {
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

/// One container engine: whether it is there and how modgate is wired into it.
#[derive(Debug, Clone, Default)]
pub struct EngineFacts {
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

pub fn engine(f: &EngineFacts) -> Check {
    let name = format!("engine {}", f.name);
    if !f.problems.is_empty() {
        // Two hook entries naming one bad binary make one problem, said once.
        let mut problems: Vec<&str> = Vec::new();
        for p in &f.problems {
            if !problems.contains(&p.as_str()) {
                problems.push(p);
            }
        }
        return Check::new(&name, Status::Fail, problems.join("; ")).fix(format!(
            "install modgate at the path named (root-owned, not world-writable), or point the entries at one: {} --binary PATH",
            f.install
        ));
    }
    match (&f.installed, f.configured.is_empty()) {
        (_, false) => Check::new(&name, Status::Ok, f.configured.join("; ")),
        (Some(how), true) => Check::new(
            &name,
            Status::Warn,
            format!("installed ({how}) but modgate is not wired in"),
        )
        .fix(f.install.clone()),
        (None, true) => Check::new(&name, Status::Skip, "not installed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(c: &[Check], name: &str) -> Status {
        c.iter()
            .find(|c| c.name == name)
            .map(|c| c.status)
            .unwrap_or(Status::Skip)
    }

    #[test]
    fn kernel_table() {
        let good = KernelFacts {
            proc_modules: true,
            modules_disabled: Some("0\n".into()),
            sig_enforce: Some("N\n".into()),
            lockdown: Some("[none] integrity confidentiality\n".into()),
            cap_eff: Some("000001ffffffffff".into()),
        };
        // (facts, check, expected)
        let cases: Vec<(KernelFacts, &str, Status)> = vec![
            (good.clone(), "kernel modules", Status::Ok),
            (good.clone(), "modules_disabled", Status::Ok),
            (good.clone(), "signatures", Status::Ok),
            (good.clone(), "CAP_SYS_MODULE", Status::Ok),
            (KernelFacts::default(), "kernel modules", Status::Fail),
            (KernelFacts::default(), "modules_disabled", Status::Skip),
            (
                KernelFacts {
                    modules_disabled: Some("1".into()),
                    ..good.clone()
                },
                "modules_disabled",
                Status::Fail,
            ),
            (
                KernelFacts {
                    sig_enforce: Some("Y".into()),
                    ..good.clone()
                },
                "signatures",
                Status::Warn,
            ),
            (
                KernelFacts {
                    lockdown: Some("none [integrity] confidentiality".into()),
                    ..good.clone()
                },
                "signatures",
                Status::Warn,
            ),
            (
                KernelFacts {
                    lockdown: None,
                    sig_enforce: None,
                    ..good.clone()
                },
                "signatures",
                Status::Ok,
            ),
            (
                KernelFacts {
                    cap_eff: Some("00000000a80425fb".into()),
                    ..good.clone()
                },
                "CAP_SYS_MODULE",
                Status::Fail,
            ),
            (
                KernelFacts {
                    cap_eff: Some("0000000000010000".into()),
                    ..good.clone()
                },
                "CAP_SYS_MODULE",
                Status::Ok,
            ),
            (
                KernelFacts {
                    cap_eff: None,
                    ..good.clone()
                },
                "CAP_SYS_MODULE",
                Status::Warn,
            ),
        ];
        for (i, (f, name, want)) in cases.iter().enumerate() {
            assert_eq!(status(&kernel(f), name), *want, "case {i}: {name}");
        }
        let c = kernel(&KernelFacts::default());
        assert!(blocking(&c));
        assert!(
            c[0].line()
                .starts_with("FAIL  kernel modules: no /proc/modules"),
            "{}",
            c[0].line()
        );
        assert!(c[0].line().contains(" -- fix: boot a kernel"));
        assert!(!blocking(&kernel(&good)));
    }

    #[test]
    fn module_dir_table() {
        let base = ModDirFacts {
            release: Some("6.1.0-x".into()),
            dir: Some("/lib/modules/6.1.0-x".into()),
            dep_bin: Some(100),
            dep_text: true,
            newest: Some(("kernel/a.ko".into(), 90)),
        };
        let cases = [
            (base.clone(), Status::Ok),
            (
                ModDirFacts {
                    newest: Some(("extra/new.ko".into(), 101)),
                    ..base.clone()
                },
                Status::Warn,
            ),
            (
                ModDirFacts {
                    dep_bin: None,
                    ..base.clone()
                },
                Status::Warn,
            ),
            (
                ModDirFacts {
                    dep_bin: None,
                    dep_text: false,
                    ..base.clone()
                },
                Status::Fail,
            ),
            (
                ModDirFacts {
                    dir: None,
                    ..base.clone()
                },
                Status::Fail,
            ),
            (
                ModDirFacts {
                    release: None,
                    ..base.clone()
                },
                Status::Fail,
            ),
        ];
        for (i, (f, want)) in cases.iter().enumerate() {
            assert_eq!(module_dir(f).status, *want, "case {i}");
        }
        assert!(module_dir(&cases[1].0).detail.contains("extra/new.ko"));
    }

    #[test]
    fn policy_table() {
        let default = Policy::builtin_default();
        let permissive = Policy::parse("/p.toml", "mode = \"permissive\"").unwrap();
        assert_eq!(
            policy(&PolicyFacts::Missing {
                path: "/etc/modgate/policy.toml".into(),
                default: default.clone()
            })
            .status,
            Status::Ok
        );
        assert_eq!(policy(&PolicyFacts::Parsed(default)).status, Status::Ok);
        assert_eq!(
            policy(&PolicyFacts::Parsed(permissive)).status,
            Status::Warn
        );
        assert_eq!(
            policy(&PolicyFacts::Invalid {
                error: "bad".into()
            })
            .status,
            Status::Fail
        );
    }

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
            assert_eq!(hook_path_problems(path, meta).len(), n, "{path} {meta:?}");
        }
    }

    #[test]
    fn engine_table() {
        let base = EngineFacts {
            name: "podman".into(),
            install: "modgate install hooks-d".into(),
            ..Default::default()
        };
        let cases = vec![
            (base.clone(), Status::Skip),
            (
                EngineFacts {
                    installed: Some("/usr/bin/podman".into()),
                    ..base.clone()
                },
                Status::Warn,
            ),
            (
                EngineFacts {
                    configured: vec!["x".into()],
                    ..base.clone()
                },
                Status::Ok,
            ),
            (
                EngineFacts {
                    configured: vec!["x".into()],
                    problems: vec!["p".into()],
                    ..base.clone()
                },
                Status::Fail,
            ),
        ];
        for (f, want) in cases {
            assert_eq!(engine(&f).status, want, "{f:?}");
        }
    }
}
