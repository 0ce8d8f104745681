//! modprobe configuration as kmod reads it: `alias`, `options`, `blacklist`, `softdep`,
//! `install` and `remove` from `modprobe.d` files and `modules.softdep`, plus module
//! options and blacklists from the kernel command line. `install` and `remove` commands
//! are recorded, never run.

use crate::fnmatch::fnmatch;
use crate::name::{alias_normalize, underscores};

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
    /// The line of `source` that gave it (its last, for a continued line, as kmod counts).
    pub line: usize,
}

impl Command {
    /// Where the command was given, as `FILE line N`.
    pub fn place(&self) -> String {
        format!("{} line {}", self.source, self.line)
    }
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
    /// The value `modprobe -c` prints for this line.
    pub shown: String,
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
                                    line: linenum,
                                }),
                                "remove" => self.remove.push(Command {
                                    module,
                                    command: tail.into(),
                                    source,
                                    line: linenum,
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
    /// kernel command line, after the files, as kmod does (see [`kcmdline_options`]).
    pub fn parse_kcmdline(&mut self, cmdline: impl AsRef<[u8]>) {
        let source: Source = "/proc/cmdline".into();
        for KcmdlineOption {
            module,
            param,
            value,
        } in kcmdline_options(cmdline.as_ref())
        {
            if module == b"modprobe" && param.starts_with(b"blacklist=") {
                // Every piece, empty ones included, taken as it is.
                for m in value.unwrap_or_default().split(|&b| b == b',') {
                    self.blacklist.push(Blacklist {
                        module: String::from_utf8_lossy(m).into_owned(),
                        source: source.clone(),
                    });
                }
                continue;
            }
            let module = String::from_utf8_lossy(&module);
            // kmod ignores an option whose module name has an unbalanced bracket.
            let Ok(module) = alias_normalize(&module) else {
                continue;
            };
            self.options.push(Options {
                module,
                options: String::from_utf8_lossy(&param).replace('\t', " "),
                source: source.clone(),
            });
        }
    }

    /// The configuration as `modprobe -c` prints it, up to and including the line that
    /// introduces the index dump: blacklists, install and remove commands, aliases,
    /// options and softdeps, each kind in the order read.
    pub fn render_modprobe_c(&self) -> String {
        let mut out = String::new();
        for b in &self.blacklist {
            out.push_str(&format!("blacklist {}\n", b.module));
        }
        for c in &self.install {
            out.push_str(&format!("install {} {}\n", c.module, c.command));
        }
        for c in &self.remove {
            out.push_str(&format!("remove {} {}\n", c.module, c.command));
        }
        for a in &self.aliases {
            out.push_str(&format!("alias {} {}\n", a.pattern, a.module));
        }
        for o in &self.options {
            out.push_str(&format!("options {} {}\n", o.module, o.options));
        }
        for s in &self.softdeps {
            out.push_str(&format!("softdep {} {}\n", s.pattern, s.shown));
        }
        out.push_str("\n# End of configuration files. Dumping indexes now:\n\n");
        out
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

/// The longest command line kmod reads (its buffer is 4096 bytes with the final NUL).
const KCMDLINE_MAX: usize = 4095;

/// One `module.param[=value]` found on the kernel command line. `param` holds the
/// whole `param=value` text; `value` the part after the first `=`, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KcmdlineOption {
    pub module: Vec<u8>,
    pub param: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// kmod's scanner of `/proc/cmdline` (`kmod_config_parse_kcmdline`), rule for rule:
///
/// - the line ends at a NUL or after 4095 bytes; words end at any of C's `isspace`
///   bytes (space, tab, newline, vertical tab, form feed, carriage return);
/// - a word is `module.param` or `module.param=value`: a `.` ends the module name, a
///   second `.` before the `=` spoils the word (`foo.x.y=1` is ignored), and dots in the
///   value are part of it (`foo.p=1.5G`); an `=` in the module name spoils the word;
/// - `"` toggles quoting; a space inside quotes belongs to the value, anywhere else it
///   spoils the word. A quote is allowed in the value, and as the word's first byte;
///   anywhere else it spoils the word. A word left quoted at the end of the line is dropped;
/// - a word that began with a quote (`"foo.p=a b"`, as some boot loaders write it) is
///   re-quoted as the kernel does: the option becomes `p="a b"`.
pub fn kcmdline_options(cmdline: &[u8]) -> Vec<KcmdlineOption> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Ignore,
        Modname,
        Param,
        Value,
    }
    let buf = &cmdline[..cmdline.len().min(KCMDLINE_MAX)];
    let mut out = Vec::new();
    let mut state = State::Modname;
    let mut quoted = false;
    let mut modname = 0usize;
    let mut quote_start: Option<usize> = None;
    let (mut modname_end, mut param, mut value) = (0usize, 0usize, None::<usize>);
    let mut p = 0usize;
    loop {
        let c = buf.get(p).copied().unwrap_or(0);
        let last = c == 0;
        let mut complete = false;
        match c {
            b'"' => {
                quoted = !quoted;
                if quoted && state == State::Modname && p == modname {
                    quote_start = Some(p);
                    modname = p + 1;
                } else if state != State::Value {
                    state = State::Ignore;
                }
            }
            // C's isspace(): every one of them separates words.
            0 | b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' => {
                if quoted && state == State::Value {
                    // a space inside a quoted value
                } else if quoted {
                    state = State::Ignore;
                } else if matches!(state, State::Param | State::Value) {
                    complete = true;
                } else {
                    modname = p + 1;
                    state = State::Modname;
                    quote_start = None;
                }
            }
            b'.' => match state {
                State::Modname => {
                    modname_end = p;
                    param = p + 1;
                    value = None;
                    state = State::Param;
                }
                State::Param => state = State::Ignore,
                _ => {}
            },
            b'=' => match state {
                State::Param => {
                    value = Some(p + 1);
                    state = State::Value;
                }
                State::Modname => state = State::Ignore,
                _ => {}
            },
            _ => {}
        }
        if complete {
            let module = buf[modname..modname_end].to_vec();
            let (param_text, value_text) = match (quote_start, value) {
                // The opening quote moves from before the module name to the value.
                (Some(_), Some(v)) => {
                    let mut t = buf[param..v].to_vec();
                    t.push(b'"');
                    t.extend_from_slice(&buf[v..p]);
                    let mut val = vec![b'"'];
                    val.extend_from_slice(&buf[v..p]);
                    (t, Some(val))
                }
                _ => (buf[param..p].to_vec(), value.map(|v| buf[v..p].to_vec())),
            };
            out.push(KcmdlineOption {
                module,
                param: param_text,
                value: value_text,
            });
            modname = p + 1;
            state = State::Modname;
            quote_start = None;
        }
        if last {
            break;
        }
        p += 1;
    }
    out
}

