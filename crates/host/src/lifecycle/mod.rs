//! The lifecycle: a module is modgate's only if modgate inserted it (the ledger), a
//! container holds its whole closure from its load to its poststop, and only an owned
//! module that no container holds may go.
//!
//! - [`store`]: the files on disk (`ROOT/run/modgate`);
//! - [`claim`]: a hook's locks (its container, its modules) and the repairs it makes;
//! - [`holding`]: recording a load, releasing at poststop, under a claim;
//! - [`recovery`]: loads found dead, the ledger checked against the kernel;
//! - [`gc`], [`unload`]: removing what nobody holds;
//! - [`uncounted`]: what uses a module without a reference (links, mounts), kept;
//! - [`status`]: what `modgate status` shows.
//!
//! A hook works under a [`Claim`]; `status`, `gc` and `unload` open a [`Session`], which
//! holds the host lock exclusive, reads everything and repairs it.

pub mod claim;
pub mod gc;
pub mod holding;
pub mod metrics;
pub mod recovery;
pub mod status;
pub mod store;
#[cfg(test)]
mod testing;
pub mod uncounted;
pub mod unload;

use std::collections::BTreeSet;

use modgate_core::record::{record_key, ContainerRecord, Ledger, RecordStage};

pub use claim::{Claim, Identity};
pub use gc::{Alive, GcReport};
pub use holding::Released;
pub use status::StatusReport;
pub use store::{has_record, StateError};
pub use uncounted::Uncounted;
pub use unload::{UnloadAsk, Unloaded};

use crate::kernel::Sysfs;
use crate::lock::HostLock;
use crate::root::Root;
use store::{now_ms, List, Store};

/// The whole store, open under the exclusive host lock and repaired: dead loads
/// recovered, the ledger checked against the kernel, the holder lists rebuilt from the
/// records, damaged files set aside.
pub struct Session<'l> {
    store: Store,
    root: Root,
    ledger: Ledger,
    /// Every container record, sorted by id.
    pub records: Vec<ContainerRecord>,
    /// Damaged files moved aside, loads found dead: for the operator.
    pub warnings: Vec<String>,
    _lock: &'l HostLock,
}

impl<'l> Session<'l> {
    pub fn open(root: &Root, lock: &'l HostLock) -> Result<Self, StateError> {
        let mut store = Store::open(root)?;
        store.remove_leftovers()?;
        let mut records = store.records()?;
        let modules = store.modules()?;
        let mut ledger = Ledger::default();
        for m in &modules {
            if let Some(o) = store.owned(m.as_str())? {
                ledger.modules.insert(m.clone(), o);
            }
        }
        let stored = ledger.clone();
        let mut warnings = store.take_warnings();
        ledger.next_seq = store.current_seq()?;
        let kernel = Sysfs { root };
        let now = now_ms();
        let mut dead = Vec::new();
        for r in records.iter().filter(|r| r.stage == RecordStage::Loading) {
            // We hold the lock exclusive: no hook runs, so this one died.
            let adopted = recovery::recover(r, &mut ledger, &kernel, now);
            let msg = format!(
                "container {}: its hook died while loading; recorded as modgate's, held by nobody: {}",
                r.id,
                if adopted.is_empty() { "none".to_string() } else { adopted.join(",") }
            );
            tracing::warn!("{msg}");
            warnings.push(msg);
            dead.push(r.id.clone());
        }
        let disowned = recovery::reconcile(&mut ledger, &kernel);
        for (m, why) in &disowned {
            tracing::info!(module = %m, reason = ?why, "no longer modgate's: removed or loaded again outside modgate");
        }
        // The ledger first: a crash in between recovers the same records again.
        while store.current_seq()? < ledger.next_seq {
            store.next_seq()?;
        }
        for (m, o) in &ledger.modules {
            if stored.modules.get(m) != Some(o) {
                store.put_owned(m.as_str(), o)?;
            }
        }
        for (m, _) in &disowned {
            store.remove_owned(m)?;
        }
        for id in &dead {
            store.remove_record(id)?;
        }
        records.retain(|r| !dead.contains(&r.id));
        metrics::bump(store.dir(), metrics::Counter::Recovered, dead.len() as u64);
        repair_lists(&mut store, &records, &modules, &ledger)?;
        warnings.extend(store.take_warnings());
        Ok(Session {
            store,
            root: root.clone(),
            ledger,
            records,
            warnings,
            _lock: lock,
        })
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The running kernel, under this session's root.
    fn kernel(&self) -> Sysfs<'_> {
        Sysfs { root: &self.root }
    }

