//! modprobe configuration as kmod reads it: `alias`, `options`, `blacklist`, `softdep`,
//! `install` and `remove` from `modprobe.d` files and `modules.softdep`, plus module
//! options and blacklists from the kernel command line. `install` and `remove` commands
//! are recorded, never run.

use crate::fnmatch::fnmatch;
use crate::name::underscores;

/// Where a directive came from: a file path, or `/proc/cmdline`.
pub type Source = std::sync::Arc<str>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub pattern: String,
    pub module: String,
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub module: String,
    pub options: String,
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub module: String,
    pub command: String,
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blacklist {
    pub module: String,
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Softdep {
    pub pattern: String,
    pub pre: Vec<String>,
    pub post: Vec<String>,
    pub source: Source,
}

/// Every directive, in the order kmod would have read them.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub aliases: Vec<Alias>,
    pub options: Vec<Options>,
    pub install: Vec<Command>,
    pub remove: Vec<Command>,
    pub blacklist: Vec<Blacklist>,
    pub softdeps: Vec<Softdep>,
    /// Lines kmod would ignore with an error, as `FILE line N: ...`.
    pub warnings: Vec<String>,
}

impl Config {
    /// Parses one configuration file's text.
    pub fn parse_file(&mut self, source: &str, text: &[u8]) {
        let source: Source = source.into();
        for (linenum, line) in wrapped_lines(text) {
            let line = String::from_utf8_lossy(&line).into_owned();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut rest = line.as_str();
            let Some(cmd) = token(&mut rest) else {
                continue;
            };
            let ok = match cmd {
                "alias" => match (token(&mut rest), token(&mut rest)) {
                    (Some(a), Some(m)) => {
                        self.aliases.push(Alias {
                            pattern: underscores(a),
                            module: underscores(m),
                            source: source.clone(),
                        });
                        true
                    }
                    _ => false,
                },
                "blacklist" => match token(&mut rest) {
                    Some(m) => {
                        self.blacklist.push(Blacklist {
                            module: underscores(m),
                            source: source.clone(),
                        });
                        true
                    }
                    None => false,
                },
                "options" | "install" | "remove" | "softdep" => {
                    match (token(&mut rest), remainder(rest)) {
                        (Some(m), Some(tail)) => {
                            let module = underscores(m);
                            let source = source.clone();
                            match cmd {
                                "options" => self.options.push(Options {
                                    module,
                                    options: tail.replace('\t', " "),
                                    source,
                                }),
                                "install" => self.install.push(Command {
                                    module,
                                    command: tail.into(),
                                    source,
                                }),
                                "remove" => self.remove.push(Command {
                                    module,
                                    command: tail.into(),
                                    source,
                                }),
                                _ => self.softdeps.push(parse_softdep(module, tail, source)),
                            }
                            true
                        }
                        _ => false,
                    }
                }
                "include" | "config" => {
                    self.warnings.push(format!(
                        "{source}: command {cmd} is deprecated and not parsed anymore"
                    ));
                    true
                }
                _ => false,
            };
            if !ok {
                self.warnings.push(format!(
                    "{source} line {linenum}: ignoring bad line starting with '{cmd}'"
                ));
            }
        }
    }

    /// Reads module options (`name.param=value`) and `modprobe.blacklist=a,b` from the
    /// kernel command line, after the files, as kmod does.
    pub fn parse_kcmdline(&mut self, cmdline: &str) {
        let source: Source = "/proc/cmdline".into();
        let line = cmdline.split('\n').next().unwrap_or("");
        for word in line.split(' ') {
            // kmod's scanner: the module name ends at a '.', and every later '.' starts
            // the parameter again; a value needs an '=' after a parameter.
            let mut modname: Option<&str> = None;
            let mut param_start: Option<usize> = None;
            let mut has_value = false;
            let mut seg_start = 0usize;
            for (i, c) in word.char_indices() {
                match c {
                    '.' => {
                        if modname.is_none() {
                            modname = Some(&word[seg_start..i]);
                        }
                        param_start = Some(i + 1);
                        seg_start = i + 1;
                    }
                    '=' if param_start.is_some() => has_value = true,
                    _ => {}
                }
            }
            let (Some(modname), Some(p)) = (modname, param_start) else {
                continue;
            };
            if !has_value {
                continue;
            }
            let param = &word[p..];
            if modname == "modprobe" {
                if let Some(list) = param.strip_prefix("blacklist=") {
                    for m in list.split(',') {
                        self.blacklist.push(Blacklist {
                            module: m.to_string(),
                            source: source.clone(),
                        });
                    }
                }
                continue;
            }
            self.options.push(Options {
                module: underscores(modname),
                options: param.to_string(),
                source: source.clone(),
            });
        }
    }

