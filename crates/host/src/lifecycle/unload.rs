//! Removing modules safely: newest first, a module only once nothing uses it (no module
//! among its kernel holders, a zero reference count, no user the kernel does not count:
//! [`Uncounted`]), re-reading the kernel after each round because removing one module
//! drops the references it held on others (a dependency's count, or a crypto driver that
//! only a count ties to its user). Also `modgate unload NAME...`: what a person may ask
//! to remove.

use std::collections::BTreeSet;
use std::ffi::CString;

use modgate_core::record::{ContainerRecord, Ledger};

use super::holding::holders;
use super::store::StateError;
use super::uncounted::Uncounted;
use super::Session;
use crate::kernel::{Kernel, ModState, ModuleSyscalls};

/// Why the kernel did not remove a module.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// In use (`EWOULDBLOCK`/`EBUSY` with `O_NONBLOCK`): left for a later try.
    InUse,
    /// Not loaded (`ENOENT`): someone else removed it.
    Gone,
    Other(String),
}

fn remove(syscalls: &dyn ModuleSyscalls, module: &str) -> Result<(), Refusal> {
    let name = CString::new(module).map_err(|_| Refusal::Other("NUL in name".into()))?;
    match syscalls.delete_module(&name) {
        Ok(()) => Ok(()),
        Err(e) => Err(match e.raw_os_error() {
            Some(libc::EWOULDBLOCK) | Some(libc::EBUSY) => Refusal::InUse,
            Some(libc::ENOENT) => Refusal::Gone,
            Some(libc::EPERM) => Refusal::Other(
                "operation not permitted (needs CAP_SYS_MODULE; or the module cannot be unloaded)"
                    .into(),
            ),
            _ => Refusal::Other(e.to_string()),
        }),
    }
}

/// A module that may be removed, with its insertion number (newest goes first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub name: String,
    pub seq: u64,
}

pub(super) fn candidate(ledger: &Ledger, name: &str) -> Option<Candidate> {
    ledger.modules.get(name).map(|o| Candidate {
        name: name.to_string(),
        seq: o.seq,
    })
}

/// Why a candidate stayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Left {
    UsedBy(Vec<String>),
    InUse(u64),
    Refused(String),
    /// The kernel would let it go, but something it does not count uses it (or the
    /// policy says never): the reason.
    Kept(String),
}

impl std::fmt::Display for Left {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Left::UsedBy(m) => write!(f, "used by module {}", m.join(", ")),
            Left::InUse(n) => write!(f, "in use (reference count {n})"),
            Left::Refused(why) => write!(f, "the kernel refused: {why}"),
            Left::Kept(why) => f.write_str(why),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unloaded {
    /// Removed, in order.
    pub removed: Vec<String>,
    /// Already gone when we came to it.
    pub gone: Vec<String>,
    pub left: Vec<(String, Left)>,
}

/// Removes what it can of `candidates`, never one that `uncounted` keeps. With
/// `dry_run`, asks nothing of the kernel but what it shows and reports what a run would
/// try, assuming every removal succeeds and no reference count is held by anything
/// outside the candidates.
pub fn unload(
    candidates: &[Candidate],
    kernel: &dyn Kernel,
    syscalls: &dyn ModuleSyscalls,
    uncounted: &Uncounted,
    dry_run: bool,
) -> Unloaded {
    let mut order: Vec<&Candidate> = candidates.iter().collect();
    order.sort_by(|a, b| b.seq.cmp(&a.seq).then_with(|| a.name.cmp(&b.name)));
    order.dedup_by(|a, b| a.name == b.name);
    let mut out = Unloaded::default();
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut refused: Vec<(String, String)> = Vec::new();
    let mut kept: Vec<(String, String)> = Vec::new();
    loop {
        let mut progressed = false;
        for c in &order {
            let name = c.name.as_str();
            if done.contains(name) || refused.iter().chain(&kept).any(|(n, _)| n == name) {
                continue;
            }
            if kernel.state(name) != ModState::Live {
                out.gone.push(name.to_string());
                done.insert(name.to_string());
                progressed = true;
                continue;
            }
            // A holder already removed may linger in a slow sysfs.
            let used = kernel
                .holders(name)
                .iter()
                .any(|h| !out.removed.contains(h));
            // A dry run removes nothing, so counts never fall: it ignores them.
            if used || (!dry_run && kernel.refcnt(name).unwrap_or(0) > 0) {
                continue;
            }
            if let Some(why) = uncounted.keep(name) {
                kept.push((name.to_string(), why));
                continue;
            }
            let result = if dry_run {
                Ok(())
            } else {
                remove(syscalls, name)
            };
            match result {
                Ok(()) => {
                    out.removed.push(name.to_string());
                    done.insert(name.to_string());
                    progressed = true;
                }
                Err(Refusal::Gone) => {
                    out.gone.push(name.to_string());
                    done.insert(name.to_string());
                    progressed = true;
                }
                Err(Refusal::InUse) => {}
                Err(Refusal::Other(why)) => refused.push((name.to_string(), why)),
            }
        }
        if !progressed {
            break;
        }
    }
    for c in &order {
        let name = c.name.as_str();
        if done.contains(name) {
            continue;
        }
        if let Some((_, why)) = refused.iter().find(|(n, _)| n == name) {
            out.left
                .push((name.to_string(), Left::Refused(why.clone())));
            continue;
        }
        if let Some((_, why)) = kept.iter().find(|(n, _)| n == name) {
            out.left.push((name.to_string(), Left::Kept(why.clone())));
            continue;
        }
        let users: Vec<String> = kernel
            .holders(name)
            .into_iter()
            .filter(|h| !out.removed.contains(h))
            .collect();
        let why = if !users.is_empty() {
            Left::UsedBy(users)
        } else {
            Left::InUse(kernel.refcnt(name).unwrap_or(0))
        };
        out.left.push((name.to_string(), why));
    }
    out
}

/// `modgate unload NAME...`: what to remove, what to refuse and what to warn about.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UnloadAsk {
    pub candidates: Vec<Candidate>,
    pub refused: Vec<(String, String)>,
    pub warnings: Vec<String>,
}

