//! Removing modules safely: newest first, a module only once nothing uses it (no module
//! among its kernel holders, a zero reference count), re-reading the kernel after each
//! round because removing one module drops the references it held on others (a
//! dependency's count, or a crypto driver that only a count ties to its user). Also
//! `modgate unload NAME...`: what a person may ask to remove.

use std::collections::BTreeSet;
use std::ffi::CString;

use modgate_core::record::{ContainerRecord, Ledger};

use super::holding::holders;
use super::store::StateError;
use super::Session;
use crate::kernel::{Kernel, ModState, ModuleSyscalls};

/// Why the kernel did not remove a module.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// In use (`EWOULDBLOCK`/`EBUSY` with `O_NONBLOCK`): left for a later try.
    InUse,
    /// Not loaded (`ENOENT`): someone else removed it.
    Gone,
    Other(String),
}

fn remove(syscalls: &dyn ModuleSyscalls, module: &str) -> Result<(), Refusal> {
    let name = CString::new(module).map_err(|_| Refusal::Other("NUL in name".into()))?;
    match syscalls.delete_module(&name) {
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

/// A module that may be removed, with its insertion number (newest goes first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub name: String,
    pub seq: u64,
}

pub(super) fn candidate(ledger: &Ledger, name: &str) -> Option<Candidate> {
    ledger.modules.get(name).map(|o| Candidate {
        name: name.to_string(),
        seq: o.seq,
    })
}

/// Why a candidate stayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Left {
    UsedBy(Vec<String>),
    InUse(u64),
    Refused(String),
}

impl std::fmt::Display for Left {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Left::UsedBy(m) => write!(f, "used by module {}", m.join(", ")),
            Left::InUse(n) => write!(f, "in use (reference count {n})"),
            Left::Refused(why) => write!(f, "the kernel refused: {why}"),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unloaded {
    /// Removed, in order.
    pub removed: Vec<String>,
    /// Already gone when we came to it.
    pub gone: Vec<String>,
    pub left: Vec<(String, Left)>,
}

/// Removes what it can of `candidates`. With `dry_run`, asks nothing of the kernel but
/// what it shows and reports what a run would try, assuming every removal succeeds and
/// no reference count is held by anything outside the candidates.
pub fn unload(
    candidates: &[Candidate],
    kernel: &dyn Kernel,
    syscalls: &dyn ModuleSyscalls,
    dry_run: bool,
) -> Unloaded {
    let mut order: Vec<&Candidate> = candidates.iter().collect();
    order.sort_by(|a, b| b.seq.cmp(&a.seq).then_with(|| a.name.cmp(&b.name)));
    order.dedup_by(|a, b| a.name == b.name);
    let mut out = Unloaded::default();
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut refused: Vec<(String, String)> = Vec::new();
    loop {
        let mut progressed = false;
        for c in &order {
            let name = c.name.as_str();
            if done.contains(name) || refused.iter().any(|(n, _)| n == name) {
                continue;
            }
            if kernel.state(name) != ModState::Live {
                out.gone.push(name.to_string());
                done.insert(name.to_string());
                progressed = true;
                continue;
            }
            // A holder already removed may linger in a slow sysfs.
            let used = kernel
                .holders(name)
                .iter()
                .any(|h| !out.removed.contains(h));
            // A dry run removes nothing, so counts never fall: it ignores them.
            if used || (!dry_run && kernel.refcnt(name).unwrap_or(0) > 0) {
                continue;
            }
            let result = if dry_run {
                Ok(())
            } else {
                remove(syscalls, name)
            };
            match result {
                Ok(()) => {
                    out.removed.push(name.to_string());
                    done.insert(name.to_string());
                    progressed = true;
                }
                Err(Refusal::Gone) => {
                    out.gone.push(name.to_string());
                    done.insert(name.to_string());
                    progressed = true;
                }
                Err(Refusal::InUse) => {}
                Err(Refusal::Other(why)) => refused.push((name.to_string(), why)),
            }
        }
        if !progressed {
            break;
        }
    }
    for c in &order {
        let name = c.name.as_str();
        if done.contains(name) {
            continue;
        }
        if let Some((_, why)) = refused.iter().find(|(n, _)| n == name) {
            out.left
                .push((name.to_string(), Left::Refused(why.clone())));
            continue;
        }
        let users: Vec<String> = kernel
            .holders(name)
            .into_iter()
            .filter(|h| !out.removed.contains(h))
            .collect();
        let why = if !users.is_empty() {
            Left::UsedBy(users)
        } else {
            Left::InUse(kernel.refcnt(name).unwrap_or(0))
        };
        out.left.push((name.to_string(), why));
    }
    out
}

/// `modgate unload NAME...`: what to remove, what to refuse and what to warn about.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UnloadAsk {
    pub candidates: Vec<Candidate>,
    pub refused: Vec<(String, String)>,
    pub warnings: Vec<String>,
}