    /// The options for a module found under `name` (and `alias`, when it was found
    /// through one), joined as kmod joins them.
    pub fn options_for(&self, name: &str, alias: Option<&str>) -> String {
        let mut out = String::new();
        for o in &self.options {
            if (o.module == name || alias == Some(o.module.as_str())) && !o.options.is_empty() {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(&o.options);
            }
        }
        out
    }

    /// The first `install` command whose pattern matches the module.
    pub fn install_for(&self, name: &str) -> Option<&Command> {
        self.install.iter().find(|c| fnmatch(&c.module, name))
    }

    /// The first `remove` command whose pattern matches the module.
    pub fn remove_for(&self, name: &str) -> Option<&Command> {
        self.remove.iter().find(|c| fnmatch(&c.module, name))
    }

    /// The first `softdep` whose pattern matches the module (kmod uses only the first).
    pub fn softdep_for(&self, name: &str) -> Option<&Softdep> {
        self.softdeps.iter().find(|s| fnmatch(&s.pattern, name))
    }

    pub fn blacklisted(&self, name: &str) -> Option<&Blacklist> {
        self.blacklist.iter().find(|b| b.module == name)
    }
}

fn parse_softdep(pattern: String, tail: &str, source: Source) -> Softdep {
    #[derive(PartialEq)]
    enum Mode {
        None,
        Pre,
        Post,
    }
    let mut mode = Mode::None;
    let (mut pre, mut post) = (Vec::new(), Vec::new());
    for tok in tail
        .split(|c: char| c.is_ascii_whitespace() || c == '\x0b')
        .filter(|t| !t.is_empty())
    {
        match tok {
            "pre:" => mode = Mode::Pre,
            "post:" => mode = Mode::Post,
            t => match mode {
                Mode::Pre => pre.push(t.to_string()),
                Mode::Post => post.push(t.to_string()),
                Mode::None => {}
            },
        }
    }
    Softdep {
        pattern,
        pre,
        post,
        source,
    }
}

/// `strtok_r(.., "\t ")`: skips leading blanks, returns the token, and leaves `rest`
/// just past the one delimiter that ended it.
fn token<'s>(rest: &mut &'s str) -> Option<&'s str> {
    let s = rest.trim_start_matches([' ', '\t']);
    if s.is_empty() {
        *rest = s;
        return None;
    }
    let end = s.find([' ', '\t']).unwrap_or(s.len());
    let tok = &s[..end];
    *rest = if end < s.len() {
        &s[end + 1..]
    } else {
        &s[end..]
    };
    Some(tok)
}

/// `strtok_r(NULL, "\0", ..)`: the rest of the line as it is, or nothing when empty.
fn remainder(rest: &str) -> Option<&str> {
    (!rest.is_empty()).then_some(rest)
}

/// kmod's `getline_wrapped`: a backslash before a newline joins the lines; a backslash
/// before any other character is dropped. Yields (line number, line).
fn wrapped_lines(text: &[u8]) -> Vec<(usize, Vec<u8>)> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let mut n = 0usize;
    let mut i = 0usize;
    let mut started = false;
    while i < text.len() {
        let c = text[i];
        i += 1;
        started = true;
        match c {
            b'\n' => {
                n += 1;
                out.push((n, std::mem::take(&mut buf)));
                started = false;
            }
            b'\\' => match text.get(i) {
                Some(b'\n') => {
                    n += 1;
                    i += 1;
                }
                Some(&next) => {
                    buf.push(next);
                    i += 1;
                }
                None => {}
            },
            c => buf.push(c),
        }
    }
    if started {
        n += 1;
        out.push((n, buf));
    }
    out
}

