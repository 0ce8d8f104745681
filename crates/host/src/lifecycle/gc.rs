//! `modgate gc`: drops the records of containers that are gone (their poststop never
//! ran), then, with `unload = "on-last-release"`, removes the owned modules nobody
//! holds.

use std::collections::BTreeSet;

use modgate_core::policy::Unload;
use modgate_core::record::ContainerRecord;

use super::holding::unheld;
use super::store::{now_ms, StateError};
use super::unload::Unloaded;
use super::Session;
use crate::kernel::ModuleSyscalls;
use crate::root::Root;

/// State directories of the runtimes whose containers gc can judge by itself.
pub const RUNTIME_STATE_DIRS: &[&str] = &["run/runc", "run/crun"];

/// What gc knows of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    Gone,
    /// No list names it and no runtime state directory speaks for it.
    Unknown,
}

/// gc's verdict on one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    Drop,
    /// Gone by the evidence, but written after `now - grace`: the evidence may predate it.
    TooYoung,
    Unknown,
}

pub fn judge(record: &ContainerRecord, liveness: Liveness, now: u64, grace_ms: u64) -> Verdict {
    match liveness {
        Liveness::Alive => Verdict::Keep,
        Liveness::Unknown => Verdict::Unknown,
        Liveness::Gone if record.last_time().saturating_add(grace_ms) > now => Verdict::TooYoung,
        Liveness::Gone => Verdict::Drop,
    }
}

/// How gc tells a live container from a gone one.
pub enum Alive {
    /// The engine's list of live ids.
    Listed(BTreeSet<String>),
    /// The runtimes' state directories under the root.
    RuntimeDirs,
}

/// What gc did (or, in a dry run, would do).
#[derive(Debug, Default)]
pub struct GcReport {
    pub dropped: Vec<String>,
    pub too_young: Vec<String>,
    pub unknown: Vec<String>,
    /// With `unload = "never"`: owned modules nobody holds, kept.
    pub kept: Vec<String>,
    pub unloaded: Unloaded,
}

/// Where the runtime keeps this container's state, when it is one gc knows.
pub fn runtime_state_of(root: &Root, id: &str) -> Option<String> {
    // runc and crun refuse such ids; never build a path out of one.
    if id.is_empty() || id == "." || id == ".." || id.contains('/') {
        return None;
    }
    RUNTIME_STATE_DIRS
        .iter()
        .map(|d| format!("{d}/{id}"))
        .find(|rel| root.path(rel).is_dir())
}

fn liveness(root: &Root, r: &ContainerRecord, alive: &Alive) -> Liveness {
    let present = |rel: &str| {
        if root.path(rel).is_dir() {
            Liveness::Alive
        } else {
            Liveness::Gone
        }
    };
    match alive {
        Alive::Listed(ids) if ids.contains(&r.id) => Liveness::Alive,
        Alive::Listed(_) => Liveness::Gone,
        Alive::RuntimeDirs => match &r.runtime_state {
            Some(rel) => present(rel),
            None => match runtime_state_of(root, &r.id) {
                Some(_) => Liveness::Alive,
                None => Liveness::Unknown,
            },
        },
    }
}

