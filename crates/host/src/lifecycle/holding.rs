//! Holding and release: a container holds its whole closure from its load to its
//! poststop; its record says what it is about to insert before the first insertion, so
//! a hook killed half way leaves enough behind; at release, what modgate inserted and no
//! other container holds may go.

use std::collections::BTreeMap;

use modgate_core::plan::{Action, Plan};
use modgate_core::policy::Unload;
use modgate_core::record::{ContainerRecord, Insertion, Ledger, Owned, RecordStage};
use modgate_core::ModuleName;

use super::claim::Claim;
use super::gc::runtime_state_of;
use super::metrics::{self, Counter};
use super::recovery::reconcile_one;
use super::store::{now_ms, List, StateError};
use super::uncounted::Uncounted;
use super::unload::{candidate, unload, Candidate};
use crate::kernel::{Kernel, ModuleSyscalls};
use crate::loader::{LoadError, LoadReport};

/// module → the containers holding it.
pub fn holders(records: &[ContainerRecord]) -> BTreeMap<&str, Vec<&str>> {
    let mut map: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in records {
        for m in r.holds.iter().chain(&r.pending) {
            let ids = map.entry(m.as_str()).or_default();
            if !ids.contains(&r.id.as_str()) {
                ids.push(&r.id);
            }
        }
    }
    map
}

/// What a container's release may remove: of the modules it held, those `free` says
/// modgate owns and no other container holds.
pub fn release_candidates(
    released: &ContainerRecord,
    mut free: impl FnMut(&str) -> Result<Option<Candidate>, StateError>,
) -> Result<Vec<Candidate>, StateError> {
    let mut out = Vec::new();
    for m in &released.holds {
        if let Some(c) = free(m.as_str())? {
            out.push(c);
        }
    }
    Ok(out)
}

/// Names from a plan or a load report as the record keeps them. The resolver gives only
/// module names, so nothing is dropped in practice; a name that is not one cannot be
/// stored, and is said so.
fn module_names<'a>(list: impl IntoIterator<Item = &'a String>) -> Vec<ModuleName> {
    list.into_iter()
        .filter_map(|n| match ModuleName::parse(n) {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!(module = %n, "not recorded: invalid module name: {e}");
                None
            }
        })
        .collect()
}

/// Every owned module no container holds (what gc may remove).
pub fn unheld(ledger: &Ledger, records: &[ContainerRecord]) -> Vec<Candidate> {
    let held = holders(records);
    ledger
        .modules
        .keys()
        .filter(|m| !held.contains_key(m.as_str()))
        .filter_map(|m| candidate(ledger, m.as_str()))
        .collect()
}

/// What a release did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Released {
    pub held: Vec<String>,
    pub unloaded: Vec<String>,
    pub left: Vec<(String, String)>,
}

impl Claim {
    /// Before the first insertion: the record says what is about to be inserted, so a
    /// hook killed half way leaves enough behind to find what it loaded. A container
    /// whose id is recorded for another bundle is refused.
    pub fn begin_load(
        &mut self,
        stage: &str,
        requested: &[String],
        plan: &Plan,
    ) -> Result<(), StateError> {
        let root = self.root.clone();
        let Some(mine) = self.mine.as_mut() else {
            return Ok(());
        };
        let mut r = match mine.record.take() {
            Some(r) if r.bundle != mine.bundle => {
                let e = StateError::IdInUse {
                    id: mine.id.clone(),
                    ours: mine.bundle.clone(),
                    theirs: r.bundle.clone(),
                };
                mine.record = Some(r);
                return Err(e);
            }
            Some(r) => r,
            None => {
                let mut r = ContainerRecord::new(&mine.id, RecordStage::Loading);
                r.bundle = mine.bundle.clone();
                r
            }
        };
        r.stage = RecordStage::Loading;
        r.times.insert(stage.to_string(), now_ms());
        for n in module_names(requested) {
            if !r.requested.contains(&n) {
                r.requested.push(n);
            }
        }
        r.progress.clear();
        r.pending = module_names(
            plan.steps
                .iter()
                .filter(|s| matches!(s.action, Action::Insert { .. }))
                .map(|s| &s.module),
        );
        if r.runtime_state.is_none() {
            r.runtime_state = runtime_state_of(&root, &mine.id, &mine.bundle);
        }
        // Nothing to insert: nothing a crash could leave behind, so the record is
        // written once, when the load is done. The pending entries go first: a record
        // still loading always has them, so the next hook naming one of its modules
        // finds it (entries without a record are leftovers it drops).
        if !r.pending.is_empty() {
            for m in &r.pending {
                self.store.add_to(List::Pending, m.as_str(), &mine.key)?;
            }
            self.store.put_record(&r)?;
        }
        mine.record = Some(r);
        Ok(())
    }