/// C's `isspace()` in the C locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// kmod's `kmod_config_add_softdep` tokenizer. It is not a plain split on blanks: the
/// text starts just past the one blank that ended the module name, and a single blank
/// there sticks to the first word, so `softdep m  pre: a` (two blanks) reads as a
/// first word ` pre:` that is not a keyword, and lists nothing.
fn parse_softdep(pattern: String, tail: &str, source: Source) -> Softdep {
    #[derive(Clone, Copy, PartialEq)]
    enum Mode {
        None,
        Pre,
        Post,
    }
    let bytes = tail.as_bytes();
    let mut mode = Mode::None;
    let mut names: Vec<(Mode, &str)> = Vec::new();
    let (mut word, mut was_space) = (0usize, false);
    for at in 0..=bytes.len() {
        let end = at == bytes.len();
        if !end {
            if !is_c_space(bytes[at]) {
                was_space = false;
                continue;
            }
            if was_space {
                word = at + 1;
                continue;
            }
            was_space = true;
            if word >= at {
                continue;
            }
        }
        let w = tail.get(word.min(at)..at).unwrap_or("");
        match w {
            "pre:" => mode = Mode::Pre,
            "post:" => mode = Mode::Post,
            _ if (!end || !was_space) && mode != Mode::None => names.push((mode, w)),
            _ => {}
        }
        word = at + 1;
    }
    let list = |m: Mode| -> Vec<String> {
        names
            .iter()
            .filter(|(k, _)| *k == m)
            .map(|(_, n)| n.to_string())
            .collect()
    };
    // kmod 30 prints the names of one kind as the stretch of its word buffer from the
    // first name of that kind to the last, so names of the other kind in between show up
    // too, and no blank separates the two parts.
    let span = |m: Mode, label: &str| -> String {
        let first = names.iter().position(|(k, _)| *k == m);
        let last = names.iter().rposition(|(k, _)| *k == m);
        match (first, last) {
            (Some(f), Some(l)) => {
                let words: Vec<&str> = names[f..=l].iter().map(|(_, n)| *n).collect();
                format!("{label} {}", words.join(" "))
            }
            _ => String::new(),
        }
    };
    Softdep {
        pattern,
        pre: list(Mode::Pre),
        post: list(Mode::Post),
        shown: format!("{}{}", span(Mode::Pre, "pre:"), span(Mode::Post, "post:")),
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

    /// `(module, options)` pairs and the blacklist, as `modprobe -c` would list them.
    fn kcmdline(line: &str) -> (Vec<(String, String)>, Vec<String>) {
        let mut c = Config::default();
        c.parse_kcmdline(line);
        (
            c.options
                .iter()
                .map(|o| (o.module.clone(), o.options.clone()))
                .collect(),
            c.blacklist.iter().map(|b| b.module.clone()).collect(),
        )
    }

    #[test]
    fn kernel_command_line() {
        // Each row checked against kmod 30's `modprobe -c` with the line bind-mounted
        // over /proc/cmdline.
        let opts: &[(&str, &[(&str, &str)])] = &[
            ("foo.a foo.b=1", &[("foo", "a"), ("foo", "b=1")]),
            ("foo.p=1.5G", &[("foo", "p=1.5G")]),
            ("foo.p=\"a b\"", &[("foo", "p=\"a b\"")]),
            ("\"foo.p=a b\"", &[("foo", "p=\"a b\"")]),
            ("foo.x.y=1", &[]),
            ("quiet rdinit=/x -- 0.0.0.0:1 k.p=v.w", &[("k", "p=v.w")]),
            (
                "a-b.c=1 a[-].d=2 a].e=3 a[.f=4",
                &[("a_b", "c=1"), ("a[-]", "d=2")],
            ),
            ("foo.p=\"unterminated", &[]),
            (
                "foo.p=\"a b\"c bar.q=1\nbaz.r=2\0x.y=1",
                &[("foo", "p=\"a b\"c"), ("bar", "q=1"), ("baz", "r=2")],
            ),
            (
                "\"zz.q=a\tb\" y.p=a\x0bb\x01",
                &[("zz", "q=\"a b\""), ("y", "p=a")],
            ),
            (
                "x\"y.p=1 foo.\"p=1 foo.p=a\"b c\" z.q",
                &[("foo", "p=a\"b c\""), ("z", "q")],
            ),
            ("foo.p=a\tb .q=1 foo=1.p=2", &[("foo", "p=a"), ("", "q=1")]),
        ];
        for (line, want) in opts {
            let want: Vec<(String, String)> = want
                .iter()
                .map(|(m, o)| (m.to_string(), o.to_string()))
                .collect();
            assert_eq!(kcmdline(line).0, want, "{line:?}");
        }
        let (o, b) = kcmdline(
            "modprobe.blacklist=a,b-c,,d modprobe.blacklist=\"e,f\" \"modprobe.blacklist=g\" modprobe.blacklist modprobe.other=1",
        );
        assert_eq!(b, ["a", "b-c", "", "d", "\"e", "f\"", "\"g\""]);
        assert_eq!(
            o,
            [
                ("modprobe".to_string(), "blacklist".to_string()),
                ("modprobe".to_string(), "other=1".to_string())
            ]
        );
        // kmod reads at most 4095 bytes.
        let long = format!("{} foo.p=1", "x".repeat(4089));
        assert_eq!(kcmdline(&long).0, [("foo".to_string(), "p".to_string())]);
    }

    #[test]
    fn modprobe_c_rendering_and_softdep_words() {
        // The expected text is kmod 30's `modprobe -c` for the same file.
        let c = parse(concat!(
            "softdep f1 pre: a post: b pre: c\n",
            "softdep f2 post: c\n",
            "softdep f4 pre:\n",
            "softdep f5  pre:   a   b  \n",
            "softdep f6 pre:a x\n",
            "softdep f7 post: a pre: b post: c\n",
            "softdep f-8 pre: x-y\tpost:\tz\n",
            "blacklist a-b\n",
            "alias a-b c-d\n",
            "install i-j  /bin/x  y\n",
            "remove r\toptions\n",
            "options o\t\ta\tb\n",
        ));
        assert_eq!(c.softdeps[0].pre, ["a", "c"]);
        assert_eq!(c.softdeps[0].post, ["b"]);
        assert!(c.softdeps[3].pre.is_empty(), "two blanks hide pre:");
        assert_eq!(
            c.render_modprobe_c(),
            concat!(
                "blacklist a_b\n",
                "install i_j  /bin/x  y\n",
                "remove r options\n",
                "alias a_b c_d\n",
                "options o  a b\n",
                "softdep f1 pre: a b cpost: b\n",
                "softdep f2 post: c\n",
                "softdep f4 \n",
                "softdep f5 \n",
                "softdep f6 \n",
                "softdep f7 pre: bpost: a b c\n",
                "softdep f_8 pre: x-ypost: z\n",
                "\n# End of configuration files. Dumping indexes now:\n\n",
            )
        );
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
