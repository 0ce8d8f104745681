//! The PKCS#7/CMS SignedData of a module signature, reduced to what verification needs:
//! who claims to have signed (issuer+serial or subjectKeyIdentifier), with which digest
//! and key type, the signature bytes and the signed attributes if any. Nothing here is
//! trusted: certificates carried inside the SignedData are only counted.

use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use const_oid::db::{rfc5911, rfc5912};
use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use x509_cert::name::Name;

use crate::digest::{colon_hex, DigestAlg};

/// Who the SignerInfo says signed. Unauthenticated until a trusted certificate matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerId {
    IssuerSerial {
        /// The issuer Name, DER (compared byte for byte, like the kernel does).
        issuer_der: Vec<u8>,
        /// The issuer as RFC 4514 text, for reports.
        issuer: String,
        /// The serial's content octets.
        serial: Vec<u8>,
    },
    SubjectKeyId(Vec<u8>),
}

impl SignerId {
    /// The serial (or key id) as `modinfo` prints `sig_key`.
    pub fn key_hex(&self) -> String {
        match self {
            SignerId::IssuerSerial { serial, .. } => colon_hex(serial),
            SignerId::SubjectKeyId(k) => colon_hex(k),
        }
    }
}

/// The family of the signing key, from the SignerInfo's signatureAlgorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    Rsa,
    Ecdsa,
}

/// Signed (authenticated) attributes, when present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedAttrs {
    /// The DER of the attributes as a SET OF (tag 0x31): what the signature covers.
    pub der: Vec<u8>,
    /// The messageDigest attribute's value.
    pub message_digest: Vec<u8>,
}

/// A parsed module signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSignature {
    pub signer: SignerId,
    pub digest: DigestAlg,
    pub key_kind: KeyKind,
    pub signature: Vec<u8>,
    pub signed_attrs: Option<SignedAttrs>,
    /// Certificates carried in the SignedData. Never used as trust anchors.
    pub embedded_certificates: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("module signature is not valid DER PKCS#7")]
    Der(#[source] der::Error),
    #[error("module signature is a {0}, not a PKCS#7 SignedData")]
    NotSignedData(ObjectIdentifier),
    #[error("module signature signs content of type {0}, not data")]
    NotData(ObjectIdentifier),
    #[error("module signature is not detached (it carries its content)")]
    Attached,
    #[error("module signature has {0} signers; exactly one is supported")]
    SignerCount(usize),
    #[error("module signature uses digest algorithm {0}, which is not supported")]
    UnsupportedDigest(ObjectIdentifier),
    #[error("module signature uses signature algorithm {0}, which is not supported")]
    UnsupportedSignatureAlg(ObjectIdentifier),
    #[error("module signature algorithm {sig} does not go with digest {digest}")]
    AlgorithmMismatch {
        sig: ObjectIdentifier,
        digest: DigestAlg,
    },
    #[error("module signature has signed attributes without one messageDigest")]
    MissingMessageDigest,
    #[error("module signature's signed content-type attribute is not data")]
    BadContentTypeAttr,
}

/// Parses the DER PKCS#7 of a module signature.
pub fn parse(pkcs7: &[u8]) -> Result<ModuleSignature, SignatureError> {
    let ci = ContentInfo::from_der(pkcs7).map_err(SignatureError::Der)?;
    if ci.content_type != rfc5911::ID_SIGNED_DATA {
        return Err(SignatureError::NotSignedData(ci.content_type));
    }
    let sd: SignedData = ci.content.decode_as().map_err(SignatureError::Der)?;
    // The kernel refuses module signatures over anything but id-data.
    if sd.encap_content_info.econtent_type != rfc5911::ID_DATA {
        return Err(SignatureError::NotData(sd.encap_content_info.econtent_type));
    }
    if sd.encap_content_info.econtent.is_some() {
        return Err(SignatureError::Attached);
    }
    let embedded_certificates = sd
        .certificates
        .as_ref()
        .map(|c| {
            c.0.iter()
                .filter(|c| matches!(c, CertificateChoices::Certificate(_)))
                .count()
        })
        .unwrap_or(0);
    let signers = sd.signer_infos.0.as_slice();
    let [si] = signers else {
        return Err(SignatureError::SignerCount(signers.len()));
    };
    let digest = DigestAlg::from_oid(&si.digest_alg.oid)
        .ok_or(SignatureError::UnsupportedDigest(si.digest_alg.oid))?;
    let key_kind = key_kind(&si.signature_algorithm.oid, digest)?;
    let signer = match &si.sid {
        SignerIdentifier::IssuerAndSerialNumber(is) => SignerId::IssuerSerial {
            issuer_der: is.issuer.to_der().map_err(SignatureError::Der)?,
            issuer: name_text(&is.issuer),
            serial: is.serial_number.as_bytes().to_vec(),
        },
        SignerIdentifier::SubjectKeyIdentifier(ski) => {
            SignerId::SubjectKeyId(ski.0.as_bytes().to_vec())
        }
    };
    let signed_attrs = match &si.signed_attrs {
        None => None,
        Some(attrs) => {
            let mut message_digest = None;
            for a in attrs.iter() {
                let values = a.values.as_slice();
                if a.oid == rfc5911::ID_MESSAGE_DIGEST {
                    let [v] = values else {
                        return Err(SignatureError::MissingMessageDigest);
                    };
                    if message_digest.is_some() {
                        return Err(SignatureError::MissingMessageDigest);
                    }
                    let os: der::asn1::OctetString = v.decode_as().map_err(SignatureError::Der)?;
                    message_digest = Some(os.as_bytes().to_vec());
                } else if a.oid == rfc5911::ID_CONTENT_TYPE {
                    let ok = match values {
                        [v] => v.decode_as::<ObjectIdentifier>().ok() == Some(rfc5911::ID_DATA),
                        _ => false,
                    };
                    if !ok {
                        return Err(SignatureError::BadContentTypeAttr);
                    }
                }
            }
            // A SetOfVec encodes with the SET OF tag (0x31), which is what RFC 5652 5.4
            // says the signature covers (not the [0] IMPLICIT tag of the SignerInfo).
            Some(SignedAttrs {
                der: attrs.to_der().map_err(SignatureError::Der)?,
                message_digest: message_digest.ok_or(SignatureError::MissingMessageDigest)?,
            })
        }
    };
    Ok(ModuleSignature {
        signer,
        digest,
        key_kind,
        signature: si.signature.as_bytes().to_vec(),
        signed_attrs,
        embedded_certificates,
    })
}

