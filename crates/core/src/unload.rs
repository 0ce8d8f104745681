//! Removing modules safely: newest first, a module only once nothing uses it (no module
//! among its kernel holders, a zero reference count), re-reading the kernel after each
//! round because removing one module drops the references it held on others (a
//! dependency's count, or a crypto driver that only a count ties to its user).

use std::collections::BTreeSet;

/// What the kernel says of one module right now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub live: bool,
    /// `/sys/module/NAME/refcnt`; `None` when the kernel does not say.
    pub refcnt: Option<u64>,
    /// `/sys/module/NAME/holders`: the modules that use this one.
    pub holders: Vec<String>,
}

/// Why the kernel did not remove a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// In use (`EWOULDBLOCK`/`EBUSY` with `O_NONBLOCK`): left for a later try.
    InUse,
    /// Not loaded (`ENOENT`): someone else removed it.
    Gone,
    Other(String),
}

/// The kernel as the unloader sees it.
pub trait UnloadKernel {
    fn facts(&self, module: &str) -> Facts;
    fn remove(&mut self, module: &str) -> Result<(), Refusal>;
}

/// A module that may be removed, with its insertion number (newest goes first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub name: String,
    pub seq: u64,
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
/// its facts and reports what a run would try, assuming every removal succeeds and no
/// reference count is held by anything outside the candidates.
pub fn unload(candidates: &[Candidate], kernel: &mut dyn UnloadKernel, dry_run: bool) -> Unloaded {
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
            let f = kernel.facts(name);
            if !f.live {
                out.gone.push(name.to_string());
                done.insert(name.to_string());
                progressed = true;
                continue;
            }
            // A holder already removed may linger in a fake or a slow sysfs.
            let used = f.holders.iter().any(|h| !out.removed.contains(h));
            // A dry run removes nothing, so counts never fall: it ignores them.
            if used || (!dry_run && f.refcnt.unwrap_or(0) > 0) {
                continue;
            }
            let result = if dry_run { Ok(()) } else { kernel.remove(name) };
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
        let f = kernel.facts(name);
        let users: Vec<String> = f
            .holders
            .into_iter()
            .filter(|h| !out.removed.contains(h))
            .collect();
        let why = if !users.is_empty() {
            Left::UsedBy(users)
        } else {
            Left::InUse(f.refcnt.unwrap_or(0))
        };
        out.left.push((name.to_string(), why));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A small kernel: each module with the modules it uses and extra references (a
    /// socket, a crypto transform); removing one drops the references it held.
    #[derive(Default)]
    struct Sim {
        uses: BTreeMap<String, Vec<String>>,
        extra: BTreeMap<String, u64>,
        /// user → modules it holds a plain reference on (not a holder link).
        counts_on: BTreeMap<String, Vec<String>>,
        refuse: BTreeMap<String, String>,
        removed: Vec<String>,
    }

    impl Sim {
        fn new(mods: &[(&str, &[&str])]) -> Self {
            let mut s = Sim::default();
            for (m, deps) in mods {
                s.uses
                    .insert(m.to_string(), deps.iter().map(|d| d.to_string()).collect());
            }
            s
        }
    }

    impl UnloadKernel for Sim {
        fn facts(&self, module: &str) -> Facts {
            if !self.uses.contains_key(module) {
                return Facts::default();
            }
            let holders: Vec<String> = self
                .uses
                .iter()
                .filter(|(_, deps)| deps.iter().any(|d| d == module))
                .map(|(m, _)| m.clone())
                .collect();
            let counted = self
                .counts_on
                .iter()
                .filter(|(u, on)| self.uses.contains_key(*u) && on.iter().any(|o| o == module))
                .count() as u64;
            Facts {
                live: true,
                refcnt: Some(holders.len() as u64 + counted + self.extra.get(module).unwrap_or(&0)),
                holders,
            }
        }

        fn remove(&mut self, module: &str) -> Result<(), Refusal> {
            if let Some(why) = self.refuse.get(module) {
                return Err(Refusal::Other(why.clone()));
            }
            let f = self.facts(module);
            if !f.live {
                return Err(Refusal::Gone);
            }
            if f.refcnt.unwrap_or(0) > 0 {
                return Err(Refusal::InUse);
            }
            self.uses.remove(module);
            self.removed.push(module.to_string());
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
            let mut sim = Sim::new(IPVS);
            // libcrc32c holds a crypto transform of crc32c_intel: a count, no holder link.
            sim.counts_on
                .insert("libcrc32c".into(), vec!["crc32c_intel".into()]);
            for (m, n) in c.extra {
                sim.extra.insert(m.to_string(), *n);
            }
            for m in c.refuse {
                sim.refuse
                    .insert(m.to_string(), "operation not permitted".into());
            }
            let u = unload(&cands(c.candidates), &mut sim, false);
            assert_eq!(u.removed, c.removed, "{}", c.what);
            assert_eq!(sim.removed, c.removed, "{}", c.what);
            assert_eq!(left_names(&u), c.left, "{}", c.what);
        }
    }

    #[test]
    fn a_second_round_after_a_count_drops() {
        // crc32c_intel inserted after libcrc32c (a later request): a count ties it to
        // libcrc32c, which only a re-read after removing libcrc32c shows gone.
        let mut sim = Sim::new(&[("libcrc32c", &[]), ("crc32c_intel", &[])]);
        sim.counts_on
            .insert("libcrc32c".into(), vec!["crc32c_intel".into()]);
        let u = unload(&cands(&["libcrc32c", "crc32c_intel"]), &mut sim, false);
        assert_eq!(u.removed, ["libcrc32c", "crc32c_intel"]);
        assert!(u.left.is_empty());
    }

    #[test]
    fn reasons_and_gone() {
        let mut sim = Sim::new(IPVS);
        sim.refuse.insert("crc32c_intel".into(), "EPERM".into());
        let u = unload(
            &cands(&["dummy", "crc32c_intel", "libcrc32c"]),
            &mut sim,
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
                ("crc32c_intel".to_string(), Left::Refused("EPERM".into())),
            ]
        );
        let mut sim = Sim::new(&[("ip_vs", &[])]);
        sim.extra.insert("ip_vs".into(), 2);
        let u = unload(&cands(&["ip_vs"]), &mut sim, false);
        assert_eq!(u.left, [("ip_vs".to_string(), Left::InUse(2))]);
        assert_eq!(Left::InUse(2).to_string(), "in use (reference count 2)");
        assert_eq!(
            Left::UsedBy(vec!["a".into(), "b".into()]).to_string(),
            "used by module a, b"
        );
    }

    #[test]
    fn dry_run_touches_nothing_and_orders_like_a_run() {
        let mut sim = Sim::new(IPVS);
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
            &mut sim,
            true,
        );
        assert!(sim.removed.is_empty());
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
        let u = unload(&cands(&["ip_vs"]), &mut sim, true);
        assert_eq!(left_names(&u), ["ip_vs"]);
    }
}
