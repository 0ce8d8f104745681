//! Why the running kernel may refuse a module, read once: `modules_disabled`, the
//! lockdown mode, signature enforcement, this process's `CAP_SYS_MODULE` and the
//! command line's `module_blacklist=`. The loader explains its errors with it; the
//! doctor can report the same facts.

use crate::root::Root;

const CAP_SYS_MODULE: u32 = 16;

/// What the kernel says about loading modules. `None`: the file is missing or does not
/// say (a kernel without module support has no `modules_disabled`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnosis {
    /// `/proc/modules` exists: the kernel loads modules at all.
    pub module_support: bool,
    /// `/proc/sys/kernel/modules_disabled`, trimmed (`"0"`, `"1"`).
    pub modules_disabled: Option<String>,
    /// `/sys/module/module/parameters/sig_enforce` is `Y`.
    pub sig_enforce: Option<bool>,
    /// The selected lockdown mode, the word in brackets of
    /// `/sys/kernel/security/lockdown` (`none`, `integrity`, `confidentiality`).
    pub lockdown: Option<String>,
    /// The `CAP_SYS_MODULE` bit of `CapEff` in `/proc/self/status`.
    pub cap_sys_module: Option<bool>,
    /// Modules named by `module_blacklist=` on the kernel command line, normalised.
    pub cmdline_blacklist: Vec<String>,
}

impl Diagnosis {
    pub fn read(root: &Root) -> Self {
        let read = |p: &str| std::fs::read_to_string(root.path(p)).ok();
        Self {
            module_support: root.path("proc/modules").exists(),
            modules_disabled: read("proc/sys/kernel/modules_disabled").map(|s| s.trim().into()),
            sig_enforce: read("sys/module/module/parameters/sig_enforce").map(|s| s.trim() == "Y"),
            lockdown: read("sys/kernel/security/lockdown")
                .as_deref()
                .and_then(lockdown_mode)
                .map(String::from),
            cap_sys_module: read("proc/self/status").as_deref().and_then(cap_sys_module),
            cmdline_blacklist: read("proc/cmdline")
                .as_deref()
                .map(cmdline_blacklist)
                .unwrap_or_default(),
        }
    }

    /// `kernel.modules_disabled=1`: nothing loads until the next boot.
    pub fn loading_disabled(&self) -> bool {
        self.modules_disabled.as_deref() == Some("1")
    }

    /// A kernel that loads anything for a root caller: the starting point of tests.
    #[cfg(test)]
    pub(crate) fn healthy() -> Self {
        Self {
            module_support: true,
            modules_disabled: Some("0".into()),
            sig_enforce: Some(false),
            lockdown: Some("none".into()),
            cap_sys_module: Some(true),
            cmdline_blacklist: Vec::new(),
        }
    }

    /// A lockdown mode that refuses unsigned modules.
    pub fn locked_down(&self) -> Option<&str> {
        self.lockdown.as_deref().filter(|m| *m != "none")
    }
}

/// The selected lockdown mode: the word in brackets.
pub fn lockdown_mode(s: &str) -> Option<&str> {
    let start = s.find('[')? + 1;
    let end = s[start..].find(']')? + start;
    Some(&s[start..end])
}

/// Whether `CapEff` in a `/proc/PID/status` text holds `CAP_SYS_MODULE`.
pub fn cap_sys_module(status: &str) -> Option<bool> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .map(|caps| caps & (1 << CAP_SYS_MODULE) != 0)
}

/// The modules `module_blacklist=` names on a kernel command line.
pub fn cmdline_blacklist(cmdline: &str) -> Vec<String> {
    cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("module_blacklist="))
        .flat_map(|l| l.split(','))
        .filter(|m| !m.is_empty())
        .map(|m| m.replace('-', "_"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        let lockdown = [
            ("[none] integrity confidentiality\n", Some("none")),
            ("none [integrity] confidentiality", Some("integrity")),
            ("none integrity [confidentiality]", Some("confidentiality")),
            ("none integrity", None),
        ];
        for (text, want) in lockdown {
            assert_eq!(lockdown_mode(text), want, "{text:?}");
        }
        let caps = [
            ("Name:\tx\nCapEff:\t000001ffffffffff\n", Some(true)),
            ("CapEff:\t0000000000000000\n", Some(false)),
            ("CapEff:\t0000000000010000\n", Some(true)),
            ("CapEff:\tzz\n", None),
            ("Name:\tx\n", None),
        ];
        for (text, want) in caps {
            assert_eq!(cap_sys_module(text), want, "{text:?}");
        }
        assert_eq!(
            cmdline_blacklist(
                "quiet module_blacklist=ip-vs,dummy root=/dev/sda module_blacklist=veth"
            ),
            ["ip_vs", "dummy", "veth"]
        );
        assert!(cmdline_blacklist("quiet").is_empty());
    }

    #[test]
    fn reads_under_the_root() {
        let t = tempfile::tempdir().expect("tempdir");
        let root = Root::new(t.path());
        assert_eq!(Diagnosis::read(&root), Diagnosis::default());
        for (rel, text) in [
            ("proc/modules", ""),
            ("proc/sys/kernel/modules_disabled", "1\n"),
            ("sys/module/module/parameters/sig_enforce", "Y\n"),
            (
                "sys/kernel/security/lockdown",
                "none [integrity] confidentiality\n",
            ),
            ("proc/self/status", "CapEff:\t0000000000000000\n"),
            ("proc/cmdline", "module_blacklist=dummy\n"),
        ] {
            let p = t.path().join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        }
        let d = Diagnosis::read(&root);
        assert!(d.module_support && d.loading_disabled());
        assert_eq!(d.sig_enforce, Some(true));
        assert_eq!(d.locked_down(), Some("integrity"));
        assert_eq!(d.cap_sys_module, Some(false));
        assert_eq!(d.cmdline_blacklist, ["dummy"]);
    }
}
