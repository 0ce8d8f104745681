//! The only parts of OCI runtime data the hook reads: the state on stdin and, from the
//! bundle's `config.json`, `process.env` and `annotations`. Unknown fields are ignored so
//! a new runtime-spec field never breaks the hook.

use std::collections::BTreeMap;

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use crate::request::{Request, RequestError};

/// The annotation a container (or a Kubernetes pod on CRI-O) requests modules with.
pub const ANNOTATION: &str = "modgate.io/kernel-modules";
/// The environment variable of openEuler's system containers.
pub const ENV_VAR: &str = "KERNEL_MODULES";
/// Largest `config.json` the hook reads.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

#[derive(Debug, Clone, Deserialize)]
pub struct State {
    #[serde(default, rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub pid: Option<i64>,
    #[serde(default)]
    pub bundle: Option<String>,
    /// Older runc and iSulad's lxc driver.
    #[serde(default, rename = "bundlePath")]
    pub bundle_path: Option<String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// How much of serde_json's message an error shows: its messages quote the value they
/// did not expect, which a container may have made 1 MB long.
pub const SHOWN_JSON_ERROR_CHARS: usize = 160;

/// serde_json's error, its message [`crate::shortened`].
#[derive(Debug)]
pub struct JsonError(pub serde_json::Error);

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::shortened(
            &self.0.to_string(),
            SHOWN_JSON_ERROR_CHARS,
        ))
    }
}

// The message above is serde_json's own, shortened: it has no cause to show apart.
impl std::error::Error for JsonError {}

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("invalid OCI state on stdin")]
    State(#[source] JsonError),
    #[error("OCI state on stdin has no bundle (neither \"bundle\" nor \"bundlePath\")")]
    NoBundle,
    #[error("OCI state on stdin has an empty container id")]
    NoId,
    #[error("invalid config.json")]
    Config(#[source] JsonError),
}

impl State {
    pub fn parse(bytes: &[u8]) -> Result<Self, OciError> {
        let s: State = serde_json::from_slice(bytes).map_err(|e| OciError::State(JsonError(e)))?;
        if s.id.is_empty() {
            return Err(OciError::NoId);
        }
        if s.bundle().is_none() {
            return Err(OciError::NoBundle);
        }
        Ok(s)
    }

    pub fn bundle(&self) -> Option<&str> {
        self.bundle
            .as_deref()
            .or(self.bundle_path.as_deref())
            .filter(|b| !b.is_empty())
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Process {
    /// The value of the first `KERNEL_MODULES=` entry of `env`, as `getenv` finds it.
    /// The other entries are read (and must be strings) but not kept: a container
    /// start without a request allocates nothing for them.
    #[serde(default, rename = "env", deserialize_with = "request_entry")]
    kernel_modules: Option<String>,
}

fn request_entry<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_seq(FirstRequestEntry)
}

/// Walks `process.env` keeping the first `KERNEL_MODULES=` value.
struct FirstRequestEntry;

impl<'de> Visitor<'de> for FirstRequestEntry {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence of strings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut first = None;
        while let Some(value) = seq.next_element::<EnvEntry>()?.map(|e| e.0) {
            first = first.or(value);
        }
        Ok(first)
    }
}

/// One `NAME=value` entry: `Some(value)` for the request's variable, read without
/// allocating for the others.
struct EnvEntry(Option<String>);

impl<'de> Deserialize<'de> for EnvEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entry;
        impl Visitor<'_> for Entry {
            type Value = EnvEntry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, entry: &str) -> Result<EnvEntry, E> {
                let value = entry
                    .strip_prefix(ENV_VAR)
                    .and_then(|rest| rest.strip_prefix('='));
                Ok(EnvEntry(value.map(str::to_owned)))
            }
        }
        d.deserialize_str(Entry)
    }
}

