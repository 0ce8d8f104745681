//! The request grammar (`KERNEL_MODULES`, the annotation): what it accepts is a list of
//! normal-form names that reads back the same, and never more than the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modgate_core::name::ModuleName;
use modgate_core::request::{Request, MAX_ITEMS};

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(r) = Request::parse(raw, "fuzz") else {
        return;
    };
    assert!(r.names().len() <= MAX_ITEMS);
    for n in r.names() {
        // A parsed name is already in normal form.
        assert_eq!(ModuleName::parse(n.as_str()).as_ref(), Ok(n));
    }
    let joined: Vec<&str> = r.names().iter().map(ModuleName::as_str).collect();
    let again = Request::parse(&joined.join(","), "fuzz").expect("rendered request reparses");
    assert_eq!(again, r);
    // Extending by the same text adds nothing.
    let mut twice = r.clone();
    twice
        .extend(raw, "fuzz")
        .expect("the same request again is accepted");
    assert_eq!(twice, r);
});
