//! The policy's integrity keys on the load path, against a copy of the fixture root with
//! a recording fake kernel: checked modules go to `init_module` as the checked bytes, a
//! refusal anywhere in the closure inserts nothing, and without integrity keys the files
//! go to `finit_module` as before. (Signatures on real modules: the VM suite.)

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use modgate_host::integrity::IntegrityError;
use modgate_host::pipeline::{self, AdmitError, Host, Outcome};
use modgate_host::root::Root;
use modgate_integrity::Sha256Pin;
use modgate_testkit::{Call, RecordingSyscalls, FIXTURE_RELEASE, SEED_CLOSURE};

const WRR: &str = "lib/modules/6.1.0-fixture/kernel/net/netfilter/ipvs/ip_vs_wrr.ko";

fn setup(policy: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    modgate_testkit::fixture_root(dir.path(), &[]);
    std::fs::create_dir_all(dir.path().join("etc/modgate")).expect("mkdir");
    std::fs::write(
        dir.path().join("etc/modgate/policy.toml"),
        format!("mode = \"permissive\"\n{policy}"),
    )
    .expect("policy");
    dir
}

fn load(root: &Path, fake: &RecordingSyscalls) -> (Result<(), AdmitError>, Outcome) {
    let host = Host {
        root: Root::new(root),
        release: Some(FIXTURE_RELEASE.into()),
        config_dirs: Vec::new(),
        policy: None,
        coming_wait: Duration::from_millis(100),
        deadline: None,
    };
    let mut outcome = Outcome::default();
    let r = pipeline::admit_and_load(
        &host,
        fake,
        &["ip_vs_wrr"],
        &BTreeMap::new(),
        None,
        &mut outcome,
    );
    (r, outcome)
}

fn pin_of(root: &Path, rel: &str) -> Sha256Pin {
    Sha256Pin::of(&std::fs::read(root.join(rel)).expect("read"))
}

#[test]
fn a_matching_pin_loads_the_checked_bytes_with_init_module() {
    let probe = setup("");
    let pin = pin_of(probe.path(), WRR);
    let t = setup(&format!("[pins]\nip_vs_wrr = \"{pin}\"\n"));
    let fake = RecordingSyscalls::default();
    let (r, outcome) = load(t.path(), &fake);
    r.expect("load");
    assert_eq!(outcome.decision, "allowed");
    let calls = fake.calls();
    let inits: Vec<(String, usize)> = calls
        .iter()
        .filter_map(|c| match c {
            Call::Init { name, len, .. } => Some((name.clone(), *len)),
            _ => None,
        })
        .collect();
    assert_eq!(inits.len(), calls.len(), "no finit_module: {calls:?}");
    let names: Vec<&str> = inits.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, SEED_CLOSURE);
    let wrr_len = std::fs::metadata(t.path().join(WRR)).expect("stat").len() as usize;
    assert!(inits.contains(&("ip_vs_wrr".to_string(), wrr_len)));
}

#[test]
fn one_refusal_in_the_closure_inserts_nothing() {
    let other = Sha256Pin::of(b"some other build");
    let t = setup(&format!("[pins]\nip_vs_wrr = \"{other}\"\n"));
    let fake = RecordingSyscalls::default();
    let (r, outcome) = load(t.path(), &fake);
    let e = r.expect_err("refused");
    let text = e.to_string();
    assert!(
        matches!(e, AdmitError::Integrity(IntegrityError::Refused { ref module, .. }) if module == "ip_vs_wrr"),
        "{text}"
    );
    assert!(
        text.starts_with("module \"ip_vs_wrr\" refused by policy "),
        "{text}"
    );
    assert!(
        text.contains(&format!("does not match its pin {other}")),
        "{text}"
    );
    assert_eq!(outcome.decision, "refused");
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
}

#[test]
fn vermagic_match_refuses_a_module_without_modinfo() {
    // The fixture's modules are not ELF files: no vermagic to compare.
    let t = setup("vermagic = \"match\"\n");
    let fake = RecordingSyscalls::default();
    let (r, _) = load(t.path(), &fake);
    let text = r.expect_err("refused").to_string();
    assert!(text.contains("no readable vermagic"), "{text}");
    assert!(fake.calls().is_empty());
}

#[test]
fn missing_trusted_certificates_are_an_error_before_any_load() {
    let t = setup("require_signature = true\ntrusted_certs = [\"/etc/modgate/certs\"]\n");
    let fake = RecordingSyscalls::default();
    let (r, _) = load(t.path(), &fake);
    let e = r.expect_err("no certs");
    assert!(e.to_string().contains("/etc/modgate/certs"), "{e}");
    assert!(fake.calls().is_empty());
}

#[test]
fn without_integrity_keys_the_files_go_to_finit_module() {
    let t = setup("");
    let fake = RecordingSyscalls::default();
    load(t.path(), &fake).0.expect("load");
    let calls = fake.calls();
    assert!(!calls.is_empty());
    assert!(
        calls.iter().all(|c| matches!(c, Call::Finit { .. })),
        "{calls:?}"
    );
}
