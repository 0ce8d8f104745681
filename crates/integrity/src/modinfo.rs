//! The `.modinfo` section of a module (ELF64, either byte order), read from the bytes with
//! bounds checks, and the taint flags the kernel would set when loading it.

use crate::elf::{self, ElfError};

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ModInfo {
    pub name: Option<String>,
    pub vermagic: Option<String>,
    /// The first `license=` entry, the one the kernel looks at.
    pub license: Option<String>,
    pub intree: bool,
    pub staging: bool,
}

impl ModInfo {
    /// The release part of vermagic (its first word).
    pub fn vermagic_release(&self) -> Option<&str> {
        self.vermagic.as_deref()?.split_whitespace().next()
    }

    /// The kernel's `same_magic`: with modversions (CRCs), only what follows the release
    /// is compared; without, the whole string.
    pub fn vermagic_matches(&self, kernel_vermagic: &str, modversions: bool) -> bool {
        let Some(m) = self.vermagic.as_deref() else {
            return false;
        };
        if modversions {
            let tail = |s: &str| s.find(' ').map_or("", |i| &s[i..]).to_string();
            tail(m) == tail(kernel_vermagic)
        } else {
            m == kernel_vermagic
        }
    }

    /// Taint flags; `unsigned` is passed in because it comes from the signature trailer.
    pub fn taint(&self, unsigned: bool) -> Taint {
        Taint {
            proprietary: !self
                .license
                .as_deref()
                .is_some_and(license_is_gpl_compatible),
            out_of_tree: !self.intree,
            staging: self.staging,
            unsigned,
        }
    }
}

/// The kernel's `license_is_gpl_compatible` (include/linux/license.h). A module without a
/// license is "unspecified" to the kernel, hence proprietary.
pub fn license_is_gpl_compatible(license: &str) -> bool {
    matches!(
        license,
        "GPL"
            | "GPL v2"
            | "GPL and additional rights"
            | "Dual BSD/GPL"
            | "Dual MIT/GPL"
            | "Dual MPL/GPL"
    )
}

/// The module taint flags the kernel sets at load time, with their letters in
/// `/proc/sys/kernel/tainted` order: P, O, C, E.
///
/// Also the set a policy's `deny_taint` names: it serialises as the list of its names
/// (`["out-of-tree", "unsigned"]`) and parses from one, refusing unknown names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Taint {
    /// `P`: license not GPL-compatible.
    pub proprietary: bool,
    /// `O`: no `intree=Y`.
    pub out_of_tree: bool,
    /// `C`: `staging=Y`.
    pub staging: bool,
    /// `E`: no valid signature trailer.
    pub unsigned: bool,
}

/// Every flag's name, as a policy writes it, and its letter.
const TAINT_NAMES: [(&str, char); 4] = [
    ("proprietary", 'P'),
    ("out-of-tree", 'O'),
    ("staging", 'C'),
    ("unsigned", 'E'),
];

impl Taint {
    fn flags(&self) -> [bool; 4] {
        [
            self.proprietary,
            self.out_of_tree,
            self.staging,
            self.unsigned,
        ]
    }

    fn from_flags(f: [bool; 4]) -> Self {
        Taint {
            proprietary: f[0],
            out_of_tree: f[1],
            staging: f[2],
            unsigned: f[3],
        }
    }

    pub fn letters(&self) -> String {
        self.flags()
            .iter()
            .zip(TAINT_NAMES)
            .filter(|(on, _)| **on)
            .map(|(_, (_, c))| c)
            .collect()
    }

    /// Names as a policy writes them (`deny_taint = ["proprietary", "out-of-tree"]`).
    pub fn names(&self) -> Vec<&'static str> {
        self.flags()
            .iter()
            .zip(TAINT_NAMES)
            .filter(|(on, _)| **on)
            .map(|(_, (n, _))| n)
            .collect()
    }

    /// The flag a name stands for, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        let i = TAINT_NAMES.iter().position(|(n, _)| *n == name)?;
        let mut f = [false; 4];
        f[i] = true;
        Some(Self::from_flags(f))
    }

    pub fn is_empty(&self) -> bool {
        self.flags() == [false; 4]
    }

    /// The flags set in both.
    pub fn intersection(&self, other: &Taint) -> Taint {
        let (a, b) = (self.flags(), other.flags());
        Self::from_flags(std::array::from_fn(|i| a[i] && b[i]))
    }

    /// The flags set in `self` and not in `other`.
    pub fn difference(&self, other: &Taint) -> Taint {
        let (a, b) = (self.flags(), other.flags());
        Self::from_flags(std::array::from_fn(|i| a[i] && !b[i]))
    }

    /// The flags set in either.
    pub fn union(&self, other: &Taint) -> Taint {
        let (a, b) = (self.flags(), other.flags());
        Self::from_flags(std::array::from_fn(|i| a[i] || b[i]))
    }
}

