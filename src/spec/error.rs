//! What can go wrong building a spec: invalid input (every located problem at once), or a
//! host that the command line names and the inventory does not have.

use crate::source::Diagnostic;

/// The spec layer's error.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{} problem{} found in the input; nothing was changed", .0.len(), if .0.len() == 1 { "" } else { "s" })]
    Invalid(Vec<Diagnostic>),
    #[error("the inventory has no host `{name}` (the {what})")]
    UnknownHost {
        name: String,
        what: &'static str,
        known: Vec<String>,
    },
}

impl SpecError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            SpecError::UnknownHost { known, .. } => {
                Some(format!("hosts in the inventory: {}", known.join(", ")))
            }
            SpecError::Invalid(_) => None,
        }
    }
}
