//! The lifecycle at the edges, always under the host lock: record what a container
//! holds around its load, release it at poststop and remove what nobody needs, and the
//! `status`, `gc` and `unload` commands. `modgate_core::lifecycle` and
//! `modgate_core::unload` decide; this file reads sysfs, calls the kernel and writes.

use std::collections::BTreeSet;
use std::ffi::CString;

use modgate_core::lifecycle::{self as core, Liveness, UnloadAsk, Verdict};
use modgate_core::plan::{Action, Plan};
use modgate_core::policy::Unload;
use modgate_core::state::{ContainerRecord, Stage};
use modgate_core::status::Status;
use modgate_core::unload::{self, Candidate, Facts, Refusal, UnloadKernel, Unloaded};

use crate::kernel::Sysfs;
use crate::loader::{LoadError, LoadReport};
use crate::lock::HostLock;
use crate::root::Root;
use crate::state::{now_ms, StateError, Store};
use crate::syscall::ModuleSyscalls;

/// State directories of the runtimes whose containers gc can judge by itself.
pub const RUNTIME_STATE_DIRS: &[&str] = &["run/runc", "run/crun"];

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

/// What a release did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Released {
    pub held: Vec<String>,
    pub unloaded: Vec<String>,
    pub left: Vec<(String, String)>,
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

/// How gc tells a live container from a gone one.
pub enum Alive {
    /// The engine's list of live ids.
    Listed(BTreeSet<String>),
    /// The runtimes' state directories under the root.
    RuntimeDirs,
}

impl<'l> Session<'l> {
    pub fn open(root: &Root, lock: &'l HostLock) -> Result<Self, StateError> {
        let mut store = Store::open(root, lock)?;
        let mut records = store.records()?;
        let mut warnings = store.take_warnings();
        let sysfs = Sysfs { root };
        let now = now_ms();
        let mut dead = Vec::new();
        for r in records.iter().filter(|r| r.stage == Stage::Loading) {
            // We hold the lock, and a loading hook holds it until its record is final.
            let adopted = core::recover(r, store.ledger_mut(), &sysfs, now);
            let msg = format!(
                "container {}: its hook died while loading; recorded as modgate's, held by nobody: {}",
                r.id,
                if adopted.is_empty() { "none".to_string() } else { adopted.join(",") }
            );
            tracing::warn!("{msg}");
            warnings.push(msg);
            dead.push(r.id.clone());
        }
        let disowned = core::reconcile(store.ledger_mut(), &sysfs);
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

    pub fn ledger(&self) -> &modgate_core::state::Ledger {
        self.store.ledger()
    }

    fn sysfs(&self) -> Sysfs<'_> {
        Sysfs { root: &self.root }
    }