    /// Right after an insertion, before anything else: the record says this load
    /// inserted `module`, and which load of it that is. Recovery adopts only what such
    /// an entry proves.
    pub fn record_insertion(&mut self, module: &str) -> Result<(), StateError> {
        let instance = self.kernel().instance(module);
        let Some(r) = self.mine.as_mut().and_then(|m| m.record.as_mut()) else {
            return Ok(());
        };
        let Some(m) = module_names([&module.to_string()]).pop() else {
            return Ok(());
        };
        r.progress.push(Insertion {
            module: m,
            instance,
        });
        self.store.put_record(r)
    }

    /// After a successful load: what it inserted is modgate's, and the container holds
    /// its whole closure.
    pub fn finish_load(&mut self, report: &LoadReport) -> Result<(), StateError> {
        let now = now_ms();
        let n = report.inserted.len() as u64;
        metrics::bump(self.store.dir(), Counter::Inserted, n);
        let Some(by) = self.mine.as_ref().map(|m| m.id.clone()) else {
            return Ok(());
        };
        self.own(&by, &report.inserted, now)?;
        let Some(mine) = self.mine.as_mut() else {
            return Ok(());
        };
        let Some(mut r) = mine.record.take() else {
            return Ok(());
        };
        let before = r.holds.clone();
        let pending = std::mem::take(&mut r.pending);
        r.progress.clear();
        r.stage = RecordStage::Holding;
        r.times.insert("loaded".into(), now);
        for m in module_names(report.inserted.iter().chain(&report.present)) {
            if !r.holds.contains(&m) {
                r.holds.push(m);
            }
        }
        for m in module_names(&report.inserted) {
            if !r.inserted.contains(&m) {
                r.inserted.push(m);
            }
        }
        // The holder entries first: a record that says it holds a module always has its
        // entry, so no release removes a module this container holds.
        for m in r.holds.iter().filter(|m| !before.contains(m)) {
            self.store.add_to(List::Holders, m.as_str(), &mine.key)?;
        }
        self.store.put_record(&r)?;
        for m in &pending {
            self.store
                .remove_from(List::Pending, m.as_str(), &mine.key)?;
        }
        mine.record = Some(r);
        Ok(())
    }

    /// After a failed load: the container will not start, so its record goes. What the
    /// rollback could not remove stays recorded as modgate's, for gc.
    pub fn abort_load(&mut self, error: &LoadError) -> Result<(), StateError> {
        let Some(by) = self.mine.as_ref().map(|m| m.id.clone()) else {
            return Ok(());
        };
        if let LoadError::RolledBack { left, .. } = error {
            self.own(&by, left, now_ms())?;
        }
        let Some(mine) = self.mine.as_mut() else {
            return Ok(());
        };
        if let Some(r) = mine.record.take() {
            self.store.remove_record(&r.id)?;
            for m in &r.holds {
                self.store
                    .remove_from(List::Holders, m.as_str(), &mine.key)?;
            }
            for m in &r.pending {
                self.store
                    .remove_from(List::Pending, m.as_str(), &mine.key)?;
            }
        }
        mine.gone = true;
        Ok(())
    }

