//! The command line as the user types it. `settings.rs` turns it into resolved values.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "modgate",
    version,
    about = "Give containers the host kernel modules they need, behind a policy"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// The hook's command line alone: the same [`Global`] and [`HookArgs`], without the other
/// subcommands, so that what runs on every container start builds and matches only its
/// own arguments. Anything it does not accept goes to [`Cli`].
#[derive(Debug, Parser)]
#[command(name = "modgate")]
pub struct HookCli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: HookOnly,
}

#[derive(Debug, Subcommand)]
pub enum HookOnly {
    Hook(HookArgs),
}

impl HookCli {
    /// `modgate hook STAGE`, the whole command line of every hook entry modgate
    /// installs, read without building a parser: the same values [`HookCli`] would give
    /// (a test holds them equal). Any other command line is left to the parsers.
    pub fn plain(argv: &[OsString]) -> Option<Cli> {
        let [_, hook, stage] = argv else {
            return None;
        };
        let stage = stage.to_str()?;
        if hook != "hook" || stage.is_empty() || stage.starts_with('-') {
            return None;
        }
        Some(Cli {
            global: Global {
                root: PathBuf::from(DEFAULT_ROOT),
                kernel_release: None,
                config_dirs: Vec::new(),
            },
            command: Command::Hook(HookArgs {
                stage: Some(stage.to_string()),
                state: None,
                policy: None,
                timeout: DEFAULT_HOOK_TIMEOUT,
                load_budget_ms: None,
                log: None,
                with_relabel: false,
            }),
        })
    }
}

impl From<HookCli> for Cli {
    fn from(h: HookCli) -> Self {
        let HookOnly::Hook(args) = h.command;
        Cli {
            global: h.global,
            command: Command::Hook(args),
        }
    }
}

const DEFAULT_ROOT: &str = "/";
const DEFAULT_HOOK_TIMEOUT: u64 = 20;

#[derive(Debug, Args, Clone, PartialEq)]
pub struct Global {
    /// Root directory under which every host file is read and written
    #[arg(long, global = true, value_name = "DIR", default_value = DEFAULT_ROOT)]
    pub root: PathBuf,
    /// Kernel release whose modules to use [default: the running kernel's]
    #[arg(long, global = true, value_name = "KV")]
    pub kernel_release: Option<String>,
    /// modprobe configuration directory or file, replacing the default search path (repeatable)
    #[arg(long = "config-dir", global = true, value_name = "DIR")]
    pub config_dirs: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what loading modules would do, without loading anything
    Plan(PlanArgs),
    /// Print the modprobe configuration modgate reads, as `modprobe -c` prints it
    Config,
    /// Load modules into the running kernel, all or nothing, behind the policy
    Load(RequestArgs),
    /// Run as an OCI hook: read the state on stdin, load what the container requests
    Hook(HookArgs),
    /// Inspect the policy
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Wire modgate into a container engine (iSulad, podman, CRI-O, Docker, containerd)
    #[command(subcommand)]
    Install(InstallCommand),
    /// Check that this host can run modgate, and how each container engine is wired
    Doctor(DoctorArgs),
    /// Write the man pages or shell completions (for packaging)
    #[command(subcommand, hide = true)]
    Generate(GenerateCommand),
    /// Show the modules modgate knows of: owner, live or not, which containers hold them
    Status(StatusArgs),
    /// Drop the records of containers that are gone, then unload what nobody holds
    Gc(GcArgs),
    /// Remove modules modgate loaded and no container holds
    Unload(UnloadArgs),
    /// Check module files: signature, signer, vermagic, taint, sha256, and the policy's verdict
    Verify(VerifyArgs),
    /// Kernel certificates
    #[command(subcommand)]
    Certs(CertsCommand),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Module names or aliases (each with the modules it depends on), or module files
    #[arg(required = true, value_name = "NAME|PATH")]
    pub modules: Vec<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    /// Trusted certificates, PEM or DER files or directories of them (repeatable)
    /// [default: the policy's trusted_certs]
    #[arg(long = "certs", value_name = "FILE|DIR")]
    pub certs: Vec<PathBuf>,
    /// Also trust the certificates built into this kernel image (repeatable)
    #[arg(long = "kernel-image", value_name = "VMLINUZ")]
    pub kernel_images: Vec<PathBuf>,
    /// Policy file [default: ROOT/etc/modgate/policy.toml, else the built-in default]
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Also time each module's read, sha256 and signature check (microseconds)
    #[arg(long)]
    pub timings: bool,
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Write the X.509 certificates built into a kernel image as PEM
    Extract(CertsExtractArgs),
}

