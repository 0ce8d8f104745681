use super::*;

/// Builds an index the way depmod lays one out (a fixture writer for unit tests).
pub fn build(entries: &[(&str, &str, u32)]) -> Vec<u8> {
    #[derive(Default)]
    struct T {
        children: std::collections::BTreeMap<u8, T>,
        values: Vec<(u32, String)>,
    }
    let mut root = T::default();
    for (k, v, p) in entries {
        let mut n = &mut root;
        for b in k.bytes() {
            n = n.children.entry(b).or_default();
        }
        n.values.push((*p, v.to_string()));
    }
    // Chains of value-less single children become a node prefix, as depmod writes them.
    fn write(t: &T, out: &mut Vec<u8>) -> u32 {
        let mut prefix = Vec::new();
        let mut n = t;
        while n.values.is_empty() && n.children.len() == 1 {
            let (&c, child) = n.children.iter().next().expect("one child");
            prefix.push(c);
            n = child;
        }
        let child_offsets: Vec<(u8, u32)> = n
            .children
            .iter()
            .map(|(c, ch)| (*c, write(ch, out)))
            .collect();
        let at = out.len() as u32;
        let mut flags = 0;
        if !prefix.is_empty() {
            flags |= NODE_PREFIX;
            out.extend_from_slice(&prefix);
            out.push(0);
        }
        if !child_offsets.is_empty() {
            flags |= NODE_CHILDS;
            let first = child_offsets[0].0;
            let last = child_offsets[child_offsets.len() - 1].0;
            out.push(first);
            out.push(last);
            for c in first..=last {
                let off = child_offsets
                    .iter()
                    .find(|(x, _)| *x == c)
                    .map(|x| x.1)
                    .unwrap_or(0);
                out.extend_from_slice(&off.to_be_bytes());
            }
        }
        if !n.values.is_empty() {
            flags |= NODE_VALUES;
            out.extend_from_slice(&(n.values.len() as u32).to_be_bytes());
            let mut vals = n.values.clone();
            vals.sort();
            for (p, v) in vals {
                out.extend_from_slice(&p.to_be_bytes());
                out.extend_from_slice(v.as_bytes());
                out.push(0);
            }
        }
        at | flags
    }
    let mut out = vec![0u8; 12];
    let root_off = write(&root, &mut out);
    out[0..4].copy_from_slice(&MAGIC.to_be_bytes());
    out[4..8].copy_from_slice(&0x0002_0001u32.to_be_bytes());
    out[8..12].copy_from_slice(&root_off.to_be_bytes());
    out
}

#[test]
fn exact_search() {
    let data = build(&[
        ("ip_vs", "a.ko:", 1),
        ("ip_vs_wrr", "b.ko: a.ko", 2),
        ("dummy", "d.ko:", 3),
    ]);
    let idx = BinIndex::new(&data).unwrap();
    assert_eq!(idx.search("ip_vs").unwrap().as_deref(), Some("a.ko:"));
    assert_eq!(
        idx.search("ip_vs_wrr").unwrap().as_deref(),
        Some("b.ko: a.ko")
    );
    assert_eq!(idx.search("ip_v").unwrap(), None);
    assert_eq!(idx.search("ip_vs_w").unwrap(), None);
    assert_eq!(idx.search("nosuch").unwrap(), None);
    assert_eq!(idx.dump().unwrap().len(), 3);
}

#[test]
fn wildcard_search_orders_by_priority() {
    let data = build(&[
        ("pci:v00001234d*", "late", 9),
        ("pci:v0000*", "early", 2),
        ("pci:v00001234d00000001", "exact", 5),
        ("usb:*", "other", 1),
        ("fs_ext4", "ext4", 3),
    ]);
    let idx = BinIndex::new(&data).unwrap();
    let got: Vec<String> = idx
        .search_wild("pci:v00001234d00000001")
        .unwrap()
        .into_iter()
        .map(|v| v.value)
        .collect();
    assert_eq!(got, ["early", "exact", "late"]);
    let got: Vec<String> = idx
        .search_wild("fs_ext4")
        .unwrap()
        .into_iter()
        .map(|v| v.value)
        .collect();
    assert_eq!(got, ["ext4"]);
    assert!(idx.search_wild("nomatch").unwrap().is_empty());
}

#[test]
fn indexes_without_entries_answer_not_found() {
    // As depmod writes one with no entries: the header, and a root offset (no
    // flags) pointing at the end of the file.
    let data = build(&[]);
    assert_eq!(
        data,
        [0xB0, 0x07, 0xF4, 0x57, 0, 2, 0, 1, 0, 0, 0, 12],
        "depmod's layout"
    );
    // And the 0-byte file depmod writes for modules.builtin.alias.bin before 5.2.
    for data in [&data[..], &[][..]] {
        let idx = BinIndex::new(data).unwrap();
        assert_eq!(idx.search("foo").unwrap(), None);
        assert_eq!(idx.search("").unwrap(), None);
        assert!(idx.search_wild("net_pf_1").unwrap().is_empty());
        assert!(idx.dump().unwrap().is_empty());
    }
    // A root pointing at the end of the file with flags needs bytes that are not there.
    let mut d = data.clone();
    d[8..12].copy_from_slice(&(12 | NODE_VALUES).to_be_bytes());
    let err = BinIndex::new(&d).unwrap().search("x").unwrap_err();
    assert_eq!(err.reason, "node offset outside the file");
    // Short of the header but not empty: still corrupt.
    assert_eq!(
        BinIndex::new(&data[..5]).unwrap_err().reason,
        "shorter than the 12-byte header"
    );
}

