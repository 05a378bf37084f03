//! What can go wrong reading the inputs besides located problems (which are diagnostics).

/// The input layer's error: a host pattern that does not expand, or a configuration file
/// that cannot be read; the message is the user's.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("range in `{pattern}` is not closed")]
    NotClosed { pattern: String },
    #[error("range `[{range}]` must be [start:end] or [start:end:step]")]
    Shape { range: String },
    #[error("range step `{step}` must be a positive integer")]
    Step { step: String },
    #[error("range `[{range}]` ends before it starts")]
    Backwards { range: String },
    #[error("range `[{range}]` is too large")]
    TooLarge { range: String },
    #[error("range `[{range}]` must go from a letter to a later letter")]
    Letters { range: String },
    #[error("range `[{range}]` must use numbers or single letters")]
    Kind { range: String },
    #[error("`{pattern}` expands to more than {max} host names")]
    TooMany { pattern: String, max: usize },
    #[error(
        "{name:?} is not a valid host name: use letters, digits, `.`, `-`, `_` and `:`, starting with a letter, a digit, `_` or `:`, at most 253 characters"
    )]
    HostName { name: String },
    #[error("cannot read {}: {source}", path.display())]
    ReadConfig {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}
