//! `modgate-runtime`: a runc-compatible wrapper for engines without hooks.d (Docker,
//! containerd). For `create`, `run` and `restore` it adds modgate's hooks to the
//! bundle's `config.json` (and refuses when the arguments do not say for certain which
//! bundle that is); then, for every subcommand, it execs the real runtime with the
//! arguments unchanged.

use std::convert::Infallible;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use modgate_host::engines::HookCommand;
use modgate_host::root::Root;
use modgate_host::wrapper::{self, CONFIG_ENV, RUNTIME_ENV};

use crate::Error;
use modgate_host::wrapper::runc_args::{self, ArgsError, Dialect, RuncArgs};

pub const NAME: &str = "modgate-runtime";

/// The arguments after `argv[0]` when this program was started as `modgate-runtime`.
pub fn invoked_as_wrapper() -> Option<Vec<OsString>> {
    let mut args = std::env::args_os();
    let argv0 = args.next()?;
    (Path::new(&argv0).file_name()? == NAME).then(|| args.collect())
}

/// The bundle of a creating command could not be told from its arguments.
#[derive(Debug, thiserror::Error)]
#[error("refusing {command}: cannot tell its bundle from the arguments")]
pub struct UnclearBundle {
    command: String,
    #[source]
    source: ArgsError,
}

pub fn main(args: Vec<OsString>) -> ExitCode {
    let lossy: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // Read in runc's syntax until the runtime is known, for reporting an early error.
    let mut parsed = runc_args::parse(&lossy, Dialect::Runc).0;
    let Err(e) = run(&args, &lossy, &mut parsed);
    let msg = format!("{NAME}: {}", modgate_core::error_line(e.as_ref()));
    eprintln!("{msg}");
    log_error(&parsed, &msg);
    ExitCode::FAILURE
}

fn run(args: &[OsString], lossy: &[String], parsed: &mut RuncArgs) -> Result<Infallible, Error> {
    let root = Root::system();
    let explicit = std::env::var_os(CONFIG_ENV).map(PathBuf::from);
    let config = wrapper::load_config(&root, explicit.as_deref())?;
    let this = std::env::current_exe()?;
    let chosen = std::env::var(RUNTIME_ENV).ok();
    let runtime = wrapper::find_runtime(
        config.runtime(chosen.as_deref()),
        std::env::var_os("PATH").as_deref(),
        &this,
    )?;
    let (args_read, problem) = runc_args::parse(lossy, Dialect::of(&runtime.display().to_string()));
    *parsed = args_read;
    if let Some(source) = problem {
        let command = parsed
            .command
            .clone()
            .or_else(|| {
                lossy
                    .iter()
                    .find(|a| matches!(a.as_str(), "create" | "run" | "restore"))
                    .cloned()
            })
            .unwrap_or_default();
        return Err(UnclearBundle { command, source }.into());
    }
    if parsed.creates() {
        let bundle = match &parsed.bundle {
            Some(b) => PathBuf::from(b),
            None => std::env::current_dir()?,
        };
        let hook = HookCommand {
            path: config
                .hook_path
                .clone()
                .unwrap_or_else(|| this.display().to_string()),
            extra_args: config.hook_args.clone(),
        };
        let name = parsed.config.as_deref().unwrap_or("config.json");
        wrapper::prepare_bundle(&bundle, name, &hook)?;
    }
    Err(wrapper::exec(&runtime, args).into())
}

/// Engines show the runtime's `--log` file when it fails (containerd reads it as JSON
/// lines), so the error goes there too; a log that cannot be written is ignored.
fn log_error(parsed: &RuncArgs, msg: &str) {
    let Some(path) = &parsed.log else { return };
    let line = if parsed.log_format.as_deref() == Some("json") {
        serde_json::json!({ "level": "error", "msg": msg }).to_string()
    } else {
        format!("level=error msg={msg:?}")
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}
