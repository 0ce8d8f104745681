//! modgate's core: the formats and rules, as plain functions over bytes and strings
//! (kmod's indexes and `modprobe.d`, the resolver and plans, requests, the policy, the
//! OCI fields the hook reads, the records of the state store). No file access, no
//! syscalls, no container engine here; `modgate-host` reads the files and calls in.

pub mod config;
pub mod fnmatch;
pub mod index;
pub mod moddb;
pub mod name;
pub mod oci;
pub mod plan;
pub mod policy;
pub mod record;
pub mod request;
pub mod resolve;

pub use config::Config;
pub use moddb::ModuleDb;
pub use name::ModuleName;
pub use plan::{Action, Plan, Reason, Step};
pub use policy::Policy;
pub use request::Request;
pub use resolve::{KernelView, ModState, NothingLoaded, ResolveError, Resolver};

/// The most characters one error of a chain shows in an [`error_line`]; longer ones are
/// [`shortened`] around the middle.
pub const MAX_ERROR_CHARS: usize = 512;

/// An error and its causes on one line, `outer: inner: root cause`, as modgate prints
/// every error. Each error names only itself and leaves its cause to `source()`, so
/// nothing repeats; the line is always one line: runs of whitespace (a foreign parser's
/// multi-line report) fold to one space and other control characters are escaped. Each
/// error is cut to [`MAX_ERROR_CHARS`]: a path or value a runtime or container made
/// huge must not make a huge line.
pub fn error_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = shortened(&e.to_string(), MAX_ERROR_CHARS).into_owned();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&shortened(&c.to_string(), MAX_ERROR_CHARS));
        cur = c.source();
    }
    one_line(&out)
}

/// `s` with every control character (newline and escape included) and bidi override
/// written as an escape sequence, so that text a container chose (its id, say) can never
/// start a line of its own, drive a terminal or reorder what a reader sees, wherever
/// modgate prints or logs it.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(unprintable) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for ch in s.chars() {
        if unprintable(ch) {
            out.extend(ch.escape_default());
        } else {
            out.push(ch);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Foreign text as an error shows it: whole when at most `max` characters, else its
/// first and last `max / 2` characters around `[... N bytes ...]`, N the bytes left out. A 1 MB value must
/// not make a 1 MB error line, and the end of a parser's message (where it says what it
/// expected, and where) survives the cut.
pub fn shortened(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    let count = s.chars().count();
    if count <= max {
        return std::borrow::Cow::Borrowed(s);
    }
    let half = max / 2;
    let head_end = s.char_indices().nth(half).map_or(s.len(), |(i, _)| i);
    let tail_start = s
        .char_indices()
        .nth(count - half)
        .map_or(s.len(), |(i, _)| i);
    std::borrow::Cow::Owned(format!(
        "{}[... {} bytes ...]{}",
        &s[..head_end],
        tail_start - head_end,
        &s[tail_start..]
    ))
}

/// A character printed as an escape: a control character, or a bidi embedding,
/// override or isolate (U+202A..U+202E, U+2066..U+2069), which would make the text
/// after it read in another order than it is.
fn unprintable(ch: char) -> bool {
    ch.is_control() || matches!(ch, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut gap = false;
    for ch in s.chars() {
        if ch.is_whitespace() {
            gap = true;
            continue;
        }
        if gap && !out.is_empty() {
            out.push(' ');
        }
        gap = false;
        if unprintable(ch) {
            out.extend(ch.escape_default());
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{error_line, printable, shortened};

    #[test]
    fn shortened_keeps_both_ends_on_character_boundaries() {
        assert_eq!(shortened("short", 10), "short");
        assert_eq!(shortened("abcdefghij", 10), "abcdefghij");
        assert_eq!(shortened("abcdefghijk", 4), "ab[... 7 bytes ...]jk");
        let wide = "\u{ff49}".repeat(10);
        assert_eq!(
            shortened(&wide, 4),
            format!("{0}[... 18 bytes ...]{0}", "\u{ff49}".repeat(2))
        );
    }

    #[test]
    fn printable_escapes_every_control_character() {
        assert_eq!(printable("web1"), "web1");
        assert_eq!(
            printable("a\nFORGED\u{1b}[31m\r\t\u{7f}"),
            "a\\nFORGED\\u{1b}[31m\\r\\t\\u{7f}"
        );
        assert!(!printable("x\u{85}y").chars().any(char::is_control));
        assert_eq!(printable("\u{202e}live\u{2066}"), "\\u{202e}live\\u{2066}");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("{msg}")]
    struct E {
        msg: &'static str,
        #[source]
        source: Option<Box<E>>,
    }

    fn chain(msgs: &[&'static str]) -> E {
        let mut e: Option<Box<E>> = None;
        for m in msgs.iter().rev() {
            e = Some(Box::new(E { msg: m, source: e }));
        }
        *e.expect("at least one")
    }

    #[test]
    fn causes_join_on_one_line() {
        let table: &[(&[&str], &str)] = &[
            (&["only"], "only"),
            (
                &["container c1", "cannot lock /run/x", "permission denied"],
                "container c1: cannot lock /run/x: permission denied",
            ),
            (
                &["config.json", "line 1\n  column 2\r\n"],
                "config.json: line 1 column 2",
            ),
            (
                &["bad \x1b[31mred\u{7}", "tab\there"],
                "bad \\u{1b}[31mred\\u{7}: tab here",
            ),
            (&["a\u{2028}b"], "a b"),
            (
                &["container \u{202e}evil", "denied"],
                "container \\u{202e}evil: denied",
            ),
        ];
        for (msgs, want) in table {
            let line = error_line(&chain(msgs));
            assert_eq!(line, *want, "{msgs:?}");
            assert_eq!(line.lines().count(), 1);
        }
    }

    #[test]
    fn each_error_of_a_chain_is_cut_to_its_most() {
        let long = format!("cannot read /{}/config.json", "a".repeat(500_000));
        let line = error_line(&std::io::Error::other(long));
        let want = format!(
            "cannot read /{}[... 499513 bytes ...]{}/config.json",
            "a".repeat(243),
            "a".repeat(244)
        );
        assert!(line == want, "got {} bytes: {}", line.len(), &line[..80]);
    }
}