#[derive(Debug, Args)]
pub struct CertsExtractArgs {
    /// The kernel image (bzImage such as /boot/vmlinuz-KV, or an ELF vmlinux)
    #[arg(long, value_name = "VMLINUZ")]
    pub from: PathBuf,
    /// Write one PEM file per certificate into this directory [default: print to stdout]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// A request as a container would make it, for `load` and `policy check`.
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// Module names
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
    /// Policy file [default: ROOT/etc/modgate/policy.toml, else the built-in default]
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// An annotation the request carries, for require_annotations (repeatable)
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
}

#[derive(Debug, Args, PartialEq)]
pub struct HookArgs {
    /// prestart, createRuntime, poststart or poststop
    #[arg(value_name = "STAGE", required_unless_present = "state")]
    pub stage: Option<String>,
    /// The stage, as syscontainer-hooks takes it
    #[arg(long, value_name = "STAGE", conflicts_with = "stage")]
    pub state: Option<String>,
    /// Policy file [default: ROOT/etc/modgate/policy.toml, else the built-in default]
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Fail after this many seconds; loads stop a tenth of it earlier (at least 1 s)
    /// and are rolled back
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_HOOK_TIMEOUT)]
    pub timeout: u64,
    /// Stop loading and roll back after this many milliseconds, if sooner than the
    /// timeout's budget (for tests)
    #[arg(long, value_name = "MS")]
    pub load_budget_ms: Option<u64>,
    /// Also write the log to this file
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Accepted for syscontainer-hooks compatibility; ignored
    #[arg(long)]
    pub with_relabel: bool,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Say whether a container may load these modules, and which rule decided
    Check(RequestArgs),
    /// Print the built-in default policy
    Default,
    /// Print the effective policy, where each key came from, and what widens the default
    Show(PolicyShowArgs),
}

