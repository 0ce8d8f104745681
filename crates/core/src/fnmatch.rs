//! Shell-style pattern matching with the semantics of glibc's `fnmatch(pattern, s, 0)`,
//! which kmod uses for aliases, `install` and `softdep` names: `*`, `?`, `[...]` classes
//! (with `!` or `^` negation and ranges) and `\` escapes; `/` and `.` are not special.

/// Whether `pattern` matches the whole of `s`.
pub fn fnmatch(pattern: &str, s: &str) -> bool {
    matches(pattern.as_bytes(), s.as_bytes())
}

/// Whether a pattern has any wildcard in it.
pub fn has_wildcard(pattern: &str) -> bool {
    pattern.bytes().any(|b| matches!(b, b'*' | b'?' | b'['))
}

fn matches(p: &[u8], s: &[u8]) -> bool {
    // Iterative matcher with one backtrack point for the last `*`: linear-ish and
    // without recursion, so a hostile pattern cannot blow the stack.
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    while pi < p.len() && p[pi] == b'*' {
                        pi += 1;
                    }
                    if pi == p.len() {
                        return true;
                    }
                    star = Some((pi, si));
                    continue;
                }
                b'?' => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                b'[' => {
                    if let Some((hit, next)) = class(p, pi, s[si]) {
                        if hit {
                            pi = next;
                            si += 1;
                            continue;
                        }
                    } else if s[si] == b'[' {
                        // An unterminated class is a literal '['.
                        pi += 1;
                        si += 1;
                        continue;
                    }
                }
                b'\\' if pi + 1 < p.len() => {
                    if p[pi + 1] == s[si] {
                        pi += 2;
                        si += 1;
                        continue;
                    }
                }
                c => {
                    if c == s[si] {
                        pi += 1;
                        si += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, ss)) => {
                pi = sp;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Matches `c` against the class starting at `p[start] == '['`. Returns whether it
/// matched and the index just past the class, or `None` when the class is unterminated.
fn class(p: &[u8], start: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = i < p.len() && (p[i] == b'!' || p[i] == b'^');
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        if i >= p.len() {
            return None;
        }
        let mut lo = p[i];
        if lo == b']' && !first {
            i += 1;
            break;
        }
        first = false;
        if lo == b'\\' && i + 1 < p.len() {
            i += 1;
            lo = p[i];
        }
        i += 1;
        if i + 1 < p.len() && p[i] == b'-' && p[i + 1] != b']' {
            let mut hi = p[i + 1];
            i += 2;
            if hi == b'\\' && i < p.len() {
                hi = p[i];
                i += 1;
            }
            if lo <= c && c <= hi {
                hit = true;
            }
        } else if lo == c {
            hit = true;
        }
    }
    Some((hit != negate, i))
}

#[cfg(test)]
mod tests {
    use super::fnmatch;

    #[test]
    fn table() {
        let cases: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("abc", "abd", false),
            ("a*", "abc", true),
            ("*c", "abc", true),
            ("a*c", "ac", true),
            ("a*c", "abxc", true),
            ("a*c", "abxd", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            (
                "pci:v00008086d*sv*sd*bc02sc00i*",
                "pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00",
                true,
            ),
            (
                "pci:v00008086d*sv*sd*bc02sc00i*",
                "pci:v00008086d000010D3sv00008086sd0000A01Fbc03sc00i00",
                false,
            ),
            ("[abc]x", "bx", true),
            ("[!abc]x", "bx", false),
            ("[^abc]x", "dx", true),
            ("[a-c]x", "cx", true),
            ("[a-c]x", "dx", false),
            ("[]]x", "]x", true),
            ("[a-]x", "-x", true),
            ("a[", "a[", true),
            ("\\*", "*", true),
            ("\\*", "a", false),
            ("*", "", true),
            ("", "", true),
            ("", "a", false),
            ("a/b*", "a/bc/d", true),
            ("**x", "yyx", true),
            ("*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
        ];
        for (p, s, want) in cases {
            assert_eq!(fnmatch(p, s), *want, "fnmatch({p:?}, {s:?})");
        }
    }
}
