//! `modgate doctor`'s edge: gathers the facts under the root (kernel files, the module
//! directory, the policy, each engine's configuration) and hands them to the core's
//! checks.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use modgate_core::doctor::{
    self, hook_path_problems, Check, EngineFacts, KernelFacts, ModDirFacts, PolicyFacts,
};
use modgate_core::engine::{containerd, docker, hooksd, hookspec, STAGES};
use modgate_core::policy::Policy;

use crate::configfile::{file_meta, read_optional};
use crate::install::{containerd as ic, docker as idk, hooksd as ihd, isulad as iis, syscontainer};
use crate::policyfile::POLICY_PATH;
use crate::root::Root;
use crate::wrapper;

const BIN_DIRS: [&str; 6] = [
    "usr/local/sbin",
    "usr/local/bin",
    "usr/sbin",
    "usr/bin",
    "sbin",
    "bin",
];

fn read(root: &Root, rel: &str) -> Option<String> {
    std::fs::read_to_string(root.path(rel)).ok()
}

/// An executable in the usual directories under the root (the host path).
fn find_bin(root: &Root, name: &str) -> Option<String> {
    BIN_DIRS
        .iter()
        .map(|d| format!("/{d}/{name}"))
        .find(|p| root.path(p).is_file())
}

fn installed(root: &Root, bin: &str, config: &str) -> Option<String> {
    find_bin(root, bin).or_else(|| root.path(config).exists().then(|| config.to_string()))
}

pub fn kernel_facts(root: &Root) -> KernelFacts {
    let status = read(root, "proc/self/status").unwrap_or_default();
    KernelFacts {
        proc_modules: root.path("proc/modules").exists(),
        modules_disabled: read(root, "proc/sys/kernel/modules_disabled"),
        sig_enforce: read(root, "sys/module/module/parameters/sig_enforce"),
        lockdown: read(root, "sys/kernel/security/lockdown"),
        cap_eff: status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .map(|v| v.trim().to_string()),
    }
}

fn mtime(p: &Path) -> Option<i64> {
    std::fs::metadata(p).ok().map(|m| m.mtime())
}

/// The newest module file under `dir` (links such as `build` are not followed).
fn newest_module(dir: &Path, base: &Path, best: &mut Option<(String, i64)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        let p = e.path();
        if ft.is_dir() {
            newest_module(&p, base, best);
        } else if ft.is_file() && e.file_name().to_string_lossy().contains(".ko") {
            if let Some(t) = mtime(&p) {
                if best.as_ref().is_none_or(|(_, b)| t > *b) {
                    let rel = p.strip_prefix(base).unwrap_or(&p).display().to_string();
                    *best = Some((rel, t));
                }
            }
        }
    }
}

pub fn moddir_facts(root: &Root, release: Option<String>) -> ModDirFacts {
    let release = release.or_else(|| root.kernel_release().ok());
    let mut f = ModDirFacts {
        release: release.clone(),
        ..Default::default()
    };
    let Some(kv) = release else { return f };
    let Some(dir) = [
        format!("/lib/modules/{kv}"),
        format!("/usr/lib/modules/{kv}"),
    ]
    .into_iter()
    .find(|d| root.path(d).is_dir()) else {
        return f;
    };
    let real = root.path(&dir);
    f.dep_bin = mtime(&real.join("modules.dep.bin"));
    f.dep_text = real.join("modules.dep").is_file();
    newest_module(&real, &real, &mut f.newest);
    f.dir = Some(dir);
    f
}

pub fn policy_facts(root: &Root) -> PolicyFacts {
    let path = root.path(POLICY_PATH);
    match read_optional(&path) {
        Ok(None) => PolicyFacts::Missing {
            path: format!("/{POLICY_PATH}"),
            default: Policy::builtin_default(),
        },
        Ok(Some(text)) => match Policy::parse(&path.display().to_string(), &text) {
            Ok(p) => PolicyFacts::Parsed(p),
            Err(e) => PolicyFacts::Invalid {
                error: modgate_core::error_line(&e),
            },
        },
        Err(e) => PolicyFacts::Invalid {
            error: modgate_core::error_line(&e),
        },
    }
}

