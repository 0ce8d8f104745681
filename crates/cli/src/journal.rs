//! Logging to journald in its native protocol (one datagram an event to
//! `/run/systemd/journal/socket`), so that each hook's decision is searchable by field:
//! `journalctl CONTAINER_ID=... DECISION=denied`. Fields: `MESSAGE` (the same line
//! the other sinks get), `PRIORITY`, `SYSLOG_IDENTIFIER=modgate`, and each field of the
//! event in upper case, with `CONTAINER_ID` (`container`), `MODULES` (`requested`),
//! `DECISION` and `REASON` named for what they are.

use std::fmt::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::Path;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Where journald listens for native messages.
pub const SOCKET: &str = "/run/systemd/journal/socket";

pub struct JournalLayer {
    sock: UnixDatagram,
}

impl JournalLayer {
    /// `None` when nothing listens at `path`.
    pub fn connect(path: &Path) -> Option<Self> {
        let sock = UnixDatagram::unbound().ok()?;
        sock.connect(path).ok()?;
        Some(Self { sock })
    }
}

/// The journal's name for an event's field.
fn field_name(name: &str) -> String {
    match name {
        "container" => "CONTAINER_ID".into(),
        "requested" => "MODULES".into(),
        other => {
            let mut n: String = other
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            // Names starting with '_' are the journal's own; a digit may not lead.
            if !n.starts_with(|c: char| c.is_ascii_uppercase()) {
                n.insert(0, 'F');
            }
            n.truncate(64);
            n
        }
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    pairs: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.push(field, format!("{value:?}"));
    }
}

impl Fields {
    fn push(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = value;
        } else {
            self.pairs.push((field.name().to_string(), value));
        }
    }
}

/// Appends one field in the native protocol: `KEY=value\n`, or, for a value with a
/// newline, `KEY\n`, its length as 64-bit little endian, the value, `\n`.
fn put(out: &mut Vec<u8>, key: &str, value: &str) {
    out.extend_from_slice(key.as_bytes());
    if value.contains('\n') {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        out.push(b'=');
    }
    out.extend_from_slice(value.as_bytes());
    out.push(b'\n');
}

fn priority(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "3",
        Level::WARN => "4",
        Level::INFO => "6",
        _ => "7",
    }
}

/// One event as a native journal message.
fn encode(level: &Level, fields: &Fields) -> Vec<u8> {
    let mut line = fields.message.clone();
    for (k, v) in &fields.pairs {
        let _ = write!(line, " {k}={v}");
    }
    let mut out = Vec::with_capacity(line.len() * 2 + 64);
    put(&mut out, "MESSAGE", &line);
    put(&mut out, "PRIORITY", priority(level));
    put(&mut out, "SYSLOG_IDENTIFIER", "modgate");
    for (k, v) in &fields.pairs {
        put(&mut out, &field_name(k), v);
    }
    out
}

impl<S: Subscriber> Layer<S> for JournalLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        // A full or absent journal never fails a hook.
        let _ = self.sock.send(&encode(event.metadata().level(), &fields));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use tracing_subscriber::layer::SubscriberExt;

    /// Parses a native journal message the way journald does.
    fn parse(mut b: &[u8]) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        while !b.is_empty() {
            let nl = b.iter().position(|&c| c == b'\n').expect("newline");
            let line = &b[..nl];
            if let Some(eq) = line.iter().position(|&c| c == b'=') {
                let k = String::from_utf8(line[..eq].to_vec()).expect("key");
                let v = String::from_utf8(line[eq + 1..].to_vec()).expect("value");
                out.insert(k, v);
                b = &b[nl + 1..];
            } else {
                let k = String::from_utf8(line.to_vec()).expect("key");
                let rest = &b[nl + 1..];
                let len = u64::from_le_bytes(rest[..8].try_into().expect("length")) as usize;
                let v = String::from_utf8(rest[8..8 + len].to_vec()).expect("value");
                assert_eq!(rest[8 + len], b'\n');
                out.insert(k, v);
                b = &rest[8 + len + 1..];
            }
        }
        out
    }

    #[test]
    fn events_reach_a_journal_socket_as_native_fields() {
        let t = tempfile::tempdir().expect("tempdir");
        let path = t.path().join("socket");
        let journal = UnixDatagram::bind(&path).expect("bind");
        let layer = JournalLayer::connect(&path).expect("connect");
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                container = %"c1",
                requested = %"ip_vs,dummy",
                decision = %"denied",
                reason = %"module \"ip_vs\" denied by policy\nsecond line",
                micros = 12,
                "hook"
            );
            tracing::warn!("plain");
        });
        let mut buf = vec![0u8; 65536];
        let n = journal.recv(&mut buf).expect("recv");
        let f = parse(&buf[..n]);
        assert_eq!(f["CONTAINER_ID"], "c1");
        assert_eq!(f["MODULES"], "ip_vs,dummy");
        assert_eq!(f["DECISION"], "denied");
        assert_eq!(
            f["REASON"],
            "module \"ip_vs\" denied by policy\nsecond line"
        );
        assert_eq!(f["MICROS"], "12");
        assert_eq!(f["PRIORITY"], "6");
        assert_eq!(f["SYSLOG_IDENTIFIER"], "modgate");
        assert!(f["MESSAGE"].starts_with("hook container=c1 "), "{f:?}");
        let n = journal.recv(&mut buf).expect("recv");
        let f = parse(&buf[..n]);
        assert_eq!(
            (f["MESSAGE"].as_str(), f["PRIORITY"].as_str()),
            ("plain", "4")
        );
        assert!(JournalLayer::connect(&t.path().join("none")).is_none());
    }

    #[test]
    fn field_names_are_the_journal_s() {
        for (name, want) in [
            ("container", "CONTAINER_ID"),
            ("requested", "MODULES"),
            ("decision", "DECISION"),
            ("plan", "PLAN"),
            ("a.b", "A_B"),
            ("_x", "F_X"),
            ("1x", "F1X"),
        ] {
            assert_eq!(field_name(name), want);
        }
    }
}
