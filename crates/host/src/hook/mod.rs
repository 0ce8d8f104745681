//! The OCI hook: reads the state on stdin and the bundle's `config.json`, takes the
//! container's request and hands it to [`crate::pipeline`]; at poststop, releases what
//! the container held. It fails closed: anything it cannot read or decide stops the
//! container.
//!
//! [`prepare`] is the fast path every container start goes through: nothing is read or
//! set up before the container is known to ask for something. [`Job::run`] does the
//! rest.

pub mod bundle;
pub mod deadline;

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use modgate_core::oci::{ConfigView, OciError, State};
use modgate_core::record::MAX_ID_BYTES;
use modgate_core::request::RequestError;
use modgate_core::Request;

use crate::kernel::{ModuleSyscalls, Uses};
use crate::lifecycle::metrics::{self, Counter};
use crate::lifecycle::{has_record, Identity};
use crate::loader::{Deadline, LoadError};
use crate::pipeline::{self, AdmitError, Holder, Host, Outcome};
use crate::root::Root;
pub use bundle::{read_config, read_state, state_bytes, BundleError, Stdin, MAX_STATE_BYTES};

/// The OCI hook stages modgate is called at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookStage {
    Prestart,
    CreateRuntime,
    Poststart,
    Poststop,
    CreateContainer,
    StartContainer,
}

