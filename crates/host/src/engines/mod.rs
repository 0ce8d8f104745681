//! The container engines modgate wires into, one module each: what `modgate install`
//! merges into the engine's configuration (pure functions from a file's text to its new
//! text), the plan that writes it under a root, and what `modgate doctor` reads back and
//! checks. This file holds what they share: the hook command, the JSON editing helpers.

pub mod check;
pub mod containerd;
pub mod docker;
pub mod hooksd;
pub mod isulad;
pub mod plan;
pub mod syscontainer;

pub use check::Wiring;
pub use plan::{host_path, Action, HookTarget, InstallError, InstallPlan};

use serde_json::{json, Map, Value};

/// The stages modgate hooks into: load before the container starts, release after it.
pub const STAGES: [&str; 2] = ["prestart", "poststop"];

/// Seconds an engine gives the hook; above the hook's own 20 s timeout (its loads stop
/// and roll back at 18 s) so that the hook, not the engine, ends a slow load.
pub const HOOK_TIMEOUT: u64 = 30;

/// The name modgate's runtime wrapper is registered under (Docker, containerd, the
/// Kubernetes RuntimeClass handler).
pub const RUNTIME_NAME: &str = "modgate";

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{what} is not valid JSON")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{what} is not valid TOML")]
    Toml {
        what: String,
        #[source]
        source: Box<toml_edit::TomlError>,
    },
    #[error("{what}: {reason}")]
    Shape { what: String, reason: String },
}

/// The hook command modgate asks an engine to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookCommand {
    /// Absolute path of the modgate binary.
    pub path: String,
    /// Arguments after `hook STAGE` (for example `--policy FILE`).
    pub extra_args: Vec<String>,
}

impl HookCommand {
    pub fn new(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            extra_args: Vec::new(),
        }
    }

    /// `argv` as the engine passes it, `argv[0]` included.
    pub fn args(&self, stage: &str) -> Vec<String> {
        let mut a = vec!["modgate".to_string(), "hook".to_string(), stage.to_string()];
        a.extend(self.extra_args.iter().cloned());
        a
    }

    /// One OCI hook entry (the shape runtime-spec, iSulad and hooks.d share).
    pub fn entry(&self, stage: &str) -> Value {
        json!({ "path": self.path, "args": self.args(stage), "timeout": HOOK_TIMEOUT })
    }
}

/// Whether a hook's executable is modgate: the same path as ours, or any file named
/// `modgate` (another install prefix of the same tool).
pub fn is_modgate_path(path: &str, ours: &str) -> bool {
    path == ours || basename(path) == "modgate"
}

/// Whether a runtime's executable is modgate's wrapper.
pub fn is_wrapper_path(path: &str) -> bool {
    basename(path) == "modgate-runtime"
}

pub fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The result of merging modgate's settings into a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub text: String,
    /// False when the file already says everything (the text is then the original).
    pub changed: bool,
}

impl Edit {
    fn unchanged(text: &str) -> Self {
        Self {
            text: text.to_string(),
            changed: false,
        }
    }
}

/// Parses a JSON object file; a missing or blank file is an empty object.
pub(crate) fn parse_object(
    text: Option<&str>,
    what: &str,
) -> Result<Map<String, Value>, EngineError> {
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return Ok(Map::new());
    };
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(EngineError::Shape {
            what: what.to_string(),
            reason: "the top level is not a JSON object".into(),
        }),
        Err(source) => Err(EngineError::Json {
            what: what.to_string(),
            source,
        }),
    }
}

/// Applies `f` to a JSON object file. Unchanged when the result means the same as the
/// original, so a second run rewrites nothing, whatever the file's formatting.
pub(crate) fn edit_object(
    text: Option<&str>,
    what: &str,
    f: impl FnOnce(&mut Map<String, Value>) -> Result<(), EngineError>,
) -> Result<Edit, EngineError> {
    let before = parse_object(text, what)?;
    let mut after = before.clone();
    f(&mut after)?;
    if let Some(t) = text {
        if after == before && !t.trim().is_empty() {
            return Ok(Edit::unchanged(t));
        }
    }
    Ok(Edit {
        text: pretty(&Value::Object(after)),
        changed: true,
    })
}

