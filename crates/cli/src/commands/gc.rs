//! `modgate gc [--dry-run]`: drops the records of containers that are gone (their
//! poststop never ran), then, with `unload = "on-last-release"`, removes the modules
//! modgate inserted that nobody holds.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use modgate_host::kernel::{HostUses, Syscalls};
use modgate_host::lifecycle::{uncounted, Alive, Session, Uncounted};
use modgate_host::lock::HostLock;
use modgate_host::policyfile;
use modgate_host::root::Root;

use crate::cli::{GcArgs, Global};
use crate::settings::Settings;
use crate::Error;

#[derive(Debug, thiserror::Error)]
#[error("cannot read the live container ids from {0}")]
pub struct AliveIdsError(String, #[source] std::io::Error);

pub fn run(g: &Global, args: &GcArgs) -> Result<ExitCode, Error> {
    let root = Root::new(&g.root);
    let policy = policyfile::load(&root, args.policy.as_deref())?;
    let alive = match &args.alive_ids {
        Some(p) => Alive::Listed(read_ids(p)?),
        None => Alive::RuntimeDirs,
    };
    // Which modules provide the network links and mounts found: the running kernel's
    // aliases; without a module directory, a module of the kind's own name.
    let ctx = Settings::running_context(g);
    let aliases = uncounted::aliases_in(ctx.as_ref());
    let uses = HostUses { root: &root };
    let uncounted = Uncounted::new(&uses, &aliases).with_policy(&policy);
    let lock = HostLock::acquire(&root)?;
    let mut session = Session::open(&root, &lock)?;
    for w in &session.warnings {
        eprintln!("modgate: warning: {}", modgate_core::printable(w));
    }
    let r = session.gc(
        &Syscalls,
        &uncounted,
        &alive,
        policy.unload,
        args.grace.saturating_mul(1000),
        args.dry_run,
    )?;
    let (drop, unload) = if args.dry_run {
        ("would drop", "would unload")
    } else {
        ("dropped", "unloaded")
    };
    let shown = |id: &str| modgate_core::printable(id).into_owned();
    for id in r.dropped.iter().map(|i| shown(i)) {
        println!("{drop} the record of {id}: container gone");
    }
    for id in r.too_young.iter().map(|i| shown(i)) {
        println!(
            "kept the record of {id}: written in the last {} s (see --grace)",
            args.grace
        );
    }
    for id in r.unknown.iter().map(|i| shown(i)) {
        println!("kept the record of {id}: cannot tell whether it is alive (no state directory of an engine modgate knows; give --alive-ids)");
    }
    for m in &r.unloaded.removed {
        println!("{unload} {m}");
    }
    for (m, why) in &r.unloaded.left {
        println!("left {m}: {why}");
    }
    if !r.kept.is_empty() {
        println!(
            "kept {}: loaded by modgate, held by nobody; the policy says unload = \"never\" (modgate unload NAME removes one)",
            r.kept.join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One id a line; `-` reads stdin.
fn read_ids(path: &Path) -> Result<BTreeSet<String>, AliveIdsError> {
    let mut text = String::new();
    let shown = path.display().to_string();
    if path == Path::new("-") {
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| AliveIdsError("stdin".into(), e))?;
    } else {
        text = std::fs::read_to_string(path).map_err(|e| AliveIdsError(shown, e))?;
    }
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}
