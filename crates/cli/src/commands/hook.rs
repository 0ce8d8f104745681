//! `modgate hook STAGE`: the OCI hook. Exits 0 only when the container may start.

use std::process::ExitCode;
use std::time::Duration;

use modgate_host::hook::{self, HookError, HookSettings, Outcome, Stage};
use modgate_host::root::Root;
use modgate_host::state::has_record;
use modgate_host::syscall::Syscalls;

use crate::cli::{Global, HookArgs};
use crate::Error;

pub fn run(g: &Global, args: &HookArgs) -> Result<ExitCode, Error> {
    let raw = args
        .state
        .as_deref()
        .or(args.stage.as_deref())
        .unwrap_or("");
    let stage = Stage::parse(raw).ok_or_else(|| HookError::UnknownStage(raw.to_string()))?;
    match stage {
        Stage::CreateContainer => return Err(HookError::WrongStage("createContainer").into()),
        Stage::StartContainer => return Err(HookError::WrongStage("startContainer").into()),
        Stage::Poststart => return Ok(ExitCode::SUCCESS),
        Stage::Prestart | Stage::CreateRuntime | Stage::Poststop => {}
    }
    // The fast path: this runs on every container start, so nothing is read or set up
    // before we know the container asks for something. Until then the kernel's alarm is
    // the deadline (it kills the hook, which fails closed); a thread costs too much here.
    modgate_host::syscall::alarm(args.timeout);
    let state = hook::read_state(std::io::stdin().lock())?;
    // Poststop needs only the id, and nearly every container has no record to release:
    // return before reading the bundle, which may be half gone by now.
    if stage == Stage::Poststop && !has_record(&Root::new(&g.root), &state.id) {
        return Ok(ExitCode::SUCCESS);
    }
    let (config, request) = if stage == Stage::Poststop {
        Default::default()
    } else {
        let config = hook::read_config(&state)?;
        let request = hook::request_of(&state, &config)?;
        (config, request)
    };
    if request.is_empty() && stage != Stage::Poststop {
        return Ok(ExitCode::SUCCESS);
    }
    modgate_host::syscall::alarm(0);
    watchdog(args.timeout);
    if let Some(w) = crate::logging::init(args.log.as_ref()) {
        eprintln!("modgate: warning: {w}");
    }
    if args.with_relabel {
        tracing::warn!(
            "--with-relabel is accepted for syscontainer-hooks compatibility and ignored"
        );
    }
    let settings = HookSettings {
        root: Root::new(&g.root),
        release: g.kernel_release.clone(),
        config_dirs: g.config_dirs.clone(),
        policy: args.policy.clone(),
        coming_wait: Duration::from_secs(args.timeout.max(1)),
    };
    let mut outcome = Outcome {
        container: state.id.clone(),
        stage: raw.to_string(),
        ..Default::default()
    };
    let result = match stage {
        Stage::Poststop => hook::release(&settings, &Syscalls, &state, &mut outcome),
        _ => hook::load_request(
            &settings,
            &Syscalls,
            &state,
            &config,
            &request,
            &mut outcome,
        ),
    };
    let loaded = outcome
        .report
        .as_ref()
        .map(|r| r.inserted.join(","))
        .unwrap_or_default();
    let unloaded = outcome
        .released
        .as_ref()
        .map(|r| r.unloaded.join(","))
        .unwrap_or_default();
    tracing::info!(
        container = %outcome.container,
        stage = %outcome.stage,
        requested = %outcome.requested.join(","),
        plan = %outcome.plan.join(","),
        decision = %outcome.decision,
        loaded = %loaded,
        unloaded = %unloaded,
        micros = outcome.micros,
        "hook"
    );
    result?;
    Ok(ExitCode::SUCCESS)
}

/// A failed hook's line goes to the log too: crun drops a hook's stderr, so the log
/// (`--log FILE`, syslog) is where an operator finds why a container did not start.
pub fn log_failure(args: &HookArgs, line: &str) {
    if let Some(w) = crate::logging::init(args.log.as_ref()) {
        eprintln!("modgate: warning: {w}");
    }
    tracing::error!("{line}");
}

/// Fails the hook cleanly when it overruns its deadline, so a stuck load cannot hang
/// the container's start forever.
fn watchdog(secs: u64) {
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(secs));
        eprintln!("modgate: hook timed out after {secs}s");
        std::process::exit(1);
    });
}
