//! `modgate plan NAME...`: resolve and show, load nothing.

use std::io::Write;
use std::process::ExitCode;

use modgate_core::{NothingLoaded, Resolver};
use modgate_host::kernel::Sysfs;
use modgate_host::modconfig;
use modgate_host::moddir::ModuleDir;

use crate::cli::{PlanArgs, PlanFormat};
use crate::settings::Settings;
use crate::Error;

pub fn run(s: &Settings, args: &PlanArgs) -> Result<ExitCode, Error> {
    let dir = ModuleDir::open(&s.root, &s.release)?;
    let db = dir.db()?;
    let config = modconfig::load(&s.root, &s.config_dirs, &dir.dir);
    let mut resolver = Resolver::new(&db, &config, &dir.dirname);
    let names: Vec<&str> = args.names.iter().map(String::as_str).collect();
    let format = if args.json {
        PlanFormat::Json
    } else {
        args.format
    };
    let out = match format {
        // modprobe --show-depends ignores what is loaded; so does this format.
        PlanFormat::Modprobe => resolver.plan(&names, &NothingLoaded)?.render_modprobe(),
        PlanFormat::Table => resolver
            .plan(&names, &Sysfs { root: &s.root })?
            .render_table(),
        PlanFormat::Json => {
            let plan = resolver.plan(&names, &Sysfs { root: &s.root })?;
            let mut j = serde_json::to_string_pretty(&plan)?;
            j.push('\n');
            j
        }
    };
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
