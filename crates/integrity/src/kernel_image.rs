//! The X.509 certificates a kernel image carries (its `.builtin_trusted_keys`, among them
//! the per-build module signing key): unpack the bzImage's compressed payload and scan it
//! for DER certificates.

use std::io::{self, Read};

use der::Decode;
use x509_cert::Certificate;

#[derive(Debug, thiserror::Error)]
pub enum KernelImageError {
    #[error("not a kernel image (no bzImage header, ELF header or compressed stream)")]
    NotKernelImage,
    #[error("bzImage payload lies outside the file")]
    PayloadBounds,
    #[error("kernel payload is {0}-compressed, which is not supported")]
    Unsupported(&'static str),
    #[error("cannot decompress the {kind} kernel payload")]
    Decompress {
        kind: &'static str,
        #[source]
        source: io::Error,
    },
}

/// The DER of every distinct X.509 certificate inside a kernel image: a bzImage (as in
/// `/boot/vmlinuz-*`), an uncompressed ELF `vmlinux`, or a bare gzip/xz/zstd/lzma stream.
pub fn extract_certs(image: &[u8]) -> Result<Vec<Vec<u8>>, KernelImageError> {
    let payload = kernel_payload(image)?;
    Ok(scan_certs(&payload))
}

/// The uncompressed kernel (vmlinux) of `image`.
pub fn kernel_payload(image: &[u8]) -> Result<Vec<u8>, KernelImageError> {
    if image.starts_with(b"\x7fELF") {
        return Ok(image.to_vec());
    }
    let compressed = match bzimage_payload(image) {
        Some(p) => p?,
        None => image,
    };
    decompress(compressed)
}

/// The compressed payload of a bzImage (boot protocol 2.08+), or `None` if `image` has no
/// bzImage header.
fn bzimage_payload(image: &[u8]) -> Option<Result<&[u8], KernelImageError>> {
    if image.get(0x202..0x206)? != b"HdrS" {
        return None;
    }
    let le16 = |o: usize| {
        image
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let le32 = |o: usize| {
        image
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let version = le16(0x206)?;
    if version < 0x208 {
        return Some(Err(KernelImageError::Unsupported("pre-2.08 bzImage")));
    }
    let setup_sects = match *image.get(0x1f1)? {
        0 => 4,
        n => usize::from(n),
    };
    let (Some(off), Some(len)) = (le32(0x248), le32(0x24c)) else {
        return Some(Err(KernelImageError::PayloadBounds));
    };
    let start = (setup_sects + 1) * 512 + off;
    Some(
        start
            .checked_add(len)
            .and_then(|end| image.get(start..end))
            .ok_or(KernelImageError::PayloadBounds),
    )
}

fn decompress(data: &[u8]) -> Result<Vec<u8>, KernelImageError> {
    let fail = |kind: &'static str| move |source| KernelImageError::Decompress { kind, source };
    let other = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
    let mut out = Vec::new();
    if data.starts_with(b"\x1f\x8b") {
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .map_err(fail("gzip"))?;
    } else if data.starts_with(b"\xfd7zXZ\0") {
        out = crate::xz::decompress(data).map_err(fail("xz"))?;
    } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let mut dec = ruzstd::StreamingDecoder::new(data)
            .map_err(|e| other(e.to_string()))
            .map_err(fail("zstd"))?;
        dec.read_to_end(&mut out).map_err(fail("zstd"))?;
    } else if data.starts_with(&[0x5d, 0, 0]) {
        // lzma-rs refuses bytes after the end marker; a kernel build appends the
        // uncompressed size (4 bytes) to the stream, so try without them too.
        let whole = lzma_rs::lzma_decompress(&mut io::BufReader::new(data), &mut out);
        if whole.is_err() && data.len() > 4 {
            out.clear();
            let cut = &data[..data.len() - 4];
            lzma_rs::lzma_decompress(&mut io::BufReader::new(cut), &mut out)
                .map_err(|e| other(e.to_string()))
                .map_err(fail("lzma"))?;
        } else {
            whole
                .map_err(|e| other(e.to_string()))
                .map_err(fail("lzma"))?;
        }
    } else if data.starts_with(b"BZh") {
        return Err(KernelImageError::Unsupported("bzip2"));
    } else if data.starts_with(&[0x02, 0x21, 0x4c, 0x18]) {
        return Err(KernelImageError::Unsupported("lz4"));
    } else if data.starts_with(b"\x89LZO") {
        return Err(KernelImageError::Unsupported("lzo"));
    } else {
        return Err(KernelImageError::NotKernelImage);
    }
    Ok(out)
}

/// Every distinct DER certificate in `data`: a SEQUENCE with a two-byte length whose
/// first element is a SEQUENCE (the TBSCertificate), that parses as a Certificate.
pub fn scan_certs(data: &[u8]) -> Vec<Vec<u8>> {
    let mut found: Vec<Vec<u8>> = Vec::new();
    let mut i = 0;
    while i + 8 <= data.len() {
        if data[i] != 0x30
            || data[i + 1] != 0x82
            || data[i + 4] != 0x30
            || !matches!(data[i + 5], 0x81 | 0x82)
        {
            i += 1;
            continue;
        }
        let len = 4 + usize::from(u16::from_be_bytes([data[i + 2], data[i + 3]]));
        if let Some(der) = data.get(i..i + len) {
            if Certificate::from_der(der).is_ok() {
                if !found.iter().any(|f| f == der) {
                    found.push(der.to_vec());
                }
                i += len;
                continue;
            }
        }
        i += 1;
    }
    found
}
