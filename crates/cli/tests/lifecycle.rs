//! The lifecycle commands end to end (`hook prestart`/`poststop`, `status`, `gc`,
//! `unload`) against a copy of the fixture root in which every requested module is
//! already live. Nothing here may reach delete_module(2): this host's kernel is real,
//! so no test leaves a module that modgate owns and nobody holds under
//! `unload = "on-last-release"`; the removals themselves are tested in
//! crates/host/tests/lifecycle.rs with a fake kernel and in the VM suite for real.

use std::process::Output;

use modgate_testkit::{TestEnv, SEED_CLOSURE as SEED, SEED_REQUEST};

/// The fixture root with the seed's closure and dummy live, under this unload policy.
fn env(unload: &str) -> TestEnv {
    let live: Vec<&str> = SEED.iter().copied().chain(["dummy"]).collect();
    let e = TestEnv::new(env!("CARGO_BIN_EXE_modgate"), &live);
    e.policy(&format!("mode = \"permissive\"\nunload = \"{unload}\"\n"));
    e
}

/// `modgate hook STAGE` for `id`, logged, which must succeed.
fn hook_ok(e: &TestEnv, stage: &str, id: &str) -> Output {
    let o = e.hook_logged(stage, id);
    assert!(o.status.success(), "{stage} {id}: {}", text(&o.stderr));
    o
}

