//! The kernel command line as kmod reads it for module options and
//! `modprobe.blacklist=`: a scanner with kmod's own quoting and dot rules.

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
pub(super) fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}
