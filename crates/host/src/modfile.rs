//! Opening a module file safely and getting its bytes to the kernel: only from inside the
//! module directory, never through a symlink at the last step, and decompressed in
//! process when the kernel cannot do it itself.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Xz,
    Zstd,
    Gzip,
}

impl Compression {
    /// From the file's first bytes (magic numbers, not the extension).
    pub fn sniff(head: &[u8]) -> Self {
        if head.starts_with(&[0xFD, b'7', b'z', b'X', b'Z', 0]) {
            Compression::Xz
        } else if head.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]) {
            Compression::Zstd
        } else if head.starts_with(&[0x1F, 0x8B]) {
            Compression::Gzip
        } else {
            Compression::None
        }
    }

    /// The name the kernel uses in `/sys/module/compression`.
    pub fn kernel_name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ModFileError {
    #[error("{path} is not inside the module directory {dir}")]
    Outside { path: String, dir: String },
    #[error("cannot open {path}")]
    Open {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot decompress {path} ({kind})")]
    Decompress {
        path: String,
        kind: &'static str,
        #[source]
        source: io::Error,
    },
}

/// Opens `rel` (a path relative to the module directory `dir`) read-only, refusing to
/// leave `dir` and to follow a symlink as the last component.
pub fn open_beneath(dir: &Path, rel: &str) -> Result<File, ModFileError> {
    let shown = || dir.join(rel).display().to_string();
    if rel.starts_with('/') || rel.contains('\0') || rel.split('/').any(|c| c == "..") {
        return Err(ModFileError::Outside {
            path: shown(),
            dir: dir.display().to_string(),
        });
    }
    let dirf = File::open(dir).map_err(|source| ModFileError::Open {
        path: dir.display().to_string(),
        source,
    })?;
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let opened = rustix::fs::openat2(
        &dirf,
        rel,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    );
    match opened {
        Ok(fd) => Ok(File::from(fd)),
        Err(rustix::io::Errno::XDEV) => Err(ModFileError::Outside {
            path: shown(),
            dir: dir.display().to_string(),
        }),
        // Kernels before 5.6 have no openat2: check the resolved path, then open.
        Err(rustix::io::Errno::NOSYS) => open_checked(dir, rel),
        Err(e) => Err(ModFileError::Open {
            path: shown(),
            source: e.into(),
        }),
    }
}

fn open_checked(dir: &Path, rel: &str) -> Result<File, ModFileError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(rel);
    let shown = path.display().to_string();
    let canon_dir = dir.canonicalize().map_err(|source| ModFileError::Open {
        path: dir.display().to_string(),
        source,
    })?;
    let canon = path.canonicalize().map_err(|source| ModFileError::Open {
        path: shown.clone(),
        source,
    })?;
    if !canon.starts_with(&canon_dir) {
        return Err(ModFileError::Outside {
            path: shown,
            dir: dir.display().to_string(),
        });
    }
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|source| ModFileError::Open {
            path: shown,
            source,
        })
}

/// Reads a whole module into memory, decompressing it.
pub fn read_image(mut file: &File, kind: Compression, path: &str) -> Result<Vec<u8>, ModFileError> {
    let mut raw = Vec::new();
    file.read_to_end(&mut raw)
        .map_err(|source| ModFileError::Open {
            path: path.to_string(),
            source,
        })?;
    decompress(raw, kind, path)
}

/// Reads the module at `rel` under the module directory `dir` (opened as
/// [`open_beneath`] does) into the image the kernel receives: decompressed, whatever the
/// kernel could do itself, the format told by the file's magic.
pub fn read_module(dir: &Path, rel: &str) -> Result<Vec<u8>, ModFileError> {
    let mut file = open_beneath(dir, rel)?;
    let mut raw = Vec::new();
    file.read_to_end(&mut raw)
        .map_err(|source| ModFileError::Open {
            path: dir.join(rel).display().to_string(),
            source,
        })?;
    let kind = Compression::sniff(&raw);
    decompress(raw, kind, rel)
}

