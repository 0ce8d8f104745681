//! The running kernel, as one model: [`Kernel`] reads its module list (state, which load
//! of a module is live, who uses it), [`Uses`] lists what uses modules without a
//! reference (network links, mounts), [`ModuleSyscalls`] changes the list, and
//! [`Diagnosis`] says why it may refuse. Everything modgate knows of the kernel goes
//! through here.

pub mod diagnosis;
#[cfg(any(test, feature = "fakes"))]
pub mod fake;
pub mod mountinfo;
pub mod netlink;
pub mod netns;
pub mod syscalls;
mod sysfs;
pub mod uses;

pub use diagnosis::Diagnosis;
pub use modgate_core::resolve::{KernelView, ModState, NothingLoaded};
pub use syscalls::{ModuleSyscalls, Syscalls, MODULE_INIT_COMPRESSED_FILE};
pub use sysfs::Sysfs;
pub use uses::{HostUses, Link, Mount, ScanError, Uses};

/// Everything modgate reads of the running kernel's modules.
///
/// It extends the resolver's [`KernelView`] (a module's state, all the resolver needs)
/// rather than replacing it: the resolver lives in `modgate-core`, which cannot depend
/// on this crate, and a plan needs nothing more than the state.
pub trait Kernel: KernelView + Sync {
    /// Which load of the module is live: changes each time it is loaded again (the
    /// inode of `/sys/module/NAME`). `None`: not loaded, or cannot tell.
    fn instance(&self, module: &str) -> Option<u64>;
    /// How many references hold the module (`None` when the kernel does not say).
    fn refcnt(&self, module: &str) -> Option<u64>;
    /// The modules that use this one, sorted.
    fn holders(&self, module: &str) -> Vec<String>;
    /// The compression the kernel can undo itself (`/sys/module/compression`).
    fn compression(&self) -> Option<String>;
}
