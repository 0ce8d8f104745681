//! Checking a module's appended signature against the trusted certificates only.
//!
//! Like the kernel's `pkcs7_validate_trust` for a signature without certificates: the
//! SignerInfo's issuer+serial or subjectKeyIdentifier selects the key among the trusted
//! ones, and the claimed names are never believed on their own. Unlike the kernel, a chain
//! through certificates carried in the SignedData is never followed: the signer's own
//! certificate must be trusted.

use rsa::Pkcs1v15Sign;

use crate::digest::DigestAlg;
use crate::signature::{self, KeyKind, ModuleSignature, SignatureError};
use crate::trailer::{self, TrailerError};
use crate::trust::{PublicKey, TrustStore, TrustedCert};

/// How a check ended, coarse enough for a policy to decide on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureStatus {
    Verified,
    /// No signature trailer at all.
    Unsigned,
    /// A trailer or PKCS#7 that does not parse.
    Malformed,
    /// Well-formed, but with an algorithm, key type or shape this crate does not check.
    Unsupported,
    /// No trusted certificate matches the signer.
    Untrusted,
    /// A trusted certificate matches, but it must not sign modules (keyUsage).
    Refused,
    /// The signature does not verify: the content or the signature was changed, or
    /// another key signed it.
    BadSignature,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Trailer(#[from] TrailerError),
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("no trusted certificate for signer {issuer} serial {serial}")]
    UntrustedIssuerSerial { issuer: String, serial: String },
    #[error("no trusted certificate with subject key id {0}")]
    UntrustedKeyId(String),
    #[error("trusted certificate {subject} ({source_name}) is refused: {reason}")]
    CertRefused {
        subject: String,
        source_name: String,
        reason: String,
    },
    #[error(
        "trusted certificate {subject} has a {kind} key, which cannot check a {used:?} signature"
    )]
    KeyMismatch {
        subject: String,
        kind: String,
        used: KeyKind,
    },
    #[error("signed messageDigest does not match the module's {0} digest")]
    MessageDigestMismatch(DigestAlg),
    #[error("signature does not verify with trusted certificate {subject}")]
    BadSignature { subject: String },
}

impl VerifyError {
    pub fn status(&self) -> SignatureStatus {
        match self {
            VerifyError::Trailer(TrailerError::Unsigned) => SignatureStatus::Unsigned,
            VerifyError::Trailer(TrailerError::NotPkcs7 { .. }) => SignatureStatus::Unsupported,
            VerifyError::Trailer(_) => SignatureStatus::Malformed,
            VerifyError::Signature(e) => match e {
                SignatureError::UnsupportedDigest(_)
                | SignatureError::UnsupportedSignatureAlg(_)
                | SignatureError::SignerCount(_)
                | SignatureError::NotData(_)
                | SignatureError::Attached => SignatureStatus::Unsupported,
                _ => SignatureStatus::Malformed,
            },
            VerifyError::UntrustedIssuerSerial { .. } | VerifyError::UntrustedKeyId(_) => {
                SignatureStatus::Untrusted
            }
            VerifyError::CertRefused { .. } => SignatureStatus::Refused,
            VerifyError::KeyMismatch { .. } => SignatureStatus::Unsupported,
            VerifyError::MessageDigestMismatch(_) | VerifyError::BadSignature { .. } => {
                SignatureStatus::BadSignature
            }
        }
    }
}

/// A signature that verified, with the trusted certificate that verified it.
#[derive(Debug)]
pub struct Verified<'s> {
    pub signature: ModuleSignature,
    pub cert: &'s TrustedCert,
}

/// Splits the trailer off `image` (the bytes the kernel receives) and parses the PKCS#7.
/// Returns the content the signature covers and the parsed signature.
pub fn parse_image(image: &[u8]) -> Result<(&[u8], ModuleSignature), VerifyError> {
    let t = trailer::split(image)?;
    let sig = signature::parse(t.pkcs7)?;
    Ok((t.content, sig))
}

/// Verifies the appended signature of `image` against `store`.
pub fn verify<'s>(image: &[u8], store: &'s TrustStore) -> Result<Verified<'s>, VerifyError> {
    let (content, sig) = parse_image(image)?;
    let cert = verify_parsed(content, &sig, store)?;
    Ok(Verified {
        signature: sig,
        cert,
    })
}

/// Verifies an already parsed signature over `content`.
pub fn verify_parsed<'s>(
    content: &[u8],
    sig: &ModuleSignature,
    store: &'s TrustStore,
) -> Result<&'s TrustedCert, VerifyError> {
    let cert = store.find(&sig.signer).ok_or_else(|| match &sig.signer {
        signature::SignerId::IssuerSerial { issuer, .. } => VerifyError::UntrustedIssuerSerial {
            issuer: issuer.clone(),
            serial: sig.signer.key_hex(),
        },
        signature::SignerId::SubjectKeyId(_) => VerifyError::UntrustedKeyId(sig.signer.key_hex()),
    })?;
    if let Some(reason) = &cert.refused {
        return Err(VerifyError::CertRefused {
            subject: cert.subject.clone(),
            source_name: cert.source.clone(),
            reason: reason.clone(),
        });
    }
    let content_digest = sig.digest.digest(content);
    // With signed attributes the signature covers their DER (as a SET OF), and they carry
    // the content digest; without, it covers the content digest directly.
    let signed_digest = match &sig.signed_attrs {
        None => content_digest,
        Some(attrs) => {
            if attrs.message_digest != content_digest {
                return Err(VerifyError::MessageDigestMismatch(sig.digest));
            }
            sig.digest.digest(&attrs.der)
        }
    };
    let bad = || VerifyError::BadSignature {
        subject: cert.subject.clone(),
    };
    let mismatch = |kind: &str| VerifyError::KeyMismatch {
        subject: cert.subject.clone(),
        kind: kind.to_string(),
        used: sig.key_kind,
    };
    match (&cert.key, sig.key_kind) {
        (PublicKey::Rsa(k), KeyKind::Rsa) => {
            let scheme = match sig.digest {
                DigestAlg::Sha1 => Pkcs1v15Sign::new::<sha1::Sha1>(),
                DigestAlg::Sha224 => Pkcs1v15Sign::new::<sha2::Sha224>(),
                DigestAlg::Sha256 => Pkcs1v15Sign::new::<sha2::Sha256>(),
                DigestAlg::Sha384 => Pkcs1v15Sign::new::<sha2::Sha384>(),
                DigestAlg::Sha512 => Pkcs1v15Sign::new::<sha2::Sha512>(),
            };
            k.verify(scheme, &signed_digest, &sig.signature)
                .map_err(|_| bad())
        }
        (PublicKey::P256(k), KeyKind::Ecdsa) => {
            use p256::ecdsa::signature::hazmat::PrehashVerifier;
            let s = p256::ecdsa::Signature::from_der(&sig.signature).map_err(|_| bad())?;
            k.verify_prehash(&signed_digest, &s).map_err(|_| bad())
        }
        (PublicKey::P384(k), KeyKind::Ecdsa) => {
            use p384::ecdsa::signature::hazmat::PrehashVerifier;
            let s = p384::ecdsa::Signature::from_der(&sig.signature).map_err(|_| bad())?;
            k.verify_prehash(&signed_digest, &s).map_err(|_| bad())
        }
        (PublicKey::Rsa(_), _) => Err(mismatch("rsa")),
        (PublicKey::P256(_), _) => Err(mismatch("p256")),
        (PublicKey::P384(_), _) => Err(mismatch("p384")),
        (PublicKey::Unsupported(what), _) => Err(mismatch(what)),
    }?;
    Ok(cert)
}
