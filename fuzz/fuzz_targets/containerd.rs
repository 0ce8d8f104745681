//! containerd: the `modgate` runtime merged into an existing `config.toml` with
//! toml_edit. The output is TOML to another parser too, shows the runtime, and merging
//! again changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modgate_host::engines::containerd;

const WRAPPER: &str = "/usr/bin/modgate-runtime";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = containerd::modgate_runtime(text, "config.toml");
    let _ = containerd::snippet(Some(text), WRAPPER, "config.toml");
    let Ok(edit) = containerd::merge(Some(text), WRAPPER, "config.toml") else {
        return;
    };
    if let Err(e) = edit.text.parse::<toml::Table>() {
        panic!("merged config.toml is not TOML: {e}\n{}", edit.text);
    }
    let (_, bin) = containerd::modgate_runtime(&edit.text, "config.toml")
        .expect("merged config reparses")
        .expect("merged config names the wrapper");
    assert!(bin.ends_with("modgate-runtime"));
    let again = containerd::merge(Some(&edit.text), WRAPPER, "config.toml").expect("again");
    assert!(
        !again.changed,
        "a second merge changed config.toml:\n{}",
        edit.text
    );
});
