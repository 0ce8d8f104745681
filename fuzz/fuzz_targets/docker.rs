//! Docker: the runtime wrapper registered in an existing `daemon.json` (first byte: as
//! the default runtime or not). The merged file shows the registration, and merging
//! again changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modgate_fuzz::selector_and_text;
use modgate_host::engines::docker;

const WRAPPER: &str = "/usr/bin/modgate-runtime";

fuzz_target!(|data: &[u8]| {
    let Some((sel, text)) = selector_and_text(data) else {
        return;
    };
    let _ = docker::modgate_runtime(text, "daemon.json");
    let default = sel & 1 == 1;
    let Ok(edit) = docker::merge(Some(text), WRAPPER, default, "daemon.json") else {
        return;
    };
    let rt = docker::modgate_runtime(&edit.text, "daemon.json")
        .expect("merged daemon.json reparses")
        .expect("merged daemon.json registers the wrapper");
    if rt.name == "modgate" {
        assert_eq!(rt.path, WRAPPER);
        if default {
            assert!(rt.default);
        }
    }
    let again = docker::merge(Some(&edit.text), WRAPPER, default, "daemon.json").expect("again");
    assert!(!again.changed, "a second merge changed daemon.json");
});
