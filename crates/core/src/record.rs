//! The documents of the state store, as bytes: one record per container (what it asked
//! for, what its request inserted, what it holds) and the ledger of the modules modgate
//! inserted and so owns. Every module name is a [`ModuleName`] in normal form, checked
//! as the file is deserialised, so a damaged file is refused whole.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::name::ModuleName;

/// Largest state document written or read back; anything bigger is damaged.
pub const MAX_DOC_BYTES: u64 = 1 << 20;

/// Longest container id modgate records, in bytes. runc and crun name a directory
/// after the id (`/run/runc/ID`), so they cannot go past 255 bytes; containerd, Docker
/// and Kubernetes use 64 hex digits. A record holds the id and its bundle path
/// (at most 4,096 bytes), so it stays far below [`MAX_DOC_BYTES`].
pub const MAX_ID_BYTES: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum DocError {
    #[error("not a valid state document")]
    Json(#[source] serde_json::Error),
    #[error("empty container id")]
    NoId,
    #[error("record of container {id:?} is stored under another container's file name")]
    Misfiled { id: String },
    #[error("container id is {len} bytes long, more than {MAX_ID_BYTES}")]
    IdTooLong { len: usize },
    #[error("document is {len} bytes long, more than {MAX_DOC_BYTES}")]
    TooLarge { len: usize },
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
    /// The bundle the runtime gave at the hook: with the id, who the container is. Ids
    /// are unique only within one runtime root or containerd namespace.
    #[serde(default)]
    pub bundle: String,
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
    /// While loading: each module this load has inserted, written right after its
    /// insertion returned and before anything else. The proof recovery needs: a module
    /// that is only pending may have been loaded by anyone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub progress: Vec<Insertion>,
    /// The runtime's state directory for this container, relative to the root, when one
    /// existed at the hook (`run/runc/ID`): gone means the container is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_state: Option<String>,
}

impl ContainerRecord {
    pub fn new(id: &str, stage: RecordStage) -> Self {
        Self {
            id: id.to_string(),
            bundle: String::new(),
            stage,
            times: BTreeMap::new(),
            requested: Vec::new(),
            inserted: Vec::new(),
            holds: Vec::new(),
            pending: Vec::new(),
            progress: Vec::new(),
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
        check_id(&r.id)?;
        if record_key(&r.id) != key {
            return Err(DocError::Misfiled { id: r.id });
        }
        Ok(r)
    }

    /// The record as written; a record larger than a reader accepts is refused here.
    pub fn render(&self) -> Result<Vec<u8>, DocError> {
        check_id(&self.id)?;
        let v = render(self);
        if v.len() as u64 > MAX_DOC_BYTES {
            return Err(DocError::TooLarge { len: v.len() });
        }
        Ok(v)
    }

    /// Whether this record is the one of the container `id` in `bundle`.
    pub fn is(&self, id: &str, bundle: &str) -> bool {
        self.id == id && self.bundle == bundle
    }
}

/// One insertion a load made, as its record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Insertion {
    pub module: ModuleName,
    /// Which load of the module it was (the inode of `/sys/module/NAME`): the same
    /// module removed and loaded again by someone else is not this insertion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<u64>,
}

/// Refuses ids modgate does not record (longer than [`MAX_ID_BYTES`]).
pub fn check_id(id: &str) -> Result<(), DocError> {
    if id.len() > MAX_ID_BYTES {
        return Err(DocError::IdTooLong { len: id.len() });
    }
    Ok(())
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

impl Owned {
    pub fn parse(bytes: &[u8]) -> Result<Self, DocError> {
        serde_json::from_slice(bytes).map_err(DocError::Json)
    }

    pub fn render(&self) -> Vec<u8> {
        render(self)
    }
}

/// Every module modgate inserted and that is still live: the store keeps one
/// [`Owned`] per module; this is all of them at once, for `status` and `gc`.
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

/// The file name (without `.json`) of a container's record, and its name in the
/// holder lists: the SHA-256 of the id, in hex. Container ids are free text to the OCI
/// spec; a digest is a safe file name of fixed length, and two ids never share one.
/// The record holds the id itself, checked when it is read.
pub fn record_key(id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(id.as_bytes());
    let mut key = String::with_capacity(64);
    for b in digest {
        key.push_str(&format!("{b:02x}"));
    }
    key
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
    fn record_keys_are_digests_of_the_whole_id() {
        // SHA-256 of "ctr1", as `printf ctr1 | sha256sum` gives it.
        assert_eq!(
            record_key("ctr1"),
            "225ef64e9ecabbad5b4da660887c5e41bc0e9f9aecb44cd68421d0fd8a2283f7"
        );
        let ids = ["..", ".hidden", "a/b", "ü", "%41", "", "x"];
        for id in ids {
            let k = record_key(id);
            assert_eq!(k.len(), 64, "{id:?}");
            assert!(k
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        }
        // Long ids that share a long prefix still get different keys.
        let a = format!("{}a", "x".repeat(5000));
        let b = format!("{}b", "x".repeat(5000));
        assert_ne!(record_key(&a), record_key(&b));
    }

    #[test]
    fn ids_past_the_limit_are_neither_written_nor_read() {
        let long = "x".repeat(MAX_ID_BYTES + 1);
        let r = ContainerRecord::new(&long, RecordStage::Holding);
        let e = r.render().unwrap_err();
        assert!(
            matches!(e, DocError::IdTooLong { len } if len == MAX_ID_BYTES + 1),
            "{e}"
        );
        let text = format!(r#"{{"id":"{long}","stage":"holding"}}"#);
        let e = ContainerRecord::parse(text.as_bytes(), &record_key(&long)).unwrap_err();
        assert!(crate::error_line(&e).contains("more than 1024"), "{e}");
        let ok = ContainerRecord::new(&"x".repeat(MAX_ID_BYTES), RecordStage::Holding);
        let bytes = ok.render().expect("at the limit");
        assert_eq!(
            ContainerRecord::parse(&bytes, &record_key(&ok.id)).unwrap(),
            ok
        );
        // A record too large to read back is refused when written.
        let mut big = ContainerRecord::new("c", RecordStage::Holding);
        big.bundle = "b".repeat(MAX_DOC_BYTES as usize);
        assert!(matches!(big.render(), Err(DocError::TooLarge { .. })));
    }

    #[test]
    fn records_round_trip_and_refuse_damage() {
        let mut r = ContainerRecord::new("ctr1", RecordStage::Holding);
        r.times.insert("prestart".into(), 1_700_000_000_000);
        r.requested = vec![mn("ip_vs")];
        r.holds = vec![mn("libcrc32c"), mn("ip_vs")];
        r.bundle = "/srv/bundles/ctr1".into();
        let bytes = r.render().unwrap();
        assert_eq!(
            ContainerRecord::parse(&bytes, &record_key("ctr1")).unwrap(),
            r
        );
        assert!(r.is("ctr1", "/srv/bundles/ctr1") && !r.is("ctr1", "/other"));
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
            let e = ContainerRecord::parse(text.as_bytes(), &record_key(key)).unwrap_err();
            let line = crate::error_line(&e);
            assert!(line.contains(want), "{text}: {line}");
        }
        // Fields a later version adds are ignored.
        let r = ContainerRecord::parse(
            br#"{"id":"c","stage":"loading","pending":["dummy"],"future":1}"#,
            &record_key("c"),
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
