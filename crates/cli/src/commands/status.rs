//! `modgate status [--json]`: the modules modgate knows of (owned or held), whether they
//! are live, who holds them, and every container record.

use std::process::ExitCode;

use modgate_host::lifecycle::Session;
use modgate_host::lock::HostLock;
use modgate_host::root::Root;

use crate::cli::{Global, StatusArgs};
use crate::Error;

pub fn run(g: &Global, args: &StatusArgs) -> Result<ExitCode, Error> {
    let root = Root::new(&g.root);
    // Under the lock: a record is read whole, and a hook that died is accounted for.
    let lock = HostLock::acquire(&root)?;
    let session = Session::open(&root, &lock)?;
    for w in &session.warnings {
        eprintln!("modgate: warning: {}", modgate_core::printable(w));
    }
    let status = session.status();
    if args.json {
        crate::render::emit(&format!("{}\n", serde_json::to_string_pretty(&status)?))?;
    } else {
        crate::render::emit(&crate::render::status_tables(&status))?;
    }
    Ok(ExitCode::SUCCESS)
}