fn status(e: &TestEnv) -> serde_json::Value {
    let o = e.modgate(&["status", "--json"], "");
    assert!(o.status.success(), "{}", text(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("status is JSON")
}

/// Marks modules as modgate's, as if a hook had inserted them.
fn own(e: &TestEnv, modules: &[&str]) {
    for (i, m) in modules.iter().enumerate() {
        let d = e.store().join("modules").join(m);
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(
            d.join("owned.json"),
            format!(r#"{{"loaded_at":1700000000000,"by":"c0","seq":{}}}"#, i + 1),
        )
        .expect("ledger entry");
    }
    std::fs::write(e.store().join("seq"), format!("{}\n", modules.len())).expect("seq");
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn prestart_records_holders_and_poststop_releases_them() {
    let e = env("on-last-release");
    e.request("c1", SEED_REQUEST);
    e.request("c2", "dummy");
    hook_ok(&e, "prestart", "c1");
    hook_ok(&e, "createRuntime", "c2");
    let s = status(&e);
    let ip_vs = &s["modules"][2];
    assert_eq!(
        ip_vs,
        &serde_json::json!({"name":"ip_vs","owned":false,"live":true,"holders":["c1"]})
    );
    assert_eq!(s["modules"].as_array().expect("list").len(), 6);
    assert_eq!(s["containers"][0]["id"], "c1");
    assert_eq!(
        s["containers"][0]["holds"],
        serde_json::json!([
            "crc32c_generic",
            "libcrc32c",
            "nf_conntrack",
            "ip_vs",
            "ip_vs_wrr"
        ])
    );
    assert_eq!(s["containers"][1]["stage"], "holding");
    assert!(s["containers"][1]["times"]["createRuntime"].is_string());

    let o = e.modgate(&["status"], "");
    let table = text(&o.stdout);
    assert!(
        table.contains("ip_vs_wrr       pre-existing  yes   c1"),
        "{table}"
    );
    assert!(table.contains("c2         holding"), "{table}");

    hook_ok(&e, "poststop", "c1");
    hook_ok(&e, "poststop", "c2");
    let s = status(&e);
    assert_eq!(s["containers"], serde_json::json!([]));
    assert_eq!(
        s["modules"],
        serde_json::json!([]),
        "pre-existing modules are not tracked once nobody holds them"
    );
    let log = e.log();
    assert!(
        log.contains("container=c1 stage=poststop") && log.contains("decision=released"),
        "{log}"
    );
}

#[test]
fn poststop_without_a_record_touches_nothing() {
    let e = env("on-last-release");
    // No bundle at all: poststop needs only the id.
    let o = e.modgate(
        &["hook", "poststop"],
        r#"{"id":"never-asked","bundle":"/nonexistent/bundle"}"#,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(o.stdout.is_empty() && o.stderr.is_empty());
    assert!(!e.store().exists(), "the fast path creates no state");
}

#[test]
fn ownership_survives_the_container_that_inserted_it() {
    let e = env("never");
    own(&e, &["ip_vs", "ip_vs_wrr"]);
    e.request("c1", "ip_vs_wrr");
    e.request("c2", "ip_vs_wrr");
    hook_ok(&e, "prestart", "c1");
    hook_ok(&e, "prestart", "c2");
    hook_ok(&e, "poststop", "c1");
    let s = status(&e);
    let ip_vs = s["modules"]
        .as_array()
        .expect("list")
        .iter()
        .find(|m| m["name"] == "ip_vs")
        .expect("ip_vs");
    assert_eq!(ip_vs["owned"], true);
    assert_eq!(ip_vs["loaded_by"], "c0");
    assert_eq!(ip_vs["holders"], serde_json::json!(["c2"]));
    hook_ok(&e, "poststop", "c2");
    // unload = "never": still there, still modgate's, held by nobody.
    let s = status(&e);
    let mods = s["modules"].as_array().expect("list");
    assert_eq!(mods.len(), 2);
    assert!(mods
        .iter()
        .all(|m| m["owned"] == true && m["holders"] == serde_json::json!([])));
}

#[test]
fn a_corrupt_record_is_logged_and_moved_aside() {
    let e = env("never");
    std::fs::create_dir_all(e.store().join("containers")).expect("mkdir");
    // The container's own record, damaged.
    let bad = format!("containers/{}.json", modgate_core::record::record_key("c1"));
    std::fs::write(e.store().join(&bad), "{\"id\":").expect("write");
    e.request("c1", "dummy");
    hook_ok(&e, "prestart", "c1");
    let log = e.log();
    assert!(log.contains(".json is damaged"), "{log}");
    let aside = std::fs::read_dir(e.store().join("corrupt"))
        .expect("corrupt/")
        .count();
    assert_eq!(aside, 1);

    // status says so on stderr and carries on.
    let worse = format!("containers/{}.json", modgate_core::record::record_key("c9"));
    std::fs::write(e.store().join(&worse), "\0").expect("write");
    let o = e.modgate(&["status", "--json"], "");
    assert!(o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.starts_with("modgate: warning: state store: ")
            && err.contains(&format!("{worse} is damaged")),
        "{err}"
    );
    assert_eq!(status(&e)["containers"][0]["id"], "c1");
}

#[test]
fn gc_drops_records_of_gone_containers() {
    let e = env("on-last-release");
    std::fs::create_dir_all(e.root().join("run/runc/r1")).expect("mkdir");
    std::fs::create_dir_all(e.root().join("run/crun/r2")).expect("mkdir");
    for id in ["r1", "r2", "x"] {
        e.request(id, "dummy");
        hook_ok(&e, "prestart", id);
    }
    std::fs::remove_dir(e.root().join("run/runc/r1")).expect("rm");

    let o = e.modgate(&["gc", "--dry-run"], "");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("kept the record of r1: written in the last 30 s"),
        "{out}"
    );
    assert!(
        out.contains("kept the record of x: cannot tell whether it is alive"),
        "{out}"
    );

    let o = e.modgate(&["gc", "--dry-run", "--grace", "0"], "");
    assert!(text(&o.stdout).contains("would drop the record of r1: container gone"));
    assert_eq!(status(&e)["containers"].as_array().expect("list").len(), 3);

    let ids = e.dir().join("alive");
    std::fs::write(&ids, "r2\n\n").expect("write");
    let o = e.modgate(
        &[
            "gc",
            "--grace",
            "0",
            "--alive-ids",
            &ids.display().to_string(),
        ],
        "",
    );
    let out = text(&o.stdout);
    assert!(
        out.contains("dropped the record of r1") && out.contains("dropped the record of x"),
        "{out}"
    );
    let s = status(&e);
    assert_eq!(s["containers"][0]["id"], "r2");
    assert_eq!(s["containers"].as_array().expect("list").len(), 1);

    let o = e.modgate(&["gc", "--grace", "0", "--alive-ids", "-"], "");
    assert!(text(&o.stdout).contains("dropped the record of r2"));
    assert_eq!(status(&e)["containers"], serde_json::json!([]));

    let o = e.modgate(&["gc", "--alive-ids", "/nonexistent/ids"], "");
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("cannot read the live container ids from /nonexistent/ids"));
}

#[test]
fn gc_under_never_keeps_unheld_modules_and_says_so() {
    let e = env("never");
    own(&e, &["dummy"]);
    let o = e.modgate(&["gc"], "");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains(
            "kept dummy: loaded by modgate, held by nobody; the policy says unload = \"never\""
        ),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn unload_refuses_what_modgate_must_not_remove() {
    let e = env("never");
    own(&e, &["ip_vs", "ip_vs_wrr"]);
    e.request("c1", "ip_vs_wrr");
    hook_ok(&e, "prestart", "c1");
    let o = e.modgate(&["unload", "nf_conntrack", "ip-vs", "veth"], "");
    assert!(!o.status.success());
    let err = text(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines[0]
            .contains("\"nf_conntrack\" not unloaded: modgate did not load it (it was live before"),
        "{err}"
    );
    assert!(
        lines[1].contains("\"ip_vs\" not unloaded: held by container c1 (give --force"),
        "{err}"
    );
    assert!(
        lines[2]
            .contains("\"veth\" not unloaded: modgate did not load it and no container holds it"),
        "{err}"
    );
    let o = e.modgate(&["unload", "../x"], "");
    assert!(text(&o.stderr).contains("invalid module name \"../x\""));
}

#[test]
fn ids_past_the_limit_are_refused_and_long_ones_work_end_to_end() {
    let e = env("never");
    let b = e.request("long", "dummy");
    let state = |id: &str| {
        format!(
            r#"{{"ociVersion":"1.0.2","id":"{id}","status":"creating","bundle":"{}"}}"#,
            b.display()
        )
    };
    let too_long = "x".repeat(1025);
    let o = e.hook(&["prestart"], &state(&too_long));
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("container id is 1025 bytes long, more than 1024"),
        "{err}"
    );
    // Two ids of the limit's length that differ only at the end: two records.
    let a = format!("{}a", "y".repeat(1023));
    let z = format!("{}z", "y".repeat(1023));
    for id in [&a, &z] {
        let o = e.hook(&["prestart"], &state(id));
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    let o = e.modgate(&["status"], "");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let s = status(&e);
    assert_eq!(s["containers"].as_array().expect("list").len(), 2);
    let o = e.hook(&["poststop"], &state(&a));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let s = status(&e);
    assert_eq!(s["containers"][0]["id"], z.as_str());
    assert_eq!(s["containers"].as_array().expect("list").len(), 1);
}

/// Metric families: name → (type, samples as `name{labels}` and value).
type Families = std::collections::BTreeMap<String, (String, Vec<(String, u64)>)>;

/// `status --format prometheus`, parsed and checked against the text format.
fn prometheus(e: &TestEnv) -> Families {
    let o = e.modgate(&["status", "--format", "prometheus"], "");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut out = std::collections::BTreeMap::new();
    let mut help = std::collections::BTreeSet::new();
    for line in text(&o.stdout).lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, doc) = rest.split_once(' ').expect("help text");
            assert!(!doc.is_empty());
            help.insert(name.to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("type");
            assert!(help.contains(name), "HELP before TYPE: {name}");
            assert!(["counter", "gauge"].contains(&kind), "{line}");
            out.insert(name.to_string(), (kind.to_string(), Vec::new()));
        } else {
            let (sample, value) = line.rsplit_once(' ').expect("sample value");
            let name = sample.split('{').next().expect("name");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit()),
                "{line}"
            );
            if sample.contains('{') {
                assert!(sample.ends_with("\"}") && sample.contains("=\""), "{line}");
            }
            let fam = out.get_mut(name).expect("sample after its TYPE");
            if fam.0 == "counter" {
                assert!(name.ends_with("_total"), "{line}");
            }
            fam.1
                .push((sample.to_string(), value.parse().expect("integer value")));
        }
    }
    out
}

