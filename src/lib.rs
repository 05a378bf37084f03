//! lbctl's pipeline, one folder per layer, in pipeline order: each layer imports only the
//! ones before it.

/// The user's YAML as a positioned tree, diagnostics, typed field readers.
pub mod source;

/// Ansible inventories and variable precedence.
pub mod input;

/// What each load balancer will hold, typed and validated.
pub mod spec;

/// Config files from templates.
pub mod render;

/// SSH sessions over the system's OpenSSH.
pub mod ssh;

/// The scripts sent to hosts, and what they print back.
pub mod remote;

/// Plan, apply and status.
pub mod deploy;

/// Failover drills.
pub mod drill;

/// The command line: one function per subcommand.
pub mod cli;
