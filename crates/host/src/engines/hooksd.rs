//! podman and CRI-O: OCI hooks.d files (schema version 1.0.0), read from
//! `/usr/share/containers/oci/hooks.d` and `/etc/containers/oci/hooks.d`. A file holds
//! one command for a set of stages, and modgate's command names its stage, so there is
//! one file per stage: `modgate-prestart.json` and `modgate-poststop.json`.

use modgate_core::oci::ANNOTATION;
use serde::Deserialize;
use serde_json::{json, Value};

use super::plan::{malformed, read};
use super::{
    is_modgate_path, parse_object, pretty, Edit, EngineError, HookCommand, HookTarget,
    InstallError, InstallPlan, Wiring, STAGES,
};
use crate::root::Root;

pub const DEFAULT_DIR: &str = "/usr/share/containers/oci/hooks.d";
/// The directories podman and CRI-O read by default.
pub const ENGINE_DIRS: [&str; 2] = [
    "/usr/share/containers/oci/hooks.d",
    "/etc/containers/oci/hooks.d",
];

/// When the engine runs the hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// For every container; the hook returns at once when nothing is requested.
    Always,
    /// Only for containers that carry the annotation `modgate.io/kernel-modules`
    /// (how a Kubernetes pod on CRI-O asks).
    Annotation,
}

pub fn file_name(stage: &str) -> String {
    format!("modgate-{stage}.json")
}

/// The regular expression hooks.d matches annotation keys with.
pub fn annotation_regex() -> String {
    format!("^{}$", ANNOTATION.replace('.', "\\."))
}

pub fn document(hook: &HookCommand, stage: &str, when: When) -> Value {
    let when = match when {
        When::Always => json!({ "always": true }),
        When::Annotation => json!({ "annotations": { annotation_regex(): ".+" } }),
    };
    json!({ "version": "1.0.0", "hook": hook.entry(stage), "when": when, "stages": [stage] })
}

/// The file's new text; unchanged when an existing file already means the same.
/// A malformed existing file is an error: it is left for the operator to look at.
pub fn merge(
    existing: Option<&str>,
    hook: &HookCommand,
    stage: &str,
    when: When,
    what: &str,
) -> Result<Edit, EngineError> {
    let want = document(hook, stage, when);
    if let Some(t) = existing {
        let have = parse_object(Some(t), what)?;
        if Value::Object(have) == want {
            return Ok(Edit::unchanged(t));
        }
    }
    Ok(Edit {
        text: pretty(&want),
        changed: true,
    })
}

#[derive(Debug, Deserialize)]
struct FileView {
    #[serde(default)]
    hook: Option<HookView>,
    #[serde(default)]
    stages: Vec<String>,
    #[serde(default)]
    when: Value,
}

#[derive(Debug, Deserialize)]
struct HookView {
    path: String,
}

/// What a hooks.d file says about modgate, for `doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HooksdEntry {
    pub path: String,
    pub stages: Vec<String>,
    pub when: Option<When>,
}

/// modgate's hook in a hooks.d file, if the file is one of modgate's.
pub fn modgate_hook(text: &str, what: &str) -> Result<Option<HooksdEntry>, EngineError> {
    let f: FileView = serde_json::from_str(text).map_err(|source| EngineError::Json {
        what: what.to_string(),
        source,
    })?;
    let Some(h) = f.hook.filter(|h| is_modgate_path(&h.path, "")) else {
        return Ok(None);
    };
    let when = if f.when.get("always") == Some(&Value::Bool(true)) {
        Some(When::Always)
    } else if f
        .when
        .get("annotations")
        .and_then(Value::as_object)
        .is_some_and(|m| m.contains_key(&annotation_regex()))
    {
        Some(When::Annotation)
    } else {
        None
    };
    Ok(Some(HooksdEntry {
        path: h.path,
        stages: f.stages,
        when,
    }))
}

pub struct HooksdOptions {
    pub target: HookTarget,
    /// Host path of the hooks.d directory.
    pub dir: String,
    pub when: When,
}

pub fn plan(root: &Root, o: &HooksdOptions) -> Result<InstallPlan, InstallError> {
    let mut plan = InstallPlan::default();
    let dir = o.dir.trim_end_matches('/');
    for stage in STAGES {
        let shown = format!("{dir}/{}", file_name(stage));
        let existing = read(root, &shown)?;
        let edit =
            merge(existing.as_deref(), &o.target.hook, stage, o.when, &shown).map_err(malformed)?;
        plan.write(root, &shown, edit, existing.is_some(), 0o644)?;
    }
    for p in o.target.problems(root) {
        plan.notes.push(format!("warning: {p}"));
    }
    let hooks_dir = if ENGINE_DIRS.contains(&dir) {
        String::new()
    } else {
        plan.notes.push(format!(
            "{dir} is not a directory podman or CRI-O reads by default: pass --hooks-dir {dir} to podman, or add it to hooks_dir in crio.conf"
        ));
        format!(" --hooks-dir {dir}")
    };
    plan.notes.push(match o.when {
        When::Always => format!(
            "run containers with: podman{hooks_dir} run --rm -e KERNEL_MODULES=ip_vs busybox true"
        ),
        When::Annotation => format!(
            "run containers with: podman{hooks_dir} run --rm --annotation modgate.io/kernel-modules=ip_vs busybox true\n\
             (Kubernetes on CRI-O: metadata.annotations: {{modgate.io/kernel-modules: ip_vs}} on the pod)"
        ),
    });
    Ok(plan)
}

