//! The unloader against an in-memory fake kernel (its ordering rules), and what
//! `modgate unload` may be asked.

use super::*;
use std::collections::BTreeMap;
use std::ffi::CStr;
use std::io;
use std::sync::Mutex;

use crate::kernel::{KernelView, Link, Mount, ScanError, Uses};
use crate::lifecycle::testing::no_aliases;
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

/// No network link, no mount: the ordering rules alone.
impl Uses for FakeModuleGraph {
    fn links(&self) -> Result<Vec<Link>, ScanError> {
        Ok(Vec::new())
    }

    fn mounts(&self) -> Result<Vec<Mount>, ScanError> {
        Ok(Vec::new())
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
        let u = unload(
            &cands(c.candidates),
            &sim,
            &sim,
            &Uncounted::new(&sim, &no_aliases),
            false,
        );
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
    let u = unload(
        &cands(&["libcrc32c", "crc32c_intel"]),
        &sim,
        &sim,
        &Uncounted::new(&sim, &no_aliases),
        false,
    );
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
        &Uncounted::new(&sim, &no_aliases),
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
    let u = unload(
        &cands(&["ip_vs"]),
        &sim,
        &sim,
        &Uncounted::new(&sim, &no_aliases),
        false,
    );
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
        &Uncounted::new(&sim, &no_aliases),
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
    let u = unload(
        &cands(&["ip_vs"]),
        &sim,
        &sim,
        &Uncounted::new(&sim, &no_aliases),
        true,
    );
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
