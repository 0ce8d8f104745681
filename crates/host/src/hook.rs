//! The OCI hook: reads the state on stdin and the bundle's `config.json`, takes the
//! container's request, checks it against the policy and loads it, all or nothing. It
//! fails closed: anything it cannot read or decide stops the container.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use modgate_core::oci::{ConfigView, OciError, State, MAX_CONFIG_BYTES};
use modgate_core::policy::{Denial, Unload};
use modgate_core::request::RequestError;
use modgate_core::Request;

use crate::context::{Context, PlanError};
use crate::kernel::Sysfs;
use crate::lifecycle::{Released, Session};
use crate::loader::{LoadError, LoadReport, Loader};
use crate::lock::{HostLock, LockError};
use crate::moddir::ModDirError;
use crate::policyfile::{self, PolicyFileError};
use crate::root::Root;
use crate::state::StateError;
use crate::syscall::ModuleSyscalls;

/// Largest state document accepted on stdin.
const MAX_STATE_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Prestart,
    CreateRuntime,
    Poststart,
    Poststop,
    CreateContainer,
    StartContainer,
}

impl Stage {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "prestart" => Stage::Prestart,
            "createRuntime" => Stage::CreateRuntime,
            "poststart" => Stage::Poststart,
            "poststop" => Stage::Poststop,
            "createContainer" => Stage::CreateContainer,
            "startContainer" => Stage::StartContainer,
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
    #[error("container {id}: cannot read {}", path.display())]
    ConfigRead {
        id: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("container {id}: {} is larger than {MAX_CONFIG_BYTES} bytes", path.display())]
    ConfigTooLarge { id: String, path: PathBuf },
    #[error("container {id}: {}", path.display())]
    ConfigParse {
        id: String,
        path: PathBuf,
        #[source]
        source: OciError,
    },
    #[error("container {id}: invalid request")]
    Request {
        id: String,
        #[source]
        source: RequestError,
    },
    #[error("container {id}")]
    Policy {
        id: String,
        #[source]
        source: PolicyFileError,
    },
    #[error("container {id}")]
    ModDir {
        id: String,
        #[source]
        source: ModDirError,
    },
    #[error("container {id}")]
    Plan {
        id: String,
        #[source]
        source: PlanError,
    },
    #[error("container {id}")]
    Denied {
        id: String,
        #[source]
        source: Denial,
    },
    #[error("container {id}")]
    Lock {
        id: String,
        #[source]
        source: LockError,
    },
    #[error("container {id}")]
    Load {
        id: String,
        #[source]
        source: LoadError,
    },
    #[error("container {id}")]
    State {
        id: String,
        #[source]
        source: StateError,
    },
    #[error("container {id}: cannot tell the kernel release (give --kernel-release)")]
    Release {
        id: String,
        #[source]
        source: std::io::Error,
    },
}

/// How the hook is set up (from its command line).
pub struct HookSettings {
    pub root: Root,
    pub release: Option<String>,
    pub config_dirs: Vec<PathBuf>,
    pub policy: Option<PathBuf>,
    pub coming_wait: Duration,
}

/// What the hook did, for the log.
#[derive(Debug, Default, serde::Serialize)]
pub struct Outcome {
    pub container: String,
    pub stage: String,
    pub requested: Vec<String>,
    pub plan: Vec<String>,
    pub decision: String,
    pub report: Option<LoadReport>,
    pub released: Option<Released>,
    pub micros: u128,
}

