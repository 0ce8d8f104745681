//! Differential test against kmod on a real kernel's module tree: for every module, a
//! sample of aliases, and fixture configurations, `modgate plan --format modprobe` must
//! print byte for byte what `modprobe --show-depends` prints, with the same exit status.
//!
//! The tree comes from `scripts/fetch-kernel` (Debian's kernel package, depmod'ed) via
//! `MODGATE_KERNEL_ROOT` and `MODGATE_KERNEL_RELEASE`; `scripts/test` sets them. Without
//! them the tests say so and pass, unless `MODGATE_REQUIRE_REAL=1` (CI), where they fail.

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

// ---- Generated trees: the layouts users have, built with the system depmod ----------

mod kmodtree;

use kmodtree::{module, Spec};

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

/// Whether the tools that build trees are here; without them the tests say so and
/// pass, unless MODGATE_REQUIRE_REAL=1.
fn can_build_trees() -> bool {
    let missing: Vec<&str> = ["cc", "depmod", "modprobe"]
        .into_iter()
        .filter(|t| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {t} >/dev/null")])
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("MODGATE_REQUIRE_REAL").as_deref() == Ok("1") {
        panic!(
            "{} not installed, and MODGATE_REQUIRE_REAL=1",
            missing.join(", ")
        );
    }
    eprintln!("skipped: {} not installed", missing.join(", "));
    false
}

/// The name that stands for the `modprobe -c` comparison in a tree's list.
const SHOW_CONFIG: &str = "(modprobe -c)";

/// Builds the tree and compares every name it lists, plus `modprobe -c`; returns the
/// tree so the caller can check it has the layout it is about.
fn check_tree(spec: &Spec) -> Option<kmodtree::Built> {
    if !can_build_trees() {
        return None;
    }
    let built = kmodtree::build(spec, &host_cmdline());
    let mut names = built.names.clone();
    names.push(SHOW_CONFIG.to_string());
    let (root, release, conf) = (built.root(), built.release.as_str(), built.conf.as_path());
    let bad = compare_all(&names, |n| {
        if n == SHOW_CONFIG {
            return diff(
                n,
                &modprobe_c(root, release, conf),
                &modgate_config(root, release, conf),
            );
        }
        diff(
            n,
            &modprobe(root, release, &[conf], n, None),
            &modgate(root, release, &[conf], n),
        )
    });
    report(&format!("names of tree {:?}", spec.name), names.len(), &bad);
    Some(built)
}

/// The size of a file of the tree's module directory (`None`: absent).
fn index_size(built: &kmodtree::Built, file: &str) -> Option<u64> {
    std::fs::metadata(built.moddir().join(file))
        .ok()
        .map(|m| m.len())
}

/// What modprobe prints for one name in a built tree (to check a tree says what its
/// test is about).
fn shown(built: &kmodtree::Built, name: &str) -> String {
    modprobe(built.root(), &built.release, &[&built.conf], name, None)
}

#[test]
fn pre_5_2_tree_agrees_with_modprobe() {
    // openEuler 20.03 LTS (4.19) and RHEL 8 (4.18): no modules.builtin.modinfo, so depmod
    // writes a 0-byte modules.builtin.alias.bin. Also: a release that is not the running
    // kernel's, a module whose file name is not its name, a module in both updates/ and
    // kernel/ (depmod's default search order takes updates/), and a softdep loop carried
    // by the modules themselves.
    let tree = check_tree(&Spec {
        name: "4.19, no modules.builtin.modinfo",
        release: "4.19.90-2102.2.0.0062.oe1.x86_64",
        modules: vec![
            module(
                "kernel/lib/libcrc-fake.ko",
                &[
                    "name=libcrc_fake",
                    "vermagic=4.19.90 SMP mod_unload modversions",
                ],
                &["crc_fake"],
                &[],
            ),
            module(
                "kernel/net/core_a.ko",
                &["name=core_a", "alias=net-pf-77", "alias=pci:v0000ABCDd*sv*"],
                &["core_a_sym"],
                &["crc_fake"],
            ),
            module(
                "kernel/net/drv-b.ko",
                &[
                    "name=drv_b",
                    "alias=drv-b-alias",
                    "depends=core_a",
                    "softdep=pre: crc_soft post: core_a",
                ],
                &[],
                &["core_a_sym"],
            ),
            module(
                "kernel/drivers/renamed-file.ko",
                &["name=real_name", "alias=renamed-alias"],
                &[],
                &[],
            ),
            module(
                "kernel/drivers/dup.ko",
                &["name=dup", "alias=dup-kernel"],
                &[],
                &[],
            ),
            module(
                "updates/dup.ko",
                &["name=dup", "alias=dup-updates"],
                &[],
                &[],
            ),
            module(
                "kernel/crypto/crc_soft.ko",
                &["softdep=pre: loop_b"],
                &[],
                &[],
            ),
            module("kernel/misc/loop_a.ko", &["softdep=pre: loop_b"], &[], &[]),
            module("kernel/misc/loop_b.ko", &["softdep=post: loop_a"], &[], &[]),
        ],
        builtin: Some(vec!["kernel/net/unix/unix.ko", "kernel/fs/ext4/ext4.ko"]),
        builtin_modinfo: None,
        extra_names: vec![
            "nosuch",
            "net-pf-1",
            "fs-ext4",
            "real_name",
            "symbol:nosuch",
        ],
        ..Default::default()
    });
    if let Some(t) = tree {
        assert_eq!(index_size(&t, "modules.builtin.alias.bin"), Some(0));
        assert!(shown(&t, "drv_b").contains("kernel/lib/libcrc-fake.ko"));
        assert!(shown(&t, "dup").contains("/updates/dup.ko"));
        assert!(shown(&t, "renamed_file").contains("renamed-file.ko"));
        assert!(shown(&t, "loop_a").contains("loop_b.ko"));
    }
}

#[test]
fn all_builtin_tree_agrees_with_modprobe() {
    // A kernel without loadable modules: modules.dep.bin holds no entries.
    let tree = check_tree(&Spec {
        name: "every module built in",
        release: "5.10.0-60.18.0.50.oe2203.x86_64",
        builtin: Some(vec![
            "kernel/net/unix/unix.ko",
            "kernel/fs/ext4/ext4.ko",
            "kernel/crypto/crc32c_generic.ko",
        ]),
        builtin_modinfo: Some(vec![
            "unix.alias=net-pf-1",
            "ext4.license=GPL",
            "ext4.alias=fs-ext4",
            "ext4.alias=ext3",
            "crc32c_generic.alias=crypto-crc32c",
            "crc32c_generic.alias=crc32c",
        ]),
        modprobe_d: vec![(
            "b.conf",
            "softdep ext4 pre: crc32c\noptions ext4 x=1\nalias my-fs ext4\n",
        )],
        extra_names: vec!["nosuch", "symbol:x", "my-fs"],
        ..Default::default()
    });
    if let Some(t) = tree {
        assert_eq!(index_size(&t, "modules.dep.bin"), Some(12));
        assert_eq!(shown(&t, "crypto-crc32c"), "builtin crc32c_generic\nrc=0");
    }
}

#[test]
fn empty_builtin_tree_agrees_with_modprobe() {
    // An empty modules.builtin and an empty modules.builtin.modinfo: both binary indexes
    // hold no entries.
    let tree = check_tree(&Spec {
        name: "empty modules.builtin",
        release: "6.6.0-empty-builtin",
        modules: vec![
            module(
                "kernel/a/base.ko",
                &["alias=base-alias"],
                &["base_sym"],
                &[],
            ),
            module("kernel/a/top.ko", &["alias=top-*"], &[], &["base_sym"]),
        ],
        builtin: Some(vec![]),
        builtin_modinfo: Some(vec![]),
        extra_names: vec!["nosuch", "top-x", "unix"],
        ..Default::default()
    });
    if let Some(t) = tree {
        assert_eq!(index_size(&t, "modules.builtin.bin"), Some(12));
        assert_eq!(index_size(&t, "modules.builtin.alias.bin"), Some(12));
    }
}

#[test]
fn external_modules_tree_agrees_with_modprobe() {
    // depmod.d's `external` directory: modules.dep lists those modules by absolute path,
    // and `search` puts updates/ before the external directory before the kernel's own.
    let tree = check_tree(&Spec {
        name: "external modules (absolute paths)",
        release: "5.14.0-external.el9.x86_64",
        modules: vec![
            module("kernel/a/base.ko", &[], &["base_sym"], &[]),
            module(
                "/opt/ext/ext_drv.ko",
                &["alias=ext-alias"],
                &["ext_sym"],
                &["base_sym"],
            ),
            module("kernel/a/user.ko", &[], &[], &["ext_sym"]),
            module("updates/over.ko", &["alias=over-updates"], &[], &[]),
            module("/opt/ext/over.ko", &["alias=over-external"], &[], &[]),
            module("/opt/ext/shadow.ko", &["alias=shadow-external"], &[], &[]),
            module("kernel/b/shadow.ko", &["alias=shadow-kernel"], &[], &[]),
        ],
        depmod_conf: Some(
            "search updates external built-in\nexternal 5.14.0-external.el9.x86_64 @ROOT@/opt/ext\n",
        ),
        extra_names: vec!["nosuch"],
        ..Default::default()
    });
    if let Some(t) = tree {
        let ext = t.root().join("opt/ext");
        assert!(shown(&t, "user").contains(&format!("insmod {}/ext_drv.ko", ext.display())));
        assert!(shown(&t, "over").contains("/updates/over.ko"));
        assert!(shown(&t, "shadow").contains(&format!("{}/shadow.ko", ext.display())));
    }
}

#[test]
fn softdep_weakdep_tree_agrees_with_modprobe() {
    // Softdep loops in modprobe.d, install commands with and without softdeps, and the
    // newer `weakdep` syntax (modprobe.d, modules.weakdep, modinfo): --show-depends never
    // prints weak dependencies, and kmod 30 skips the lines it does not know.
    let tree = check_tree(&Spec {
        name: "softdep loops and weakdep",
        release: "6.12.0-weakdep",
        modules: vec![
            module("kernel/s/sd_a.ko", &["weakdep=sd_d"], &["a_sym"], &[]),
            module("kernel/s/sd_b.ko", &[], &[], &["a_sym"]),
            module("kernel/s/sd_c.ko", &["softdep=pre: sd_a"], &[], &[]),
            module("kernel/s/sd_d.ko", &["alias=sd-d-alias"], &[], &[]),
            module("kernel/s/sd-e.ko", &[], &[], &[]),
        ],
        modprobe_d: vec![
            (
                "10-loops.conf",
                concat!(
                    "softdep sd_a pre: sd_b\n",
                    "softdep sd_b pre: sd_a post: sd_c\n",
                    "softdep sd_c post: sd_a sd_c\n",
                    "weakdep sd_a sd_d\n",
                    "options sd_a x=1\n",
                    "alias sd-alias sd_a\n",
                ),
            ),
            (
                "20-install.conf",
                concat!(
                    "install sd_b /bin/false\n",
                    "install sd_d /bin/false\n",
                    "install sd-e /bin/true\n",
                    "blacklist sd_d\n",
                ),
            ),
        ],
        extra_files: vec![("modules.weakdep", b"weakdep sd_a sd_d\n")],
        extra_names: vec!["sd-alias", "sd_e", "nosuch"],
        ..Default::default()
    });
    if let Some(t) = tree {
        assert!(shown(&t, "sd_b").contains("sd_c.ko"));
        assert!(!shown(&t, "sd_a").contains("sd_d"));
    }
}

// ---- Generated kernel command lines ----------------------------------------------------

/// A small deterministic generator (xorshift64*), so a failing line can be found again.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

/// One random kernel command line: module options with and without values, dots in
/// names and values, quotes anywhere, `modprobe.blacklist` lists (quoted, repeated),
/// every C blank as a separator, control and non-ASCII bytes, a NUL now and then, and
/// lines past kmod's 4095-byte buffer.
fn random_cmdline(rng: &mut Rng) -> String {
    const MODS: &[&str] = &[
        "foo", "bar", "mod-a", "mod_a", "modprobe", "", "a[b]", "a]", "x[", "é", "fo\"o", "foo.",
        "ip_vs",
    ];
    const PARAMS: &[&str] = &["p", "blacklist", "x.y", "a-b", "", "p.q", "é", "q"];
    const VALUE: &[&str] = &[
        "1", "1.5G", "a b", ",", "foo,bar", "mod-a", "\"", ".", "=", "\t", "x", "é", "\u{1}", " ",
        "\n", "\u{b}", ",,", "\u{7f}", "\u{a0}",
    ];
    const FILLER: &[&str] = &[
        "quiet",
        "rdinit=/x",
        "--",
        "0.0.0.0:1",
        "root=/dev/sda1",
        "ro",
        "\"",
        "a.b.c",
    ];
    const SEP: &[&str] = &[" ", " ", " ", " ", "  ", "\t", "\n", "\r", "\u{c}"];
    let mut line = String::new();
    if rng.chance(2) {
        line.push_str(&"x".repeat(4080 + rng.below(20)));
        line.push(' ');
    }
    for w in 0..1 + rng.below(8) {
        if w > 0 {
            line.push_str(rng.pick(SEP));
        }
        if rng.chance(12) {
            line.push_str(rng.pick(FILLER));
            continue;
        }
        let mut word = String::new();
        if rng.chance(15) {
            word.push('"');
        }
        if rng.chance(20) {
            word.push_str("modprobe.blacklist=");
            for i in 0..rng.below(4) {
                if i > 0 {
                    word.push(',');
                }
                word.push_str(rng.pick(&["foo", "bar", "mod-a", "", "\"x", "y\""]));
            }
        } else {
            word.push_str(rng.pick(MODS));
            if rng.chance(85) {
                word.push('.');
                word.push_str(rng.pick(PARAMS));
            }
            if rng.chance(70) {
                word.push('=');
                for _ in 0..rng.below(4) {
                    word.push_str(rng.pick(VALUE));
                }
            }
        }
        if rng.chance(15) {
            word.push('"');
        }
        if rng.chance(10) {
            let at: Vec<usize> = word.char_indices().map(|(i, _)| i).collect();
            if !at.is_empty() {
                word.insert(at[rng.below(at.len())], '"');
            }
        }
        line.push_str(&word);
    }
    if rng.chance(1) {
        line.insert(rng.below(line.len() / 2 + 1).min(line.len()), '\0');
        while !line.is_char_boundary(line.len()) {
            line.pop();
        }
    }
    if rng.chance(80) {
        line.push('\n');
    }
    line
}

#[test]
fn generated_kernel_command_lines_agree_with_modprobe() {
    const LINES: usize = 2000;
    const NAMES: &[&str] = &["foo", "mod-a", "foo-alias", "bar", "ip_vs"];
    if !can_build_trees() {
        return;
    }
    let tree = kmodtree::build(
        &Spec {
            name: "command line",
            release: "4.18.0-cmdline.el8.x86_64",
            modules: vec![
                module("kernel/f/foo.ko", &["alias=foo-alias"], &["foo_sym"], &[]),
                module("kernel/f/bar.ko", &[], &[], &["foo_sym"]),
                module("kernel/f/mod-a.ko", &[], &[], &[]),
            ],
            builtin: Some(vec!["kernel/net/ipv4/ip_vs.ko"]),
            ..Default::default()
        },
        "",
    );
    let work = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(0x6d6f_6467_6174_6521);
    let mut cases = Vec::new();
    for i in 0..LINES {
        let line = random_cmdline(&mut rng);
        let root = work.path().join(format!("{i:04}"));
        std::fs::create_dir_all(root.join("proc")).expect("mkdir");
        std::fs::write(root.join("proc/cmdline"), &line).expect("write cmdline");
        std::os::unix::fs::symlink(tree.root().join("lib"), root.join("lib")).expect("symlink");
        // Every fourth line also resolves a name, to see the options reach the plan.
        if i % 4 == 0 {
            std::fs::write(root.join("name"), NAMES[(i / 4) % NAMES.len()]).expect("name");
        }
        cases.push(format!("{i:04}"));
    }
    // One private mount namespace for all lines: the file bound over /proc/cmdline is
    // rewritten in place before each modprobe call.
    let script = r#"
        cur="$1/cur"; : > "$cur"
        mount --bind "$cur" /proc/cmdline || exit 1
        for d in "$1"/[0-9]*; do
            cat "$d/proc/cmdline" > "$cur"
            modprobe -d "$d" -S "$2" -C "$3" -c > "$d/want.c" 2>/dev/null
            printf 'rc=%d' $? >> "$d/want.c"
            if [ -e "$d/name" ]; then
                modprobe -d "$d" -S "$2" -C "$3" --show-depends "$(cat "$d/name")" > "$d/want.show" 2>/dev/null
                printf 'rc=%d' $? >> "$d/want.show"
            fi
        done
    "#;
    let status = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(work.path())
        .arg(&tree.release)
        .arg(&tree.conf)
        .status()
        .expect("run unshare");
    assert!(status.success(), "modprobe batch failed: {status}");
    let release = tree.release.as_str();
    let conf = tree.conf.as_path();
    let bad = compare_all(&cases, |case| {
        let root = work.path().join(case);
        let line = std::fs::read(root.join("proc/cmdline")).unwrap_or_default();
        let label = format!("line {case} {:?}", String::from_utf8_lossy(&line));
        let want = std::fs::read_to_string(root.join("want.c")).expect("modprobe -c output");
        if let Some(d) = diff(&label, &want, &modgate_config(&root, release, conf)) {
            return Some(d);
        }
        let name = std::fs::read_to_string(root.join("name")).ok()?;
        let want = std::fs::read_to_string(root.join("want.show")).expect("modprobe output");
        diff(
            &format!("{label} --show-depends {name}"),
            &want,
            &modgate(&root, release, &[conf], &name),
        )
    });
    // The lines must exercise the parser: many give options, many a blacklist.
    let (mut with_options, mut with_blacklist) = (0, 0);
    for case in &cases {
        let want =
            std::fs::read_to_string(work.path().join(case).join("want.c")).unwrap_or_default();
        with_options += usize::from(want.lines().any(|l| l.starts_with("options ")));
        with_blacklist += usize::from(want.lines().any(|l| l.starts_with("blacklist ")));
    }
    println!("({with_options} lines gave options, {with_blacklist} a blacklist)");
    assert!(with_options > LINES / 3 && with_blacklist > LINES / 5);
    report("generated kernel command lines", cases.len(), &bad);
}

// ---- The reported failures, as they were reported ---------------------------------------

/// Both tools on one name; asserts they agree and returns modprobe's answer.
fn same_answer(root: &Path, release: &str, conf: &Path, name: &str, bind: Option<&Path>) -> String {
    let want = modprobe(root, release, &[conf], name, bind);
    let got = modgate(root, release, &[conf], name);
    assert_eq!(got, want, "{name} in {}", root.display());
    want
}

#[test]
fn reported_trees_agree_with_modprobe() {
    if !can_build_trees() {
        return;
    }
    // A 4.19 tree: depmod leaves a 0-byte modules.builtin.alias.bin.
    let r = kmodtree::build(
        &Spec {
            name: "4.19.90",
            release: "4.19.90",
            modules: vec![module("kernel/foo.ko", &["name=foo"], &[], &[])],
            builtin: Some(vec!["kernel/net/unix/unix.ko"]),
            ..Default::default()
        },
        "",
    );
    assert_eq!(
        same_answer(r.root(), "4.19.90", &r.conf, "foo", None),
        format!("insmod {}/kernel/foo.ko \nrc=0", r.moddir().display())
    );
    // Every module built in: modules.dep.bin has no entries.
    let r2 = kmodtree::build(
        &Spec {
            name: "1.0",
            release: "1.0",
            builtin: Some(vec!["kernel/net/unix/unix.ko"]),
            builtin_modinfo: Some(vec!["unix.alias=net-pf-1"]),
            ..Default::default()
        },
        "",
    );
    for name in ["unix", "net-pf-1"] {
        assert_eq!(
            same_answer(r2.root(), "1.0", &r2.conf, name, None),
            "builtin unix\nrc=0"
        );
    }
    assert!(same_answer(r2.root(), "1.0", &r2.conf, "foo", None).ends_with("rc=1"));
    // The kernel command lines of the report, with module foo.
    let cmdline = r.root().join("proc/cmdline");
    let insmod = format!("insmod {}/kernel/foo.ko", r.moddir().display());
    for (line, options) in [
        ("foo.a foo.b=1", "a b=1 "),
        ("foo.p=1.5G", "p=1.5G "),
        ("foo.p=\"a b\"", "p=\"a b\" "),
        ("\"foo.p=a b\"", "p=\"a b\" "),
        ("foo.x.y=1", ""),
    ] {
        std::fs::write(&cmdline, format!("{line}\n")).expect("write cmdline");
        assert_eq!(
            same_answer(r.root(), "4.19.90", &r.conf, "foo", Some(&cmdline)),
            format!("{insmod} {options}\nrc=0"),
            "{line}"
        );
    }
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

#[test]
fn dependency_loop_tree_agrees_with_modprobe() {
    // loop_x needs loop_z, patched into loop_x needing loop_y, which needs loop_x.
    let tree = check_tree(&Spec {
        name: "dependency loop",
        release: "4.18.0-348.el8.x86_64",
        modules: vec![
            module("kernel/l/loop_x.ko", &[], &["x_sym"], &["z_sym"]),
            module(
                "kernel/l/loop_y.ko",
                &["alias=loop-alias"],
                &["y_sym"],
                &["x_sym"],
            ),
            module("kernel/l/loop_z.ko", &[], &["z_sym"], &[]),
            module("kernel/l/loop_top.ko", &[], &[], &["y_sym"]),
        ],
        patch_dep: vec![(
            "kernel/l/loop_x.ko: kernel/l/loop_z.ko",
            "kernel/l/loop_x.ko: kernel/l/loop_y.ko",
        )],
        modprobe_d: vec![("s.conf", "softdep loop_z pre: loop_top\n")],
        extra_names: vec!["nosuch"],
        ..Default::default()
    });
    if let Some(t) = tree {
        let dep = std::fs::read_to_string(t.moddir().join("modules.dep")).expect("modules.dep");
        assert!(dep.contains("loop_x.ko: kernel/l/loop_y.ko"), "{dep}");
        assert!(shown(&t, "loop_top").contains("loop_x.ko"));
    }
}