#[derive(Debug, Args)]
pub struct PolicyShowArgs {
    /// Policy file [default: ROOT/etc/modgate/policy.toml, else the built-in default]
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum PlanFormat {
    /// A table for a person
    Table,
    /// Exactly what `modprobe --show-depends` prints
    Modprobe,
    /// The plan as JSON
    Json,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Module names or aliases
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: PlanFormat,
    /// Same as --format json
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON (the same as --format json)
    #[arg(long)]
    pub json: bool,
    /// How to print: tables, JSON, or the Prometheus text format (for a node
    /// exporter's textfile collector)
    #[arg(long, value_enum, default_value_t = StatusFormat::Table)]
    pub format: StatusFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFormat {
    Table,
    Json,
    Prometheus,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Say what would be dropped and unloaded; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// The ids of the live containers, one a line ("-": stdin) [default: judge by the
    /// runc and crun state directories under ROOT/run]
    #[arg(long, value_name = "FILE")]
    pub alive_ids: Option<PathBuf>,
    /// Keep records written in the last SECONDS: the list of live ids may predate them
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub grace: u64,
    /// Policy file, for its `unload` setting [default: ROOT/etc/modgate/policy.toml, else
    /// the built-in default]
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct UnloadArgs {
    /// Module names
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
    /// Remove a module even though containers hold it (they are named in a warning)
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum InstallCommand {
    /// iSulad: a hook spec for `isula run --hook-spec`, or entries in the daemon-wide spec
    Isulad(IsuladArgs),
    /// Hosts leaving syscontainer-tools: modgate takes its hook's place and runs it after itself
    SyscontainerTools(SyscontainerArgs),
    /// podman and CRI-O: OCI hooks.d files for prestart and poststop
    HooksD(HooksdArgs),
    /// Docker: register modgate-runtime under runtimes in /etc/docker/daemon.json
    Docker(DockerArgs),
    /// containerd: a runtime entry whose BinaryName is modgate-runtime, and its RuntimeClass
    Containerd(ContainerdArgs),
}

#[derive(Debug, Args)]
pub struct DryRun {
    /// Print what would be written; change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct HookBinary {
    /// The modgate binary the engine runs, an absolute path on the host [default: this executable]
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
    /// An argument added after `modgate hook STAGE` (repeatable: --hook-arg=--policy --hook-arg=FILE)
    #[arg(long = "hook-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub hook_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct IsuladArgs {
    #[command(flatten)]
    pub dry: DryRun,
    #[command(flatten)]
    pub hook: HookBinary,
    /// Where to write the hook spec
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/etc/modgate/isulad-hookspec.json"
    )]
    pub output: PathBuf,
    /// Merge into iSulad's daemon-wide hook spec (hook-spec in /etc/isulad/daemon.json,
    /// else /etc/default/isulad/hooks/default.json) so every container gets the hooks
    #[arg(long, conflicts_with = "output")]
    pub daemon_default: bool,
}

#[derive(Debug, Args)]
pub struct SyscontainerArgs {
    #[command(flatten)]
    pub dry: DryRun,
    /// The modgate binary to link to [default: this executable]
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
    /// Put the old syscontainer-hooks back from its .bak
    #[arg(long)]
    pub revert: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum HooksdWhen {
    /// Every container (the hook returns at once when nothing is requested)
    Always,
    /// Only containers with the annotation modgate.io/kernel-modules
    Annotation,
}

#[derive(Debug, Args)]
pub struct HooksdArgs {
    #[command(flatten)]
    pub dry: DryRun,
    #[command(flatten)]
    pub hook: HookBinary,
    /// The hooks.d directory
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/usr/share/containers/oci/hooks.d"
    )]
    pub dir: PathBuf,
    /// Which containers the hook runs for
    #[arg(long, value_enum, default_value = "always")]
    pub when: HooksdWhen,
}

#[derive(Debug, Args)]
pub struct WrapperArgs {
    #[command(flatten)]
    pub dry: DryRun,
    /// The modgate binary [default: this executable]
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
    /// The runtime wrapper [default: modgate-runtime next to the binary]
    #[arg(long, value_name = "PATH")]
    pub wrapper: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DockerArgs {
    #[command(flatten)]
    pub common: WrapperArgs,
    /// Also make modgate Docker's default-runtime
    #[arg(long)]
    pub default: bool,
}

#[derive(Debug, Args)]
pub struct ContainerdArgs {
    #[command(flatten)]
    pub common: WrapperArgs,
    /// Merge the entry into /etc/containerd/config.toml instead of printing it
    #[arg(long)]
    pub write: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// Man pages: modgate.1 and one per subcommand
    Man {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Completions for bash, zsh and fish
    Completions {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn hook_parts(cli: Cli) -> (Global, HookArgs) {
        match cli.command {
            Command::Hook(h) => (cli.global, h),
            other => panic!("not the hook: {other:?}"),
        }
    }

    #[test]
    fn the_plain_hook_line_reads_as_the_parser_reads_it() {
        for stage in [
            "prestart",
            "createRuntime",
            "poststart",
            "poststop",
            "bogus",
        ] {
            let line = argv(&["modgate", "hook", stage]);
            let plain = hook_parts(HookCli::plain(&line).expect("plain"));
            let parsed = hook_parts(Cli::from(HookCli::try_parse_from(&line).expect("parsed")));
            assert_eq!(plain, parsed, "{stage}");
        }
    }

    #[test]
    fn other_lines_are_left_to_the_parser() {
        for line in [
            &["modgate", "hook"][..],
            &["modgate", "hook", "--help"],
            &["modgate", "hook", "-h"],
            &["modgate", "hook", ""],
            &["modgate", "hook", "--state", "prestart"],
            &["modgate", "hook", "prestart", "--log", "/tmp/x"],
            &["modgate", "--root", "/r", "hook", "prestart"],
            &["modgate", "plan", "prestart"],
        ] {
            assert!(HookCli::plain(&argv(line)).is_none(), "{line:?}");
        }
    }
}
