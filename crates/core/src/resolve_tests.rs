//! Resolver unit tests on a small fixture module directory, each run against the text
//! forms and against binary indexes built from the same entries: every text/bin pair
//! must give the same plan.

use std::collections::HashMap;

use crate::config::Config;
use crate::index::tests::build;
use crate::index::BinIndex;
use crate::moddb::{self, AliasIndex, BuiltinIndex, DepIndex, ModuleDb};
use crate::plan::{Action, Plan, Reason};
use crate::resolve::{KernelView, ModState, NothingLoaded, ResolveError, Resolver};

const DEP: &str = "\
kernel/net/ipvs/ip_vs_wrr.ko: kernel/net/ipvs/ip_vs.ko kernel/net/nf_conntrack.ko kernel/lib/libcrc32c.ko
kernel/net/ipvs/ip_vs.ko: kernel/net/nf_conntrack.ko kernel/lib/libcrc32c.ko
kernel/net/nf_conntrack.ko: kernel/lib/libcrc32c.ko
kernel/lib/libcrc32c.ko:
kernel/crypto/crc32c-intel.ko:
kernel/crypto/crc32c_generic.ko:
kernel/drivers/net/dummy.ko:
kernel/drivers/net/e1000e.ko:
kernel/drivers/net/veth.ko:
kernel/net/dccp/dccp.ko:
";
// depmod writes aliases module by module, in module order (its binary priority).
const ALIAS: &str = "\
alias crc32c crc32c_intel
alias crc32c crc32c_generic
alias pci:v00008086d000010D3sv*sd*bc*sc*i* e1000e
alias rtnl-link-dummy dummy
alias net-pf-33 dccp
";
const SYMBOLS: &str = "alias symbol:nf_conntrack_in nf_conntrack\n";
const BUILTIN: &str = "kernel/fs/ext4/ext4.ko\n";
const MODINFO: &[u8] = b"ext4.alias=fs-ext4\0ext4.license=GPL\0";

struct Fixture {
    dep: Vec<u8>,
    alias: Vec<u8>,
    symbols: Vec<u8>,
    builtin: Vec<u8>,
    builtin_alias: Vec<u8>,
}

/// The binary forms, built the way depmod builds them: priority = module order.
fn fixture() -> Fixture {
    let order: Vec<String> = DEP
        .lines()
        .map(|l| crate::name::modname_from_path(l.split(':').next().unwrap_or("")))
        .collect();
    let prio = |m: &str| order.iter().position(|o| o == m).unwrap_or(999) as u32;
    let dep: Vec<(String, String, u32)> = DEP
        .lines()
        .map(|l| {
            (
                crate::name::modname_from_path(l.split(':').next().unwrap_or("")),
                l.to_string(),
                0,
            )
        })
        .collect();
    let alias: Vec<(String, String, u32)> = moddb::parse_alias_text(ALIAS)
        .entries()
        .iter()
        .map(|(p, m, _)| (p.clone(), m.clone(), prio(m)))
        .collect();
    let symbols = moddb::parse_alias_text(SYMBOLS).entries().to_vec();
    let builtin_alias = moddb::parse_builtin_modinfo(MODINFO).entries().to_vec();
    let refs = |v: &[(String, String, u32)]| -> Vec<u8> {
        let e: Vec<(&str, &str, u32)> = v
            .iter()
            .map(|(a, b, c)| (a.as_str(), b.as_str(), *c))
            .collect();
        build(&e)
    };
    Fixture {
        dep: refs(&dep),
        alias: refs(&alias),
        symbols: refs(&symbols),
        builtin: build(&[("ext4", "", 0)]),
        builtin_alias: refs(&builtin_alias),
    }
}

fn text_db() -> ModuleDb<'static> {
    ModuleDb {
        dep: DepIndex::Text(moddb::parse_dep_text(DEP)),
        alias: AliasIndex::Text(moddb::parse_alias_text(ALIAS)),
        symbols: AliasIndex::Text(moddb::parse_alias_text(SYMBOLS)),
        builtin: BuiltinIndex::Text(moddb::parse_builtin_text(BUILTIN)),
        builtin_alias: AliasIndex::Text(moddb::parse_builtin_modinfo(MODINFO)),
    }
}