/// rsaEncryption and id-ecPublicKey leave the digest to digestAlgorithm; the combined
/// OIDs must agree with it.
fn key_kind(oid: &ObjectIdentifier, digest: DigestAlg) -> Result<KeyKind, SignatureError> {
    let (kind, implied) = match *oid {
        rfc5912::RSA_ENCRYPTION => (KeyKind::Rsa, None),
        rfc5912::SHA_1_WITH_RSA_ENCRYPTION => (KeyKind::Rsa, Some(DigestAlg::Sha1)),
        rfc5912::SHA_224_WITH_RSA_ENCRYPTION => (KeyKind::Rsa, Some(DigestAlg::Sha224)),
        rfc5912::SHA_256_WITH_RSA_ENCRYPTION => (KeyKind::Rsa, Some(DigestAlg::Sha256)),
        rfc5912::SHA_384_WITH_RSA_ENCRYPTION => (KeyKind::Rsa, Some(DigestAlg::Sha384)),
        rfc5912::SHA_512_WITH_RSA_ENCRYPTION => (KeyKind::Rsa, Some(DigestAlg::Sha512)),
        rfc5912::ID_EC_PUBLIC_KEY => (KeyKind::Ecdsa, None),
        rfc5912::ECDSA_WITH_SHA_224 => (KeyKind::Ecdsa, Some(DigestAlg::Sha224)),
        rfc5912::ECDSA_WITH_SHA_256 => (KeyKind::Ecdsa, Some(DigestAlg::Sha256)),
        rfc5912::ECDSA_WITH_SHA_384 => (KeyKind::Ecdsa, Some(DigestAlg::Sha384)),
        rfc5912::ECDSA_WITH_SHA_512 => (KeyKind::Ecdsa, Some(DigestAlg::Sha512)),
        other => return Err(SignatureError::UnsupportedSignatureAlg(other)),
    };
    match implied {
        Some(d) if d != digest => Err(SignatureError::AlgorithmMismatch { sig: *oid, digest }),
        _ => Ok(kind),
    }
}

/// RFC 4514 text of a Name, for reports.
pub(crate) fn name_text(name: &Name) -> String {
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_a_der_error() {
        for bad in [
            &b""[..],
            b"\x30",
            b"\x30\x03\x06\x01\x00",
            b"not der at all",
        ] {
            assert!(matches!(parse(bad), Err(SignatureError::Der(_))), "{bad:?}");
        }
    }

    #[test]
    fn combined_algorithms_must_match_the_digest() {
        assert_eq!(
            key_kind(&rfc5912::SHA_256_WITH_RSA_ENCRYPTION, DigestAlg::Sha256),
            Ok(KeyKind::Rsa)
        );
        assert!(matches!(
            key_kind(&rfc5912::SHA_256_WITH_RSA_ENCRYPTION, DigestAlg::Sha512),
            Err(SignatureError::AlgorithmMismatch { .. })
        ));
        assert_eq!(
            key_kind(&rfc5912::ECDSA_WITH_SHA_384, DigestAlg::Sha384),
            Ok(KeyKind::Ecdsa)
        );
        assert!(matches!(
            key_kind(&rfc5912::ID_RSASSA_PSS, DigestAlg::Sha256),
            Err(SignatureError::UnsupportedSignatureAlg(_))
        ));
    }
}
