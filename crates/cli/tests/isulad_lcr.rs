//! iSulad with its own lcr runtime (openEuler's lxc, built from ../shared/engines by
//! scripts/engines): the system containers of the command syscontainer-tools users run,
//!   isula run -tid -e KERNEL_MODULES=ip_vs,ip_vs_wrr --hook-spec /etc/isulad-tools/hookspec.json
//!     --system-container --external-rootfs ROOTFS none init
//! lxc hands hooks another state than runc: "ociVersion":"", no status, no annotations,
//! poststop with pid -1, cwd /, and runs poststop from isulad also after a failed
//! prestart. The hook runs against a fixture root in which the requested modules are live
//! (`--root` in the hook spec's args).

mod engine;
mod realrt;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Mutex, MutexGuard};

use engine::*;
use realrt::*;

/// One lcr isulad at a time (fixed state directory), and one user of the host's
/// /etc/isulad-tools/hookspec.json.
static ISULAD: Mutex<()> = Mutex::new(());

const SEED_SPEC: &str = "/etc/isulad-tools/hookspec.json";

/// The lcr iSulad, this test's turn at it, and a fixture with a system container's
/// root file system (`rootfs`).
fn isulad(test: &str) -> Option<(Isulad, MutexGuard<'static, ()>, Fixture)> {
    let t = isulad_test(
        test,
        "MODGATE_ISULAD_LCR_SH",
        &["busybox", "tar"],
        &ISULAD,
        "mg-lcr",
    )?;
    system_rootfs(&t.2.p("rootfs"));
    Some(t)
}

/// A host file a test must write, put back as it was (or removed, with the directory
/// the test made) when dropped.
struct HostFile {
    path: PathBuf,
    saved: Option<Vec<u8>>,
    made_dir: bool,
}

impl HostFile {
    fn write(path: &str, content: &str) -> HostFile {
        let path = PathBuf::from(path);
        let dir = path.parent().expect("parent");
        let made_dir = !dir.exists();
        std::fs::create_dir_all(dir).expect("mkdir");
        let saved = std::fs::read(&path).ok();
        std::fs::write(&path, content).expect("write host file");
        HostFile {
            path,
            saved,
            made_dir,
        }
    }
}

impl Drop for HostFile {
    fn drop(&mut self) {
        match &self.saved {
            Some(b) => {
                let _ = std::fs::write(&self.path, b);
            }
            None => {
                let _ = std::fs::remove_file(&self.path);
                if self.made_dir {
                    let _ = std::fs::remove_dir(self.path.parent().expect("parent"));
                }
            }
        }
    }
}

/// `isula run -tid -e KERNEL_MODULES=... --hook-spec SPEC --system-container
/// --external-rootfs ROOTFS none init` (`env` None: no request).
fn run_system(i: &Isulad, f: &Fixture, spec: &Path, env: Option<&str>, verb: &str) -> Output {
    let spec = spec.to_str().expect("utf-8").to_string();
    let rootfs = f.p("rootfs").display().to_string();
    let mut args = vec![verb];
    if verb == "run" {
        args.push("-tid");
    } else {
        args.push("-ti");
    }
    if let Some(e) = env {
        args.extend(["-e", e]);
    }
    args.extend([
        "--hook-spec",
        &spec,
        "--system-container",
        "--external-rootfs",
        &rootfs,
        "none",
        "init",
    ]);
    i.run_isula(&args)
}

fn assert_one_allowed(f: &Fixture, id: &str) {
    let pre = log_lines(&f.log(), "prestart");
    assert_eq!(pre.len(), 1, "{pre:?}");
    assert!(
        pre[0].contains(&format!("container={id}"))
            && pre[0].contains("requested=ip_vs,ip_vs_wrr")
            && pre[0].contains("decision=allowed"),
        "{pre:?}"
    );
}

#[test]
fn seed_command_with_the_syscontainer_hooks_link() {
    let Some((i, _one, f)) = isulad("seed_command_with_the_syscontainer_hooks_link") else {
        return;
    };
    // The host's hook spec as syscontainer-tools installed it, calling its hook slot,
    // which `install syscontainer-tools` (into a temp root) made a link to modgate.
    let spec = f.syscontainer_hook_spec(&f.p("root"));
    let _host = HostFile::write(SEED_SPEC, &spec.to_string());

    let _d = i.start();
    let mut c = Containers { i: &i, ids: vec![] };
    let out = run_system(
        &i,
        &f,
        Path::new(SEED_SPEC),
        Some("KERNEL_MODULES=ip_vs,ip_vs_wrr"),
        "run",
    );
    i.assert_ok("isula run", &out, &f.log());
    let id = first_line(&out);
    c.ids.push(id.clone());
    assert_one_allowed(&f, &id);
    assert_eq!(holders(&f.fx()), vec![id.clone()], "{}", status(&f.fx()));

    // A normal stop: poststop (from isulad, pid -1) releases.
    i.stop(&id, &f.log());
    assert_released(&f.fx());
    assert_eq!(log_lines(&f.log(), "poststop").len(), 1);
}

