//! One report per module image: signature, hash, vermagic and taint, serialisable to JSON.

use crate::digest::{DigestAlg, Sha256Pin};
use crate::modinfo::{self, ModInfo, Taint};
use crate::signature::{KeyKind, SignerId};
use crate::trust::TrustStore;
use crate::verify::{self, SignatureStatus};

/// What the signature check found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SignatureReport {
    pub status: SignatureStatus,
    /// Why it is not verified, as one line; `None` when verified.
    pub reason: Option<String>,
    /// The issuer the SignerInfo names (unauthenticated).
    pub claimed_issuer: Option<String>,
    /// The serial (or subject key id) the SignerInfo names, as `modinfo`'s `sig_key`
    /// prints it (unauthenticated).
    pub claimed_key: Option<String>,
    /// The subject of the trusted certificate that verified the signature.
    pub signer: Option<String>,
    /// Where that certificate was loaded from.
    pub signer_source: Option<String>,
    /// Its validity window (not enforced, like the kernel).
    pub signer_not_after: Option<String>,
    pub hash_algo: Option<DigestAlg>,
    pub key_type: Option<KeyKind>,
    pub signed_attributes: bool,
    pub embedded_certificates: usize,
}

/// The report of one module image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verdict {
    /// Over the whole image the kernel receives (decompressed, trailer included).
    pub sha256: Sha256Pin,
    pub size: usize,
    pub signature: SignatureReport,
    pub modinfo: Option<ModInfo>,
    /// Why modinfo could not be read, if it could not.
    pub modinfo_error: Option<String>,
    pub taint: Taint,
    /// The kernel's taint letters for `taint` (e.g. "OE").
    pub taint_letters: String,
}

impl Verdict {
    pub fn verified(&self) -> bool {
        self.signature.status == SignatureStatus::Verified
    }
}

/// Checks one module image (the bytes the kernel receives: for a compressed file, the
/// decompressed image) against `store`.
pub fn check(image: &[u8], store: &TrustStore) -> Verdict {
    let signature = signature_report(image, store);
    let (modinfo, modinfo_error) = match modinfo::parse(image) {
        Ok(m) => (Some(m), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let unsigned = matches!(
        signature.status,
        SignatureStatus::Unsigned | SignatureStatus::Malformed
    );
    let taint = match &modinfo {
        Some(m) => m.taint(unsigned),
        // Unreadable modinfo: the kernel would refuse the module; report the worst.
        None => Taint {
            proprietary: true,
            out_of_tree: true,
            staging: false,
            unsigned,
        },
    };
    Verdict {
        sha256: Sha256Pin::of(image),
        size: image.len(),
        signature,
        modinfo,
        modinfo_error,
        taint_letters: taint.letters(),
        taint,
    }
}

fn signature_report(image: &[u8], store: &TrustStore) -> SignatureReport {
    let mut r = SignatureReport {
        status: SignatureStatus::Unsigned,
        reason: None,
        claimed_issuer: None,
        claimed_key: None,
        signer: None,
        signer_source: None,
        signer_not_after: None,
        hash_algo: None,
        key_type: None,
        signed_attributes: false,
        embedded_certificates: 0,
    };
    let (content, sig) = match verify::parse_image(image) {
        Ok(p) => p,
        Err(e) => {
            r.status = e.status();
            r.reason = Some(chain(&e));
            return r;
        }
    };
    if let SignerId::IssuerSerial { issuer, .. } = &sig.signer {
        r.claimed_issuer = Some(issuer.clone());
    }
    r.claimed_key = Some(sig.signer.key_hex());
    r.hash_algo = Some(sig.digest);
    r.key_type = Some(sig.key_kind);
    r.signed_attributes = sig.signed_attrs.is_some();
    r.embedded_certificates = sig.embedded_certificates;
    match verify::verify_parsed(content, &sig, store) {
        Ok(cert) => {
            r.status = SignatureStatus::Verified;
            r.signer = Some(cert.subject.clone());
            r.signer_source = Some(cert.source.clone());
            r.signer_not_after = Some(cert.not_after.clone());
        }
        Err(e) => {
            r.status = e.status();
            r.reason = Some(chain(&e));
        }
    }
    r
}

/// An error and its sources on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
