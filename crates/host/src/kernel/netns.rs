//! The host's other network namespaces: those of every process (`/proc/PID/ns/net`)
//! and the named ones (`/run/netns/NAME`, `ip netns`), each known by the inode of its
//! namespace file. Their links are dumped by a short-lived thread that enters the
//! namespace first: `setns(2)` moves only the calling thread, so the process itself
//! never leaves its own namespace.

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

use super::netlink::{self, NetlinkError};
use super::uses::Link;
use crate::root::Root;

/// More namespaces than a host runs: the rest are not entered.
pub const MAX_NAMESPACES: usize = 4096;

/// A network namespace other than the caller's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    /// The inode of its namespace file (`net:[INODE]`).
    pub inode: u64,
    /// A file that refers to it.
    pub path: PathBuf,
    /// How to name it: `network namespace NAME` or `the network namespace of process PID`.
    pub label: String,
}

/// Every network namespace of the host but the caller's, once each: the named ones
/// first (their names say more than a process id), then those of processes.
pub fn others(root: &Root) -> Vec<Namespace> {
    let inode = |p: &PathBuf| std::fs::metadata(p).ok().map(|m| m.ino());
    let own = inode(&root.path("proc/self/ns/net"));
    let mut seen: Vec<u64> = own.into_iter().collect();
    let mut out = Vec::new();
    let mut add = |path: PathBuf, label: String| {
        if out.len() >= MAX_NAMESPACES {
            return;
        }
        if let Some(ino) = inode(&path) {
            if !seen.contains(&ino) {
                seen.push(ino);
                out.push(Namespace {
                    inode: ino,
                    path,
                    label,
                });
            }
        }
    };
    let mut named: Vec<String> = std::fs::read_dir(root.path("run/netns"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    named.sort();
    for n in named {
        let label = format!("network namespace {}", modgate_core::printable(&n));
        add(root.path(&format!("run/netns/{n}")), label);
    }
    let mut pids: Vec<u32> = std::fs::read_dir(root.path("proc"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    pids.sort_unstable();
    for pid in pids {
        let label = format!("the network namespace of process {pid}");
        add(root.path(&format!("proc/{pid}/ns/net")), label);
    }
    out
}

/// The links of `ns`, dumped from a thread inside it.
pub fn dump_in(ns: &Namespace) -> Result<Vec<Link>, NetlinkError> {
    let file = std::fs::File::open(&ns.path).map_err(NetlinkError::Io)?;
    std::thread::scope(|s| {
        s.spawn(|| {
            move_into_link_name_space(file.as_fd(), Some(LinkNameSpaceType::Network))
                .map_err(|e| NetlinkError::Io(e.into()))?;
            netlink::dump_links()
        })
        .join()
        .unwrap_or(Err(NetlinkError::Malformed("the dump thread panicked")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixture_root_names_its_namespaces_once_each() {
        let t = tempfile::tempdir().expect("tempdir");
        let root = Root::new(t.path());
        // Fake namespace files: plain files, one inode each; 20 shares 10's.
        for p in [
            "proc/self/ns",
            "proc/10/ns",
            "proc/20/ns",
            "proc/30/ns",
            "run/netns",
        ] {
            std::fs::create_dir_all(t.path().join(p)).expect("mkdir");
        }
        std::fs::write(t.path().join("proc/self/ns/net"), "").expect("self");
        std::fs::write(t.path().join("proc/10/ns/net"), "").expect("10");
        std::fs::hard_link(
            t.path().join("proc/10/ns/net"),
            t.path().join("proc/20/ns/net"),
        )
        .expect("link");
        std::fs::hard_link(
            t.path().join("proc/self/ns/net"),
            t.path().join("proc/30/ns/net"),
        )
        .expect("link");
        std::fs::write(t.path().join("run/netns/blue"), "").expect("blue");
        std::fs::create_dir_all(t.path().join("proc/not-a-pid/ns")).expect("mkdir");
        let labels: Vec<String> = others(&root).into_iter().map(|n| n.label).collect();
        assert_eq!(
            labels,
            [
                "network namespace blue",
                "the network namespace of process 10"
            ]
        );
    }
}
