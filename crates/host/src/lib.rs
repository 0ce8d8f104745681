//! modgate on a host, one module per concept: host files under one [`root::Root`],
//! module syscalls, the OCI hook and its bundle, the state store, the container engines
//! modgate wires into, the runtime wrapper and the doctor. `modgate-core` holds the
//! formats and rules they share.

pub mod bundle;
pub mod configfile;
pub mod context;
pub mod doctor;
pub mod engines;
pub mod hook;
pub mod kernel;
pub mod lifecycle;
pub mod loader;
pub mod lock;
pub mod modconfig;
pub mod moddir;
pub mod modfile;
pub mod policyfile;
pub mod root;
pub mod state;
pub mod syscall;
pub mod which;
pub mod wrapper;
