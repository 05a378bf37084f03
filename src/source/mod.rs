//! The user's YAML as a positioned tree, and the diagnostics that point back into it.
//!
//! Takes file text; returns `Node`s that remember file and line, `VarMap`s of them, typed
//! field readers (`field`) that record a located `Diagnostic` for every problem instead of
//! stopping. Reading is bounded (`limits`): file size, nesting depth, values and alias copies.
//! A file the user names for output is checked and written by `output_file`.

pub mod base64;
mod builder;
mod diagnostic;
pub(crate) mod field;
mod limits;
mod loc;
mod node;
mod output_file;
mod parse;
mod plain_yaml;
mod scalar;
mod var_map;

pub use diagnostic::{Diagnostic, Diagnostics, clip, escape_control};
pub use field::parse_duration;
pub use limits::{
    MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES, open_without_waiting, read_at_most, read_file, read_text,
};
pub use loc::Loc;
pub use node::{Entry, Node, Value};
pub use output_file::{OutputFileError, check_output_file, replace_file};
pub use parse::{load_file, parse_documents, parse_str};
pub use var_map::{VarMap, map_entries};
