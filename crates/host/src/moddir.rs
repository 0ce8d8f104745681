//! Opens a module directory (`ROOT/lib/modules/KV`, else `ROOT/usr/lib/modules/KV`) and
//! hands its indexes to the core: binary indexes are mapped, text forms parsed only when
//! their `.bin` is missing.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use modgate_core::index::{BinIndex, IndexError};
use modgate_core::moddb::{self, AliasIndex, BuiltinIndex, DepIndex, ModuleDb};

use crate::root::Root;

#[derive(Debug, thiserror::Error)]
pub enum ModDirError {
    #[error("no module directory for kernel {release}: neither {} nor {} exists", .tried[0].display(), .tried[1].display())]
    Missing {
        release: String,
        tried: [PathBuf; 2],
    },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", path.display())]
    Corrupt {
        path: PathBuf,
        #[source]
        source: IndexError,
    },
    #[error("{} has neither modules.dep.bin nor modules.dep: run depmod", dir.display())]
    NoDep { dir: PathBuf },
}

enum Form {
    Bin(Mmap),
    Text(Vec<u8>),
    Missing,
}

/// The files of one module directory, kept open while a [`ModuleDb`] borrows them.
pub struct ModuleDir {
    pub dir: PathBuf,
    /// The directory as kmod prints it in `insmod` lines.
    pub dirname: String,
    dep: Form,
    alias: Form,
    symbols: Form,
    builtin: Form,
    builtin_alias: Form,
}

fn open_form(dir: &Path, bin: &str, text: &str) -> Result<Form, ModDirError> {
    let path = dir.join(bin);
    match File::open(&path) {
        Ok(f) => {
            // SAFETY: a read-only private mapping of an index file. depmod replaces
            // indexes by rename, never in place, so the mapped file does not change
            // under us; every access through it is bounds-checked by the core reader.
            let map = unsafe { Mmap::map(&f) }.map_err(|source| ModDirError::Read {
                path: path.clone(),
                source,
            })?;
            return Ok(Form::Bin(map));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(ModDirError::Read { path, source }),
    }
    if text.is_empty() {
        return Ok(Form::Missing);
    }
    let path = dir.join(text);
    match std::fs::read(&path) {
        Ok(data) => Ok(Form::Text(data)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Form::Missing),
        Err(source) => Err(ModDirError::Read { path, source }),
    }
}

/// Where a kernel's module directory may be, in the order kmod looks (relative to the
/// root).
pub const MODULE_BASES: [&str; 2] = ["lib/modules", "usr/lib/modules"];

/// The first of [`MODULE_BASES`] that holds a directory for `release`.
pub fn locate(root: &Root, release: &str) -> Option<&'static str> {
    MODULE_BASES
        .into_iter()
        .find(|b| root.path(&format!("{b}/{release}")).is_dir())
}

impl ModuleDir {
    pub fn open(root: &Root, release: &str) -> Result<Self, ModDirError> {
        let Some(base) = locate(root, release) else {
            return Err(ModDirError::Missing {
                release: release.to_string(),
                tried: MODULE_BASES.map(|b| root.path(&format!("{b}/{release}"))),
            });
        };
        let dir = root.path(&format!("{base}/{release}"));
        let dirname = format!("{}/{base}/{release}", root.prefix());
        let dep = open_form(&dir, "modules.dep.bin", "modules.dep")?;
        if matches!(dep, Form::Missing) {
            return Err(ModDirError::NoDep { dir });
        }
        Ok(Self {
            dep,
            alias: open_form(&dir, "modules.alias.bin", "modules.alias")?,
            symbols: open_form(&dir, "modules.symbols.bin", "modules.symbols")?,
            builtin: open_form(&dir, "modules.builtin.bin", "modules.builtin")?,
            builtin_alias: open_form(&dir, "modules.builtin.alias.bin", "modules.builtin.modinfo")?,
            dir,
            dirname,
        })
    }

    /// Drops the binary forms so the text forms are used (for cross-checks and tests).
    pub fn open_text_only(root: &Root, release: &str) -> Result<Self, ModDirError> {
        let mut d = Self::open(root, release)?;
        d.dep = open_form(&d.dir, "", "modules.dep")?;
        d.alias = open_form(&d.dir, "", "modules.alias")?;
        d.symbols = open_form(&d.dir, "", "modules.symbols")?;
        d.builtin = open_form(&d.dir, "", "modules.builtin")?;
        d.builtin_alias = open_form(&d.dir, "", "modules.builtin.modinfo")?;
        Ok(d)
    }

    fn bin<'a>(&self, map: &'a Mmap, file: &str) -> Result<BinIndex<'a>, ModDirError> {
        BinIndex::new(map).map_err(|source| ModDirError::Corrupt {
            path: self.dir.join(file),
            source,
        })
    }

    /// The indexes, ready for the resolver.
    pub fn db(&self) -> Result<ModuleDb<'_>, ModDirError> {
        let text = |d: &[u8]| String::from_utf8_lossy(d).into_owned();
        let dep = match &self.dep {
            Form::Bin(m) => DepIndex::Bin(self.bin(m, "modules.dep.bin")?),
            Form::Text(d) => DepIndex::Text(moddb::parse_dep_text(&text(d))),
            Form::Missing => DepIndex::Text(Default::default()),
        };
        let builtin = match &self.builtin {
            Form::Bin(m) => BuiltinIndex::Bin(self.bin(m, "modules.builtin.bin")?),
            Form::Text(d) => BuiltinIndex::Text(moddb::parse_builtin_text(&text(d))),
            Form::Missing => BuiltinIndex::Missing,
        };
        Ok(ModuleDb {
            dep,
            alias: self.alias_index(&self.alias, "modules.alias.bin", false)?,
            symbols: self.alias_index(&self.symbols, "modules.symbols.bin", false)?,
            builtin,
            builtin_alias: self.alias_index(
                &self.builtin_alias,
                "modules.builtin.alias.bin",
                true,
            )?,
        })
    }

    fn alias_index<'a>(
        &self,
        form: &'a Form,
        file: &str,
        modinfo: bool,
    ) -> Result<AliasIndex<'a>, ModDirError> {
        Ok(match form {
            Form::Bin(m) => AliasIndex::Bin(self.bin(m, file)?),
            Form::Text(d) if modinfo => AliasIndex::Text(moddb::parse_builtin_modinfo(d)),
            Form::Text(d) => AliasIndex::Text(moddb::parse_alias_text(&String::from_utf8_lossy(d))),
            Form::Missing => AliasIndex::Missing,
        })
    }

    /// Whether the binary `modules.dep.bin` is in use (else the text form).
    pub fn has_bin_dep(&self) -> bool {
        matches!(self.dep, Form::Bin(_))
    }
}
