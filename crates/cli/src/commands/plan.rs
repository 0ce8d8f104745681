//! `modgate plan NAME...`: resolve and show, load nothing.

use std::process::ExitCode;

use modgate_host::kernel::{NothingLoaded, Sysfs};

use crate::cli::{PlanArgs, PlanFormat};
use crate::render;
use crate::settings::Settings;
use crate::Error;

pub fn run(s: &Settings, args: &PlanArgs) -> Result<ExitCode, Error> {
    let ctx = s.context()?;
    for w in &ctx.config.warnings {
        eprintln!("modgate: warning: modprobe configuration: {w}");
    }
    let names: Vec<&str> = args.names.iter().map(String::as_str).collect();
    let format = if args.json {
        PlanFormat::Json
    } else {
        args.format
    };
    let kernel = Sysfs { root: &ctx.root };
    let out = match format {
        // modprobe --show-depends ignores what is loaded; so does this format.
        PlanFormat::Modprobe => ctx.plan(&names, &NothingLoaded)?.render_modprobe(),
        PlanFormat::Table => render::plan_table(&ctx.plan(&names, &kernel)?),
        PlanFormat::Json => {
            let mut j = serde_json::to_string_pretty(&ctx.plan(&names, &kernel)?)?;
            j.push('\n');
            j
        }
    };
    render::emit(&out)?;
    Ok(ExitCode::SUCCESS)
}
