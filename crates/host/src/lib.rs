//! modgate's edges: host files under one [`root::Root`], module syscalls, the OCI hook
//! and the state store. Everything that decides lives in `modgate-core`.

pub mod context;
pub mod kernel;
pub mod loader;
pub mod modconfig;
pub mod moddir;
pub mod modfile;
pub mod root;
pub mod syscall;