pub(crate) fn pretty(v: &Value) -> String {
    // Serialising a Value cannot fail: its keys are strings.
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

/// The object at `key`, created when absent; an error naming the file when it is
/// something else.
pub(crate) fn object_at<'a>(
    m: &'a mut Map<String, Value>,
    key: &str,
    what: &str,
) -> Result<&'a mut Map<String, Value>, EngineError> {
    let v = m
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if v.is_null() {
        *v = Value::Object(Map::new());
    }
    v.as_object_mut().ok_or_else(|| EngineError::Shape {
        what: what.to_string(),
        reason: format!("{key:?} is not an object"),
    })
}

/// Puts `want` among a stage's hook entries: replaces the first modgate entry (and
/// drops any other), or appends it. `list` is the stage's array.
pub(crate) fn place_entry(list: &mut Vec<Value>, want: Value, ours: &str) {
    let is_ours = |v: &Value| {
        v.get("path")
            .and_then(Value::as_str)
            .is_some_and(|p| is_modgate_path(p, ours))
    };
    match list.iter().position(is_ours) {
        Some(i) => {
            list[i] = want;
            let mut seen = false;
            list.retain(|v| {
                if !is_ours(v) {
                    return true;
                }
                let first = !seen;
                seen = true;
                first
            });
        }
        None => list.push(want),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_command() {
        let mut h = HookCommand::new("/usr/local/bin/modgate");
        h.extra_args = vec!["--policy".into(), "/p.toml".into()];
        assert_eq!(
            h.args("poststop"),
            ["modgate", "hook", "poststop", "--policy", "/p.toml"]
        );
        assert_eq!(
            h.entry("prestart"),
            json!({"path": "/usr/local/bin/modgate",
                   "args": ["modgate", "hook", "prestart", "--policy", "/p.toml"],
                   "timeout": 30})
        );
    }

    #[test]
    fn recognises_modgate() {
        let cases = [
            ("/usr/local/bin/modgate", "/opt/x/modgate", true),
            ("/opt/x/modgate", "/opt/x/modgate", true),
            ("/opt/x/modgatex", "/usr/bin/modgate", false),
            (
                "/var/lib/isulad/hooks/syscontainer-hooks",
                "/usr/bin/modgate",
                false,
            ),
            ("modgate", "/usr/bin/modgate", true),
        ];
        for (path, ours, want) in cases {
            assert_eq!(is_modgate_path(path, ours), want, "{path} vs {ours}");
        }
        assert!(is_wrapper_path("/usr/local/bin/modgate-runtime"));
        assert!(!is_wrapper_path("/usr/sbin/runc"));
    }

    #[test]
    fn place_entry_replaces_dedups_or_appends() {
        let ours = "/usr/bin/modgate";
        let want = json!({"path": ours, "args": ["modgate", "hook", "prestart"]});
        let other = json!({"path": "/usr/bin/other"});
        let old = json!({"path": "/opt/modgate", "args": []});
        let cases: Vec<(Vec<Value>, Vec<Value>)> = vec![
            (vec![], vec![want.clone()]),
            (vec![other.clone()], vec![other.clone(), want.clone()]),
            (
                vec![old.clone(), other.clone(), old.clone()],
                vec![want.clone(), other.clone()],
            ),
            (vec![want.clone()], vec![want.clone()]),
        ];
        for (mut list, expect) in cases {
            place_entry(&mut list, want.clone(), ours);
            assert_eq!(list, expect);
        }
    }

    #[test]
    fn edit_object_is_idempotent_and_strict() {
        let set = |m: &mut Map<String, Value>| {
            m.insert("a".into(), json!(1));
            Ok(())
        };
        let e = edit_object(None, "f", set).unwrap();
        assert!(e.changed);
        assert_eq!(e.text, "{\n  \"a\": 1\n}\n");
        // Same meaning, other formatting: left alone.
        let e2 = edit_object(Some("{\"a\":1}"), "f", set).unwrap();
        assert!(!e2.changed);
        assert_eq!(e2.text, "{\"a\":1}");
        assert!(edit_object(Some("   \n"), "f", set).unwrap().changed);
        assert!(matches!(
            edit_object(Some("{\"a\":"), "f", set),
            Err(EngineError::Json { .. })
        ));
        assert!(matches!(
            edit_object(Some("[1]"), "f", set),
            Err(EngineError::Shape { .. })
        ));
    }
}
