//! Who holds which module and what modgate may remove: a module is modgate's only if
//! modgate inserted it (the ledger), a container holds its whole closure from its load
//! to its poststop, and only an owned module that no container holds may go.

use std::collections::{BTreeMap, BTreeSet};

use crate::resolve::{KernelView, ModState};
use crate::state::{ContainerRecord, Ledger};
use crate::unload::Candidate;

/// The kernel's module list, with which load of a module is live.
pub trait Kernel: KernelView {
    /// An id that changes each time the module is loaded again (`None`: cannot tell).
    fn instance(&self, module: &str) -> Option<u64>;
}

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

fn candidate(ledger: &Ledger, name: &str) -> Option<Candidate> {
    ledger.modules.get(name).map(|o| Candidate {
        name: name.to_string(),
        seq: o.seq,
    })
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
        .filter_map(|m| candidate(ledger, m))
        .collect()
}

/// Every owned module no container holds (what gc may remove).
pub fn unheld(ledger: &Ledger, records: &[ContainerRecord]) -> Vec<Candidate> {
    let held = holders(records);
    ledger
        .modules
        .keys()
        .filter(|m| !held.contains_key(m.as_str()))
        .filter_map(|m| candidate(ledger, m))
        .collect()
}

/// A record found still loading under the host lock: its hook died mid-load (killed,
/// timed out). The container cannot have started, so it holds nothing; of what the hook
/// meant to insert, what is live now is recorded as ours, so that it can be removed
/// later rather than forgotten. Returns the modules recorded.
pub fn recover(
    record: &ContainerRecord,
    ledger: &mut Ledger,
    kernel: &dyn Kernel,
    now: u64,
) -> Vec<String> {
    let mut adopted = Vec::new();
    for m in &record.pending {
        if kernel.state(m) == ModState::Live && !ledger.owns(m) {
            ledger.insert(m, &record.id, now, kernel.instance(m));
            adopted.push(m.clone());
        }
    }
    adopted
}

/// Why an owned module left the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disowned {
    /// Not live any more: someone removed it.
    NotLive,
    /// Live, but loaded again since modgate inserted it: the new load is not ours.
    Reloaded,
}

/// Brings the ledger in line with the kernel: drops modules no longer live, or live
/// from a later load than ours.
pub fn reconcile(ledger: &mut Ledger, kernel: &dyn Kernel) -> Vec<(String, Disowned)> {
    let mut dropped = Vec::new();
    for (name, owned) in ledger.modules.iter_mut() {
        if kernel.state(name) != ModState::Live {
            dropped.push((name.clone(), Disowned::NotLive));
            continue;
        }
        match (owned.instance, kernel.instance(name)) {
            (Some(was), Some(now)) if was != now => {
                dropped.push((name.clone(), Disowned::Reloaded))
            }
            // Not known at insertion (the entry appeared late): learn it now.
            (None, now) => owned.instance = now,
            _ => {}
        }
    }
    for (name, _) in &dropped {
        ledger.modules.remove(name);
    }
    dropped
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Stage;

    struct K {
        live: Vec<(&'static str, u64)>,
    }

    impl KernelView for K {
        fn state(&self, name: &str) -> ModState {
            if self.live.iter().any(|(n, _)| *n == name) {
                ModState::Live
            } else {
                ModState::Absent
            }
        }
    }

    impl Kernel for K {
        fn instance(&self, name: &str) -> Option<u64> {
            self.live.iter().find(|(n, _)| *n == name).map(|(_, i)| *i)
        }
    }

    fn rec(id: &str, holds: &[&str]) -> ContainerRecord {
        let mut r = ContainerRecord::new(id, Stage::Holding);
        r.holds = holds.iter().map(|s| s.to_string()).collect();
        r.times.insert("prestart".into(), 1_000);
        r
    }

    fn ledger(owned: &[&str]) -> Ledger {
        let mut l = Ledger::default();
        for m in owned {
            l.insert(m, "a", 500, None);
        }
        l
    }

    fn names(c: &[Candidate]) -> Vec<&str> {
        c.iter().map(|c| c.name.as_str()).collect()
    }

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
        let mut loading = ContainerRecord::new("b", Stage::Loading);
        loading.pending = vec!["ip_vs".into()];
        let l = ledger(&["ip_vs", "dummy"]);
        assert_eq!(names(&unheld(&l, &[loading])), ["dummy"]);
    }

    #[test]
    fn recovery_records_what_the_dead_hook_left_live() {
        let mut dead = ContainerRecord::new("x", Stage::Loading);
        dead.pending = vec!["libcrc32c".into(), "ip_vs".into(), "ip_vs_wrr".into()];
        let mut l = ledger(&["libcrc32c"]);
        let k = K {
            live: vec![("libcrc32c", 1), ("ip_vs", 2)],
        };
        assert_eq!(recover(&dead, &mut l, &k, 9), ["ip_vs"]);
        assert_eq!(l.modules["ip_vs"].by, "x");
        assert_eq!(l.modules["ip_vs"].instance, Some(2));
        assert!(!l.owns("ip_vs_wrr"));
    }

    #[test]
    fn reconcile_drops_removed_and_reloaded_modules() {
        let mut l = Ledger::default();
        l.insert("gone", "a", 1, Some(1));
        l.insert("reloaded", "a", 1, Some(2));
        l.insert("same", "a", 1, Some(3));
        l.insert("learnt", "a", 1, None);
        let k = K {
            live: vec![("reloaded", 20), ("same", 3), ("learnt", 4)],
        };
        let d = reconcile(&mut l, &k);
        assert_eq!(
            d,
            [
                ("gone".to_string(), Disowned::NotLive),
                ("reloaded".to_string(), Disowned::Reloaded)
            ]
        );
        assert_eq!(l.modules.keys().collect::<Vec<_>>(), ["learnt", "same"]);
        assert_eq!(l.modules["learnt"].instance, Some(4));
    }

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
