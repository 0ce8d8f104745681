//! The real runtime's command line as the runtime wrapper reads it (NUL-separated
//! arguments; the first byte picks runc's or crun's syntax). Whatever it reports was on
//! the command line: the command is one of the arguments, the bundle, config and log
//! values are parts of arguments.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modgate_fuzz::args;
use modgate_host::wrapper::runc_args::{parse, Dialect};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let d = if sel & 1 == 0 {
        Dialect::Runc
    } else {
        Dialect::Crun
    };
    let argv = args(rest);
    let (r, err) = parse(&argv, d);
    if let Some(c) = &r.command {
        assert!(argv.contains(c), "command {c:?} is not an argument");
    }
    for v in [&r.bundle, &r.config, &r.log, &r.log_format]
        .into_iter()
        .flatten()
    {
        assert!(
            argv.iter().any(|a| a.ends_with(v.as_str())),
            "value {v:?} is not in an argument"
        );
    }
    // An error is reported only where it may hide a creating command's bundle: in a
    // creating command, or before a command that could not be read but may be one.
    if err.is_some() {
        let maybe = ["create", "run", "restore"]
            .iter()
            .any(|c| argv.iter().any(|a| a == c));
        assert!(
            r.creates() || (r.command.is_none() && maybe),
            "{err:?} reported for {r:?}"
        );
    }
});