impl serde::Serialize for Taint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.names())
    }
}

impl<'de> serde::Deserialize<'de> for Taint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        let mut t = Taint::default();
        for n in &names {
            let flag = Taint::from_name(n).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "unknown taint {n:?}: expected one of proprietary, out-of-tree, staging, unsigned"
                ))
            })?;
            t = t.union(&flag);
        }
        Ok(t)
    }
}

/// Reads the `.modinfo` section of a module image (uncompressed ELF).
pub fn parse(image: &[u8]) -> Result<ModInfo, ElfError> {
    let section = elf::section(image, ".modinfo")?;
    let mut info = ModInfo::default();
    for entry in section.split(|&b| b == 0) {
        let Ok(entry) = std::str::from_utf8(entry) else {
            continue;
        };
        let Some((key, value)) = entry.split_once('=') else {
            continue;
        };
        let first = |slot: &mut Option<String>| {
            if slot.is_none() {
                *slot = Some(value.to_string());
            }
        };
        match key {
            "name" => first(&mut info.name),
            "vermagic" => first(&mut info.vermagic),
            "license" => first(&mut info.license),
            "intree" => info.intree |= value == "Y",
            "staging" => info.staging |= value == "Y",
            _ => {}
        }
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::tests::tiny_module;

    #[test]
    fn reads_fields_and_taints() {
        let m = tiny_module(
            b"license=GPL\0license=Proprietary\0intree=Y\0name=demo\0vermagic=6.1.0-48-amd64 SMP preempt mod_unload modversions \0",
        );
        let info = parse(&m).unwrap();
        assert_eq!(info.name.as_deref(), Some("demo"));
        assert_eq!(info.license.as_deref(), Some("GPL"));
        assert!(info.intree && !info.staging);
        assert_eq!(info.vermagic_release(), Some("6.1.0-48-amd64"));
        assert_eq!(info.taint(false).letters(), "");
        assert_eq!(info.taint(true).letters(), "E");

        let m = tiny_module(b"license=Proprietary\0staging=Y\0");
        let t = parse(&m).unwrap().taint(true);
        assert_eq!(t.letters(), "POCE");
        assert_eq!(
            t.names(),
            ["proprietary", "out-of-tree", "staging", "unsigned"]
        );
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(
            json,
            r#"["proprietary","out-of-tree","staging","unsigned"]"#
        );
        assert_eq!(serde_json::from_str::<Taint>(&json).unwrap(), t);
        // No license at all is "unspecified" to the kernel: proprietary.
        assert!(
            parse(&tiny_module(b"intree=Y\0"))
                .unwrap()
                .taint(false)
                .proprietary
        );
    }

    #[test]
    fn taint_sets_combine_and_refuse_unknown_names() {
        let deny: Taint = serde_json::from_str(r#"["unsigned","out-of-tree","unsigned"]"#).unwrap();
        assert_eq!(deny.names(), ["out-of-tree", "unsigned"]);
        let module = Taint {
            unsigned: true,
            proprietary: true,
            ..Taint::default()
        };
        assert_eq!(module.intersection(&deny).names(), ["unsigned"]);
        assert_eq!(deny.difference(&module).names(), ["out-of-tree"]);
        assert!(Taint::default().is_empty() && !deny.is_empty());
        let e = serde_json::from_str::<Taint>(r#"["sparkly"]"#).unwrap_err();
        assert!(e.to_string().contains("sparkly"), "{e}");
        assert!(serde_json::from_str::<Taint>(r#"["out_of_tree"]"#).is_err());
    }

    #[test]
    fn licenses_follow_the_kernel_list() {
        for ok in [
            "GPL",
            "GPL v2",
            "GPL and additional rights",
            "Dual BSD/GPL",
            "Dual MIT/GPL",
            "Dual MPL/GPL",
        ] {
            assert!(license_is_gpl_compatible(ok), "{ok}");
        }
        for no in [
            "Proprietary",
            "MIT",
            "BSD",
            "gpl",
            "GPL v3",
            "Dual BSD/GPL ",
        ] {
            assert!(!license_is_gpl_compatible(no), "{no}");
        }
    }

    #[test]
    fn vermagic_comparison_like_same_magic() {
        let info = ModInfo {
            vermagic: Some("6.1.0-48-amd64 SMP preempt mod_unload modversions ".into()),
            ..ModInfo::default()
        };
        let kernel = "6.1.0-48-amd64 SMP preempt mod_unload modversions ";
        assert!(info.vermagic_matches(kernel, false));
        assert!(info.vermagic_matches("6.1.0-99-amd64 SMP preempt mod_unload modversions ", true));
        assert!(!info.vermagic_matches("6.1.0-99-amd64 SMP preempt mod_unload modversions ", false));
        assert!(!info.vermagic_matches("6.1.0-48-amd64 SMP mod_unload modversions ", true));
        assert!(!ModInfo::default().vermagic_matches(kernel, true));
    }
}
