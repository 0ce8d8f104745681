//! Differential test against kmod on a real kernel's module tree: for every module, a
//! sample of aliases, and fixture configurations, `modgate plan --format modprobe` must
//! print byte for byte what `modprobe --show-depends` prints, with the same exit status.
//!
//! The tree comes from `scripts/fetch-kernel` (Debian's kernel package, depmod'ed) via
//! `MODGATE_KERNEL_ROOT` and `MODGATE_KERNEL_RELEASE`; `scripts/test` sets them. Without
//! them the tests say so and pass, unless `MODGATE_REQUIRE_REAL=1` (CI), where they fail.
//! `modgate config` is compared with `modprobe -c` on the same tree.
//!
//! `trees` builds the layouts users have (pre-5.2 kernels, all built in, external
//! modules, ...) with the system `depmod` from fake modules; `cmdline` compares thousands
//! of generated kernel command lines. Those need only `cc`, `depmod` and `modprobe`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Tree {
    root: PathBuf,
    release: String,
}

fn tree(var: &str) -> Option<Tree> {
    let root = std::env::var_os(var).map(PathBuf::from);
    let release = std::env::var("MODGATE_KERNEL_RELEASE").ok();
    match (root, release) {
        (Some(root), Some(release)) => Some(Tree { root, release }),
        _ => {
            if std::env::var("MODGATE_REQUIRE_REAL").as_deref() == Ok("1") {
                panic!("{var} and MODGATE_KERNEL_RELEASE are required (run scripts/test)");
            }
            eprintln!("skipped: {var}/MODGATE_KERNEL_RELEASE not set; scripts/test sets them");
            None
        }
    }
}

/// A root of our own: `lib` points at the real tree, `proc/cmdline` is ours, so both
/// tools read the same kernel command line (modprobe reads the host's `/proc/cmdline`;
/// the fixture root gets a copy of it, or modprobe runs with one bind-mounted over it).
fn make_root(tree: &Tree, cmdline: &str, text_only: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("proc")).expect("mkdir proc");
    std::fs::write(dir.path().join("proc/cmdline"), cmdline).expect("write cmdline");
    if text_only {
        let src = tree.root.join("lib/modules").join(&tree.release);
        let dst = dir.path().join("lib/modules").join(&tree.release);
        std::fs::create_dir_all(&dst).expect("mkdir moddir");
        for e in std::fs::read_dir(&src).expect("read moddir").flatten() {
            let name = e.file_name();
            if name.to_string_lossy().ends_with(".bin") {
                continue;
            }
            std::os::unix::fs::symlink(e.path(), dst.join(&name)).expect("symlink");
        }
    } else {
        std::os::unix::fs::symlink(tree.root.join("lib"), dir.path().join("lib"))
            .expect("symlink lib");
    }
    dir
}

fn modprobe(
    root: &Path,
    release: &str,
    confs: &[&Path],
    name: &str,
    cmdline: Option<&Path>,
) -> String {
    let mut args: Vec<String> = vec![
        "-d".into(),
        root.display().to_string(),
        "-S".into(),
        release.into(),
    ];
    for c in confs {
        args.push("-C".into());
        args.push(c.display().to_string());
    }
    args.push("--show-depends".into());
    args.push(name.into());
    let out = match cmdline {
        None => Command::new("modprobe").args(&args).output(),
        Some(file) => {
            // A private mount namespace with our command line over /proc/cmdline.
            let script = "mount --bind \"$0\" /proc/cmdline && exec modprobe \"$@\"";
            Command::new("unshare")
                .args(["-m", "--propagation", "private", "sh", "-c", script])
                .arg(file)
                .args(&args)
                .output()
        }
    }
    .expect("run modprobe (package kmod)");
    format!(
        "{}rc={}",
        String::from_utf8_lossy(&out.stdout),
        out.status.code().unwrap_or(-1)
    )
}