/// Orders configuration files as kmod does: every directory's `*.conf` (and `*.alias`)
/// files, plus single files, sorted by file name; a name seen in an earlier directory
/// masks the same name in a later one. `dirs` is in search order, each with the file
/// names it holds (`None` for a single file given directly).
pub fn order_files(dirs: &[(String, Option<Vec<String>>)]) -> Vec<String> {
    let mut chosen: Vec<(String, String)> = Vec::new(); // (name, path)
    for (path, names) in dirs {
        let entries: Vec<(String, String)> = match names {
            None => {
                let name = path.rsplit('/').next().unwrap_or(path).to_string();
                vec![(name, path.clone())]
            }
            Some(names) => names
                .iter()
                .filter(|n| {
                    !n.starts_with('.')
                        && n.len() >= 6
                        && (n.ends_with(".conf") || n.ends_with(".alias"))
                })
                .map(|n| (n.clone(), format!("{path}/{n}")))
                .collect(),
        };
        for (name, full) in entries {
            if chosen.iter().any(|(n, _)| *n == name) {
                continue;
            }
            chosen.push((name, full));
        }
    }
    chosen.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    chosen.into_iter().map(|(_, p)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        let mut c = Config::default();
        c.parse_file("/etc/modprobe.d/t.conf", text.as_bytes());
        c
    }

    #[test]
    fn directives() {
        let c = parse(concat!(
            "# comment\n",
            "alias my-alias ip_vs-wrr\n",
            "options ip-vs  conn_tab_bits=12\tx=1\n",
            "options ip_vs y=2\n",
            "blacklist dccp-ipv4\n",
            "install dccp /bin/false\n",
            "remove foo /bin/true\n",
            "softdep libcrc32c pre: crc32c a post: b\n",
            "softdep libcrc32c pre: ignored\n",
            "bogus line\n",
            "alias onlyone\n",
            "include /x\n",
        ));
        assert_eq!(c.aliases[0].pattern, "my_alias");
        assert_eq!(c.aliases[0].module, "ip_vs_wrr");
        assert_eq!(c.options_for("ip_vs", None), " conn_tab_bits=12 x=1 y=2");
        assert!(c.blacklisted("dccp_ipv4").is_some());
        assert_eq!(
            c.install_for("dccp").map(|x| x.command.as_str()),
            Some("/bin/false")
        );
        assert_eq!(
            c.remove_for("foo").map(|x| x.command.as_str()),
            Some("/bin/true")
        );
        let sd = c.softdep_for("libcrc32c").unwrap();
        assert_eq!(sd.pre, ["crc32c", "a"]);
        assert_eq!(sd.post, ["b"]);
        assert_eq!(c.warnings.len(), 3, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("line 10"));
    }

    #[test]
    fn options_by_alias_and_empty_tail() {
        let c = parse("options foo\noptions foo \noptions al a=1\n");
        assert_eq!(c.options.len(), 1);
        assert_eq!(c.options_for("bar", Some("al")), "a=1");
        assert_eq!(c.warnings.len(), 2);
    }

    #[test]
    fn wrapped_lines_join_and_drop_backslashes() {
        let c = parse("options foo a=1 \\\n b=2\noptions bar x\\y\n");
        assert_eq!(c.options_for("foo", None), "a=1  b=2");
        assert_eq!(c.options_for("bar", None), "xy");
    }

    #[test]
    fn install_and_softdep_patterns_use_fnmatch() {
        let c = parse("install dccp* /bin/false\nsoftdep nf_* pre: x\n");
        assert!(c.install_for("dccp_ipv6").is_some());
        assert!(c.install_for("ip_vs").is_none());
        assert!(c.softdep_for("nf_conntrack").is_some());
    }

    #[test]
    fn kernel_command_line() {
        let mut c = Config::default();
        c.parse_kcmdline("quiet ip_vs.conn_tab_bits=10 modprobe.blacklist=a,b-c x.y random.trust_cpu=1 a.b.c=1 rdinit=/x -- 0.0.0.0:1 k.p=v.w\n");
        assert_eq!(c.options_for("ip_vs", None), "conn_tab_bits=10");
        assert_eq!(c.options_for("random", None), "trust_cpu=1");
        assert_eq!(c.options_for("a", None), "c=1");
        assert!(c.blacklisted("a").is_some());
        assert!(c.blacklisted("b-c").is_some());
        // A '.' after the value starts the parameter again, and the value still counts.
        assert_eq!(c.options_for("k", None), "w");
        assert_eq!(c.options.len(), 4);
    }

    #[test]
    fn file_order_and_masking() {
        let dirs = vec![
            (
                "/etc/modprobe.d".to_string(),
                Some(vec![
                    "z.conf".into(),
                    "b.conf".into(),
                    ".hidden.conf".into(),
                    "x.txt".into(),
                ]),
            ),
            (
                "/lib/modprobe.d".to_string(),
                Some(vec!["b.conf".into(), "a.alias".into()]),
            ),
            ("/lib/modules/K/modules.softdep".to_string(), None),
        ];
        assert_eq!(
            order_files(&dirs),
            [
                "/lib/modprobe.d/a.alias",
                "/etc/modprobe.d/b.conf",
                "/lib/modules/K/modules.softdep",
                "/etc/modprobe.d/z.conf"
            ]
        );
    }
}
