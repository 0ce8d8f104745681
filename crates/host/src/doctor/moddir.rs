//! The module directory of the running kernel: there, indexed, and its index newer
//! than every module file in it.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::{Check, Status};
use crate::root::Root;

#[derive(Debug, Clone, Default)]
struct Facts {
    release: Option<String>,
    /// The directory found (host path), if any.
    dir: Option<String>,
    /// Modification time (seconds) of `modules.dep.bin`.
    dep_bin: Option<i64>,
    dep_text: bool,
    /// The most recently changed module file and its time.
    newest: Option<(String, i64)>,
}

fn mtime(p: &Path) -> Option<i64> {
    std::fs::metadata(p).ok().map(|m| m.mtime())
}

/// The newest module file under `dir` (links such as `build` are not followed).
fn newest_module(dir: &Path, base: &Path, best: &mut Option<(String, i64)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        let p = e.path();
        if ft.is_dir() {
            newest_module(&p, base, best);
        } else if ft.is_file() && e.file_name().to_string_lossy().contains(".ko") {
            if let Some(t) = mtime(&p) {
                if best.as_ref().is_none_or(|(_, b)| t > *b) {
                    let rel = p.strip_prefix(base).unwrap_or(&p).display().to_string();
                    *best = Some((rel, t));
                }
            }
        }
    }
}

impl Facts {
    fn read(root: &Root, release: Option<String>) -> Self {
        let release = release.or_else(|| root.kernel_release().ok());
        let mut f = Facts {
            release: release.clone(),
            ..Default::default()
        };
        let Some(kv) = release else { return f };
        let Some(base) = crate::moddir::locate(root, &kv) else {
            return f;
        };
        let dir = format!("/{base}/{kv}");
        let real = root.path(&dir);
        f.dep_bin = mtime(&real.join("modules.dep.bin"));
        f.dep_text = real.join("modules.dep").is_file();
        newest_module(&real, &real, &mut f.newest);
        f.dir = Some(dir);
        f
    }
}

/// The module directory's check, for `release` (default: the root's running kernel).
pub fn check(root: &Root, release: Option<String>) -> Check {
    verdict(&Facts::read(root, release))
}

fn verdict(f: &Facts) -> Check {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_dir_table() {
        let base = Facts {
            release: Some("6.1.0-x".into()),
            dir: Some("/lib/modules/6.1.0-x".into()),
            dep_bin: Some(100),
            dep_text: true,
            newest: Some(("kernel/a.ko".into(), 90)),
        };
        let cases = [
            (base.clone(), Status::Ok),
            (
                Facts {
                    newest: Some(("extra/new.ko".into(), 101)),
                    ..base.clone()
                },
                Status::Warn,
            ),
            (
                Facts {
                    dep_bin: None,
                    ..base.clone()
                },
                Status::Warn,
            ),
            (
                Facts {
                    dep_bin: None,
                    dep_text: false,
                    ..base.clone()
                },
                Status::Fail,
            ),
            (
                Facts {
                    dir: None,
                    ..base.clone()
                },
                Status::Fail,
            ),
            (
                Facts {
                    release: None,
                    ..base.clone()
                },
                Status::Fail,
            ),
        ];
        for (i, (f, want)) in cases.iter().enumerate() {
            assert_eq!(verdict(f).status, *want, "case {i}");
        }
        assert!(verdict(&cases[1].0).detail.contains("extra/new.ko"));
    }

    #[test]
    fn reads_a_root() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        assert_eq!(check(&root, None).status, Status::Fail);
        assert_eq!(check(&root, Some("6.1.0-x".into())).status, Status::Fail);
        let dir = d.path().join("usr/lib/modules/6.1.0-x/kernel");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.ko"), "").unwrap();
        assert_eq!(check(&root, Some("6.1.0-x".into())).status, Status::Fail);
        std::fs::write(dir.join("../modules.dep"), "").unwrap();
        let c = check(&root, Some("6.1.0-x".into()));
        assert_eq!(c.status, Status::Warn, "{c:?}");
        assert!(
            c.detail
                .starts_with("/usr/lib/modules/6.1.0-x has modules.dep"),
            "{c:?}"
        );
    }
}