/// The path of a plan's module relative to the module directory (`dirname` is the prefix
/// the plan's paths carry).
pub fn relative<'p>(dirname: &str, path: &'p str) -> &'p str {
    path.strip_prefix(dirname)
        .map(|r| r.trim_start_matches('/'))
        .unwrap_or(path)
}

fn decompress(raw: Vec<u8>, kind: Compression, path: &str) -> Result<Vec<u8>, ModFileError> {
    let err = |kind: &'static str| {
        move |source: io::Error| ModFileError::Decompress {
            path: path.to_string(),
            kind,
            source,
        }
    };
    let mut out = Vec::with_capacity(raw.len() * 3);
    match kind {
        Compression::None => return Ok(raw),
        Compression::Xz => {
            lzma_rs::xz_decompress(&mut io::BufReader::new(&raw[..]), &mut out)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
                .map_err(err("xz"))?;
        }
        Compression::Zstd => {
            let mut dec = ruzstd::StreamingDecoder::new(&raw[..])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
                .map_err(err("zstd"))?;
            dec.read_to_end(&mut out).map_err(err("zstd"))?;
        }
        Compression::Gzip => {
            flate2::read::GzDecoder::new(&raw[..])
                .read_to_end(&mut out)
                .map_err(err("gzip"))?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_magic() {
        assert_eq!(
            Compression::sniff(&[0xFD, b'7', b'z', b'X', b'Z', 0, 1]),
            Compression::Xz
        );
        assert_eq!(
            Compression::sniff(&[0x28, 0xB5, 0x2F, 0xFD, 0]),
            Compression::Zstd
        );
        assert_eq!(Compression::sniff(&[0x1F, 0x8B, 8]), Compression::Gzip);
        assert_eq!(Compression::sniff(b"\x7fELF"), Compression::None);
    }

    #[test]
    fn refuses_to_leave_the_directory() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("lib/modules/k");
        std::fs::create_dir_all(dir.join("kernel")).unwrap();
        std::fs::write(t.path().join("secret.ko"), b"x").unwrap();
        std::fs::write(dir.join("kernel/ok.ko"), b"\x7fELF").unwrap();
        std::os::unix::fs::symlink(t.path().join("secret.ko"), dir.join("kernel/link.ko")).unwrap();
        std::os::unix::fs::symlink("../../../../secret.ko", dir.join("kernel/rel.ko")).unwrap();
        assert!(open_beneath(&dir, "kernel/ok.ko").is_ok());
        for bad in [
            "../../../secret.ko",
            "/etc/passwd",
            "kernel/link.ko",
            "kernel/rel.ko",
        ] {
            assert!(open_beneath(&dir, bad).is_err(), "{bad} must be refused");
        }
        assert!(matches!(
            open_beneath(&dir, "kernel/missing.ko"),
            Err(ModFileError::Open { .. })
        ));
    }

    #[test]
    fn decompresses_each_format() {
        let payload: Vec<u8> = (0..20000u32).flat_map(|i| i.to_le_bytes()).collect();
        let t = tempfile::tempdir().unwrap();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &payload[..], &mut xz).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &payload).unwrap();
        let gz = gz.finish().unwrap();
        for (data, kind) in [(xz, Compression::Xz), (gz, Compression::Gzip)] {
            assert_eq!(Compression::sniff(&data), kind);
            let p = t.path().join("m");
            std::fs::write(&p, &data).unwrap();
            let f = File::open(&p).unwrap();
            assert_eq!(read_image(&f, kind, "m").unwrap(), payload);
        }
        let mut gz2 = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz2, &payload).unwrap();
        std::fs::write(t.path().join("m.ko.gz"), gz2.finish().unwrap()).unwrap();
        assert_eq!(read_module(t.path(), "m.ko.gz").unwrap(), payload);
        assert!(matches!(
            read_module(t.path(), "../m.ko.gz"),
            Err(ModFileError::Outside { .. })
        ));
        let p = t.path().join("bad");
        std::fs::write(&p, b"\xFD7zXZ\0garbage").unwrap();
        let f = File::open(&p).unwrap();
        assert!(matches!(
            read_image(&f, Compression::Xz, "bad"),
            Err(ModFileError::Decompress { .. })
        ));
    }
}
