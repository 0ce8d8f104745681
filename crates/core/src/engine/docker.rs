//! Docker's `/etc/docker/daemon.json`: modgate's wrapper registered under `runtimes`
//! (and, when asked, made `default-runtime`). Every other key is kept as it is.

use serde_json::Value;

use super::{
    edit_object, is_wrapper_path, object_at, parse_object, Edit, EngineError, RUNTIME_NAME,
};

pub fn merge(
    existing: Option<&str>,
    wrapper: &str,
    default: bool,
    what: &str,
) -> Result<Edit, EngineError> {
    edit_object(existing, what, |m| {
        let runtimes = object_at(m, "runtimes", what)?;
        let entry = object_at(runtimes, RUNTIME_NAME, &format!("{what}: runtimes"))?;
        // Keep runtimeArgs or anything else an operator added to our entry.
        entry.insert("path".into(), Value::String(wrapper.to_string()));
        if default {
            m.insert("default-runtime".into(), Value::String(RUNTIME_NAME.into()));
        }
        Ok(())
    })
}

/// modgate's registration in a daemon.json, for `doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub name: String,
    pub path: String,
    pub default: bool,
}

pub fn modgate_runtime(text: &str, what: &str) -> Result<Option<Found>, EngineError> {
    let m = parse_object(Some(text), what)?;
    let default = m.get("default-runtime").and_then(Value::as_str);
    let Some(runtimes) = m.get("runtimes").and_then(Value::as_object) else {
        return Ok(None);
    };
    Ok(runtimes.iter().find_map(|(name, v)| {
        let path = v.get("path").and_then(Value::as_str)?;
        is_wrapper_path(path).then(|| Found {
            name: name.clone(),
            path: path.to_string(),
            default: default == Some(name.as_str()),
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const W: &str = "/usr/local/bin/modgate-runtime";

    #[test]
    fn merges() {
        let cases: Vec<(Option<&str>, bool, Value)> = vec![
            (None, false, json!({"runtimes": {"modgate": {"path": W}}})),
            (
                Some(
                    r#"{"log-driver":"journald","runtimes":{"nvidia":{"path":"nvidia-container-runtime","runtimeArgs":[]}},"features":{"buildkit":true}}"#,
                ),
                false,
                json!({"log-driver": "journald",
                       "runtimes": {"nvidia": {"path": "nvidia-container-runtime", "runtimeArgs": []},
                                    "modgate": {"path": W}},
                       "features": {"buildkit": true}}),
            ),
            (
                Some(
                    r#"{"default-runtime":"runc","runtimes":{"modgate":{"path":"/old/modgate-runtime","runtimeArgs":["--debug"]}}}"#,
                ),
                true,
                json!({"default-runtime": "modgate",
                       "runtimes": {"modgate": {"path": W, "runtimeArgs": ["--debug"]}}}),
            ),
        ];
        for (input, default, want) in cases {
            let e = merge(input, W, default, "daemon.json").unwrap();
            assert!(e.changed);
            assert_eq!(serde_json::from_str::<Value>(&e.text).unwrap(), want);
            let again = merge(Some(&e.text), W, default, "daemon.json").unwrap();
            assert!(!again.changed, "second run changed {input:?}");
        }
    }

    #[test]
    fn keeps_key_order() {
        let e = merge(Some(r#"{"b": 1, "a": {"z": 1, "y": 2}}"#), W, false, "d").unwrap();
        let keys: Vec<&str> = e.text.lines().filter_map(|l| l.split('"').nth(1)).collect();
        assert_eq!(keys, ["b", "a", "z", "y", "runtimes", "modgate", "path"]);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "{",
            "[]",
            r#"{"runtimes": []}"#,
            r#"{"runtimes": {"modgate": "x"}}"#,
        ] {
            assert!(merge(Some(bad), W, false, "daemon.json").is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_back() {
        let e = merge(None, W, true, "d").unwrap();
        assert_eq!(
            modgate_runtime(&e.text, "d").unwrap(),
            Some(Found {
                name: "modgate".into(),
                path: W.into(),
                default: true
            })
        );
        assert_eq!(
            modgate_runtime(r#"{"runtimes":{"x":{"path":"runc"}}}"#, "d").unwrap(),
            None
        );
        assert_eq!(modgate_runtime("{}", "d").unwrap(), None);
    }
}
