//! `fnmatch` checked against glibc's `fnmatch(3)` with flags 0 (what kmod calls) on
//! generated patterns and strings. The hand-written table in the unit tests is ours;
//! glibc is the reference we did not write.

use std::ffi::CString;

use modgate_core::fnmatch::fnmatch;

/// Bytes that exercise every part of the grammar: wildcards, class syntax, escapes,
/// range ends, and plain name characters.
const PATTERN_BYTES: &[u8] = b"ab_-*?[]!^\\.z0-:=[]";
const STRING_BYTES: &[u8] = b"ab_-[]!^\\.z0";

/// A small deterministic generator (xorshift64*): the same cases on every run.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick(&mut self, from: &[u8], max_len: u64) -> String {
        let len = self.next() % (max_len + 1);
        (0..len)
            .map(|_| from[(self.next() % from.len() as u64) as usize] as char)
            .collect()
    }
}

fn glibc(pattern: &str, s: &str) -> bool {
    let p = CString::new(pattern).expect("no NUL in generated pattern");
    let s = CString::new(s).expect("no NUL in generated string");
    // SAFETY: both pointers are valid NUL-terminated strings that outlive the call;
    // fnmatch(3) only reads them.
    unsafe { libc::fnmatch(p.as_ptr(), s.as_ptr(), 0) == 0 }
}

#[test]
fn generated_patterns_agree_with_glibc() {
    let mut g = Gen(0x9E37_79B9_7F4A_7C15);
    let mut disagree = Vec::new();
    let mut matched = 0usize;
    let total = 200_000;
    for _ in 0..total {
        let p = g.pick(PATTERN_BYTES, 8);
        // Half the strings are drawn from the pattern itself, so that matches are common.
        let s = if g.next() & 1 == 0 {
            p.chars().filter(|c| !"*?\\".contains(*c)).collect()
        } else {
            g.pick(STRING_BYTES, 8)
        };
        let want = glibc(&p, &s);
        matched += want as usize;
        if fnmatch(&p, &s) != want {
            disagree.push(format!("pattern {p:?} string {s:?}: glibc says {want}"));
        }
    }
    println!(
        "fnmatch: {}/{total} agree with glibc ({matched} matches)",
        total - disagree.len()
    );
    assert!(
        matched > total / 20,
        "the generator produced too few matches to test much"
    );
    assert!(
        disagree.is_empty(),
        "{} disagreements, first: {:#?}",
        disagree.len(),
        &disagree[..disagree.len().min(10)]
    );
}

#[test]
fn module_name_patterns_agree_with_glibc() {
    // Shapes from real policies and modprobe.d files.
    let patterns = [
        "ip_vs*",
        "nf_*",
        "xt_[A-Z]*",
        "dccp*",
        "sctp?",
        "[!a]*",
        "*_diag",
        "can*",
    ];
    let names = [
        "ip_vs",
        "ip_vs_wrr",
        "nf_nat",
        "xt_LOG",
        "xt_tcp",
        "dccp_ipv4",
        "sctp",
        "sctp6",
        "inet_diag",
        "canbus",
        "a",
        "",
    ];
    for p in patterns {
        for n in names {
            assert_eq!(fnmatch(p, n), glibc(p, n), "pattern {p:?} name {n:?}");
        }
    }
}

#[test]
fn generated_class_forms_agree_with_glibc() {
    // Patterns built from whole tokens, so that class names, equivalence classes and
    // collating symbols (valid and broken) actually occur.
    const TOKENS: &[&str] = &[
        "[",
        "]",
        "!",
        "^",
        "-",
        "*",
        "?",
        "\\",
        "a",
        "Z",
        "5",
        "_",
        ".",
        "[:alpha:]",
        "[:digit:]",
        "[:upper:]",
        "[:punct:]",
        "[:space:]",
        "[:xdigit:]",
        "[:bogus:]",
        "[:",
        ":]",
        "[=a=]",
        "[=",
        "=]",
        "[.a.]",
        "[.ab.]",
        "[.",
        ".]",
    ];
    const STRING_BYTES: &[u8] = b"aZ5_.-[]!:= \\";
    let mut g = Gen(0xD1B5_4A32_D192_ED03);
    let mut disagree = Vec::new();
    let mut matched = 0usize;
    let total = 100_000;
    for _ in 0..total {
        let n = g.next() % 6;
        let p: String = (0..n)
            .map(|_| TOKENS[(g.next() % TOKENS.len() as u64) as usize])
            .collect();
        let s = g.pick(STRING_BYTES, 4);
        let want = glibc(&p, &s);
        matched += want as usize;
        if fnmatch(&p, &s) != want {
            disagree.push(format!("pattern {p:?} string {s:?}"));
        }
    }
    println!(
        "fnmatch class forms: {}/{total} agree with glibc ({matched} matches)",
        total - disagree.len()
    );
    assert!(matched > 1000, "too few matches to test much: {matched}");
    assert!(
        disagree.is_empty(),
        "{} disagreements, first: {:#?}",
        disagree.len(),
        &disagree[..disagree.len().min(10)]
    );
}
