//! `modgate policy check NAME...`, `modgate policy show` and `modgate policy default`.

use std::process::ExitCode;

use modgate_core::policy::DEFAULT_POLICY;
use modgate_core::Request;
use modgate_host::kernel::Sysfs;
use modgate_host::policyfile;

use crate::cli::{Global, PolicyCommand, PolicyShowArgs, RequestArgs};
use crate::settings::{annotations, Settings};
use crate::Error;

pub fn run(g: &Global, cmd: &PolicyCommand) -> Result<ExitCode, Error> {
    match cmd {
        PolicyCommand::Default => {
            crate::render::emit(DEFAULT_POLICY)?;
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Check(a) => check(g, a),
        PolicyCommand::Show(a) => show(g, a),
    }
}

/// The effective policy as TOML, each key with the place its value came from, then the
/// keys that let more through than the built-in default.
fn show(g: &Global, args: &PolicyShowArgs) -> Result<ExitCode, Error> {
    let root = modgate_host::root::Root::new(&g.root);
    let policy = policyfile::load(&root, args.policy.as_deref())?;
    let table = toml::Table::try_from(&policy)?;
    let mut out = format!("# effective policy ({})\n", policy.source);
    for key in modgate_core::policy::KEYS {
        let Some(value) = table.get(*key) else {
            continue;
        };
        let origin = policy
            .origins
            .get(key)
            .map(ToString::to_string)
            .unwrap_or_default();
        out.push_str(&format!("{key} = {value}  # {origin}\n"));
    }
    for w in policy.widening() {
        out.push_str(&format!("# widens the default: {}: {}\n", w.key, w.why));
    }
    crate::render::emit(&out)?;
    Ok(ExitCode::SUCCESS)
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
