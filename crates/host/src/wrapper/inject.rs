//! Adds modgate's hooks to a bundle's `config.json`, for the runtime wrapper (Docker and
//! containerd have no hooks.d). Every top-level field other than `hooks`, and every
//! existing hook entry, is copied byte for byte: the file is split into raw JSON values,
//! never decoded into a typed spec that could drop or reformat what it does not know.

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::engines::{is_modgate_path, EngineError, HookCommand};

/// A JSON object as its keys and raw values, in file order.
struct RawObject(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for RawObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawObject;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<RawObject, A::Error> {
                let mut v = Vec::new();
                while let Some(e) = m.next_entry::<String, Box<RawValue>>()? {
                    v.push(e);
                }
                Ok(RawObject(v))
            }
        }
        d.deserialize_map(V)
    }
}

impl RawObject {
    fn get(&self, key: &str) -> Option<&RawValue> {
        // Go's encoding/json (runc) keeps the last of duplicate keys; so do we.
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| &**v)
    }

    fn set(&mut self, key: &str, value: Box<RawValue>) {
        match self.0.iter().rposition(|(k, _)| k == key) {
            Some(i) => self.0[i].1 = value,
            None => self.0.push((key.to_string(), value)),
        }
    }

    fn render(&self) -> String {
        let mut out = String::from("{");
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&serde_json::Value::String(k.clone()).to_string());
            out.push(':');
            out.push_str(v.get());
        }
        out.push('}');
        out
    }
}

#[derive(Deserialize)]
struct HookView {
    #[serde(default)]
    path: String,
}

fn shape(what: &str, reason: impl Into<String>) -> EngineError {
    EngineError::Shape {
        what: what.to_string(),
        reason: reason.into(),
    }
}

fn json_err(what: &str) -> impl Fn(serde_json::Error) -> EngineError + '_ {
    move |source| EngineError::Json {
        what: what.to_string(),
        source,
    }
}

/// Whether a stage's list already runs modgate.
fn has_modgate(list: &[Box<RawValue>], ours: &str) -> bool {
    list.iter().any(|e| {
        serde_json::from_str::<HookView>(e.get()).is_ok_and(|h| is_modgate_path(&h.path, ours))
    })
}

