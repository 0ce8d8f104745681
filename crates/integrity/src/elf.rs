//! Reading one section of an ELF64 image from its bytes, every offset bounds-checked:
//! enough to find a module's `.modinfo` without trusting the file.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElfError {
    #[error("not an ELF64 file")]
    NotElf64,
    #[error("ELF section headers run past the end of the file")]
    SectionHeaders,
    #[error("ELF section {0} runs past the end of the file")]
    Section(usize),
    #[error("no {0} section")]
    Missing(&'static str),
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

/// The contents of the section called `name` in an ELF64 image (either byte order).
pub fn section<'a>(data: &'a [u8], name: &'static str) -> Result<&'a [u8], ElfError> {
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
    let header = |i: usize| section_at(&elf, shoff, i);
    if shstrndx >= shnum {
        return Err(hdr());
    }
    let (_, _, strtab) = header(shstrndx)?;
    for i in 1..shnum {
        let (name_off, kind, body) = header(i)?;
        let Some(tail) = strtab.get(name_off as usize..) else {
            continue;
        };
        let n = tail.split(|&b| b == 0).next().unwrap_or_default();
        if n == name.as_bytes() && kind != SHT_NOBITS {
            return Ok(body);
        }
    }
    Err(ElfError::Missing(name))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal little-endian ELF64 relocatable with a `.modinfo` and a `.shstrtab`.
    pub(crate) fn tiny_module(modinfo: &[u8]) -> Vec<u8> {
        tiny_elf(modinfo, false)
    }

    fn tiny_elf(modinfo: &[u8], big: bool) -> Vec<u8> {
        let u16b = |v: u16| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let u32b = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let u64b = |v: usize| {
            let v = v as u64;
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let shstrtab = b"\0.modinfo\0.shstrtab\0";
        let mut f = vec![0u8; 64];
        f[..6].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, if big { 2 } else { 1 }]);
        f[6] = 1;
        let modinfo_off = f.len();
        f.extend_from_slice(modinfo);
        let strtab_off = f.len();
        f.extend_from_slice(shstrtab);
        while !f.len().is_multiple_of(8) {
            f.push(0);
        }
        let shoff = f.len();
        let mut sh = |name: u32, kind: u32, off: usize, size: usize| {
            let mut h = [0u8; 64];
            h[0..4].copy_from_slice(&u32b(name));
            h[4..8].copy_from_slice(&u32b(kind));
            h[0x18..0x20].copy_from_slice(&u64b(off));
            h[0x20..0x28].copy_from_slice(&u64b(size));
            f.extend_from_slice(&h);
        };
        sh(0, 0, 0, 0);
        sh(1, 1, modinfo_off, modinfo.len());
        sh(10, 3, strtab_off, shstrtab.len());
        f[0x28..0x30].copy_from_slice(&u64b(shoff));
        f[0x3a..0x3c].copy_from_slice(&u16b(64));
        f[0x3c..0x3e].copy_from_slice(&u16b(3));
        f[0x3e..0x40].copy_from_slice(&u16b(2));
        f
    }

    #[test]
    fn both_byte_orders() {
        for big in [false, true] {
            let m = tiny_elf(b"name=x\0", big);
            assert_eq!(section(&m, ".modinfo"), Ok(&b"name=x\0"[..]), "big={big}");
            assert_eq!(section(&m, ".shstrtab").map(|s| s.len()), Ok(20));
            assert_eq!(section(&m, ".text"), Err(ElfError::Missing(".text")));
        }
        // A big-endian header read as little-endian points outside the file.
        let mut m = tiny_elf(b"name=x\0", true);
        m[5] = 1;
        assert!(section(&m, ".modinfo").is_err());
    }

    #[test]
    fn damaged_elf_is_an_error_not_a_panic() {
        let good = tiny_module(b"name=x\0");
        assert!(section(&good, ".modinfo").is_ok());
        assert_eq!(
            section(b"\x7fELF\x01\x01", ".modinfo"),
            Err(ElfError::NotElf64)
        );
        assert_eq!(section(b"", ".modinfo"), Err(ElfError::NotElf64));
        // Every truncation and every single-byte corruption of the header area.
        for cut in 0..good.len() {
            let _ = section(&good[..cut], ".modinfo");
        }
        for i in 0..good.len() {
            for v in [0x00, 0xff, 0x7f] {
                let mut m = good.clone();
                m[i] = v;
                let _ = section(&m, ".modinfo");
            }
        }
        let mut no_modinfo = good.clone();
        // Rename ".modinfo" in the string table.
        let at = no_modinfo
            .windows(8)
            .position(|w| w == b".modinfo")
            .unwrap();
        no_modinfo[at + 1] = b'X';
        assert_eq!(
            section(&no_modinfo, ".modinfo"),
            Err(ElfError::Missing(".modinfo"))
        );
    }
}
