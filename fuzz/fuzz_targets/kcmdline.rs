//! `/proc/cmdline` as kmod reads it for module options and `modprobe.blacklist=`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modgate_core::config::kcmdline_options;
use modgate_core::Config;

fuzz_target!(|data: &[u8]| {
    for o in kcmdline_options(data) {
        // The module name ends at the first dot.
        assert!(!o.module.contains(&b'.'), "{o:?}");
        // `param` is `name=value` whenever there is a value.
        if let Some(v) = &o.value {
            let eq = o
                .param
                .iter()
                .position(|&b| b == b'=')
                .expect("a value follows '='");
            assert_eq!(&o.param[eq + 1..], &v[..], "{o:?}");
        }
    }
    let mut c = Config::default();
    c.parse_kcmdline(data);
    let _ = c.render_modprobe_c();
});
