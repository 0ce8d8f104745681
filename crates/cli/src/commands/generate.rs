//! `modgate generate man DIR | completions DIR` (hidden): the man pages and shell
//! completions, generated from the command-line definition so they never drift from it.
//! `make install` runs it.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, GenerateCommand};
use crate::Error;

pub fn run(cmd: &GenerateCommand) -> Result<ExitCode, Error> {
    match cmd {
        GenerateCommand::Man { dir } => {
            std::fs::create_dir_all(dir)?;
            let mut top = Cli::command();
            top.build();
            man_pages(&top, "modgate", "modgate", dir)?;
        }
        GenerateCommand::Completions { dir } => {
            std::fs::create_dir_all(dir)?;
            for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
                let path = clap_complete::generate_to(shell, &mut Cli::command(), "modgate", dir)?;
                writeln!(std::io::stdout(), "{}", path.display())?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `NAME.1` for this command and, recursively, `NAME-SUB.1` for each visible subcommand.
/// `bin` is the command as typed (`modgate install hooks-d`).
fn man_pages(cmd: &clap::Command, name: &str, bin: &str, dir: &Path) -> Result<(), Error> {
    let page = cmd.clone().name(name.to_string()).bin_name(bin.to_string());
    let mut out = Vec::new();
    clap_mangen::Man::new(page).render(&mut out)?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, out)?;
    writeln!(std::io::stdout(), "{}", path.display())?;
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let sub_name = sub.get_name();
        man_pages(
            sub,
            &format!("{name}-{sub_name}"),
            &format!("{bin} {sub_name}"),
            dir,
        )?;
    }
    Ok(())
}
