//! The file systems mounted in a mount namespace, from `/proc/PID/mountinfo`: each
//! mount's point and type. [`parse`] is a pure function over the file's text, which it
//! treats as outside input (bounded, no panics).

use super::uses::Mount;

/// More mounts than any host has: the rest of a longer file is not read.
pub const MAX_MOUNTS: usize = 1 << 16;
/// The most of the file that is read.
pub const MAX_BYTES: u64 = 16 << 20;

/// The mount point with mountinfo's octal escapes (`\040` for a space) undone.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .map(|d| d.iter().fold(0u32, |n, c| n * 8 + u32::from(c - b'0')));
        match oct.and_then(|n| u8::try_from(n).ok()) {
            Some(c) => {
                out.push(c);
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line: `ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER`.
fn line(l: &str) -> Option<Mount> {
    let mut fields = l.split(' ');
    let point = fields.nth(4)?;
    // The optional fields end at a lone "-"; the type follows.
    let fstype = fields.skip_while(|f| *f != "-").nth(1)?;
    if fstype.is_empty() {
        return None;
    }
    Some(Mount {
        point: unescape(point),
        fstype: fstype.to_string(),
    })
}

/// Every mount in a mountinfo text; lines that do not parse are skipped.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(line).take(MAX_MOUNTS).collect()
}

/// Reads and parses a mountinfo file, at most [`MAX_BYTES`] of it.
pub fn read(path: &std::path::Path) -> std::io::Result<Vec<Mount>> {
    use std::io::Read;
    let mut text = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_BYTES)
        .read_to_end(&mut text)?;
    Ok(parse(&String::from_utf8_lossy(&text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(point: &str, fstype: &str) -> Mount {
        Mount {
            point: point.into(),
            fstype: fstype.into(),
        }
    }

    #[test]
    fn a_fake_mountinfo_gives_points_and_types() {
        let fake = "\
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
36 22 7:0 / /mnt/with\\040space rw,relatime shared:1 master:2 - ext2 /dev/loop0 rw
37 22 0:40 / /home/u/remote rw - fuse.sshfs u@h:/ rw,user_id=0
38 22 0:41 / /odd\\777x rw - vfat /dev/sdb1 rw
garbage line
39 22 0:42 / /no-type rw shared:3
40 22 0:43 / /empty-type rw - 
";
        assert_eq!(
            parse(fake),
            [
                m("/proc", "proc"),
                m("/mnt/with space", "ext2"),
                m("/home/u/remote", "fuse.sshfs"),
                m("/odd\\777x", "vfat"),
            ]
        );
    }

    #[test]
    fn malformed_fake_lines_never_panic() {
        let good = "36 22 7:0 / /mnt rw shared:1 - ext2 /dev/loop0 rw";
        for cut in 0..good.len() {
            let _ = parse(&good[..cut]);
        }
        for s in ["\\", "\\0", "\\01", "a\\", "\\999", "é\\101"] {
            let _ = unescape(s);
        }
        assert_eq!(unescape("a\\101b\\"), "aAb\\");
        assert!(parse("").is_empty());
    }

    #[test]
    fn reads_the_file_of_a_fixture_root() {
        let t = tempfile::tempdir().expect("tempdir");
        let p = t.path().join("mountinfo");
        std::fs::write(&p, "1 0 0:1 / / rw - ext4 /dev/vda rw\n").expect("write");
        assert_eq!(read(&p).expect("read"), [m("/", "ext4")]);
        assert!(read(&t.path().join("missing")).is_err());
    }
}
