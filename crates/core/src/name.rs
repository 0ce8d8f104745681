//! Module names and lookup keys, normalised the way kmod does it.
//!
//! `-` and `_` are the same character in a module name; in an alias, `-` becomes `_`
//! except inside a `[...]` class. A [`ModuleName`] can only hold a normalised, valid name.

use std::fmt;

/// Longest name the kernel accepts for a module (`MODULE_NAME_LEN - 1`).
pub const MAX_NAME_LEN: usize = 55;

/// Why a string is not a usable module name or lookup key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("empty name")]
    Empty,
    #[error("longer than {MAX_NAME_LEN} characters")]
    TooLong,
    #[error("begins with '-'")]
    LeadingDash,
    #[error("contains {0:?}; only letters, digits, '_' and '-' are allowed")]
    BadChar(char),
    #[error("unbalanced '[' or ']'")]
    UnbalancedBracket,
}

/// A normalised module name: `[A-Za-z0-9_]{1,55}`, with every `-` turned into `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct ModuleName(String);

impl ModuleName {
    /// Parses a name as a container would give it: letters, digits, `_` and `-` only,
    /// not beginning with `-`, at most 55 characters.
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        if raw.is_empty() {
            return Err(NameError::Empty);
        }
        if raw.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong);
        }
        if raw.starts_with('-') {
            return Err(NameError::LeadingDash);
        }
        if let Some(c) = raw
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        {
            return Err(NameError::BadChar(c));
        }
        Ok(Self(raw.replace('-', "_")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A name stored by modgate itself (the state records) must already be in normal form:
/// anything else was not written by modgate, and is refused.
impl<'de> serde::Deserialize<'de> for ModuleName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        let name = ModuleName::parse(&raw)
            .map_err(|e| serde::de::Error::custom(format!("module name {raw:?}: {e}")))?;
        if name.as_str() != raw {
            return Err(serde::de::Error::custom(format!(
                "module name {raw:?} is not in normal form"
            )));
        }
        Ok(name)
    }
}

/// Ordering, equality and hashing are the string's, so a map keyed by names can be
/// searched with a `&str`.
impl std::borrow::Borrow<str> for ModuleName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for ModuleName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ModuleName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl AsRef<str> for ModuleName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// kmod's `modname_normalize`: `-` becomes `_`, and the name ends at the first `.`
/// (so a file name `crc32c-intel.ko.xz` gives `crc32c_intel`).
pub fn modname_normalize(s: &str) -> String {
    let end = s.find('.').unwrap_or(s.len());
    s[..end].replace('-', "_")
}

/// The module name of a path in `modules.dep`: its file name, normalised.
pub fn modname_from_path(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    modname_normalize(base)
}

/// kmod's `alias_normalize`: `-` becomes `_` outside `[...]` classes; a `]` without
/// its `[`, or a `[` without its `]`, is an error.
pub fn alias_normalize(s: &str) -> Result<String, NameError> {
    // Most keys (every line of a text modules.alias is one) need no change.
    if !s
        .as_bytes()
        .iter()
        .any(|&b| matches!(b, b'-' | b'[' | b']'))
    {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '-' => out.push('_'),
            ']' => return Err(NameError::UnbalancedBracket),
            '[' => {
                out.push('[');
                let mut closed = false;
                for c in chars.by_ref() {
                    out.push(c);
                    if c == ']' {
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return Err(NameError::UnbalancedBracket);
                }
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// kmod's `underscores()` for names read from configuration: like [`alias_normalize`],
/// but an unbalanced bracket leaves the name as it was (kmod logs and keeps it).
pub fn underscores(s: &str) -> String {
    alias_normalize(s).unwrap_or_else(|_| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_are_normalised_and_checked() {
        let table: &[(&str, Result<&str, NameError>)] = &[
            ("ip_vs", Ok("ip_vs")),
            ("crc32c-intel", Ok("crc32c_intel")),
            ("", Err(NameError::Empty)),
            ("-r", Err(NameError::LeadingDash)),
            ("--force", Err(NameError::LeadingDash)),
            ("a/b", Err(NameError::BadChar('/'))),
            ("ip vs", Err(NameError::BadChar(' '))),
            ("x.ko", Err(NameError::BadChar('.'))),
            ("é", Err(NameError::BadChar('é'))),
        ];
        for (raw, want) in table {
            let got = ModuleName::parse(raw).map(|n| n.0);
            assert_eq!(
                got.as_deref().map_err(Clone::clone),
                want.clone(),
                "{raw:?}"
            );
        }
        assert_eq!(ModuleName::parse(&"a".repeat(56)), Err(NameError::TooLong));
        assert!(ModuleName::parse(&"a".repeat(55)).is_ok());
    }

    #[test]
    fn modname_normalize_strips_extension() {
        assert_eq!(modname_normalize("crc32c-intel.ko.xz"), "crc32c_intel");
        assert_eq!(modname_from_path("kernel/lib/libcrc32c.ko"), "libcrc32c");
        assert_eq!(modname_from_path("/abs/x-y.ko.zst"), "x_y");
    }

    #[test]
    fn alias_normalize_keeps_classes() {
        assert_eq!(alias_normalize("fs-ext4").as_deref(), Ok("fs_ext4"));
        assert_eq!(alias_normalize("a[-_]b-c").as_deref(), Ok("a[-_]b_c"));
        assert_eq!(alias_normalize("a]"), Err(NameError::UnbalancedBracket));
        assert_eq!(alias_normalize("a[bc"), Err(NameError::UnbalancedBracket));
        assert_eq!(underscores("a[b-c"), "a[b-c");
    }
}
