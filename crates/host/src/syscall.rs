//! The syscall boundary: inserting and removing modules. Everything that touches the
//! kernel's module list goes through [`ModuleSyscalls`], so tests pass a recording fake.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Mutex;

/// `finit_module` flag: the file is compressed and the kernel decompresses it.
pub const MODULE_INIT_COMPRESSED_FILE: u32 = 4;

/// `module` names what is being inserted, for logs and fakes; the kernel reads the name
/// from the image itself.
pub trait ModuleSyscalls: Sync {
    fn finit_module(&self, module: &str, file: &File, params: &CStr, flags: u32) -> io::Result<()>;
    fn init_module(&self, module: &str, image: &[u8], params: &CStr) -> io::Result<()>;
    /// Always non-blocking (`O_NONBLOCK`): a module in use is left, never waited for.
    fn delete_module(&self, name: &CStr) -> io::Result<()>;
}

/// Arms (or, with 0, cancels) the process's alarm: when it fires, SIGALRM's default
/// action ends the process.
pub fn alarm(secs: u64) {
    let secs = secs.min(u32::MAX as u64) as libc::c_uint;
    // SAFETY: alarm(2) takes a plain integer and touches no memory.
    unsafe { libc::alarm(secs) };
}

/// The real thing.
pub struct Syscalls;

impl ModuleSyscalls for Syscalls {
    fn finit_module(
        &self,
        _module: &str,
        file: &File,
        params: &CStr,
        flags: u32,
    ) -> io::Result<()> {
        // SAFETY: finit_module(2) reads from a valid open fd and a NUL-terminated string
        // that both outlive the call; it writes no user memory.
        let r = unsafe {
            libc::syscall(
                libc::SYS_finit_module,
                file.as_raw_fd(),
                params.as_ptr(),
                flags as libc::c_uint,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn init_module(&self, _module: &str, image: &[u8], params: &CStr) -> io::Result<()> {
        // SAFETY: init_module(2) reads `len` bytes from a live slice and a NUL-terminated
        // string, both borrowed for the whole call; it writes no user memory.
        let r = unsafe {
            libc::syscall(
                libc::SYS_init_module,
                image.as_ptr(),
                image.len() as libc::c_ulong,
                params.as_ptr(),
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn delete_module(&self, name: &CStr) -> io::Result<()> {
        // SAFETY: delete_module(2) reads a NUL-terminated name that outlives the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_delete_module,
                name.as_ptr(),
                libc::O_NONBLOCK as libc::c_uint,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// What the recording fake saw.
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

/// A fake kernel for unit tests: records every call and fails the ones it is told to.
#[derive(Default)]
pub struct RecordingSyscalls {
    pub calls: Mutex<Vec<Call>>,
    /// module name → errno to fail its insertion with.
    pub fail_insert: Vec<(String, i32)>,
    /// module name → errno to fail its removal with.
    pub fail_delete: Vec<(String, i32)>,
}

impl RecordingSyscalls {
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn outcome(&self, name: &str) -> io::Result<()> {
        match self.fail_insert.iter().find(|(n, _)| n == name) {
            Some((_, errno)) => Err(io::Error::from_raw_os_error(*errno)),
            None => Ok(()),
        }
    }
}

impl ModuleSyscalls for RecordingSyscalls {
    fn finit_module(
        &self,
        module: &str,
        _file: &File,
        params: &CStr,
        flags: u32,
    ) -> io::Result<()> {
        let name = module.to_string();
        if let Ok(mut c) = self.calls.lock() {
            c.push(Call::Finit {
                name: name.clone(),
                params: params.to_string_lossy().into(),
                flags,
            });
        }
        self.outcome(&name)
    }

    fn init_module(&self, module: &str, image: &[u8], params: &CStr) -> io::Result<()> {
        let name = module.to_string();
        if let Ok(mut c) = self.calls.lock() {
            c.push(Call::Init {
                name: name.clone(),
                len: image.len(),
                params: params.to_string_lossy().into(),
            });
        }
        self.outcome(&name)
    }

    fn delete_module(&self, name: &CStr) -> io::Result<()> {
        let name = name.to_string_lossy().into_owned();
        if let Ok(mut c) = self.calls.lock() {
            c.push(Call::Delete { name: name.clone() });
        }
        match self.fail_delete.iter().find(|(n, _)| *n == name) {
            Some((_, errno)) => Err(io::Error::from_raw_os_error(*errno)),
            None => Ok(()),
        }
    }
}
