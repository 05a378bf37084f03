//! The drills' progress lines.

use std::fmt;

/// Progress lines on stderr (`lbctl: ...`), none with `--json`.
#[derive(Debug, Clone, Copy)]
pub struct Narrator {
    pub quiet: bool,
}

impl Narrator {
    pub fn say(&self, message: impl fmt::Display) {
        if !self.quiet {
            eprintln!("lbctl: {message}");
        }
    }
}