/// Each name must be owned and unheld (held is allowed with `force`, with a warning
/// naming the holders). `closure_of(NAME)` gives the modules NAME needs: those that
/// are owned and unheld go too, dependencies before nothing that still needs them.
pub fn unload_ask(
    ledger: &Ledger,
    records: &[ContainerRecord],
    names: &[&str],
    force: bool,
    closure_of: &dyn Fn(&str) -> Vec<String>,
) -> UnloadAsk {
    let held = holders(records);
    let mut ask = UnloadAsk::default();
    let mut chosen: BTreeSet<String> = BTreeSet::new();
    for &name in names {
        let Some(c) = candidate(ledger, name) else {
            let why = if held.contains_key(name) {
                "modgate did not load it (it was live before a container asked for it): modgate never removes it; use rmmod".to_string()
            } else {
                "modgate did not load it and no container holds it; use rmmod".to_string()
            };
            ask.refused.push((name.to_string(), why));
            continue;
        };
        if let Some(ids) = held.get(name) {
            if !force {
                ask.refused.push((
                    name.to_string(),
                    format!(
                        "held by container {} (give --force to remove it anyway)",
                        ids.join(", ")
                    ),
                ));
                continue;
            }
            ask.warnings.push(format!(
                "removing module {name:?} that container {} still holds",
                ids.join(", ")
            ));
        }
        chosen.insert(name.to_string());
        ask.candidates.push(c);
        for dep in closure_of(name) {
            if dep != name && !held.contains_key(dep.as_str()) && chosen.insert(dep.clone()) {
                if let Some(c) = candidate(ledger, &dep) {
                    ask.candidates.push(c);
                }
            }
        }
    }
    ask
}

impl Session<'_> {
    /// `modgate unload NAME...`.
    pub fn unload_named(
        &mut self,
        syscalls: &dyn ModuleSyscalls,
        uncounted: &Uncounted,
        names: &[&str],
        force: bool,
        closure_of: &dyn Fn(&str) -> Vec<String>,
    ) -> Result<(UnloadAsk, Unloaded), StateError> {
        let ask = unload_ask(&self.ledger, &self.records, names, force, closure_of);
        for w in &ask.warnings {
            tracing::warn!("{w}");
        }
        let u = self.unload(syscalls, uncounted, &ask.candidates, false)?;
        Ok((ask, u))
    }

    /// Removes what it can of `candidates` and drops what went from the ledger.
    pub(super) fn unload(
        &mut self,
        syscalls: &dyn ModuleSyscalls,
        uncounted: &Uncounted,
        candidates: &[Candidate],
        dry_run: bool,
    ) -> Result<Unloaded, StateError> {
        if candidates.is_empty() {
            return Ok(Unloaded::default());
        }
        let u = unload(candidates, &self.kernel(), syscalls, uncounted, dry_run);
        if dry_run {
            return Ok(u);
        }
        for m in &u.removed {
            tracing::info!(module = %m, "unloaded");
        }
        for (m, why) in &u.left {
            tracing::warn!(module = %m, "left loaded: {why}; modgate gc tries again");
        }
        for m in u.removed.iter().chain(&u.gone) {
            self.ledger.modules.remove(m.as_str());
            self.store.remove_owned(m)?;
        }
        super::metrics::bump(
            self.store.dir(),
            super::metrics::Counter::Unloaded,
            u.removed.len() as u64,
        );
        Ok(u)
    }
}

#[cfg(test)]
#[path = "unload_tests.rs"]
mod tests;
