//! Just enough of the .xz container to unpack a compressed kernel: blocks whose filter
//! chain is LZMA2, optionally after the x86 BCJ filter (what `CONFIG_KERNEL_XZ` uses and
//! `lzma-rs` does not undo). The LZMA2 data itself is decoded by `lzma-rs`.

use std::io::{self, BufRead, Cursor, Read};

const MAGIC: &[u8; 6] = b"\xfd7zXZ\0";
const FILTER_X86: u64 = 0x04;
const FILTER_LZMA2: u64 = 0x21;

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Decompresses one .xz stream (trailing bytes after its blocks are ignored).
pub fn decompress(data: &[u8]) -> io::Result<Vec<u8>> {
    if !data.starts_with(MAGIC) || data.len() < 12 {
        return Err(invalid("not an xz stream"));
    }
    // Stream flags: byte 7 holds the check type, whose size follows each block.
    let check_len = match data[7] & 0x0f {
        0 => 0,
        c @ 1..=15 => 4usize << ((c - 1) / 3),
        _ => return Err(invalid("bad xz stream flags")),
    };
    let mut cur = Cursor::new(data);
    cur.set_position(12);
    let mut out = Vec::new();
    loop {
        let start = cur.position() as usize;
        let size_byte = *data
            .get(start)
            .ok_or_else(|| invalid("truncated xz stream"))?;
        if size_byte == 0 {
            // The index: no more blocks.
            return Ok(out);
        }
        let header_len = (usize::from(size_byte) + 1) * 4;
        let header = data
            .get(start..start + header_len)
            .ok_or_else(|| invalid("truncated xz block header"))?;
        let x86 = parse_block_header(header)?;
        cur.set_position((start + header_len) as u64);
        let block_start = out.len();
        lzma_rs::lzma2_decompress(&mut cur, &mut out)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        if x86 {
            bcj_x86_decode(&mut out[block_start..]);
        }
        // Block padding to a multiple of four, then the check.
        let pos = cur.position() as usize;
        let padded = (pos - start).div_ceil(4) * 4 + start;
        cur.set_position((padded + check_len) as u64);
        if cur.fill_buf()?.is_empty() {
            return Err(invalid("truncated xz stream"));
        }
    }
}

/// Returns whether the block's filter chain starts with x86 BCJ; refuses other chains.
fn parse_block_header(h: &[u8]) -> io::Result<bool> {
    let mut r = Cursor::new(&h[1..]);
    let mut flags = [0u8];
    r.read_exact(&mut flags)?;
    let filters = usize::from(flags[0] & 0x03) + 1;
    if flags[0] & 0x40 != 0 {
        varint(&mut r)?;
    }
    if flags[0] & 0x80 != 0 {
        varint(&mut r)?;
    }
    let mut ids = Vec::with_capacity(filters);
    for _ in 0..filters {
        let id = varint(&mut r)?;
        let props = varint(&mut r)?;
        let mut skip = vec![0u8; usize::try_from(props).map_err(|_| invalid("xz props"))?];
        r.read_exact(&mut skip)?;
        // A BCJ start offset other than zero is never used for kernels.
        if id == FILTER_X86 && skip.iter().any(|&b| b != 0) {
            return Err(invalid("xz x86 filter with a start offset"));
        }
        ids.push(id);
    }
    match ids.as_slice() {
        [FILTER_LZMA2] => Ok(false),
        [FILTER_X86, FILTER_LZMA2] => Ok(true),
        _ => Err(invalid("unsupported xz filter chain")),
    }
}

