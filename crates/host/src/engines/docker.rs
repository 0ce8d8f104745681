//! Docker: the runtime wrapper registered under `runtimes` in `/etc/docker/daemon.json`
//! (and, when asked, made `default-runtime`). Every other key is kept as it is.

use serde_json::Value;

use super::plan::{malformed, read};
use super::{
    edit_object, is_wrapper_path, object_at, parse_object, Edit, EngineError, InstallError,
    InstallPlan, Wiring, RUNTIME_NAME,
};
use crate::root::Root;

pub const DAEMON_JSON: &str = "/etc/docker/daemon.json";

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
pub struct DockerRuntime {
    pub name: String,
    pub path: String,
    pub default: bool,
}

pub fn modgate_runtime(text: &str, what: &str) -> Result<Option<DockerRuntime>, EngineError> {
    let m = parse_object(Some(text), what)?;
    let default = m.get("default-runtime").and_then(Value::as_str);
    let Some(runtimes) = m.get("runtimes").and_then(Value::as_object) else {
        return Ok(None);
    };
    Ok(runtimes.iter().find_map(|(name, v)| {
        let path = v.get("path").and_then(Value::as_str)?;
        is_wrapper_path(path).then(|| DockerRuntime {
            name: name.clone(),
            path: path.to_string(),
            default: default == Some(name.as_str()),
        })
    }))
}

pub struct DockerOptions {
    /// Host path of modgate-runtime.
    pub wrapper: String,
    /// Also make it Docker's default runtime.
    pub default: bool,
}

pub fn plan(root: &Root, o: &DockerOptions) -> Result<InstallPlan, InstallError> {
    let mut plan = InstallPlan::default();
    let existing = read(root, DAEMON_JSON)?;
    let edit = merge(existing.as_deref(), &o.wrapper, o.default, DAEMON_JSON).map_err(malformed)?;
    plan.write(root, DAEMON_JSON, edit, existing.is_some(), 0o644)?;
    plan.wrapper_note(root, &o.wrapper);
    plan.notes
        .push("reload Docker to apply: systemctl reload docker".into());
    let runtime = if o.default { "" } else { "--runtime modgate " };
    plan.notes.push(format!(
        "run containers with: docker run --rm {runtime}-e KERNEL_MODULES=ip_vs busybox true"
    ));
    Ok(plan)
}

/// How modgate is wired into Docker.
pub fn wiring(root: &Root) -> Wiring {
    let mut w = Wiring::new(
        "Docker",
        super::check::installed(root, "dockerd", DAEMON_JSON),
        "modgate install docker",
    );
    if let Ok(Some(text)) = read(root, DAEMON_JSON) {
        match modgate_runtime(&text, DAEMON_JSON) {
            Ok(Some(r)) => {
                let default = if r.default {
                    ", the default runtime"
                } else {
                    ""
                };
                w.configured.push(format!(
                    "{DAEMON_JSON} registers runtime {} = {}{default}",
                    r.name, r.path
                ));
                w.runs(root, &r.path);
            }
            Ok(None) => {}
            Err(e) => w.problems.push(modgate_core::error_line(&e)),
        }
    }
    w
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
            Some(DockerRuntime {
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

    #[test]
    fn the_wrapper_is_looked_for_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        let o = DockerOptions {
            wrapper: W.into(),
            default: false,
        };
        let warned = |p: &InstallPlan| {
            p.notes
                .iter()
                .any(|n| n.starts_with("warning: ") && n.contains(W))
        };
        assert!(warned(&plan(&root, &o).unwrap()));
        // An absolute link, as `make install` makes it, resolved inside the root.
        let bin = d.path().join("usr/local/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink("/usr/local/bin/modgate", bin.join("modgate-runtime")).unwrap();
        assert!(warned(&plan(&root, &o).unwrap()));
        std::fs::write(bin.join("modgate"), "").unwrap();
        let p = plan(&root, &o).unwrap();
        assert!(!warned(&p), "{:?}", p.notes);
        // The file it writes is named as on the host, and lands under the root.
        match &p.actions[..] {
            [super::super::Action::Write { path, shown, .. }] => {
                assert_eq!(shown, DAEMON_JSON);
                assert_eq!(path, &d.path().join("etc/docker/daemon.json"));
            }
            a => panic!("{a:?}"),
        }
    }
}
