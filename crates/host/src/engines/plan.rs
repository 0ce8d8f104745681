//! `modgate install TARGET`'s plan: each engine builds an [`InstallPlan`] from the files under
//! the root (through its merge functions); the plan is printed (`--dry-run`) or applied.
//! Nothing is written when a file already says what modgate needs, so a second run
//! changes nothing.

use std::path::{Path, PathBuf};

use super::check::exec_problems;
use super::{Edit, EngineError, HookCommand};
use crate::configfile::{self, ConfigFileError};
use crate::root::Root;

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    File(#[from] ConfigFileError),
    /// The file named in `source` could not be merged; no file was touched.
    #[error("nothing written")]
    Malformed {
        #[source]
        source: EngineError,
    },
    #[error("{0}")]
    Refused(String),
}

/// One change to the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write a file (keeping the old one as `.bak` when it exists).
    Write {
        path: PathBuf,
        shown: String,
        text: String,
        existed: bool,
        mode: u32,
    },
    /// Make `path` a symbolic link to `target`; an existing file is kept as `.bak`.
    Link {
        path: PathBuf,
        shown: String,
        target: String,
        existed: bool,
    },
    /// Move `from` back over `path` (undoing a Link).
    Restore {
        path: PathBuf,
        shown: String,
        from: PathBuf,
    },
}

#[derive(Debug, Default)]
pub struct InstallPlan {
    pub actions: Vec<Action>,
    /// Files that already say what modgate needs.
    pub unchanged: Vec<String>,
    /// Things the operator must know, printed after the changes (how to run, what
    /// would still fail).
    pub notes: Vec<String>,
}

impl InstallPlan {
    /// Adds a file write when the edit changed something.
    pub(crate) fn write(
        &mut self,
        root: &Root,
        shown: &str,
        edit: Edit,
        existed: bool,
        mode: u32,
    ) -> Result<(), InstallError> {
        if edit.changed {
            self.actions.push(Action::Write {
                path: under(root, shown)?,
                shown: shown.to_string(),
                text: edit.text,
                existed,
                mode,
            });
        } else {
            self.unchanged.push(shown.to_string());
        }
        Ok(())
    }

    /// Warns when the runtime wrapper is not there (yet).
    pub(crate) fn wrapper_note(&mut self, root: &Root, wrapper: &str) {
        if root.resolve(wrapper).and_then(std::fs::metadata).is_err() {
            self.notes.push(format!(
                "warning: {wrapper} does not exist: link it to modgate (ln -s modgate {wrapper}) or give --wrapper"
            ));
        }
    }

    /// What `--dry-run` prints: each change and the full text of each file.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for a in &self.actions {
            match a {
                Action::Write {
                    shown,
                    text,
                    existed,
                    ..
                } => {
                    if *existed {
                        out.push_str(&format!(
                            "would write {shown} (keeping the old file as {shown}.bak):\n"
                        ));
                    } else {
                        out.push_str(&format!("would create {shown}:\n"));
                    }
                    for l in text.lines() {
                        out.push_str("    ");
                        out.push_str(l);
                        out.push('\n');
                    }
                }
                Action::Link {
                    shown,
                    target,
                    existed,
                    ..
                } => {
                    out.push_str(&format!("would make {shown} a link to {target}"));
                    if *existed {
                        out.push_str(&format!(" (keeping the old file as {shown}.bak)"));
                    }
                    out.push('\n');
                }
                Action::Restore { shown, .. } => {
                    out.push_str(&format!("would move {shown}.bak back to {shown}\n"));
                }
            }
        }
        for u in &self.unchanged {
            out.push_str(&format!("unchanged: {u}\n"));
        }
        out
    }

    /// Carries the plan out; returns one line per change made.
    pub fn apply(&self) -> Result<Vec<String>, InstallError> {
        let mut done = Vec::new();
        for a in &self.actions {
            match a {
                Action::Write {
                    path,
                    shown,
                    text,
                    existed,
                    mode,
                } => {
                    if *existed {
                        configfile::backup(path)?;
                        done.push(format!("wrote {shown} (old file kept as {shown}.bak)"));
                    } else {
                        done.push(format!("created {shown}"));
                    }
                    configfile::write_atomic(path, text.as_bytes(), *mode)?;
                }
                Action::Link {
                    path,
                    shown,
                    target,
                    existed,
                } => {
                    if *existed {
                        let bak = configfile::backup_path(path);
                        // rename keeps the old binary itself (owner, mode, content).
                        std::fs::rename(path, &bak).map_err(|source| ConfigFileError::Write {
                            path: bak.clone(),
                            source,
                        })?;
                        done.push(format!("moved the old {shown} to {shown}.bak"));
                    }
                    configfile::link_atomic(path, target)?;
                    done.push(format!("linked {shown} -> {target}"));
                }
                Action::Restore { path, shown, from } => {
                    std::fs::rename(from, path).map_err(|source| ConfigFileError::Write {
                        path: path.clone(),
                        source,
                    })?;
                    done.push(format!("restored {shown} from {shown}.bak"));
                }
            }
        }
        for u in &self.unchanged {
            done.push(format!("unchanged: {u}"));
        }
        Ok(done)
    }
}

/// The hook command and where it is checked on this root.
#[derive(Debug, Clone)]
pub struct HookTarget {
    pub hook: HookCommand,
}

impl HookTarget {
    /// Why an engine that checks its hooks like iSulad would refuse this binary.
    pub fn problems(&self, root: &Root) -> Vec<String> {
        exec_problems(root, &self.hook.path)
    }
}

/// Reads a file under the root; a file that is not text is refused like a malformed one.
pub(crate) fn read(root: &Root, shown: &str) -> Result<Option<String>, InstallError> {
    Ok(configfile::read_optional(&under(root, shown)?)?)
}

/// Where host path `shown` is under the root, links resolved inside it (with `--root`,
/// a link to `/etc/...` means the root's `/etc`, never the running host's).
pub(crate) fn under(root: &Root, shown: &str) -> Result<PathBuf, ConfigFileError> {
    root.resolve(shown).map_err(|source| ConfigFileError::Read {
        path: root.path(shown),
        source,
    })
}

pub(crate) fn malformed(source: EngineError) -> InstallError {
    InstallError::Malformed { source }
}

/// A host path as given: `/etc/x` or `etc/x` both mean `/etc/x` under the root.
pub fn host_path(p: &Path) -> String {
    format!("/{}", p.to_string_lossy().trim_start_matches('/'))
}
