//! modgate's edges: host files under one [`root::Root`], module syscalls, the OCI hook
//! and the state store. Everything that decides lives in `modgate-core`.

pub mod configfile;
pub mod context;
pub mod doctor;
pub mod hook;
pub mod install;
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
pub mod wrapper;