/// Checks an executable an engine runs; returns the problems.
fn check_exec(root: &Root, path: &str) -> Vec<String> {
    hook_path_problems(path, file_meta(&root.path(path)))
}

/// modgate's entries in an iSulad hook spec, as (description, problems).
fn isulad_spec(root: &Root, spec: &str, f: &mut EngineFacts) {
    let Some(text) = read(root, spec) else { return };
    match hookspec::modgate_hooks(&text, spec) {
        Err(e) => f.problems.push(modgate_core::error_line(&e)),
        Ok(found) if found.is_empty() => {}
        Ok(found) => {
            let mut stages: Vec<&str> = found.iter().map(|(s, _)| s.as_str()).collect();
            stages.dedup();
            let mut paths: Vec<&str> = found.iter().map(|(_, p)| p.as_str()).collect();
            paths.sort_unstable();
            paths.dedup();
            f.configured.push(format!(
                "{spec} runs {} at {}",
                paths.join(", "),
                stages.join(", ")
            ));
            for p in paths {
                f.problems.extend(check_exec(root, p));
            }
        }
    }
}

fn isulad(root: &Root) -> EngineFacts {
    let mut f = EngineFacts {
        name: "iSulad".into(),
        installed: installed(root, "isulad", iis::DAEMON_JSON),
        install: "modgate install isulad".into(),
        ..Default::default()
    };
    isulad_spec(root, iis::DEFAULT_OUTPUT, &mut f);
    let daemon_spec = read(root, iis::DAEMON_JSON)
        .and_then(|t| {
            hookspec::daemon_spec_path(&t, iis::DAEMON_JSON)
                .ok()
                .flatten()
        })
        .unwrap_or_else(|| iis::DEFAULT_DAEMON_SPEC.to_string());
    if daemon_spec != iis::DEFAULT_OUTPUT {
        isulad_spec(root, &daemon_spec, &mut f);
    }
    if let Ok(target) = std::fs::read_link(root.path(syscontainer::HOOK)) {
        let target = target.display().to_string();
        if modgate_core::engine::is_modgate_path(&target, "") {
            f.configured
                .push(format!("{} links to {target}", syscontainer::HOOK));
            f.problems.extend(check_exec(root, &target));
        }
    }
    f
}

/// modgate's hooks.d files in the directories podman and CRI-O read.
fn hooksd_facts(root: &Root) -> (Vec<String>, Vec<String>) {
    let (mut configured, mut problems) = (Vec::new(), Vec::new());
    let mut stages_seen: Vec<String> = Vec::new();
    for dir in ihd::ENGINE_DIRS {
        let Ok(rd) = std::fs::read_dir(root.path(dir)) else {
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
            let Some(text) = read(root, &shown) else {
                continue;
            };
            match hooksd::modgate_hook(&text, &shown) {
                Ok(Some(found)) => {
                    let when = match found.when {
                        Some(hooksd::When::Always) => "always",
                        Some(hooksd::When::Annotation) => "with the annotation",
                        None => "when its conditions match",
                    };
                    configured.push(format!(
                        "{shown} runs {} at {} ({when})",
                        found.path,
                        found.stages.join(", ")
                    ));
                    problems.extend(check_exec(root, &found.path));
                    stages_seen.extend(found.stages);
                }
                Ok(None) => {}
                Err(e) if n.starts_with("modgate") => problems.push(modgate_core::error_line(&e)),
                Err(_) => {}
            }
        }
    }
    if !configured.is_empty() && !stages_seen.iter().any(|s| s == STAGES[0]) {
        problems.push("no modgate hook at prestart in hooks.d".into());
    }
    (configured, problems)
}

