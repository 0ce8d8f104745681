//! The policy's integrity keys on the load path. When the policy asks for a look at the
//! module files, every module the plan inserts is read once into memory (decompressed),
//! checked, and that same buffer is what the loader hands to `init_module`: nothing can
//! change between the check and the load. The whole closure is checked before anything
//! is inserted. When the policy asks for nothing, none of this runs.

use std::collections::HashMap;

use modgate_core::policy::Policy;
use modgate_core::{Action, Plan};
use modgate_integrity::{TrustError, TrustStore};

use crate::modfile::{self, ModFileError};
use crate::root::Root;

#[derive(Debug, thiserror::Error)]
pub enum IntegrityError {
    #[error("cannot read trusted certificates {path} named by policy {policy}")]
    Certs {
        path: String,
        policy: String,
        #[source]
        source: Box<TrustError>,
    },
    #[error("cannot find trusted certificates {path} named by policy {policy}")]
    CertsPath {
        path: String,
        policy: String,
        #[source]
        source: std::io::Error,
    },
    #[error("module {module:?}")]
    File {
        module: String,
        #[source]
        source: ModFileError,
    },
    #[error("module {module:?} refused by policy {policy}: {reason}")]
    Refused {
        module: String,
        policy: String,
        reason: String,
    },
}

/// The module images that passed, keyed by module name, to be loaded as they are; and
/// the optional softdeps that did not, which are left out like any failed softdep.
#[derive(Debug, Default)]
pub struct CheckedImages {
    images: HashMap<String, Vec<u8>>,
    refused: HashMap<String, String>,
}

impl CheckedImages {
    /// The checked image of `module`, or why there is none.
    pub fn image(&self, module: &str) -> Result<&[u8], String> {
        if let Some(i) = self.images.get(module) {
            return Ok(i);
        }
        Err(self
            .refused
            .get(module)
            .cloned()
            .unwrap_or_else(|| "it was not checked against the policy's integrity keys".into()))
    }
}

/// The trusted certificates the policy names, read under `root`.
pub fn trust_store(root: &Root, policy: &Policy) -> Result<TrustStore, IntegrityError> {
    let mut store = TrustStore::new();
    for p in &policy.integrity.trusted_certs {
        let path = root
            .resolve(p)
            .map_err(|source| IntegrityError::CertsPath {
                path: p.clone(),
                policy: policy.source.clone(),
                source,
            })?;
        store
            .load_path(&path)
            .map_err(|source| IntegrityError::Certs {
                path: p.clone(),
                policy: policy.source.clone(),
                source: Box::new(source),
            })?;
    }
    Ok(store)
}

/// Reads and checks every module `plan` inserts. `None` when the policy asks for no
/// look at the files: the loader then loads them from their files, as without a policy.
/// `moddir`/`dirname`: the module directory and the prefix the plan's paths carry;
/// `release`: the kernel release modgate resolved against.
pub fn check_plan(
    root: &Root,
    policy: &Policy,
    plan: &Plan,
    moddir: &std::path::Path,
    dirname: &str,
    release: &str,
) -> Result<Option<CheckedImages>, IntegrityError> {
    if !policy.integrity.checks_files() {
        return Ok(None);
    }
    // Only a required signature needs the certificates (the default names a directory
    // that may well not exist on a host that only pins or checks vermagic).
    let store = if policy.integrity.require_signature {
        trust_store(root, policy)?
    } else {
        TrustStore::new()
    };
    let mut checked = CheckedImages::default();
    for step in &plan.steps {
        let Action::Insert { path, .. } = &step.action else {
            continue;
        };
        let module = &step.module;
        let image =
            modfile::read_module(moddir, modfile::relative(dirname, path)).map_err(|source| {
                IntegrityError::File {
                    module: module.clone(),
                    source,
                }
            })?;
        let verdict = modgate_integrity::check(&image, &store);
        match policy.integrity.refusal(module, &verdict, release) {
            None => {
                checked.images.insert(module.clone(), image);
            }
            Some(reason) if !step.required => {
                tracing::warn!(module = %module, reason = %reason, "optional softdep refused by the policy's integrity keys");
                checked.refused.insert(
                    module.clone(),
                    format!("refused by policy {}: {reason}", policy.source),
                );
            }
            Some(reason) => {
                return Err(IntegrityError::Refused {
                    module: module.clone(),
                    policy: policy.source.clone(),
                    reason,
                })
            }
        }
    }
    Ok(Some(checked))
}
