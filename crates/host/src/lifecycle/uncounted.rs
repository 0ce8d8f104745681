//! Users the kernel does not count. A module's reference count says nothing of the
//! `veth` pairs, bridges, `vxlan` devices it made, yet removing it destroys them (every
//! container's, on the whole host). Before any removal, [`Uncounted::keep`] looks for
//! them: the network links whose kind the module provides (its `rtnl-link-KIND` aliases
//! in `modules.alias`), the mounts whose type it provides (`fs-TYPE`; a mount holds a
//! reference too, so this is a second line), and the policy's
//! `never_unload` for what cannot be seen. A module kept for these reasons stays owned,
//! so a later `modgate gc` tries again once its users are gone.

use std::cell::OnceCell;
use std::collections::BTreeMap;

use modgate_core::name::modname_normalize;
use modgate_core::policy::Policy;

use crate::context::Context;
use crate::kernel::Uses;

/// Devices a driver makes itself when it is loaded (its `numdummies`-style default, or
/// the fallback device of a tunnel driver in every namespace): they go with the module
/// and are no user of it. (kind, name)
const SELF_MADE: &[(&str, &str)] = &[
    ("dummy", "dummy0"),
    ("bond", "bond0"),
    ("ifb", "ifb0"),
    ("ifb", "ifb1"),
    ("ipip", "tunl0"),
    ("gre", "gre0"),
    ("gretap", "gretap0"),
    ("erspan", "erspan0"),
    ("vti", "ip_vti0"),
    ("sit", "sit0"),
    ("ip6tnl", "ip6tnl0"),
    ("ip6gre", "ip6gre0"),
    ("vti6", "ip6_vti0"),
];

/// The most users named in one reason; the rest are counted.
const NAMED: usize = 3;

/// What was found, once per [`Uncounted`].
#[derive(Debug, Default)]
struct Found {
    /// module → what uses it, described.
    users: BTreeMap<String, Vec<String>>,
    /// Why a list could not be read: then nothing is removed.
    failed: Vec<String>,
}

/// The alias lookup [`Uncounted::new`] takes, from the running kernel's module directory
/// when there is one; without it, no alias names a module.
pub fn aliases_in(ctx: Option<&Context>) -> impl Fn(&str) -> Vec<String> + '_ {
    move |key| ctx.map(|c| c.alias_targets(key)).unwrap_or_default()
}

/// The check made before a module is removed.
pub struct Uncounted<'a> {
    uses: &'a dyn Uses,
    /// The modules an alias key (`rtnl-link-veth`, `fs-ext2`) names in the module
    /// directory of the running kernel; nothing when there is none.
    aliases: &'a dyn Fn(&str) -> Vec<String>,
    policy: Option<Policy>,
    found: OnceCell<Found>,
}

impl<'a> Uncounted<'a> {
    pub fn new(uses: &'a dyn Uses, aliases: &'a dyn Fn(&str) -> Vec<String>) -> Self {
        Self {
            uses,
            aliases,
            policy: None,
            found: OnceCell::new(),
        }
    }

    /// The policy's `never_unload` applies too.
    pub fn with_policy(mut self, policy: &Policy) -> Self {
        self.policy = Some(policy.clone());
        self
    }

    /// Why `module` must stay although the kernel would let it go; `None`: nothing
    /// modgate can see uses it. The links and mounts are listed on the first call.
    pub fn keep(&self, module: &str) -> Option<String> {
        if let Some(p) = &self.policy {
            if let Some(g) = p.never_unloads(module) {
                return Some(format!(
                    "listed in never_unload ({g}) of policy {}",
                    p.source
                ));
            }
        }
        let found = self.found.get_or_init(|| self.find());
        if !found.failed.is_empty() {
            return Some(format!(
                "something may use it without a reference and modgate cannot tell: {}",
                found.failed.join("; ")
            ));
        }
        let users = found.users.get(module)?;
        let mut why = users
            .iter()
            .take(NAMED)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if users.len() > NAMED {
            why.push_str(&format!(" and {} more", users.len() - NAMED));
        }
        let verb = if users.len() == 1 { "holds" } else { "hold" };
        Some(format!("used by {why}, which {verb} no reference on it"))
    }

    fn find(&self) -> Found {
        let mut found = Found::default();
        let mut add = |keys: Vec<String>, what: String| {
            for m in keys {
                let list = found.users.entry(m).or_default();
                if !list.contains(&what) {
                    list.push(what.clone());
                }
            }
        };
        match self.uses.links() {
            Ok(links) => {
                for l in links {
                    let Some(kind) = l.kind.as_deref() else {
                        continue;
                    };
                    if SELF_MADE.contains(&(kind, l.name.as_str())) {
                        continue;
                    }
                    let mut what = format!(
                        "network link {} (kind {kind})",
                        modgate_core::printable(&l.name)
                    );
                    if let Some(ns) = &l.namespace {
                        what.push_str(&format!(" in {ns}"));
                    }
                    add(self.providers("rtnl-link-", kind), what);
                }
            }
            Err(e) => found.failed.push(modgate_core::error_line(&e)),
        }
        match self.uses.mounts() {
            Ok(mounts) => {
                for m in mounts {
                    // `fuse.sshfs` is a file system of the `fuse` module.
                    let base = m.fstype.split('.').next().unwrap_or_default();
                    let what = format!(
                        "the {} file system mounted at {}",
                        modgate_core::printable(&m.fstype),
                        modgate_core::printable(&m.point)
                    );
                    add(self.providers("fs-", base), what);
                }
            }
            Err(e) => found.failed.push(modgate_core::error_line(&e)),
        }
        found
    }

