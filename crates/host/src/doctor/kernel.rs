//! The running kernel's side of `doctor`: module support, `modules_disabled`, signature
//! enforcement and lockdown, and this process's `CAP_SYS_MODULE`, read under the root.
//! Kept in this one file so it can move onto the kernel module's diagnosis parser.

use super::{Check, Status};
use crate::root::Root;

/// What the kernel says about loading modules.
#[derive(Debug, Clone, Default)]
struct Facts {
    proc_modules: bool,
    /// `/proc/sys/kernel/modules_disabled`.
    modules_disabled: Option<String>,
    /// `/sys/module/module/parameters/sig_enforce`.
    sig_enforce: Option<String>,
    /// `/sys/kernel/security/lockdown`, like `[none] integrity confidentiality`.
    lockdown: Option<String>,
    /// `CapEff` of `/proc/self/status` (hex).
    cap_eff: Option<String>,
}

impl Facts {
    fn read(root: &Root) -> Self {
        let read = |rel: &str| std::fs::read_to_string(root.path(rel)).ok();
        let status = read("proc/self/status").unwrap_or_default();
        Facts {
            proc_modules: root.path("proc/modules").exists(),
            modules_disabled: read("proc/sys/kernel/modules_disabled"),
            sig_enforce: read("sys/module/module/parameters/sig_enforce"),
            lockdown: read("sys/kernel/security/lockdown"),
            cap_eff: status
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .map(|v| v.trim().to_string()),
        }
    }
}

/// The kernel's checks, in the order they are printed.
pub fn checks(root: &Root) -> Vec<Check> {
    verdicts(&Facts::read(root))
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

fn verdicts(f: &Facts) -> Vec<Check> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::blocking;

    fn status(c: &[Check], name: &str) -> Status {
        c.iter()
            .find(|c| c.name == name)
            .map(|c| c.status)
            .unwrap_or(Status::Skip)
    }

    #[test]
    fn kernel_table() {
        let good = Facts {
            proc_modules: true,
            modules_disabled: Some("0\n".into()),
            sig_enforce: Some("N\n".into()),
            lockdown: Some("[none] integrity confidentiality\n".into()),
            cap_eff: Some("000001ffffffffff".into()),
        };
        // (facts, check, expected)
        let cases: Vec<(Facts, &str, Status)> = vec![
            (good.clone(), "kernel modules", Status::Ok),
            (good.clone(), "modules_disabled", Status::Ok),
            (good.clone(), "signatures", Status::Ok),
            (good.clone(), "CAP_SYS_MODULE", Status::Ok),
            (Facts::default(), "kernel modules", Status::Fail),
            (Facts::default(), "modules_disabled", Status::Skip),
            (
                Facts {
                    modules_disabled: Some("1".into()),
                    ..good.clone()
                },
                "modules_disabled",
                Status::Fail,
            ),
            (
                Facts {
                    sig_enforce: Some("Y".into()),
                    ..good.clone()
                },
                "signatures",
                Status::Warn,
            ),
            (
                Facts {
                    lockdown: Some("none [integrity] confidentiality".into()),
                    ..good.clone()
                },
                "signatures",
                Status::Warn,
            ),
            (
                Facts {
                    lockdown: None,
                    sig_enforce: None,
                    ..good.clone()
                },
                "signatures",
                Status::Ok,
            ),
            (
                Facts {
                    cap_eff: Some("00000000a80425fb".into()),
                    ..good.clone()
                },
                "CAP_SYS_MODULE",
                Status::Fail,
            ),
            (
                Facts {
                    cap_eff: Some("0000000000010000".into()),
                    ..good.clone()
                },
                "CAP_SYS_MODULE",
                Status::Ok,
            ),
            (
                Facts {
                    cap_eff: None,
                    ..good.clone()
                },
                "CAP_SYS_MODULE",
                Status::Warn,
            ),
        ];
        for (i, (f, name, want)) in cases.iter().enumerate() {
            assert_eq!(status(&verdicts(f), name), *want, "case {i}: {name}");
        }
        let c = verdicts(&Facts::default());
        assert!(blocking(&c));
        assert!(
            c[0].line()
                .starts_with("FAIL  kernel modules: no /proc/modules"),
            "{}",
            c[0].line()
        );
        assert!(c[0].line().contains(" -- fix: boot a kernel"));
        assert!(!blocking(&verdicts(&good)));
    }

    #[test]
    fn reads_a_root() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        let w = |rel: &str, text: &str| {
            let p = d.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        assert!(blocking(&checks(&root)));
        w("proc/modules", "");
        w("proc/sys/kernel/modules_disabled", "0\n");
        w("proc/self/status", "Name:\tx\nCapEff:\t0000000000010000\n");
        let c = checks(&root);
        assert!(!blocking(&c), "{c:?}");
        w("proc/self/status", "CapEff:\t0000000000000000\n");
        assert_eq!(status(&checks(&root), "CAP_SYS_MODULE"), Status::Fail);
    }
}
