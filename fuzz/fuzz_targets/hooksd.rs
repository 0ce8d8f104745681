//! hooks.d (podman, CRI-O): an existing hook file against modgate's (first byte: stage
//! and `when`). The merged file is one of modgate's as `doctor` reads it, and merging
//! again changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modgate_fuzz::selector_and_text;
use modgate_host::engines::{hooksd, HookCommand, STAGES};

fuzz_target!(|data: &[u8]| {
    let Some((sel, text)) = selector_and_text(data) else {
        return;
    };
    let _ = hooksd::modgate_hook(text, "hook file");
    let stage = STAGES[usize::from(sel & 1)];
    let when = if sel & 2 == 0 {
        hooksd::When::Always
    } else {
        hooksd::When::Annotation
    };
    let hook = HookCommand::new("/usr/bin/modgate");
    let Ok(edit) = hooksd::merge(Some(text), &hook, stage, when, "hook file") else {
        return;
    };
    let entry = hooksd::modgate_hook(&edit.text, "hook file")
        .expect("merged file reparses")
        .expect("merged file is modgate's");
    assert_eq!(entry.path, hook.path);
    assert_eq!(entry.stages, [stage]);
    assert_eq!(entry.when, Some(when));
    let again = hooksd::merge(Some(&edit.text), &hook, stage, when, "hook file").expect("again");
    assert!(!again.changed, "a second merge changed the file");
});
