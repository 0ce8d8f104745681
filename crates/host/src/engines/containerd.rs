//! containerd: a CRI runtime in `/etc/containerd/config.toml` whose `BinaryName` is
//! modgate's wrapper (edited with `toml_edit` so comments and layout survive), printed
//! or, with `--write`, merged in; and the Kubernetes RuntimeClass that selects it.

use toml_edit::{value, DocumentMut, Item, Table};

use super::plan::{malformed, read};
use super::{is_wrapper_path, Edit, EngineError, InstallError, InstallPlan, Wiring, RUNTIME_NAME};
use crate::root::Root;

pub const CONFIG_TOML: &str = "/etc/containerd/config.toml";

/// Where the CRI plugin's runtimes live, per config `version`.
fn runtimes_path(version: i64) -> [&'static str; 4] {
    match version {
        1 => ["plugins", "cri", "containerd", "runtimes"],
        2 => [
            "plugins",
            "io.containerd.grpc.v1.cri",
            "containerd",
            "runtimes",
        ],
        _ => [
            "plugins",
            "io.containerd.cri.v1.runtime",
            "containerd",
            "runtimes",
        ],
    }
}

fn parse(text: &str, what: &str) -> Result<DocumentMut, EngineError> {
    text.parse::<DocumentMut>().map_err(|e| EngineError::Toml {
        what: what.to_string(),
        source: Box::new(e),
    })
}

/// The config version: an explicit `version`; a file without one is version 1 to
/// containerd; a new file is written as version 2 (containerd 1.x and 2.x read it).
fn version_of(doc: &DocumentMut, blank: bool, what: &str) -> Result<i64, EngineError> {
    match doc.get("version") {
        None if blank => Ok(2),
        None => Ok(1),
        Some(v) => match v.as_integer() {
            Some(n @ 1..=3) => Ok(n),
            _ => Err(EngineError::Shape {
                what: what.to_string(),
                reason: format!("unsupported config version {}", v.to_string().trim()),
            }),
        },
    }
}

fn table_at<'a>(
    t: &'a mut Table,
    key: &str,
    what: &str,
    at: &str,
) -> Result<&'a mut Table, EngineError> {
    let item = t.entry(key).or_insert_with(|| {
        let mut n = Table::new();
        n.set_implicit(true);
        Item::Table(n)
    });
    item.as_table_mut().ok_or_else(|| EngineError::Shape {
        what: what.to_string(),
        reason: format!("{at}{key} is not a table"),
    })
}

fn max_position(t: &Table) -> usize {
    t.iter()
        .filter_map(|(_, i)| i.as_table())
        .map(|c| c.position().unwrap_or(0).max(max_position(c)))
        .max()
        .unwrap_or(0)
}

/// Makes a table we create explicit (a `[header]` of its own) at the end of the file.
fn place(t: &mut Table, next: &mut usize) {
    if t.is_implicit() {
        t.set_implicit(false);
        t.set_position(*next);
        *next += 1;
    }
}

fn set_str(t: &mut Table, key: &str, v: &str) {
    if t.get(key).and_then(Item::as_str) != Some(v) {
        t.insert(key, value(v));
    }
}

/// The annotations containerd's CRI plugin copies into the OCI config of the runtime's
/// containers: a pod asks with `modgate.io/kernel-modules`, and without this the key
/// never reaches the bundle.
const ANNOTATIONS: &str = "modgate.io/*";
/// containerd's built-in default runtime: `default_runtime_name` when unset, and the
/// only runtime a config without a `runtimes` table has.
const DEFAULT_RUNTIME: &str = "runc";
const RUNC_V2: &str = "io.containerd.runc.v2";

fn add_to_array(
    t: &mut Table,
    key: &str,
    v: &str,
    what: &str,
    at: &str,
) -> Result<(), EngineError> {
    let item = t
        .entry(key)
        .or_insert_with(|| value(toml_edit::Array::new()));
    let arr = item.as_array_mut().ok_or_else(|| EngineError::Shape {
        what: what.to_string(),
        reason: format!("{at}{key} is not a list"),
    })?;
    if !arr.iter().any(|x| x.as_str() == Some(v)) {
        arr.push(v);
    }
    Ok(())
}

/// Whether the config leaves the default runtime to containerd's built-in `runc`
/// entry: a `runtimes` table of our own would replace that entry, and the CRI plugin
/// then fails with "no corresponding runtime configured in containerd.runtimes for
/// default_runtime_name".
fn needs_runc(containerd: &Table) -> bool {
    let default = containerd
        .get("default_runtime_name")
        .and_then(Item::as_str)
        .unwrap_or(DEFAULT_RUNTIME);
    let defined = containerd
        .get("runtimes")
        .and_then(Item::as_table_like)
        .is_some_and(|r| r.contains_key(default));
    default == DEFAULT_RUNTIME && !defined
}

