//! The documents of the state store, as bytes: one record per container (what it asked
//! for, what its request inserted, what it holds) and the ledger of the modules modgate
//! inserted and so owns. Every module name is a [`ModuleName`] in normal form, checked
//! as the file is deserialised, so a damaged file is refused whole.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::name::ModuleName;

/// Largest state document read back; anything bigger is damaged.
pub const MAX_DOC_BYTES: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum DocError {
    #[error("not a valid state document")]
    Json(#[source] serde_json::Error),
    #[error("empty container id")]
    NoId,
    #[error("record of container {id:?} is stored under another container's file name")]
    Misfiled { id: String },
}

/// Where a container's record stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordStage {
    /// Written before the first insertion, under the host lock: a record still loading
    /// when another process holds the lock belongs to a hook that died.
    Loading,
    /// The load finished: the container holds `holds`.
    Holding,
}

/// One container, as its hooks left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub stage: RecordStage,
    /// Hook stage (`prestart`, `createRuntime`) or event (`loaded`) → Unix milliseconds.
    #[serde(default)]
    pub times: BTreeMap<String, u64>,
    /// Names as the container asked for them.
    #[serde(default)]
    pub requested: Vec<ModuleName>,
    /// Modules this container's request inserted.
    #[serde(default)]
    pub inserted: Vec<ModuleName>,
    /// The whole closure the container needs, live when its load finished.
    #[serde(default)]
    pub holds: Vec<ModuleName>,
    /// While loading: the modules the plan was about to insert.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<ModuleName>,
    /// The runtime's state directory for this container, relative to the root, when one
    /// existed at the hook (`run/runc/ID`): gone means the container is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_state: Option<String>,
}

impl ContainerRecord {
    pub fn new(id: &str, stage: RecordStage) -> Self {
        Self {
            id: id.to_string(),
            stage,
            times: BTreeMap::new(),
            requested: Vec::new(),
            inserted: Vec::new(),
            holds: Vec::new(),
            pending: Vec::new(),
            runtime_state: None,
        }
    }

    /// The latest time recorded, for gc's grace period.
    pub fn last_time(&self) -> u64 {
        self.times.values().copied().max().unwrap_or(0)
    }

    /// Parses a record read from the file named for `key` ([`record_key`]).
    pub fn parse(bytes: &[u8], key: &str) -> Result<Self, DocError> {
        let r: ContainerRecord = serde_json::from_slice(bytes).map_err(DocError::Json)?;
        if r.id.is_empty() {
            return Err(DocError::NoId);
        }
        if record_key(&r.id) != key {
            return Err(DocError::Misfiled { id: r.id });
        }
        Ok(r)
    }

    pub fn render(&self) -> Vec<u8> {
        render(self)
    }
}

/// A module modgate inserted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owned {
    /// Unix milliseconds.
    pub loaded_at: u64,
    /// The container whose request inserted it.
    pub by: String,
    /// Insertion order across all requests: modgate inserts a dependency before the
    /// modules that need it, so a higher number never comes before a lower one in a
    /// dependency chain.
    pub seq: u64,
    /// Which load of the module this was (the inode of `/sys/module/NAME`, new on
    /// every load): a module someone removed and loaded again is no longer ours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<u64>,
}

/// `modules.json`: every module modgate inserted and that is still live.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    #[serde(default)]
    pub next_seq: u64,
    #[serde(default)]
    pub modules: BTreeMap<ModuleName, Owned>,
}

impl Ledger {
    pub fn parse(bytes: &[u8]) -> Result<Self, DocError> {
        serde_json::from_slice(bytes).map_err(DocError::Json)
    }

    pub fn render(&self) -> Vec<u8> {
        render(self)
    }

    pub fn owns(&self, module: &str) -> bool {
        self.modules.contains_key(module)
    }

    /// Records that `by` inserted `module` now; a module already owned keeps its entry.
    pub fn insert(&mut self, module: &ModuleName, by: &str, now: u64, instance: Option<u64>) {
        if self.modules.contains_key(module) {
            return;
        }
        self.next_seq += 1;
        self.modules.insert(
            module.clone(),
            Owned {
                loaded_at: now,
                by: by.to_string(),
                seq: self.next_seq,
                instance,
            },
        );
    }
}

fn render<T: Serialize>(doc: &T) -> Vec<u8> {
    // Serialising these plain structs cannot fail (string keys, no floats).
    let mut v = serde_json::to_vec_pretty(doc).unwrap_or_default();
    v.push(b'\n');
    v
}

