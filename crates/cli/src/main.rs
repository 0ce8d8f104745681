//! The `modgate` binary: parses the command line and calls the library.
//!
//! The C runtime calls `start::main` directly (`no_main`, see there).
#![cfg_attr(not(test), no_main)]

mod cli;
mod commands;
mod journal;
mod logging;
mod render;
mod settings;
#[cfg(not(test))]
mod start;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

pub fn run_main() -> ExitCode {
    if let Some(args) = commands::runtime::invoked_as_wrapper() {
        return commands::runtime::main(args);
    }
    if let Some((argv, original)) = commands::syscontainer_hooks::chained() {
        return commands::syscontainer_hooks::main(argv, original);
    }
    let argv = args();
    // The hook first: its parser alone is a fraction of the whole command line's, and it
    // runs on every container start.
    let hook = argv.iter().any(|a| a == "hook");
    let cli = match cli::HookCli::plain(&argv) {
        Some(plain) => plain,
        None => match hook.then(|| cli::HookCli::try_parse_from(&argv)) {
            Some(Ok(hook)) => cli::Cli::from(hook),
            _ => cli::Cli::parse_from(argv),
        },
    };
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            let line = modgate_core::error_line(e.as_ref());
            if let cli::Command::Hook(h) = &cli.command {
                if !e.is::<commands::hook::Logged>() {
                    commands::hook::log_failure(h, &line);
                }
            }
            eprintln!("modgate: {line}");
            ExitCode::FAILURE
        }
    }
}

/// Invoked as `syscontainer-hooks` (a link left where syscontainer-tools installed its
/// hook) with no original hook to run after it, behave as `modgate hook` so existing
/// hook specs keep working.
fn args() -> Vec<OsString> {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let argv0 = args.first().map(|a| {
        std::path::Path::new(a)
            .file_name()
            .unwrap_or_default()
            .to_os_string()
    });
    if argv0.as_deref() == Some(std::ffi::OsStr::new("syscontainer-hooks")) {
        args.insert(1, "hook".into());
    }
    args
}

fn run(cli: &cli::Cli) -> Result<ExitCode, Error> {
    let g = &cli.global;
    match &cli.command {
        cli::Command::Plan(a) => commands::plan::run(&settings::Settings::resolve(g)?, a),
        cli::Command::Config => commands::config::run(&settings::Settings::resolve(g)?),
        cli::Command::Load(a) => commands::load::run(g, a),
        cli::Command::Hook(a) => commands::hook::run(g, a),
        cli::Command::Policy(c) => commands::policy::run(g, c),
        cli::Command::Install(c) => commands::install::run(g, c),
        cli::Command::Doctor(a) => commands::doctor::run(g, a),
        cli::Command::Generate(c) => commands::generate::run(c),
        cli::Command::Status(a) => commands::status::run(g, a),
        cli::Command::Gc(a) => commands::gc::run(g, a),
        cli::Command::Unload(a) => commands::unload::run(g, a),
        cli::Command::Verify(a) => commands::verify::run(g, a),
        cli::Command::Certs(c) => commands::certs::run(c),
    }
}
