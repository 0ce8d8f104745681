//! One file per subcommand.

pub mod certs;
pub mod config;
pub mod doctor;
pub mod gc;
pub mod generate;
pub mod hook;
pub mod install;
pub mod load;
pub mod plan;
pub mod policy;
pub mod runtime;
pub mod status;
pub mod syscontainer_hooks;
pub mod unload;
pub mod verify;
