//! The module directory's indexes, binary or text: what `modules.dep`, `modules.alias`,
//! `modules.symbols`, `modules.builtin` and `modules.builtin.modinfo` say. Each index is
//! read from its `.bin` form when there is one, else parsed from its text form (a kernel
//! package ships no `.bin` until `depmod` runs).

use std::collections::{HashMap, HashSet};

use crate::fnmatch::fnmatch;
use crate::index::{add_value, BinIndex, IndexError, IndexValue};
use crate::name::{alias_normalize, modname_from_path};

/// `modules.dep`: module name → its line (`path: dep-path ...`).
#[derive(Debug)]
pub enum DepIndex<'a> {
    Bin(BinIndex<'a>),
    Text(HashMap<String, String>),
}

/// A pattern → module-name index (`modules.alias`, `modules.symbols`, builtin aliases).
#[derive(Debug)]
pub enum AliasIndex<'a> {
    Bin(BinIndex<'a>),
    Text(TextAliases),
    Missing,
}

/// A text alias index (`modules.alias`, `modules.symbols` or `modules.builtin.modinfo`),
/// parsed on first use: most lookups (a module asked for by name) never reach it, and a
/// real `modules.alias` has tens of thousands of lines.
#[derive(Debug)]
pub struct TextAliases {
    data: Vec<u8>,
    modinfo: bool,
    entries: std::sync::OnceLock<Vec<(String, String, u32)>>,
}

impl TextAliases {
    /// (pattern, module, priority), in file order.
    pub fn entries(&self) -> &[(String, String, u32)] {
        self.entries.get_or_init(|| {
            if self.modinfo {
                builtin_modinfo_entries(&self.data)
            } else {
                alias_text_entries(&String::from_utf8_lossy(&self.data))
            }
        })
    }
}

/// The set of built-in module names (`modules.builtin`).
#[derive(Debug)]
pub enum BuiltinIndex<'a> {
    Bin(BinIndex<'a>),
    Text(HashSet<String>),
    Missing,
}

/// Which index a lookup failed in, for the error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    Dep,
    Alias,
    Symbols,
    Builtin,
    BuiltinAlias,
}

impl IndexKind {
    /// The file name of the binary form.
    pub fn bin_file(self) -> &'static str {
        match self {
            IndexKind::Dep => "modules.dep.bin",
            IndexKind::Alias => "modules.alias.bin",
            IndexKind::Symbols => "modules.symbols.bin",
            IndexKind::Builtin => "modules.builtin.bin",
            IndexKind::BuiltinAlias => "modules.builtin.alias.bin",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}")]
pub struct DbError {
    pub file: &'static str,
    #[source]
    pub source: IndexError,
}

/// All the indexes of one module directory.
#[derive(Debug)]
pub struct ModuleDb<'a> {
    pub dep: DepIndex<'a>,
    pub alias: AliasIndex<'a>,
    pub symbols: AliasIndex<'a>,
    pub builtin: BuiltinIndex<'a>,
    pub builtin_alias: AliasIndex<'a>,
}

fn at(kind: IndexKind) -> impl Fn(IndexError) -> DbError {
    move |source| DbError {
        file: kind.bin_file(),
        source,
    }
}

impl<'a> ModuleDb<'a> {
    /// The `modules.dep` line of a module, if the directory has that module.
    pub fn dep_line(&self, name: &str) -> Result<Option<String>, DbError> {
        match &self.dep {
            DepIndex::Bin(b) => b.search(name).map_err(at(IndexKind::Dep)),
            DepIndex::Text(m) => Ok(m.get(name).cloned()),
        }
    }

    pub fn aliases(&self, key: &str) -> Result<Vec<String>, DbError> {
        wild(&self.alias, key).map_err(at(IndexKind::Alias))
    }

    pub fn symbols(&self, key: &str) -> Result<Vec<String>, DbError> {
        wild(&self.symbols, key).map_err(at(IndexKind::Symbols))
    }

    pub fn builtin_aliases(&self, key: &str) -> Result<Vec<String>, DbError> {
        wild(&self.builtin_alias, key).map_err(at(IndexKind::BuiltinAlias))
    }

    pub fn is_builtin(&self, name: &str) -> Result<bool, DbError> {
        match &self.builtin {
            BuiltinIndex::Bin(b) => b
                .search(name)
                .map(|v| v.is_some())
                .map_err(at(IndexKind::Builtin)),
            BuiltinIndex::Text(s) => Ok(s.contains(name)),
            BuiltinIndex::Missing => Ok(false),
        }
    }
}

impl ModuleDb<'_> {
    /// What `modprobe -c` prints after the configuration: every entry of
    /// `modules.alias` then of `modules.symbols`, as `alias KEY MODULE`, in the binary
    /// index's trie order. An index read from its text form (kmod would print nothing for
    /// it, since it reads only `.bin` files) is listed in file order.
    pub fn render_modprobe_c_dump(&self) -> Result<String, DbError> {
        let mut out = String::new();
        for (idx, kind) in [
            (&self.alias, IndexKind::Alias),
            (&self.symbols, IndexKind::Symbols),
        ] {
            match idx {
                AliasIndex::Bin(b) => {
                    for (key, v) in b.dump().map_err(at(kind))? {
                        out.push_str(&format!("alias {key} {}\n", v.value));
                    }
                }
                AliasIndex::Text(text) => {
                    for (pattern, module, _) in text.entries() {
                        out.push_str(&format!("alias {pattern} {module}\n"));
                    }
                }
                AliasIndex::Missing => {}
            }
        }
        Ok(out)
    }
}

