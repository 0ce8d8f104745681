//! Fakes of the kernel for tests (built for this crate's unit tests and, with the
//! `fakes` feature, for `modgate-testkit`; never in the binary).
//!
//! [`FakeKernel`] keeps a module list under `ROOT/sys/module` the way kmod's own
//! testsuite fakes it (`NAME/initstate`, `NAME/refcnt`, `NAME/holders/`): what it
//! inserts appears live, what it removes disappears, so [`super::Sysfs`] on the same
//! root reads what a real kernel would show; it also holds the network links and mounts
//! a test gives it ([`super::Uses`]). [`RecordingSyscalls`] only records.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::Mutex;

use super::{Kernel, KernelView, Link, ModState, ModuleSyscalls, Mount, ScanError, Sysfs, Uses};
use crate::root::Root;

/// A call a fake saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Finit {
        name: String,
        params: String,
        flags: u32,
    },
    Init {
        name: String,
        len: usize,
        params: String,
    },
    Delete {
        name: String,
    },
}

impl Call {
    pub fn inserted(&self) -> Option<&str> {
        match self {
            Call::Finit { name, .. } | Call::Init { name, .. } => Some(name),
            Call::Delete { .. } => None,
        }
    }

    pub fn deleted(&self) -> Option<&str> {
        match self {
            Call::Delete { name } => Some(name),
            _ => None,
        }
    }
}

/// Records every call and fails the ones it is told to; changes nothing.
#[derive(Default)]
pub struct RecordingSyscalls {
    pub calls: Mutex<Vec<Call>>,
    /// module name → errno to fail its insertion with.
    pub fail_insert: Vec<(String, i32)>,
    /// module name → errno to fail its removal with.
    pub fail_delete: Vec<(String, i32)>,
}

fn errno_for(list: &[(String, i32)], name: &str) -> io::Result<()> {
    match list.iter().find(|(n, _)| n == name) {
        Some((_, errno)) => Err(io::Error::from_raw_os_error(*errno)),
        None => Ok(()),
    }
}

impl RecordingSyscalls {
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    pub fn inserted(&self) -> Vec<String> {
        self.calls()
            .iter()
            .filter_map(|c| c.inserted().map(String::from))
            .collect()
    }

    pub fn deleted(&self) -> Vec<String> {
        self.calls()
            .iter()
            .filter_map(|c| c.deleted().map(String::from))
            .collect()
    }

    fn record(&self, call: Call) {
        if let Ok(mut c) = self.calls.lock() {
            c.push(call);
        }
    }
}

impl ModuleSyscalls for RecordingSyscalls {
    fn finit_module(&self, module: &str, _: &File, params: &CStr, flags: u32) -> io::Result<()> {
        self.record(Call::Finit {
            name: module.to_string(),
            params: params.to_string_lossy().into(),
            flags,
        });
        errno_for(&self.fail_insert, module)
    }

    fn init_module(&self, module: &str, image: &[u8], params: &CStr) -> io::Result<()> {
        self.record(Call::Init {
            name: module.to_string(),
            len: image.len(),
            params: params.to_string_lossy().into(),
        });
        errno_for(&self.fail_insert, module)
    }

    fn delete_module(&self, name: &CStr) -> io::Result<()> {
        let name = name.to_string_lossy().into_owned();
        self.record(Call::Delete { name: name.clone() });
        errno_for(&self.fail_delete, &name)
    }
}

/// A kernel whose module list is `ROOT/sys/module`: it records calls like
/// [`RecordingSyscalls`] and also carries them out there.
pub struct FakeKernel {
    root: Root,
    pub syscalls: RecordingSyscalls,
    links: Mutex<Vec<Link>>,
    mounts: Mutex<Vec<Mount>>,
    /// Listing links fails (as netlink may).
    pub links_fail: bool,
}

impl FakeKernel {
    pub fn new(root: &Root) -> Self {
        Self {
            root: root.clone(),
            syscalls: RecordingSyscalls::default(),
            links: Mutex::default(),
            mounts: Mutex::default(),
            links_fail: false,
        }
    }

    /// A network link `name` of `kind` (`None`: a link with no kind, like a NIC's).
    pub fn add_link(&self, name: &str, kind: Option<&str>) {
        self.add_link_in(name, kind, None);
    }

    /// The same, in another network namespace (`namespace` names it).
    pub fn add_link_in(&self, name: &str, kind: Option<&str>, namespace: Option<&str>) {
        if let Ok(mut l) = self.links.lock() {
            l.push(Link {
                name: name.into(),
                kind: kind.map(String::from),
                namespace: namespace.map(String::from),
            });
        }
    }

    pub fn remove_link(&self, name: &str) {
        if let Ok(mut l) = self.links.lock() {
            l.retain(|l| l.name != name);
        }
    }

    pub fn add_mount(&self, point: &str, fstype: &str) {
        if let Ok(mut m) = self.mounts.lock() {
            m.push(Mount {
                point: point.into(),
                fstype: fstype.into(),
            });
        }
    }

    pub fn remove_mount(&self, point: &str) {
        if let Ok(mut m) = self.mounts.lock() {
            m.retain(|m| m.point != point);
        }
    }

    /// Fails the insertion of `module` with `errno`.
    pub fn fail_insert(mut self, module: &str, errno: i32) -> Self {
        self.syscalls.fail_insert.push((module.into(), errno));
        self
    }