/// The file name (without `.json`) of a container's record. Container ids are free
/// text to the OCI spec, so anything outside `[A-Za-z0-9_+-]` is written `%XX` (a dot
/// too: no `.`, `..` or hidden names), and a long id keeps a prefix and a hash.
pub fn record_key(id: &str) -> String {
    const MAX: usize = 200;
    let mut key = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'+' {
            key.push(b as char);
        } else {
            key.push_str(&format!("%{b:02X}"));
        }
    }
    if key.len() <= MAX {
        return key;
    }
    let mut cut = 180;
    while !key.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}~{:016x}", &key[..cut], fnv1a(id.as_bytes()))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Unix milliseconds as `2024-05-01T12:00:00Z` (UTC, to the second).
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mn(n: &str) -> ModuleName {
        ModuleName::parse(n).expect("name")
    }

    #[test]
    fn record_keys_are_safe_file_names() {
        let table: &[(&str, &str)] = &[
            ("ctr1", "ctr1"),
            ("a-b_c+d", "a-b_c+d"),
            ("..", "%2E%2E"),
            (".hidden", "%2Ehidden"),
            ("a/b", "a%2Fb"),
            ("ü", "%C3%BC"),
            ("%41", "%2541"),
        ];
        for (id, want) in table {
            assert_eq!(record_key(id), *want, "{id:?}");
        }
        let long = "x".repeat(300);
        let k = record_key(&long);
        assert!(k.len() < 220 && k.starts_with(&"x".repeat(180)), "{k}");
        assert_ne!(k, record_key(&"x".repeat(301)));
    }

    #[test]
    fn records_round_trip_and_refuse_damage() {
        let mut r = ContainerRecord::new("ctr1", RecordStage::Holding);
        r.times.insert("prestart".into(), 1_700_000_000_000);
        r.requested = vec![mn("ip_vs")];
        r.holds = vec![mn("libcrc32c"), mn("ip_vs")];
        let bytes = r.render();
        assert_eq!(ContainerRecord::parse(&bytes, "ctr1").unwrap(), r);
        assert_eq!(r.last_time(), 1_700_000_000_000);

        let table: &[(&str, &str, &str)] = &[
            ("{", "ctr1", "not a valid state document"),
            (r#"{"id":"","stage":"holding"}"#, "", "empty container id"),
            (r#"{"id":"ctr1","stage":"dancing"}"#, "ctr1", "not a valid"),
            (
                r#"{"id":"ctr2","stage":"holding"}"#,
                "ctr1",
                "another container's",
            ),
            (
                r#"{"id":"ctr1","stage":"holding","holds":["../../etc"]}"#,
                "ctr1",
                "module name \"../../etc\"",
            ),
            (
                r#"{"id":"ctr1","stage":"holding","holds":["ip-vs"]}"#,
                "ctr1",
                "not in normal form",
            ),
        ];
        for (text, key, want) in table {
            let e = ContainerRecord::parse(text.as_bytes(), key).unwrap_err();
            let line = crate::error_line(&e);
            assert!(line.contains(want), "{text}: {line}");
        }
        // Fields a later version adds are ignored.
        let r = ContainerRecord::parse(
            br#"{"id":"c","stage":"loading","pending":["dummy"],"future":1}"#,
            "c",
        )
        .unwrap();
        assert_eq!(r.pending, [mn("dummy")]);
    }

    #[test]
    fn ledger_numbers_insertions_and_keeps_first_owner() {
        let mut l = Ledger::default();
        l.insert(&mn("libcrc32c"), "a", 10, Some(7));
        l.insert(&mn("ip_vs"), "a", 11, None);
        l.insert(&mn("libcrc32c"), "b", 12, None);
        assert_eq!(l.modules["libcrc32c"].by, "a");
        assert_eq!(l.modules["libcrc32c"].seq, 1);
        assert_eq!(l.modules["ip_vs"].seq, 2);
        assert!(l.owns("ip_vs") && !l.owns("dummy"));
        assert_eq!(Ledger::parse(&l.render()).unwrap(), l);
        for (text, want) in [
            (
                &br#"{"modules":{"a b":{"loaded_at":1,"by":"x","seq":1}}}"#[..],
                "module name \"a b\"",
            ),
            (
                br#"{"modules":{"ip-vs":{"loaded_at":1,"by":"x","seq":1}}}"#,
                "not in normal form",
            ),
        ] {
            let e = Ledger::parse(text).unwrap_err();
            assert!(crate::error_line(&e).contains(want), "{e:?}");
        }
    }

    #[test]
    fn utc_formats_civil_time() {
        let table: &[(u64, &str)] = &[
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400_000, "2000-02-29T00:00:00Z"),
            (1_700_000_000_999, "2023-11-14T22:13:20Z"),
            (4_102_444_799_000, "2099-12-31T23:59:59Z"),
        ];
        for (ms, want) in table {
            assert_eq!(utc(*ms), *want);
        }
    }
}
