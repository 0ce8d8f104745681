//! The integrity keys of a policy: what a module file must be before the kernel gets it.
//! Checking a file against them is the loader's job; this is what they say.

//!
//! The pin and taint types are the integrity crate's ([`Sha256Pin`], [`Taint`]): the policy
//! says what the checker reports, in the same words.

use std::collections::BTreeMap;

use modgate_integrity::{Sha256Pin, Taint};
use serde::{Deserialize, Serialize};

/// `vermagic = "any" | "match"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Vermagic {
    /// Leave it to the kernel (which, with modversions, does not compare the release).
    Any,
    /// The module's `vermagic` must name the kernel release modgate resolves against.
    Match,
}

/// The integrity keys, as the effective policy holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Integrity {
    pub require_signature: bool,
    /// PEM or DER X.509 files, or directories of them, under the root.
    pub trusted_certs: Vec<String>,
    /// Module name (normalised to underscores) to the hash its file must have.
    pub pins: BTreeMap<String, Sha256Pin>,
    pub vermagic: Vermagic,
    /// The taint flags a module must not have.
    pub deny_taint: Taint,
}

impl Integrity {
    /// Whether any key asks for a look at the module files (the load path pays for it
    /// only then).
    pub fn checks_files(&self) -> bool {
        self.require_signature
            || !self.pins.is_empty()
            || self.vermagic == Vermagic::Match
            || !self.deny_taint.is_empty()
    }
}
