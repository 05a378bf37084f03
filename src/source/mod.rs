//! The user's YAML as a positioned tree, and the diagnostics that point back into it.
//!
//! Takes file text; returns `Node`s that remember file and line, `VarMap`s of them, typed
//! field readers that record a located `Diagnostic` for every problem instead of stopping.

pub mod diagnostic;
pub mod field;
pub mod node;
pub mod plain_yaml;
