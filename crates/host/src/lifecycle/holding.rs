//! Holding and release: a container holds its whole closure from its load to its
//! poststop; its record says what it is about to insert before the first insertion, so
//! a hook killed half way leaves enough behind; at release, what modgate inserted and no
//! other container holds may go.

use std::collections::BTreeMap;

use modgate_core::plan::{Action, Plan};
use modgate_core::policy::Unload;
use modgate_core::record::{ContainerRecord, Ledger, RecordStage};
use modgate_core::ModuleName;

use super::gc::runtime_state_of;
use super::store::{now_ms, StateError};
use super::unload::{candidate, Candidate};
use super::Session;
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

/// What a container's release may remove: the owned modules it held that no other
/// container holds.
pub fn release_candidates(
    ledger: &Ledger,
    released: &ContainerRecord,
    remaining: &[ContainerRecord],
) -> Vec<Candidate> {
    let held = holders(remaining);
    released
        .holds
        .iter()
        .filter(|m| !held.contains_key(m.as_str()))
        .filter_map(|m| candidate(ledger, m.as_str()))
        .collect()
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

impl Session<'_> {
    /// Before the first insertion: the record says what is about to be inserted, so a
    /// hook killed half way leaves enough behind to find what it loaded.
    pub fn begin_load(
        &mut self,
        id: &str,
        stage: &str,
        requested: &[String],
        plan: &Plan,
    ) -> Result<(), StateError> {
        let mut r = self
            .record(id)
            .cloned()
            .unwrap_or_else(|| ContainerRecord::new(id, RecordStage::Loading));
        r.stage = RecordStage::Loading;
        r.times.insert(stage.to_string(), now_ms());
        for n in module_names(requested) {
            if !r.requested.contains(&n) {
                r.requested.push(n);
            }
        }
        r.pending = module_names(
            plan.steps
                .iter()
                .filter(|s| matches!(s.action, Action::Insert { .. }))
                .map(|s| &s.module),
        );
        if r.runtime_state.is_none() {
            r.runtime_state = runtime_state_of(&self.root, id);
        }
        self.store.put(&r)?;
        self.set(r);
        Ok(())
    }

    /// After a successful load: what it inserted is modgate's, and the container holds
    /// its whole closure.
    pub fn finish_load(&mut self, id: &str, report: &LoadReport) -> Result<(), StateError> {
        let now = now_ms();
        self.own(id, &report.inserted, now)?;
        let mut r = self
            .record(id)
            .cloned()
            .unwrap_or_else(|| ContainerRecord::new(id, RecordStage::Holding));
        r.stage = RecordStage::Holding;
        r.pending.clear();
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
        self.store.put(&r)?;
        self.set(r);
        Ok(())
    }

    /// After a failed load: the container will not start, so its record goes. What the
    /// rollback could not remove stays recorded as modgate's, for gc.
    pub fn abort_load(&mut self, id: &str, error: &LoadError) -> Result<(), StateError> {
        if let LoadError::RolledBack { left, .. } = error {
            self.own(id, left, now_ms())?;
        }
        self.store.remove(id)?;
        self.records.retain(|r| r.id != id);
        Ok(())
    }

    /// Records `modules` as inserted by `id`, with the load of each that is live now.
    fn own(&mut self, id: &str, modules: &[String], now: u64) -> Result<(), StateError> {
        if modules.is_empty() {
            return Ok(());
        }
        let kernel = self.kernel();
        let modules = module_names(modules);
        let instances: Vec<Option<u64>> = modules
            .iter()
            .map(|m| kernel.instance(m.as_str()))
            .collect();
        for (m, instance) in modules.iter().zip(instances) {
            self.store.ledger_mut().insert(m, id, now, instance);
        }
        self.store.save_ledger()
    }

    /// Poststop: the container holds nothing any more; with `on-last-release`, what it
    /// alone held and modgate inserted is removed. `None`: it had no record.
    pub fn release(
        &mut self,
        syscalls: &dyn ModuleSyscalls,
        id: &str,
        policy: Unload,
    ) -> Result<Option<Released>, StateError> {
        let Some(rec) = self.record(id).cloned() else {
            return Ok(None);
        };
        self.store.remove(id)?;
        self.records.retain(|r| r.id != id);
        let mut out = Released {
            held: rec.holds.iter().map(ModuleName::to_string).collect(),
            ..Default::default()
        };
        if policy == Unload::OnLastRelease {
            let candidates = release_candidates(self.store.ledger(), &rec, &self.records);
            let u = self.unload(syscalls, &candidates, false)?;
            out.unloaded = u.removed;
            out.left = u
                .left
                .iter()
                .map(|(m, w)| (m.clone(), w.to_string()))
                .collect();
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::fake::FakeKernel;
    use crate::lifecycle::testing::{ledger, mns, names, rec, TempRoot};

    #[test]
    fn release_candidates_table() {
        let seed = ["libcrc32c", "nf_conntrack", "ip_vs", "ip_vs_wrr"];
        // (what, owned, other containers and what they hold, want)
        type Others<'a> = &'a [(&'a str, &'a [&'a str])];
        let cases: &[(&str, &[&str], Others, &[&str])] = &[
            ("sole holder, all owned", &seed, &[], &seed),
            (
                "another container holds the same closure",
                &seed,
                &[("b", &seed)],
                &[],
            ),
            (
                "another container holds part of it",
                &seed,
                &[("b", &["libcrc32c", "nf_conntrack"])],
                &["ip_vs", "ip_vs_wrr"],
            ),
            (
                "pre-existing nf_conntrack is never a candidate",
                &["libcrc32c", "ip_vs", "ip_vs_wrr"],
                &[],
                &["libcrc32c", "ip_vs", "ip_vs_wrr"],
            ),
            ("nothing owned", &[], &[], &[]),
        ];
        for (what, owned, others, want) in cases {
            let l = ledger(owned);
            let others: Vec<ContainerRecord> = others.iter().map(|(id, h)| rec(id, h)).collect();
            let got = release_candidates(&l, &rec("a", &seed), &others);
            assert_eq!(names(&got), *want, "{what}");
        }
    }

    #[test]
    fn a_loading_record_holds_its_pending_modules() {
        let mut loading = ContainerRecord::new("b", RecordStage::Loading);
        loading.pending = mns(&["ip_vs"]);
        let l = ledger(&["ip_vs", "dummy"]);
        assert_eq!(names(&unheld(&l, &[loading])), ["dummy"]);
    }

    fn report(inserted: &[&str], present: &[&str]) -> LoadReport {
        LoadReport {
            inserted: inserted.iter().map(|s| s.to_string()).collect(),
            present: present.iter().map(|s| s.to_string()).collect(),
            skipped: Vec::new(),
        }
    }

    #[test]
    fn a_load_is_recorded_before_and_after_and_released_at_poststop() {
        let t = TempRoot::new();
        let k = FakeKernel::new(&t.root);
        k.set_live(&["nf_conntrack"]);
        let plan = t.plan_inserting(&["ip_vs", "ip_vs_wrr"], &["nf_conntrack"]);
        t.with_session(|s| {
            s.begin_load("a", "prestart", &["ip_vs_wrr".into()], &plan)
                .expect("begin");
            let r = s.record("a").expect("record");
            assert_eq!(r.stage, RecordStage::Loading);
            assert_eq!(r.pending, ["ip_vs", "ip_vs_wrr"]);
            assert!(r.times.contains_key("prestart"));
        });
        // A second session sees the record on disk.
        k.set_live(&["ip_vs", "ip_vs_wrr"]);
        t.with_session(|s| {
            assert!(s.warnings[0].contains("container a: its hook died while loading"));
            assert_eq!(
                s.ledger().modules.keys().collect::<Vec<_>>(),
                ["ip_vs", "ip_vs_wrr"]
            );
            assert!(s.records.is_empty());
        });
        t.with_session(|s| {
            s.begin_load("b", "prestart", &["ip_vs_wrr".into()], &plan)
                .expect("begin");
            s.finish_load("b", &report(&[], &["nf_conntrack", "ip_vs", "ip_vs_wrr"]))
                .expect("finish");
            let r = s.record("b").expect("record");
            assert_eq!(r.stage, RecordStage::Holding);
            assert!(r.pending.is_empty());
            assert_eq!(r.holds, ["nf_conntrack", "ip_vs", "ip_vs_wrr"]);
            let out = s
                .release(&k, "b", Unload::OnLastRelease)
                .expect("release")
                .expect("had a record");
            assert_eq!(out.unloaded, ["ip_vs_wrr", "ip_vs"], "never nf_conntrack");
            assert!(s
                .release(&k, "b", Unload::OnLastRelease)
                .expect("again")
                .is_none());
        });
        assert_eq!(k.deleted(), ["ip_vs_wrr", "ip_vs"]);
        assert_eq!(k.live(), ["nf_conntrack"]);
    }

    #[test]
    fn a_failed_load_drops_the_record_and_owns_what_stayed() {
        let t = TempRoot::new();
        let k = FakeKernel::new(&t.root);
        k.set_live(&["ip_vs"]);
        let plan = t.plan_inserting(&["ip_vs", "ip_vs_wrr"], &[]);
        let err = LoadError::RolledBack {
            cause: Box::new(LoadError::Missing {
                module: "ip_vs_wrr".into(),
            }),
            rolled_back: Vec::new(),
            left: vec!["ip_vs".into()],
        };
        t.with_session(|s| {
            s.begin_load("a", "prestart", &[], &plan).expect("begin");
            s.abort_load("a", &err).expect("abort");
            assert!(s.record("a").is_none());
            assert_eq!(s.ledger().modules["ip_vs"].by, "a");
            assert_eq!(s.ledger().modules["ip_vs"].instance, k.instance("ip_vs"));
        });
        assert!(t.with_session(|s| s.records.is_empty()));
    }
}
