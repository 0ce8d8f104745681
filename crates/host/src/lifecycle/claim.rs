//! What one hook holds while it works: the host lock shared (other hooks run beside
//! it), its container's lock, and the locks of the modules it names, taken in name
//! order so that two hooks never wait on each other in a circle. A hook waiting for a
//! slow module blocks only the hooks that need that module.
//!
//! Under these locks a hook reads and writes only its own record and the files of its
//! modules, so its cost does not grow with the number of containers. What a hook that
//! died left in those modules (a `pending` entry whose container lock is free) is
//! repaired here; the rest waits for the next hook that names those modules, or for
//! `status`/`gc`.

use std::collections::{BTreeMap, BTreeSet};

use modgate_core::plan::{Action, Plan};
use modgate_core::record::{check_id, record_key, ContainerRecord, RecordStage};
use modgate_core::ModuleName;

use super::metrics::{self, Counter};
use super::recovery::proven;
use super::store::{now_ms, List, StateError, Store};
use crate::kernel::{Kernel, Sysfs};
use crate::lock::{FileLock, HostLock};
use crate::root::Root;

/// Who a container is: ids are unique only within one runtime root or containerd
/// namespace, so the bundle path goes with the id.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    pub id: &'a str,
    pub bundle: &'a str,
}

/// A hook's container, locked.
pub(super) struct Mine {
    pub key: String,
    pub id: String,
    pub bundle: String,
    /// Its record as the store has it (or as this hook is about to write it).
    pub record: Option<ContainerRecord>,
    /// Nothing of it is left in the store: its lock file goes too.
    pub gone: bool,
    lock: Option<FileLock>,
}

/// One hook's locks and what it may touch under them.
pub struct Claim {
    pub(super) store: Store,
    pub(super) root: Root,
    pub(super) mine: Option<Mine>,
    locked: BTreeMap<String, FileLock>,
    /// The module locks are held exclusive (to insert, recover or remove), not shared
    /// (to hold or let go of live modules).
    exclusive: bool,
    /// Damaged files moved aside, loads found dead: for the log.
    pub warnings: Vec<String>,
    _host: HostLock,
}

impl Claim {
    /// Takes the locks for `who` (when the request belongs to a container) and for
    /// `modules` (with what `who`'s record already names), shared unless `exclusive`
    /// (or a dead hook's leftovers need repairing), and repairs what dead hooks left in
    /// those modules.
    pub fn acquire(
        root: &Root,
        who: Option<Identity>,
        modules: &[&str],
        exclusive: bool,
    ) -> Result<Self, StateError> {
        if let Some(w) = &who {
            check_id(w.id).map_err(|source| StateError::Record {
                id: w.id.chars().take(64).collect(),
                source,
            })?;
        }
        let host = HostLock::shared(root)?;
        let mut store = Store::open(root)?;
        let mine = match who {
            Some(w) => {
                let key = record_key(w.id);
                let lock = store.container_lock(&key)?;
                let record = store.record(&key)?;
                Some(Mine {
                    key,
                    id: w.id.to_string(),
                    bundle: w.bundle.to_string(),
                    record,
                    gone: false,
                    lock: Some(lock),
                })
            }
            None => None,
        };
        // An earlier hook of ours died mid-load: what it left is repaired exclusive.
        let dead = mine
            .as_ref()
            .and_then(|m| m.record.as_ref())
            .is_some_and(|r| r.stage == RecordStage::Loading);
        let mut claim = Claim {
            store,
            root: root.clone(),
            mine,
            locked: BTreeMap::new(),
            exclusive: exclusive || dead,
            warnings: Vec::new(),
            _host: host,
        };
        claim.lock_modules(modules)?;
        claim.bury_own_dead_load()?;
        Ok(claim)
    }

    /// Whether the locks cover `plan`: every module it names, exclusive if it inserts
    /// (or waits for) one. When they do not, takes the locks it needs and returns
    /// `false`: the caller plans again, under them.
    pub fn cover(&mut self, plan: &Plan) -> Result<bool, StateError> {
        let inserts = plan
            .steps
            .iter()
            .any(|s| matches!(s.action, Action::Insert { .. } | Action::Coming));
        let closure: Vec<&str> = plan.closure().collect();
        if closure.iter().all(|m| self.locked.contains_key(*m)) && (self.exclusive || !inserts) {
            return Ok(true);
        }
        self.exclusive |= inserts;
        self.relock(&closure)?;
        Ok(false)
    }

    /// Locks `modules` too: lets go of the module locks, then takes them all again in
    /// order (taking one out of order could wait on a hook that waits on us).
    fn relock(&mut self, modules: &[&str]) -> Result<(), StateError> {
        let mut all: Vec<String> = self.locked.keys().cloned().collect();
        all.extend(modules.iter().map(|m| m.to_string()));
        self.locked.clear();
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        self.lock_modules(&all)
    }

