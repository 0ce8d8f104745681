//! Counters kept in the store (`metrics/NAME`, one number a file), each bumped where
//! the event happens under its own short lock, so no one scans anything to count; and
//! `modgate status --format prometheus`, which prints them with the gauges of a status
//! for a node exporter's textfile collector.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use super::status::StatusReport;

pub const METRICS: &str = "metrics";

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// A container's request was allowed and loaded.
    Allowed,
    /// A container's request was refused, and why (`policy`, `load`, `state`,
    /// `request`, `bundle`, `other`).
    Refused(&'static str),
    /// A module modgate inserted.
    Inserted,
    /// A module modgate removed.
    Unloaded,
    /// A load whose hook died, recovered.
    Recovered,
}

impl Counter {
    fn file(self) -> String {
        match self {
            Counter::Allowed => "allowed".into(),
            Counter::Refused(why) => format!("refused.{why}"),
            Counter::Inserted => "inserted".into(),
            Counter::Unloaded => "unloaded".into(),
            Counter::Recovered => "recovered".into(),
        }
    }
}

/// Adds `n` to a counter. Counting never fails what is counted: an error is logged.
pub fn bump(state_dir: &Path, counter: Counter, n: u64) {
    if n == 0 {
        return;
    }
    if let Err(e) = try_bump(state_dir, counter, n) {
        tracing::warn!("cannot count {counter:?}: {e}");
    }
}

fn try_bump(state_dir: &Path, counter: Counter, n: u64) -> std::io::Result<()> {
    let dir = state_dir.join(METRICS);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dir.join(counter.file()))?;
    // Held until `f` closes: increments from hooks running side by side add up.
    f.lock()?;
    let mut text = String::new();
    Read::by_ref(&mut f).take(32).read_to_string(&mut text)?;
    let now = text.trim().parse::<u64>().unwrap_or(0).saturating_add(n);
    f.seek(SeekFrom::Start(0))?;
    f.set_len(0)?;
    f.write_all(format!("{now}\n").as_bytes())
}

/// Every counter: file name → value.
pub fn read(state_dir: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(state_dir.join(METRICS)) else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(f) = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(e.path())
        else {
            continue;
        };
        let mut text = String::new();
        if f.take(32).read_to_string(&mut text).is_ok() {
            if let Ok(v) = text.trim().parse::<u64>() {
                out.insert(name, v);
            }
        }
    }
    out
}

/// The refusal reasons always shown (at 0 until one happens), so a rate works from the
/// first scrape.
const REASONS: &[&str] = &["policy", "load", "state", "request", "bundle", "other"];

/// The Prometheus text format (version 0.0.4).
pub fn prometheus(status: &StatusReport, counters: &BTreeMap<String, u64>) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    let c = |f: &str| counters.get(f).copied().unwrap_or(0);
    let held = status
        .modules
        .iter()
        .filter(|m| !m.holders.is_empty())
        .count() as u64;
    let owned = status.modules.iter().filter(|m| m.owned).count() as u64;
    family(
        "modgate_modules_held",
        "gauge",
        "Modules held by at least one container.",
        &[(String::new(), held)],
    );
    family(
        "modgate_modules_owned",
        "gauge",
        "Modules modgate inserted that are still loaded.",
        &[(String::new(), owned)],
    );
    family(
        "modgate_container_records",
        "gauge",
        "Containers with a record in the state store.",
        &[(String::new(), status.containers.len() as u64)],
    );
    family(
        "modgate_requests_allowed_total",
        "counter",
        "Container requests allowed and loaded.",
        &[(String::new(), c("allowed"))],
    );
    let mut reasons: Vec<String> = REASONS.iter().map(|r| r.to_string()).collect();
    for k in counters.keys() {
        if let Some(r) = k.strip_prefix("refused.") {
            if !reasons.iter().any(|x| x == r) {
                reasons.push(r.to_string());
            }
        }
    }
    let refused: Vec<(String, u64)> = reasons
        .iter()
        .map(|r| (format!("{{reason=\"{r}\"}}"), c(&format!("refused.{r}"))))
        .collect();
    family(
        "modgate_requests_refused_total",
        "counter",
        "Container requests refused, by reason.",
        &refused,
    );
    family(
        "modgate_modules_inserted_total",
        "counter",
        "Modules modgate inserted.",
        &[(String::new(), c("inserted"))],
    );
    family(
        "modgate_modules_unloaded_total",
        "counter",
        "Modules modgate removed.",
        &[(String::new(), c("unloaded"))],
    );
    family(
        "modgate_recoveries_total",
        "counter",
        "Loads whose hook died, recovered.",
        &[(String::new(), c("recovered"))],
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up_across_threads() {
        let t = tempfile::tempdir().expect("tempdir");
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..25 {
                        bump(t.path(), Counter::Inserted, 1);
                    }
                });
            }
        });
        bump(t.path(), Counter::Refused("policy"), 2);
        bump(t.path(), Counter::Unloaded, 0);
        let c = read(t.path());
        assert_eq!(c.get("inserted"), Some(&200));
        assert_eq!(c.get("refused.policy"), Some(&2));
        assert_eq!(c.get("unloaded"), None);
    }
}