/// The new `config.json`, or `None` when every stage already runs modgate.
pub fn add_hooks(
    config: &[u8],
    hook: &HookCommand,
    stages: &[&str],
    what: &str,
) -> Result<Option<String>, EngineError> {
    let text = std::str::from_utf8(config).map_err(|_| shape(what, "not UTF-8"))?;
    let mut top: RawObject = serde_json::from_str(text).map_err(json_err(what))?;
    let mut hooks: RawObject = match top.get("hooks") {
        None => RawObject(Vec::new()),
        Some(r) if r.get() == "null" => RawObject(Vec::new()),
        Some(r) => {
            serde_json::from_str(r.get()).map_err(|_| shape(what, "\"hooks\" is not an object"))?
        }
    };
    let mut changed = false;
    for stage in stages {
        let mut list: Vec<Box<RawValue>> = match hooks.get(stage) {
            None => Vec::new(),
            Some(r) if r.get() == "null" => Vec::new(),
            Some(r) => serde_json::from_str(r.get())
                .map_err(|_| shape(what, format!("\"hooks.{stage}\" is not a list")))?,
        };
        if has_modgate(&list, &hook.path) {
            continue;
        }
        let entry = serde_json::to_string(&hook.entry(stage)).map_err(json_err(what))?;
        list.push(RawValue::from_string(entry).map_err(json_err(what))?);
        let list = serde_json::to_string(&list).map_err(json_err(what))?;
        hooks.set(stage, RawValue::from_string(list).map_err(json_err(what))?);
        changed = true;
    }
    if !changed {
        return Ok(None);
    }
    top.set(
        "hooks",
        RawValue::from_string(hooks.render()).map_err(json_err(what))?,
    );
    Ok(Some(top.render()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn hook() -> HookCommand {
        HookCommand::new("/usr/local/bin/modgate")
    }

    const STAGES: [&str; 2] = ["prestart", "poststop"];

    #[test]
    fn adds_to_a_config_without_hooks() {
        let cfg = br#"{"ociVersion":"1.0.2","process":{"env":["A=1"],"x-new":1.50},"linux":{"n":12345678901234567890}}"#;
        let out = add_hooks(cfg, &hook(), &STAGES, "c").unwrap().unwrap();
        // Other fields are copied byte for byte, numbers included.
        assert!(out.starts_with(r#"{"ociVersion":"1.0.2","process":{"env":["A=1"],"x-new":1.50},"linux":{"n":12345678901234567890},"hooks":{"#), "{out}");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["hooks"]["prestart"], json!([hook().entry("prestart")]));
        assert_eq!(v["hooks"]["poststop"], json!([hook().entry("poststop")]));
    }

    /// A lone surrogate escape is not JSON to serde_json's strict reader, but runc's
    /// Go reader takes it (as U+FFFD) and serde_json's raw values pass it: an existing
    /// hook holding one is copied as it was, not reencoded or refused. From the
    /// config_view fuzz target.
    #[test]
    fn a_lone_surrogate_is_copied_as_it_was() {
        let hook_path = r#""/usr/bin/nvidia-con\ud800tainer-hook""#;
        let cfg = format!(r#"{{"hooks":{{"prestart":[{{"path":{hook_path}}}],"poststop":null}}}}"#);
        assert!(serde_json::from_str::<Value>(&cfg).is_err());
        let out = add_hooks(cfg.as_bytes(), &hook(), &STAGES, "c")
            .unwrap()
            .unwrap();
        assert!(
            out.contains(&format!(r#"[{{"path":{hook_path}}},{{"#)),
            "{out}"
        );
        assert_eq!(
            add_hooks(out.as_bytes(), &hook(), &STAGES, "c").unwrap(),
            None
        );
    }

    #[test]
    fn cases() {
        let ours_pre = serde_json::to_string(&hook().entry("prestart")).unwrap();
        // (config, stages that gain an entry)
        let cases: Vec<(String, Vec<&str>)> = vec![
            (r#"{"hooks":null}"#.into(), vec!["prestart", "poststop"]),
            (r#"{"hooks":{"prestart":null}}"#.into(), vec!["prestart", "poststop"]),
            (
                format!(r#"{{"hooks":{{"prestart":[{ours_pre}]}}}}"#),
                vec!["poststop"],
            ),
            (
                r#"{"hooks":{"prestart":[{"path":"/usr/bin/nvidia-container-runtime-hook","args":["x","prestart"]}],"poststop":[{"path":"/opt/modgate","args":["modgate","hook","poststop"]}],"createRuntime":[{"path":"/x"}]}}"#.into(),
                vec!["prestart"],
            ),
        ];
        for (cfg, gained) in cases {
            let before: Value = serde_json::from_str(&cfg).unwrap();
            let out = add_hooks(cfg.as_bytes(), &hook(), &STAGES, "c")
                .unwrap()
                .unwrap();
            let after: Value = serde_json::from_str(&out).unwrap();
            for stage in STAGES {
                let old = before["hooks"][stage]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let new = after["hooks"][stage]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if gained.contains(&stage) {
                    assert_eq!(&new[..old.len()], &old[..], "{cfg}");
                    assert_eq!(new.last(), Some(&hook().entry(stage)), "{cfg}");
                    assert_eq!(new.len(), old.len() + 1);
                } else {
                    assert_eq!(new, old, "{cfg}");
                }
            }
            assert_eq!(
                after["hooks"]["createRuntime"],
                before["hooks"]["createRuntime"]
            );
            // Once there, never twice.
            assert_eq!(
                add_hooks(out.as_bytes(), &hook(), &STAGES, "c").unwrap(),
                None
            );
        }
    }

    #[test]
    fn rejects_what_a_runtime_would() {
        for bad in [
            &b"{"[..],
            b"[]",
            b"{\"hooks\":[]}",
            b"{\"hooks\":{\"prestart\":{}}}",
            b"\xff",
        ] {
            assert!(add_hooks(bad, &hook(), &STAGES, "c").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn duplicate_keys_last_wins() {
        let out = add_hooks(
            br#"{"hooks":{"prestart":[]},"a":1,"hooks":{}}"#,
            &hook(),
            &["prestart"],
            "c",
        )
        .unwrap()
        .unwrap();
        assert!(
            out.starts_with(r#"{"hooks":{"prestart":[]},"a":1,"hooks":{"prestart":[{"#),
            "{out}"
        );
    }
}
