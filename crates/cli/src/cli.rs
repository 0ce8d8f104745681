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
