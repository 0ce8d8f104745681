//! The appended module signature: `content || PKCS#7 DER || struct module_signature ||
//! "~Module signature appended~\n"`, split with the same checks as the kernel's
//! `mod_verify_sig`/`mod_check_sig`, so a file the kernel would call malformed is malformed
//! here too.

/// The magic the kernel looks for at the very end of a module (`MODULE_SIG_STRING`).
pub const MAGIC: &[u8; 28] = b"~Module signature appended~\n";

/// `sizeof(struct module_signature)`.
pub const INFO_LEN: usize = 12;

/// `PKEY_ID_PKCS7`, the only identifier type the kernel accepts.
pub const PKEY_ID_PKCS7: u8 = 2;

/// A module split at its signature trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer<'a> {
    /// The bytes the signature covers: the module without the trailer.
    pub content: &'a [u8],
    /// The PKCS#7 (CMS) SignedData, DER.
    pub pkcs7: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrailerError {
    #[error("no module signature (the file does not end with the signature magic)")]
    Unsigned,
    #[error("module signature trailer is truncated ({len} bytes before the magic)")]
    Truncated { len: usize },
    #[error("module signature length {sig_len} does not fit in the {available} bytes before it")]
    TooLong { sig_len: u64, available: usize },
    #[error("module signature has id_type {id_type}, not PKCS#7 ({PKEY_ID_PKCS7})")]
    NotPkcs7 { id_type: u8 },
    #[error("module signature info has non-zero algo/hash/signer_len/key_id_len/padding")]
    NonZeroParams,
}

/// Splits `image` (the bytes the kernel receives) at its signature trailer.
pub fn split(image: &[u8]) -> Result<Trailer<'_>, TrailerError> {
    let Some(body) = image.strip_suffix(&MAGIC[..]) else {
        return Err(TrailerError::Unsigned);
    };
    // The kernel wants at least one byte more than the info block (`modlen <= sizeof(ms)`).
    if body.len() <= INFO_LEN {
        return Err(TrailerError::Truncated { len: body.len() });
    }
    let (rest, info) = body.split_at(body.len() - INFO_LEN);
    let sig_len = u32::from_be_bytes([info[8], info[9], info[10], info[11]]);
    // mod_check_sig: `sig_len >= file_len - sizeof(ms)` is refused, so the content is never
    // empty.
    if sig_len as usize >= rest.len() {
        return Err(TrailerError::TooLong {
            sig_len: u64::from(sig_len),
            available: rest.len(),
        });
    }
    let id_type = info[2];
    if id_type != PKEY_ID_PKCS7 {
        return Err(TrailerError::NotPkcs7 { id_type });
    }
    // algo, hash, signer_len, key_id_len and the three pad bytes.
    if info[..2].iter().chain(&info[3..8]).any(|&b| b != 0) {
        return Err(TrailerError::NonZeroParams);
    }
    let (content, pkcs7) = rest.split_at(rest.len() - sig_len as usize);
    Ok(Trailer { content, pkcs7 })
}

/// Appends a trailer to `content`, as the kernel's `scripts/sign-file` does: the PKCS#7
/// DER, the info block and the magic. For tests and tools that sign modules.
pub fn append(content: &[u8], pkcs7: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + pkcs7.len() + INFO_LEN + MAGIC.len());
    out.extend_from_slice(content);
    out.extend_from_slice(pkcs7);
    out.extend_from_slice(&[0, 0, PKEY_ID_PKCS7, 0, 0, 0, 0, 0]);
    // A signature longer than u32::MAX cannot be described; saturating keeps the function
    // total and `split` then refuses the result.
    let len = u32::try_from(pkcs7.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(MAGIC);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id_type: u8, sig_len: u32) -> Vec<u8> {
        let mut v = vec![0, 0, id_type, 0, 0, 0, 0, 0];
        v.extend_from_slice(&sig_len.to_be_bytes());
        v
    }

    #[test]
    fn round_trip() {
        let signed = append(b"ELF-content", b"SIGDER");
        let t = split(&signed).unwrap();
        assert_eq!(t.content, b"ELF-content");
        assert_eq!(t.pkcs7, b"SIGDER");
    }

    #[test]
    fn malformed_trailers() {
        let cat = |parts: &[&[u8]]| parts.concat();
        let cases: Vec<(&str, Vec<u8>, TrailerError)> = vec![
            ("no magic", b"plain module".to_vec(), TrailerError::Unsigned),
            ("empty", Vec::new(), TrailerError::Unsigned),
            ("half magic", MAGIC[4..].to_vec(), TrailerError::Unsigned),
            (
                "only magic",
                MAGIC.to_vec(),
                TrailerError::Truncated { len: 0 },
            ),
            (
                "info cut",
                cat(&[&[0, 0, 2, 0], MAGIC]),
                TrailerError::Truncated { len: 4 },
            ),
            (
                "exactly info",
                cat(&[&info(2, 0), MAGIC]),
                TrailerError::Truncated { len: 12 },
            ),
            (
                "sig_len past the start",
                cat(&[b"abc", &info(2, 1000), MAGIC]),
                TrailerError::TooLong {
                    sig_len: 1000,
                    available: 3,
                },
            ),
            (
                "sig_len leaves no content",
                cat(&[b"abc", &info(2, 3), MAGIC]),
                TrailerError::TooLong {
                    sig_len: 3,
                    available: 3,
                },
            ),
            (
                "sig_len u32::MAX",
                cat(&[b"abc", &info(2, u32::MAX), MAGIC]),
                TrailerError::TooLong {
                    sig_len: u64::from(u32::MAX),
                    available: 3,
                },
            ),
            (
                "pgp id_type",
                cat(&[b"abcd", &info(0, 2), MAGIC]),
                TrailerError::NotPkcs7 { id_type: 0 },
            ),
            (
                "x509 id_type",
                cat(&[b"abcd", &info(1, 2), MAGIC]),
                TrailerError::NotPkcs7 { id_type: 1 },
            ),
            (
                "non-zero hash",
                cat(&[b"abcd", &[0, 4, 2, 0, 0, 0, 0, 0, 0, 0, 0, 2], MAGIC]),
                TrailerError::NonZeroParams,
            ),
            (
                "non-zero pad",
                cat(&[b"abcd", &[0, 0, 2, 0, 0, 0, 0, 9, 0, 0, 0, 2], MAGIC]),
                TrailerError::NonZeroParams,
            ),
        ];
        for (name, data, want) in cases {
            assert_eq!(split(&data), Err(want), "{name}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        // Deterministic pseudo-random tails in front of the magic.
        let mut x: u32 = 0x1234_5678;
        for len in 0..200usize {
            let mut v = Vec::with_capacity(len + MAGIC.len());
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                v.push(x as u8);
            }
            v.extend_from_slice(MAGIC);
            if let Ok(t) = split(&v) {
                assert!(!t.content.is_empty());
                assert_eq!(
                    t.content.len() + t.pkcs7.len() + INFO_LEN + MAGIC.len(),
                    v.len()
                );
            }
        }
    }
}
