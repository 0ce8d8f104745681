//! `modgate policy check NAME...` and `modgate policy default`.

use std::process::ExitCode;

use modgate_core::policy::DEFAULT_POLICY;
use modgate_core::Request;
use modgate_host::kernel::Sysfs;
use modgate_host::policyfile;

use crate::cli::{Global, PolicyCommand, RequestArgs};
use crate::settings::{annotations, Settings};
use crate::Error;

pub fn run(g: &Global, cmd: &PolicyCommand) -> Result<ExitCode, Error> {
    match cmd {
        PolicyCommand::Default => {
            print!("{DEFAULT_POLICY}");
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Check(a) => check(g, a),
    }
}

fn check(g: &Global, args: &RequestArgs) -> Result<ExitCode, Error> {
    let s = Settings::resolve(g)?;
    let annotations = annotations(&args.annotations)?;
    // The same grammar a container's request goes through.
    let request = Request::parse(&args.names.join(","), "the command line")?;
    let names: Vec<&str> = request.names().iter().map(|n| n.as_str()).collect();
    let policy = policyfile::load(&s.root, args.policy.as_deref())?;
    let ctx = s.context()?;
    let plan = ctx.plan(&names, &Sysfs { root: &ctx.root })?;
    match policy.check(&names, &plan, &annotations) {
        Ok(allowed) => {
            for a in allowed {
                println!(
                    "allowed: {} ({}, policy {})",
                    a.module, a.rule, policy.source
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(denial) => {
            println!("denied: {denial}");
            Ok(ExitCode::from(1))
        }
    }
}