    pub fn record(&self, id: &str) -> Option<&ContainerRecord> {
        self.records.iter().find(|r| r.id == id)
    }

    /// Drops a container's record and its entries in the holder lists.
    fn drop_record(&mut self, r: &ContainerRecord) -> Result<(), StateError> {
        self.store.remove_record(&r.id)?;
        let key = record_key(&r.id);
        for m in &r.holds {
            self.store.remove_from(List::Holders, m.as_str(), &key)?;
        }
        for m in &r.pending {
            self.store.remove_from(List::Pending, m.as_str(), &key)?;
        }
        self.store.remove_container_lock(&key)
    }
}

/// Makes every module's lists say what the records say (a hook killed half way may
/// have left an entry behind, or not yet written one), and drops the directories and
/// lock files of modules and containers the store no longer knows. Under the exclusive
/// lock: no hook holds any of these locks.
fn repair_lists(
    store: &mut Store,
    records: &[ContainerRecord],
    modules: &[modgate_core::ModuleName],
    ledger: &Ledger,
) -> Result<(), StateError> {
    let held = holding::holders(records);
    let mut all: BTreeSet<&str> = modules.iter().map(|m| m.as_str()).collect();
    all.extend(held.keys().copied());
    for m in all {
        let want: BTreeSet<String> = held
            .get(m)
            .map(|ids| ids.iter().map(|id| record_key(id)).collect())
            .unwrap_or_default();
        let have: BTreeSet<String> = store.keys(List::Holders, m, false)?.into_iter().collect();
        for k in have.difference(&want) {
            store.remove_from(List::Holders, m, k)?;
        }
        for k in want.difference(&have) {
            store.add_to(List::Holders, m, k)?;
        }
        // No hook runs: every pending entry is a leftover (dead loads were recovered).
        for k in store.keys(List::Pending, m, false)? {
            store.remove_from(List::Pending, m, &k)?;
        }
        if want.is_empty() && !ledger.owns(m) {
            store.forget_module(m)?;
        }
    }
    let keys: BTreeSet<String> = records.iter().map(|r| record_key(&r.id)).collect();
    store.remove_container_locks_except(&keys)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::testing::TempRoot;
    use super::*;
    use crate::kernel::fake::FakeKernel;

    #[test]
    fn a_session_rebuilds_the_holder_lists_from_the_records() {
        let t = TempRoot::new();
        let k = FakeKernel::new(&t.root);
        k.set_live(&["dummy", "veth"]);
        let plan = t.plan_inserting(&[], &["dummy"]);
        let mut c = t.claim("a", &["dummy"]);
        c.begin_load("prestart", &[], &plan).expect("begin");
        let report = crate::loader::LoadReport {
            present: vec!["dummy".into()],
            ..Default::default()
        };
        c.finish_load(&report).expect("finish");
        drop(c);
        let store = Store::open(&t.root).expect("store");
        // A release killed half way: an entry whose record is gone; and a lost entry.
        store
            .add_to(List::Holders, "veth", &record_key("gone"))
            .expect("add");
        store
            .remove_from(List::Holders, "dummy", &record_key("a"))
            .expect("rm");
        std::fs::write(t.root.path("run/modgate/containers/0.lock"), "").expect("lock");
        t.with_session(|s| assert_eq!(s.records.len(), 1));
        assert_eq!(
            store.keys(List::Holders, "dummy", false).expect("keys"),
            [record_key("a")]
        );
        assert!(
            !t.root.path("run/modgate/modules/veth").exists(),
            "not owned, held by nobody: forgotten"
        );
        assert!(!t.root.path("run/modgate/containers/0.lock").exists());
        let lock = record_key("a");
        assert!(t
            .root
            .path(&format!("run/modgate/containers/{lock}.json"))
            .exists());
    }
}