impl Session<'_> {
    /// Drops the records of gone containers, then (with `on-last-release`) removes the
    /// owned modules nobody holds.
    pub fn gc(
        &mut self,
        syscalls: &dyn ModuleSyscalls,
        alive: &Alive,
        policy: Unload,
        grace_ms: u64,
        dry_run: bool,
    ) -> Result<GcReport, StateError> {
        let now = now_ms();
        let mut report = GcReport::default();
        let mut keep = Vec::new();
        for r in std::mem::take(&mut self.records) {
            match judge(&r, liveness(&self.root, &r, alive), now, grace_ms) {
                Verdict::Keep => keep.push(r),
                Verdict::TooYoung => {
                    report.too_young.push(r.id.clone());
                    keep.push(r);
                }
                Verdict::Unknown => {
                    report.unknown.push(r.id.clone());
                    keep.push(r);
                }
                Verdict::Drop => {
                    if !dry_run {
                        self.drop_record(&r)?;
                        tracing::info!(container = %r.id, "gc: container gone, record dropped");
                    }
                    report.dropped.push(r.id.clone());
                }
            }
        }
        self.records = keep;
        let candidates = unheld(&self.ledger, &self.records);
        match policy {
            Unload::OnLastRelease => {
                report.unloaded = self.unload(syscalls, &candidates, dry_run)?
            }
            Unload::Never => report.kept = candidates.into_iter().map(|c| c.name).collect(),
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::fake::FakeKernel;
    use crate::lifecycle::testing::{rec, TempRoot};

    #[test]
    fn gc_verdicts() {
        let r = rec("a", &[]);
        let table = [
            (Liveness::Alive, 100_000, Verdict::Keep),
            (Liveness::Unknown, 100_000, Verdict::Unknown),
            (Liveness::Gone, 100_000, Verdict::Drop),
            (Liveness::Gone, 20_000, Verdict::TooYoung),
        ];
        for (l, now, want) in table {
            assert_eq!(judge(&r, l, now, 30_000), want, "{l:?} at {now}");
        }
        assert_eq!(judge(&r, Liveness::Gone, 1_000, 0), Verdict::Drop);
    }

    #[test]
    fn runtime_state_directories_speak_for_a_container() {
        let t = TempRoot::new();
        std::fs::create_dir_all(t.root.path("run/crun/c1")).expect("mkdir");
        assert_eq!(
            runtime_state_of(&t.root, "c1").as_deref(),
            Some("run/crun/c1")
        );
        for id in ["", ".", "..", "a/b", "c2"] {
            assert_eq!(runtime_state_of(&t.root, id), None, "{id:?}");
        }
        let mut r = rec("c1", &[]);
        assert_eq!(liveness(&t.root, &r, &Alive::RuntimeDirs), Liveness::Alive);
        r.runtime_state = Some("run/runc/c1".into());
        assert_eq!(liveness(&t.root, &r, &Alive::RuntimeDirs), Liveness::Gone);
        assert_eq!(
            liveness(&t.root, &rec("c2", &[]), &Alive::RuntimeDirs),
            Liveness::Unknown
        );
        let listed = Alive::Listed(BTreeSet::from(["c2".to_string()]));
        assert_eq!(liveness(&t.root, &rec("c2", &[]), &listed), Liveness::Alive);
        assert_eq!(liveness(&t.root, &r, &listed), Liveness::Gone);
    }

    #[test]
    fn gc_drops_gone_records_and_unloads_or_keeps_by_policy() {
        let t = TempRoot::new();
        let k = FakeKernel::new(&t.root);
        let plan = t.plan_inserting(&["dummy"], &[]);
        {
            let mut c = t.claim("gone", &["dummy"]);
            c.begin_load("prestart", &[], &plan).expect("begin");
            k.set_live(&["dummy"]);
            let report = crate::loader::LoadReport {
                inserted: vec!["dummy".into()],
                ..Default::default()
            };
            c.finish_load(&report).expect("finish");
        }
        let none = Alive::Listed(BTreeSet::new());
        let r = t.with_session(|s| s.gc(&k, &none, Unload::Never, 0, false).expect("gc"));
        assert_eq!(r.dropped, ["gone"]);
        assert_eq!(r.kept, ["dummy"]);
        assert!(k.deleted().is_empty());
        let r = t.with_session(|s| s.gc(&k, &none, Unload::OnLastRelease, 0, true).expect("gc"));
        assert_eq!(r.unloaded.removed, ["dummy"]);
        assert!(k.deleted().is_empty(), "a dry run removes nothing");
        let r = t.with_session(|s| {
            s.gc(&k, &none, Unload::OnLastRelease, 0, false)
                .expect("gc")
        });
        assert_eq!(r.unloaded.removed, ["dummy"]);
        assert_eq!(k.deleted(), ["dummy"]);
        assert!(t.with_session(|s| s.ledger().modules.is_empty()));
    }
}
