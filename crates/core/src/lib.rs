//! modgate's core: the formats and rules, as plain functions over bytes and strings
//! (kmod's indexes and `modprobe.d`, the resolver and plans, requests, the policy, the
//! OCI fields the hook reads, the records of the state store). No file access, no
//! syscalls, no container engine here; `modgate-host` reads the files and calls in.

pub mod config;
pub mod fnmatch;
pub mod index;
pub mod lifecycle;
pub mod moddb;
pub mod name;
pub mod oci;
pub mod plan;
pub mod policy;
pub mod request;
pub mod resolve;
pub mod state;
pub mod status;
pub mod unload;

pub use config::Config;
pub use moddb::ModuleDb;
pub use name::ModuleName;
pub use plan::{Action, Plan, Reason, Step};
pub use policy::Policy;
pub use request::Request;
pub use resolve::{KernelView, ModState, NothingLoaded, ResolveError, Resolver};

/// An error and its causes on one line, `outer: inner: root cause`, as modgate prints
/// every error. A cause already at the end of the line is not repeated, and a cause whose
/// text spans lines (a foreign parser's report) is folded onto the one line.
pub fn error_line(e: &(dyn std::error::Error + 'static)) -> String {
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
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}
