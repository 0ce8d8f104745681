//! One path from a request to loaded modules, for the hook and for `modgate load`:
//! request → policy → plan → locks → record → load → record. The decision is made
//! before the locks (a denied request never waits for other hooks) and the plan made
//! again under them (another hook may have loaded or removed modules meanwhile). The
//! locks are those of a [`Claim`]: the host lock shared, the container's, and the
//! modules' of the plan, so hooks for other modules run meanwhile.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use modgate_core::policy::Denial;

use crate::context::{Context, PlanError};
use crate::integrity::{self, IntegrityError};
use crate::kernel::{ModuleSyscalls, Sysfs, Uses};
use crate::lifecycle::{uncounted, Claim, Identity, Released, StateError, Uncounted};
use crate::loader::{Deadline, LoadError, LoadReport, Loader};
use crate::lock::LockError;
use crate::moddir::ModDirError;
use crate::policyfile::{self, PolicyFileError};
use crate::root::Root;

/// One step of admitting (or releasing) a request that failed.
#[derive(Debug, thiserror::Error)]
pub enum AdmitError {
    #[error(transparent)]
    Policy(#[from] PolicyFileError),
    #[error("cannot tell the kernel release (give --kernel-release)")]
    Release(#[source] std::io::Error),
    #[error(transparent)]
    ModDir(#[from] ModDirError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Denied(#[from] Denial),
    #[error(transparent)]
    Integrity(#[from] IntegrityError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// Where and how: the host, its module directory and the policy file.
pub struct Host {
    pub root: Root,
    /// `None`: the running kernel's (`ROOT/proc/sys/kernel/osrelease`).
    pub release: Option<String>,
    pub config_dirs: Vec<PathBuf>,
    pub policy: Option<PathBuf>,
    /// How long to wait for a module another process is loading.
    pub coming_wait: Duration,
    /// The load's budget (the hook's): past it, the load is rolled back.
    pub deadline: Option<Arc<Deadline>>,
}

impl Host {
    pub fn release(&self) -> Result<String, AdmitError> {
        match &self.release {
            Some(r) => Ok(r.clone()),
            None => self.root.kernel_release().map_err(AdmitError::Release),
        }
    }

    /// The module directory and configuration of the release this host runs.
    pub fn context(&self) -> Result<Context, AdmitError> {
        Ok(Context::open(
            self.root.clone(),
            self.release()?,
            &self.config_dirs,
        )?)
    }

    fn policy_path(&self) -> Option<&Path> {
        self.policy.as_deref()
    }
}

/// The container a request belongs to, when there is one: its load is recorded, so the
/// container holds what it needs until its poststop.
pub struct Holder<'a> {
    pub id: &'a str,
    /// The bundle the runtime gave: with the id, who the container is.
    pub bundle: &'a str,
    /// The hook stage that asked (`prestart`, `createRuntime`), for the record.
    pub stage: &'a str,
}

/// What a request did, for the log (filled in as far as it got).
#[derive(Debug, Default, serde::Serialize)]
pub struct Outcome {
    pub container: String,
    pub stage: String,
    pub requested: Vec<String>,
    pub plan: Vec<String>,
    /// `allowed`, `denied`, `load failed`, `released`: the reason is the error's, which
    /// is reported once, apart.
    pub decision: String,
    pub report: Option<LoadReport>,
    pub released: Option<Released>,
    /// `modprobe.d` lines that were ignored, with why.
    pub config_warnings: Vec<String>,
    pub micros: u128,
}

/// Admits a request and loads it, all or nothing.
pub fn admit_and_load(
    host: &Host,
    syscalls: &dyn ModuleSyscalls,
    names: &[&str],
    annotations: &BTreeMap<String, String>,
    holder: Option<Holder>,
    outcome: &mut Outcome,
) -> Result<(), AdmitError> {
    let start = Instant::now();
    outcome.requested = names.iter().map(|n| n.to_string()).collect();
    let policy = policyfile::load(&host.root, host.policy_path())?;
    let ctx = host.context()?;
    outcome.config_warnings = ctx.config.warnings.clone();
    let kernel = Sysfs { root: &ctx.root };
    let plan = ctx.plan(names, &kernel)?;
    outcome.plan = plan.closure().map(str::to_string).collect();
    if let Err(denial) = policy.check(names, &plan, annotations) {
        outcome.decision = "denied".into();
        return Err(denial.into());
    }
    let who = holder.as_ref().map(|h| Identity {
        id: h.id,
        bundle: h.bundle,
    });
    let closure: Vec<&str> = plan.closure().collect();
    let mut claim = Claim::acquire(&ctx.root, who, &closure, false)?;
    let plan = planned_under(&ctx, names, &kernel, &mut claim)?;
    // The files of exactly this plan, read and checked before anything is recorded or
    // inserted; `None` (no read at all) when the policy asks for no look at them.
    let images = integrity::check_plan(
        &ctx.root,
        &policy,
        &plan,
        &ctx.dir.dir,
        &ctx.dir.dirname,
        &ctx.release,
    )
    .inspect_err(|_| outcome.decision = "refused".into())?;
    if let Some(h) = &holder {
        claim.begin_load(h.stage, &outcome.requested, &plan)?;
    }
    let loader = Loader {
        root: &ctx.root,
        kernel: &kernel,
        syscalls,
        moddir: &ctx.dir.dir,
        dirname: &ctx.dir.dirname,
        coming_wait: host.coming_wait,
        images: images.as_ref(),
        deadline: host.deadline.as_deref(),
    };
    let report = match loader.load(&plan, &mut |m| claim.record_insertion(m)) {
        Ok(r) => r,
        Err(e) => {
            outcome.decision = "load failed".into();
            if let Some(h) = &holder {
                // The load's error is the one to report; this one only goes to the log.
                if let Err(abort) = claim.abort_load(&e) {
                    tracing::warn!(container = %h.id, error = %abort, "could not drop the record of a failed load");
                }
            }
            return Err(e.into());
        }
    };
    claim.finish_load(&report)?;
    outcome.decision = "allowed".into();
    outcome.report = Some(report);
    outcome.micros = start.elapsed().as_micros();
    Ok(())
}

/// Poststop: the container releases what it holds; with `unload = "on-last-release"`,
/// the modules modgate inserted that nobody else holds are removed, unless `uses`
/// shows something using them without a reference (see [`Uncounted`]).
pub fn release(
    host: &Host,
    syscalls: &dyn ModuleSyscalls,
    uses: &dyn Uses,
    who: Identity,
    outcome: &mut Outcome,
) -> Result<(), AdmitError> {
    let start = Instant::now();
    // A policy that cannot be read must not keep the container's holds forever: release
    // without unloading, then report the policy.
    let policy = policyfile::load(&host.root, host.policy_path());
    let unload = policy
        .as_ref()
        .map(|p| p.unload)
        .unwrap_or(modgate_core::policy::Unload::Never);
    // Removing modules needs their locks exclusive; only letting go of them, shared.
    let exclusive = unload == modgate_core::policy::Unload::OnLastRelease;
    let mut claim = Claim::acquire(&host.root, Some(who), &[], exclusive)?;
    // Which modules provide a link kind or file system: the running kernel's aliases.
    let ctx = if exclusive { host.context().ok() } else { None };
    let aliases = uncounted::aliases_in(ctx.as_ref());
    let mut uncounted = Uncounted::new(uses, &aliases);
    if let Ok(p) = &policy {
        uncounted = uncounted.with_policy(p);
    }
    let released = claim.release(syscalls, &uncounted, unload)?;
    outcome.decision = match &released {
        Some(_) => "released".into(),
        None => "released (held nothing)".into(),
    };
    outcome.released = released;
    outcome.micros = start.elapsed().as_micros();
    policy?;
    Ok(())
}

/// The plan made again under the claim's locks, once they cover it: every module it
/// names, exclusive when it inserts one (shared locks let all-live requests run side
/// by side).
fn planned_under(
    ctx: &Context,
    names: &[&str],
    kernel: &Sysfs,
    claim: &mut Claim,
) -> Result<modgate_core::Plan, AdmitError> {
    loop {
        let plan = ctx.plan(names, kernel)?;
        if claim.cover(&plan)? {
            return Ok(plan);
        }
    }
}
