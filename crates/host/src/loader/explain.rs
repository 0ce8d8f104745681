//! What an insertion error means for the operator: the kernel's errno, read with what
//! the host's state says (`modules_disabled`, capabilities, lockdown, the command line).

use std::io;

use crate::kernel::Diagnosis;

/// What an insertion error means for the operator.
pub fn explain(diag: &Diagnosis, module: &str, e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EPERM) => {
            if diag.loading_disabled() {
                return "operation not permitted: module loading is disabled (kernel.modules_disabled=1; only a reboot re-enables it)".into();
            }
            if diag.cap_sys_module == Some(false) {
                return "operation not permitted: this process lacks CAP_SYS_MODULE (run the hook as root in the host's user namespace)".into();
            }
            if matches!(diag.locked_down(), Some("integrity" | "confidentiality")) {
                return "operation not permitted: the kernel is locked down and refuses unsigned modules".into();
            }
            if diag.cmdline_blacklist.iter().any(|m| m == module) {
                return format!("operation not permitted: module_blacklist= on the kernel command line names {module}");
            }
            "operation not permitted".into()
        }
        Some(libc::EKEYREJECTED) | Some(libc::ENOKEY) | Some(libc::EBADMSG) => {
            format!("signature rejected ({e}): the kernel enforces module signatures and this module's is missing, unknown or invalid")
        }
        Some(libc::ENOEXEC) => {
            "invalid module format: built for another kernel, or the file is corrupt".into()
        }
        Some(libc::ENOENT) => "unknown symbol in module, or unknown parameter (see dmesg)".into(),
        Some(libc::ENOSYS) => "this kernel has no loadable module support".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_explained_from_the_diagnosis() {
        let ok = Diagnosis::healthy();
        let with = |f: &dyn Fn(&mut Diagnosis)| {
            let mut d = ok.clone();
            f(&mut d);
            d
        };
        let table: &[(Diagnosis, i32, &str)] = &[
            (ok.clone(), libc::EPERM, "operation not permitted"),
            (
                with(&|d| d.modules_disabled = Some("1".into())),
                libc::EPERM,
                "kernel.modules_disabled=1",
            ),
            (
                with(&|d| d.cap_sys_module = Some(false)),
                libc::EPERM,
                "lacks CAP_SYS_MODULE",
            ),
            (
                with(&|d| d.lockdown = Some("integrity".into())),
                libc::EPERM,
                "locked down",
            ),
            (
                with(&|d| d.cmdline_blacklist = vec!["dummy".into()]),
                libc::EPERM,
                "module_blacklist= on the kernel command line names dummy",
            ),
            (ok.clone(), libc::EKEYREJECTED, "signature rejected"),
            (ok.clone(), libc::ENOEXEC, "invalid module format"),
            (ok.clone(), libc::ENOENT, "unknown symbol"),
        ];
        for (diag, errno, want) in table {
            let got = explain(diag, "dummy", &io::Error::from_raw_os_error(*errno));
            assert!(got.contains(want), "{errno}: {got}");
        }
        // Nothing to blame: the plain reason, with no guess added.
        assert_eq!(
            explain(&ok, "dummy", &io::Error::from_raw_os_error(libc::EPERM)),
            "operation not permitted"
        );
    }
}
