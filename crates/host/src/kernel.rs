//! The running kernel's module list as `ROOT/sys/module` shows it.

use modgate_core::{KernelView, ModState};

use crate::root::Root;

pub struct Sysfs<'a> {
    pub root: &'a Root,
}

impl KernelView for Sysfs<'_> {
    fn state(&self, name: &str) -> ModState {
        let dir = self.root.path(&format!("sys/module/{name}"));
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

impl Sysfs<'_> {
    fn dir(&self, name: &str) -> std::path::PathBuf {
        self.root.path(&format!("sys/module/{name}"))
    }

    /// `refcnt`: how many references hold the module (`None` when the kernel does not
    /// say, as without module unloading).
    pub fn refcnt(&self, name: &str) -> Option<u64> {
        std::fs::read_to_string(self.dir(name).join("refcnt"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// `holders/`: the modules that use this one.
    pub fn holders(&self, name: &str) -> Vec<String> {
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

    pub fn facts(&self, name: &str) -> modgate_core::unload::Facts {
        modgate_core::unload::Facts {
            live: self.state(name) == ModState::Live,
            refcnt: self.refcnt(name),
            holders: self.holders(name),
        }
    }
}

impl modgate_core::lifecycle::Kernel for Sysfs<'_> {
    /// The inode of `/sys/module/NAME`: sysfs numbers its nodes without reuse, so a
    /// module loaded again gets a new one.
    fn instance(&self, name: &str) -> Option<u64> {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(self.dir(name))
            .ok()
            .map(|m| m.ino())
    }
}
