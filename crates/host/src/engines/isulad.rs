//! iSulad: a hook spec for `isula run --hook-spec FILE`, or modgate's entries merged
//! into the daemon-wide spec that `hook-spec` in `/etc/isulad/daemon.json` names. A spec
//! is `{"prestart":[{"path","args","env","timeout"}],"poststart":[...],"poststop":[...]}`;
//! modgate adds one entry to prestart and one to poststop and leaves every other entry
//! and key alone.

use serde_json::Value;

use super::plan::{malformed, read};
use super::{
    edit_object, is_modgate_path, place_entry, Edit, EngineError, HookCommand, HookTarget,
    InstallError, InstallPlan, Wiring, STAGES,
};
use crate::root::Root;

pub const DEFAULT_OUTPUT: &str = "/etc/modgate/isulad-hookspec.json";
pub const DAEMON_JSON: &str = "/etc/isulad/daemon.json";
pub const DEFAULT_DAEMON_SPEC: &str = "/etc/default/isulad/hooks/default.json";

/// The hook spec with modgate's entries in place.
pub fn merge(existing: Option<&str>, hook: &HookCommand, what: &str) -> Result<Edit, EngineError> {
    edit_object(existing, what, |spec| {
        for stage in STAGES {
            let v = spec
                .entry(stage.to_string())
                .or_insert_with(|| Value::Array(Vec::new()));
            if v.is_null() {
                *v = Value::Array(Vec::new());
            }
            let list = v.as_array_mut().ok_or_else(|| EngineError::Shape {
                what: what.to_string(),
                reason: format!("{stage:?} is not a list of hooks"),
            })?;
            place_entry(list, hook.entry(stage), &hook.path);
        }
        Ok(())
    })
}

/// The paths of modgate's hooks in a spec, per stage, for `doctor`.
pub fn modgate_hooks(text: &str, what: &str) -> Result<Vec<(String, String)>, EngineError> {
    let spec = super::parse_object(Some(text), what)?;
    let mut found = Vec::new();
    for (stage, list) in &spec {
        let Some(list) = list.as_array() else {
            continue;
        };
        for e in list {
            if let Some(p) = e.get("path").and_then(Value::as_str) {
                if is_modgate_path(p, "") {
                    found.push((stage.clone(), p.to_string()));
                }
            }
        }
    }
    Ok(found)
}

/// `daemon.json` with `hook-spec` set when it has none (iSulad applies the daemon-wide
/// spec only when this key names it).
pub fn daemon_json_with_spec(existing: &str, spec: &str, what: &str) -> Result<Edit, EngineError> {
    edit_object(Some(existing), what, |m| {
        if !m.get("hook-spec").is_some_and(|v| v.is_string()) {
            m.insert("hook-spec".into(), Value::String(spec.to_string()));
        }
        Ok(())
    })
}

/// The daemon-wide spec `daemon.json` names, if any.
pub fn daemon_spec_path(daemon_json: &str, what: &str) -> Result<Option<String>, EngineError> {
    let m = super::parse_object(Some(daemon_json), what)?;
    Ok(m.get("hook-spec")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string))
}

pub struct IsuladOptions {
    pub target: HookTarget,
    /// Where to write the per-container spec (host path).
    pub output: String,
    /// Merge into the daemon-wide spec instead.
    pub daemon_default: bool,
}

pub fn plan(root: &Root, o: &IsuladOptions) -> Result<InstallPlan, InstallError> {
    let mut plan = InstallPlan::default();
    let spec_path = if o.daemon_default {
        let daemon = read(root, DAEMON_JSON)?;
        let named = match &daemon {
            Some(t) => daemon_spec_path(t, DAEMON_JSON).map_err(malformed)?,
            None => None,
        };
        let spec = named
            .clone()
            .unwrap_or_else(|| DEFAULT_DAEMON_SPEC.to_string());
        match (&daemon, &named) {
            (Some(t), None) => {
                let edit = daemon_json_with_spec(t, &spec, DAEMON_JSON).map_err(malformed)?;
                plan.write(root, DAEMON_JSON, edit, true, 0o644)?;
            }
            (None, _) => plan.notes.push(format!(
                "no {DAEMON_JSON}: set \"hook-spec\": \"{spec}\" in iSulad's daemon configuration"
            )),
            _ => {}
        }
        spec
    } else {
        o.output.clone()
    };
    let existing = read(root, &spec_path)?;
    let edit = merge(existing.as_deref(), &o.target.hook, &spec_path).map_err(malformed)?;
    plan.write(root, &spec_path, edit, existing.is_some(), 0o644)?;

    for p in o.target.problems(root) {
        plan.notes
            .push(format!("warning: iSulad will refuse this hook: {p}"));
    }
    if o.daemon_default {
        plan.notes
            .push("restart iSulad to apply: systemctl restart isulad".into());
        plan.notes
            .push("then: isula run --rm -e KERNEL_MODULES=ip_vs busybox true".into());
    } else {
        plan.notes.push(format!(
            "run containers with: isula run --rm --hook-spec {spec_path} -e KERNEL_MODULES=ip_vs busybox true"
        ));
    }
    Ok(plan)
}