/// `config.json`, reduced to what the hook reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConfigView {
    #[serde(default)]
    process: Option<Process>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl ConfigView {
    pub fn parse(bytes: &[u8]) -> Result<Self, OciError> {
        serde_json::from_slice(bytes).map_err(|e| OciError::Config(JsonError(e)))
    }

    /// The value of the first `KERNEL_MODULES=` entry, as `getenv` would find it.
    pub fn kernel_modules(&self) -> Option<&str> {
        self.process.as_ref()?.kernel_modules.as_deref()
    }

    /// The container's request: `KERNEL_MODULES`, then the annotation merged after it.
    pub fn request(&self) -> Result<Request, RequestError> {
        let mut r = Request::default();
        if let Some(v) = self.kernel_modules() {
            r.extend(v, "KERNEL_MODULES")?;
        }
        if let Some(v) = self.annotations.get(ANNOTATION) {
            r.extend(v, "annotation modgate.io/kernel-modules")?;
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_from_runtimes() {
        let crun = br#"{"ociVersion":"1.0","id":"ctr-crun1","pid":9642,"root":"rootfs","bundle":"/srv/b","status":"created","annotations":{"a":"b"}}"#;
        let runc = br#"{"ociVersion":"1.0.2-dev","id":"ctr-runc1","status":"creating","pid":9817,"bundle":"/srv/b"}"#;
        let old = br#"{"ociVersion":"1.0.0","id":"x","pid":1,"bundlePath":"/srv/old"}"#;
        let poststop = br#"{"ociVersion":"1.0.2-dev","id":"ctr","status":"stopped","bundle":"/srv/b","newField":{"x":1}}"#;
        assert_eq!(State::parse(crun).unwrap().bundle(), Some("/srv/b"));
        assert_eq!(State::parse(runc).unwrap().id, "ctr-runc1");
        assert_eq!(State::parse(old).unwrap().bundle(), Some("/srv/old"));
        assert_eq!(State::parse(poststop).unwrap().pid, None);
        assert!(matches!(
            State::parse(b"{\"id\":\"x\"}"),
            Err(OciError::NoBundle)
        ));
        assert!(matches!(
            State::parse(b"{\"id\":\"\",\"bundle\":\"/b\"}"),
            Err(OciError::NoId)
        ));
        assert!(matches!(State::parse(b"not json"), Err(OciError::State(_))));
        assert!(matches!(State::parse(b""), Err(OciError::State(_))));
    }

    #[test]
    fn request_from_env_and_annotation() {
        let c = ConfigView::parse(
            br#"{"ociVersion":"1.0.2","process":{"env":["PATH=/bin","KERNEL_MODULES_X=no","KERNEL_MODULES=ip_vs,ip_vs_wrr","KERNEL_MODULES=second"],"capabilities":{"bounding":["CAP_NEW_THING"]}},
                "annotations":{"modgate.io/kernel-modules":"dummy, ip_vs"},"unknown":[1,2]}"#,
        )
        .unwrap();
        assert_eq!(c.kernel_modules(), Some("ip_vs,ip_vs_wrr"));
        // An escaped name is the same name, as the runtime decodes it.
        let escaped = ConfigView::parse(br#"{"process":{"env":["KERNEL\u005fMODULES=dummy"]}}"#);
        assert_eq!(escaped.unwrap().kernel_modules(), Some("dummy"));
        // Every entry must still be a string, and env a sequence.
        assert!(ConfigView::parse(br#"{"process":{"env":["A=1",2]}}"#).is_err());
        assert!(ConfigView::parse(br#"{"process":{"env":"KERNEL_MODULES=x"}}"#).is_err());
        let names: Vec<String> = c
            .request()
            .unwrap()
            .names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, ["ip_vs", "ip_vs_wrr", "dummy"]);
        let none = ConfigView::parse(br#"{"process":{"env":["PATH=/bin"]}}"#).unwrap();
        assert!(none.request().unwrap().is_empty());
        let bad = ConfigView::parse(br#"{"process":{"env":["KERNEL_MODULES=-r,ip_vs"]}}"#).unwrap();
        assert!(bad.request().is_err());
        assert!(ConfigView::parse(b"{").is_err());
    }

    #[test]
    fn a_huge_value_of_the_wrong_type_makes_a_short_error() {
        let text = format!(r#"{{"process":{{"env":"{}"}}}}"#, "x".repeat(1 << 20));
        let e = ConfigView::parse(text.as_bytes()).unwrap_err();
        let line = crate::error_line(&e);
        assert!(line.len() < 300, "{} bytes", line.len());
        assert!(
            line.starts_with("invalid config.json: invalid type: string \"xxx"),
            "{line}"
        );
        assert!(
            line.contains("expected a sequence of strings at line 1 column"),
            "{line}"
        );
    }
}
