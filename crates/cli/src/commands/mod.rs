//! One file per subcommand.

pub mod hook;
pub mod load;
pub mod plan;
pub mod policy;
