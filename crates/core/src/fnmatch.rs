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
    // without recursion, so a hostile pattern cannot blow the stack. Every other
    // element matches exactly one byte, which is what makes one backtrack point enough.
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
                b'[' => match bracket(p, pi, s[si]) {
                    Bracket::Hit(next) => {
                        pi = next;
                        si += 1;
                        continue;
                    }
                    Bracket::Literal if s[si] == b'[' => {
                        pi += 1;
                        si += 1;
                        continue;
                    }
                    Bracket::Literal | Bracket::Miss => {}
                },
                // A trailing backslash never matches (glibc: "trailing \\ loses").
                b'\\' => {
                    if pi + 1 < p.len() && p[pi + 1] == s[si] {
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

/// What a bracket expression does with one byte of the string.
#[derive(Debug, PartialEq, Eq)]
enum Bracket {
    /// It matched; the pattern goes on at this index.
    Hit(usize),
    /// It did not match, or the expression is malformed in a way that never matches.
    Miss,
    /// The expression is unterminated before anything matched: `[` is an ordinary byte.
    Literal,
}

/// The byte at `p[i]`, or NUL past the end, as C's pattern strings see it.
fn at(p: &[u8], i: usize) -> u8 {
    p.get(i).copied().unwrap_or(0)
}

/// Longest character class name glibc looks at before calling the pattern ill-formed.
const CLASS_NAME_MAX: usize = 256;

/// Whether `c` is in the C locale's character class `name`; `None` for an unknown name.
fn in_class(name: &[u8], c: u8) -> Option<bool> {
    Some(match name {
        b"alnum" => c.is_ascii_alphanumeric(),
        b"alpha" => c.is_ascii_alphabetic(),
        b"blank" => c == b' ' || c == b'\t',
        b"cntrl" => c.is_ascii_control(),
        b"digit" => c.is_ascii_digit(),
        b"graph" => c.is_ascii_graphic(),
        b"lower" => c.is_ascii_lowercase(),
        b"print" => c.is_ascii_graphic() || c == b' ',
        b"punct" => c.is_ascii_punctuation(),
        b"space" => matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'),
        b"upper" => c.is_ascii_uppercase(),
        b"xdigit" => c.is_ascii_hexdigit(),
        _ => return None,
    })
}

/// Matches the byte `c` against the bracket expression at `p[start] == '['`, with the
/// rules of glibc's `fnmatch` in the C locale: `!` or `^` negates, a leading `]` is a
/// member, `a-z` ranges by byte value, `\\` escapes, `[:class:]`, `[=c=]` and `[.c.]`.
/// An expression with no closing `]` is a literal `[`; a range with no end, a bad class
/// name and a bad collating symbol never match.
fn bracket(p: &[u8], start: usize, c: u8) -> Bracket {
    let mut i = start + 1;
    let negate = matches!(at(p, i), b'!' | b'^');
    if negate {
        i += 1;
    }
    // A member matched: the expression still has to be terminated.
    let matched = |i: usize| match skip_rest(p, i) {
        Bracket::Hit(_) if negate => Bracket::Miss,
        other => other,
    };
    let mut ch = at(p, i);
    i += 1;
    loop {
        // `ch` is the member just read and `i` the index after it. Each arm leaves the
        // member's lower bound in `lo`, or goes on to the next member itself.
        let lo = match ch {
            0 => return Bracket::Literal,
            b'\\' => {
                if at(p, i) == 0 {
                    return Bracket::Miss;
                }
                i += 1;
                at(p, i - 1)
            }
            b'[' if at(p, i) == b':' => match class_name(p, i + 1) {
                ClassName::Name(end) => {
                    let Some(hit) = in_class(&p[i + 1..end], c) else {
                        return Bracket::Miss;
                    };
                    i = end + 2;
                    if hit {
                        return matched(i);
                    }
                    ch = at(p, i);
                    i += 1;
                    if ch == b']' {
                        break;
                    }
                    continue;
                }
                ClassName::TooLong => return Bracket::Miss,
                ClassName::NotAName => b'[',
            },
            b'[' if at(p, i) == b'=' => {
                let sym = at(p, i + 1);
                if sym == 0 || at(p, i + 2) != b'=' || at(p, i + 3) != b']' {
                    b'['
                } else {
                    i += 4;
                    if sym == c {
                        return matched(i);
                    }
                    ch = at(p, i);
                    i += 1;
                    if ch == b']' {
                        break;
                    }
                    continue;
                }
            }
            b'[' if at(p, i) == b'.' => {
                let Some((sym, next)) = collating(p, i) else {
                    return Bracket::Miss;
                };
                i = next;
                // A collating symbol starts a range even before `]`.
                let is_range = at(p, i) == b'-' && at(p, i + 1) != 0;
                if !is_range && sym == c {
                    return matched(i);
                }
                ch = at(p, i);
                i += 1;
                match range(p, &mut i, ch, sym, c) {
                    Some(true) => return matched(i),
                    Some(false) => ch = at(p, i - 1),
                    None => return Bracket::Miss,
                }
                if ch == b']' {
                    break;
                }
                continue;
            }
            other => other,
        };
        let is_range = at(p, i) == b'-' && at(p, i + 1) != 0 && at(p, i + 1) != b']';
        if !is_range && lo == c {
            return matched(i);
        }
        ch = at(p, i);
        i += 1;
        match range(p, &mut i, ch, lo, c) {
            Some(true) => return matched(i),
            Some(false) => ch = at(p, i - 1),
            None => return Bracket::Miss,
        }
        if ch == b']' {
            break;
        }
    }
    if negate {
        Bracket::Hit(i)
    } else {
        Bracket::Miss
    }
}

/// When `ch` (just read, `*i` after it) is the `-` of a range from `lo`: reads its end
/// and says whether `c` is in it, leaving `*i` after the next byte; `Some(false)` with
/// nothing read when `ch` starts no range; `None` for a range with no end.
fn range(p: &[u8], i: &mut usize, ch: u8, lo: u8, c: u8) -> Option<bool> {
    if ch != b'-' || at(p, *i) == b']' {
        return Some(false);
    }
    let mut hi = at(p, *i);
    *i += 1;
    if hi == b'[' && at(p, *i) == b'.' {
        let (sym, next) = collating(p, *i)?;
        hi = sym;
        *i = next;
    } else {
        if hi == b'\\' {
            hi = at(p, *i);
            *i += 1;
        }
        if hi == 0 {
            return None;
        }
    }
    if lo <= c && c <= hi {
        return Some(true);
    }
    *i += 1;
    Some(false)
}

enum ClassName {
    /// A name of lower-case letters ending at this index, before `:]`.
    Name(usize),
    /// Longer than glibc looks: the pattern is ill-formed.
    TooLong,
    /// Not a class name: the `[` is an ordinary member.
    NotAName,
}

/// The name of `[:name:]` starting at `p[from]`. Like glibc, only `a` to `y` count as
/// name letters (its test is `c < 'a' || c >= 'z'`).
fn class_name(p: &[u8], from: usize) -> ClassName {
    let mut j = from;
    loop {
        if j - from == CLASS_NAME_MAX {
            return ClassName::TooLong;
        }
        let d = at(p, j);
        if d == b':' && at(p, j + 1) == b']' {
            return ClassName::Name(j);
        }
        if !(b'a'..=b'y').contains(&d) {
            return ClassName::NotAName;
        }
        j += 1;
    }
}

/// `[.c.]` starting at `p[i] == '.'`: the one byte it names and the index after it. In
/// the C locale only single-byte names exist; anything else never matches.
fn collating(p: &[u8], i: usize) -> Option<(u8, usize)> {
    let mut j = i + 1;
    loop {
        let d = at(p, j);
        if d == b'.' && at(p, j + 1) == b']' {
            break;
        }
        if d == 0 {
            return None;
        }
        j += 1;
    }
    (j == i + 2).then(|| (p[i + 1], j + 2))
}

/// After a member matched: the index after the closing `]`. With no `]` the expression
/// was never one, and its `[` is an ordinary byte; glibc's skipping still refuses a
/// trailing escape and malformed `[=` and `[.` forms on the way.
fn skip_rest(p: &[u8], mut i: usize) -> Bracket {
    loop {
        let ch = at(p, i);
        i += 1;
        match ch {
            0 => return Bracket::Literal,
            b']' => return Bracket::Hit(i),
            b'\\' => {
                if at(p, i) == 0 {
                    return Bracket::Miss;
                }
                i += 1;
            }
            b'[' if at(p, i) == b':' => {
                let mut j = i;
                let mut count = 0;
                loop {
                    j += 1;
                    count += 1;
                    if count == CLASS_NAME_MAX {
                        return Bracket::Miss;
                    }
                    if at(p, j) == b':' && at(p, j + 1) == b']' {
                        i = j + 2;
                        break;
                    }
                    if !(b'a'..=b'y').contains(&at(p, j)) {
                        break;
                    }
                }
            }
            b'[' if at(p, i) == b'=' => {
                if at(p, i + 1) == 0 || at(p, i + 2) != b'=' || at(p, i + 3) != b']' {
                    return Bracket::Miss;
                }
                i += 4;
            }
            b'[' if at(p, i) == b'.' => {
                let mut j = i + 1;
                loop {
                    match at(p, j) {
                        0 => return Bracket::Miss,
                        b'.' if at(p, j + 1) == b']' => break,
                        _ => j += 1,
                    }
                }
                i = j + 2;
            }
            _ => {}
        }
    }
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
