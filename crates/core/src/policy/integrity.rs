//! The integrity keys of a policy: what a module file must be before the kernel gets it.
//! Checking a file against them is the loader's job; this is what they say.

//!
//! The pin and taint types are the integrity crate's ([`Sha256Pin`], [`Taint`]): the policy
//! says what the checker reports, in the same words.

use std::collections::BTreeMap;

use modgate_integrity::{Sha256Pin, SignatureStatus, Taint, Verdict};
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

impl Integrity {
    /// Why the policy refuses the module image `verdict` describes, or `None` to let it
    /// through. `kernel_release` is the release modgate resolves against. The pin is
    /// looked at first (it is the most specific), then the signature, vermagic and taint.
    pub fn refusal(&self, module: &str, verdict: &Verdict, kernel_release: &str) -> Option<String> {
        if let Some(pin) = self.pins.get(module) {
            if *pin != verdict.sha256 {
                return Some(format!("{} does not match its pin {pin}", verdict.sha256));
            }
        }
        if self.require_signature && verdict.signature.status != SignatureStatus::Verified {
            let why = verdict
                .signature
                .reason
                .as_deref()
                .unwrap_or("not verified");
            return Some(match verdict.signature.status {
                SignatureStatus::Unsigned => "not signed (require_signature = true)".to_string(),
                _ => format!("signature not trusted: {why}"),
            });
        }
        if self.vermagic == Vermagic::Match {
            let release = verdict.modinfo.as_ref().and_then(|m| m.vermagic_release());
            match release {
                Some(r) if r == kernel_release => {}
                Some(r) => {
                    return Some(format!(
                        "built for kernel {r} (its vermagic), not {kernel_release} (vermagic = \"match\")"
                    ))
                }
                None => {
                    let why = verdict.modinfo_error.as_deref().unwrap_or("no vermagic entry");
                    return Some(format!("no readable vermagic ({why})"));
                }
            }
        }
        let tainted = verdict.taint.intersection(&self.deny_taint);
        if !tainted.is_empty() {
            return Some(format!(
                "would taint the kernel: {} (deny_taint)",
                tainted.names().join(", ")
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use modgate_integrity::{check, trailer, ModInfo, TrustStore};

    use super::*;

    fn rules() -> Integrity {
        Integrity {
            require_signature: false,
            trusted_certs: Vec::new(),
            pins: BTreeMap::new(),
            vermagic: Vermagic::Any,
            deny_taint: Taint::default(),
        }
    }

    /// The report of an unsigned image (no ELF: no modinfo), with modinfo filled in
    /// where a case needs it.
    fn verdict(image: &[u8], vermagic: Option<&str>) -> Verdict {
        let mut v = check(image, &TrustStore::new());
        if let Some(vm) = vermagic {
            v.modinfo = Some(ModInfo {
                vermagic: Some(vm.to_string()),
                intree: true,
                license: Some("GPL".into()),
                ..ModInfo::default()
            });
            v.taint = v.modinfo.as_ref().unwrap().taint(true);
        }
        v
    }

    #[test]
    fn each_key_refuses_for_its_own_reason() {
        let image = b"not a module".to_vec();
        let signed_by_nobody = trailer::append(&image, b"\x30\x00");
        let kv = "6.1.0-48-amd64";
        let good = verdict(&image, Some("6.1.0-48-amd64 SMP mod_unload modversions "));
        let foreign = verdict(&image, Some("6.1.0-99-amd64 SMP mod_unload modversions "));
        let pinned = |pin: Sha256Pin| Integrity {
            pins: [("m".to_string(), pin)].into(),
            ..rules()
        };
        let table: Vec<(&str, Integrity, Verdict, Option<&str>)> = vec![
            ("nothing asked", rules(), good.clone(), None),
            (
                "pin matches",
                pinned(Sha256Pin::of(&image)),
                good.clone(),
                None,
            ),
            (
                "pin differs",
                pinned(Sha256Pin::of(b"other")),
                good.clone(),
                Some("does not match its pin sha256:"),
            ),
            (
                "unsigned",
                Integrity {
                    require_signature: true,
                    ..rules()
                },
                good.clone(),
                Some("not signed"),
            ),
            (
                "malformed signature",
                Integrity {
                    require_signature: true,
                    ..rules()
                },
                verdict(&signed_by_nobody, None),
                Some("signature not trusted: "),
            ),
            (
                "same release",
                Integrity {
                    vermagic: Vermagic::Match,
                    ..rules()
                },
                good.clone(),
                None,
            ),
            (
                "foreign release",
                Integrity {
                    vermagic: Vermagic::Match,
                    ..rules()
                },
                foreign.clone(),
                Some("built for kernel 6.1.0-99-amd64 (its vermagic), not 6.1.0-48-amd64"),
            ),
            (
                "no modinfo",
                Integrity {
                    vermagic: Vermagic::Match,
                    ..rules()
                },
                verdict(&image, None),
                Some("no readable vermagic"),
            ),
            (
                "denied taint",
                Integrity {
                    deny_taint: Taint {
                        unsigned: true,
                        staging: true,
                        ..Taint::default()
                    },
                    ..rules()
                },
                good.clone(),
                Some("would taint the kernel: unsigned (deny_taint)"),
            ),
            (
                "other taint",
                Integrity {
                    deny_taint: Taint {
                        staging: true,
                        ..Taint::default()
                    },
                    ..rules()
                },
                good.clone(),
                None,
            ),
        ];
        for (what, rules, v, want) in table {
            let got = rules.refusal("m", &v, kv);
            match want {
                None => assert_eq!(got, None, "{what}"),
                Some(w) => {
                    let got = got.unwrap_or_default();
                    assert!(got.contains(w), "{what}: {got}");
                }
            }
        }
    }
}
