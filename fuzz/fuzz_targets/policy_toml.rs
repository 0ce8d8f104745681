//! The policy file (TOML over the built-in default). What `modgate policy show`
//! prints for a policy is itself a policy file that means the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modgate_core::Policy;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(p) = Policy::parse("fuzz.toml", text) else {
        return;
    };
    let _ = p.widening();
    let shown = toml::Table::try_from(&p).expect("a policy serialises as policy show prints it");
    let again = Policy::parse("shown.toml", &shown.to_string())
        .unwrap_or_else(|e| panic!("policy show output does not parse: {e}\n{shown}"));
    assert_eq!(toml::Table::try_from(&again).expect("serialises"), shown);
});