pub fn read_state(mut stdin: impl Read) -> Result<State, HookError> {
    let mut buf = Vec::new();
    stdin
        .by_ref()
        .take(MAX_STATE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(HookError::Stdin)?;
    if buf.len() as u64 > MAX_STATE_BYTES {
        return Err(HookError::StdinTooLarge);
    }
    Ok(State::parse(&buf)?)
}

/// Reads `BUNDLE/config.json`: no symlink, no special file, at most 16 MiB.
pub fn read_config(state: &State) -> Result<ConfigView, HookError> {
    let bundle = Path::new(state.bundle().unwrap_or("."));
    let path = bundle.join("config.json");
    let id = state.id.clone();
    let err = |source| HookError::ConfigRead {
        id: id.clone(),
        path: path.clone(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(&path)
        .map_err(err)?;
    let meta = file.metadata().map_err(err)?;
    if !meta.is_file() {
        return Err(err(std::io::Error::other("not a regular file")));
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(HookError::ConfigTooLarge { id, path });
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(err)?;
    if buf.len() as u64 > MAX_CONFIG_BYTES {
        return Err(HookError::ConfigTooLarge { id, path });
    }
    ConfigView::parse(&buf).map_err(|source| HookError::ConfigParse { id, path, source })
}

/// The container's request from its config, or an error naming the container.
pub fn request_of(state: &State, config: &ConfigView) -> Result<Request, HookError> {
    config.request().map_err(|source| HookError::Request {
        id: state.id.clone(),
        source,
    })
}

/// Loads a non-empty request for a container (prestart / createRuntime).
pub fn load_request(
    s: &HookSettings,
    syscalls: &dyn ModuleSyscalls,
    state: &State,
    config: &ConfigView,
    request: &Request,
    outcome: &mut Outcome,
) -> Result<(), HookError> {
    let start = Instant::now();
    let id = state.id.clone();
    let names: Vec<&str> = request.names().iter().map(|n| n.as_str()).collect();
    outcome.requested = names.iter().map(|n| n.to_string()).collect();
    let policy =
        policyfile::load(&s.root, s.policy.as_deref()).map_err(|source| HookError::Policy {
            id: id.clone(),
            source,
        })?;
    let release = match &s.release {
        Some(r) => r.clone(),
        None => s
            .root
            .kernel_release()
            .map_err(|source| HookError::Release {
                id: id.clone(),
                source,
            })?,
    };
    let ctx = Context::open(s.root.clone(), release, &s.config_dirs).map_err(|source| {
        HookError::ModDir {
            id: id.clone(),
            source,
        }
    })?;
    let mut annotations: BTreeMap<String, String> = config.annotations.clone();
    for (k, v) in &state.annotations {
        annotations.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let sysfs = Sysfs { root: &ctx.root };
    // Decide before taking the lock: a denied request never waits for other hooks.
    let plan = ctx.plan(&names, &sysfs).map_err(|source| HookError::Plan {
        id: id.clone(),
        source,
    })?;
    outcome.plan = plan.closure().map(str::to_string).collect();
    policy
        .check(&names, &plan, &annotations)
        .map_err(|source| {
            outcome.decision = format!("denied: {source}");
            HookError::Denied {
                id: id.clone(),
                source,
            }
        })?;
    let lock = HostLock::acquire(&ctx.root).map_err(|source| HookError::Lock {
        id: id.clone(),
        source,
    })?;
    // Plan again under the lock: another hook may have loaded (or removed) modules.
    let plan = ctx.plan(&names, &sysfs).map_err(|source| HookError::Plan {
        id: id.clone(),
        source,
    })?;
    let state_err = |source| HookError::State {
        id: id.clone(),
        source,
    };
    let mut session = Session::open(&ctx.root, &lock).map_err(state_err)?;
    session
        .begin_load(&id, &outcome.stage, &outcome.requested, &plan)
        .map_err(state_err)?;
    let loader = Loader {
        root: &ctx.root,
        syscalls,
        moddir: &ctx.dir.dir,
        dirname: &ctx.dir.dirname,
        coming_wait: s.coming_wait,
    };
    let report = match loader.load(&plan) {
        Ok(r) => r,
        Err(source) => {
            outcome.decision = format!("load failed: {source}");
            // The load's error is the one to report; this one only goes to the log.
            if let Err(e) = session.abort_load(&id, &source) {
                tracing::warn!(container = %id, error = %e, "could not drop the record of a failed load");
            }
            return Err(HookError::Load { id, source });
        }
    };
    session.finish_load(&id, &report).map_err(state_err)?;
    outcome.decision = "allowed".into();
    outcome.report = Some(report);
    outcome.micros = start.elapsed().as_micros();
    Ok(())
}

/// Poststop: the container releases what it holds; with `unload = "on-last-release"`,
/// the modules modgate inserted that nobody else holds are removed.
pub fn release(
    s: &HookSettings,
    syscalls: &dyn ModuleSyscalls,
    state: &State,
    outcome: &mut Outcome,
) -> Result<(), HookError> {
    let start = Instant::now();
    let id = state.id.clone();
    // A policy that cannot be read must not keep the container's holds forever: release
    // without unloading, then report the policy.
    let policy = policyfile::load(&s.root, s.policy.as_deref());
    let unload = policy.as_ref().map(|p| p.unload).unwrap_or(Unload::Never);
    let lock = HostLock::acquire(&s.root).map_err(|source| HookError::Lock {
        id: id.clone(),
        source,
    })?;
    let state_err = |source| HookError::State {
        id: id.clone(),
        source,
    };
    let mut session = Session::open(&s.root, &lock).map_err(state_err)?;
    let released = session.release(syscalls, &id, unload).map_err(state_err)?;
    outcome.decision = match &released {
        Some(_) => "released".into(),
        None => "released (held nothing)".into(),
    };
    outcome.released = released;
    outcome.micros = start.elapsed().as_micros();
    policy.map_err(|source| HookError::Policy { id, source })?;
    Ok(())
}