    /// The modules that provide `name` (a link kind, a file system type): those its
    /// alias names, and the module of the same name (for a tree without the alias, or
    /// without a module directory at all).
    fn providers(&self, prefix: &str, name: &str) -> Vec<String> {
        if name.is_empty() {
            return Vec::new();
        }
        let mut v: Vec<String> = (self.aliases)(&format!("{prefix}{name}"))
            .iter()
            .map(|m| modname_normalize(m))
            .collect();
        v.push(modname_normalize(name));
        v.sort();
        v.dedup();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::fake::FakeKernel;
    use crate::lifecycle::testing::TempRoot;

    /// A fake `modules.alias`: 8021q provides kind vlan, bonding bond, ext4 ext2 and ext3.
    fn fake_aliases(key: &str) -> Vec<String> {
        let table = [
            ("rtnl-link-veth", "veth"),
            ("rtnl-link-vlan", "8021q"),
            ("rtnl-link-bond", "bonding"),
            ("fs-ext2", "ext4"),
            ("fs-ext3", "ext4"),
            ("fs-ext4", "ext4"),
            ("fs-fuse", "fuse"),
        ];
        table
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, m)| m.to_string())
            .collect()
    }

    #[test]
    fn links_and_mounts_keep_the_modules_that_provide_them() {
        let t = TempRoot::new();
        let k = FakeKernel::new(&t.root);
        k.add_link("lo", None);
        k.add_link("eth0", None);
        k.add_link("veth-a", Some("veth"));
        k.add_link("veth-b", Some("veth"));
        k.add_link("eth0.10", Some("vlan"));
        k.add_link("dummy0", Some("dummy"));
        k.add_link("bond0", Some("bond"));
        k.add_link("br0", Some("bridge"));
        k.add_link_in("eth0", Some("vxlan"), Some("network namespace blue"));
        k.add_mount("/mnt/disk", "ext2");
        k.add_mount("/home/u/remote", "fuse.sshfs");
        k.add_mount("/proc", "proc");
        let u = Uncounted::new(&k, &fake_aliases);
        let table: &[(&str, Option<&str>)] = &[
            (
                "veth",
                Some("network link veth-a (kind veth), network link veth-b"),
            ),
            ("8021q", Some("network link eth0.10 (kind vlan)")),
            ("bridge", Some("network link br0 (kind bridge)")),
            (
                "vxlan",
                Some("network link eth0 (kind vxlan) in network namespace blue"),
            ),
            ("ext4", Some("the ext2 file system mounted at /mnt/disk")),
            (
                "fuse",
                Some("the fuse.sshfs file system mounted at /home/u/remote"),
            ),
            // Made by the module itself when loaded: no user of it.
            ("dummy", None),
            ("bonding", None),
            ("ip_vs", None),
            ("geneve", None),
        ];
        for (m, want) in table {
            let got = u.keep(m);
            match want {
                Some(w) => assert!(
                    got.as_deref().is_some_and(|g| g.contains(w)),
                    "{m}: {got:?}"
                ),
                None => assert_eq!(got, None, "{m}"),
            }
        }
    }

    #[test]
    fn many_users_are_counted_and_never_unload_and_failures_keep() {
        let t = TempRoot::new();
        let k = FakeKernel::new(&t.root);
        for i in 0..5 {
            k.add_link(&format!("v{i}"), Some("veth"));
        }
        let none = |_: &str| Vec::new();
        let u = Uncounted::new(&k, &none);
        let why = u.keep("veth").expect("kept");
        assert!(why.contains("v2 (kind veth) and 2 more"), "{why}");
        let p = Policy::parse("/etc/modgate/policy.toml", "never_unload = [\"ip_vs*\"]\n")
            .expect("policy");
        let u = Uncounted::new(&k, &none).with_policy(&p);
        assert_eq!(
            u.keep("ip_vs_wrr").as_deref(),
            Some("listed in never_unload (ip_vs*) of policy /etc/modgate/policy.toml")
        );
        let mut k = FakeKernel::new(&t.root);
        k.links_fail = true;
        let u = Uncounted::new(&k, &none);
        let why = u.keep("ip_vs").expect("kept when links cannot be listed");
        assert!(why.contains("cannot list the network links"), "{why}");
    }
}
