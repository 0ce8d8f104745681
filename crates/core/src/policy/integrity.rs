//! The integrity keys of a policy: what a module file must be before the kernel gets it.
//! Checking a file against them is the loader's job; this is what they say.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `vermagic = "any" | "match"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Vermagic {
    /// Leave it to the kernel (which, with modversions, does not compare the release).
    Any,
    /// The module's `vermagic` must name the kernel release modgate resolves against.
    Match,
}

/// A property of a module that would taint the kernel, as `deny_taint` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Taint {
    /// No `intree=Y` in its modinfo.
    OutOfTree,
    /// `staging=Y`.
    Staging,
    /// No valid signature trailer.
    Unsigned,
    /// A licence the kernel does not count as GPL-compatible.
    Proprietary,
}

impl Taint {
    pub fn as_str(self) -> &'static str {
        match self {
            Taint::OutOfTree => "out-of-tree",
            Taint::Staging => "staging",
            Taint::Unsigned => "unsigned",
            Taint::Proprietary => "proprietary",
        }
    }
}

/// A hash pin: `module = "sha256:HEX"`, over the bytes the kernel receives (a compressed
/// module's decompressed image).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct Pin(pub [u8; 32]);

impl Pin {
    pub fn parse(s: &str) -> Result<Self, String> {
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| format!("pin {s:?} must start with \"sha256:\""))?;
        if hex.len() != 64 {
            return Err(format!(
                "pin {s:?} must have 64 hex digits after \"sha256:\""
            ));
        }
        let mut out = [0u8; 32];
        for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
            let text = std::str::from_utf8(pair).map_err(|_| format!("pin {s:?} is not hex"))?;
            out[i] = u8::from_str_radix(text, 16).map_err(|_| format!("pin {s:?} is not hex"))?;
        }
        Ok(Pin(out))
    }

    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl From<Pin> for String {
    fn from(p: Pin) -> String {
        format!("sha256:{}", p.hex())
    }
}

/// The integrity keys, as the effective policy holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Integrity {
    pub require_signature: bool,
    /// PEM or DER X.509 files, or directories of them, under the root.
    pub trusted_certs: Vec<String>,
    /// Module name (normalised to underscores) to the hash its file must have.
    pub pins: BTreeMap<String, Pin>,
    pub vermagic: Vermagic,
    pub deny_taint: Vec<Taint>,
}

impl Integrity {
    /// Whether any key asks for a look at the module files (the load path pays for it
    /// only then).
    pub fn checks_files(&self) -> bool {
        self.require_signature
            || !self.pins.is_empty()
            || self.vermagic == Vermagic::Match
            || !self.deny_taint.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse_and_print() {
        let hex = "00ff".repeat(16);
        let p = Pin::parse(&format!("sha256:{hex}")).unwrap();
        assert_eq!(p.0[0], 0);
        assert_eq!(p.0[1], 0xff);
        assert_eq!(String::from(p), format!("sha256:{hex}"));
        for bad in [
            "md5:00",
            "sha256:abc",
            &format!("sha256:{}", "zz".repeat(32)),
            "sha256:é",
        ] {
            assert!(Pin::parse(bad).is_err(), "{bad}");
        }
    }
}
