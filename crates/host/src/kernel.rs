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
