//! runc's command line, as far as the runtime wrapper needs it: the subcommand, and for
//! `create` and `run` the bundle. Global options come before the subcommand; the ones
//! that take a value (runc, crun and youki) are listed so their value is not mistaken
//! for the subcommand. Options are accepted as `--name value`, `--name=value`, and with
//! one dash, as Go's flag package (runc's) accepts them.

/// Global options that take a value, without dashes.
const GLOBAL_VALUE: &[&str] = &[
    "log",
    "log-format",
    "log-level",
    "root",
    "criu",
    "rootless",
    "cgroup-manager",
];

/// Options of `create` and `run` that take a value, other than the bundle.
const CREATE_VALUE: &[&str] = &["console-socket", "pid-file", "preserve-fds", "config", "f"];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuncArgs {
    /// `create`, `run`, `state`... (None: only global options, as in `--version`).
    pub command: Option<String>,
    /// `--bundle`/`-b` of create and run.
    pub bundle: Option<String>,
    /// crun's `--config`/`-f` of create and run (a file name in the bundle).
    pub config: Option<String>,
    /// The global `--log FILE` and `--log-format`, where errors are also reported.
    pub log: Option<String>,
    pub log_format: Option<String>,
}

impl RuncArgs {
    /// Whether the wrapper has to look at the bundle before running the runtime.
    pub fn creates(&self) -> bool {
        matches!(self.command.as_deref(), Some("create" | "run"))
    }
}

/// `(name, inline value)` of an option, or None for a positional argument.
fn option(arg: &str) -> Option<(&str, Option<&str>)> {
    let body = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'))?;
    if body.is_empty() {
        return None;
    }
    Some(match body.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (body, None),
    })
}

/// `args` without `argv[0]`.
pub fn parse(args: &[String]) -> RuncArgs {
    let mut r = RuncArgs::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            r.command = it.next().cloned();
            break;
        }
        match option(a) {
            Some((name, inline)) => {
                let value = if inline.is_some() {
                    inline.map(str::to_string)
                } else if GLOBAL_VALUE.contains(&name) {
                    it.next().cloned()
                } else {
                    None
                };
                match name {
                    "log" => r.log = value,
                    "log-format" => r.log_format = value,
                    _ => {}
                }
            }
            None => {
                r.command = Some(a.clone());
                break;
            }
        }
    }
    if !r.creates() {
        return r;
    }
    // crun takes options after the container id too, so read them all.
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        let Some((name, inline)) = option(a) else {
            continue;
        };
        let takes = matches!(name, "bundle" | "b") || CREATE_VALUE.contains(&name);
        let value = match inline {
            Some(v) => Some(v.to_string()),
            None if takes => it.next().cloned(),
            None => None,
        };
        match name {
            "bundle" | "b" => r.bundle = value,
            "config" | "f" => r.config = value,
            _ => {}
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> RuncArgs {
        let args: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        parse(&args)
    }

    #[test]
    fn table() {
        // (command line, command, bundle)
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            ("run --bundle /b ctr", Some("run"), Some("/b")),
            ("run -b /b ctr", Some("run"), Some("/b")),
            ("run --bundle=/b ctr", Some("run"), Some("/b")),
            ("run -bundle /b ctr", Some("run"), Some("/b")),
            ("run ctr", Some("run"), None),
            ("run -d --pid-file /p --console-socket /s -b /b ctr", Some("run"), Some("/b")),
            // Values of options are not taken for the bundle.
            ("create --pid-file -b --bundle /real ctr", Some("create"), Some("/real")),
            // containerd's shim.
            ("--root /run/containerd/runc/k8s.io --log /run/x/log.json --log-format json --systemd-cgroup create --bundle /run/containerd/io.containerd.runtime.v2.task/k8s.io/abc --pid-file /run/x/init.pid abc",
             Some("create"), Some("/run/containerd/io.containerd.runtime.v2.task/k8s.io/abc")),
            // Docker's through containerd, runc's log options with '='.
            ("--log=/l --log-format=json --root /r create --bundle /bb id", Some("create"), Some("/bb")),
            // crun: options after the id.
            ("create ctr --bundle /b", Some("create"), Some("/b")),
            ("--cgroup-manager systemd create -b /b ctr", Some("create"), Some("/b")),
            ("state ctr", Some("state"), None),
            ("delete --force ctr", Some("delete"), None),
            ("exec --pid-file /p -b /not-a-bundle ctr sh", Some("exec"), None),
            ("--version", None, None),
            ("", None, None),
            ("--debug -- run ctr", Some("run"), None),
            ("--root /r", None, None),
        ];
        for (line, cmd, bundle) in cases {
            let r = p(line);
            assert_eq!(r.command.as_deref(), *cmd, "{line}");
            assert_eq!(r.bundle.as_deref(), *bundle, "{line}");
        }
    }

    #[test]
    fn log_and_config() {
        let r = p("--log /l.json --log-format json run -f other.json -b /b id");
        assert_eq!(r.log.as_deref(), Some("/l.json"));
        assert_eq!(r.log_format.as_deref(), Some("json"));
        assert_eq!(r.config.as_deref(), Some("other.json"));
        assert!(r.creates());
        assert!(!p("state x").creates());
    }
}
