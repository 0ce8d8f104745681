//! `modgate config`: the modprobe configuration modgate read, printed the way
//! `modprobe -c` prints it, so it can be compared with kmod's view line for line.

use std::process::ExitCode;

use modgate_host::moddir::ModuleDir;
use modgate_host::modprobe_d;

use crate::settings::Settings;
use crate::Error;

pub fn run(s: &Settings) -> Result<ExitCode, Error> {
    let dir = ModuleDir::open(&s.root, &s.release)?;
    let db = dir.db()?;
    let config = modprobe_d::load(&s.root, &s.config_dirs, &dir.dir);
    // kmod reports the lines it skips on stderr too; stdout stays modprobe's format.
    for w in &config.warnings {
        eprintln!("modgate: warning: {w}");
    }
    let mut out = config.render_modprobe_c();
    out.push_str(&db.render_modprobe_c_dump()?);
    crate::render::emit(&out)?;
    Ok(ExitCode::SUCCESS)
}
