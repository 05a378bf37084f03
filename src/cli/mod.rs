//! The command line: one function per subcommand, and what users read (text, progress, JSON).
//!
//! Takes parsed arguments; returns an exit status.

pub mod commands;
pub mod output;
pub mod progress;
