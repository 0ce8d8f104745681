//! [`Kernel`] as the running kernel shows it under `ROOT/sys/module` (the layout kmod's
//! own tools read: `NAME/initstate`, `NAME/refcnt`, `NAME/holders/`).

use std::path::PathBuf;

use super::{Kernel, KernelView, ModState};
use crate::root::Root;

pub struct Sysfs<'a> {
    pub root: &'a Root,
}

impl Sysfs<'_> {
    fn dir(&self, name: &str) -> PathBuf {
        self.root.path(&format!("sys/module/{name}"))
    }
}

impl KernelView for Sysfs<'_> {
    fn state(&self, name: &str) -> ModState {
        let dir = self.dir(name);
        match std::fs::read_to_string(dir.join("initstate")) {
            Ok(s) => match s.trim_end() {
                "live" => ModState::Live,
                "coming" => ModState::Coming,
                "going" => ModState::Going,
                _ => ModState::Absent,
            },
            Err(_) if dir.is_dir() => ModState::Builtin,
            Err(_) => ModState::Absent,
        }
    }
}

impl Kernel for Sysfs<'_> {
    /// sysfs numbers its nodes without reuse, so a module loaded again gets a new inode.
    fn instance(&self, name: &str) -> Option<u64> {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(self.dir(name))
            .ok()
            .map(|m| m.ino())
    }

    fn refcnt(&self, name: &str) -> Option<u64> {
        std::fs::read_to_string(self.dir(name).join("refcnt"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    fn holders(&self, name: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir(name).join("holders"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    fn compression(&self) -> Option<String> {
        std::fs::read_to_string(self.root.path("sys/module/compression"))
            .ok()
            .map(|s| s.trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::fake::FakeKernel;

    #[test]
    fn reads_what_the_fake_kernel_writes() {
        let t = tempfile::tempdir().expect("tempdir");
        let root = Root::new(t.path());
        let fake = FakeKernel::new(&root);
        fake.set_live(&["ip_vs", "nf_conntrack"]);
        fake.set_builtin("crc32c_generic");
        fake.set_state("dummy", "coming");
        fake.add_holder("nf_conntrack", "ip_vs");
        fake.set_refcnt("ip_vs", 3);
        let k = Sysfs { root: &root };
        let table = [
            ("ip_vs", ModState::Live),
            ("crc32c_generic", ModState::Builtin),
            ("dummy", ModState::Coming),
            ("veth", ModState::Absent),
        ];
        for (m, want) in table {
            assert_eq!(k.state(m), want, "{m}");
        }
        assert_eq!(k.refcnt("ip_vs"), Some(3));
        assert_eq!(k.refcnt("veth"), None);
        assert_eq!(k.holders("nf_conntrack"), ["ip_vs"]);
        let first = k.instance("ip_vs").expect("instance");
        fake.reload("ip_vs");
        assert_ne!(
            k.instance("ip_vs"),
            Some(first),
            "a new load, a new instance"
        );
        assert_eq!(k.instance("veth"), None);
        assert_eq!(k.compression(), None);
        std::fs::write(t.path().join("sys/module/compression"), "zstd\n").expect("write");
        assert_eq!(k.compression().as_deref(), Some("zstd"));
    }
}
