use super::*;
use crate::kernel::fake::FakeKernel;
use crate::lifecycle::testing::{ledger, mns, names, no_aliases, rec, TempRoot};

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
        let held = holders(&others);
        let got = release_candidates(&rec("a", &seed), |m| {
            Ok(candidate(&l, m).filter(|_| !held.contains_key(m)))
        })
        .expect("candidates");
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

const CLOSURE: [&str; 3] = ["nf_conntrack", "ip_vs", "ip_vs_wrr"];

#[test]
fn a_load_is_recorded_before_and_after_and_released_at_poststop() {
    let t = TempRoot::new();
    let k = FakeKernel::new(&t.root);
    k.set_live(&["nf_conntrack"]);
    let plan = t.plan_inserting(&["ip_vs", "ip_vs_wrr"], &["nf_conntrack"]);
    {
        let mut c = t.claim("a", &CLOSURE);
        c.begin_load("prestart", &["ip_vs_wrr".into()], &plan)
            .expect("begin");
        let r = c.record().expect("record");
        assert_eq!(r.stage, RecordStage::Loading);
        assert_eq!(r.pending, ["ip_vs", "ip_vs_wrr"]);
        assert!(r.times.contains_key("prestart"));
        k.set_live(&["ip_vs"]);
        c.record_insertion("ip_vs").expect("record ip_vs");
        // The hook dies here, in ip_vs_wrr's insertion: its locks go with it, its
        // record stays, and says it inserted ip_vs only.
    }
    k.set_live(&["ip_vs_wrr"]);
    // A session sees the record on disk: ip_vs_wrr may be anyone's load.
    t.with_session(|s| {
        assert!(s.warnings[0].contains("container a: its hook died while loading"));
        assert_eq!(s.ledger().modules.keys().collect::<Vec<_>>(), ["ip_vs"]);
        assert!(s.records.is_empty());
    });
    let mut c = t.claim("b", &CLOSURE);
    c.begin_load("prestart", &["ip_vs_wrr".into()], &plan)
        .expect("begin");
    c.finish_load(&report(&[], &["nf_conntrack", "ip_vs", "ip_vs_wrr"]))
        .expect("finish");
    let r = c.record().expect("record");
    assert_eq!(r.stage, RecordStage::Holding);
    assert!(r.pending.is_empty());
    assert_eq!(r.holds, ["nf_conntrack", "ip_vs", "ip_vs_wrr"]);
    drop(c);
    let out = t
        .claim("b", &[])
        .release(&k, &Uncounted::new(&k, &no_aliases), Unload::OnLastRelease)
        .expect("release")
        .expect("had a record");
    assert_eq!(out.unloaded, ["ip_vs"], "never nf_conntrack, nor ip_vs_wrr");
    assert!(t
        .claim("b", &[])
        .release(&k, &Uncounted::new(&k, &no_aliases), Unload::OnLastRelease)
        .expect("again")
        .is_none());
    assert_eq!(k.deleted(), ["ip_vs"]);
    assert_eq!(k.live(), ["ip_vs_wrr", "nf_conntrack"]);
}

#[test]
fn a_hook_recovers_what_a_dead_hook_left_in_the_modules_it_names() {
    let t = TempRoot::new();
    let k = FakeKernel::new(&t.root);
    let plan = t.plan_inserting(&["dummy", "ip_vs"], &[]);
    {
        let mut c = t.claim("dead", &["dummy", "ip_vs"]);
        c.begin_load("prestart", &[], &plan).expect("begin");
        for m in ["dummy", "ip_vs"] {
            k.set_live(&[m]);
            c.record_insertion(m).expect("record");
        }
    }
    // Names only dummy: recovers dummy, leaves ip_vs for whoever names it.
    let c = t.claim("next", &["dummy"]);
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("container dead: its hook died"));
    drop(c);
    let mut s = super::super::store::Store::open(&t.root).expect("store");
    assert_eq!(s.owned("dummy").expect("owned").expect("dummy").by, "dead");
    assert!(s.owned("ip_vs").expect("owned").is_none());
    let r = s
        .record(&modgate_core::record::record_key("dead"))
        .expect("read")
        .expect("still there");
    assert_eq!(r.pending, mns(&["ip_vs"]));
    // A live hook's pending entry is left alone: its container lock is held.
    let plan = t.plan_inserting(&["veth"], &[]);
    let mut live = t.claim("live", &["veth"]);
    live.begin_load("prestart", &[], &plan).expect("begin");
    let other = std::thread::spawn({
        let root = t.root.clone();
        move || {
            // Waits for veth's lock, which `live` holds until it is dropped.
            let c = Claim::acquire(
                &root,
                Some(super::super::Identity {
                    id: "other",
                    bundle: "/b",
                }),
                &["veth"],
                true,
            )
            .expect("claim");
            c.warnings.len()
        }
    });
    k.set_live(&["veth"]);
    live.finish_load(&report(&["veth"], &[])).expect("finish");
    drop(live);
    assert_eq!(other.join().expect("thread"), 0, "nothing to recover");
}