    fn lock_modules(&mut self, modules: &[&str]) -> Result<(), StateError> {
        let mut want: BTreeSet<String> = modules
            .iter()
            .filter(|m| ModuleName::parse(m).is_ok_and(|n| n.as_str() == **m))
            .map(|m| m.to_string())
            .collect();
        if let Some(r) = self.mine.as_ref().and_then(|m| m.record.as_ref()) {
            want.extend(r.holds.iter().chain(&r.pending).map(|m| m.to_string()));
        }
        let mut new = Vec::new();
        // BTreeSet: name order.
        for m in &want {
            if !self.locked.contains_key(m) {
                let lock = self.store.module_lock(m, self.exclusive)?;
                self.locked.insert(m.clone(), lock);
                new.push(m.clone());
            }
        }
        if !self.exclusive {
            let own = self.mine.as_ref().map(|c| c.key.as_str());
            let mut leftovers = false;
            for m in &new {
                let keys = self.store.keys(List::Pending, m, false)?;
                leftovers |= keys.iter().any(|k| Some(k.as_str()) != own);
            }
            if !leftovers {
                return Ok(());
            }
            // A dead hook's entries: repaired under exclusive locks.
            self.exclusive = true;
            self.locked.clear();
            let all: Vec<&str> = want.iter().map(String::as_str).collect();
            return self.lock_modules(&all);
        }
        self.recover_pending(&new)
    }

    pub(super) fn kernel(&self) -> Sysfs<'_> {
        Sysfs { root: &self.root }
    }

    /// Entries in `pending/` of a locked module belong to hooks that died before they
    /// recorded their load (a live hook with that module pending would hold its lock):
    /// what such a hook provably inserted ([`proven`]) and is still live in the modules
    /// this claim holds is recorded as modgate's, held by nobody. A dead record left with nothing pending and holding
    /// nothing goes; one that still names other modules waits for their next hook, or
    /// for `status`/`gc`.
    fn recover_pending(&mut self, modules: &[String]) -> Result<(), StateError> {
        let own = self.mine.as_ref().map(|c| c.key.clone());
        let mut dead: BTreeSet<String> = BTreeSet::new();
        for m in modules {
            for key in self.store.keys(List::Pending, m, false)? {
                // Our own container's is dealt with whole by bury_own_dead_load.
                if own.as_deref() != Some(key.as_str()) {
                    dead.insert(key);
                }
            }
        }
        for key in dead {
            // Held: a hook of that container runs (and waits for one of our modules);
            // its entries stay for it, or for the next one.
            let Some(lock) = self.store.try_container_lock(&key)? else {
                continue;
            };
            let record = self
                .store
                .record(&key)?
                .filter(|r| r.stage == RecordStage::Loading);
            let mut adopted = Vec::new();
            let mut done = Vec::new();
            if let Some(r) = &record {
                for p in &r.pending {
                    if self.locked.contains_key(p.as_str()) {
                        if self.adopt(p, r)? {
                            adopted.push(p.to_string());
                        }
                        done.push(p.clone());
                    }
                }
            }
            // Its entries in the modules we hold are dealt with (a record that finished
            // its load, or none, leaves only leftovers).
            for m in self.locked.keys() {
                self.store.remove_from(List::Pending, m, &key)?;
            }
            let Some(mut r) = record else {
                continue;
            };
            r.pending.retain(|p| !done.contains(p));
            if r.pending.is_empty() && r.holds.is_empty() {
                self.store.remove_record(&r.id)?;
                lock.remove();
            } else {
                self.store.put_record(&r)?;
            }
            self.report_dead_load(&r.id, &adopted);
        }
        Ok(())
    }

    /// Counts and tells of a load whose hook died, with what it left that is now modgate's.
    fn report_dead_load(&mut self, id: &str, adopted: &[String]) {
        metrics::bump(self.store.dir(), Counter::Recovered, 1);
        let left = if adopted.is_empty() {
            "none".to_string()
        } else {
            adopted.join(",")
        };
        let msg = format!(
            "container {id}: its hook died while loading; recorded as modgate's, held by nobody: {left}"
        );
        tracing::warn!("{msg}");
        self.warnings.push(msg);
    }

    /// Records `m` as modgate's when the record of `dead`, a hook that died, proves
    /// it inserted the load of `m` that is live now, unless it already is modgate's.
    fn adopt(&mut self, m: &ModuleName, dead: &ContainerRecord) -> Result<bool, StateError> {
        let kernel = Sysfs { root: &self.root };
        if !proven(dead, m.as_str(), &kernel) || self.store.owned(m.as_str())?.is_some() {
            return Ok(false);
        }
        let by = dead.id.as_str();
        let instance = kernel.instance(m.as_str());
        let owned = modgate_core::record::Owned {
            loaded_at: now_ms(),
            by: by.to_string(),
            seq: self.store.next_seq()?,
            instance,
        };
        self.store.put_owned(m.as_str(), &owned)?;
        Ok(true)
    }

    /// Our own record still loading, under our container lock: an earlier hook of this
    /// container died mid-load. The container did not start, so it holds nothing; what
    /// that hook provably inserted and is still live is modgate's. The record goes (this
    /// hook writes a new one).
    fn bury_own_dead_load(&mut self) -> Result<(), StateError> {
        let Some(mine) = self.mine.as_mut() else {
            return Ok(());
        };
        let Some(r) = mine.record.take_if(|r| r.stage == RecordStage::Loading) else {
            return Ok(());
        };
        let key = mine.key.clone();
        let mut adopted = Vec::new();
        for m in &r.pending {
            if self.adopt(m, &r)? {
                adopted.push(m.to_string());
            }
            self.store.remove_from(List::Pending, m.as_str(), &key)?;
        }
        for m in &r.holds {
            self.store.remove_from(List::Holders, m.as_str(), &key)?;
        }
        self.store.remove_record(&r.id)?;
        self.report_dead_load(&r.id, &adopted);
        Ok(())
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(mine) = self.mine.as_mut() {
            if let Some(lock) = mine.lock.take() {
                if mine.gone {
                    lock.remove();
                }
            }
        }
    }
}
