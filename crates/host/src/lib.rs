//! modgate on a host, one module per concept, each deciding and acting: the running
//! [`kernel`], the [`loader`] and the [`integrity`] checks before it, the [`lifecycle`]
//! of what containers hold, the [`pipeline`] from a request to loaded modules, the OCI
//! [`hook`], the engines' installation and the doctor. Every host path is reached
//! through one [`root::Root`].

pub mod bundle;
pub mod configfile;
pub mod context;
pub mod doctor;
pub mod engines;
pub mod hook;
pub mod integrity;
pub mod kernel;
pub mod lifecycle;
pub mod loader;
pub mod lock;
pub mod moddir;
pub mod modfile;
pub mod modprobe_d;
pub mod pipeline;
pub mod policyfile;
pub mod root;
pub mod which;
pub mod wrapper;