fn wild(idx: &AliasIndex<'_>, key: &str) -> Result<Vec<String>, IndexError> {
    let values = match idx {
        AliasIndex::Bin(b) => b.search_wild(key)?,
        AliasIndex::Text(text) => {
            let mut out = Vec::new();
            for (pattern, module, priority) in text.entries() {
                if fnmatch(pattern, key) {
                    add_value(
                        &mut out,
                        IndexValue {
                            priority: *priority,
                            value: module.clone(),
                        },
                    );
                }
            }
            out
        }
        AliasIndex::Missing => Vec::new(),
    };
    Ok(values.into_iter().map(|v| v.value).collect())
}

/// Parses text `modules.dep`.
pub fn parse_dep_text(text: &str) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for line in text.lines() {
        let Some((path, _)) = line.split_once(':') else {
            continue;
        };
        if path.is_empty() || line.starts_with('#') {
            continue;
        }
        map.entry(modname_from_path(path))
            .or_insert_with(|| line.to_string());
    }
    map
}

/// Text `modules.alias` or `modules.symbols` (`alias PATTERN MODULE`), parsed when
/// first searched. Patterns are normalised as depmod normalises them for the binary form.
pub fn parse_alias_text(text: &str) -> TextAliases {
    TextAliases {
        data: text.as_bytes().to_vec(),
        modinfo: false,
        entries: std::sync::OnceLock::new(),
    }
}

fn alias_text_entries(text: &str) -> Vec<(String, String, u32)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        if it.next() != Some("alias") {
            continue;
        }
        let (Some(pattern), Some(module)) = (it.next(), it.next()) else {
            continue;
        };
        let Ok(pattern) = alias_normalize(pattern) else {
            continue;
        };
        let priority = out.len() as u32;
        out.push((pattern, module.to_string(), priority));
    }
    out
}

/// Parses text `modules.builtin` (one `kernel/.../name.ko` a line).
pub fn parse_builtin_text(text: &str) -> HashSet<String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(modname_from_path)
        .collect()
}

/// `modules.builtin.modinfo` (NUL-separated `module.key=value`) as the builtin alias
/// index, parsed when first searched.
pub fn parse_builtin_modinfo(data: &[u8]) -> TextAliases {
    TextAliases {
        data: data.to_vec(),
        modinfo: true,
        entries: std::sync::OnceLock::new(),
    }
}

fn builtin_modinfo_entries(data: &[u8]) -> Vec<(String, String, u32)> {
    let mut out = Vec::new();
    for rec in data.split(|&b| b == 0) {
        let Ok(rec) = std::str::from_utf8(rec) else {
            continue;
        };
        let Some((module, kv)) = rec.split_once('.') else {
            continue;
        };
        let Some(alias) = kv.strip_prefix("alias=") else {
            continue;
        };
        let Ok(pattern) = alias_normalize(alias) else {
            continue;
        };
        let priority = out.len() as u32;
        out.push((pattern, module.to_string(), priority));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms() {
        let dep = parse_dep_text(
            "kernel/a/ip_vs.ko: kernel/lib/libcrc32c.ko\nkernel/lib/libcrc32c.ko:\n",
        );
        assert_eq!(dep["ip_vs"], "kernel/a/ip_vs.ko: kernel/lib/libcrc32c.ko");
        assert_eq!(dep["libcrc32c"], "kernel/lib/libcrc32c.ko:");
        let aliases = parse_alias_text("# c\nalias fs-ext4 ext4\nalias pci:v*d* e1000\n");
        assert_eq!(aliases.entries()[0], ("fs_ext4".into(), "ext4".into(), 0));
        let b = parse_builtin_text("kernel/fs/ext4/ext4.ko\nkernel/drivers/x-y.ko\n");
        assert!(b.contains("x_y"));
        let ba = parse_builtin_modinfo(
            b"ext4.license=GPL\0ext4.alias=fs-ext4\0crc32c_generic.alias=crypto-crc32c\0",
        );
        assert_eq!(ba.entries().len(), 2);
        assert_eq!(ba.entries()[0].0, "fs_ext4");
        let db = ModuleDb {
            dep: DepIndex::Text(dep),
            alias: AliasIndex::Text(aliases),
            symbols: AliasIndex::Missing,
            builtin: BuiltinIndex::Text(b),
            builtin_alias: AliasIndex::Text(ba),
        };
        assert_eq!(db.aliases("fs_ext4").unwrap(), ["ext4"]);
        assert_eq!(db.aliases("pci:v1d2").unwrap(), ["e1000"]);
        assert_eq!(
            db.builtin_aliases("crypto_crc32c").unwrap(),
            ["crc32c_generic"]
        );
        assert!(db.is_builtin("ext4").unwrap());
        assert!(db.symbols("symbol:x").unwrap().is_empty());
        assert!(db.dep_line("nosuch").unwrap().is_none());
    }
}
