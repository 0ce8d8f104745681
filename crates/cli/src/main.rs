//! The `modgate` binary: parses the command line and calls the library.

mod cli;
mod commands;
mod settings;

use std::process::ExitCode;

use clap::Parser;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("modgate: {}", chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: cli::Cli) -> Result<ExitCode, Error> {
    let s = settings::Settings::resolve(&cli.global)?;
    match &cli.command {
        cli::Command::Plan(a) => commands::plan::run(&s, a),
    }
}

/// An error and its causes on one line: `outer: inner: root cause`.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !out.ends_with(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = c.source();
    }
    out
}