fn docker_facts(root: &Root) -> EngineFacts {
    let mut f = EngineFacts {
        name: "Docker".into(),
        installed: installed(root, "dockerd", idk::DAEMON_JSON),
        install: "modgate install docker".into(),
        ..Default::default()
    };
    if let Some(text) = read(root, idk::DAEMON_JSON) {
        match docker::modgate_runtime(&text, idk::DAEMON_JSON) {
            Ok(Some(r)) => {
                let default = if r.default {
                    ", the default runtime"
                } else {
                    ""
                };
                f.configured.push(format!(
                    "{} registers runtime {} = {}{default}",
                    idk::DAEMON_JSON,
                    r.name,
                    r.path
                ));
                f.problems.extend(check_exec(root, &r.path));
            }
            Ok(None) => {}
            Err(e) => f.problems.push(modgate_core::error_line(&e)),
        }
    }
    f
}

fn containerd_facts(root: &Root) -> EngineFacts {
    let mut f = EngineFacts {
        name: "containerd".into(),
        installed: installed(root, "containerd", ic::CONFIG_TOML),
        install: "modgate install containerd --write".into(),
        ..Default::default()
    };
    if let Some(text) = read(root, ic::CONFIG_TOML) {
        match containerd::modgate_runtime(&text, ic::CONFIG_TOML) {
            Ok(Some((name, bin))) => {
                f.configured.push(format!(
                    "{} has runtime {name} with BinaryName {bin}",
                    ic::CONFIG_TOML
                ));
                f.problems.extend(check_exec(root, &bin));
            }
            Ok(None) => {}
            Err(e) => f.problems.push(modgate_core::error_line(&e)),
        }
    }
    f
}

/// The wrapper's settings and the runtime it would run, when something uses it.
fn wrapper_check(root: &Root) -> Check {
    let name = "runtime wrapper";
    let config = match wrapper::load_config(root, None) {
        Ok(c) => c,
        Err(e) => {
            return Check {
                name: name.into(),
                status: doctor::Status::Fail,
                detail: modgate_core::error_line(&e),
                fix: Some(format!("correct /{}", wrapper::CONFIG_PATH)),
            }
        }
    };
    let rt = config.runtime(None).to_string();
    let found = if rt.contains('/') {
        root.path(&rt).is_file().then(|| rt.clone())
    } else {
        find_bin(root, &rt)
    };
    match found {
        Some(p) => Check {
            name: name.into(),
            status: doctor::Status::Ok,
            detail: format!("modgate-runtime runs {p}"),
            fix: None,
        },
        None => Check {
            name: name.into(),
            status: doctor::Status::Fail,
            detail: format!("modgate-runtime would run {rt:?}, which is not installed"),
            fix: Some(format!(
                "install {rt}, or set runtime in /{}",
                wrapper::CONFIG_PATH
            )),
        },
    }
}

/// Every check, in the order they are printed.
pub fn run(root: &Root, release: Option<String>) -> Vec<Check> {
    let mut checks = doctor::kernel(&kernel_facts(root));
    checks.push(doctor::module_dir(&moddir_facts(root, release)));
    checks.push(doctor::policy(&policy_facts(root)));
    checks.push(doctor::engine(&isulad(root)));
    let (configured, problems) = hooksd_facts(root);
    for (name, bin, config) in [
        ("podman", "podman", "/etc/containers"),
        ("CRI-O", "crio", "/etc/crio"),
    ] {
        checks.push(doctor::engine(&EngineFacts {
            name: name.into(),
            installed: installed(root, bin, config),
            configured: configured.clone(),
            problems: problems.clone(),
            install: "modgate install hooks-d".into(),
        }));
    }
    let d = docker_facts(root);
    let c = containerd_facts(root);
    let wrapped = !d.configured.is_empty() || !c.configured.is_empty();
    checks.push(doctor::engine(&d));
    checks.push(doctor::engine(&c));
    if wrapped {
        checks.push(wrapper_check(root));
    }
    checks
}
