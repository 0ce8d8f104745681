//! modgate started as `syscontainer-hooks` (the link `modgate install syscontainer-tools`
//! leaves in that hook's place) when the original hook was kept: modgate serves the
//! container's modules first, then the original runs with the same arguments and state
//! for everything else it does. At prestart a refused request stops there: the original
//! would otherwise load the refused modules itself.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus, Stdio};

use modgate_host::engines::syscontainer;
use modgate_host::hook;

use crate::Error;

pub const NAME: &str = "syscontainer-hooks";

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The state on stdin, read as the hook reads it.
    #[error(transparent)]
    State(#[from] hook::HookError),
    #[error("cannot run {}", path.display())]
    Run {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The whole `argv` and the original hook, when started as `syscontainer-hooks` and the
/// original is there to run after modgate.
pub fn chained() -> Option<(Vec<OsString>, PathBuf)> {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let argv0 = Path::new(argv.first()?);
    if argv0.file_name()? != NAME {
        return None;
    }
    let original = syscontainer::original(argv0)?;
    Some((argv, original))
}

pub fn main(argv: Vec<OsString>, original: PathBuf) -> ExitCode {
    match run(&argv, &original) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("modgate: {}", modgate_core::error_line(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn code(s: ExitStatus) -> ExitCode {
    match s.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        None => ExitCode::FAILURE,
    }
}

/// Runs `cmd` with `state` on its stdin; its stdout and stderr are ours.
fn feed(mut cmd: Command, path: &Path, state: &[u8]) -> Result<ExitStatus, ChainError> {
    let err = |source| ChainError::Run {
        path: path.to_path_buf(),
        source,
    };
    let mut child = cmd.stdin(Stdio::piped()).spawn().map_err(err)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that exits without reading its stdin closes the pipe: not an error.
        let _ = stdin.write_all(state);
    }
    child.wait().map_err(err)
}

fn run(argv: &[OsString], original: &Path) -> Result<ExitCode, Error> {
    let state =
        hook::state_bytes(hook::Stdin(std::io::stdin().lock())).map_err(ChainError::from)?;
    let args = argv.get(1..).unwrap_or_default();
    let this = std::env::current_exe()?;
    // Named `modgate`, the child is the hook itself, not this chain again.
    let mut hook = Command::new(&this);
    hook.arg0("modgate").arg("hook").args(args);
    let ours = feed(hook, &this, &state)?;
    let prestart = !matches!(
        syscontainer::stage(args).as_deref(),
        Some("poststart" | "poststop")
    );
    if !ours.success() && prestart {
        return Ok(code(ours));
    }
    let mut theirs = Command::new(original);
    theirs.arg0(&argv[0]).args(args);
    let theirs = feed(theirs, original, &state)?;
    Ok(if ours.success() {
        code(theirs)
    } else {
        code(ours)
    })
}
