//! Executes a load plan: inserts each module in order, waits for ones being loaded by
//! someone else, and on any required failure removes what this request inserted (in
//! reverse) before failing. Modules that were already loaded are never touched. Under
//! a [`Deadline`], a load that runs past its budget is rolled back the same way.

pub mod deadline;
mod explain;

use std::ffi::CString;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use modgate_core::{Action, ModState, Plan};

use crate::integrity::CheckedImages;
use crate::kernel::{Diagnosis, Kernel, ModuleSyscalls, MODULE_INIT_COMPRESSED_FILE};
use crate::lifecycle::StateError;
use crate::modfile::{self, Compression, ModFileError};
use crate::root::Root;
pub use deadline::Deadline;
pub use explain::explain;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("this kernel has no loadable module support ({} does not exist)", .0)]
    NoModuleSupport(String),
    #[error("module {module:?} is disabled by install command in {source_file}")]
    Disabled { module: String, source_file: String },
    #[error("module {module:?} has no module file and is not built in")]
    Missing { module: String },
    #[error("module {module:?}")]
    File {
        module: String,
        #[source]
        source: ModFileError,
    },
    #[error("could not insert module {module:?}: {reason}")]
    Insert {
        module: String,
        reason: String,
        errno: i32,
    },
    /// An optional module the integrity check left out, or one it never saw.
    #[error("module {module:?} not loaded: {reason}")]
    NotChecked { module: String, reason: String },
    #[error("module {module:?} was still being loaded by another process after {waited:?}")]
    ComingTimeout { module: String, waited: Duration },
    #[error("the load ran past its budget of {budget:?} {when} module {module:?}")]
    Deadline {
        module: String,
        budget: Duration,
        when: &'static str,
    },
    /// The watchdog rolled the load back while `module` was being inserted; `left`: that
    /// module, inserted after all and not removable.
    #[error("load stopped by the watchdog while module {module:?} was being inserted{}", if .left.is_empty() { String::new() } else { format!(", could not remove {:?}", .left) })]
    TakenOver { module: String, left: Vec<String> },
    /// Not recorded, so not provably modgate's: it is rolled back with the rest.
    #[error("module {module:?} was inserted but could not be recorded")]
    Unrecorded {
        module: String,
        #[source]
        source: Box<StateError>,
    },
    /// The cause is the source: the message says only what the rollback did.
    #[error("load failed, rolled back {rolled_back:?}{}", if .left.is_empty() { String::new() } else { format!(", could not remove {:?}", .left) })]
    RolledBack {
        #[source]
        cause: Box<LoadError>,
        rolled_back: Vec<String>,
        left: Vec<String>,
    },
}

/// What a load did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct LoadReport {
    /// Inserted by this request, in order.
    pub inserted: Vec<String>,
    /// Live (or built in) before this request, or loaded meanwhile by someone else.
    pub present: Vec<String>,
    /// Optional softdeps that failed, with why; they do not fail the request.
    pub skipped: Vec<(String, String)>,
}

pub struct Loader<'a> {
    pub root: &'a Root,
    pub kernel: &'a dyn Kernel,
    pub syscalls: &'a dyn ModuleSyscalls,
    /// The real module directory and the prefix the plan's paths carry.
    pub moddir: &'a Path,
    pub dirname: &'a str,
    /// How long to wait for a module another process is loading.
    pub coming_wait: Duration,
    /// When the policy checks module files: the checked images, loaded as they are
    /// with `init_module` instead of from their files.
    pub images: Option<&'a CheckedImages>,
    /// The load's budget, when it has one (the hook's).
    pub deadline: Option<&'a Deadline>,
}

/// Called right after each insertion, before anything else: the load's record says
/// the module went in (the proof recovery needs). A module it cannot record is rolled
/// back.
pub type RecordInsertion<'r> = dyn FnMut(&str) -> Result<(), StateError> + 'r;

