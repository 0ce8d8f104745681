//! The running kernel's side of `doctor`: module support, `modules_disabled`, signature
//! enforcement and lockdown, and this process's `CAP_SYS_MODULE`, as the kernel module's
//! [`Diagnosis`] reads them (the loader explains its errors from the same facts).

use super::{Check, Status};
use crate::kernel::Diagnosis;
use crate::root::Root;

/// The kernel's checks, in the order they are printed.
pub fn checks(root: &Root) -> Vec<Check> {
    verdicts(&Diagnosis::read(root))
}

fn verdicts(f: &Diagnosis) -> Vec<Check> {
    let mut out = Vec::new();
    out.push(if f.module_support {
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
    out.push(match f.modules_disabled.as_deref() {
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
        None if !f.module_support => {
            Check::new("modules_disabled", Status::Skip, "no module support")
        }
        None => Check::new(
            "modules_disabled",
            Status::Warn,
            "cannot read /proc/sys/kernel/modules_disabled",
        ),
    });
    let enforce = f.sig_enforce == Some(true);
    let lockdown = f.locked_down();
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
    out.push(match f.cap_sys_module {
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
        let good = Diagnosis::healthy();
        // (facts, check, expected)
        let cases: Vec<(Diagnosis, &str, Status)> = vec![
            (good.clone(), "kernel modules", Status::Ok),
            (good.clone(), "modules_disabled", Status::Ok),
            (good.clone(), "signatures", Status::Ok),
            (good.clone(), "CAP_SYS_MODULE", Status::Ok),
            (Diagnosis::default(), "kernel modules", Status::Fail),
            (Diagnosis::default(), "modules_disabled", Status::Skip),
            (
                Diagnosis {
                    modules_disabled: Some("1".into()),
                    ..good.clone()
                },
                "modules_disabled",
                Status::Fail,
            ),
            (
                Diagnosis {
                    sig_enforce: Some(true),
                    ..good.clone()
                },
                "signatures",
                Status::Warn,
            ),
            (
                Diagnosis {
                    lockdown: Some("integrity".into()),
                    ..good.clone()
                },
                "signatures",
                Status::Warn,
            ),
            (
                Diagnosis {
                    lockdown: None,
                    sig_enforce: None,
                    ..good.clone()
                },
                "signatures",
                Status::Ok,
            ),
            (
                Diagnosis {
                    cap_sys_module: Some(false),
                    ..good.clone()
                },
                "CAP_SYS_MODULE",
                Status::Fail,
            ),
            (
                Diagnosis {
                    cap_sys_module: Some(true),
                    ..good.clone()
                },
                "CAP_SYS_MODULE",
                Status::Ok,
            ),
            (
                Diagnosis {
                    cap_sys_module: None,
                    ..good.clone()
                },
                "CAP_SYS_MODULE",
                Status::Warn,
            ),
        ];
        for (i, (f, name, want)) in cases.iter().enumerate() {
            assert_eq!(status(&verdicts(f), name), *want, "case {i}: {name}");
        }
        let c = verdicts(&Diagnosis::default());
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
