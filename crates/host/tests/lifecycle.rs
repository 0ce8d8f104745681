//! Holding, release and unloading through the pipeline the hook calls, against a copy
//! of the fixture root with a FakeKernel, which keeps `sys/module` up to date (a module
//! it inserts appears live, one it removes disappears), so several hooks in a row, or at
//! once, see what the real kernel would show them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use modgate_core::oci::ConfigView;
use modgate_core::record::{record_key, ContainerRecord, Insertion, RecordStage};
use modgate_host::kernel::{Kernel, ModuleSyscalls};
use modgate_host::lifecycle::{has_record, Alive, Identity, Session, Uncounted};
use modgate_host::loader::deadline::Watch;
use modgate_host::loader::{Deadline, LoadError};
use modgate_host::lock::HostLock;
use modgate_host::pipeline::{self, AdmitError, Holder, Host, Outcome};
use modgate_host::root::Root;
use modgate_testkit::{FakeKernel, FIXTURE_RELEASE, SEED_CLOSURE as SEED, SEED_REQUEST};

fn live(root: &Path) -> BTreeSet<String> {
    FakeKernel::new(&Root::new(root))
        .live()
        .into_iter()
        .collect()
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new(unload: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        modgate_testkit::fixture_root(&dir.path().join("root"), &[]);
        std::fs::create_dir_all(dir.path().join("root/etc/modgate")).expect("mkdir");
        std::fs::write(
            dir.path().join("root/etc/modgate/policy.toml"),
            format!("mode = \"permissive\"\nunload = \"{unload}\"\n"),
        )
        .expect("policy");
        Self { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn kernel(&self) -> FakeKernel {
        FakeKernel::new(&Root::new(self.root()))
    }

    fn host(&self) -> Host {
        Host {
            root: Root::new(self.root()),
            release: Some(FIXTURE_RELEASE.into()),
            config_dirs: Vec::new(),
            policy: None,
            coming_wait: Duration::from_millis(100),
            deadline: None,
        }
    }

    fn prestart(&self, k: &FakeKernel, id: &str, modules: &str) -> Result<Outcome, AdmitError> {
        self.prestart_with(k, id, modules)
    }

    fn prestart_with(
        &self,
        k: &dyn ModuleSyscalls,
        id: &str,
        modules: &str,
    ) -> Result<Outcome, AdmitError> {
        self.prestart_under(k, id, modules, self.host())
    }

    /// A prestart as the hook makes it: under `budget`, waiting up to `coming_wait` for
    /// a module another process loads.
    fn host_under(&self, budget: &Arc<Deadline>, coming_wait: Duration) -> Host {
        Host {
            deadline: Some(Arc::clone(budget)),
            coming_wait,
            ..self.host()
        }
    }

    fn prestart_under(
        &self,
        k: &dyn ModuleSyscalls,
        id: &str,
        modules: &str,
        host: Host,
    ) -> Result<Outcome, AdmitError> {
        let config = ConfigView::parse(
            format!(r#"{{"process":{{"env":["KERNEL_MODULES={modules}"]}}}}"#).as_bytes(),
        )
        .expect("config");
        let request = config.request().expect("request");
        let names: Vec<&str> = request.names().iter().map(|n| n.as_str()).collect();
        let mut outcome = Outcome::default();
        let bundle = format!("/bundles/{id}");
        let holder = Holder {
            id,
            bundle: &bundle,
            stage: "prestart",
        };
        pipeline::admit_and_load(
            &host,
            k,
            &names,
            &BTreeMap::new(),
            Some(holder),
            &mut outcome,
        )?;
        Ok(outcome)
    }

    fn poststop(&self, k: &FakeKernel, id: &str) -> Outcome {
        let mut outcome = Outcome::default();
        let bundle = format!("/bundles/{id}");
        let who = Identity {
            id,
            bundle: &bundle,
        };
        pipeline::release(&self.host(), k, k, who, &mut outcome).expect("release");
        outcome
    }

    fn with_session<T>(&self, f: impl FnOnce(&mut Session) -> T) -> T {
        let root = Root::new(self.root());
        let lock = HostLock::acquire(&root).expect("lock");
        let mut s = Session::open(&root, &lock).expect("session");
        f(&mut s)
    }

    fn owned(&self) -> Vec<String> {
        self.with_session(|s| s.ledger().modules.keys().map(|m| m.to_string()).collect())
    }

    fn record_ids(&self) -> Vec<String> {
        self.with_session(|s| s.records.iter().map(|r| r.id.clone()).collect())
    }
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn no_aliases(_: &str) -> Vec<String> {
    Vec::new()
}

#[test]
fn the_last_release_removes_what_modgate_inserted_newest_first() {
    let e = Env::new("on-last-release");
    let k = e.kernel();
    let a = e.prestart(&k, "a", SEED_REQUEST).expect("a");
    assert_eq!(a.report.expect("report").inserted, SEED);
    e.prestart(&k, "b", "ip_vs_wrr").expect("b");
    assert_eq!(e.record_ids(), ["a", "b"]);

    let out = e.poststop(&k, "a");
    assert_eq!(
        out.released.expect("released").unloaded,
        Vec::<String>::new()
    );
    assert!(k.deleted().is_empty());
    // a inserted them and has gone; they are still modgate's.
    assert_eq!(e.owned().len(), 5);

    let out = e.poststop(&k, "b");
    let want = [
        "ip_vs_wrr",
        "ip_vs",
        "nf_conntrack",
        "libcrc32c",
        "crc32c_generic",
    ];
    assert_eq!(out.released.expect("released").unloaded, want);
    assert_eq!(k.deleted(), want);
    assert!(e.owned().is_empty() && e.record_ids().is_empty());
    assert!(live(&e.root()).is_empty());
}

#[test]
fn pre_existing_modules_are_never_removed() {
    let e = Env::new("on-last-release");
    for m in ["crc32c_generic", "libcrc32c", "nf_conntrack"] {
        modgate_testkit::set_live(&e.root(), &[m]);
    }
    let k = e.kernel();
    let a = e.prestart(&k, "a", "ip_vs_wrr").expect("a");
    assert_eq!(a.report.expect("report").inserted, ["ip_vs", "ip_vs_wrr"]);
    e.with_session(|s| {
        let st = s.status();
        let nf = st
            .modules
            .iter()
            .find(|m| m.name == "nf_conntrack")
            .expect("nf");
        assert!(!nf.owned && nf.live && nf.holders == ["a"]);
    });
    e.poststop(&k, "a");
    assert_eq!(k.deleted(), ["ip_vs_wrr", "ip_vs"]);
    assert_eq!(
        live(&e.root()),
        BTreeSet::from(["crc32c_generic", "libcrc32c", "nf_conntrack"].map(String::from))
    );
    // gc after that finds nothing of modgate's to remove either.
    let r = e.with_session(|s| {
        s.gc(
            &k,
            &Uncounted::new(&k, &no_aliases),
            &Alive::Listed(BTreeSet::new()),
            modgate_core::policy::Unload::OnLastRelease,
            0,
            false,
        )
        .expect("gc")
    });
    assert!(r.unloaded.removed.is_empty());
}

#[test]
fn never_keeps_modules_and_status_shows_no_holders() {
    let e = Env::new("never");
    let k = e.kernel();
    e.prestart(&k, "a", "ip_vs_wrr").expect("a");
    e.prestart(&k, "b", "ip_vs_wrr").expect("b");
    e.poststop(&k, "a");
    e.poststop(&k, "b");
    assert!(k.deleted().is_empty());
    let st = e.with_session(|s| s.status());
    assert!(st.containers.is_empty());
    assert_eq!(st.modules.len(), 5);
    for m in &st.modules {
        assert!(m.owned && m.live && m.holders.is_empty(), "{m:?}");
        assert_eq!(m.loaded_by.as_deref(), Some("a"));
    }
    // gc under "never" drops no module either, and says so.
    let r = e.with_session(|s| {
        s.gc(
            &k,
            &Uncounted::new(&k, &no_aliases),
            &Alive::Listed(BTreeSet::new()),
            modgate_core::policy::Unload::Never,
            0,
            false,
        )
        .expect("gc")
    });
    assert_eq!(r.kept.len(), 5);
    assert!(k.deleted().is_empty());
}

#[test]
fn a_failed_prestart_leaves_no_record_holding_anything() {
    let e = Env::new("on-last-release");
    let k = e.kernel().fail_insert("ip_vs_wrr", libc::ENOEXEC);
    let err = e.prestart(&k, "a", "ip_vs_wrr").expect_err("must fail");
    assert!(
        matches!(err, AdmitError::Load(LoadError::RolledBack { .. })),
        "{}",
        modgate_core::error_line(&err)
    );
    assert!(!has_record(&Root::new(e.root()), "a"));
    assert!(e.owned().is_empty());
    assert!(live(&e.root()).is_empty(), "rolled back");

    // A rollback the kernel refuses: what stays is recorded as modgate's, held by nobody.
    let k = e
        .kernel()
        .fail_insert("ip_vs_wrr", libc::ENOEXEC)
        .fail_delete("ip_vs", libc::EBUSY);
    e.prestart(&k, "a", "ip_vs_wrr").expect_err("must fail");
    assert!(e.record_ids().is_empty());
    assert_eq!(e.owned(), ["ip_vs"]);
}

#[test]
fn a_module_in_use_is_left_and_gc_retries() {
    let e = Env::new("on-last-release");
    let k = e.kernel();
    e.prestart(&k, "a", "ip_vs_wrr").expect("a");
    // Something took a reference on ip_vs (a socket, an IPVS service).
    std::fs::write(e.root().join("sys/module/ip_vs/refcnt"), "1\n").expect("write");
    let m = e.root().join("sys/module");
    for (dep, user) in [("nf_conntrack", "ip_vs"), ("libcrc32c", "nf_conntrack")] {
        std::fs::create_dir_all(m.join(dep).join("holders").join(user)).expect("mkdir");
    }
    // libcrc32c's crypto transform: a count on crc32c_generic, no holder link.
    std::fs::write(m.join("crc32c_generic/refcnt"), "1\n").expect("write");
    let out = e.poststop(&k, "a").released.expect("released");
    assert_eq!(out.unloaded, ["ip_vs_wrr"]);
    let left: Vec<&str> = out.left.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(
        left,
        ["ip_vs", "nf_conntrack", "libcrc32c", "crc32c_generic"]
    );
    assert!(
        out.left[0].1.contains("reference count 1"),
        "{:?}",
        out.left
    );
    assert!(
        out.left[1].1.contains("used by module ip_vs"),
        "{:?}",
        out.left
    );
    assert_eq!(e.owned().len(), 4);

    // The reference went; removing the rest drops the others (the fake shows it now).
    std::fs::write(m.join("ip_vs/refcnt"), "0\n").expect("write");
    std::fs::write(m.join("crc32c_generic/refcnt"), "0\n").expect("write");
    let r = e.with_session(|s| {
        s.gc(
            &k,
            &Uncounted::new(&k, &no_aliases),
            &Alive::RuntimeDirs,
            modgate_core::policy::Unload::OnLastRelease,
            0,
            false,
        )
        .expect("gc")
    });
    assert_eq!(
        r.unloaded.removed,
        ["ip_vs", "nf_conntrack", "libcrc32c", "crc32c_generic"]
    );
    assert!(e.owned().is_empty());
}

#[test]
fn ownership_is_lost_when_someone_else_reloads_the_module() {
    let e = Env::new("on-last-release");
    let k = e.kernel();
    e.prestart(&k, "a", "dummy").expect("a");
    assert_eq!(e.owned(), ["dummy"]);
    // Removed and loaded again outside modgate: a new /sys/module/dummy.
    let m = e.root().join("sys/module");
    std::fs::rename(m.join("dummy"), m.join("old")).expect("mv");
    modgate_testkit::set_live(&e.root(), &["dummy"]);
    std::fs::remove_dir_all(m.join("old")).expect("rm");
    e.poststop(&k, "a");
    assert!(k.deleted().is_empty(), "{:?}", k.calls());
    assert!(e.owned().is_empty());
    assert!(live(&e.root()).contains("dummy"));
}

#[test]
fn a_hook_that_died_mid_load_is_recovered_by_the_next() {
    let e = Env::new("on-last-release");
    let k = e.kernel();
    // What a hook killed after inserting two of five modules leaves behind: its record,
    // still loading, and its entry in the pending list of each module it meant to insert.
    let dir = e.root().join("run/modgate/containers");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut dead = ContainerRecord::new("dead", RecordStage::Loading);
    dead.bundle = "/bundles/dead".into();
    dead.pending = SEED
        .iter()
        .map(|m| modgate_core::ModuleName::parse(m).expect("name"))
        .collect();
    let key = record_key("dead");
    std::fs::write(
        dir.join(format!("{key}.json")),
        dead.render().expect("render"),
    )
    .expect("write");
    for m in SEED {
        let d = e.root().join("run/modgate/modules").join(m).join("pending");
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(d.join(&key), "").expect("write");
    }
    std::fs::write(dir.join(format!(".{key}.json.tmp")), "{\"id\":").expect("write");
    modgate_testkit::set_live(&e.root(), &["crc32c_generic"]);
    modgate_testkit::set_live(&e.root(), &["libcrc32c"]);
    // Each insertion is in the record as soon as it returned.
    dead.progress = ["crc32c_generic", "libcrc32c"]
        .iter()
        .map(|m| Insertion {
            module: modgate_core::ModuleName::parse(m).expect("name"),
            instance: k.instance(m),
        })
        .collect();
    std::fs::write(
        dir.join(format!("{key}.json")),
        dead.render().expect("render"),
    )
    .expect("write");

    let b = e
        .prestart(&k, "b", "ip_vs_wrr")
        .expect("the next hook runs");
    assert_eq!(
        b.report.expect("report").inserted,
        ["nf_conntrack", "ip_vs", "ip_vs_wrr"]
    );
    assert_eq!(e.record_ids(), ["b"]);
    assert!(!dir.join(format!(".{key}.json.tmp")).exists());
    let st = e.with_session(|s| s.status());
    let libcrc = st
        .modules
        .iter()
        .find(|m| m.name == "libcrc32c")
        .expect("m");
    assert!(libcrc.owned && libcrc.loaded_by.as_deref() == Some("dead"));
    e.poststop(&k, "b");
    assert!(live(&e.root()).is_empty(), "everything was modgate's");
}

#[test]
fn a_corrupt_record_is_moved_aside_and_the_hook_continues() {
    let e = Env::new("on-last-release");
    let k = e.kernel();
    let dir = e.root().join("run/modgate");
    std::fs::create_dir_all(dir.join("containers")).expect("mkdir");
    // The container's own record, damaged: the hook sets it aside and starts afresh.
    let a = record_key("a");
    std::fs::write(
        dir.join(format!("containers/{a}.json")),
        "{\"id\": \"a\", \"stage\": 7}",
    )
    .expect("w");
    // Another container's: the hook does not read it; status sets it aside.
    let x = record_key("x");
    std::fs::write(dir.join(format!("containers/{x}.json")), "\0").expect("w");
    e.prestart(&k, "a", "dummy").expect("a");
    let aside = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir.join("corrupt"))
            .expect("corrupt/")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(aside().len(), 1);
    assert!(
        aside()[0].starts_with(&format!("{a}.json.")),
        "{:?}",
        aside()
    );
    assert_eq!(e.record_ids(), ["a"]);
    assert_eq!(aside().len(), 2);
    // A ledger entry too: without it modgate does not own the module, so removes nothing.
    std::fs::write(dir.join("modules/dummy/owned.json"), "[").expect("w");
    e.poststop(&k, "a");
    assert!(k.deleted().is_empty());
}

#[test]
fn gc_judges_by_runtime_state_directories_or_a_list() {
    let e = Env::new("on-last-release");
    let k = e.kernel();
    for id in ["r1", "r2"] {
        std::fs::create_dir_all(e.root().join("run/runc").join(id)).expect("mkdir");
    }
    e.prestart(&k, "r1", "dummy").expect("r1");
    e.prestart(&k, "r2", "dummy").expect("r2");
    e.prestart(&k, "other", "ip_vs").expect("other");
    std::fs::remove_dir(e.root().join("run/runc/r1")).expect("rm");
    let gc = |alive: Alive, grace: u64, dry: bool| {
        e.with_session(|s| {
            s.gc(
                &k,
                &Uncounted::new(&k, &no_aliases),
                &alive,
                modgate_core::policy::Unload::OnLastRelease,
                grace,
                dry,
            )
            .expect("gc")
        })
    };
    let r = gc(Alive::RuntimeDirs, 3_600_000, false);
    assert_eq!(r.too_young, ["r1"]);
    let r = gc(Alive::RuntimeDirs, 0, true);
    assert_eq!(
        (r.dropped.as_slice(), r.unknown.as_slice()),
        (&strs(&["r1"])[..], &strs(&["other"])[..])
    );
    assert!(r.unloaded.removed.is_empty(), "dummy is still held by r2");
    assert_eq!(
        e.record_ids(),
        ["other", "r1", "r2"],
        "a dry run changes nothing"
    );

    let r = gc(Alive::Listed(BTreeSet::from(["r2".to_string()])), 0, true);
    assert_eq!(r.dropped, ["other", "r1"]);
    assert_eq!(
        r.unloaded.removed,
        ["ip_vs", "nf_conntrack", "libcrc32c", "crc32c_generic"]
    );
    assert!(k.deleted().is_empty());

    let r = gc(Alive::Listed(BTreeSet::from(["r2".to_string()])), 0, false);
    assert_eq!(r.dropped, ["other", "r1"]);
    assert_eq!(
        k.deleted(),
        ["ip_vs", "nf_conntrack", "libcrc32c", "crc32c_generic"]
    );
    assert_eq!(e.record_ids(), ["r2"]);
    assert_eq!(e.owned(), ["dummy"]);
}

#[test]
fn unload_named_refuses_pre_existing_and_held_modules() {
    let e = Env::new("never");
    modgate_testkit::set_live(&e.root(), &["veth"]);
    let k = e.kernel();
    e.prestart(&k, "a", "dummy").expect("a");
    e.prestart(&k, "b", "ip_vs_wrr").expect("b");
    e.poststop(&k, "b");
    let closure = |n: &str| -> Vec<String> {
        match n {
            "ip_vs_wrr" => strs(&SEED),
            _ => vec![n.to_string()],
        }
    };
    let (ask, done) = e.with_session(|s| {
        s.unload_named(
            &k,
            &Uncounted::new(&k, &no_aliases),
            &["veth", "dummy", "ip_vs_wrr"],
            false,
            &closure,
        )
        .expect("unload")
    });
    assert_eq!(ask.refused.len(), 2);
    assert!(
        ask.refused[0].1.contains("modgate did not load it"),
        "{ask:?}"
    );
    assert!(ask.refused[1].1.contains("held by container a"), "{ask:?}");
    assert_eq!(
        done.removed,
        [
            "ip_vs_wrr",
            "ip_vs",
            "nf_conntrack",
            "libcrc32c",
            "crc32c_generic"
        ]
    );
    let (ask, done) = e.with_session(|s| {
        s.unload_named(
            &k,
            &Uncounted::new(&k, &no_aliases),
            &["dummy"],
            true,
            &closure,
        )
        .expect("unload")
    });
    assert_eq!(
        ask.warnings,
        ["removing module \"dummy\" that container a still holds"]
    );
    assert_eq!(done.removed, ["dummy"]);
    assert_eq!(live(&e.root()), BTreeSet::from(["veth".to_string()]));
}

#[test]
fn concurrent_hooks_leave_no_holder_and_exactly_the_pre_existing_modules() {
    let e = Env::new("on-last-release");
    let pre = ["crc32c_generic", "libcrc32c", "nf_conntrack"];
    for m in pre {
        modgate_testkit::set_live(&e.root(), &[m]);
    }
    let k = e.kernel();
    let mixes = [
        "ip_vs",
        "ip_vs_wrr",
        "ip_vs_rr,ip_vs",
        "nf_conntrack",
        "dummy",
        "ip_vs_wrr,ip_vs_rr",
        "dummy,nf_conntrack",
        "xzmod,ip_vs",
    ];
    std::thread::scope(|scope| {
        for i in 0..32 {
            let (e, k) = (&e, &k);
            let mix = mixes[i % mixes.len()];
            scope.spawn(move || {
                let id = format!("c{i}");
                let out = e.prestart(k, &id, mix).expect("prestart");
                std::thread::sleep(Duration::from_millis((i as u64 * 7) % 23));
                // What this container holds is still there while it runs.
                let now = live(&e.root());
                for m in &out.plan {
                    assert!(now.contains(m), "{id}: {m} removed while held");
                }
                e.poststop(k, &id);
            });
        }
    });
    assert!(e.record_ids().is_empty());
    assert!(e.owned().is_empty());
    assert_eq!(live(&e.root()), BTreeSet::from(pre.map(String::from)));
}

/// A FakeKernel whose insertion of one module blocks until the test lets it go: a
/// module whose init is slow (firmware, hardware probing).
struct SlowFakeKernel {
    kernel: FakeKernel,
    slow: &'static str,
    entered: std::sync::mpsc::SyncSender<()>,
    release: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl ModuleSyscalls for SlowFakeKernel {
    fn finit_module(
        &self,
        module: &str,
        file: &std::fs::File,
        params: &std::ffi::CStr,
        flags: u32,
    ) -> std::io::Result<()> {
        if module == self.slow {
            self.entered.send(()).expect("test waiting");
            let rx = self.release.lock().expect("lock");
            rx.recv().expect("test lets go");
        }
        self.kernel.finit_module(module, file, params, flags)
    }

    fn init_module(
        &self,
        module: &str,
        image: &[u8],
        params: &std::ffi::CStr,
    ) -> std::io::Result<()> {
        self.kernel.init_module(module, image, params)
    }

    fn delete_module(&self, name: &std::ffi::CStr) -> std::io::Result<()> {
        self.kernel.delete_module(name)
    }
}

#[test]
fn a_slow_module_init_does_not_hold_up_containers_that_need_other_modules() {
    let e = Env::new("on-last-release");
    let (entered, in_init) = std::sync::mpsc::sync_channel(1);
    let (let_go, release) = std::sync::mpsc::channel();
    let slow = SlowFakeKernel {
        kernel: e.kernel(),
        slow: "dummy",
        entered,
        release: std::sync::Mutex::new(release),
    };
    let (e, slow) = (&e, &slow);
    std::thread::scope(|scope| {
        let a = scope.spawn(move || e.prestart_with(slow, "a", "dummy").map(|o| o.plan));
        in_init
            .recv_timeout(Duration::from_secs(60))
            .expect("a reaches dummy's init");
        // While a's hook waits in dummy's init, b needs other modules: it completes.
        let (done, b_done) = std::sync::mpsc::channel();
        let k = e.kernel();
        let b = scope.spawn(move || {
            let r = e.prestart(&k, "b", "ip_vs").map(|o| o.plan);
            done.send(()).expect("send");
            r
        });
        // Without a deadlock there is no wait here; the limit only stops a hung test.
        let finished = b_done.recv_timeout(Duration::from_secs(60)).is_ok();
        let_go.send(()).expect("let a go");
        assert!(finished, "b waited for a's slow module");
        let b = b.join().expect("b").expect("b prestart");
        assert_eq!(b, ["crc32c_generic", "libcrc32c", "nf_conntrack", "ip_vs"]);
        assert_eq!(a.join().expect("a").expect("a prestart"), ["dummy"]);
    });
    assert_eq!(e.record_ids(), ["a", "b"]);
    assert!(live(&e.root()).contains("dummy"));
}

#[test]
fn a_poststop_from_another_bundle_releases_nothing() {
    let e = Env::new("on-last-release");
    let k = e.kernel();
    e.prestart(&k, "c1", "dummy").expect("c1");
    let mut outcome = Outcome::default();
    let other = Identity {
        id: "c1",
        bundle: "/run/containerd/io.containerd.runtime.v2.task/other/c1",
    };
    pipeline::release(&e.host(), &k, &k, other, &mut outcome).expect("release");
    assert_eq!(outcome.decision, "released (held nothing)");
    assert!(k.deleted().is_empty(), "{:?}", k.calls());
    assert_eq!(e.record_ids(), ["c1"]);
    // A prestart of the same id from that bundle is refused while c1 runs.
    let config =
        ConfigView::parse(br#"{"process":{"env":["KERNEL_MODULES=dummy"]}}"#).expect("config");
    let request = config.request().expect("request");
    let names: Vec<&str> = request.names().iter().map(|n| n.as_str()).collect();
    let holder = Holder {
        id: "c1",
        bundle: other.bundle,
        stage: "prestart",
    };
    let err = pipeline::admit_and_load(
        &e.host(),
        &k,
        &names,
        &BTreeMap::new(),
        Some(holder),
        &mut Outcome::default(),
    )
    .expect_err("refused");
    let line = modgate_core::error_line(&err);
    assert!(
        line.contains("is already recorded for bundle /bundles/c1"),
        "{line}"
    );
    // Its own poststop still releases it.
    e.poststop(&k, "c1");
    assert_eq!(k.deleted(), ["dummy"]);
}

/// The load error behind a pipeline's.
fn load_error(e: &AdmitError) -> &LoadError {
    match e {
        AdmitError::Load(l) => l,
        other => panic!("not a load error: {other}"),
    }
}

/// Runs a prestart of the seed request whose insertion of `slow` blocks until the
/// test lets it go; `meanwhile` runs once the hook is in that insertion.
fn with_slow_insertion<T>(
    e: &Env,
    slow: &'static str,
    budget: &Arc<Deadline>,
    meanwhile: impl FnOnce(&SlowFakeKernel) -> T,
) -> (T, Result<Outcome, AdmitError>) {
    let (entered, in_init) = std::sync::mpsc::sync_channel(1);
    let (let_go, release) = std::sync::mpsc::channel();
    let k = SlowFakeKernel {
        kernel: e.kernel(),
        slow,
        entered,
        release: std::sync::Mutex::new(release),
    };
    let host = e.host_under(budget, Duration::from_secs(60));
    std::thread::scope(|scope| {
        let k = &k;
        let hook = scope.spawn(move || e.prestart_under(k, "a", SEED_REQUEST, host));
        in_init
            .recv_timeout(Duration::from_secs(60))
            .expect("the hook reaches the slow insertion");
        let out = meanwhile(k);
        let_go.send(()).expect("let go");
        (out, hook.join().expect("hook"))
    })
}

#[test]
fn a_load_past_its_budget_between_insertions_leaves_nothing_inserted() {
    let e = Env::new("never");
    let budget = Arc::new(Deadline::after(Duration::from_millis(300)));
    // nf_conntrack's init outlasts the budget; it returns, then the load must stop.
    let ((), r) = with_slow_insertion(&e, "nf_conntrack", &budget, |_| {
        std::thread::sleep(budget.remaining() + Duration::from_millis(50));
    });
    let err = r.expect_err("past its budget");
    let line = modgate_core::error_line(&err);
    assert!(
        line.contains("rolled back [\"nf_conntrack\", \"libcrc32c\", \"crc32c_generic\"]"),
        "{line}"
    );
    assert!(
        line.contains("ran past its budget of 300ms before inserting module \"ip_vs\""),
        "{line}"
    );
    assert!(matches!(
        load_error(&err),
        LoadError::RolledBack { left, .. } if left.is_empty()
    ));
    assert!(live(&e.root()).is_empty(), "{:?}", live(&e.root()));
    assert!(e.record_ids().is_empty());
    assert!(e.owned().is_empty());
}

#[test]
fn a_slow_insertion_returning_within_the_grace_is_rolled_back_with_the_rest() {
    let e = Env::new("never");
    let budget =
        Arc::new(Deadline::after(Duration::from_millis(300)).with_grace(Duration::from_secs(30)));
    // ip_vs's init outlasts the budget but returns within the grace: the watchdog lets
    // the loader stop by itself, and ip_vs goes with the rest.
    let (watcher, r) = with_slow_insertion(&e, "ip_vs", &budget, |_| {
        let watcher = {
            let (b, k) = (Arc::clone(&budget), e.kernel());
            std::thread::spawn(move || matches!(b.watch(&k), Watch::Passed))
        };
        std::thread::sleep(budget.remaining() + Duration::from_millis(50));
        watcher
    });
    assert!(
        watcher.join().expect("watcher"),
        "the watchdog took the load over"
    );
    let err = r.expect_err("past its budget");
    let line = modgate_core::error_line(&err);
    assert!(
        line.contains(
            "rolled back [\"ip_vs\", \"nf_conntrack\", \"libcrc32c\", \"crc32c_generic\"]"
        ),
        "{line}"
    );
    assert!(live(&e.root()).is_empty(), "{:?}", live(&e.root()));
    assert!(e.record_ids().is_empty());
    assert!(e.owned().is_empty());
}

#[test]
fn an_insertion_stuck_past_the_budget_is_taken_over_and_the_rest_rolled_back() {
    let e = Env::new("never");
    let budget = Arc::new(Deadline::after(Duration::from_millis(300)));
    let (taken, r) = with_slow_insertion(&e, "ip_vs", &budget, |k| {
        // What the hook's watchdog does while the loader is stuck in ip_vs's insertion.
        match budget.watch(k) {
            Watch::TakenOver(err, held) => {
                // Until the watchdog lets go (the hook exits holding it), the stuck
                // insertion cannot go on, even when it returns.
                let now = live(&e.root());
                drop(held);
                (modgate_core::error_line(&err), now)
            }
            Watch::Finished => panic!("the load finished"),
            Watch::Passed => panic!("the watchdog saw no insertion in flight"),
        }
    });
    let (line, at_takeover) = taken;
    assert!(
        line.contains("rolled back [\"nf_conntrack\", \"libcrc32c\", \"crc32c_generic\"]"),
        "{line}"
    );
    assert!(
        line.contains("while the kernel was still inserting module \"ip_vs\""),
        "{line}"
    );
    assert!(at_takeover.is_empty(), "{at_takeover:?}");
    // The stuck insertion returned after all (in a test, where the process goes on): it
    // is removed too, and the load ends without a record.
    let err = r.expect_err("stopped");
    assert!(
        matches!(load_error(&err), LoadError::TakenOver { module, left } if module == "ip_vs" && left.is_empty()),
        "{err}"
    );
    assert!(live(&e.root()).is_empty(), "{:?}", live(&e.root()));
    assert!(e.record_ids().is_empty());
    assert!(e.owned().is_empty());
}

#[test]
fn the_wait_for_a_coming_module_ends_before_the_budget_and_rolls_back() {
    let e = Env::new("never");
    let k = e.kernel();
    // Another process is loading ip_vs, and never finishes.
    k.set_state("ip_vs", "coming");
    let budget = Arc::new(Deadline::after(Duration::from_millis(400)));
    // As the hook had it: a wait as long as the whole timeout.
    let host = e.host_under(&budget, Duration::from_secs(20));
    let start = Instant::now();
    let err = e
        .prestart_under(&k, "a", "ip_vs_wrr", host)
        .expect_err("ip_vs never comes");
    let took = start.elapsed();
    assert!(took < Duration::from_secs(2), "waited {took:?}");
    let line = modgate_core::error_line(&err);
    assert!(
        line.contains("rolled back [\"nf_conntrack\", \"libcrc32c\", \"crc32c_generic\"]"),
        "{line}"
    );
    assert!(
        line.contains(
            "ran past its budget of 400ms while another process was still loading module \"ip_vs\""
        ),
        "{line}"
    );
    assert_eq!(k.deleted(), ["nf_conntrack", "libcrc32c", "crc32c_generic"]);
    assert_eq!(
        live(&e.root()),
        BTreeSet::from(["ip_vs".to_string()]),
        "only ip_vs, still coming"
    );
    assert!(e.record_ids().is_empty());
}