impl Loader<'_> {
    pub fn load(&self, plan: &Plan, record: &mut RecordInsertion) -> Result<LoadReport, LoadError> {
        let mut report = LoadReport::default();
        let needs_insert = plan
            .steps
            .iter()
            .any(|s| matches!(s.action, Action::Insert { .. }));
        if needs_insert && !self.root.path("proc/modules").exists() {
            return Err(LoadError::NoModuleSupport(
                self.root.path("proc/modules").display().to_string(),
            ));
        }
        for step in &plan.steps {
            if let (Some(d), Action::Insert { .. }) = (self.deadline, &step.action) {
                if let Err(e) = d.check(&step.module, deadline::BEFORE_INSERTING) {
                    return Err(self.roll_back(e, &report.inserted));
                }
            }
            let result = match &step.action {
                Action::Loaded | Action::Builtin => {
                    report.present.push(step.module.clone());
                    Ok(())
                }
                Action::Coming => self.wait_coming(&step.module, &mut report),
                Action::Disabled { source, .. } => Err(LoadError::Disabled {
                    module: step.module.clone(),
                    source_file: source.clone(),
                }),
                Action::Missing => Err(LoadError::Missing {
                    module: step.module.clone(),
                }),
                Action::Insert { path, options } => {
                    self.insert(&step.module, path, options, &mut report, record)
                }
            };
            match result {
                Ok(()) => {}
                // The watchdog rolled back everything already.
                Err(e @ LoadError::TakenOver { .. }) => return Err(e),
                Err(e @ (LoadError::Deadline { .. } | LoadError::Unrecorded { .. })) => {
                    return Err(self.roll_back(e, &report.inserted))
                }
                Err(e) if !step.required => {
                    tracing::warn!(module = %step.module, error = %e, "optional softdep not loaded");
                    report.skipped.push((step.module.clone(), e.to_string()));
                }
                Err(e) => return Err(self.roll_back(e, &report.inserted)),
            }
        }
        Ok(report)
    }

    /// Waits for `module`, which another process is loading, at most `coming_wait` and
    /// never past the deadline, which leaves the rollback its time.
    fn wait_coming(&self, module: &str, report: &mut LoadReport) -> Result<(), LoadError> {
        let end = Instant::now() + self.coming_wait;
        let end = self.deadline.map_or(end, |d| end.min(d.at()));
        loop {
            match self.kernel.state(module) {
                ModState::Coming => {}
                ModState::Live | ModState::Builtin => {
                    report.present.push(module.to_string());
                    return Ok(());
                }
                // The other loader failed or it went away: nothing of ours to wait for.
                ModState::Going | ModState::Absent => {
                    return Err(LoadError::Insert {
                        module: module.to_string(),
                        reason: "another process was loading it and it did not come up".into(),
                        errno: libc::ENOENT,
                    })
                }
            }
            if Instant::now() >= end {
                if let Some(d) = self.deadline {
                    d.check(module, deadline::WAITING_FOR)?;
                }
                return Err(LoadError::ComingTimeout {
                    module: module.to_string(),
                    waited: self.coming_wait,
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn insert(
        &self,
        module: &str,
        path: &str,
        options: &str,
        report: &mut LoadReport,
        record: &mut RecordInsertion,
    ) -> Result<(), LoadError> {
        let file_err = |source| LoadError::File {
            module: module.to_string(),
            source,
        };
        let params = CString::new(options.trim()).map_err(|_| LoadError::Insert {
            module: module.to_string(),
            reason: "options contain a NUL byte".into(),
            errno: libc::EINVAL,
        })?;
        if let Some(images) = self.images {
            let image = images
                .image(module)
                .map_err(|reason| LoadError::NotChecked {
                    module: module.to_string(),
                    reason,
                })?;
            let result = self.syscall(module, || self.init(module, image, &params))?;
            return self.inserted(module, result, report, record);
        }
        let rel = modfile::relative(self.dirname, path);
        let file = modfile::open_beneath(self.moddir, rel).map_err(file_err)?;
        let mut head = [0u8; 6];
        let n = read_head(&file, &mut head).map_err(|source| {
            file_err(ModFileError::Open {
                path: path.into(),
                source,
            })
        })?;
        let kind = Compression::sniff(&head[..n]);
        // Decompressed before the deadline's watch on the insertion begins: only the
        // kernel's part cannot be stopped.
        let image = match kind {
            Compression::None => None,
            _ if self.kernel_decompresses(kind) => None,
            _ => Some(modfile::read_image(&file, kind, path).map_err(file_err)?),
        };
        let result = match image {
            Some(image) => self.syscall(module, || self.init(module, &image, &params))?,
            None => {
                let flags = match kind {
                    Compression::None => 0,
                    _ => MODULE_INIT_COMPRESSED_FILE,
                };
                let finit = || self.syscalls.finit_module(module, &file, &params, flags);
                match self.syscall(module, finit)? {
                    Err(e)
                        if kind == Compression::None && e.raw_os_error() == Some(libc::ENOSYS) =>
                    {
                        let image = modfile::read_image(&file, kind, path).map_err(file_err)?;
                        self.syscall(module, || self.init(module, &image, &params))?
                    }
                    r => r,
                }
            }
        };
        self.inserted(module, result, report, record)
    }

    /// One insertion syscall, under the deadline when there is one: refused once the
    /// budget ran out; `Err` also when the watchdog stopped the load meanwhile.
    fn syscall(
        &self,
        module: &str,
        call: impl FnOnce() -> io::Result<()>,
    ) -> Result<io::Result<()>, LoadError> {
        let Some(d) = self.deadline else {
            return Ok(call());
        };
        d.enter(module)?;
        let result = call();
        d.leave(module, result.is_ok(), self.syscalls)?;
        Ok(result)
    }

    /// Records what an insertion did.
    fn inserted(
        &self,
        module: &str,
        result: io::Result<()>,
        report: &mut LoadReport,
        record: &mut RecordInsertion,
    ) -> Result<(), LoadError> {
        match result {
            Ok(()) => {
                report.inserted.push(module.to_string());
                record(module).map_err(|source| LoadError::Unrecorded {
                    module: module.to_string(),
                    source: Box::new(source),
                })
            }
            // Someone else loaded it between the plan and now: it is theirs, not ours.
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                report.present.push(module.to_string());
                Ok(())
            }
            Err(e) => Err(LoadError::Insert {
                module: module.to_string(),
                reason: explain(&Diagnosis::read(self.root), module, &e),
                errno: e.raw_os_error().unwrap_or(0),
            }),
        }
    }

    fn init(&self, module: &str, image: &[u8], params: &CString) -> io::Result<()> {
        self.syscalls.init_module(module, image, params)
    }

    fn kernel_decompresses(&self, kind: Compression) -> bool {
        self.kernel.compression().as_deref() == Some(kind.kernel_name())
    }

    /// Removes, newest first, what this request inserted; returns the error to report.
    fn roll_back(&self, cause: LoadError, inserted: &[String]) -> LoadError {
        roll_back(self.syscalls, cause, inserted)
    }
}

/// Removes, newest first, what a request inserted; returns the error to report.
fn roll_back(syscalls: &dyn ModuleSyscalls, cause: LoadError, inserted: &[String]) -> LoadError {
    if inserted.is_empty() {
        return cause;
    }
    let (rolled_back, left) = remove_newest_first(syscalls, inserted);
    LoadError::RolledBack {
        cause: Box::new(cause),
        rolled_back,
        left,
    }
}

/// Removes `modules`, newest first: (removed, left).
fn remove_newest_first(
    syscalls: &dyn ModuleSyscalls,
    modules: &[String],
) -> (Vec<String>, Vec<String>) {
    let (mut removed, mut left) = (Vec::new(), Vec::new());
    for m in modules.iter().rev() {
        let ok = CString::new(m.as_str()).map(|c| syscalls.delete_module(&c));
        match ok {
            Ok(Ok(())) => removed.push(m.clone()),
            Ok(Err(e)) => {
                tracing::warn!(module = %m, error = %e, "could not roll back");
                left.push(m.clone());
            }
            Err(_) => left.push(m.clone()),
        }
    }
    (removed, left)
}

fn read_head(mut f: &std::fs::File, buf: &mut [u8]) -> io::Result<usize> {
    use std::io::{Read, Seek, SeekFrom};
    let mut n = 0;
    while n < buf.len() {
        let r = f.read(&mut buf[n..])?;
        if r == 0 {
            break;
        }
        n += r;
    }
    f.seek(SeekFrom::Start(0))?;
    Ok(n)
}
