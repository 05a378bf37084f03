//! The error every command returns: the CLI's own, or a lower layer's; its `Display` is
//! what the user reads, and `hint` says what to do about it.

use std::path::PathBuf;

use crate::{
    deploy::{self, AdminError, SavedPlanError},
    drill::DrillError,
    input::InputError,
    source::Diagnostic,
    spec::SpecError,
};

/// The CLI layer's error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{} problem{} found in the input; nothing was changed", .0.len(), if .0.len() == 1 { "" } else { "s" })]
    Invalid(Vec<Diagnostic>),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Spec(SpecError),
    #[error(transparent)]
    Drill(#[from] DrillError),
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the {what}: {source}")]
    Print {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("refusing to apply without confirmation: there is no terminal to ask on")]
    NoTerminal,
    #[error("--method {method} does not apply to {victim}")]
    WrongMethod {
        method: String,
        victim: &'static str,
        valid: &'static str,
    },
    #[error("--limit {pattern} selects none of the load balancers ({})", .all.join(", "))]
    LimitSelectsNone {
        pattern: String,
        all: Vec<String>,
        lb_group: String,
        matched: Vec<String>,
    },
    #[error(transparent)]
    Apply(deploy::ApplyError),
    #[error(transparent)]
    SavedPlan(#[from] SavedPlanError),
    #[error("a saved plan is applied exactly as planned: --limit and -e do not apply to it")]
    PlanFileWithInputs,
}

impl Error {
    /// What to do about it, when there is something to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::NoTerminal => Some("pass --yes to apply non-interactively (as in CI), or run `lbctl plan` to see the changes".into()),
            Error::WrongMethod { victim, valid, .. } => {
                Some(format!("with {victim}, use --method {valid}"))
            }
            Error::Input(e) => e.hint(),
            Error::LimitSelectsNone {
                lb_group, matched, ..
            } => Some(format!(
                "the load balancers are the hosts of the group `{lb_group}`; the pattern matched: {}",
                if matched.is_empty() {
                    "no host".to_string()
                } else {
                    matched.join(", ")
                }
            )),
            Error::Apply(e) => e.hint(),
            Error::SavedPlan(e) => Some(e.hint()),
            Error::PlanFileWithInputs => Some("give them to `lbctl plan --out FILE` instead".into()),
            Error::Spec(e) => e.hint(),
            Error::Drill(e) => e.hint(),
            Error::Admin(e) => e.hint(),
            _ => None,
        }
    }

    /// The located problems with the input, each printed before the summary.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            Error::Invalid(d)
            | Error::Spec(SpecError::Invalid(d))
            | Error::Input(InputError::ConfigSyntax { problems: d, .. })
            | Error::Input(InputError::ConfigEncoding { problems: d, .. }) => d,
            _ => &[],
        }
    }
}

impl From<Vec<Diagnostic>> for Error {
    fn from(d: Vec<Diagnostic>) -> Self {
        Error::Invalid(d)
    }
}

impl From<deploy::ApplyError> for Error {
    fn from(e: deploy::ApplyError) -> Self {
        match e {
            deploy::ApplyError::Invalid(d) => Error::Invalid(d),
            other => Error::Apply(other),
        }
    }
}

impl From<SpecError> for Error {
    fn from(e: SpecError) -> Self {
        match e {
            SpecError::Invalid(d) => Error::Invalid(d),
            other => Error::Spec(other),
        }
    }
}
