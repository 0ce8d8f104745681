//! `modgate doctor`: one line per check (or JSON); exits 1 when something blocks
//! modgate from working.

use std::process::ExitCode;

use modgate_host::doctor::blocking;
use modgate_host::root::Root;

use crate::cli::{DoctorArgs, Global};
use crate::Error;

pub fn run(g: &Global, args: &DoctorArgs) -> Result<ExitCode, Error> {
    let root = Root::new(&g.root);
    let checks = modgate_host::doctor::run(&root, g.kernel_release.clone());
    let blocked = blocking(&checks);
    if args.json {
        let v = serde_json::json!({ "ok": !blocked, "checks": checks });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for c in &checks {
            println!("{}", c.line());
        }
        if blocked {
            println!("modgate cannot work on this host until the FAIL lines are fixed");
        }
    }
    Ok(if blocked {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
