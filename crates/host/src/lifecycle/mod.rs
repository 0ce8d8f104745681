//! The lifecycle, always under the host lock: a module is modgate's only if modgate
//! inserted it (the ledger), a container holds its whole closure from its load to its
//! poststop, and only an owned module that no container holds may go.
//!
//! - [`store`]: the records on disk (`ROOT/run/modgate`);
//! - [`recovery`]: loads found dead, the ledger checked against the kernel;
//! - [`holding`]: recording a load, releasing at poststop;
//! - [`gc`], [`unload`]: removing what nobody holds;
//! - [`status`]: what `modgate status` shows.

pub mod gc;
pub mod holding;
pub mod recovery;
pub mod status;
pub mod store;
#[cfg(test)]
mod testing;
pub mod unload;

use modgate_core::record::{ContainerRecord, Ledger, RecordStage};

pub use gc::{Alive, GcReport};
pub use holding::Released;
pub use status::StatusReport;
pub use store::{has_record, StateError};
pub use unload::{UnloadAsk, Unloaded};

use crate::kernel::Sysfs;
use crate::lock::HostLock;
use crate::root::Root;
use store::{now_ms, Store};

/// The store, open and repaired: dead loads recovered, the ledger checked against the
/// kernel, damaged files set aside.
pub struct Session<'l> {
    store: Store<'l>,
    root: Root,
    /// Every container record, sorted by id.
    pub records: Vec<ContainerRecord>,
    /// Damaged files moved aside, loads found dead: for the operator.
    pub warnings: Vec<String>,
}

impl<'l> Session<'l> {
    pub fn open(root: &Root, lock: &'l HostLock) -> Result<Self, StateError> {
        let mut store = Store::open(root, lock)?;
        let mut records = store.records()?;
        let mut warnings = store.take_warnings();
        let kernel = Sysfs { root };
        let now = now_ms();
        let mut dead = Vec::new();
        for r in records.iter().filter(|r| r.stage == RecordStage::Loading) {
            // We hold the lock, and a loading hook holds it until its record is final.
            let adopted = recovery::recover(r, store.ledger_mut(), &kernel, now);
            let msg = format!(
                "container {}: its hook died while loading; recorded as modgate's, held by nobody: {}",
                r.id,
                if adopted.is_empty() { "none".to_string() } else { adopted.join(",") }
            );
            tracing::warn!("{msg}");
            warnings.push(msg);
            dead.push(r.id.clone());
        }
        let disowned = recovery::reconcile(store.ledger_mut(), &kernel);
        for (m, why) in &disowned {
            tracing::info!(module = %m, reason = ?why, "no longer modgate's: removed or loaded again outside modgate");
        }
        if !dead.is_empty() || !disowned.is_empty() {
            // The ledger first: a crash in between recovers the same records again.
            store.save_ledger()?;
        }
        for id in &dead {
            store.remove(id)?;
        }
        records.retain(|r| !dead.contains(&r.id));
        Ok(Session {
            store,
            root: root.clone(),
            records,
            warnings,
        })
    }

    pub fn ledger(&self) -> &Ledger {
        self.store.ledger()
    }

    /// The running kernel, under this session's root.
    fn kernel(&self) -> Sysfs<'_> {
        Sysfs { root: &self.root }
    }

    pub fn record(&self, id: &str) -> Option<&ContainerRecord> {
        self.records.iter().find(|r| r.id == id)
    }

    fn set(&mut self, r: ContainerRecord) {
        match self.records.iter_mut().find(|x| x.id == r.id) {
            Some(x) => *x = r,
            None => {
                self.records.push(r);
                self.records.sort_by(|a, b| a.id.cmp(&b.id));
            }
        }
    }
}