#[test]
fn corrupt_and_truncated_files_are_errors_not_panics() {
    let data = build(&[("ip_vs", "a.ko:", 1), ("ip_vs_wrr", "b.ko: a.ko", 2)]);
    assert_eq!(BinIndex::new(&data[..8]).unwrap_err().offset, 0);
    let mut bad = data.clone();
    bad[0] = 0;
    assert!(BinIndex::new(&bad).unwrap_err().reason.contains("magic"));
    // Every truncation either fails cleanly or still answers: never a panic.
    for cut in 12..data.len() {
        if let Ok(idx) = BinIndex::new(&data[..cut]) {
            let _ = idx.search("ip_vs_wrr");
            let _ = idx.search_wild("ip_vs*");
            let _ = idx.dump();
        }
    }
    // Flipped bytes anywhere: same.
    for i in 12..data.len() {
        let mut d = data.clone();
        d[i] ^= 0xA5;
        let idx = BinIndex::new(&d).unwrap();
        let _ = idx.search("ip_vs_wrr");
        let _ = idx.search_wild("ip_vs*");
    }
    let mut d = data.clone();
    let len = d.len() as u32 + 100;
    d[8..12].copy_from_slice(&(len | NODE_PREFIX).to_be_bytes());
    let err = BinIndex::new(&d).unwrap().search("x").unwrap_err();
    assert_eq!(err.reason, "node offset outside the file");
}

/// A 422-byte file whose 40 levels each point both their children at the next level:
/// 2^40 paths through 41 nodes (fuzz/corpus/index_bin/shared-subtrees.bin): the dump
/// and a wildcard walk used to run for ever.
#[test]
fn shared_subtrees_are_corrupt_not_endless() {
    const LEVELS: u32 = 40;
    let mut d = Vec::new();
    d.extend_from_slice(&0xB007_F457u32.to_be_bytes());
    d.extend_from_slice(&0x0002_0001u32.to_be_bytes());
    d.extend_from_slice(&(12 | NODE_CHILDS).to_be_bytes());
    for level in 0..LEVELS {
        let next = 12 + 10 * (level + 1);
        let next = if level + 1 < LEVELS {
            next | NODE_CHILDS
        } else {
            next | NODE_VALUES
        };
        d.extend_from_slice(b"*+");
        d.extend_from_slice(&next.to_be_bytes());
        d.extend_from_slice(&next.to_be_bytes());
    }
    d.extend_from_slice(&1u32.to_be_bytes());
    d.extend_from_slice(&0u32.to_be_bytes());
    d.extend_from_slice(b"x\0");
    let idx = BinIndex::new(&d).unwrap();
    assert_eq!(idx.dump().unwrap_err().reason, OVERREAD);
    assert_eq!(idx.search_wild("anything").unwrap_err().reason, OVERREAD);
    // An exact lookup follows one path and still answers.
    assert_eq!(idx.search(&"+".repeat(40)).unwrap().as_deref(), Some("x"));
}

/// The budget never cuts a real trie short: every node of a full one is walked.
#[test]
fn a_full_trie_is_walked_whole() {
    let entries: Vec<(String, String)> = (0..300)
        .map(|i| (format!("k{i:03}*"), format!("m{i}")))
        .collect();
    let refs: Vec<(&str, &str, u32)> = entries
        .iter()
        .enumerate()
        .map(|(i, (k, v))| (k.as_str(), v.as_str(), i as u32))
        .collect();
    let data = build(&refs);
    let idx = BinIndex::new(&data).unwrap();
    assert_eq!(idx.dump().unwrap().len(), 300);
    assert_eq!(idx.search_wild("k123xyz").unwrap().len(), 1);
}

/// A node whose `*` child is itself, read from one offset further: every step of a walk
/// reads the same 1000 prefix bytes again. With only the node budget, a walk met 255
/// such nodes and built a 250 KB key before it stopped (a 6.5 KB input of the fuzzer took
/// 0.8 s and 230 MB this way).
#[test]
fn nodes_laid_over_one_another_are_corrupt() {
    let mut d = Vec::new();
    d.extend_from_slice(&0xB007_F457u32.to_be_bytes());
    d.extend_from_slice(&0x0002_0001u32.to_be_bytes());
    d.extend_from_slice(&(12 | NODE_PREFIX | NODE_CHILDS).to_be_bytes());
    d.extend_from_slice(&[b'x'; 1000]);
    d.push(0);
    d.extend_from_slice(b"**");
    d.extend_from_slice(&(13 | NODE_PREFIX | NODE_CHILDS).to_be_bytes());
    let idx = BinIndex::new(&d).unwrap();
    assert_eq!(idx.dump().unwrap_err().reason, OVERREAD);
    // The key leads to the root's `*` child, whose walk then goes round.
    let key = "x".repeat(1000);
    assert_eq!(idx.search_wild(&key).unwrap_err().reason, OVERREAD);
}
