//! What uses a module without the kernel counting it. A `veth` pair, a `bridge` or a
//! `vxlan` device holds no reference on the module that made it (its reference count
//! stays 0), yet removing the module destroys the devices, on the whole host. A mounted
//! file system does hold one; it is listed too, as a second line. [`Uses`] lists those
//! objects; the lifecycle maps them to modules (`rtnl-link-KIND` and `fs-TYPE` aliases)
//! before it removes anything.
//!
//! Covered: the links of the caller's network namespace (the hook's, which is the
//! runtime's: the host's) and of every other network namespace a process is in or
//! `/run/netns` names ([`super::netns`]), and the mounts of the caller's mount
//! namespace. Not covered: a namespace that cannot be entered (it is skipped), one
//! that no process and no file under `/run/netns` keeps (a bind mount elsewhere),
//! mounts only in other mount namespaces; the policy's `never_unload` is for those.

use crate::root::Root;

use super::{mountinfo, netlink, netns};

/// A network link: its name and, for a link a driver made through rtnetlink, its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub kind: Option<String>,
    /// Which other network namespace it is in (`None`: the caller's).
    pub namespace: Option<String>,
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
    /// The caller's namespace must answer; another that cannot be entered or dumped
    /// (its last process just exited) is skipped.
    fn links(&self) -> Result<Vec<Link>, ScanError> {
        let mut links = netlink::dump_links().map_err(ScanError::Links)?;
        for ns in netns::others(self.root) {
            match netns::dump_in(&ns) {
                Ok(found) => links.extend(found.into_iter().map(|l| Link {
                    namespace: Some(ns.label.clone()),
                    ..l
                })),
                Err(e) => tracing::debug!(
                    namespace = %ns.label,
                    "links not listed: {}",
                    modgate_core::error_line(&e)
                ),
            }
        }
        Ok(links)
    }

    fn mounts(&self) -> Result<Vec<Mount>, ScanError> {
        let path = self.root.path("proc/self/mountinfo");
        mountinfo::read(&path).map_err(|source| ScanError::Mounts {
            path: path.display().to_string(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    /// For real: a veth pair made inside a namespace of its own (`unshare -n`, busybox's
    /// `ip`), found from outside with the namespace named. Needs root and veth; says so
    /// when the machine cannot.
    #[test]
    fn host_uses_finds_a_veth_pair_in_another_network_namespace() {
        let script = "busybox ip link add mg-test-v type veth && echo ready && exec sleep 30";
        let child = Command::new("unshare")
            .args(["-n", "sh", "-c", script])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let Ok(mut child) = child else {
            eprintln!("skipped: cannot run unshare here");
            return;
        };
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = std::io::BufReader::new(out).read_line(&mut line);
        }
        if line.trim() != "ready" {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("skipped: cannot make a veth pair in a new network namespace here");
            return;
        }
        let root = Root::system();
        let links = HostUses { root: &root }.links();
        let _ = child.kill();
        let _ = child.wait();
        let links = links.expect("links");
        let found = links
            .iter()
            .find(|l| l.name == "mg-test-v")
            .expect("the link in the other namespace");
        assert_eq!(found.kind.as_deref(), Some("veth"));
        let ns = found.namespace.as_deref().unwrap_or_default();
        assert!(
            ns.starts_with("the network namespace of process "),
            "{found:?}"
        );
        assert!(links
            .iter()
            .any(|l| l.name == "lo" && l.namespace.is_none()));
    }
}
