//! The command line as the user types it. `settings.rs` turns it into resolved values.

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

#[derive(Debug, Args, Clone)]
pub struct Global {
    /// Root directory under which every host file is read and written
    #[arg(long, global = true, value_name = "DIR", default_value = "/")]
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
    /// Load modules into the running kernel, all or nothing, behind the policy
    Load(LoadArgs),
    /// Run as an OCI hook: read the state on stdin, load what the container requests
    Hook(HookArgs),
    /// Inspect the policy
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Debug, Args)]
pub struct LoadArgs {
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

#[derive(Debug, Args)]
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
    /// Fail after this many seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 20)]
    pub timeout: u64,
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
    Check(PolicyCheckArgs),
    /// Print the built-in default policy
    Default,
}

#[derive(Debug, Args)]
pub struct PolicyCheckArgs {
    /// Module names as a container would request them
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
    /// Policy file [default: ROOT/etc/modgate/policy.toml, else the built-in default]
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// An annotation the container carries (repeatable)
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
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
