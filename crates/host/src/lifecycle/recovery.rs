//! Repairing the store: a record found still loading under the host lock belongs to a
//! hook that died, and the ledger is checked against the kernel, so that modgate never
//! removes a module that is no longer its own. What a dead hook left is adopted only
//! where its record proves the insertion ([`proven`]); the hooks' own repairs
//! ([`super::Claim`]) follow the same rule.

use modgate_core::record::{ContainerRecord, Ledger, Owned};

use crate::kernel::{Kernel, ModState};

/// A record found still loading under the host lock: its hook died mid-load (killed,
/// stopped by its deadline). The container cannot have started, so it holds nothing; of
/// what the hook inserted, what is still live is recorded as ours, so that it can be
/// removed later rather than forgotten. A module it only meant to insert is not: live
/// now, it may be someone else's load (the hook died before inserting it, or during an
/// insertion it never saw return), and a module modgate cannot show it inserted is
/// never modgate's to remove. Returns the modules recorded.
pub fn recover(
    record: &ContainerRecord,
    ledger: &mut Ledger,
    kernel: &dyn Kernel,
    now: u64,
) -> Vec<String> {
    let mut adopted = Vec::new();
    for m in &record.pending {
        if proven(record, m.as_str(), kernel) && !ledger.owns(m.as_str()) {
            ledger.insert(m, &record.id, now, kernel.instance(m.as_str()));
            adopted.push(m.to_string());
        }
    }
    adopted
}

/// Whether a dead hook's record shows that its load inserted `module` as it is live
/// now: an entry written right after the insertion, for this very load of it (a module
/// removed and loaded again since is someone else's).
pub fn proven(record: &ContainerRecord, module: &str, kernel: &dyn Kernel) -> bool {
    if kernel.state(module) != ModState::Live {
        return false;
    }
    let now = kernel.instance(module);
    record
        .progress
        .iter()
        .any(|i| i.module.as_str() == module && (i.instance.is_none() || i.instance == now))
}

/// Why an owned module left the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disowned {
    /// Not live any more: someone removed it.
    NotLive,
    /// Live, but loaded again since modgate inserted it: the new load is not ours.
    Reloaded,
}

/// Whether an owned module is still the load modgate inserted: `Some` says why not.
pub fn reconcile_one(owned: &Owned, name: &str, kernel: &dyn Kernel) -> Option<Disowned> {
    if kernel.state(name) != ModState::Live {
        return Some(Disowned::NotLive);
    }
    match (owned.instance, kernel.instance(name)) {
        (Some(was), Some(now)) if was != now => Some(Disowned::Reloaded),
        _ => None,
    }
}

/// Brings the ledger in line with the kernel: drops modules no longer live, or live
/// from a later load than ours.
pub fn reconcile(ledger: &mut Ledger, kernel: &dyn Kernel) -> Vec<(String, Disowned)> {
    let mut dropped = Vec::new();
    for (name, owned) in ledger.modules.iter_mut() {
        match reconcile_one(owned, name.as_str(), kernel) {
            Some(why) => dropped.push((name.to_string(), why)),
            // Not known at insertion (the entry appeared late): learn it now.
            None if owned.instance.is_none() => owned.instance = kernel.instance(name.as_str()),
            None => {}
        }
    }
    for (name, _) in &dropped {
        ledger.modules.remove(name.as_str());
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::fake::FakeKernel;
    use crate::lifecycle::testing::{mn, mns};
    use crate::root::Root;
    use modgate_core::record::{Insertion, RecordStage};

    #[test]
    fn recovery_records_what_the_dead_hook_provably_left_live() {
        let t = tempfile::tempdir().expect("tempdir");
        let k = FakeKernel::new(&Root::new(t.path()));
        k.set_live(&["libcrc32c", "nf_conntrack", "ip_vs", "veth"]);
        let mut dead = ContainerRecord::new("x", RecordStage::Loading);
        dead.pending = mns(&["libcrc32c", "nf_conntrack", "ip_vs", "veth", "ip_vs_wrr"]);
        let done = |m: &str| Insertion {
            module: mn(m),
            instance: k.instance(m),
        };
        // nf_conntrack: pending only, live: someone else may have loaded it. veth: the
        // hook inserted it, someone removed it and loaded it again.
        dead.progress = vec![done("libcrc32c"), done("ip_vs"), done("veth")];
        k.reload("veth");
        let mut l = Ledger::default();
        l.insert(&mn("libcrc32c"), "a", 500, None);
        assert_eq!(recover(&dead, &mut l, &k, 9), ["ip_vs"]);
        assert_eq!(l.modules["ip_vs"].by, "x");
        assert_eq!(l.modules["ip_vs"].instance, k.instance("ip_vs"));
        assert!(l.modules["ip_vs"].instance.is_some());
        assert_eq!(l.modules["libcrc32c"].by, "a");
        for m in ["nf_conntrack", "veth", "ip_vs_wrr"] {
            assert!(!l.owns(m), "{m}");
        }
    }

    #[test]
    fn reconcile_drops_removed_and_reloaded_modules() {
        let t = tempfile::tempdir().expect("tempdir");
        let k = FakeKernel::new(&Root::new(t.path()));
        k.set_live(&["reloaded", "same", "learnt"]);
        let mut l = Ledger::default();
        l.insert(&mn("gone"), "a", 1, Some(1));
        l.insert(&mn("reloaded"), "a", 1, k.instance("reloaded"));
        l.insert(&mn("same"), "a", 1, k.instance("same"));
        l.insert(&mn("learnt"), "a", 1, None);
        k.reload("reloaded");
        let d = reconcile(&mut l, &k);
        assert_eq!(
            d,
            [
                ("gone".to_string(), Disowned::NotLive),
                ("reloaded".to_string(), Disowned::Reloaded)
            ]
        );
        assert_eq!(l.modules.keys().collect::<Vec<_>>(), ["learnt", "same"]);
        assert_eq!(l.modules["learnt"].instance, k.instance("learnt"));
        assert!(l.modules["learnt"].instance.is_some());
    }
}
