//! The digest algorithms a module signature may name, and the `sha256:HEX` pin of a module
//! image.

use std::fmt;
use std::str::FromStr;

use const_oid::db::rfc5912;
use const_oid::ObjectIdentifier;
use sha2::Digest;

/// A digest algorithm the kernel can sign modules with and this crate can check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DigestAlg {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl DigestAlg {
    /// From a CMS digestAlgorithm OID; `None` for anything else (sm3, sha3, streebog...).
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        Some(match *oid {
            rfc5912::ID_SHA_1 => DigestAlg::Sha1,
            rfc5912::ID_SHA_224 => DigestAlg::Sha224,
            rfc5912::ID_SHA_256 => DigestAlg::Sha256,
            rfc5912::ID_SHA_384 => DigestAlg::Sha384,
            rfc5912::ID_SHA_512 => DigestAlg::Sha512,
            _ => return None,
        })
    }

    /// The name `modinfo` prints as `sig_hashalgo`.
    pub fn name(self) -> &'static str {
        match self {
            DigestAlg::Sha1 => "sha1",
            DigestAlg::Sha224 => "sha224",
            DigestAlg::Sha256 => "sha256",
            DigestAlg::Sha384 => "sha384",
            DigestAlg::Sha512 => "sha512",
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            DigestAlg::Sha1 => sha1::Sha1::digest(data).to_vec(),
            DigestAlg::Sha224 => sha2::Sha224::digest(data).to_vec(),
            DigestAlg::Sha256 => sha2::Sha256::digest(data).to_vec(),
            DigestAlg::Sha384 => sha2::Sha384::digest(data).to_vec(),
            DigestAlg::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

impl fmt::Display for DigestAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The sha256 of a module image, written `sha256:` and 64 lower-case hex digits.
///
/// Computed over the bytes the kernel receives: for a compressed module file, the
/// decompressed image (signature trailer included), not the file on disk.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256Pin(pub [u8; 32]);

impl Sha256Pin {
    pub fn of(image: &[u8]) -> Self {
        Sha256Pin(sha2::Sha256::digest(image).into())
    }
}

impl fmt::Display for Sha256Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for Sha256Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid hash pin {0:?}: expected sha256: and 64 hex digits")]
pub struct PinError(pub String);

impl FromStr for Sha256Pin {
    type Err = PinError;
    fn from_str(s: &str) -> Result<Self, PinError> {
        let bad = || PinError(s.to_string());
        let h = s.strip_prefix("sha256:").ok_or_else(bad)?;
        if h.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            let pair = h.get(2 * i..2 * i + 2).ok_or_else(bad)?;
            *o = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        Ok(Sha256Pin(out))
    }
}

impl serde::Serialize for Sha256Pin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Sha256Pin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Lower-case hex without separators.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Upper-case hex with colons, as `modinfo` prints `sig_key`.
pub(crate) fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_known_value_and_round_trip() {
        // sha256("abc") from FIPS 180-2.
        let p = Sha256Pin::of(b"abc");
        let s = p.to_string();
        assert_eq!(
            s,
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(s.parse::<Sha256Pin>().unwrap(), p);
        assert_eq!(
            s.to_uppercase()
                .replace("SHA256", "sha256")
                .parse::<Sha256Pin>()
                .unwrap(),
            p
        );
    }

    #[test]
    fn pin_rejects_bad_text() {
        for bad in [
            "",
            "sha256:",
            "sha1:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a",
            "sha256:zz7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "sha256:é816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ] {
            assert!(bad.parse::<Sha256Pin>().is_err(), "{bad}");
        }
    }

    #[test]
    fn digest_lengths_and_names() {
        for (alg, len, oid) in [
            (DigestAlg::Sha1, 20, rfc5912::ID_SHA_1),
            (DigestAlg::Sha224, 28, rfc5912::ID_SHA_224),
            (DigestAlg::Sha256, 32, rfc5912::ID_SHA_256),
            (DigestAlg::Sha384, 48, rfc5912::ID_SHA_384),
            (DigestAlg::Sha512, 64, rfc5912::ID_SHA_512),
        ] {
            assert_eq!(alg.digest(b"x").len(), len);
            assert_eq!(DigestAlg::from_oid(&oid), Some(alg));
        }
        // sm3 (1.2.156.10197.1.401) is not supported.
        let sm3 = ObjectIdentifier::new_unwrap("1.2.156.10197.1.401");
        assert_eq!(DigestAlg::from_oid(&sm3), None);
        assert_eq!(colon_hex(&[0x10, 0x42, 0xd1]), "10:42:D1");
    }
}
