//! A bundle's `config.json`: the hook's view of it (`process.env`, annotations, the
//! request they make), and the runtime wrapper's byte-preserving hook injection. An
//! injection keeps what the hook sees, reparses, and a second injection changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modgate_core::oci::{ConfigView, ENV_VAR};
use modgate_host::engines::{HookCommand, STAGES};
use modgate_host::wrapper::inject::add_hooks;

fuzz_target!(|data: &[u8]| {
    let view = ConfigView::parse(data).ok();
    let request = view.as_ref().map(ConfigView::request);
    // The view keeps only the first KERNEL_MODULES= entry of process.env: the same one a
    // generic reading of the document finds.
    if let (Some(view), Ok(doc)) = (&view, serde_json::from_slice::<serde_json::Value>(data)) {
        let first = doc
            .pointer("/process/env")
            .and_then(|env| env.as_array())
            .and_then(|env| {
                env.iter().filter_map(|e| e.as_str()).find_map(|e| {
                    e.strip_prefix(ENV_VAR)
                        .and_then(|rest| rest.strip_prefix('='))
                })
            });
        assert_eq!(view.kernel_modules(), first);
    }
    let hook = HookCommand::new("/usr/bin/modgate");
    let Ok(Some(new)) = add_hooks(data, &hook, &STAGES, "config.json") else {
        return;
    };
    // Copied byte for byte, what was valid JSON stays so; what a lenient reader took
    // (a lone surrogate escape, which runc's Go reader also takes) is left as it was.
    if serde_json::from_slice::<serde_json::Value>(data).is_ok() {
        serde_json::from_str::<serde_json::Value>(&new).expect("injected config.json is JSON");
    }
    if let Some(view) = &view {
        let after = ConfigView::parse(new.as_bytes()).expect("injected config.json reparses");
        assert_eq!(after.annotations, view.annotations);
        assert_eq!(after.kernel_modules(), view.kernel_modules());
        assert_eq!(
            after.request().map_err(|e| e.to_string()),
            request.expect("parsed above").map_err(|e| e.to_string())
        );
    }
    assert_eq!(
        add_hooks(new.as_bytes(), &hook, &STAGES, "config.json").expect("reinjection"),
        None,
        "a second injection changes nothing"
    );
});
