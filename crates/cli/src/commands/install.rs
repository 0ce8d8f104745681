//! `modgate install TARGET`: builds the target's plan under the root, then prints it
//! (`--dry-run`) or applies it, followed by how to run a container.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use modgate_host::engines::containerd::{self, ContainerdOptions};
use modgate_host::engines::docker::{self, DockerOptions};
use modgate_host::engines::hooksd::{self, HooksdOptions, When};
use modgate_host::engines::isulad::{self, IsuladOptions};
use modgate_host::engines::{host_path, syscontainer, HookCommand, HookTarget, InstallPlan};
use modgate_host::root::Root;

use crate::cli::{Global, HookBinary, HooksdWhen, InstallCommand, WrapperArgs};
use crate::Error;

#[derive(Debug, thiserror::Error)]
pub enum InstallArgError {
    #[error("--{flag} must be an absolute path (engines run it from another directory): {}", path.display())]
    Relative { flag: &'static str, path: PathBuf },
    #[error("cannot tell where this executable is (give --binary)")]
    NoExe(#[source] std::io::Error),
}

/// `--binary`, else this executable.
fn binary(given: Option<&Path>) -> Result<String, InstallArgError> {
    let p = match given {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe().map_err(InstallArgError::NoExe)?,
    };
    if !p.is_absolute() {
        return Err(InstallArgError::Relative {
            flag: "binary",
            path: p,
        });
    }
    Ok(p.display().to_string())
}

fn hook_target(h: &HookBinary) -> Result<HookTarget, InstallArgError> {
    Ok(HookTarget {
        hook: HookCommand {
            path: binary(h.binary.as_deref())?,
            extra_args: h.hook_args.clone(),
        },
    })
}

fn wrapper(w: &WrapperArgs) -> Result<String, InstallArgError> {
    match &w.wrapper {
        Some(p) if !p.is_absolute() => Err(InstallArgError::Relative {
            flag: "wrapper",
            path: p.clone(),
        }),
        Some(p) => Ok(p.display().to_string()),
        None => {
            let bin = PathBuf::from(binary(w.binary.as_deref())?);
            Ok(bin.with_file_name("modgate-runtime").display().to_string())
        }
    }
}

pub fn run(g: &Global, cmd: &InstallCommand) -> Result<ExitCode, Error> {
    let root = Root::new(&g.root);
    let (plan, dry): (InstallPlan, bool) = match cmd {
        InstallCommand::Isulad(a) => {
            let o = IsuladOptions {
                target: hook_target(&a.hook)?,
                output: host_path(&a.output),
                daemon_default: a.daemon_default,
            };
            (isulad::plan(&root, &o)?, a.dry.dry_run)
        }
        InstallCommand::SyscontainerTools(a) => {
            let target = HookTarget {
                hook: HookCommand::new(binary(a.binary.as_deref())?),
            };
            (syscontainer::plan(&root, &target, a.revert)?, a.dry.dry_run)
        }
        InstallCommand::HooksD(a) => {
            let o = HooksdOptions {
                target: hook_target(&a.hook)?,
                dir: host_path(&a.dir),
                when: match a.when {
                    HooksdWhen::Always => When::Always,
                    HooksdWhen::Annotation => When::Annotation,
                },
            };
            (hooksd::plan(&root, &o)?, a.dry.dry_run)
        }
        InstallCommand::Docker(a) => {
            let o = DockerOptions {
                wrapper: wrapper(&a.common)?,
                default: a.default,
            };
            (docker::plan(&root, &o)?, a.common.dry.dry_run)
        }
        InstallCommand::Containerd(a) => {
            let o = ContainerdOptions {
                wrapper: wrapper(&a.common)?,
                write: a.write,
            };
            (containerd::plan(&root, &o)?, a.common.dry.dry_run)
        }
    };
    if dry {
        print!("{}", plan.describe());
    } else {
        for line in plan.apply()? {
            println!("{line}");
        }
    }
    for n in &plan.notes {
        println!("{n}");
    }
    Ok(ExitCode::SUCCESS)
}
