//! The syscall boundary: inserting and removing modules. Everything that changes the
//! kernel's module list goes through [`ModuleSyscalls`], passed in explicitly, so unit
//! tests pass a fake ([`super::fake`]).

use std::ffi::CStr;
use std::fs::File;
use std::io;

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
        let flags =
            i32::try_from(flags).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(rustix::system::finit_module(file, params, flags)?)
    }

    fn init_module(&self, _module: &str, image: &[u8], params: &CStr) -> io::Result<()> {
        Ok(rustix::system::init_module(image, params)?)
    }

    fn delete_module(&self, name: &CStr) -> io::Result<()> {
        Ok(rustix::system::delete_module(name, libc::O_NONBLOCK)?)
    }
}