/// Each name must be owned and unheld (held is allowed with `force`, with a warning
/// naming the holders). `closure_of(NAME)` gives the modules NAME needs: those that
/// are owned and unheld go too, dependencies before nothing that still needs them.
pub fn unload_ask(
    ledger: &Ledger,
    records: &[ContainerRecord],
    names: &[&str],
    force: bool,
    closure_of: &dyn Fn(&str) -> Vec<String>,
) -> UnloadAsk {
    let held = holders(records);
    let mut ask = UnloadAsk::default();
    let mut chosen: BTreeSet<String> = BTreeSet::new();
    for &name in names {
        let Some(c) = candidate(ledger, name) else {
            let why = if held.contains_key(name) {
                "modgate did not load it (it was live before a container asked for it): modgate never removes it; use rmmod".to_string()
            } else {
                "modgate did not load it and no container holds it; use rmmod".to_string()
            };
            ask.refused.push((name.to_string(), why));
            continue;
        };
        if let Some(ids) = held.get(name) {
            if !force {
                ask.refused.push((
                    name.to_string(),
                    format!(
                        "held by container {} (give --force to remove it anyway)",
                        ids.join(", ")
                    ),
                ));
                continue;
            }
            ask.warnings.push(format!(
                "removing module {name:?} that container {} still holds",
                ids.join(", ")
            ));
        }
        chosen.insert(name.to_string());
        ask.candidates.push(c);
        for dep in closure_of(name) {
            if dep != name && !held.contains_key(dep.as_str()) && chosen.insert(dep.clone()) {
                if let Some(c) = candidate(ledger, &dep) {
                    ask.candidates.push(c);
                }
            }
        }
    }
    ask
}

