//! The `.modinfo` section of a module (ELF64, either byte order), read from the bytes with
//! bounds checks, and the taint flags the kernel would set when loading it.

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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
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

impl Taint {
    pub fn letters(&self) -> String {
        [
            (self.proprietary, 'P'),
            (self.out_of_tree, 'O'),
            (self.staging, 'C'),
            (self.unsigned, 'E'),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, c)| *c)
        .collect()
    }

    /// Names as a policy writes them (`deny_taint = ["proprietary", "out_of_tree"]`).
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.proprietary, "proprietary"),
            (self.out_of_tree, "out_of_tree"),
            (self.staging, "staging"),
            (self.unsigned, "unsigned"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElfError {
    #[error("not an ELF64 file")]
    NotElf64,
    #[error("ELF section headers run past the end of the file")]
    SectionHeaders,
    #[error("ELF section {0} runs past the end of the file")]
    Section(usize),
    #[error("no .modinfo section")]
    NoModinfo,
}

/// Reads the `.modinfo` section of a module image (uncompressed ELF).
pub fn parse(image: &[u8]) -> Result<ModInfo, ElfError> {
    let section = modinfo_section(image)?;
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

struct Elf<'a> {
    data: &'a [u8],
    big: bool,
}

impl<'a> Elf<'a> {
    fn bytes<const N: usize>(&self, off: usize) -> Option<[u8; N]> {
        self.data.get(off..off.checked_add(N)?)?.try_into().ok()
    }
    fn u16(&self, off: usize) -> Option<u16> {
        let b = self.bytes::<2>(off)?;
        Some(if self.big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }
    fn u32(&self, off: usize) -> Option<u32> {
        let b = self.bytes::<4>(off)?;
        Some(if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }
    fn u64(&self, off: usize) -> Option<usize> {
        let b = self.bytes::<8>(off)?;
        let v = if self.big {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        };
        usize::try_from(v).ok()
    }
    fn slice(&self, off: usize, len: usize) -> Option<&'a [u8]> {
        self.data.get(off..off.checked_add(len)?)
    }
}

const SHT_NOBITS: u32 = 8;
const SHDR_SIZE: usize = 64;

/// Section `i`'s type, name offset and contents (empty for SHT_NOBITS).
fn section_at<'a>(elf: &Elf<'a>, shoff: usize, i: usize) -> Result<(u32, u32, &'a [u8]), ElfError> {
    let hdr = || ElfError::SectionHeaders;
    // In bounds of the address space: the caller checked the whole table.
    let h = shoff + i * SHDR_SIZE;
    let name = elf.u32(h).ok_or_else(hdr)?;
    let kind = elf.u32(h + 4).ok_or_else(hdr)?;
    let off = elf.u64(h + 0x18).ok_or_else(hdr)?;
    let size = elf.u64(h + 0x20).ok_or_else(hdr)?;
    if kind == SHT_NOBITS {
        return Ok((name, kind, &[]));
    }
    let body = elf.slice(off, size).ok_or(ElfError::Section(i))?;
    Ok((name, kind, body))
}

fn modinfo_section(data: &[u8]) -> Result<&[u8], ElfError> {
    // e_ident: magic, ELFCLASS64, ELFDATA2LSB/2MSB.
    let big = match data.get(..6) {
        Some([0x7f, b'E', b'L', b'F', 2, 1]) => false,
        Some([0x7f, b'E', b'L', b'F', 2, 2]) => true,
        _ => return Err(ElfError::NotElf64),
    };
    let elf = Elf { data, big };
    let hdr = || ElfError::SectionHeaders;
    let shoff = elf.u64(0x28).ok_or_else(hdr)?;
    let shentsize = usize::from(elf.u16(0x3a).ok_or_else(hdr)?);
    let mut shnum = usize::from(elf.u16(0x3c).ok_or_else(hdr)?);
    let mut shstrndx = usize::from(elf.u16(0x3e).ok_or_else(hdr)?);
    if shentsize != SHDR_SIZE || shoff == 0 {
        return Err(hdr());
    }
    // Extended numbering: the real counts live in section 0.
    if shnum == 0 {
        shnum = elf
            .u64(shoff.checked_add(0x20).ok_or_else(hdr)?)
            .ok_or_else(hdr)?;
    }
    if shstrndx == 0xffff {
        shstrndx = elf
            .u32(shoff.checked_add(0x28).ok_or_else(hdr)?)
            .ok_or_else(hdr)? as usize;
    }
    let table_len = shnum.checked_mul(SHDR_SIZE).ok_or_else(hdr)?;
    elf.slice(shoff, table_len).ok_or_else(hdr)?;
    let section = |i: usize| section_at(&elf, shoff, i);
    if shstrndx >= shnum {
        return Err(hdr());
    }
    let (_, _, strtab) = section(shstrndx)?;
    for i in 1..shnum {
        let (name, kind, body) = section(i)?;
        let Some(tail) = strtab.get(name as usize..) else {
            continue;
        };
        let n = tail.split(|&b| b == 0).next().unwrap_or_default();
        if n == b".modinfo" && kind != SHT_NOBITS {
            return Ok(body);
        }
    }
    Err(ElfError::NoModinfo)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal little-endian ELF64 relocatable with a `.modinfo` and a `.shstrtab`.
    pub(crate) fn tiny_module(modinfo: &[u8]) -> Vec<u8> {
        let shstrtab = b"\0.modinfo\0.shstrtab\0";
        let mut f = vec![0u8; 64];
        f[..6].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1]);
        f[6] = 1;
        let modinfo_off = f.len();
        f.extend_from_slice(modinfo);
        let strtab_off = f.len();
        f.extend_from_slice(shstrtab);
        while f.len() % 8 != 0 {
            f.push(0);
        }
        let shoff = f.len();
        let mut sh = |name: u32, kind: u32, off: usize, size: usize| {
            let mut h = [0u8; 64];
            h[0..4].copy_from_slice(&name.to_le_bytes());
            h[4..8].copy_from_slice(&kind.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&(off as u64).to_le_bytes());
            h[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
            f.extend_from_slice(&h);
        };
        sh(0, 0, 0, 0);
        sh(1, 1, modinfo_off, modinfo.len());
        sh(10, 3, strtab_off, shstrtab.len());
        f[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        f[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        f[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        f[0x3e..0x40].copy_from_slice(&2u16.to_le_bytes());
        f
    }

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
            ["proprietary", "out_of_tree", "staging", "unsigned"]
        );
        // No license at all is "unspecified" to the kernel: proprietary.
        assert!(
            parse(&tiny_module(b"intree=Y\0"))
                .unwrap()
                .taint(false)
                .proprietary
        );
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

    #[test]
    fn damaged_elf_is_an_error_not_a_panic() {
        let good = tiny_module(b"name=x\0");
        assert!(parse(&good).is_ok());
        assert_eq!(parse(b"\x7fELF\x01\x01"), Err(ElfError::NotElf64));
        assert_eq!(parse(b""), Err(ElfError::NotElf64));
        // Every truncation and every single-byte corruption of the header area.
        for cut in 0..good.len() {
            let _ = parse(&good[..cut]);
        }
        for i in 0..good.len() {
            for v in [0x00, 0xff, 0x7f] {
                let mut m = good.clone();
                m[i] = v;
                let _ = parse(&m);
            }
        }
        let mut no_modinfo = good.clone();
        // Rename ".modinfo" in the string table.
        let at = no_modinfo
            .windows(8)
            .position(|w| w == b".modinfo")
            .unwrap();
        no_modinfo[at + 1] = b'X';
        assert_eq!(parse(&no_modinfo), Err(ElfError::NoModinfo));
    }
}
