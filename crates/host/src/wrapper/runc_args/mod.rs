//! The OCI runtime's command line, read the way the runtime itself reads it, as far as
//! the runtime wrapper needs it: the global `--log`/`--log-format`, the subcommand, and
//! for `create`, `run` and `restore` the bundle (and crun's `--config`).
//!
//! runc and crun do not agree on syntax, so the wrapper parses in the dialect of the
//! runtime it runs:
//! - runc (urfave/cli over Go's `flag`): `-name` and `--name` alike, values as
//!   `--name value` or `--name=value`, no abbreviations, no attached short values
//!   (`-bB` is an unknown flag); a subcommand's flags may follow its arguments.
//! - crun (argp over getopt_long): long options by any unique prefix (`--bund B`), short
//!   options grouped and with attached values (`-bB`, `-db B`), and parsing stops at the
//!   first argument (the container id).
//!
//! A creating command whose bundle cannot be told for certain (an unknown or ambiguous
//! option, a missing value) is an error: the wrapper refuses it rather than let the
//! container start without modgate's hooks.

/// Which runtime's syntax to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Runc,
    Crun,
}

impl Dialect {
    /// crun for a runtime named `crun...`, runc's syntax for every other.
    pub fn of(runtime: &str) -> Self {
        let name = runtime.rsplit('/').next().unwrap_or(runtime);
        if name.starts_with("crun") {
            Dialect::Crun
        } else {
            Dialect::Runc
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error("unknown option {0:?}")]
    Unknown(String),
    #[error("option {0:?} is ambiguous")]
    Ambiguous(String),
    #[error("option {0:?} needs a value")]
    MissingValue(String),
    #[error("option {0:?} takes no value")]
    UnexpectedValue(String),
    #[error("the value {value:?} of option {option:?} looks like an option")]
    FlagValue { option: String, value: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuncArgs {
    /// `create`, `run`, `state`... (None: only global options, as in `--version`).
    pub command: Option<String>,
    /// `--bundle`/`-b` of a creating command (None: the working directory).
    pub bundle: Option<String>,
    /// crun's `--config`/`-f` (a file name in the bundle).
    pub config: Option<String>,
    /// The global `--log FILE` and `--log-format`, where errors are also reported.
    pub log: Option<String>,
    pub log_format: Option<String>,
}

impl RuncArgs {
    /// Whether the command creates a container from a bundle, so the wrapper has to
    /// look at the bundle before running the runtime.
    pub fn creates(&self) -> bool {
        creates(self.command.as_deref())
    }
}

fn creates(command: Option<&str>) -> bool {
    matches!(command, Some("create" | "run" | "restore"))
}

mod options;

use options::{
    Opt, CRUN_CREATE, CRUN_GLOBAL, CRUN_RESTORE, CRUN_RUN, RUNC_CREATE, RUNC_GLOBAL, RUNC_RESTORE,
    RUNC_RUN,
};

/// An option as parsed: its long name and its value.
type Parsed = (&'static str, Option<String>);

/// Go's `flag`: `-name`, `--name`, `-name=value`, `--name=value`, `--name value`.
/// `it` is positioned after `arg`.
fn go_flag(
    opts: &[Opt],
    arg: &str,
    it: &mut std::slice::Iter<'_, String>,
) -> Result<Parsed, ArgsError> {
    let body = arg.strip_prefix('-').unwrap_or(arg);
    let body = body.strip_prefix('-').unwrap_or(body);
    let (name, inline) = match body.split_once('=') {
        Some((n, v)) => (n, Some(v.to_string())),
        None => (body, None),
    };
    let o = opts
        .iter()
        .find(|o| o.long == name || (name.chars().count() == 1 && o.short == name.chars().next()))
        .ok_or_else(|| ArgsError::Unknown(arg.to_string()))?;
    if !o.value {
        return Ok((o.long, inline));
    }
    let value = match inline {
        Some(v) => v,
        None => it
            .next()
            .cloned()
            .ok_or_else(|| ArgsError::MissingValue(arg.to_string()))?,
    };
    // After urfave/cli moves a subcommand's flags ahead of its arguments, a value that
    // looks like a flag no longer reliably belongs to this one: do not guess.
    if value.starts_with('-') && value.len() > 1 {
        return Err(ArgsError::FlagValue {
            option: arg.to_string(),
            value,
        });
    }
    Ok((o.long, Some(value)))
}

/// getopt_long's long option: exact name, else a unique prefix.
fn long_opt<'o>(opts: &'o [Opt], name: &str, arg: &str) -> Result<&'o Opt, ArgsError> {
    if let Some(o) = opts.iter().find(|o| o.long == name) {
        return Ok(o);
    }
    let mut found: Option<&Opt> = None;
    for o in opts
        .iter()
        .filter(|o| !name.is_empty() && o.long.starts_with(name))
    {
        match found {
            Some(p) if p.long != o.long => return Err(ArgsError::Ambiguous(arg.to_string())),
            _ => found = Some(o),
        }
    }
    found.ok_or_else(|| ArgsError::Unknown(arg.to_string()))
}

/// getopt_long: `--name[=value]` (or a unique prefix), `--name value`, and short
/// clusters `-dbB`/`-db B`. Returns every option of `arg`.
fn getopt(
    opts: &[Opt],
    arg: &str,
    it: &mut std::slice::Iter<'_, String>,
) -> Result<Vec<Parsed>, ArgsError> {
    if let Some(body) = arg.strip_prefix("--") {
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let o = long_opt(opts, name, arg)?;
        return match (o.value, inline) {
            (false, Some(_)) => Err(ArgsError::UnexpectedValue(arg.to_string())),
            (false, None) => Ok(vec![(o.long, None)]),
            (true, Some(v)) => Ok(vec![(o.long, Some(v))]),
            (true, None) => match it.next() {
                Some(v) => Ok(vec![(o.long, Some(v.clone()))]),
                None => Err(ArgsError::MissingValue(arg.to_string())),
            },
        };
    }
    let cluster = arg.strip_prefix('-').unwrap_or(arg);
    let mut out = Vec::new();
    for (i, c) in cluster.char_indices() {
        let o = opts
            .iter()
            .find(|o| o.short == Some(c))
            .ok_or_else(|| ArgsError::Unknown(format!("-{c}")))?;
        if !o.value {
            out.push((o.long, None));
            continue;
        }
        let rest = &cluster[i + c.len_utf8()..];
        let value = if rest.is_empty() {
            it.next()
                .cloned()
                .ok_or_else(|| ArgsError::MissingValue(format!("-{c}")))?
        } else {
            rest.to_string()
        };
        out.push((o.long, Some(value)));
        break;
    }
    Ok(out)
}

fn is_option(arg: &str) -> bool {
    arg.len() > 1 && arg.starts_with('-')
}

fn options_of(d: Dialect, command: &str) -> &'static [Opt] {
    match (d, command) {
        (Dialect::Runc, "create") => RUNC_CREATE,
        (Dialect::Runc, "run") => RUNC_RUN,
        (Dialect::Runc, _) => RUNC_RESTORE,
        (Dialect::Crun, "create") => CRUN_CREATE,
        (Dialect::Crun, "run") => CRUN_RUN,
        (Dialect::Crun, _) => CRUN_RESTORE,
    }
}

fn apply(r: &mut RuncArgs, (name, value): Parsed) {
    match name {
        "log" => r.log = value,
        "log-format" => r.log_format = value,
        "bundle" => r.bundle = value,
        "config" => r.config = value,
        _ => {}
    }
}

/// `args` without `argv[0]`. The parse goes as far as it can: on an error the result
/// still holds what was read (the log options, for reporting the error), and the error
/// says why the bundle of a creating command is not known. Errors outside a creating
/// command are the runtime's to report and are not returned.
pub fn parse(args: &[String], d: Dialect) -> (RuncArgs, Option<ArgsError>) {
    let mut r = RuncArgs::default();
    let global = match d {
        Dialect::Runc => RUNC_GLOBAL,
        Dialect::Crun => CRUN_GLOBAL,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            r.command = it.next().cloned();
            break;
        }
        if !is_option(a) {
            r.command = Some(a.clone());
            break;
        }
        let parsed = match d {
            Dialect::Runc => go_flag(global, a, &mut it).map(|p| vec![p]),
            Dialect::Crun => getopt(global, a, &mut it),
        };
        match parsed {
            Ok(ps) => ps.into_iter().for_each(|p| apply(&mut r, p)),
            Err(e) => {
                // The command is unknown: refuse only when it may be a creating one.
                let maybe = args.iter().any(|a| creates(Some(a)));
                return (r, maybe.then_some(e));
            }
        }
    }
    let Some(command) = r.command.clone().filter(|c| creates(Some(c))) else {
        return (r, None);
    };
    let opts = options_of(d, &command);
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if !is_option(a) {
            match d {
                // urfave/cli reads a subcommand's flags after its arguments too.
                Dialect::Runc => continue,
                // argp stops at the first argument, the container id.
                Dialect::Crun => break,
            }
        }
        let parsed = match d {
            Dialect::Runc => go_flag(opts, a, &mut it).map(|p| vec![p]),
            Dialect::Crun => getopt(opts, a, &mut it),
        };
        match parsed {
            Ok(ps) => ps.into_iter().for_each(|p| apply(&mut r, p)),
            Err(e) => return (r, Some(e)),
        }
    }
    (r, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(d: Dialect, line: &str) -> (RuncArgs, Option<ArgsError>) {
        let args: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        parse(&args, d)
    }

    /// What each runtime does with a command line, as measured with runc 1.1.5 and
    /// crun 1.8.1 (`RUNTIME --root DIR LINE` with missing bundles: the error names the
    /// directory it tried): `Ok(bundle)` or `Err(())` when the runtime refuses it (and
    /// the wrapper too).
    #[test]
    fn table() {
        use Dialect::{Crun, Runc};
        type Want = Result<Option<&'static str>, ()>;
        let cases: &[(Dialect, &str, Option<&str>, Want)] = &[
            (Runc, "create --bundle /b id", Some("create"), Ok(Some("/b"))),
            (Crun, "create --bundle /b id", Some("create"), Ok(Some("/b"))),
            (Runc, "create --bundle=/b id", Some("create"), Ok(Some("/b"))),
            (Crun, "create --bundle=/b id", Some("create"), Ok(Some("/b"))),
            (Runc, "run -b /b id", Some("run"), Ok(Some("/b"))),
            (Crun, "run -b /b id", Some("run"), Ok(Some("/b"))),
            (Runc, "restore --bundle /b id", Some("restore"), Ok(Some("/b"))),
            (Crun, "restore --bundle /b id", Some("restore"), Ok(Some("/b"))),
            // crun: unique prefixes and attached short values; runc: unknown flags.
            (Crun, "create --bund /b id", Some("create"), Ok(Some("/b"))),
            (Runc, "create --bund /b id", Some("create"), Err(())),
            (Crun, "create -b/b id", Some("create"), Ok(Some("/b"))),
            (Runc, "create -b/b id", Some("create"), Err(())),
            (Crun, "run -db /b id", Some("run"), Ok(Some("/b"))),
            (Crun, "run -db/b id", Some("run"), Ok(Some("/b"))),
            // runc: one dash for long names, '=' after a short one.
            (Runc, "create -bundle /b id", Some("create"), Ok(Some("/b"))),
            (Crun, "create -bundle /b id", Some("create"), Ok(Some("undle"))),
            (Runc, "create -b=/b id", Some("create"), Ok(Some("/b"))),
            (Crun, "create -b=/b id", Some("create"), Ok(Some("=/b"))),
            // runc reads flags after the id; crun stops at the id (and then fails on
            // the extra arguments: the bundle it would use is the working directory).
            (Runc, "create id --bundle /b", Some("create"), Ok(Some("/b"))),
            (Crun, "create id --bundle /b", Some("create"), Ok(None)),
            (Runc, "create --bundle /a --bundle /b id", Some("create"), Ok(Some("/b"))),
            (Crun, "create --bundle /a --bundle /b id", Some("create"), Ok(Some("/b"))),
            (Runc, "run ctr", Some("run"), Ok(None)),
            (Runc, "create --no-pivot --no-new-keyring=true -b /b id", Some("create"), Ok(Some("/b"))),
            (Crun, "create --no-new-keyring=true -b /b id", Some("create"), Err(())),
            (Runc, "create --unknown -b /b id", Some("create"), Err(())),
            (Crun, "create --unknown -b /b id", Some("create"), Err(())),
            (Runc, "create --detach -b /b id", Some("create"), Err(())),
            (Crun, "create --no /b id", Some("create"), Err(())),
            (Runc, "create -b", Some("create"), Err(())),
            (Crun, "create -b", Some("create"), Err(())),
            (Runc, "create --pid-file -b /b id", Some("create"), Err(())),
            (Crun, "create -f x.json -b /b id", Some("create"), Ok(Some("/b"))),
            (Runc, "create -f x.json -b /b id", Some("create"), Err(())),
            // containerd's shim and Docker through containerd.
            (Runc, "--root /run/containerd/runc/k8s.io --log /run/x/log.json --log-format json --systemd-cgroup create --bundle /run/t/abc --pid-file /run/x/init.pid abc",
             Some("create"), Ok(Some("/run/t/abc"))),
            (Crun, "--root /run/containerd/runc/k8s.io --log /run/x/log.json --log-format json --systemd-cgroup create --bundle /run/t/abc --pid-file /run/x/init.pid abc",
             Some("create"), Ok(Some("/run/t/abc"))),
            (Runc, "--log=/l --log-format=json --root /r create --bundle /bb id", Some("create"), Ok(Some("/bb"))),
            (Crun, "--cgroup-manager systemd create -b /b ctr", Some("create"), Ok(Some("/b"))),
            (Crun, "--ro /r create -b /b ctr", Some("create"), Err(())),
            (Runc, "--unknown create -b /b ctr", Some("create"), Err(())),
            // Other commands pass through whatever their options.
            (Runc, "state ctr", Some("state"), Ok(None)),
            (Runc, "delete --force ctr", Some("delete"), Ok(None)),
            (Runc, "exec --pid-file /p -b /not-a-bundle ctr sh", Some("exec"), Ok(None)),
            (Runc, "--unknown state ctr", None, Ok(None)),
            (Runc, "--version", None, Ok(None)),
            (Crun, "-V", None, Ok(None)),
            (Runc, "", None, Ok(None)),
            (Runc, "--debug -- run ctr", Some("run"), Ok(None)),
            (Runc, "--root /r", None, Ok(None)),
        ];
        for (d, line, cmd, want) in cases {
            let (r, err) = p(*d, line);
            match want {
                Ok(bundle) => {
                    assert_eq!(err, None, "{d:?} {line}");
                    assert_eq!(r.command.as_deref(), *cmd, "{d:?} {line}");
                    assert_eq!(r.bundle.as_deref(), *bundle, "{d:?} {line}");
                }
                Err(()) => assert!(err.is_some(), "{d:?} {line}: accepted as {r:?}"),
            }
        }
    }

    #[test]
    fn log_and_config() {
        let (r, e) = p(
            Dialect::Crun,
            "--log /l.json --log-format json run -f other.json -b /b id",
        );
        assert_eq!(e, None);
        assert_eq!(r.log.as_deref(), Some("/l.json"));
        assert_eq!(r.log_format.as_deref(), Some("json"));
        assert_eq!(r.config.as_deref(), Some("other.json"));
        assert!(r.creates());
        assert!(!p(Dialect::Runc, "state x").0.creates());
        // The log options read before an error are kept, to report it.
        let (r, e) = p(Dialect::Runc, "--log /l --bogus create -b /b id");
        assert!(e.is_some());
        assert_eq!(r.log.as_deref(), Some("/l"));
        assert_eq!(Dialect::of("/usr/bin/crun"), Dialect::Crun);
        assert_eq!(Dialect::of("runc"), Dialect::Runc);
        assert_eq!(Dialect::of("/usr/local/bin/youki"), Dialect::Runc);
    }
}
