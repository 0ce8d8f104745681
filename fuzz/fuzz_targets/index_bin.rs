//! kmod's binary index (`modules.*.bin`): a trie read straight from the mapped file.
//! Every key the dump lists (up to 64) is found again by an exact search, and the first
//! eight also by a wildcard search, which walks every wildcard subtree of the trie.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modgate_core::index::BinIndex;

fuzz_target!(|data: &[u8]| {
    let Ok(idx) = BinIndex::new(data) else {
        return;
    };
    // A lookup of a key the file does not hold, and of a wildcard-looking one.
    let _ = idx.search("ip_vs");
    let _ = idx.search_wild("pci:v00008086d*");
    let Ok(entries) = idx.dump() else {
        return;
    };
    for (n, (key, v)) in entries.iter().take(64).enumerate() {
        // The dump shows non-UTF-8 keys lossily; only exact ones can be looked up.
        if key.contains('\u{fffd}') {
            continue;
        }
        let found = idx.search(key).expect("a dumped key's path reads again");
        assert!(found.is_some(), "dumped key {key:?} not found");
        if n < 8 && !key.contains(['*', '?', '[', ']', '\\']) {
            let wild = idx
                .search_wild(key)
                .expect("a dumped key's path reads again");
            assert!(
                wild.iter().any(|w| w.value == v.value),
                "dumped key {key:?} = {v:?} not found by a wildcard search"
            );
        }
    }
});
