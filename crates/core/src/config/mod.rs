//! modprobe configuration as kmod reads it: `alias`, `options`, `blacklist`, `softdep`,
//! `install` and `remove` from `modprobe.d` files and `modules.softdep`, plus module
//! options and blacklists from the kernel command line. `install` and `remove` commands
//! are recorded, never run.

mod kcmdline;

use crate::fnmatch::fnmatch;
use crate::name::{alias_normalize, underscores};
use kcmdline::is_c_space;
pub use kcmdline::{kcmdline_options, KcmdlineOption};

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
mod tests;
