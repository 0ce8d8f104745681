//! `modgate unload NAME...`: removes modules modgate inserted and no container holds
//! (`--force`: even held ones, naming the holders), with the dependencies modgate
//! inserted for them that nothing else needs.

use std::process::ExitCode;

use modgate_core::{ModuleName, NothingLoaded};
use modgate_host::kernel::{HostUses, Syscalls};
use modgate_host::lifecycle::{uncounted, Session, Uncounted};
use modgate_host::lock::HostLock;
use modgate_host::policyfile;
use modgate_host::root::Root;

use crate::cli::{Global, UnloadArgs};
use crate::settings::Settings;
use crate::Error;

#[derive(Debug, thiserror::Error)]
#[error("invalid module name {0:?}")]
pub struct BadName(String, #[source] modgate_core::name::NameError);

pub fn run(g: &Global, args: &UnloadArgs) -> Result<ExitCode, Error> {
    let names = args
        .names
        .iter()
        .map(|n| ModuleName::parse(n).map_err(|e| BadName(n.clone(), e)))
        .collect::<Result<Vec<_>, _>>()?;
    let names: Vec<&str> = names.iter().map(ModuleName::as_str).collect();
    let root = Root::new(&g.root);
    // What each name needs, from the module directory; without one (another kernel's
    // tree, no release), only the named modules go.
    let ctx = Settings::running_context(g);
    let closure_of = |name: &str| -> Vec<String> {
        ctx.as_ref()
            .and_then(|c| c.plan(&[name], &NothingLoaded).ok())
            .map(|p| p.closure().map(String::from).collect())
            .unwrap_or_default()
    };
    let aliases = uncounted::aliases_in(ctx.as_ref());
    let uses = HostUses { root: &root };
    let policy = policyfile::load(&root, None)?;
    let uncounted = Uncounted::new(&uses, &aliases).with_policy(&policy);
    let lock = HostLock::acquire(&root)?;
    let mut session = Session::open(&root, &lock)?;
    for w in &session.warnings {
        eprintln!("modgate: warning: {}", modgate_core::printable(w));
    }
    let (ask, done) =
        session.unload_named(&Syscalls, &uncounted, &names, args.force, &closure_of)?;
    for w in &ask.warnings {
        eprintln!("modgate: warning: {}", modgate_core::printable(w));
    }
    for m in &done.removed {
        println!("unloaded {m}");
    }
    for m in &done.gone {
        println!("{m} was no longer loaded");
    }
    let mut failed = false;
    for (m, why) in &done.left {
        if names.contains(&m.as_str()) {
            eprintln!("modgate: module {m:?} not unloaded: {why}");
            failed = true;
        } else {
            println!("left {m}: {why}");
        }
    }
    for (m, why) in &ask.refused {
        eprintln!("modgate: module {m:?} not unloaded: {why}");
        failed = true;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