impl Session<'_> {
    /// `modgate unload NAME...`.
    pub fn unload_named(
        &mut self,
        syscalls: &dyn ModuleSyscalls,
        names: &[&str],
        force: bool,
        closure_of: &dyn Fn(&str) -> Vec<String>,
    ) -> Result<(UnloadAsk, Unloaded), StateError> {
        let ask = unload_ask(self.store.ledger(), &self.records, names, force, closure_of);
        for w in &ask.warnings {
            tracing::warn!("{w}");
        }
        let u = self.unload(syscalls, &ask.candidates, false)?;
        Ok((ask, u))
    }

    /// Removes what it can of `candidates` and drops what went from the ledger.
    pub(super) fn unload(
        &mut self,
        syscalls: &dyn ModuleSyscalls,
        candidates: &[Candidate],
        dry_run: bool,
    ) -> Result<Unloaded, StateError> {
        if candidates.is_empty() {
            return Ok(Unloaded::default());
        }
        let u = unload(candidates, &self.kernel(), syscalls, dry_run);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::ffi::CStr;
    use std::io;
    use std::sync::Mutex;

    use crate::kernel::KernelView;
    use crate::lifecycle::testing::{ledger, names, rec};

    /// A fake kernel held in memory, for the unloader's ordering rules: each module with
    /// the modules it uses and extra references (a socket, a crypto transform); removing
    /// one drops the references it held, which sysfs files cannot model by themselves.
    #[derive(Default)]
    struct FakeModuleGraph {
        uses: Mutex<BTreeMap<String, Vec<String>>>,
        extra: BTreeMap<String, u64>,
        /// user → modules it holds a plain reference on (not a holder link).
        counts_on: BTreeMap<String, Vec<String>>,
        refuse: BTreeMap<String, i32>,
        removed: Mutex<Vec<String>>,
    }

    impl FakeModuleGraph {
        fn new(mods: &[(&str, &[&str])]) -> Self {
            let s = FakeModuleGraph::default();
            for (m, deps) in mods {
                s.uses
                    .lock()
                    .expect("lock")
                    .insert(m.to_string(), deps.iter().map(|d| d.to_string()).collect());
            }
            s
        }

        fn removed(&self) -> Vec<String> {
            self.removed.lock().expect("lock").clone()
        }
    }

    impl KernelView for FakeModuleGraph {
        fn state(&self, module: &str) -> ModState {
            if self.uses.lock().expect("lock").contains_key(module) {
                ModState::Live
            } else {
                ModState::Absent
            }
        }
    }

    impl Kernel for FakeModuleGraph {
        fn instance(&self, _: &str) -> Option<u64> {
            None
        }

        fn refcnt(&self, module: &str) -> Option<u64> {
            let uses = self.uses.lock().expect("lock");
            if !uses.contains_key(module) {
                return None;
            }
            let counted = self
                .counts_on
                .iter()
                .filter(|(u, on)| uses.contains_key(*u) && on.iter().any(|o| o == module))
                .count() as u64;
            drop(uses);
            Some(self.holders(module).len() as u64 + counted + self.extra.get(module).unwrap_or(&0))
        }

        fn holders(&self, module: &str) -> Vec<String> {
            self.uses
                .lock()
                .expect("lock")
                .iter()
                .filter(|(_, deps)| deps.iter().any(|d| d == module))
                .map(|(m, _)| m.clone())
                .collect()
        }

        fn compression(&self) -> Option<String> {
            None
        }
    }

    impl ModuleSyscalls for FakeModuleGraph {
        fn finit_module(&self, _: &str, _: &std::fs::File, _: &CStr, _: u32) -> io::Result<()> {
            unreachable!("the unloader inserts nothing")
        }

        fn init_module(&self, _: &str, _: &[u8], _: &CStr) -> io::Result<()> {
            unreachable!("the unloader inserts nothing")
        }

        fn delete_module(&self, name: &CStr) -> io::Result<()> {
            let module = name.to_string_lossy().into_owned();
            if let Some(errno) = self.refuse.get(&module) {
                return Err(io::Error::from_raw_os_error(*errno));
            }
            if self.state(&module) != ModState::Live {
                return Err(io::Error::from_raw_os_error(libc::ENOENT));
            }
            if self.refcnt(&module).unwrap_or(0) > 0 {
                return Err(io::Error::from_raw_os_error(libc::EWOULDBLOCK));
            }
            self.uses.lock().expect("lock").remove(&module);
            self.removed.lock().expect("lock").push(module);
            Ok(())
        }
    }

    const IPVS: &[(&str, &[&str])] = &[
        ("crc32c_intel", &[]),
        ("libcrc32c", &[]),
        ("nf_defrag_ipv4", &[]),
        ("nf_conntrack", &["libcrc32c", "nf_defrag_ipv4"]),
        ("ip_vs", &["nf_conntrack", "libcrc32c"]),
        ("ip_vs_wrr", &["ip_vs"]),
    ];

    fn cands(names: &[&str]) -> Vec<Candidate> {
        // Insertion order as given.
        names
            .iter()
            .enumerate()
            .map(|(i, n)| Candidate {
                name: n.to_string(),
                seq: i as u64 + 1,
            })
            .collect()
    }

    fn left_names(u: &Unloaded) -> Vec<&str> {
        u.left.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn table() {
        struct Case {
            what: &'static str,
            candidates: &'static [&'static str],
            extra: &'static [(&'static str, u64)],
            refuse: &'static [&'static str],
            removed: &'static [&'static str],
            left: &'static [&'static str],
        }
        let all = &[
            "crc32c_intel",
            "libcrc32c",
            "nf_defrag_ipv4",
            "nf_conntrack",
            "ip_vs",
            "ip_vs_wrr",
        ];
        let cases = [
            Case {
                what: "everything ours: newest first, dependencies last",
                candidates: all,
                extra: &[],
                refuse: &[],
                removed: &[
                    "ip_vs_wrr",
                    "ip_vs",
                    "nf_conntrack",
                    "nf_defrag_ipv4",
                    "libcrc32c",
                    "crc32c_intel",
                ],
                left: &[],
            },
            Case {
                what: "nf_conntrack and below are not candidates (pre-existing)",
                candidates: &["ip_vs", "ip_vs_wrr"],
                extra: &[],
                refuse: &[],
                removed: &["ip_vs_wrr", "ip_vs"],
                left: &[],
            },
            Case {
                what: "a dependency needed by a module that stays is left",
                candidates: &["libcrc32c", "ip_vs"],
                extra: &[],
                refuse: &[],
                removed: &[],
                left: &["ip_vs", "libcrc32c"],
            },
            Case {
                what: "a module with a reference (a socket) stays, and so do its dependencies",
                candidates: all,
                extra: &[("ip_vs", 1)],
                refuse: &[],
                removed: &["ip_vs_wrr"],
                left: &[
                    "ip_vs",
                    "nf_conntrack",
                    "nf_defrag_ipv4",
                    "libcrc32c",
                    "crc32c_intel",
                ],
            },
            Case {
                what: "a kernel refusal is reported and blocks what lies below",
                candidates: all,
                extra: &[],
                refuse: &["nf_conntrack"],
                removed: &["ip_vs_wrr", "ip_vs"],
                left: &[
                    "nf_conntrack",
                    "nf_defrag_ipv4",
                    "libcrc32c",
                    "crc32c_intel",
                ],
            },
        ];
        for c in cases {
            let mut sim = FakeModuleGraph::new(IPVS);
            // libcrc32c holds a crypto transform of crc32c_intel: a count, no holder link.
            sim.counts_on
                .insert("libcrc32c".into(), vec!["crc32c_intel".into()]);
            for (m, n) in c.extra {
                sim.extra.insert(m.to_string(), *n);
            }
            for m in c.refuse {
                sim.refuse.insert(m.to_string(), libc::EPERM);
            }
            let u = unload(&cands(c.candidates), &sim, &sim, false);
            assert_eq!(u.removed, c.removed, "{}", c.what);
            assert_eq!(sim.removed(), c.removed, "{}", c.what);
            assert_eq!(left_names(&u), c.left, "{}", c.what);
        }
    }

    #[test]
    fn a_second_round_after_a_count_drops() {
        // crc32c_intel inserted after libcrc32c (a later request): a count ties it to
        // libcrc32c, which only a re-read after removing libcrc32c shows gone.
        let mut sim = FakeModuleGraph::new(&[("libcrc32c", &[]), ("crc32c_intel", &[])]);
        sim.counts_on
            .insert("libcrc32c".into(), vec!["crc32c_intel".into()]);
        let u = unload(&cands(&["libcrc32c", "crc32c_intel"]), &sim, &sim, false);
        assert_eq!(u.removed, ["libcrc32c", "crc32c_intel"]);
        assert!(u.left.is_empty());
    }

    #[test]
    fn reasons_and_gone() {
        let mut sim = FakeModuleGraph::new(IPVS);
        sim.refuse.insert("crc32c_intel".into(), libc::EPERM);
        let u = unload(
            &cands(&["dummy", "crc32c_intel", "libcrc32c"]),
            &sim,
            &sim,
            false,
        );
        assert_eq!(u.gone, ["dummy"]);
        assert_eq!(
            u.left,
            [
                (
                    "libcrc32c".to_string(),
                    Left::UsedBy(vec!["ip_vs".into(), "nf_conntrack".into()])
                ),
                (
                    "crc32c_intel".to_string(),
                    Left::Refused(
                        "operation not permitted (needs CAP_SYS_MODULE; or the module cannot be unloaded)".into()
                    )
                ),
            ]
        );
        let mut sim = FakeModuleGraph::new(&[("ip_vs", &[])]);
        sim.extra.insert("ip_vs".into(), 2);
        let u = unload(&cands(&["ip_vs"]), &sim, &sim, false);
        assert_eq!(u.left, [("ip_vs".to_string(), Left::InUse(2))]);
        assert_eq!(Left::InUse(2).to_string(), "in use (reference count 2)");
        assert_eq!(
            Left::UsedBy(vec!["a".into(), "b".into()]).to_string(),
            "used by module a, b"
        );
    }

    #[test]
    fn dry_run_touches_nothing_and_orders_like_a_run() {
        let mut sim = FakeModuleGraph::new(IPVS);
        sim.counts_on
            .insert("libcrc32c".into(), vec!["crc32c_intel".into()]);
        let u = unload(
            &cands(&[
                "libcrc32c",
                "nf_defrag_ipv4",
                "nf_conntrack",
                "ip_vs",
                "ip_vs_wrr",
            ]),
            &sim,
            &sim,
            true,
        );
        assert!(sim.removed().is_empty());
        assert_eq!(
            u.removed,
            [
                "ip_vs_wrr",
                "ip_vs",
                "nf_conntrack",
                "nf_defrag_ipv4",
                "libcrc32c"
            ]
        );
        // A module used by something outside the candidates stays in a dry run too.
        let u = unload(&cands(&["ip_vs"]), &sim, &sim, true);
        assert_eq!(left_names(&u), ["ip_vs"]);
    }

    #[test]
    fn unload_asks() {
        let l = ledger(&["libcrc32c", "ip_vs", "ip_vs_wrr", "dummy"]);
        let records = [rec("c1", &["nf_conntrack", "dummy"])];
        let closure = |n: &str| -> Vec<String> {
            match n {
                "ip_vs_wrr" => vec!["libcrc32c", "nf_conntrack", "ip_vs", "ip_vs_wrr"],
                _ => vec![n],
            }
            .into_iter()
            .map(String::from)
            .collect()
        };
        let a = unload_ask(&l, &records, &["ip_vs_wrr"], false, &closure);
        assert_eq!(names(&a.candidates), ["ip_vs_wrr", "libcrc32c", "ip_vs"]);
        assert!(a.refused.is_empty() && a.warnings.is_empty());

        let a = unload_ask(
            &l,
            &records,
            &["nf_conntrack", "veth", "dummy"],
            false,
            &closure,
        );
        assert!(a.candidates.is_empty());
        let why: Vec<&str> = a.refused.iter().map(|(_, w)| w.as_str()).collect();
        assert!(why[0].contains("was live before"), "{why:?}");
        assert!(why[1].contains("no container holds it"), "{why:?}");
        assert!(
            why[2].contains("held by container c1 (give --force"),
            "{why:?}"
        );

        let a = unload_ask(&l, &records, &["dummy"], true, &closure);
        assert_eq!(names(&a.candidates), ["dummy"]);
        assert_eq!(
            a.warnings,
            ["removing module \"dummy\" that container c1 still holds"]
        );
    }
}