/// The config with the `modgate` runtime in place (and containerd's default `runc`
/// runtime written out when the config relied on it).
pub fn merge(existing: Option<&str>, wrapper: &str, what: &str) -> Result<Edit, EngineError> {
    let text = existing.unwrap_or("");
    let blank = text.trim().is_empty();
    let mut doc = parse(text, what)?;
    let version = version_of(&doc, blank, what)?;
    if blank {
        doc.insert("version", value(version));
    }
    // New tables go at the end of the file, not among the parent's subtables.
    let mut next = max_position(doc.as_table()) + 1;
    let mut t = doc.as_table_mut();
    let mut at = String::new();
    let [plugins, cri, containerd, runtimes] = runtimes_path(version);
    for key in [plugins, cri, containerd] {
        t = table_at(t, key, what, &at)?;
        at.push_str(&format!("{key}."));
    }
    let runc = needs_runc(t);
    let t = table_at(t, runtimes, what, &at)?;
    at.push_str(&format!("{runtimes}."));
    if runc {
        let r = table_at(t, DEFAULT_RUNTIME, what, &at)?;
        place(r, &mut next);
        set_str(r, "runtime_type", RUNC_V2);
    }
    let t = table_at(t, RUNTIME_NAME, what, &at)?;
    at.push_str(&format!("{RUNTIME_NAME}."));
    place(t, &mut next);
    set_str(t, "runtime_type", RUNC_V2);
    add_to_array(t, "pod_annotations", ANNOTATIONS, what, &at)?;
    add_to_array(t, "container_annotations", ANNOTATIONS, what, &at)?;
    let options = table_at(t, "options", what, &at)?;
    place(options, &mut next);
    set_str(options, "BinaryName", wrapper);
    let out = doc.to_string();
    if out == text {
        return Ok(Edit::unchanged(text));
    }
    Ok(Edit {
        text: out,
        changed: true,
    })
}

/// What to add by hand, for a config of this version (printed without `--write`).
pub fn snippet(existing: Option<&str>, wrapper: &str, what: &str) -> Result<String, EngineError> {
    let blank = existing.is_none_or(|t| t.trim().is_empty());
    let doc = parse(existing.unwrap_or(""), what)?;
    let version = version_of(&doc, blank, what)?;
    let path = runtimes_path(version);
    let mut item: Option<&Item> = Some(doc.as_item());
    for k in &path[..3] {
        item = item.and_then(|i| i.get(k));
    }
    let runc = item.and_then(Item::as_table).is_none_or(needs_runc);
    let key = path
        .iter()
        .map(|k| {
            if k.contains('.') {
                format!("{k:?}")
            } else {
                k.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(".");
    let mut out = String::new();
    if runc {
        out.push_str(&format!(
            "[{key}.{DEFAULT_RUNTIME}]\n  runtime_type = \"{RUNC_V2}\"\n"
        ));
    }
    out.push_str(&format!(
        "[{key}.{RUNTIME_NAME}]\n  runtime_type = \"{RUNC_V2}\"\n  pod_annotations = [\"{ANNOTATIONS}\"]\n  container_annotations = [\"{ANNOTATIONS}\"]\n[{key}.{RUNTIME_NAME}.options]\n  BinaryName = {wrapper:?}\n"
    ));
    Ok(out)
}

/// The RuntimeClass that sends a pod to the `modgate` runtime handler.
pub fn runtime_class() -> String {
    format!(
        "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata:\n  name: {RUNTIME_NAME}\nhandler: {RUNTIME_NAME}\n"
    )
}

/// modgate's runtime in a config: its name and `BinaryName`, for `doctor`.
pub fn modgate_runtime(text: &str, what: &str) -> Result<Option<(String, String)>, EngineError> {
    let doc = parse(text, what)?;
    for version in 1..=3 {
        let mut item: Option<&Item> = Some(doc.as_item());
        for k in runtimes_path(version) {
            item = item.and_then(|i| i.get(k));
        }
        let Some(runtimes) = item.and_then(Item::as_table_like) else {
            continue;
        };
        for (name, rt) in runtimes.iter() {
            let bin = rt
                .get("options")
                .and_then(|o| o.get("BinaryName"))
                .and_then(Item::as_str);
            if let Some(bin) = bin.filter(|b| is_wrapper_path(b)) {
                return Ok(Some((name.to_string(), bin.to_string())));
            }
        }
    }
    Ok(None)
}

pub struct ContainerdOptions {
    pub wrapper: String,
    pub write: bool,
}

pub fn plan(root: &Root, o: &ContainerdOptions) -> Result<InstallPlan, InstallError> {
    let mut plan = InstallPlan::default();
    let existing = read(root, CONFIG_TOML)?;
    if o.write {
        let edit = merge(existing.as_deref(), &o.wrapper, CONFIG_TOML).map_err(malformed)?;
        plan.write(root, CONFIG_TOML, edit, existing.is_some(), 0o644)?;
        plan.notes
            .push("restart containerd to apply: systemctl restart containerd".into());
    } else {
        let snippet = snippet(existing.as_deref(), &o.wrapper, CONFIG_TOML).map_err(malformed)?;
        plan.notes.push(format!(
            "add to {CONFIG_TOML} (or run again with --write), then restart containerd:\n{snippet}"
        ));
    }
    plan.wrapper_note(root, &o.wrapper);
    plan.notes.push(format!(
        "Kubernetes: apply this RuntimeClass and set runtimeClassName: modgate on the pod:\n{}",
        runtime_class()
    ));
    plan.notes.push(format!(
        "or directly: ctr run --rm --runc-binary {} --env KERNEL_MODULES=ip_vs docker.io/library/busybox:latest demo true",
        o.wrapper
    ));
    Ok(plan)
}

/// How modgate is wired into containerd.
pub fn wiring(root: &Root) -> Wiring {
    let mut w = Wiring::new(
        "containerd",
        super::check::installed(root, "containerd", CONFIG_TOML),
        "modgate install containerd --write",
    );
    if let Ok(Some(text)) = read(root, CONFIG_TOML) {
        match modgate_runtime(&text, CONFIG_TOML) {
            Ok(Some((name, bin))) => {
                w.configured.push(format!(
                    "{CONFIG_TOML} has runtime {name} with BinaryName {bin}"
                ));
                w.runs(root, &bin);
            }
            Ok(None) => {}
            Err(e) => w.problems.push(modgate_core::error_line(&e)),
        }
    }
    w
}

#[cfg(test)]
mod tests;
