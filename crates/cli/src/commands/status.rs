//! `modgate status [--format table|json|prometheus]`: the modules modgate knows of (owned
//! or held), whether they are live, who holds them, and every container record; or the
//! store's gauges and counters for Prometheus.

use std::process::ExitCode;

use modgate_host::kernel::HostUses;
use modgate_host::lifecycle::{uncounted, Session, Uncounted};
use modgate_host::lock::HostLock;
use modgate_host::policyfile;
use modgate_host::root::Root;

use crate::cli::{Global, StatusArgs, StatusFormat};
use crate::settings::Settings;
use crate::Error;

pub fn run(g: &Global, args: &StatusArgs) -> Result<ExitCode, Error> {
    let root = Root::new(&g.root);
    // Under the lock: a record is read whole, and a hook that died is accounted for.
    let lock = HostLock::acquire(&root)?;
    let session = Session::open(&root, &lock)?;
    for w in &session.warnings {
        eprintln!("modgate: warning: {}", modgate_core::printable(w));
    }
    let format = if args.json {
        StatusFormat::Json
    } else {
        args.format
    };
    let status = || {
        // Why a module modgate would otherwise remove stays: what gc would say.
        let ctx = Settings::running_context(g);
        let aliases = uncounted::aliases_in(ctx.as_ref());
        let uses = HostUses { root: &root };
        let mut uncounted = Uncounted::new(&uses, &aliases);
        match policyfile::load(&root, None) {
            Ok(p) => uncounted = uncounted.with_policy(&p),
            Err(e) => eprintln!("modgate: warning: {}", modgate_core::error_line(&e)),
        }
        let mut st = session.status();
        st.note_kept(&uncounted);
        st
    };
    let out = match format {
        StatusFormat::Json => format!("{}\n", serde_json::to_string_pretty(&status())?),
        StatusFormat::Table => crate::render::status_tables(&status()),
        StatusFormat::Prometheus => session.prometheus(),
    };
    crate::render::emit(&out)?;
    Ok(ExitCode::SUCCESS)
}
