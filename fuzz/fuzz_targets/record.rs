//! The state store's documents: a container's record (under the key its id hashes to),
//! an owned-module entry and the ledger. The first byte picks the document. A document
//! that parses renders to one that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modgate_core::record::{record_key, ContainerRecord, Ledger, Owned};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, doc)) = data.split_first() else {
        return;
    };
    match sel % 3 {
        0 => {
            // The file name the store would have read it under (when the id is a string).
            let key = serde_json::from_slice::<serde_json::Value>(doc)
                .ok()
                .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(record_key))
                .unwrap_or_default();
            if let Ok(r) = ContainerRecord::parse(doc, &key) {
                if let Ok(bytes) = r.render() {
                    let again =
                        ContainerRecord::parse(&bytes, &key).expect("rendered record parses");
                    assert_eq!(again, r);
                }
            }
        }
        1 => {
            if let Ok(o) = Owned::parse(doc) {
                assert_eq!(Owned::parse(&o.render()).expect("rendered entry parses"), o);
            }
        }
        _ => {
            if let Ok(l) = Ledger::parse(doc) {
                assert_eq!(
                    Ledger::parse(&l.render()).expect("rendered ledger parses"),
                    l
                );
            }
        }
    }
});
