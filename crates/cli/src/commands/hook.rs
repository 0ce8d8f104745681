//! `modgate hook STAGE`: the OCI hook. Exits 0 only when the container may start.

use std::process::ExitCode;

use modgate_host::hook;
use modgate_host::kernel::{HostUses, Syscalls};
use modgate_host::pipeline::Host;
use modgate_host::root::Root;

use crate::cli::{Global, HookArgs};
use crate::Error;

pub fn run(g: &Global, args: &HookArgs) -> Result<ExitCode, Error> {
    let stage = args
        .state
        .as_deref()
        .or(args.stage.as_deref())
        .unwrap_or("");
    let root = Root::new(&g.root);
    let budget = args.load_budget_ms.map(std::time::Duration::from_millis);
    let stdin = hook::Stdin(std::io::stdin().lock());
    let job = match hook::prepare(stage, &root, args.timeout, budget, stdin) {
        Ok(Some(job)) => job,
        Ok(None) => return Ok(ExitCode::SUCCESS),
        Err(e) => {
            hook::count_refusal(&root, &e);
            return Err(e.into());
        }
    };
    if let Some(w) = crate::logging::init(args.log.as_ref()) {
        eprintln!("modgate: warning: {w}");
    }
    if args.with_relabel {
        tracing::warn!(
            "--with-relabel is accepted for syscontainer-hooks compatibility and ignored"
        );
    }
    let host = Host {
        root,
        release: g.kernel_release.clone(),
        config_dirs: g.config_dirs.clone(),
        policy: args.policy.clone(),
        coming_wait: job.coming_wait(),
        deadline: Some(job.deadline()),
    };
    let uses = HostUses { root: &host.root };
    job.run(&host, &Syscalls, &uses).map_err(Logged)?;
    Ok(ExitCode::SUCCESS)
}

/// A failure the hook's own log line already gave, with its reason: not logged again.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Logged(pub hook::HookError);

/// A failed hook's line goes to the log too: crun drops a hook's stderr, so the log
/// (`--log FILE`, journald or syslog) is where an operator finds why a container did
/// not start. (A failure after the request was read is in the hook's line already.)
pub fn log_failure(args: &HookArgs, line: &str) {
    if let Some(w) = crate::logging::init(args.log.as_ref()) {
        eprintln!("modgate: warning: {w}");
    }
    tracing::error!("{line}");
}
