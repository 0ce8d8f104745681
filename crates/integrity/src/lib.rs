//! Module integrity: is this module image the one we mean to load, signed by a key we
//! trust, built for this kernel, and what would it taint?
//!
//! The kernel's own check (`module.sig_enforce`, lockdown) is usually off and, when on,
//! only asks "signed by any key the kernel trusts?". modgate reads every module itself
//! before `finit_module`, so it checks there, against its own trusted certificates.
//!
//! # API
//!
//! - [`TrustStore`]: the trusted certificates, built once ([`TrustStore::load_path`] for
//!   PEM/DER files or directories, [`TrustStore::add_der`] for certificates from
//!   [`extract_certs`]) and shared by every check. The signer's certificate is found by
//!   issuer+serial or subjectKeyIdentifier among the trusted ones only; certificates
//!   carried inside a signature are never trust anchors, and the claimed signer name is
//!   only reported.
//! - [`check`]`(image, &store) -> `[`Verdict`]: the whole report of one module image
//!   (signature status and reason, claimed and verified signer, hash algorithm, sha256,
//!   vermagic and other modinfo fields, taint flags), serialisable with serde.
//! - [`verify()`]`(image, &store) -> Result<`[`Verified`]`, `[`VerifyError`]`>`: the
//!   signature check alone; [`VerifyError::status`] gives the coarse
//!   [`SignatureStatus`] a policy decides on.
//! - [`Sha256Pin`]: `sha256:HEX` pins, parsed from policy text and computed with
//!   [`Sha256Pin::of`].
//! - [`modinfo::parse`] and [`ModInfo::vermagic_matches`] (the kernel's `same_magic`).
//! - [`extract_certs`]`(vmlinuz_bytes)`: the DER certificates in a kernel image (bzImage
//!   with a gzip, xz (x86 BCJ included), zstd or lzma payload, or an ELF vmlinux).
//! - [`trailer::append`]: what `scripts/sign-file` does, for tools and tests.
//!
//! # The bytes to pass
//!
//! Every function takes the image the kernel receives: for a compressed `.ko.xz` or
//! `.ko.zst`, the decompressed bytes (the signature covers the uncompressed module and the
//! kernel checks the decompressed image). The caller should check exactly the buffer (or
//! the memfd) it then hands to `init_module`/`finit_module`, so nothing can change between
//! the check and the load. The sha256 of a pin is over the same bytes, trailer included.
//!
//! # Decisions
//!
//! - Certificate expiry is not checked, like the kernel; the validity is reported.
//! - A trusted certificate whose keyUsage extension exists and excludes digitalSignature
//!   is refused ([`SignatureStatus::Refused`]); the kernel ignores keyUsage for modules.
//!   extendedKeyUsage is ignored, like the kernel.
//! - Only the signer's own certificate can be trusted: no chain is built, neither through
//!   the trusted set nor through certificates in the SignedData.
//! - Signed attributes are checked when present (messageDigest equal to the content
//!   digest, signature over their DER as a SET OF), and reported: note that the kernel
//!   itself refuses module signatures that carry them (`pkcs7_verify`, "has authattrs").
//! - Exactly one SignerInfo; BER indefinite lengths are not accepted (sign-file and
//!   `openssl cms -outform DER` write DER).
//! - The `unsigned` taint flag means "no valid trailer" (unsigned or malformed); a
//!   well-formed signature by an unknown key shows as [`SignatureStatus::Untrusted`].

//!
//! # Intended use by the loader
//!
//! Build the [`TrustStore`] once per run from the policy's trusted certificates. For each
//! module of a plan, read (and decompress) the file into the buffer that will be passed to
//! `init_module`, call [`check`], decide from the [`Verdict`] (signature status, sha256
//! against a pin, vermagic release against the target kernel, taint names against a deny
//! list), then load exactly that buffer. [`Verdict`] serialises as the JSON of a
//! verification report.
//!
//! # Cost
//!
//! Measured on Debian's 6.1 kernel (RSA-4096, sha256; `examples/bench.rs`): sha256 runs at
//! about 1 GB/s (0.35 ms for nf_conntrack's 371 KiB); an RSA-4096 check costs 1.4–2 ms
//! on a loaded two-core machine, about 14 ms for the eight modules of ip_vs_wrr's closure.
//! [`extract_certs`] on an xz bzImage takes about 1.7 s: extract once, not per load.

pub mod digest;
pub mod elf;
pub mod kernel_image;
pub mod modinfo;
pub mod signature;
pub mod trailer;
pub mod trust;
pub mod verdict;
pub mod verify;
mod xz;

pub use digest::{DigestAlg, Sha256Pin};
pub use kernel_image::{extract_certs, KernelImageError};
pub use modinfo::{ModInfo, Taint};
pub use signature::{KeyKind, ModuleSignature, SignerId};
pub use trust::{to_pem, TrustError, TrustStore, TrustedCert};
pub use verdict::{check, SignatureReport, Verdict};
pub use verify::{verify, SignatureStatus, Verified, VerifyError};