fn modgate(root: &Path, release: &str, confs: &[&Path], name: &str) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_modgate"));
    cmd.arg("--root")
        .arg(root)
        .arg("--kernel-release")
        .arg(release);
    for c in confs {
        cmd.arg("--config-dir").arg(c);
    }
    let out = cmd
        .args(["plan", "--format", "modprobe", "--", name])
        .output()
        .expect("run modgate");
    format!(
        "{}rc={}",
        String::from_utf8_lossy(&out.stdout),
        out.status.code().unwrap_or(-1)
    )
}

/// Runs `check` over `names` on all cores; returns the names that disagree, with a diff.
fn compare_all(names: &[String], check: impl Fn(&str) -> Option<String> + Sync) -> Vec<String> {
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let mut bad = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut bad = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(n) = names.get(i) else { break };
                        if let Some(d) = check(n) {
                            bad.push(d);
                        }
                    }
                    bad
                })
            })
            .collect();
        for h in handles {
            bad.extend(h.join().expect("worker"));
        }
    });
    bad
}

fn report(what: &str, total: usize, bad: &[String]) {
    println!("{}/{} {what} agree", total - bad.len(), total);
    if !bad.is_empty() {
        panic!(
            "{} {what} differ from modprobe; first ones:\n{}",
            bad.len(),
            bad.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
        );
    }
}

fn diff(name: &str, want: &str, got: &str) -> Option<String> {
    (want != got).then(|| format!("== {name}\n-- modprobe\n{want}\n-- modgate\n{got}"))
}

fn module_names(tree: &Tree) -> Vec<String> {
    let dep = std::fs::read_to_string(
        tree.root
            .join("lib/modules")
            .join(&tree.release)
            .join("modules.dep"),
    )
    .expect("modules.dep");
    dep.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(p, _)| {
            let base = p.rsplit('/').next().unwrap_or(p);
            base.split('.').next().unwrap_or(base).to_string()
        })
        .collect()
}

/// Aliases without wildcards, and every 60th wildcard pattern made concrete.
fn alias_names(tree: &Tree) -> Vec<String> {
    let text = std::fs::read_to_string(
        tree.root
            .join("lib/modules")
            .join(&tree.release)
            .join("modules.alias"),
    )
    .expect("modules.alias");
    let mut plain = std::collections::BTreeSet::new();
    let mut wild = std::collections::BTreeSet::new();
    let mut nwild = 0usize;
    for l in text.lines() {
        let mut it = l.split_whitespace();
        if it.next() != Some("alias") {
            continue;
        }
        let Some(p) = it.next() else { continue };
        if !p.contains(['*', '?', '[']) {
            plain.insert(p.to_string());
            continue;
        }
        nwild += 1;
        if !nwild.is_multiple_of(60) {
            continue;
        }
        let mut s = String::new();
        let mut chars = p.chars();
        while let Some(c) = chars.next() {
            match c {
                '*' => s.push('0'),
                '?' => s.push('A'),
                '[' => {
                    let class: String = chars.by_ref().take_while(|&c| c != ']').collect();
                    match class.chars().next() {
                        Some(f) if f != '!' && f != '^' => s.push(f),
                        _ => s.push('Z'),
                    }
                }
                c => s.push(c),
            }
        }
        wild.insert(s);
    }
    plain.into_iter().chain(wild).collect()
}

fn host_cmdline() -> String {
    std::fs::read_to_string("/proc/cmdline").unwrap_or_default()
}

