//! The hostile inputs, one [`Case`] each: what it is, where it comes from, the input
//! itself and what must happen. `hostile.rs` runs them and prints the table.

use modgate_testkit::SEED_REQUEST;

/// The container of every case not about the id.
pub const ID: &str = "h1";

/// Modules added to every case's module tree, so a denial is the policy's and not a
/// "not found".
pub const FAMILIES: &[&str] = &[
    "nf_tables",
    "nft_fwd_netdev",
    "cls_u32",
    "sch_qfq",
    "act_mirred",
    "vsock",
    "vmw_vsock_virtio_transport",
    "n_gsm",
    "n_hdlc",
    "bluetooth",
    "xfrm_user",
    "sctp",
    "tipc",
    "floppy",
    "kcm",
    "xt_u32",
];

#[derive(Clone, Copy)]
pub enum Source {
    Env,
    Annotation,
    Id,
    State,
    Bundle,
    Config,
    Policy,
    ModprobeD,
    Index,
    Store,
    Wrapper,
    Family,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Env => "container: `KERNEL_MODULES`",
            Source::Annotation => "container: annotation",
            Source::Id => "container id",
            Source::State => "OCI state on stdin",
            Source::Bundle => "OCI state: bundle",
            Source::Config => "bundle: `config.json`",
            Source::Policy => "admin: `policy.toml`",
            Source::ModprobeD => "admin: `modprobe.d`",
            Source::Index => "host: module index",
            Source::Store => "host: state store",
            Source::Wrapper => "runtime wrapper arguments",
            Source::Family => "container: denied family",
        }
    }
}