    /// Records `modules` as inserted by `by`, with the load of each that is live now.
    fn own(&mut self, by: &str, modules: &[String], now: u64) -> Result<(), StateError> {
        for m in module_names(modules) {
            let instance = self.kernel().instance(m.as_str());
            let owned = Owned {
                loaded_at: now,
                by: by.to_string(),
                seq: self.store.next_seq()?,
                instance,
            };
            self.store.put_owned(m.as_str(), &owned)?;
        }
        Ok(())
    }

    /// The record of this claim's container, when it is this container's.
    pub fn record(&self) -> Option<&ContainerRecord> {
        let mine = self.mine.as_ref()?;
        mine.record.as_ref().filter(|r| r.bundle == mine.bundle)
    }

    /// Poststop: the container holds nothing any more; with `on-last-release`, what it
    /// alone held and modgate inserted is removed, unless `uncounted` keeps it. `None`:
    /// it had no record (or the record is another container's with the same id, which
    /// is left alone).
    pub fn release(
        &mut self,
        syscalls: &dyn ModuleSyscalls,
        uncounted: &Uncounted,
        policy: Unload,
    ) -> Result<Option<Released>, StateError> {
        let Some(mine) = self.mine.as_mut() else {
            return Ok(None);
        };
        let Some(rec) = mine.record.take() else {
            mine.gone = true;
            return Ok(None);
        };
        if rec.bundle != mine.bundle {
            tracing::warn!(
                container = %mine.id,
                "poststop from bundle {}: the record of this id is for bundle {}; nothing released",
                mine.bundle,
                rec.bundle
            );
            mine.record = Some(rec);
            return Ok(None);
        }
        let key = mine.key.clone();
        mine.gone = true;
        self.store.remove_record(&rec.id)?;
        for m in &rec.holds {
            self.store.remove_from(List::Holders, m.as_str(), &key)?;
        }
        for m in &rec.pending {
            self.store.remove_from(List::Pending, m.as_str(), &key)?;
        }
        let mut out = Released {
            held: rec.holds.iter().map(ModuleName::to_string).collect(),
            ..Default::default()
        };
        if policy == Unload::OnLastRelease {
            let candidates = release_candidates(&rec, |m| self.free(m))?;
            let u = unload(&candidates, &self.kernel(), syscalls, uncounted, false);
            for m in &u.removed {
                tracing::info!(module = %m, "unloaded");
            }
            for (m, why) in &u.left {
                tracing::warn!(module = %m, "left loaded: {why}; modgate gc tries again");
            }
            for m in u.removed.iter().chain(&u.gone) {
                self.store.remove_owned(m)?;
            }
            metrics::bump(self.store.dir(), Counter::Unloaded, u.removed.len() as u64);
            out.unloaded = u.removed;
            out.left = u
                .left
                .iter()
                .map(|(m, w)| (m.clone(), w.to_string()))
                .collect();
        }
        Ok(Some(out))
    }

    /// `m` as a removal candidate: owned by modgate (and still the load it inserted),
    /// with no holder and no hook about to insert it. Holder entries whose record is gone
    /// (a release killed half way) are dropped on the way.
    fn free(&mut self, m: &str) -> Result<Option<Candidate>, StateError> {
        let Some(owned) = self.store.owned(m)? else {
            return Ok(None);
        };
        if let Some(why) = reconcile_one(&owned, m, &self.kernel()) {
            tracing::info!(module = %m, reason = ?why, "no longer modgate's: removed or loaded again outside modgate");
            self.store.remove_owned(m)?;
            return Ok(None);
        }
        if !self.store.keys(List::Pending, m, true)?.is_empty() {
            return Ok(None);
        }
        while let Some(key) = self.store.keys(List::Holders, m, true)?.pop() {
            let holds = self
                .store
                .record(&key)?
                .is_some_and(|r| r.holds.iter().chain(&r.pending).any(|h| h.as_str() == m));
            if holds {
                return Ok(None);
            }
            self.store.remove_from(List::Holders, m, &key)?;
        }
        Ok(Some(Candidate {
            name: m.to_string(),
            seq: owned.seq,
        }))
    }
}

#[cfg(test)]
mod tests;