/// modgate's entries in one hook spec, added to the engine's wiring.
fn check_spec(root: &Root, spec: &str, w: &mut Wiring) {
    let Ok(Some(text)) = read(root, spec) else {
        return;
    };
    match modgate_hooks(&text, spec) {
        Err(e) => w.problems.push(modgate_core::error_line(&e)),
        Ok(found) if found.is_empty() => {}
        Ok(found) => {
            let mut stages: Vec<&str> = found.iter().map(|(s, _)| s.as_str()).collect();
            stages.dedup();
            let mut paths: Vec<&str> = found.iter().map(|(_, p)| p.as_str()).collect();
            paths.sort_unstable();
            paths.dedup();
            w.configured.push(format!(
                "{spec} runs {} at {}",
                paths.join(", "),
                stages.join(", ")
            ));
            for p in paths {
                w.runs(root, p);
            }
        }
    }
}

/// How modgate is wired into iSulad: its own spec, the daemon-wide spec, and the
/// syscontainer-tools hook slot.
pub fn wiring(root: &Root) -> Wiring {
    let mut w = Wiring::new(
        "iSulad",
        super::check::installed(root, "isulad", DAEMON_JSON),
        "modgate install isulad",
    );
    check_spec(root, DEFAULT_OUTPUT, &mut w);
    let daemon_spec = read(root, DAEMON_JSON)
        .ok()
        .flatten()
        .and_then(|t| daemon_spec_path(&t, DAEMON_JSON).ok().flatten())
        .unwrap_or_else(|| DEFAULT_DAEMON_SPEC.to_string());
    if daemon_spec != DEFAULT_OUTPUT {
        check_spec(root, &daemon_spec, &mut w);
    }
    super::syscontainer::check(root, &mut w);
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hook() -> HookCommand {
        HookCommand::new("/usr/local/bin/modgate")
    }

    #[test]
    fn merges_into_specs() {
        let ours_pre = hook().entry("prestart");
        let ours_post = hook().entry("poststop");
        let sch = json!({"path": "/var/lib/isulad/hooks/syscontainer-hooks",
                         "args": ["syscontainer-hooks", "--state", "prestart"], "env": []});
        let cases: Vec<(Option<&str>, Value)> = vec![
            (
                None,
                json!({"prestart": [ours_pre], "poststop": [ours_post]}),
            ),
            (
                Some(
                    r#"{"prestart":[{"path":"/var/lib/isulad/hooks/syscontainer-hooks","args":["syscontainer-hooks","--state","prestart"],"env":[]}],"poststart":[{"path":"/x"}]}"#,
                ),
                json!({"prestart": [sch, ours_pre], "poststart": [{"path": "/x"}], "poststop": [ours_post]}),
            ),
            (
                Some(
                    r#"{"prestart":null,"poststop":[{"path":"/old/modgate","args":["modgate"]}]}"#,
                ),
                json!({"prestart": [ours_pre], "poststop": [ours_post]}),
            ),
        ];
        for (input, want) in cases {
            let e = merge(input, &hook(), "spec").unwrap();
            assert!(e.changed);
            let got: Value = serde_json::from_str(&e.text).unwrap();
            assert_eq!(got, want, "from {input:?}");
            // The second run changes nothing.
            let again = merge(Some(&e.text), &hook(), "spec").unwrap();
            assert!(!again.changed);
            assert_eq!(again.text, e.text);
        }
    }

    #[test]
    fn rejects_malformed_specs() {
        for bad in ["{", "[]", r#"{"prestart": {}}"#, r#"{"poststop": "x"}"#] {
            assert!(merge(Some(bad), &hook(), "spec").is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_back() {
        let e = merge(None, &hook(), "spec").unwrap();
        let found = modgate_hooks(&e.text, "spec").unwrap();
        assert_eq!(
            found,
            [
                ("prestart".to_string(), "/usr/local/bin/modgate".to_string()),
                ("poststop".to_string(), "/usr/local/bin/modgate".to_string())
            ]
        );
        assert!(modgate_hooks("{}", "spec").unwrap().is_empty());
    }

    #[test]
    fn daemon_json_hook_spec() {
        let d = r#"{"group": "isula", "hook-spec": "/etc/default/isulad/hooks/default.json"}"#;
        assert_eq!(
            daemon_spec_path(d, "d").unwrap().as_deref(),
            Some("/etc/default/isulad/hooks/default.json")
        );
        assert!(!daemon_json_with_spec(d, "/other", "d").unwrap().changed);
        let e = daemon_json_with_spec(r#"{"group": "isula"}"#, "/s.json", "d").unwrap();
        assert!(e.changed);
        // Key order is kept; the new key goes last.
        assert_eq!(
            e.text,
            "{\n  \"group\": \"isula\",\n  \"hook-spec\": \"/s.json\"\n}\n"
        );
        assert_eq!(daemon_spec_path("{}", "d").unwrap(), None);
    }

    #[test]
    fn daemon_default_install_then_doctor() {
        use crate::doctor::Status;
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        let w = |rel: &str, text: &str| {
            let p = d.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        w("etc/isulad/daemon.json", r#"{"group": "isula"}"#);
        assert_eq!(wiring(&root).check().status, Status::Warn);
        let o = IsuladOptions {
            target: HookTarget { hook: hook() },
            output: DEFAULT_OUTPUT.into(),
            daemon_default: true,
        };
        plan(&root, &o).unwrap().apply().unwrap();
        assert_eq!(
            daemon_spec_path(
                &std::fs::read_to_string(root.path(DAEMON_JSON)).unwrap(),
                "d"
            )
            .unwrap()
            .as_deref(),
            Some(DEFAULT_DAEMON_SPEC)
        );
        // The hook's binary is missing from this root: wired, but iSulad would refuse it.
        let c = wiring(&root).check();
        assert_eq!(c.status, Status::Fail, "{c:?}");
        assert_eq!(c.detail, "/usr/local/bin/modgate does not exist");
    }
}
