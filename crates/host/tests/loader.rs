//! The loader against the fixture root with a recording fake kernel (unit-level: no real
//! kernel here; the VM suite loads for real).

use std::path::Path;
use std::time::Duration;

use modgate_host::context::Context;
use modgate_host::kernel::ModuleSyscalls;
use modgate_host::kernel::Sysfs;
use modgate_host::loader::{Deadline, LoadError, Loader};
use modgate_host::root::Root;
use modgate_testkit::{Call, RecordingSyscalls, FIXTURE_RELEASE, SEED_CLOSURE};

fn fixture_copy() -> tempfile::TempDir {
    let dst = tempfile::tempdir().expect("tempdir");
    modgate_testkit::fixture_root(dst.path(), &[]);
    dst
}

fn run(
    root: &Path,
    names: &[&str],
    fake: &RecordingSyscalls,
) -> Result<modgate_host::loader::LoadReport, LoadError> {
    run_under(root, names, fake, None)
}

fn run_under(
    root: &Path,
    names: &[&str],
    fake: &dyn ModuleSyscalls,
    deadline: Option<&Deadline>,
) -> Result<modgate_host::loader::LoadReport, LoadError> {
    let ctx = Context::open(Root::new(root), FIXTURE_RELEASE.into(), &[]).expect("open");
    let kernel = Sysfs { root: &ctx.root };
    let plan = ctx.plan(names, &kernel).expect("plan");
    let loader = Loader {
        root: &ctx.root,
        kernel: &kernel,
        syscalls: fake,
        moddir: &ctx.dir.dir,
        dirname: &ctx.dir.dirname,
        coming_wait: Duration::from_millis(50),
        images: None,
        deadline,
    };
    loader.load(&plan, &mut |_| Ok(()))
}

fn inserted(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter_map(|c| match c {
            Call::Finit { name, .. } | Call::Init { name, .. } => Some(name.clone()),
            Call::Delete { .. } => None,
        })
        .collect()
}

#[test]
fn loads_in_order_with_options() {
    let t = fixture_copy();
    let fake = RecordingSyscalls::default();
    let report = run(t.path(), &["ip_vs_wrr"], &fake).expect("load");
    let calls = fake.calls();
    assert_eq!(inserted(&calls), SEED_CLOSURE);
    assert!(calls.contains(&Call::Finit {
        name: "ip_vs".into(),
        params: "conn_tab_bits=12".into(),
        flags: 0
    }));
    assert!(calls.contains(&Call::Finit {
        name: "ip_vs_wrr".into(),
        params: "weight=2".into(),
        flags: 0
    }));
    assert_eq!(report.inserted.len(), 5);
}

#[test]
fn a_failure_rolls_back_only_what_this_request_inserted() {
    let t = fixture_copy();
    modgate_testkit::set_live(t.path(), &["nf_conntrack"]);
    let fake = RecordingSyscalls {
        fail_insert: vec![("ip_vs_wrr".into(), libc::ENOENT)],
        ..Default::default()
    };
    let err = run(t.path(), &["ip_vs_wrr"], &fake).expect_err("must fail");
    // The message says what the rollback did; its cause says why, printed once.
    let msg = modgate_core::error_line(&err);
    assert!(msg.contains("unknown symbol"), "{msg}");
    assert_eq!(msg.matches("unknown symbol").count(), 1, "{msg}");
    assert!(msg.starts_with("load failed, rolled back"), "{msg}");
    let deletes: Vec<String> = fake
        .calls()
        .into_iter()
        .filter_map(|c| {
            if let Call::Delete { name } = c {
                Some(name)
            } else {
                None
            }
        })
        .collect();
    // nf_conntrack was live before: never touched.
    assert_eq!(deletes, ["ip_vs", "libcrc32c", "crc32c_generic"]);
    assert!(matches!(err, LoadError::RolledBack { .. }));
}

#[test]
fn optional_softdep_failure_does_not_fail_the_request() {
    let t = fixture_copy();
    let fake = RecordingSyscalls {
        fail_insert: vec![("crc32c_generic".into(), libc::ENODEV)],
        ..Default::default()
    };
    let report = run(t.path(), &["libcrc32c"], &fake).expect("load");
    assert_eq!(report.inserted, ["libcrc32c"]);
    assert_eq!(report.skipped.len(), 1);
}

#[test]
fn eexist_counts_as_present_not_inserted() {
    let t = fixture_copy();
    let fake = RecordingSyscalls {
        fail_insert: vec![("dummy".into(), libc::EEXIST)],
        ..Default::default()
    };
    let report = run(t.path(), &["dummy"], &fake).expect("load");
    assert!(report.inserted.is_empty());
    assert_eq!(report.present, ["dummy"]);
}

#[test]
fn compressed_module_is_decompressed_in_process() {
    let t = fixture_copy();
    let fake = RecordingSyscalls::default();
    run(t.path(), &["xzmod"], &fake).expect("load");
    let want = "\x7fELF fixture module xzmod, compressed\n".len();
    assert_eq!(
        fake.calls(),
        [Call::Init {
            name: "xzmod".into(),
            len: want,
            params: String::new()
        }]
    );
}

#[test]
fn kernel_side_decompression_when_the_kernel_supports_it() {
    let t = fixture_copy();
    std::fs::create_dir_all(t.path().join("sys/module")).expect("mkdir");
    std::fs::write(t.path().join("sys/module/compression"), "xz\n").expect("write");
    let fake = RecordingSyscalls::default();
    run(t.path(), &["xzmod"], &fake).expect("load");
    assert_eq!(
        fake.calls(),
        [Call::Finit {
            name: "xzmod".into(),
            params: String::new(),
            flags: 4
        }]
    );
}

#[test]
fn no_module_support_is_reported_before_any_syscall() {
    let t = fixture_copy();
    std::fs::remove_file(t.path().join("proc/modules")).expect("rm");
    let fake = RecordingSyscalls::default();
    let err = run(t.path(), &["dummy"], &fake).expect_err("must fail");
    assert!(format!("{err}").contains("no loadable module support"));
    assert!(fake.calls().is_empty());
}

#[test]
fn install_command_disables_a_module() {
    let t = fixture_copy();
    let fake = RecordingSyscalls::default();
    let err = run(t.path(), &["cramfs"], &fake).expect_err("must fail");
    assert!(
        format!("{err}").contains("disabled by install command in"),
        "{err}"
    );
    assert!(fake.calls().is_empty());
}

#[test]
fn all_live_means_no_syscalls() {
    let t = fixture_copy();
    for m in SEED_CLOSURE {
        modgate_testkit::set_live(t.path(), &[m]);
    }
    std::fs::remove_file(t.path().join("proc/modules")).expect("rm");
    let fake = RecordingSyscalls::default();
    let report = run(t.path(), &["ip_vs_wrr"], &fake).expect("load");
    assert!(fake.calls().is_empty());
    assert_eq!(report.present.len(), 5);
}