#[test]
fn lcr_refusals_exit_125_and_a_failed_prestart_releases() {
    let Some((i, _one, f)) = isulad("lcr_refusals_exit_125_and_a_failed_prestart_releases") else {
        return;
    };
    let spec = f.installed_hook_spec();
    let _d = i.start();
    let mut c = Containers { i: &i, ids: vec![] };

    for (env, what) in [
        ("KERNEL_MODULES=dccp", "module \"dccp\" denied by policy"),
        (
            "KERNEL_MODULES=a;b",
            "item \"a;b\" of KERNEL_MODULES is not a module name",
        ),
        (
            "KERNEL_MODULES=-r ip_vs",
            "item \"-r ip_vs\" of KERNEL_MODULES is not a module name",
        ),
    ] {
        let out = run_system(&i, &f, &spec, Some(env), "run");
        c.ids.extend(
            stdout(&out)
                .lines()
                .next()
                .map(str::to_string)
                .filter(|l| l.len() == 64),
        );
        assert_eq!(out.status.code(), Some(125), "{env}");
        assert_modgate_refused(&stderr(&out), what);
    }
    assert!(holders(&f.fx()).is_empty(), "{}", status(&f.fx()));

    // modgate's prestart succeeds and holds, then a later prestart hook fails: the
    // container never starts, and the poststop isulad runs after it releases.
    let mut with_failing: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&spec).expect("spec")).expect("json");
    with_failing["prestart"]
        .as_array_mut()
        .expect("prestart")
        .push(serde_json::json!({"path": "/bin/false", "args": ["false"], "timeout": 10}));
    let failing = f.p("failing.json");
    std::fs::write(&failing, with_failing.to_string()).expect("spec");
    let out = run_system(
        &i,
        &f,
        &failing,
        Some("KERNEL_MODULES=ip_vs,ip_vs_wrr"),
        "run",
    );
    c.ids.push(first_line(&out));
    assert_eq!(
        out.status.code(),
        Some(125),
        "the failing hook did not stop it"
    );
    let pre = log_lines(&f.log(), "prestart");
    let held = pre
        .iter()
        .find(|l| l.contains("decision=allowed"))
        .and_then(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("container="))
        })
        .unwrap_or_else(|| panic!("modgate's prestart did not run first: {pre:?}"))
        .to_string();
    assert_released(&f.fx());
    // Released by the poststop isulad ran for the container that never started.
    let post = log_lines(&f.log(), "poststop");
    assert!(
        post.iter()
            .any(|l| l.contains(&format!("container={held} "))),
        "no poststop for {held}: {post:?}"
    );
}

#[test]
fn lcr_create_then_start_and_no_request() {
    let Some((i, _one, f)) = isulad("lcr_create_then_start_and_no_request") else {
        return;
    };
    let spec = f.installed_hook_spec();
    let _d = i.start();
    let mut c = Containers { i: &i, ids: vec![] };

    let out = run_system(
        &i,
        &f,
        &spec,
        Some("KERNEL_MODULES=ip_vs,ip_vs_wrr"),
        "create",
    );
    i.assert_ok("isula create", &out, &f.log());
    let id = first_line(&out);
    c.ids.push(id.clone());
    // prestart runs at start, not at create.
    assert!(holders(&f.fx()).is_empty());
    let out = i.run_isula(&["start", &id]);
    i.assert_ok("isula start", &out, &f.log());
    assert_one_allowed(&f, &id);
    assert_eq!(holders(&f.fx()), vec![id.clone()]);
    i.stop(&id, &f.log());
    assert_released(&f.fx());

    // No request: the system container runs, nothing is held or logged.
    let out = run_system(&i, &f, &spec, None, "run");
    i.assert_ok("isula run", &out, &f.log());
    let id = first_line(&out);
    c.ids.push(id.clone());
    assert!(holders(&f.fx()).is_empty());
    assert_eq!(log_lines(&f.log(), "prestart").len(), 1);
    i.stop(&id, &f.log());
}

#[test]
fn lcr_starts_in_a_row_are_each_served() {
    // lxc hands each hook its state on a non-blocking pipe that it writes after starting
    // the hook: whichever comes first, every start must be served.
    let Some((i, _one, f)) = isulad("lcr_starts_in_a_row_are_each_served") else {
        return;
    };
    let spec = f.installed_hook_spec();
    let _d = i.start();
    let mut c = Containers { i: &i, ids: vec![] };
    const STARTS: usize = 20;
    for _ in 0..STARTS {
        let out = run_system(&i, &f, &spec, Some("KERNEL_MODULES=ip_vs,ip_vs_wrr"), "run");
        i.assert_ok("isula run", &out, &f.log());
        c.ids.push(first_line(&out));
    }
    let allowed = log_lines(&f.log(), "prestart")
        .iter()
        .filter(|l| l.contains("decision=allowed"))
        .count();
    assert_eq!(
        allowed,
        STARTS,
        "{}",
        std::fs::read_to_string(f.log()).unwrap_or_default()
    );
    let mut held = holders(&f.fx());
    held.sort();
    let mut ids = c.ids.clone();
    ids.sort();
    assert_eq!(held, ids);
    for id in &c.ids {
        i.assert_ok("isula rm -f", &i.run_isula(&["rm", "-f", id]), &f.log());
    }
    assert_released(&f.fx());
}
