//! `modprobe.d` files, read as kmod reads them. Every directive shows as one line of
//! `modprobe -c` output (what `render_modprobe_c` prints), and that output, read back as
//! configuration, prints the same: kmod prints values as read, unescaped, so this holds
//! for files without a backslash (which escapes the byte after it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use modgate_core::Config;

fuzz_target!(|data: &[u8]| {
    let mut c = Config::default();
    c.parse_file("fuzz.conf", data);
    let shown = c.render_modprobe_c();
    let directives =
        c.aliases.len() + c.options.len() + c.install.len() + c.remove.len() + c.blacklist.len();
    assert_eq!(
        shown.matches('\n').count(),
        directives + c.softdeps.len() + 3,
        "one line each"
    );
    for w in &c.warnings {
        assert!(!w.contains('\n'), "a warning is one line: {w:?}");
    }
    if data.contains(&b'\\') {
        return;
    }
    let mut again = Config::default();
    again.parse_file("shown.conf", shown.as_bytes());
    // kmod prints a softdep that lists nothing as `softdep NAME ` (as it keeps it), a
    // line it would itself refuse to read: the one part that does not read back.
    let readable: String = shown
        .split_inclusive('\n')
        .filter(|l| !(l.starts_with("softdep ") && l.split(' ').nth(2) == Some("\n")))
        .collect();
    assert_eq!(
        again.render_modprobe_c(),
        readable,
        "modprobe -c output reads back the same"
    );
    // The lookups the resolver makes.
    for name in ["ip_vs", "dummy"] {
        let _ = c.options_for(name, Some("alias"));
        let _ = c.install_for(name);
        let _ = c.remove_for(name);
        let _ = c.softdep_for(name);
        let _ = c.blacklisted(name);
    }
});