/// modgate's hooks.d files in the directories podman and CRI-O read, added to `w`.
fn check_files(root: &Root, w: &mut Wiring) {
    let mut stages_seen: Vec<String> = Vec::new();
    for dir in ENGINE_DIRS {
        let Ok(rd) = root.resolve(dir).and_then(std::fs::read_dir) else {
            continue;
        };
        let mut names: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json"))
            .collect();
        names.sort();
        for n in names {
            let shown = format!("{dir}/{n}");
            let Ok(Some(text)) = read(root, &shown) else {
                continue;
            };
            match modgate_hook(&text, &shown) {
                Ok(Some(found)) => {
                    let when = match found.when {
                        Some(When::Always) => "always",
                        Some(When::Annotation) => "with the annotation",
                        None => "when its conditions match",
                    };
                    w.configured.push(format!(
                        "{shown} runs {} at {} ({when})",
                        found.path,
                        found.stages.join(", ")
                    ));
                    w.runs(root, &found.path);
                    stages_seen.extend(found.stages);
                }
                Ok(None) => {}
                Err(e) if n.starts_with("modgate") => w.problems.push(modgate_core::error_line(&e)),
                Err(_) => {}
            }
        }
    }
    if !w.configured.is_empty() && !stages_seen.iter().any(|s| s == STAGES[0]) {
        w.problems
            .push("no modgate hook at prestart in hooks.d".into());
    }
}

/// How modgate is wired into podman and CRI-O (both read the same hooks.d files).
pub fn wirings(root: &Root) -> Vec<Wiring> {
    let mut files = Wiring::default();
    check_files(root, &mut files);
    [
        ("podman", "podman", "/etc/containers"),
        ("CRI-O", "crio", "/etc/crio"),
    ]
    .into_iter()
    .map(|(name, bin, config)| Wiring {
        configured: files.configured.clone(),
        problems: files.problems.clone(),
        ..Wiring::new(
            name,
            super::check::installed(root, bin, config),
            "modgate install hooks-d",
        )
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook() -> HookCommand {
        HookCommand::new("/usr/local/bin/modgate")
    }

    #[test]
    fn documents() {
        assert_eq!(
            document(&hook(), "prestart", When::Always),
            json!({"version": "1.0.0",
                   "hook": {"path": "/usr/local/bin/modgate",
                            "args": ["modgate", "hook", "prestart"], "timeout": 30},
                   "when": {"always": true}, "stages": ["prestart"]})
        );
        assert_eq!(
            document(&hook(), "poststop", When::Annotation)["when"],
            json!({"annotations": {"^modgate\\.io/kernel-modules$": ".+"}})
        );
        assert_eq!(file_name("poststop"), "modgate-poststop.json");
    }

    #[test]
    fn merge_cases() {
        let first = merge(None, &hook(), "prestart", When::Always, "f").unwrap();
        assert!(first.changed);
        let cases = [
            (first.text.clone(), When::Always, false),
            (first.text.clone(), When::Annotation, true),
            // Same meaning, compact: left as it is.
            (
                serde_json::to_string(&document(&hook(), "prestart", When::Always)).unwrap(),
                When::Always,
                false,
            ),
        ];
        for (existing, when, changed) in cases {
            let e = merge(Some(&existing), &hook(), "prestart", when, "f").unwrap();
            assert_eq!(e.changed, changed, "{existing} {when:?}");
        }
        assert!(merge(Some("{"), &hook(), "prestart", When::Always, "f").is_err());
    }

    #[test]
    fn reads_back() {
        for when in [When::Always, When::Annotation] {
            let text = pretty(&document(&hook(), "poststop", when));
            assert_eq!(
                modgate_hook(&text, "f").unwrap(),
                Some(HooksdEntry {
                    path: "/usr/local/bin/modgate".into(),
                    stages: vec!["poststop".into()],
                    when: Some(when),
                })
            );
        }
        let other = r#"{"version":"1.0.0","hook":{"path":"/usr/bin/nvidia-container-toolkit"},"when":{"always":true},"stages":["prestart"]}"#;
        assert_eq!(modgate_hook(other, "f").unwrap(), None);
        assert!(modgate_hook("nope", "f").is_err());
    }

    #[test]
    fn install_then_doctor_on_a_temp_root() {
        use crate::doctor::Status;
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        let bin = d.path().join("usr/local/bin/modgate");
        std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(d.path().join("usr/local/bin/podman"), "").unwrap();
        let status = |name: &str| {
            wirings(&root)
                .into_iter()
                .find(|w| w.name == name)
                .unwrap()
                .check()
        };
        assert_eq!(status("podman").status, Status::Warn);
        assert_eq!(status("CRI-O").status, Status::Skip);
        let o = HooksdOptions {
            target: HookTarget { hook: hook() },
            dir: DEFAULT_DIR.into(),
            when: When::Always,
        };
        plan(&root, &o).unwrap().apply().unwrap();
        let c = status("podman");
        assert_eq!(c.status, Status::Ok, "{c:?}");
        assert!(
            c.detail
                .contains("modgate-prestart.json runs /usr/local/bin/modgate at prestart (always)"),
            "{c:?}"
        );
        // Without its prestart file, modgate would never load anything.
        std::fs::remove_file(root.path(&format!("{DEFAULT_DIR}/modgate-prestart.json"))).unwrap();
        let c = status("podman");
        assert_eq!(c.status, Status::Fail, "{c:?}");
        assert!(c.detail.contains("no modgate hook at prestart"), "{c:?}");
    }
}