/// Compares modgate with modprobe for every name, on a root built from `tree` with
/// `cmdline` as its kernel command line (bind-mounted over /proc/cmdline for modprobe
/// when `bind_cmdline`), under `confs` (an empty configuration when none).
fn check(
    tree: &Tree,
    cmdline: &str,
    confs: &[&Path],
    bind_cmdline: bool,
    names: &[String],
    what: &str,
) {
    let root = make_root(tree, cmdline, false);
    let empty = tempfile::tempdir().expect("tempdir");
    let confs: Vec<&Path> = if confs.is_empty() {
        vec![empty.path()]
    } else {
        confs.to_vec()
    };
    let file = root.path().join("proc/cmdline");
    let bind = bind_cmdline.then_some(file.as_path());
    let bad = compare_all(names, |n| {
        diff(
            n,
            &modprobe(root.path(), &tree.release, &confs, n, bind),
            &modgate(root.path(), &tree.release, &confs, n),
        )
    });
    report(what, names.len(), &bad);
}

#[test]
fn every_module_agrees_with_modprobe() {
    let Some(tree) = tree("MODGATE_KERNEL_ROOT") else {
        return;
    };
    let names = module_names(&tree);
    assert!(
        names.len() > 1000,
        "expected a real kernel's module tree, got {} modules",
        names.len()
    );
    check(&tree, &host_cmdline(), &[], false, &names, "modules");
}

#[test]
fn aliases_agree_with_modprobe() {
    let Some(tree) = tree("MODGATE_KERNEL_ROOT") else {
        return;
    };
    let names = alias_names(&tree);
    assert!(
        names.len() > 300,
        "expected hundreds of aliases, got {}",
        names.len()
    );
    check(&tree, &host_cmdline(), &[], false, &names, "aliases");
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/kmod-diff")
        .join(rel)
}

