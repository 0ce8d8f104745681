//! iSulad: modgate's entries merged into an existing hook spec (first byte even), or
//! `hook-spec` set in an existing `daemon.json` (odd). A merge's output reparses, shows
//! modgate's hooks, and merging again changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modgate_fuzz::selector_and_text;
use modgate_host::engines::{isulad, HookCommand, STAGES};

const SPEC: &str = "/etc/modgate/isulad-hookspec.json";

fuzz_target!(|data: &[u8]| {
    let Some((sel, text)) = selector_and_text(data) else {
        return;
    };
    let _ = isulad::modgate_hooks(text, "spec");
    let _ = isulad::daemon_spec_path(text, "daemon.json");
    if sel & 1 == 0 {
        let hook = HookCommand::new("/usr/bin/modgate");
        let Ok(edit) = isulad::merge(Some(text), &hook, "spec") else {
            return;
        };
        let found = isulad::modgate_hooks(&edit.text, "spec").expect("merged spec reparses");
        for stage in STAGES {
            assert!(
                found.contains(&(stage.to_string(), hook.path.clone())),
                "{stage} hook missing from {found:?}"
            );
        }
        let again = isulad::merge(Some(&edit.text), &hook, "spec").expect("merges again");
        assert!(!again.changed, "a second merge changed the spec");
    } else {
        let Ok(edit) = isulad::daemon_json_with_spec(text, SPEC, "daemon.json") else {
            return;
        };
        let path = isulad::daemon_spec_path(&edit.text, "daemon.json").expect("reparses");
        let before = isulad::daemon_spec_path(text, "daemon.json").ok().flatten();
        assert!(
            before.is_none() || path == before,
            "an existing hook-spec is kept"
        );
        let again = isulad::daemon_json_with_spec(&edit.text, SPEC, "daemon.json").expect("again");
        assert!(!again.changed, "a second merge changed daemon.json");
    }
});