impl HookStage {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "prestart" => HookStage::Prestart,
            "createRuntime" => HookStage::CreateRuntime,
            "poststart" => HookStage::Poststart,
            "poststop" => HookStage::Poststop,
            "createContainer" => HookStage::CreateContainer,
            "startContainer" => HookStage::StartContainer,
            _ => return None,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("unknown hook stage {0:?} (expected prestart, createRuntime, poststart or poststop)")]
    UnknownStage(String),
    #[error("stage {0} runs inside the container's namespaces, where modules cannot be loaded; use prestart or createRuntime")]
    WrongStage(&'static str),
    #[error("cannot read the OCI state on stdin")]
    Stdin(#[source] std::io::Error),
    #[error("OCI state on stdin is larger than {MAX_STATE_BYTES} bytes")]
    StdinTooLarge,
    #[error(transparent)]
    Oci(#[from] OciError),
    #[error("container id is {0} bytes long, more than {MAX_ID_BYTES}: modgate does not record such ids")]
    IdTooLong(usize),
    #[error(transparent)]
    Container(#[from] ContainerError),
}

/// Anything that went wrong for one container: the id once, the reason as the source.
#[derive(Debug, thiserror::Error)]
#[error("container {id}")]
pub struct ContainerError {
    pub id: String,
    #[source]
    pub kind: ContainerFailure,
}

#[derive(Debug, thiserror::Error)]
pub enum ContainerFailure {
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error("invalid request")]
    Request(#[source] RequestError),
    #[error(transparent)]
    Admit(#[from] AdmitError),
}

fn in_container<T, E: Into<ContainerFailure>>(id: &str, r: Result<T, E>) -> Result<T, HookError> {
    r.map_err(|e| {
        HookError::Container(ContainerError {
            id: id.to_string(),
            kind: e.into(),
        })
    })
}

/// A hook call that has something to do.
pub struct Job {
    stage: HookStage,
    stage_name: String,
    state: State,
    config: ConfigView,
    request: Request,
    timeout: Duration,
    deadline: Arc<Deadline>,
}

/// The fast path: `None` when the container asks for nothing (or, at poststop, holds
/// nothing), decided before anything else is read. Until [`Job::run`] starts its
/// watchdog thread, the alarm is the deadline. `load_budget`: a budget for the load
/// shorter than the one `timeout` gives ([`deadline::budget`]).
pub fn prepare(
    stage_name: &str,
    root: &Root,
    timeout: u64,
    load_budget: Option<Duration>,
    stdin: impl Read,
) -> Result<Option<Job>, HookError> {
    let stage = HookStage::parse(stage_name)
        .ok_or_else(|| HookError::UnknownStage(stage_name.to_string()))?;
    match stage {
        HookStage::CreateContainer => return Err(HookError::WrongStage("createContainer")),
        HookStage::StartContainer => return Err(HookError::WrongStage("startContainer")),
        HookStage::Poststart => return Ok(None),
        HookStage::Prestart | HookStage::CreateRuntime | HookStage::Poststop => {}
    }
    deadline::alarm(timeout);
    let state = read_state(stdin)?;
    let (config, request) = if stage == HookStage::Poststop {
        // Poststop needs only the id, and nearly every container has no record to
        // release: return before reading the bundle, which may be half gone by now.
        if !has_record(root, &state.id) {
            return Ok(None);
        }
        Default::default()
    } else {
        let config = in_container(&state.id, read_config(&state))?;
        let request = in_container(
            &state.id,
            config.request().map_err(ContainerFailure::Request),
        )?;
        if request.is_empty() {
            return Ok(None);
        }
        // Only a container that asks for something is refused: one that does not is
        // none of modgate's business.
        if state.id.len() > MAX_ID_BYTES {
            return Err(HookError::IdTooLong(state.id.len()));
        }
        (config, request)
    };
    // The budget counts from here, where the work begins; the alarm stays armed until
    // the watchdog replaces it.
    let timeout = Duration::from_secs(timeout);
    // An insertion in flight at the budget's end gets half the reserve to return, and
    // is rolled back with the rest; the other half is for the rollback.
    let deadline = Arc::new(
        Deadline::after(deadline::budget(timeout, load_budget))
            .with_grace(deadline::reserve(timeout) / 2),
    );
    Ok(Some(Job {
        stage,
        stage_name: stage_name.to_string(),
        state,
        config,
        request,
        timeout,
        deadline,
    }))
}

impl Job {
    pub fn container(&self) -> &str {
        &self.state.id
    }

    /// How long to wait for a module someone else is loading: the load's budget (the
    /// loader never waits past it, which leaves the rollback its time).
    pub fn coming_wait(&self) -> Duration {
        self.deadline.budget()
    }

    /// The load's budget, for [`Host::deadline`].
    pub fn deadline(&self) -> Arc<Deadline> {
        Arc::clone(&self.deadline)
    }

    /// Loads the request (prestart, createRuntime) or releases (poststop), and logs one
    /// line saying what it did, under the watchdog ([`deadline::watched`]).
    pub fn run(
        &self,
        host: &Host,
        syscalls: &dyn ModuleSyscalls,
        uses: &dyn Uses,
    ) -> Result<(), HookError> {
        deadline::alarm(0);
        deadline::watched(
            self.timeout,
            &self.deadline,
            syscalls,
            |e| self.stopped(host, e),
            || self.work(host, syscalls, uses),
        )
    }

    /// A load the watchdog stopped and rolled back: the hook's line, its count and the
    /// one line on stderr, before the watchdog exits.
    fn stopped(&self, host: &Host, e: &LoadError) {
        let line = format!(
            "container {}: {}",
            self.state.id,
            modgate_core::error_line(e)
        );
        tracing::error!(container = %self.state.id, stage = %self.stage_name, decision = "load failed", "{line}");
        metrics::bump(&host.root.path("run/modgate"), Counter::Refused("load"), 1);
        eprintln!("modgate: {line}");
    }

    fn work(
        &self,
        host: &Host,
        syscalls: &dyn ModuleSyscalls,
        uses: &dyn Uses,
    ) -> Result<(), HookError> {
        let id = self.state.id.as_str();
        let mut outcome = Outcome {
            container: id.to_string(),
            stage: self.stage_name.clone(),
            ..Default::default()
        };
        let result = match self.stage {
            HookStage::Poststop => {
                let who = Identity {
                    id,
                    bundle: self.state.bundle().unwrap_or_default(),
                };
                pipeline::release(host, syscalls, uses, who, &mut outcome)
            }
            _ => {
                let names: Vec<&str> = self.request.names().iter().map(|n| n.as_str()).collect();
                let mut annotations: BTreeMap<String, String> = self.config.annotations.clone();
                for (k, v) in &self.state.annotations {
                    annotations.entry(k.clone()).or_insert_with(|| v.clone());
                }
                let holder = Holder {
                    id,
                    bundle: self.state.bundle().unwrap_or_default(),
                    stage: &self.stage_name,
                };
                pipeline::admit_and_load(
                    host,
                    syscalls,
                    &names,
                    &annotations,
                    Some(holder),
                    &mut outcome,
                )
            }
        };
        let reason = result
            .as_ref()
            .err()
            .map(|e| modgate_core::error_line(e))
            .unwrap_or_default();
        log(&outcome, &reason);
        if self.stage != HookStage::Poststop {
            let counter = match &result {
                Ok(()) => Counter::Allowed,
                Err(e) => Counter::Refused(refusal(e)),
            };
            metrics::bump(&host.root.path("run/modgate"), counter, 1);
        }
        in_container(id, result)
    }
}

/// Counts a container refused before its request could be decided: a bundle that
/// cannot be read, a request that is not one, an id too long. Other failures of
/// `prepare` (no state on stdin, a wrong stage) are not a container's refusal.
pub fn count_refusal(root: &Root, e: &HookError) {
    let why = match e {
        HookError::Container(ContainerError {
            kind: ContainerFailure::Bundle(_),
            ..
        }) => "bundle",
        HookError::Container(ContainerError {
            kind: ContainerFailure::Request(_),
            ..
        })
        | HookError::IdTooLong(_) => "request",
        _ => return,
    };
    metrics::bump(&root.path("run/modgate"), Counter::Refused(why), 1);
}

/// A refusal's reason, as the counters name it.
fn refusal(e: &AdmitError) -> &'static str {
    match e {
        AdmitError::Denied(_) => "policy",
        AdmitError::Load(_) => "load",
        AdmitError::State(_) => "state",
        _ => "other",
    }
}

/// The hook's one log line (and the configuration's warnings before it); `reason`:
/// why a request was refused, empty when it was not.
fn log(outcome: &Outcome, reason: &str) {
    for w in &outcome.config_warnings {
        tracing::warn!(container = %outcome.container, "modprobe configuration: {w}");
    }
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
        reason = %reason,
        loaded = %loaded,
        unloaded = %unloaded,
        micros = outcome.micros,
        "hook"
    );
}
