//! The one error type every command returns; its `Display` is what the user reads.

use std::path::PathBuf;

use crate::source::Diagnostic;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{} problem{} found in the input; nothing was changed", .0.len(), if .0.len() == 1 { "" } else { "s" })]
    Invalid(Vec<Diagnostic>),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{message}")]
    Usage { message: String, hint: String },
    #[error("{0}")]
    Failed(String),
}

impl Error {
    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::Usage { hint, .. } => Some(hint),
            _ => None,
        }
    }
}

impl From<Vec<Diagnostic>> for Error {
    fn from(d: Vec<Diagnostic>) -> Self {
        Error::Invalid(d)
    }
}
