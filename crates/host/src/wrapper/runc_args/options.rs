//! The options of runc 1.1 and crun 1.8 that matter to the wrapper's parse: each
//! runtime's global options and those of its creating commands, with whether they take
//! a value (`runc COMMAND --help`, `crun COMMAND --help`). An option missing here makes
//! the wrapper refuse a command that uses it, never guess.

/// One option: its names (long, then an optional short letter) and whether it takes a
/// value.
pub struct Opt {
    pub long: &'static str,
    pub short: Option<char>,
    pub value: bool,
}

const fn v(long: &'static str) -> Opt {
    Opt {
        long,
        short: None,
        value: true,
    }
}

const fn f(long: &'static str) -> Opt {
    Opt {
        long,
        short: None,
        value: false,
    }
}

const fn s(long: &'static str, short: char, value: bool) -> Opt {
    Opt {
        long,
        short: Some(short),
        value,
    }
}

pub const RUNC_GLOBAL: &[Opt] = &[
    f("debug"),
    v("log"),
    v("log-format"),
    v("root"),
    v("criu"),
    f("systemd-cgroup"),
    v("rootless"),
    s("help", 'h', false),
    s("version", 'v', false),
];

pub const RUNC_CREATE: &[Opt] = &[
    s("bundle", 'b', true),
    v("console-socket"),
    v("pid-file"),
    f("no-pivot"),
    f("no-new-keyring"),
    v("preserve-fds"),
    s("help", 'h', false),
];

pub const RUNC_RUN: &[Opt] = &[
    s("bundle", 'b', true),
    v("console-socket"),
    s("detach", 'd', false),
    f("keep"),
    v("pid-file"),
    f("no-subreaper"),
    f("no-pivot"),
    f("no-new-keyring"),
    v("preserve-fds"),
    s("help", 'h', false),
];

pub const RUNC_RESTORE: &[Opt] = &[
    v("console-socket"),
    v("image-path"),
    v("work-path"),
    f("tcp-established"),
    f("ext-unix-sk"),
    f("shell-job"),
    f("file-locks"),
    v("manage-cgroups-mode"),
    s("bundle", 'b', true),
    s("detach", 'd', false),
    v("pid-file"),
    f("no-subreaper"),
    f("no-pivot"),
    v("empty-ns"),
    f("auto-dedup"),
    f("lazy-pages"),
    v("lsm-profile"),
    v("lsm-mount-context"),
    s("help", 'h', false),
];

pub const CRUN_GLOBAL: &[Opt] = &[
    v("cgroup-manager"),
    f("debug"),
    v("log"),
    v("log-format"),
    v("root"),
    v("rootless"),
    f("systemd-cgroup"),
    s("help", '?', false),
    f("usage"),
    s("version", 'v', false),
    s("version", 'V', false),
];

pub const CRUN_CREATE: &[Opt] = &[
    s("bundle", 'b', true),
    v("console-socket"),
    s("config", 'f', true),
    f("no-new-keyring"),
    f("no-pivot"),
    f("no-subreaper"),
    v("pid-file"),
    v("preserve-fds"),
    s("help", '?', false),
    f("usage"),
];

pub const CRUN_RUN: &[Opt] = &[
    s("bundle", 'b', true),
    v("console-socket"),
    s("detach", 'd', false),
    s("config", 'f', true),
    f("no-new-keyring"),
    f("no-pivot"),
    f("no-subreaper"),
    v("pid-file"),
    v("preserve-fds"),
    s("help", '?', false),
    f("usage"),
];

/// crun's restore (when built with CRIU) takes runc's restore options.
pub const CRUN_RESTORE: &[Opt] = RUNC_RESTORE;