fn bin_db(f: &Fixture) -> ModuleDb<'_> {
    ModuleDb {
        dep: DepIndex::Bin(BinIndex::new(&f.dep).expect("dep")),
        alias: AliasIndex::Bin(BinIndex::new(&f.alias).expect("alias")),
        symbols: AliasIndex::Bin(BinIndex::new(&f.symbols).expect("symbols")),
        builtin: BuiltinIndex::Bin(BinIndex::new(&f.builtin).expect("builtin")),
        builtin_alias: AliasIndex::Bin(BinIndex::new(&f.builtin_alias).expect("builtin alias")),
    }
}

fn config(text: &str) -> Config {
    let mut c = Config::default();
    c.parse_file("/etc/modprobe.d/test.conf", text.as_bytes());
    c
}

struct Live(HashMap<&'static str, ModState>);

impl KernelView for Live {
    fn state(&self, name: &str) -> ModState {
        self.0.get(name).copied().unwrap_or(ModState::Absent)
    }
}

/// Plans with both forms, checks they agree, returns the plan.
fn plan(conf: &str, names: &[&str], kernel: &dyn KernelView) -> Result<Plan, String> {
    let f = fixture();
    let c = config(conf);
    let text = text_db();
    let bin = bin_db(&f);
    let a = Resolver::new(&text, &c, "/L")
        .plan(names, kernel)
        .map_err(|e| e.to_string());
    let b = Resolver::new(&bin, &c, "/L")
        .plan(names, kernel)
        .map_err(|e| e.to_string());
    match (&a, &b) {
        (Ok(x), Ok(y)) => {
            assert_eq!(
                x.modprobe_lines, y.modprobe_lines,
                "text and bin differ for {names:?}"
            );
            assert_eq!(format!("{:?}", x.steps), format!("{:?}", y.steps));
        }
        (Err(x), Err(y)) => assert_eq!(x, y),
        _ => panic!("text {a:?} and bin {b:?} disagree for {names:?}"),
    }
    a
}

fn lines(conf: &str, name: &str) -> Vec<String> {
    plan(conf, &[name], &NothingLoaded)
        .expect("plan")
        .modprobe_lines
}

fn modules(p: &Plan) -> Vec<&str> {
    p.steps.iter().map(|s| s.module.as_str()).collect()
}

#[test]
fn dependencies_load_first_and_softdeps_wrap_their_module() {
    let got = lines(
        "softdep libcrc32c pre: crc32c\nsoftdep ip_vs post: dummy\n",
        "ip_vs_wrr",
    );
    assert_eq!(
        got,
        [
            "insmod /L/kernel/crypto/crc32c-intel.ko ",
            "insmod /L/kernel/crypto/crc32c_generic.ko ",
            "insmod /L/kernel/lib/libcrc32c.ko ",
            "insmod /L/kernel/net/nf_conntrack.ko ",
            "insmod /L/kernel/net/ipvs/ip_vs.ko ",
            "insmod /L/kernel/drivers/net/dummy.ko ",
            "insmod /L/kernel/net/ipvs/ip_vs_wrr.ko ",
        ]
    );
    let p = plan(
        "softdep libcrc32c pre: crc32c\n",
        &["ip_vs_wrr"],
        &NothingLoaded,
    )
    .expect("plan");
    let crc = p
        .steps
        .iter()
        .find(|s| s.module == "crc32c_intel")
        .expect("softdep");
    assert!(!crc.required, "softdeps are optional");
    assert_eq!(
        crc.reason,
        Reason::SoftdepPre {
            of: "libcrc32c".into()
        }
    );
    assert!(
        p.steps
            .iter()
            .find(|s| s.module == "ip_vs")
            .expect("dep")
            .required
    );
}

#[test]
fn names_are_normalised() {
    assert_eq!(lines("", "ip-vs"), lines("", "ip_vs"));
    assert_eq!(
        lines("", "crc32c_intel"),
        ["insmod /L/kernel/crypto/crc32c-intel.ko "]
    );
}

#[test]
fn lookup_order() {
    // A config alias wins over a module of the same name.
    assert_eq!(
        lines("alias dummy veth\n", "dummy"),
        ["insmod /L/kernel/drivers/net/veth.ko "]
    );
    // An install command wins over modules.alias, and is shown, not run.
    assert_eq!(
        lines("install rtnl_link_dummy /bin/true\n", "rtnl-link-dummy"),
        ["install /bin/true "]
    );
    // Wildcard aliases, several matches in priority order.
    assert_eq!(
        lines("", "pci:v00008086d000010D3sv00001028sd00000001bc02sc00i00"),
        ["insmod /L/kernel/drivers/net/e1000e.ko "]
    );
    assert_eq!(
        lines("", "crc32c"),
        [
            "insmod /L/kernel/crypto/crc32c-intel.ko ",
            "insmod /L/kernel/crypto/crc32c_generic.ko "
        ]
    );
    // Symbols, builtin names and builtin aliases.
    assert_eq!(
        lines("", "symbol:nf_conntrack_in")
            .last()
            .map(String::as_str),
        Some("insmod /L/kernel/net/nf_conntrack.ko ")
    );
    assert_eq!(lines("", "ext4"), ["builtin ext4"]);
    assert_eq!(lines("", "fs-ext4"), ["builtin ext4"]);
}

#[test]
fn options_from_name_and_alias() {
    let got = lines(
        "options dummy numdummies=2\noptions rtnl_link_dummy x=1\n",
        "rtnl-link-dummy",
    );
    assert_eq!(
        got,
        ["insmod /L/kernel/drivers/net/dummy.ko numdummies=2 x=1 "]
    );
    let p = plan("options dummy numdummies=2\n", &["dummy"], &NothingLoaded).expect("plan");
    assert_eq!(
        p.steps[0].action,
        Action::Insert {
            path: "/L/kernel/drivers/net/dummy.ko".into(),
            options: "numdummies=2".into()
        }
    );
}

#[test]
fn blacklist_applies_to_aliases_only() {
    assert_eq!(
        lines("blacklist dccp\n", "dccp"),
        ["insmod /L/kernel/net/dccp/dccp.ko "]
    );
    let p = plan("blacklist dccp\n", &["net-pf-33"], &NothingLoaded).expect("plan");
    assert!(p.steps.is_empty());
    assert_eq!(
        p.targets[0].blacklisted.as_deref(),
        Some("/etc/modprobe.d/test.conf")
    );
}

#[test]
fn install_command_disables_a_module() {
    let p = plan("install dccp /bin/false\n", &["dccp"], &NothingLoaded).expect("plan");
    assert_eq!(
        p.steps[0].action,
        Action::Disabled {
            command: "/bin/false".into(),
            source: "/etc/modprobe.d/test.conf line 1".into()
        }
    );
    assert_eq!(p.modprobe_lines, ["install /bin/false "]);
    // kmod ignores the install command of a module with softdeps and inserts it; the
    // modprobe view says so, but modgate, which never runs install commands, still
    // takes the admin's word: the module is disabled.
    let p = plan(
        "softdep dccp pre: dummy\n\ninstall dccp /bin/false\n",
        &["dccp"],
        &NothingLoaded,
    )
    .expect("plan");
    assert!(p
        .modprobe_lines
        .last()
        .is_some_and(|l| l.starts_with("insmod /L/")));
    assert_eq!(
        p.steps.last().map(|s| &s.action),
        Some(&Action::Disabled {
            command: "/bin/false".into(),
            source: "/etc/modprobe.d/test.conf line 3".into()
        })
    );
}

#[test]
fn install_command_disables_a_dependency_too() {
    let p = plan("install ip_vs /bin/false\n", &["ip_vs_wrr"], &NothingLoaded).expect("plan");
    let step = p
        .steps
        .iter()
        .find(|s| s.module == "ip_vs")
        .expect("ip_vs step");
    assert!(matches!(step.action, Action::Disabled { .. }));
    assert!(matches!(
        step.reason,
        crate::plan::Reason::Dependency { .. }
    ));
}

#[test]
fn live_coming_and_builtin_states() {
    let kernel = Live(HashMap::from([
        ("libcrc32c", ModState::Live),
        ("nf_conntrack", ModState::Coming),
        ("ip_vs", ModState::Builtin),
    ]));
    let p = plan("", &["ip_vs_wrr"], &kernel).expect("plan");
    assert_eq!(
        modules(&p),
        ["libcrc32c", "nf_conntrack", "ip_vs", "ip_vs_wrr"]
    );
    let actions: Vec<&Action> = p.steps.iter().map(|s| &s.action).collect();
    assert_eq!(actions[0], &Action::Loaded);
    assert_eq!(actions[1], &Action::Coming);
    assert_eq!(actions[2], &Action::Builtin);
    assert!(matches!(actions[3], Action::Insert { .. }));
    // modprobe's format ignores live state.
    assert_eq!(p.modprobe_lines.len(), 4);
}

/// A kernel view that counts what it is asked (a fake).
struct CountingKernel(std::cell::RefCell<HashMap<String, usize>>);

impl KernelView for CountingKernel {
    fn state(&self, name: &str) -> ModState {
        *self.0.borrow_mut().entry(name.to_string()).or_default() += 1;
        ModState::Live
    }
}

#[test]
fn a_plan_asks_the_kernel_once_per_module() {
    // ip_vs_wrr depends on ip_vs and its dependencies: planning both targets walks them
    // twice, and each module's state is still read once.
    let kernel = CountingKernel(Default::default());
    let p = plan("", &["ip_vs", "ip_vs_wrr"], &kernel).expect("plan");
    assert!(p.steps.iter().all(|s| s.action == Action::Loaded));
    // `plan` resolves with the text and the binary indexes: two resolvers, two asks.
    let asked = kernel.0.into_inner();
    assert_eq!(asked.len(), p.steps.len(), "{asked:?}");
    assert!(asked.values().all(|&n| n == 2), "{asked:?}");
}

#[test]
fn a_module_named_twice_loads_once() {
    let p = plan("", &["ip_vs", "ip_vs_wrr", "ip_vs"], &NothingLoaded).expect("plan");
    assert_eq!(
        modules(&p),
        ["libcrc32c", "nf_conntrack", "ip_vs", "ip_vs_wrr"]
    );
}

#[test]
fn errors() {
    let e = plan("", &["nosuchmod"], &NothingLoaded).unwrap_err();
    assert_eq!(
        e,
        "module \"nosuchmod\" not found in /L (modules.dep, modules.alias, builtin)"
    );
    let e = plan("", &["bad]"], &NothingLoaded).unwrap_err();
    assert!(e.starts_with("invalid module name \"bad]\""), "{e}");
    // A config alias to a module that has no file is planned as missing, not invented.
    let p = plan("alias ghost nosuch_file\n", &["ghost"], &NothingLoaded).expect("plan");
    assert_eq!(p.steps[0].action, Action::Missing);
    assert!(p.modprobe_lines.is_empty());
}

#[test]
fn corrupt_binary_index_names_file_and_offset() {
    let mut f = fixture();
    let len = f.dep.len();
    f.dep.truncate(len / 2);
    let db = ModuleDb {
        dep: DepIndex::Bin(BinIndex::new(&f.dep).expect("header")),
        ..text_db()
    };
    let c = Config::default();
    let mut r = Resolver::new(&db, &c, "/L");
    // Some lookups reach the cut; none may panic, and errors name the file and offset.
    let mut saw_error = false;
    for name in [
        "ip_vs_wrr",
        "ip_vs",
        "dummy",
        "veth",
        "dccp",
        "e1000e",
        "libcrc32c",
    ] {
        if let Err(e) = r.plan(&[name], &NothingLoaded) {
            saw_error = true;
            let chain = crate::error_line(&e);
            assert!(matches!(e, ResolveError::Index { .. }), "{chain}");
            assert!(
                chain.contains("modules.dep.bin") && chain.contains("offset"),
                "{chain}"
            );
        }
    }
    assert!(saw_error, "a half index must fail some lookup");
}
