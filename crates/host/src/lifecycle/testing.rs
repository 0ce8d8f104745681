//! Shared pieces of the lifecycle's unit tests: a temp root, records and ledgers.

use modgate_core::plan::{Action, Plan, Reason, Step};
use modgate_core::record::{ContainerRecord, Ledger, RecordStage};
use modgate_core::ModuleName;

use super::unload::Candidate;
use super::{Claim, Identity, Session};
use crate::lock::HostLock;
use crate::root::Root;

pub struct TempRoot {
    _dir: tempfile::TempDir,
    pub root: Root,
}

impl TempRoot {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = Root::new(dir.path());
        Self { _dir: dir, root }
    }

    pub fn with_session<T>(&self, f: impl FnOnce(&mut Session) -> T) -> T {
        let lock = HostLock::acquire(&self.root).expect("lock");
        let mut s = Session::open(&self.root, &lock).expect("session");
        f(&mut s)
    }

    /// A hook's claim for container `id` (bundle `/bundles/ID`) and `modules`.
    pub fn claim(&self, id: &str, modules: &[&str]) -> Claim {
        let bundle = format!("/bundles/{id}");
        Claim::acquire(
            &self.root,
            Some(Identity {
                id,
                bundle: &bundle,
            }),
            modules,
            true,
        )
        .expect("claim")
    }

    /// Container `id`'s hook inserted `module` on `kernel` and recorded it; the hook has
    /// exited.
    pub fn inserted_by(&self, kernel: &crate::kernel::fake::FakeKernel, id: &str, module: &str) {
        let plan = self.plan_inserting(&[module], &[]);
        let mut c = self.claim(id, &[module]);
        c.begin_load("prestart", &[], &plan).expect("begin");
        kernel.set_live(&[module]);
        let report = crate::loader::LoadReport {
            inserted: vec![module.into()],
            ..Default::default()
        };
        c.finish_load(&report).expect("finish");
    }

    /// A plan that inserts `insert` and finds `loaded` live.
    pub fn plan_inserting(&self, insert: &[&str], loaded: &[&str]) -> Plan {
        let mut plan = Plan::default();
        let step = |m: &str, action| Step {
            module: m.to_string(),
            action,
            reason: Reason::Requested { name: m.into() },
            required: true,
        };
        for m in loaded {
            plan.push_step(step(m, Action::Loaded));
        }
        for m in insert {
            let path = format!("kernel/{m}.ko");
            plan.push_step(step(
                m,
                Action::Insert {
                    path,
                    options: String::new(),
                },
            ));
        }
        plan
    }
}

pub fn mn(name: &str) -> ModuleName {
    ModuleName::parse(name).expect("module name")
}

pub fn mns(names: &[&str]) -> Vec<ModuleName> {
    names.iter().map(|n| mn(n)).collect()
}

pub fn rec(id: &str, holds: &[&str]) -> ContainerRecord {
    let mut r = ContainerRecord::new(id, RecordStage::Holding);
    r.holds = mns(holds);
    r.times.insert("prestart".into(), 1_000);
    r
}

pub fn ledger(owned: &[&str]) -> Ledger {
    let mut l = Ledger::default();
    for m in owned {
        l.insert(&mn(m), "a", 500, None);
    }
    l
}

pub fn names(c: &[Candidate]) -> Vec<&str> {
    c.iter().map(|c| c.name.as_str()).collect()
}

/// A module directory with no aliases: only a module of a link kind's own name provides it.
pub fn no_aliases(_: &str) -> Vec<String> {
    Vec::new()
}
