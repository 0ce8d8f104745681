//! modgate core
