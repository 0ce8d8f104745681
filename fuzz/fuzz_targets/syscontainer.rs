//! syscontainer-tools: the stage iSulad names in `syscontainer-hooks`' arguments
//! (NUL-separated). A stage found is the value of a `--state` option.
#![no_main]

use std::ffi::OsString;

use libfuzzer_sys::fuzz_target;
use modgate_fuzz::args;
use modgate_host::engines::syscontainer::stage;

fuzz_target!(|data: &[u8]| {
    let argv = args(data);
    let os: Vec<OsString> = argv.iter().map(OsString::from).collect();
    let Some(s) = stage(&os) else {
        assert!(
            !argv.iter().any(|a| a.starts_with("--state=")),
            "--state= missed in {argv:?}"
        );
        return;
    };
    let as_pair = argv.windows(2).any(|w| w[0] == "--state" && w[1] == s);
    let as_one = argv
        .iter()
        .any(|a| a.strip_prefix("--state=") == Some(s.as_str()));
    assert!(
        as_pair || as_one,
        "{s:?} is not a --state value in {argv:?}"
    );
});
