//! Where logs go: journald in its native protocol, with structured fields, when its
//! socket exists ([`crate::journal`]); otherwise syslog when `/dev/log` exists; and a
//! file when asked. Each event is one line; stdout stays for command output. Set up
//! only once a hook has something to do: never on the no-request fast path.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::journal::{self, JournalLayer};

struct Sinks {
    syslog: Option<UnixDatagram>,
    file: Option<std::fs::File>,
}

#[derive(Clone)]
pub struct LogWriter {
    sinks: Arc<Mutex<Sinks>>,
}

pub struct Line {
    sinks: Arc<Mutex<Sinks>>,
    buf: Vec<u8>,
}

impl Write for Line {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    // One event, one datagram and one file line; a full or absent log never fails a hook.
    fn drop(&mut self) {
        let Ok(mut s) = self.sinks.lock() else { return };
        let text = String::from_utf8_lossy(&self.buf);
        // Fields carry what containers chose (ids): a newline or an escape in one must
        // not forge a line or reach a terminal.
        let text = modgate_core::printable(text.trim_end());
        if let Some(sock) = &s.syslog {
            // facility daemon (3), severity info (6)
            let _ = sock.send(format!("<30>modgate[{}]: {text}", std::process::id()).as_bytes());
        }
        if let Some(f) = s.file.as_mut() {
            let _ = writeln!(f, "{text}");
        }
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = Line;
    fn make_writer(&'a self) -> Line {
        Line {
            sinks: self.sinks.clone(),
            buf: Vec::new(),
        }
    }
}

/// Sets up logging; `file` is `--log FILE`. Returns a warning to print if the file
/// cannot be opened (logging must not stop the hook).
pub fn init(file: Option<&PathBuf>) -> Option<String> {
    let journal = JournalLayer::connect(Path::new(journal::SOCKET));
    let syslog = if journal.is_some() {
        None
    } else {
        UnixDatagram::unbound()
            .ok()
            .filter(|s| s.connect("/dev/log").is_ok())
    };
    let mut warning = None;
    let file = file.and_then(|p| {
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
        {
            Ok(f) => Some(f),
            Err(e) => {
                warning = Some(format!("cannot open log file {}: {e}", p.display()));
                None
            }
        }
    });
    let writer = LogWriter {
        sinks: Arc::new(Mutex::new(Sinks { syslog, file })),
    };
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false)
        .with_target(false);
    let _ = tracing_subscriber::registry()
        .with(lines)
        .with(journal)
        .try_init();
    warning
}