fn sample(m: &Families, s: &str) -> u64 {
    let name = s.split('{').next().expect("name");
    m[name]
        .1
        .iter()
        .find(|(k, _)| k == s)
        .unwrap_or_else(|| panic!("no sample {s}"))
        .1
}

#[test]
fn status_in_the_prometheus_format_and_its_counters_move() {
    let e = env("never");
    let m = prometheus(&e);
    assert_eq!(sample(&m, "modgate_requests_allowed_total"), 0);
    assert_eq!(sample(&m, "modgate_container_records"), 0);
    assert_eq!(m["modgate_modules_held"].0, "gauge");
    e.request("c1", SEED_REQUEST);
    e.request("c2", "dummy");
    hook_ok(&e, "prestart", "c1");
    hook_ok(&e, "prestart", "c2");
    e.policy("mode = \"permissive\"\ndeny = [\"ip_vs\"]\n");
    e.request("c3", "ip_vs");
    let o = e.hook_logged("prestart", "c3");
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("denied"), "{}", text(&o.stderr));
    let m = prometheus(&e);
    assert_eq!(sample(&m, "modgate_requests_allowed_total"), 2);
    assert_eq!(
        sample(&m, "modgate_requests_refused_total{reason=\"policy\"}"),
        1
    );
    assert_eq!(
        sample(&m, "modgate_requests_refused_total{reason=\"load\"}"),
        0
    );
    assert_eq!(sample(&m, "modgate_container_records"), 2);
    assert_eq!(sample(&m, "modgate_modules_held"), 6);
    assert_eq!(
        sample(&m, "modgate_modules_inserted_total"),
        0,
        "all were live"
    );
    for f in [
        "modgate_modules_owned",
        "modgate_modules_unloaded_total",
        "modgate_recoveries_total",
    ] {
        assert!(m.contains_key(f), "{f}");
    }
    // Refused before any decision: a request that is not one.
    e.request("c4", "../x");
    assert!(!e.hook_logged("prestart", "c4").status.success());
    let m = prometheus(&e);
    assert_eq!(
        sample(&m, "modgate_requests_refused_total{reason=\"request\"}"),
        1
    );
    assert_eq!(
        sample(&m, "modgate_requests_refused_total{reason=\"policy\"}"),
        1
    );
    hook_ok(&e, "poststop", "c1");
    assert_eq!(sample(&prometheus(&e), "modgate_container_records"), 1);
}