/// A hook killed before (or while) inserting leaves its modules pending; one that is
/// live afterwards was loaded by something else as far as modgate can show.
#[test]
fn a_module_a_dead_hook_only_meant_to_insert_is_never_adopted() {
    let t = TempRoot::new();
    let k = FakeKernel::new(&t.root);
    let plan = t.plan_inserting(&["dummy", "veth"], &[]);
    for (who, next) in [("dead1", "claim"), ("dead2", "session")] {
        {
            let mut c = t.claim(who, &["dummy", "veth"]);
            c.begin_load("prestart", &[], &plan).expect("begin");
            // Killed here, before its first insertion.
        }
        // Someone else loads both, dummy twice: the same record, another load of it.
        k.set_live(&["dummy", "veth"]);
        if next == "claim" {
            let c = t.claim("next", &["dummy", "veth"]);
            assert!(
                c.warnings[0].contains(&format!("container {who}: its hook died")),
                "{:?}",
                c.warnings
            );
            assert!(c.warnings[0].ends_with(": none"), "{:?}", c.warnings);
        } else {
            t.with_session(|s| {
                assert!(s.warnings[0].ends_with(": none"), "{:?}", s.warnings);
                assert!(s.ledger().modules.is_empty());
                assert!(s.records.is_empty());
            });
        }
        let mut s = super::super::store::Store::open(&t.root).expect("store");
        assert!(s.owned("dummy").expect("owned").is_none(), "{next}");
        assert!(s.owned("veth").expect("owned").is_none(), "{next}");
        assert!(s
            .record(&modgate_core::record::record_key(who))
            .expect("read")
            .is_none());
    }
    // Nothing of it is modgate's to remove.
    let mut c = t.claim("holder", &["dummy", "veth"]);
    let plan = t.plan_inserting(&[], &["dummy", "veth"]);
    c.begin_load("prestart", &[], &plan).expect("begin");
    c.finish_load(&report(&[], &["dummy", "veth"]))
        .expect("finish");
    let out = c
        .release(&k, &Uncounted::new(&k, &no_aliases), Unload::OnLastRelease)
        .expect("release")
        .expect("held");
    assert!(out.unloaded.is_empty(), "{out:?}");
    assert!(k.deleted().is_empty());
    assert_eq!(k.live(), ["dummy", "veth"]);
}

/// A dead hook's record proves one load of a module: removed and loaded again by
/// someone else, the module is not adopted.
#[test]
fn a_module_reloaded_after_the_hook_died_is_not_adopted() {
    let t = TempRoot::new();
    let k = FakeKernel::new(&t.root);
    let plan = t.plan_inserting(&["dummy"], &[]);
    {
        let mut c = t.claim("dead", &["dummy"]);
        c.begin_load("prestart", &[], &plan).expect("begin");
        k.set_live(&["dummy"]);
        c.record_insertion("dummy").expect("record");
    }
    k.reload("dummy");
    t.with_session(|s| {
        assert!(s.warnings[0].ends_with(": none"), "{:?}", s.warnings);
        assert!(s.ledger().modules.is_empty());
    });
}

#[test]
fn a_same_id_from_another_bundle_is_refused_and_releases_nothing() {
    let t = TempRoot::new();
    let k = FakeKernel::new(&t.root);
    k.set_live(&["dummy"]);
    let plan = t.plan_inserting(&[], &["dummy"]);
    let mut c = t.claim("c1", &["dummy"]);
    c.begin_load("prestart", &[], &plan).expect("begin");
    c.finish_load(&report(&["dummy"], &[])).expect("finish");
    drop(c);
    let other = super::super::Identity {
        id: "c1",
        bundle: "/elsewhere/c1",
    };
    let mut c = Claim::acquire(&t.root, Some(other), &["dummy"], true).expect("claim");
    let e = c.begin_load("prestart", &[], &plan).expect_err("refused");
    let line = modgate_core::error_line(&e);
    assert!(
        line.contains(
            "container \"c1\" of bundle /elsewhere/c1 is already recorded for bundle /bundles/c1"
        ),
        "{line}"
    );
    drop(c);
    let mut c = Claim::acquire(&t.root, Some(other), &[], true).expect("claim");
    assert!(c
        .release(&k, &Uncounted::new(&k, &no_aliases), Unload::OnLastRelease)
        .expect("release")
        .is_none());
    drop(c);
    assert!(k.deleted().is_empty());
    let st = t.with_session(|s| s.status());
    assert_eq!(st.containers.len(), 1);
    assert_eq!(st.modules[0].holders, ["c1"]);
    let out = t
        .claim("c1", &[])
        .release(&k, &Uncounted::new(&k, &no_aliases), Unload::OnLastRelease)
        .expect("release")
        .expect("its own");
    assert_eq!(out.unloaded, ["dummy"]);
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
    let mut c = t.claim("a", &["ip_vs", "ip_vs_wrr"]);
    c.begin_load("prestart", &[], &plan).expect("begin");
    c.abort_load(&err).expect("abort");
    assert!(c.record().is_none());
    drop(c);
    t.with_session(|s| {
        assert!(s.records.is_empty());
        assert_eq!(s.ledger().modules["ip_vs"].by, "a");
        assert_eq!(s.ledger().modules["ip_vs"].instance, k.instance("ip_vs"));
    });
}