fn fixture_names() -> Vec<String> {
    std::fs::read_to_string(fixture("names"))
        .expect("names")
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn fixture_configurations_agree_with_modprobe() {
    let Some(tree) = tree("MODGATE_KERNEL_ROOT") else {
        return;
    };
    let (c1, c2) = (fixture("conf1"), fixture("conf2"));
    let mut names = fixture_names();
    names.extend(module_names(&tree).into_iter().step_by(10));
    check(
        &tree,
        &host_cmdline(),
        &[&c1, &c2],
        false,
        &names,
        "names under the fixture configuration",
    );
}

#[test]
fn kernel_command_line_agrees_with_modprobe() {
    let Some(tree) = tree("MODGATE_KERNEL_ROOT") else {
        return;
    };
    let cmdline = std::fs::read_to_string(fixture("cmdline")).expect("cmdline");
    let c1 = fixture("conf1");
    check(
        &tree,
        &cmdline,
        &[&c1],
        true,
        &fixture_names(),
        "names under a fixture kernel command line",
    );
}

#[test]
fn text_indexes_agree_with_binary_ones() {
    // kmod cannot read the text forms; modgate falls back to them when a `.bin` file is
    // missing. Its answer from text must equal modprobe's answer from the binary files.
    let Some(tree) = tree("MODGATE_KERNEL_ROOT") else {
        return;
    };
    let bin_root = make_root(&tree, &host_cmdline(), false);
    let text_root = make_root(&tree, &host_cmdline(), true);
    let empty = tempfile::tempdir().expect("tempdir");
    let mut names = module_names(&tree);
    names.extend(alias_names(&tree).into_iter().step_by(4));
    let (b, t) = (
        bin_root.path().display().to_string(),
        text_root.path().display().to_string(),
    );
    let bad = compare_all(&names, |n| {
        let confs = [empty.path()];
        let want = modprobe(bin_root.path(), &tree.release, &confs, n, None).replace(&b, &t);
        diff(
            n,
            &want,
            &modgate(text_root.path(), &tree.release, &confs, n),
        )
    });
    report("names from text indexes", names.len(), &bad);
}

fn compressed(var: &str, what: &str) {
    let Some(tree) = tree(var) else {
        return;
    };
    check(
        &tree,
        &host_cmdline(),
        &[],
        false,
        &module_names(&tree),
        what,
    );
}

#[test]
fn xz_compressed_tree_agrees_with_modprobe() {
    compressed("MODGATE_KERNEL_ROOT_XZ", "modules of the .ko.xz tree");
}

#[test]
fn zstd_compressed_tree_agrees_with_modprobe() {
    compressed("MODGATE_KERNEL_ROOT_ZSTD", "modules of the .ko.zst tree");
}

/// `modprobe -c` as kmod prints it, with the same exit-status suffix as `modprobe()`.
fn modprobe_c(root: &Path, release: &str, conf: &Path) -> String {
    let out = Command::new("modprobe")
        .arg("-d")
        .arg(root)
        .args(["-S", release, "-C"])
        .arg(conf)
        .arg("-c")
        .output()
        .expect("run modprobe (package kmod)");
    format!(
        "{}rc={}",
        String::from_utf8_lossy(&out.stdout),
        out.status.code().unwrap_or(-1)
    )
}

fn modgate_config(root: &Path, release: &str, conf: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_modgate"))
        .arg("--root")
        .arg(root)
        .args(["--kernel-release", release, "--config-dir"])
        .arg(conf)
        .arg("config")
        .output()
        .expect("run modgate");
    format!(
        "{}rc={}",
        String::from_utf8_lossy(&out.stdout),
        out.status.code().unwrap_or(-1)
    )
}

#[test]
fn show_config_agrees_with_modprobe_c() {
    // `modgate config` against `modprobe -c` on the real tree: the fixture configuration
    // under the host's command line and under the fixture command line, alias and symbol
    // index dumps included.
    let Some(tree) = tree("MODGATE_KERNEL_ROOT") else {
        return;
    };
    let (c1, c2) = (fixture("conf1"), fixture("conf2"));
    let fixture_cmdline = std::fs::read_to_string(fixture("cmdline")).expect("cmdline");
    let cases: [(&str, &[&Path], String); 3] = [
        ("fixture configuration", &[&c1, &c2], host_cmdline()),
        ("fixture command line", &[&c1], fixture_cmdline),
        ("no configuration", &[], host_cmdline()),
    ];
    let mut bad = Vec::new();
    for (what, confs, cmdline) in &cases {
        let root = make_root(&tree, cmdline, false);
        let empty = tempfile::tempdir().expect("tempdir");
        let confs: Vec<&Path> = if confs.is_empty() {
            vec![empty.path()]
        } else {
            confs.to_vec()
        };
        let file = root.path().join("proc/cmdline");
        let mut args: Vec<std::ffi::OsString> = vec!["-d".into(), root.path().into()];
        args.extend(["-S".into(), tree.release.clone().into()]);
        let mut mg = Command::new(env!("CARGO_BIN_EXE_modgate"));
        mg.arg("--root")
            .arg(root.path())
            .args(["--kernel-release", &tree.release]);
        for c in &confs {
            args.extend(["-C".into(), c.as_os_str().to_owned()]);
            mg.arg("--config-dir").arg(c);
        }
        let script = "mount --bind \"$0\" /proc/cmdline && exec modprobe \"$@\" -c";
        let want = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", script])
            .arg(&file)
            .args(&args)
            .output()
            .expect("run modprobe");
        let got = mg.arg("config").output().expect("run modgate");
        let lines = want.stdout.split(|&b| b == b'\n').count();
        assert!(
            lines > 1000,
            "{what}: modprobe -c printed only {lines} lines"
        );
        if let Some(d) = diff(
            what,
            &format!(
                "{}rc={:?}",
                String::from_utf8_lossy(&want.stdout),
                want.status.code()
            ),
            &format!(
                "{}rc={:?}",
                String::from_utf8_lossy(&got.stdout),
                got.status.code()
            ),
        ) {
            bad.push(d.chars().take(4000).collect());
        }
    }
    report(
        "configurations shown as modprobe -c shows them",
        cases.len(),
        &bad,
    );
}

#[path = "kmod_differential/cmdline.rs"]
mod cmdline;
#[path = "kmod_differential/fake_tree.rs"]
mod fake_tree;
#[path = "kmod_differential/trees.rs"]
mod trees;
