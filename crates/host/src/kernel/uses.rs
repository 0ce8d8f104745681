//! What uses a module without the kernel counting it. A `veth` pair, a `bridge` or a
//! `vxlan` device holds no reference on the module that made it (its reference count
//! stays 0), yet removing the module destroys the devices, on the whole host. A mounted
//! file system does hold one; it is listed too, as a second line. [`Uses`] lists those
//! objects; the lifecycle maps them to modules (`rtnl-link-KIND` and `fs-TYPE` aliases)
//! before it removes anything.
//!
//! Covered: the links of the caller's network namespace (the hook's, which is the
//! runtime's: the host's) and the mounts of its mount namespace. Not covered: links that
//! live only in other network namespaces, mounts only in other mount namespaces; the
//! policy's `never_unload` is for those.

use crate::root::Root;

use super::{mountinfo, netlink};

/// A network link: its name and, for a link a driver made through rtnetlink, its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub kind: Option<String>,
}

/// A mounted file system: where, and its type (`ext4`, `fuse.sshfs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub point: String,
    pub fstype: String,
}

/// Why the objects could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot list the network links")]
    Links(#[source] netlink::NetlinkError),
    #[error("cannot read the mounts in {path}")]
    Mounts {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The objects that use modules without holding a reference on them.
pub trait Uses: Sync {
    fn links(&self) -> Result<Vec<Link>, ScanError>;
    fn mounts(&self) -> Result<Vec<Mount>, ScanError>;
}

/// The running host: an `RTM_GETLINK` dump of this process's network namespace and
/// `ROOT/proc/self/mountinfo`.
pub struct HostUses<'a> {
    pub root: &'a Root,
}

impl Uses for HostUses<'_> {
    fn links(&self) -> Result<Vec<Link>, ScanError> {
        netlink::dump_links().map_err(ScanError::Links)
    }

    fn mounts(&self) -> Result<Vec<Mount>, ScanError> {
        let path = self.root.path("proc/self/mountinfo");
        mountinfo::read(&path).map_err(|source| ScanError::Mounts {
            path: path.display().to_string(),
            source,
        })
    }
}
