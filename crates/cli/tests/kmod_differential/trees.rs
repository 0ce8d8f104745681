//! Generated trees: the layouts users have, built with the system depmod from fake
//! modules, every name of each compared with modprobe, and `modprobe -c` too.

use super::fake_tree::{self, module, Spec};
use super::*;

/// Whether the tools that build trees are here; without them the tests say so and
/// pass, unless MODGATE_REQUIRE_REAL=1.
pub(super) fn can_build_trees() -> bool {
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
fn check_tree(spec: &Spec) -> Option<fake_tree::Built> {
    if !can_build_trees() {
        return None;
    }
    let built = fake_tree::build(spec, &host_cmdline());
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
fn index_size(built: &fake_tree::Built, file: &str) -> Option<u64> {
    std::fs::metadata(built.moddir().join(file))
        .ok()
        .map(|m| m.len())
}

/// What modprobe prints for one name in a built tree (to check a tree says what its
/// test is about).
fn shown(built: &fake_tree::Built, name: &str) -> String {
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

// The reported failures, as they were reported.

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
    let r = fake_tree::build(
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
    let r2 = fake_tree::build(
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