/// What must happen.
pub enum Expect {
    /// Non-zero exit, one `modgate:` line containing this, nothing changed.
    Refused(&'static str),
    /// Exit 0, the container recorded as holding its request (live already).
    Allowed,
    /// Exit 0 and nothing done: the input is no request at all.
    NoRequest,
}

pub enum BundleKind {
    Relative,
    Symlink,
    Missing,
    RegularFile,
    /// A path that does not exist, as given.
    Path(String),
}

pub enum ConfigKind {
    Text(String),
    Bytes(&'static [u8]),
    Symlink,
    Fifo,
    Directory,
    Huge,
    Missing,
}

pub enum PolicyKind {
    Text(String),
    Bytes(&'static [u8]),
    DanglingSymlink,
    Directory,
}

pub enum Input {
    /// `KERNEL_MODULES=VALUE` in `process.env`.
    Env(String),
    /// `process.env` exactly.
    EnvEntries(Vec<&'static str>),
    /// `modgate.io/kernel-modules`, with `KERNEL_MODULES` (when not empty) too.
    Annotation {
        value: String,
        env: &'static str,
    },
    /// The state's id, asking for `request`.
    Id {
        id: String,
        request: &'static str,
    },
    /// The id of a container already holding modules, from another bundle.
    IdReused,
    /// The state on stdin, `BUNDLE` replaced with the bundle's path; asks for `dummy`.
    Stdin(String),
    Bundle(BundleKind),
    /// `config.json`; asks for `dummy` when it is a file.
    Config(ConfigKind),
    /// The policy file, with the seed request.
    Policy(PolicyKind),
    /// A policy file and a request.
    PolicyAnd {
        policy: &'static str,
        request: &'static str,
    },
    /// `etc/modprobe.d/hostile.conf` and a request.
    ModprobeD {
        conf: String,
        request: &'static str,
    },
    /// A file of the module directory replaced (None: removed), a policy file (when
    /// not empty) and a request.
    Index {
        file: &'static str,
        policy: &'static str,
        bytes: Option<Vec<u8>>,
        request: &'static str,
    },
    /// The container's record in the store before its prestart; asks for `dummy`.
    Record(&'static [u8]),
    /// `modgate-runtime --root STATE ARGS` with runc as the runtime (its path: none of
    /// these runs it); `B` is a bundle that asks for ip_vs.
    Wrapper(Vec<&'static str>),
}

pub struct Case {
    /// The input as the table's first column shows it.
    pub what: String,
    pub source: Source,
    pub input: Input,
    pub expect: Expect,
}

fn case(what: &str, source: Source, input: Input, expect: Expect) -> Case {
    Case {
        what: what.to_string(),
        source,
        input,
        expect,
    }
}

fn env(value: &str) -> Input {
    Input::Env(value.to_string())
}

fn refused(what: &str, source: Source, input: Input, want: &'static str) -> Case {
    case(what, source, input, Expect::Refused(want))
}

fn bad_item(what: &str, value: &str) -> Case {
    refused(what, Source::Env, env(value), "is not a module name")
}

fn family(name: &'static str) -> Case {
    refused(
        &format!("`{name}`"),
        Source::Family,
        env(name),
        "denied by policy",
    )
}

pub fn cases() -> Vec<Case> {
    use Expect::*;
    use Source as S;
    let state = |s: &str| Input::Stdin(s.to_string());
    let mut c = vec![
        case(
            "`ip_vs,ip_vs_wrr` (the seed request, for reference)",
            S::Env,
            env(SEED_REQUEST),
            Allowed,
        ),
        bad_item("`-r` (modprobe's remove flag)", "-r"),
        bad_item("`--force`", "--force"),
        bad_item("`ip_vs -v` (option injection)", "ip_vs -v"),
        bad_item("`ip_vs=1`", "ip_vs=1"),
        bad_item("`ip_vs conn_tab_bits=20` (module parameter)", "ip_vs conn_tab_bits=20"),
        bad_item("`../../x`", "../../x"),
        bad_item(
            "`/lib/modules/6.1.0-fixture/kernel/drivers/net/dummy.ko`",
            "/lib/modules/6.1.0-fixture/kernel/drivers/net/dummy.ko",
        ),
        bad_item("`dummy.ko`", "dummy.ko"),
        bad_item("`*`", "*"),
        bad_item("`ip_vs*`", "ip_vs*"),
        bad_item("`fs-*` (alias glob)", "fs-*"),
        bad_item("`char-major-10-*`", "char-major-10-*"),
        bad_item("`netdev-*`", "netdev-*"),
        bad_item("`pci:v00008086d*`", "pci:v00008086d*"),
        refused(
            "`net-pf-33` (an alias, of dccp)",
            S::Env,
            env("net-pf-33"),
            "alias",
        ),
        bad_item("`ip_vѕ` (Cyrillic dze for s)", "ip_v\u{455}"),
        bad_item("`ｉｐ_ｖｓ` (fullwidth letters)", "\u{ff49}\u{ff50}_\u{ff56}\u{ff53}"),
        bad_item("`ip_vs` + zero-width space", "ip_vs\u{200b}"),
        bad_item("right-to-left override + `sv_pi`", "\u{202e}sv_pi"),
        bad_item("`ip_vs` NUL `dccp`", "ip_vs\0dccp"),
        bad_item("`ip_vs` + newline", "ip_vs\n"),
        bad_item("`ip_vs` + carriage return", "ip_vs\r"),
        bad_item("`ip_vs` ESC `[31m`", "ip_vs\u{1b}[31m"),
        bad_item("`ip` TAB `vs`", "ip\tvs"),
        bad_item("`ip vs`", "ip vs"),
        bad_item("`ip_vs;reboot`", "ip_vs;reboot"),
        bad_item("`$(reboot)`", "$(reboot)"),
        bad_item("a 1 MB name", &"a".repeat(1 << 20)),
        bad_item("a 56-character name", &"a".repeat(56)),
        refused(
            "5,000 distinct names",
            S::Env,
            Input::Env(
                (0..5000)
                    .map(|i| format!("m{i}"))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            "at most 64",
        ),
        refused(
            "65 distinct names",
            S::Env,
            Input::Env(
                (0..65)
                    .map(|i| format!("m{i}"))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            "at most 64",
        ),
        refused(
            "`ip_vs` 10,000 times",
            S::Env,
            Input::Env(vec!["ip_vs"; 10_000].join(",")),
            "at most 64",
        ),
        case(
            "`ip_vs,ip_vs,ip-vs` (duplicates)",
            S::Env,
            env("ip_vs,ip_vs,ip-vs"),
            Allowed,
        ),
        case("`,,` (empty items)", S::Env, env(",,"), NoRequest),
        case("` , \\t, `", S::Env, env(" , \t, "), NoRequest),
        refused(
            "`nosuchmod`",
            S::Env,
            env("nosuchmod"),
            "not found",
        ),
        refused(
            "`ip_vs,nosuchmod` (one good, one unknown)",
            S::Env,
            env("ip_vs,nosuchmod"),
            "not found",
        ),
        refused(
            "`ip_vs,dccp` (one allowed, one denied)",
            S::Env,
            env("ip_vs,dccp"),
            "denied by policy",
        ),
        refused(
            "`veth` (blacklisted in modprobe.d)",
            S::Env,
            env("veth"),
            "blacklisted",
        ),
        refused(
            "`cramfs` (`install cramfs /bin/false`)",
            S::Env,
            env("cramfs"),
            "denied by policy",
        ),
        refused(
            "`crc32c` (an alias)",
            S::Env,
            env("crc32c"),
            "alias",
        ),
        refused("`IP_VS` (upper case)", S::Env, env("IP_VS"), "not found"),
        case(
            "`KERNEL_MODULES=dummy` then `KERNEL_MODULES=dccp`",
            S::Env,
            Input::EnvEntries(vec!["KERNEL_MODULES=dummy", "KERNEL_MODULES=dccp"]),
            Allowed,
        ),
        case(
            "`KERNEL_MODULES` (no `=`)",
            S::Env,
            Input::EnvEntries(vec!["KERNEL_MODULES"]),
            NoRequest,
        ),
        case(
            "`kernel_modules=dccp` (lower-case variable)",
            S::Env,
            Input::EnvEntries(vec!["kernel_modules=dccp"]),
            NoRequest,
        ),
        refused(
            "`-r`",
            S::Annotation,
            Input::Annotation {
                value: "-r".into(),
                env: "",
            },
            "is not a module name",
        ),
        refused(
            "`dccp`, with `KERNEL_MODULES=dummy`",
            S::Annotation,
            Input::Annotation {
                value: "dccp".into(),
                env: "dummy",
            },
            "denied by policy",
        ),
        refused(
            "a 1 MB value",
            S::Annotation,
            Input::Annotation {
                value: "x".repeat(1 << 20),
                env: "",
            },
            "is not a module name",
        ),
        refused(
            "`ip_vs` OSC `0;title` BEL",
            S::Annotation,
            Input::Annotation {
                value: "ip_vs\u{1b}]0;title\u{7}".into(),
                env: "",
            },
            "is not a module name",
        ),
        case(
            "`ip_vs`",
            S::Annotation,
            Input::Annotation {
                value: "ip_vs".into(),
                env: "",
            },
            Allowed,
        ),
        case(
            "`evil` newline `FORGED decision=allowed`",
            S::Id,
            Input::Id { id: "evil\nFORGED decision=allowed".into(), request: "dummy" },
            Allowed,
        ),
        case(
            "`evil` ESC `[2J`",
            S::Id,
            Input::Id { id: "evil\u{1b}[2J".into(), request: "dummy" },
            Allowed,
        ),
        case(
            "`../../../../etc/passwd`",
            S::Id,
            Input::Id { id: "../../../../etc/passwd".into(), request: "dummy" },
            Allowed,
        ),
        refused(
            "`evil` ESC `[2J` newline, asking for `dccp`",
            S::Id,
            Input::Id {
                id: "evil\u{1b}[2J\nFORGED".into(),
                request: "dccp",
            },
            "denied by policy",
        ),
        refused(
            "right-to-left override + `evil`, asking for `dccp`",
            S::Id,
            Input::Id {
                id: "\u{202e}evil".into(),
                request: "dccp",
            },
            "denied by policy",
        ),
        case(
            "right-to-left override + `evil`",
            S::Id,
            Input::Id {
                id: "\u{202e}evil".into(),
                request: "dummy",
            },
            Allowed,
        ),
        refused(
            "100,000 characters",
            S::Id,
            Input::Id { id: "i".repeat(100_000), request: "dummy" },
            "more than 1024",
        ),
        refused(
            "empty",
            S::Id,
            Input::Id { id: String::new(), request: "dummy" },
            "empty container id",
        ),
        refused(
            "the id of a running container, from another bundle",
            S::Id,
            Input::IdReused,
            "is already recorded for bundle",
        ),
        refused(
            "not JSON",
            S::State,
            state("not json"),
            "invalid OCI state on stdin",
        ),
        refused("empty", S::State, state(""), "invalid OCI state on stdin"),
        refused(
            "truncated",
            S::State,
            state(r#"{"ociVersion":"1.0.2","id":"h1","bund"#),
            "invalid OCI state on stdin",
        ),
        refused(
            "2 MB",
            S::State,
            Input::Stdin(format!(
                r#"{{"id":"h1","bundle":"BUNDLE","pad":"{}"}}"#,
                "x".repeat(2 << 20)
            )),
            "larger than",
        ),
        case(
            "100,000 nested arrays in a field modgate does not read",
            S::State,
            Input::Stdin(format!(
                r#"{{"id":"h1","bundle":"BUNDLE","x":{}{}}}"#,
                "[".repeat(100_000),
                "]".repeat(100_000)
            )),
            Allowed,
        ),
        refused(
            "1,000 nested arrays as the annotations",
            S::State,
            Input::Stdin(format!(
                r#"{{"id":"h1","annotations":{}{},"bundle":"BUNDLE"}}"#,
                "[".repeat(1000),
                "]".repeat(1000)
            )),
            "invalid OCI state on stdin",
        ),
        refused(
            "`\"id\": 5`",
            S::State,
            state(r#"{"id":5,"bundle":"BUNDLE"}"#),
            "invalid OCI state on stdin",
        ),
        refused(
            "a 500 kB string where `annotations` should be a map",
            S::State,
            Input::Stdin(format!(
                r#"{{"id":"h1","annotations":"{}","bundle":"BUNDLE"}}"#,
                "x".repeat(500 << 10)
            )),
            "invalid OCI state on stdin",
        ),
        refused(
            "`\"bundle\": [\"x\"]`",
            S::State,
            state(r#"{"id":"h1","bundle":["x"]}"#),
            "invalid OCI state on stdin",
        ),
        refused(
            "no bundle",
            S::State,
            state(r#"{"id":"h1"}"#),
            "no bundle",
        ),
        refused(
            "`id` twice",
            S::State,
            state(r#"{"id":"h1","id":"h2","bundle":"BUNDLE"}"#),
            "invalid OCI state on stdin",
        ),
        refused(
            "`bundle` twice",
            S::State,
            state(r#"{"id":"h1","bundle":"/nonexistent","bundle":"BUNDLE"}"#),
            "invalid OCI state on stdin",
        ),
        refused(
            "a lone UTF-16 surrogate `\\ud800` in the id",
            S::State,
            state(r#"{"id":"h\ud800","bundle":"BUNDLE"}"#),
            "invalid OCI state on stdin",
        ),
        refused(
            "relative (`bundles/h1`)",
            S::Bundle,
            Input::Bundle(BundleKind::Relative),
            "bundle",
        ),
        case(
            "a symbolic link to the bundle",
            S::Bundle,
            Input::Bundle(BundleKind::Symlink),
            Allowed,
        ),
        refused(
            "does not exist",
            S::Bundle,
            Input::Bundle(BundleKind::Missing),
            "cannot read",
        ),
        refused(
            "`/tmp/` + 500,000 characters",
            S::Bundle,
            Input::Bundle(BundleKind::Path(format!("/tmp/{}", "b".repeat(500_000)))),
            "cannot read",
        ),
        refused(
            "`/tmp/x` ESC `[2J` newline `y`",
            S::Bundle,
            Input::Bundle(BundleKind::Path("/tmp/x\u{1b}[2J\ny".into())),
            "cannot read",
        ),
        refused(
            "a regular file",
            S::Bundle,
            Input::Bundle(BundleKind::RegularFile),
            "cannot read",
        ),
        refused(
            "a symbolic link",
            S::Config,
            Input::Config(ConfigKind::Symlink),
            "symbolic link",
        ),
        refused(
            "a FIFO",
            S::Config,
            Input::Config(ConfigKind::Fifo),
            "not a regular file",
        ),
        refused(
            "a directory",
            S::Config,
            Input::Config(ConfigKind::Directory),
            "not a regular file",
        ),
        refused(
            "17 MB",
            S::Config,
            Input::Config(ConfigKind::Huge),
            "larger than",
        ),
        refused(
            "missing",
            S::Config,
            Input::Config(ConfigKind::Missing),
            "cannot read",
        ),
        refused(
            "not JSON",
            S::Config,
            Input::Config(ConfigKind::Text("not json".into())),
            "invalid config.json",
        ),
        refused(
            "`KERNEL_MODULES=dummy` then bytes that are not UTF-8",
            S::Config,
            Input::Config(ConfigKind::Bytes(
                b"{\"process\":{\"env\":[\"KERNEL_MODULES=dummy\xff\xfe\"]}}",
            )),
            "invalid config.json",
        ),
        refused(
            "`\"env\": \"KERNEL_MODULES=dccp\"` (a string, not a list)",
            S::Config,
            Input::Config(ConfigKind::Text(
                r#"{"process":{"env":"KERNEL_MODULES=dccp"}}"#.into(),
            )),
            "invalid config.json",
        ),
        refused(
            "a 1 MB string where `env` should be a list",
            S::Config,
            Input::Config(ConfigKind::Text(format!(
                r#"{{"process":{{"env":"KERNEL_MODULES={}"}}}}"#,
                "x".repeat(1 << 20)
            ))),
            "invalid config.json",
        ),
        refused(
            "`\"annotations\": [\"dccp\"]`",
            S::Config,
            Input::Config(ConfigKind::Text(
                r#"{"process":{"env":["KERNEL_MODULES=dummy"]},"annotations":["dccp"]}"#.into(),
            )),
            "invalid config.json",
        ),
        refused(
            "`process` twice (`dccp`, then `dummy`)",
            S::Config,
            Input::Config(ConfigKind::Text(
                r#"{"process":{"env":["KERNEL_MODULES=dccp"]},"process":{"env":["KERNEL_MODULES=dummy"]}}"#.into(),
            )),
            "invalid config.json",
        ),
        refused(
            "a dangling symbolic link",
            S::Policy,
            Input::Policy(PolicyKind::DanglingSymlink),
            "cannot read policy",
        ),
        refused(
            "a directory",
            S::Policy,
            Input::Policy(PolicyKind::Directory),
            "cannot read policy",
        ),
        refused(
            "not UTF-8",
            S::Policy,
            Input::Policy(PolicyKind::Bytes(b"mode = \"permissive\" # \xff\xfe\n")),
            "policy",
        ),
        refused(
            "not TOML",
            S::Policy,
            Input::Policy(PolicyKind::Text("mode = \n".into())),
            "invalid policy",
        ),
        refused(
            "an unknown key (`alow = [\"*\"]`)",
            S::Policy,
            Input::Policy(PolicyKind::Text("alow = [\"*\"]\n".into())),
            "invalid policy",
        ),
        refused(
            "a wrong type (`max_modules = \"many\"`)",
            S::Policy,
            Input::Policy(PolicyKind::Text("max_modules = \"many\"\n".into())),
            "invalid policy",
        ),
        refused(
            "an unknown mode (`mode = \"open\"`)",
            S::Policy,
            Input::Policy(PolicyKind::Text("mode = \"open\"\n".into())),
            "invalid policy",
        ),
        refused(
            "`mode = \"permissive\"`, container asks for `dccp`",
            S::Policy,
            Input::PolicyAnd {
                policy: "mode = \"permissive\"\n",
                request: "dccp",
            },
            "denied by policy",
        ),
        refused(
            "`deny = [\"nf_tables\"]`, container asks for `nf_tables`",
            S::Policy,
            Input::PolicyAnd {
                policy: "deny = [\"nf_tables\"]\n",
                request: "nf_tables",
            },
            "denied by policy",
        ),
        refused(
            "`install dummy /bin/sh -c reboot`",
            S::ModprobeD,
            Input::ModprobeD {
                conf: "install dummy /bin/sh -c reboot\n".into(),
                request: "dummy",
            },
            "denied by policy",
        ),
        refused(
            "`blacklist dummy`",
            S::ModprobeD,
            Input::ModprobeD {
                conf: "blacklist dummy\n".into(),
                request: "dummy",
            },
            "blacklisted",
        ),
        refused(
            "`alias dummy dccp` (an allowed name made an alias of a denied module)",
            S::ModprobeD,
            Input::ModprobeD {
                conf: "alias dummy dccp\n".into(),
                request: "dummy",
            },
            "dccp",
        ),
        refused(
            "`softdep dummy pre: dccp`",
            S::ModprobeD,
            Input::ModprobeD {
                conf: "softdep dummy pre: dccp\n".into(),
                request: "dummy",
            },
            "dccp",
        ),
        case(
            "a 1 MB `options` line",
            S::ModprobeD,
            Input::ModprobeD {
                conf: format!("options dummy numdummies={}\n", "1".repeat(1 << 20)),
                request: "dummy",
            },
            Allowed,
        ),
        case(
            "an `options` line with ESC in a value",
            S::ModprobeD,
            Input::ModprobeD {
                conf: "options dummy x=\u{1b}[2J\n".into(),
                request: "dummy",
            },
            Allowed,
        ),
        refused(
            "`modules.dep.bin` of random bytes",
            S::Index,
            Input::Index {
                file: "modules.dep.bin",
                policy: "",
                bytes: Some(b"\x13\x37garbage that is no index at all".to_vec()),
                request: "dummy",
            },
            "modules.dep.bin",
        ),
        refused(
            "`modules.dep.bin` truncated after its header",
            S::Index,
            Input::Index {
                file: "modules.dep.bin",
                policy: "",
                bytes: Some(vec![0xb0, 0x07, 0xf4, 0x57, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00]),
                request: "dummy",
            },
            "modules.dep.bin",
        ),
        refused(
            "no `modules.dep` at all",
            S::Index,
            Input::Index {
                file: "modules.dep",
                policy: "",
                bytes: None,
                request: "dummy",
            },
            "depmod",
        ),
        refused(
            "`modules.dep` naming `kernel/../../../../../../../../../../tmp/evil.ko`, policy `mode = \"permissive\"`",
            S::Index,
            Input::Index {
                file: "modules.dep",
                policy: "mode = \"permissive\"\n",
                bytes: Some(b"kernel/../../../../../../../../../../tmp/evil.ko:\n".to_vec()),
                request: "evil",
            },
            "is not inside the module directory",
        ),
        case(
            "the container's record is not JSON",
            S::Store,
            Input::Record(b"{not a record"),
            Allowed,
        ),
        refused(
            "`create --bund B ID` (an abbreviation runc does not take)",
            S::Wrapper,
            Input::Wrapper(vec!["create", "--bund", "B", "w1"]),
            "cannot tell its bundle",
        ),
        refused(
            "`create -bB ID` (an attached value runc does not take)",
            S::Wrapper,
            Input::Wrapper(vec!["create", "-bB", "w1"]),
            "cannot tell its bundle",
        ),
        refused(
            "`restore --bundle` (no value)",
            S::Wrapper,
            Input::Wrapper(vec!["restore", "--bundle"]),
            "cannot tell its bundle",
        ),
        refused(
            "`create --bundle --detach ID`",
            S::Wrapper,
            Input::Wrapper(vec!["create", "--bundle", "--detach", "w1"]),
            "cannot tell its bundle",
        ),
        refused(
            "`run --bundle B ID`, `B/config.json` a FIFO",
            S::Wrapper,
            Input::Wrapper(vec!["run", "--bundle", "BFIFO", "w1"]),
            "not a regular file",
        ),
        refused(
            "`create --bundle B ID`, `B/config.json` a symbolic link",
            S::Wrapper,
            Input::Wrapper(vec!["create", "--bundle", "BLINK", "w1"]),
            "symbolic link",
        ),
        refused(
            "`run --bundle MISSING ID` (no such bundle)",
            S::Wrapper,
            Input::Wrapper(vec!["run", "--bundle", "MISSING", "w1"]),
            "cannot read",
        ),
    ];
    for name in FAMILIES {
        if *name != "nf_tables" {
            c.push(family(name));
        }
    }
    c
}
