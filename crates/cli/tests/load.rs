//! `modgate load` end to end: the hook's pipeline without a container, against a copy of
//! the fixture root in which the requested modules are already live (this host's kernel
//! cannot load; the VM suite loads for real).

use modgate_testkit::{TestEnv, SEED_CLOSURE, SEED_REQUEST};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn load_goes_through_the_policy_and_records_nothing() {
    let e = TestEnv::new(env!("CARGO_BIN_EXE_modgate"), &SEED_CLOSURE);
    let names: Vec<&str> = SEED_REQUEST.split(',').collect();
    let mut args = vec!["load"];
    args.extend(&names);
    let o = e.modgate(&args, "");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    for m in SEED_CLOSURE {
        assert!(out.contains(&format!("already loaded {m}\n")), "{out}");
    }
    // No container: nothing held, nothing owned.
    assert!(
        !e.store().join("containers").exists() || {
            std::fs::read_dir(e.store().join("containers"))
                .expect("readdir")
                .next()
                .is_none()
        }
    );

    let o = e.modgate(&["load", "dccp"], "");
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("modgate: module \"dccp\" denied by policy"),
        "{err}"
    );
}

#[test]
fn plan_and_load_show_modprobe_configuration_warnings() {
    let e = TestEnv::new(env!("CARGO_BIN_EXE_modgate"), &["dummy"]);
    std::fs::write(
        e.root().join("etc/modprobe.d/broken.conf"),
        "frobnicate dummy\n",
    )
    .expect("write");
    for args in [&["load", "dummy"][..], &["plan", "dummy"][..]] {
        let o = e.modgate(args, "");
        assert!(o.status.success(), "{args:?}: {}", text(&o.stderr));
        let err = text(&o.stderr);
        assert!(
            err.contains("modgate: warning: modprobe configuration:")
                && err.contains("broken.conf line 1: ignoring bad line starting with 'frobnicate'"),
            "{args:?}: {err}"
        );
    }
}
