//! `modgate load NAME...`: the hook's path without a container: policy, then load.

use std::process::ExitCode;
use std::time::Duration;

use modgate_host::kernel::Sysfs;
use modgate_host::loader::Loader;
use modgate_host::lock::HostLock;
use modgate_host::policyfile;
use modgate_host::syscall::Syscalls;

use crate::cli::{Global, RequestArgs};
use crate::settings::{annotations, Settings};
use crate::Error;

pub fn run(g: &Global, args: &RequestArgs) -> Result<ExitCode, Error> {
    let s = Settings::resolve(g)?;
    let annotations = annotations(&args.annotations)?;
    let policy = policyfile::load(&s.root, args.policy.as_deref())?;
    let ctx = s.context()?;
    let names: Vec<&str> = args.names.iter().map(String::as_str).collect();
    let sysfs = Sysfs { root: &ctx.root };
    let plan = ctx.plan(&names, &sysfs)?;
    policy.check(&names, &plan, &annotations)?;
    let _lock = HostLock::acquire(&ctx.root)?;
    let plan = ctx.plan(&names, &sysfs)?;
    let loader = Loader {
        root: &ctx.root,
        syscalls: &Syscalls,
        moddir: &ctx.dir.dir,
        dirname: &ctx.dir.dirname,
        coming_wait: Duration::from_secs(5),
    };
    let report = loader.load(&plan)?;
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