fn varint(r: &mut impl Read) -> io::Result<u64> {
    let mut v = 0u64;
    for i in 0..9 {
        let mut b = [0u8];
        r.read_exact(&mut b)?;
        v |= u64::from(b[0] & 0x7f) << (7 * i);
        if b[0] & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(invalid("xz varint too long"))
}

/// Undoes the x86 BCJ filter over a whole buffer decoded from position 0: CALL/JMP
/// (E8/E9) operands were made absolute by the encoder; make them relative again.
pub(crate) fn bcj_x86_decode(buf: &mut [u8]) {
    const ALLOWED: [bool; 8] = [true, true, true, false, true, false, false, false];
    const BIT_NUM: [u32; 8] = [0, 1, 2, 2, 3, 3, 3, 3];
    let test_ms = |b: u8| b == 0x00 || b == 0xff;
    if buf.len() <= 4 {
        return;
    }
    let limit = buf.len() - 4;
    let mut prev_pos: usize = usize::MAX;
    let mut prev_mask: u32 = 0;
    let mut i = 0usize;
    while i < limit {
        if buf[i] & 0xfe != 0xe8 {
            i += 1;
            continue;
        }
        let dist = i.wrapping_sub(prev_pos);
        if dist > 3 {
            prev_mask = 0;
        } else {
            prev_mask = (prev_mask << (dist - 1)) & 7;
            if prev_mask != 0 {
                let b = buf[i + 4 - BIT_NUM[prev_mask as usize] as usize];
                if !ALLOWED[prev_mask as usize] || test_ms(b) {
                    prev_pos = i;
                    prev_mask = (prev_mask << 1) | 1;
                    i += 1;
                    continue;
                }
            }
        }
        prev_pos = i;
        if test_ms(buf[i + 4]) {
            let mut src = u32::from_le_bytes([buf[i + 1], buf[i + 2], buf[i + 3], buf[i + 4]]);
            let mut dest;
            loop {
                dest = src.wrapping_sub((i as u32).wrapping_add(5));
                if prev_mask == 0 {
                    break;
                }
                let j = BIT_NUM[prev_mask as usize] * 8;
                let b = (dest >> (24 - j)) as u8;
                if !test_ms(b) {
                    break;
                }
                src = dest ^ ((1u32 << (32 - j)) - 1);
            }
            dest &= 0x01ff_ffff;
            dest |= 0u32.wrapping_sub(dest & 0x0100_0000);
            buf[i + 1..i + 5].copy_from_slice(&dest.to_le_bytes());
            i += 5;
        } else {
            prev_mask = (prev_mask << 1) | 1;
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// x86 code-like bytes: many E8/E9 with small and sign-extended operands.
    fn sample() -> Vec<u8> {
        let mut v = Vec::new();
        let mut x: u32 = 7;
        for k in 0..50_000u32 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            match x % 5 {
                0 => v.extend_from_slice(&[0xe8, x as u8, (x >> 8) as u8, 0, 0]),
                1 => v.extend_from_slice(&[0xe9, x as u8, 0xff, 0xff, 0xff]),
                2 => v.extend_from_slice(&[0xe8, 0xe8, 0xe9, 0x00, 0xff]),
                _ => v.extend_from_slice(&k.to_le_bytes()),
            }
        }
        v
    }

    /// The reference: the xz tool's own x86 BCJ + LZMA2 encoder.
    #[test]
    fn agrees_with_the_xz_tool() {
        let data = sample();
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("d");
        std::fs::write(&p, &data).unwrap();
        let out = match Command::new("xz")
            .args(["--x86", "--lzma2=preset=1", "--check=crc32", "-c"])
            .arg(&p)
            .output()
        {
            Ok(o) => o,
            Err(e) => {
                if std::env::var("MODGATE_REQUIRE_REAL").as_deref() == Ok("1") {
                    panic!("xz is required: {e}");
                }
                eprintln!("skipped: no xz tool ({e})");
                return;
            }
        };
        assert!(out.status.success());
        assert_eq!(decompress(&out.stdout).unwrap(), data);
        // Without BCJ too, and with a crc64 check.
        let out = Command::new("xz")
            .args(["--check=crc64", "-c"])
            .arg(&p)
            .output()
            .unwrap();
        assert_eq!(decompress(&out.stdout).unwrap(), data);
        // A damaged stream is an error.
        let mut bad = out.stdout.clone();
        bad.truncate(bad.len() / 2);
        assert!(decompress(&bad).is_err());
    }

    #[test]
    fn bcj_leaves_short_and_plain_buffers_alone() {
        let mut b = vec![0xe8, 1, 2, 3];
        bcj_x86_decode(&mut b);
        assert_eq!(b, [0xe8, 1, 2, 3]);
        let mut plain = b"no call opcodes here".to_vec();
        bcj_x86_decode(&mut plain);
        assert_eq!(plain, b"no call opcodes here");
        // An absolute target 0x10 at position 0 becomes relative 0x10 - 5.
        let mut call = vec![0xe8, 0x10, 0, 0, 0, 0x90, 0x90, 0x90, 0x90];
        bcj_x86_decode(&mut call);
        assert_eq!(call[..5], [0xe8, 0x0b, 0, 0, 0]);
    }
}