    /// Fails the removal of `module` with `errno`.
    pub fn fail_delete(mut self, module: &str, errno: i32) -> Self {
        self.syscalls.fail_delete.push((module.into(), errno));
        self
    }

    pub fn calls(&self) -> Vec<Call> {
        self.syscalls.calls()
    }

    pub fn inserted(&self) -> Vec<String> {
        self.syscalls.inserted()
    }

    pub fn deleted(&self) -> Vec<String> {
        self.syscalls.deleted()
    }

    fn dir(&self, module: &str) -> PathBuf {
        self.root.path("sys/module").join(module)
    }

    /// Modules loaded as the kernel shows them: `initstate` `live`, `refcnt` 0, an
    /// empty `holders/`.
    pub fn set_live(&self, modules: &[&str]) {
        write_live(self.root.dir(), modules);
    }

    /// A built-in module: the directory without `initstate`.
    pub fn set_builtin(&self, module: &str) {
        std::fs::create_dir_all(self.dir(module)).expect("mkdir");
    }

    pub fn set_state(&self, module: &str, initstate: &str) {
        std::fs::create_dir_all(self.dir(module).join("holders")).expect("mkdir");
        std::fs::write(self.dir(module).join("initstate"), format!("{initstate}\n"))
            .expect("write initstate");
    }

    pub fn set_refcnt(&self, module: &str, n: u64) {
        std::fs::write(self.dir(module).join("refcnt"), format!("{n}\n")).expect("write refcnt");
    }

    /// `user` uses `module` (a link in `module/holders/`).
    pub fn add_holder(&self, module: &str, user: &str) {
        std::fs::create_dir_all(self.dir(module).join("holders").join(user)).expect("mkdir");
    }

    /// Removed and loaded again outside modgate: a new `/sys/module/NAME`.
    pub fn reload(&self, module: &str) {
        let old = self.root.path("sys/module").join(format!(".{module}.old"));
        std::fs::rename(self.dir(module), &old).expect("mv");
        self.set_live(&[module]);
        std::fs::remove_dir_all(old).expect("rm");
    }

    /// The modules live now, sorted.
    pub fn live(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root.path("sys/module"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().join("initstate").exists())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    fn insert(&self, module: &str) -> io::Result<()> {
        errno_for(&self.syscalls.fail_insert, module)?;
        if self.dir(module).exists() {
            return Err(io::Error::from_raw_os_error(libc::EEXIST));
        }
        self.set_live(&[module]);
        Ok(())
    }
}

/// What [`FakeKernel::set_live`] writes, for a root given as a plain path.
pub fn write_live(root: &std::path::Path, modules: &[&str]) {
    for m in modules {
        let d = root.join("sys/module").join(m);
        std::fs::create_dir_all(d.join("holders")).expect("mkdir");
        std::fs::write(d.join("initstate"), "live\n").expect("write initstate");
        std::fs::write(d.join("refcnt"), "0\n").expect("write refcnt");
    }
}

impl ModuleSyscalls for FakeKernel {
    fn finit_module(&self, module: &str, file: &File, params: &CStr, flags: u32) -> io::Result<()> {
        let _ = self.syscalls.finit_module(module, file, params, flags);
        self.insert(module)
    }

    fn init_module(&self, module: &str, image: &[u8], params: &CStr) -> io::Result<()> {
        let _ = self.syscalls.init_module(module, image, params);
        self.insert(module)
    }

    fn delete_module(&self, name: &CStr) -> io::Result<()> {
        self.syscalls.delete_module(name)?;
        let name = name.to_string_lossy();
        let sysfs = Sysfs { root: &self.root };
        if sysfs.state(&name) != ModState::Live {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        // As the kernel with O_NONBLOCK: a module in use stays.
        if sysfs.refcnt(&name).unwrap_or(0) > 0 || !sysfs.holders(&name).is_empty() {
            return Err(io::Error::from_raw_os_error(libc::EWOULDBLOCK));
        }
        std::fs::remove_dir_all(self.dir(&name))
            .map_err(|_| io::Error::from_raw_os_error(libc::ENOENT))?;
        // Its links in the holders/ of the modules it used go with it.
        if let Ok(d) = std::fs::read_dir(self.root.path("sys/module")) {
            for e in d.flatten() {
                let _ = std::fs::remove_dir(e.path().join("holders").join(&*name));
            }
        }
        Ok(())
    }
}

impl KernelView for FakeKernel {
    fn state(&self, module: &str) -> ModState {
        Sysfs { root: &self.root }.state(module)
    }
}

impl Kernel for FakeKernel {
    fn instance(&self, module: &str) -> Option<u64> {
        Sysfs { root: &self.root }.instance(module)
    }

    fn refcnt(&self, module: &str) -> Option<u64> {
        Sysfs { root: &self.root }.refcnt(module)
    }

    fn holders(&self, module: &str) -> Vec<String> {
        Sysfs { root: &self.root }.holders(module)
    }

    fn compression(&self) -> Option<String> {
        Sysfs { root: &self.root }.compression()
    }
}

impl Uses for FakeKernel {
    fn links(&self) -> Result<Vec<Link>, ScanError> {
        if self.links_fail {
            return Err(ScanError::Links(super::netlink::NetlinkError::Refused(
                libc::EPERM,
            )));
        }
        Ok(self.links.lock().map(|l| l.clone()).unwrap_or_default())
    }

    fn mounts(&self) -> Result<Vec<Mount>, ScanError> {
        Ok(self.mounts.lock().map(|m| m.clone()).unwrap_or_default())
    }
}
