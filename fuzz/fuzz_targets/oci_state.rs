//! The OCI state on the hook's stdin: accepted only with an id and a bundle.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modgate_core::oci::State;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = State::parse(data) {
        assert!(!s.id.is_empty());
        let bundle = s.bundle().expect("an accepted state has a bundle");
        assert!(!bundle.is_empty());
        assert!(s.bundle.as_deref() == Some(bundle) || s.bundle_path.as_deref() == Some(bundle));
    }
});
