//! Generated kernel command lines: thousands of random lines, each read by modprobe
//! through /proc/cmdline (one private mount namespace for all) and by modgate from the
//! root's proc/cmdline, compared as `modprobe -c` and `--show-depends` print them.

use super::fake_tree::{self, module, Spec};
use super::trees::can_build_trees;
use super::*;

/// A small deterministic generator (xorshift64*), so a failing line can be found again.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

/// One random kernel command line: module options with and without values, dots in
/// names and values, quotes anywhere, `modprobe.blacklist` lists (quoted, repeated),
/// every C blank as a separator, control and non-ASCII bytes, a NUL now and then, and
/// lines past kmod's 4095-byte buffer.
fn random_cmdline(rng: &mut Rng) -> String {
    const MODS: &[&str] = &[
        "foo", "bar", "mod-a", "mod_a", "modprobe", "", "a[b]", "a]", "x[", "é", "fo\"o", "foo.",
        "ip_vs",
    ];
    const PARAMS: &[&str] = &["p", "blacklist", "x.y", "a-b", "", "p.q", "é", "q"];
    const VALUE: &[&str] = &[
        "1", "1.5G", "a b", ",", "foo,bar", "mod-a", "\"", ".", "=", "\t", "x", "é", "\u{1}", " ",
        "\n", "\u{b}", ",,", "\u{7f}", "\u{a0}",
    ];
    const FILLER: &[&str] = &[
        "quiet",
        "rdinit=/x",
        "--",
        "0.0.0.0:1",
        "root=/dev/sda1",
        "ro",
        "\"",
        "a.b.c",
    ];
    const SEP: &[&str] = &[" ", " ", " ", " ", "  ", "\t", "\n", "\r", "\u{c}"];
    let mut line = String::new();
    if rng.chance(2) {
        line.push_str(&"x".repeat(4080 + rng.below(20)));
        line.push(' ');
    }
    for w in 0..1 + rng.below(8) {
        if w > 0 {
            line.push_str(rng.pick(SEP));
        }
        if rng.chance(12) {
            line.push_str(rng.pick(FILLER));
            continue;
        }
        let mut word = String::new();
        if rng.chance(15) {
            word.push('"');
        }
        if rng.chance(20) {
            word.push_str("modprobe.blacklist=");
            for i in 0..rng.below(4) {
                if i > 0 {
                    word.push(',');
                }
                word.push_str(rng.pick(&["foo", "bar", "mod-a", "", "\"x", "y\""]));
            }
        } else {
            word.push_str(rng.pick(MODS));
            if rng.chance(85) {
                word.push('.');
                word.push_str(rng.pick(PARAMS));
            }
            if rng.chance(70) {
                word.push('=');
                for _ in 0..rng.below(4) {
                    word.push_str(rng.pick(VALUE));
                }
            }
        }
        if rng.chance(15) {
            word.push('"');
        }
        if rng.chance(10) {
            let at: Vec<usize> = word.char_indices().map(|(i, _)| i).collect();
            if !at.is_empty() {
                word.insert(at[rng.below(at.len())], '"');
            }
        }
        line.push_str(&word);
    }
    if rng.chance(1) {
        line.insert(rng.below(line.len() / 2 + 1).min(line.len()), '\0');
        while !line.is_char_boundary(line.len()) {
            line.pop();
        }
    }
    if rng.chance(80) {
        line.push('\n');
    }
    line
}

#[test]
fn generated_kernel_command_lines_agree_with_modprobe() {
    const LINES: usize = 2000;
    const NAMES: &[&str] = &["foo", "mod-a", "foo-alias", "bar", "ip_vs"];
    if !can_build_trees() {
        return;
    }
    let tree = fake_tree::build(
        &Spec {
            name: "command line",
            release: "4.18.0-cmdline.el8.x86_64",
            modules: vec![
                module("kernel/f/foo.ko", &["alias=foo-alias"], &["foo_sym"], &[]),
                module("kernel/f/bar.ko", &[], &[], &["foo_sym"]),
                module("kernel/f/mod-a.ko", &[], &[], &[]),
            ],
            builtin: Some(vec!["kernel/net/ipv4/ip_vs.ko"]),
            ..Default::default()
        },
        "",
    );
    let work = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(0x6d6f_6467_6174_6521);
    let mut cases = Vec::new();
    for i in 0..LINES {
        let line = random_cmdline(&mut rng);
        let root = work.path().join(format!("{i:04}"));
        std::fs::create_dir_all(root.join("proc")).expect("mkdir");
        std::fs::write(root.join("proc/cmdline"), &line).expect("write cmdline");
        std::os::unix::fs::symlink(tree.root().join("lib"), root.join("lib")).expect("symlink");
        // Every fourth line also resolves a name, to see the options reach the plan.
        if i % 4 == 0 {
            std::fs::write(root.join("name"), NAMES[(i / 4) % NAMES.len()]).expect("name");
        }
        cases.push(format!("{i:04}"));
    }
    // One private mount namespace for all lines: the file bound over /proc/cmdline is
    // rewritten in place before each modprobe call.
    let script = r#"
        cur="$1/cur"; : > "$cur"
        mount --bind "$cur" /proc/cmdline || exit 1
        for d in "$1"/[0-9]*; do
            cat "$d/proc/cmdline" > "$cur"
            modprobe -d "$d" -S "$2" -C "$3" -c > "$d/want.c" 2>/dev/null
            printf 'rc=%d' $? >> "$d/want.c"
            if [ -e "$d/name" ]; then
                modprobe -d "$d" -S "$2" -C "$3" --show-depends "$(cat "$d/name")" > "$d/want.show" 2>/dev/null
                printf 'rc=%d' $? >> "$d/want.show"
            fi
        done
    "#;
    let status = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(work.path())
        .arg(&tree.release)
        .arg(&tree.conf)
        .status()
        .expect("run unshare");
    assert!(status.success(), "modprobe batch failed: {status}");
    let release = tree.release.as_str();
    let conf = tree.conf.as_path();
    let bad = compare_all(&cases, |case| {
        let root = work.path().join(case);
        let line = std::fs::read(root.join("proc/cmdline")).unwrap_or_default();
        let label = format!("line {case} {:?}", String::from_utf8_lossy(&line));
        let want = std::fs::read_to_string(root.join("want.c")).expect("modprobe -c output");
        if let Some(d) = diff(&label, &want, &modgate_config(&root, release, conf)) {
            return Some(d);
        }
        let name = std::fs::read_to_string(root.join("name")).ok()?;
        let want = std::fs::read_to_string(root.join("want.show")).expect("modprobe output");
        diff(
            &format!("{label} --show-depends {name}"),
            &want,
            &modgate(&root, release, &[conf], &name),
        )
    });
    // The lines must exercise the parser: many give options, many a blacklist.
    let (mut with_options, mut with_blacklist) = (0, 0);
    for case in &cases {
        let want =
            std::fs::read_to_string(work.path().join(case).join("want.c")).unwrap_or_default();
        with_options += usize::from(want.lines().any(|l| l.starts_with("options ")));
        with_blacklist += usize::from(want.lines().any(|l| l.starts_with("blacklist ")));
    }
    println!("({with_options} lines gave options, {with_blacklist} a blacklist)");
    assert!(with_options > LINES / 3 && with_blacklist > LINES / 5);
    report("generated kernel command lines", cases.len(), &bad);
}
