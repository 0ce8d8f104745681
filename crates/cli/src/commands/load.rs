//! `modgate load NAME...`: the hook's pipeline without a container: policy, then load.

use std::process::ExitCode;
use std::time::Duration;

use modgate_host::kernel::Syscalls;
use modgate_host::pipeline::{self, Host, Outcome};
use modgate_host::root::Root;

use crate::cli::{Global, RequestArgs};
use crate::settings::annotations;
use crate::Error;

pub fn run(g: &Global, args: &RequestArgs) -> Result<ExitCode, Error> {
    let annotations = annotations(&args.annotations)?;
    let host = Host {
        root: Root::new(&g.root),
        release: g.kernel_release.clone(),
        config_dirs: g.config_dirs.clone(),
        policy: args.policy.clone(),
        coming_wait: Duration::from_secs(5),
        deadline: None,
    };
    let names: Vec<&str> = args.names.iter().map(String::as_str).collect();
    let mut outcome = Outcome::default();
    let result =
        pipeline::admit_and_load(&host, &Syscalls, &names, &annotations, None, &mut outcome);
    for w in &outcome.config_warnings {
        eprintln!("modgate: warning: modprobe configuration: {w}");
    }
    result?;
    let report = outcome.report.unwrap_or_default();
    for m in &report.inserted {
        println!("loaded {m}");
    }
    for m in &report.present {
        println!("already loaded {m}");
    }
    for (m, why) in &report.skipped {
        println!("skipped optional {m}: {why}");
    }
    Ok(ExitCode::SUCCESS)
}
