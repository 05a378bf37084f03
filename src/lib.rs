//! lbctl's pipeline, one folder per layer, lowest first: each layer imports only the ones above
//! it in this list.

pub mod cli;
pub mod deploy;
pub mod drill;
pub mod error;
pub mod input;
pub mod remote;
pub mod render;
pub mod source;
pub mod spec;
pub mod ssh;