    fn record(&self, id: &str) -> Option<&ContainerRecord> {
        self.records.iter().find(|r| r.id == id)
    }

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
            .unwrap_or_else(|| ContainerRecord::new(id, Stage::Loading));
        r.stage = Stage::Loading;
        r.times.insert(stage.to_string(), now_ms());
        for n in requested {
            if !r.requested.contains(n) {
                r.requested.push(n.clone());
            }
        }
        r.pending = plan
            .steps
            .iter()
            .filter(|s| matches!(s.action, Action::Insert { .. }))
            .map(|s| s.module.clone())
            .collect();
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
        let sysfs = Sysfs { root: &self.root };
        for m in &report.inserted {
            let instance = modgate_core::lifecycle::Kernel::instance(&sysfs, m);
            self.store.ledger_mut().insert(m, id, now, instance);
        }
        if !report.inserted.is_empty() {
            self.store.save_ledger()?;
        }
        let mut r = self
            .record(id)
            .cloned()
            .unwrap_or_else(|| ContainerRecord::new(id, Stage::Holding));
        r.stage = Stage::Holding;
        r.pending.clear();
        r.times.insert("loaded".into(), now);
        for m in report.inserted.iter().chain(&report.present) {
            if !r.holds.contains(m) {
                r.holds.push(m.clone());
            }
        }
        for m in &report.inserted {
            if !r.inserted.contains(m) {
                r.inserted.push(m.clone());
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
            let now = now_ms();
            let sysfs = Sysfs { root: &self.root };
            for m in left {
                let instance = modgate_core::lifecycle::Kernel::instance(&sysfs, m);
                self.store.ledger_mut().insert(m, id, now, instance);
            }
            if !left.is_empty() {
                self.store.save_ledger()?;
            }
        }
        self.store.remove(id)?;
        self.records.retain(|r| r.id != id);
        Ok(())
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
            held: rec.holds.clone(),
            ..Default::default()
        };
        if policy == Unload::OnLastRelease {
            let candidates = core::release_candidates(self.store.ledger(), &rec, &self.records);
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
            match core::judge(&r, liveness(&self.root, &r, alive), now, grace_ms) {
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
                        self.store.remove(&r.id)?;
                        tracing::info!(container = %r.id, "gc: container gone, record dropped");
                    }
                    report.dropped.push(r.id.clone());
                }
            }
        }
        self.records = keep;
        let candidates = core::unheld(self.store.ledger(), &self.records);
        match policy {
            Unload::OnLastRelease => {
                report.unloaded = self.unload(syscalls, &candidates, dry_run)?
            }
            Unload::Never => report.kept = candidates.into_iter().map(|c| c.name).collect(),
        }
        Ok(report)
    }

    /// `modgate unload NAME...`.
    pub fn unload_named(
        &mut self,
        syscalls: &dyn ModuleSyscalls,
        names: &[&str],
        force: bool,
        closure_of: &dyn Fn(&str) -> Vec<String>,
    ) -> Result<(UnloadAsk, Unloaded), StateError> {
        let ask = core::unload_ask(self.store.ledger(), &self.records, names, force, closure_of);
        for w in &ask.warnings {
            tracing::warn!("{w}");
        }
        let u = self.unload(syscalls, &ask.candidates, false)?;
        Ok((ask, u))
    }

    pub fn status(&self) -> Status {
        Status::build(self.store.ledger(), &self.records, &self.sysfs())
    }

    fn unload(
        &mut self,
        syscalls: &dyn ModuleSyscalls,
        candidates: &[Candidate],
        dry_run: bool,
    ) -> Result<Unloaded, StateError> {
        if candidates.is_empty() {
            return Ok(Unloaded::default());
        }
        let mut kernel = SysKernel {
            sysfs: Sysfs { root: &self.root },
            syscalls,
        };
        let u = unload::unload(candidates, &mut kernel, dry_run);
        if dry_run {
            return Ok(u);
        }
        for m in &u.removed {
            tracing::info!(module = %m, "unloaded");
        }
        for (m, why) in &u.left {
            tracing::warn!(module = %m, "left loaded: {why}; modgate gc tries again");
        }
        let ledger = self.store.ledger_mut();
        let before = ledger.modules.len();
        for m in u.removed.iter().chain(&u.gone) {
            ledger.modules.remove(m);
        }
        if ledger.modules.len() != before {
            self.store.save_ledger()?;
        }
        Ok(u)
    }
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

/// The kernel for the unloader: facts from sysfs, removal through the syscall trait.
struct SysKernel<'a> {
    sysfs: Sysfs<'a>,
    syscalls: &'a dyn ModuleSyscalls,
}

impl UnloadKernel for SysKernel<'_> {
    fn facts(&self, module: &str) -> Facts {
        self.sysfs.facts(module)
    }

    fn remove(&mut self, module: &str) -> Result<(), Refusal> {
        let name = CString::new(module).map_err(|_| Refusal::Other("NUL in name".into()))?;
        match self.syscalls.delete_module(&name) {
            Ok(()) => Ok(()),
            Err(e) => Err(match e.raw_os_error() {
                Some(libc::EWOULDBLOCK) | Some(libc::EBUSY) => Refusal::InUse,
                Some(libc::ENOENT) => Refusal::Gone,
                Some(libc::EPERM) => Refusal::Other(
                    "operation not permitted (needs CAP_SYS_MODULE; or the module cannot be unloaded)"
                        .into(),
                ),
                _ => Refusal::Other(e.to_string()),
            }),
        }
    }
}
