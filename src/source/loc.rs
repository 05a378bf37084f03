//! Where a value was written, compactly: every node of the input carries one.

use std::{
    fmt,
    sync::{Arc, Mutex, PoisonError},
};

/// Where a value was written: a file and a 1-based line, or the command line (line 0).
///
/// Eight bytes: a vars file of 20,000 backends holds about 1.6 million of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    pub file: FileName,
    pub line: u32,
}

impl Loc {
    pub fn new(file: &Arc<str>, line: usize) -> Self {
        Loc {
            file: FileName::intern(file),
            line: line_number(line),
        }
    }
}

/// Lines past `u32::MAX` (a 4-billion-line file) all read as the last one.
pub(super) fn line_number(line: usize) -> u32 {
    u32::try_from(line).unwrap_or(u32::MAX)
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}", self.file, self.line)
        } else {
            write!(f, "{}", self.file)
        }
    }
}

/// The name of a file values came from, stored once for the whole run (a run reads a few
/// dozen files at most).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FileName(u32);

static FILE_NAMES: Mutex<Vec<Arc<str>>> = Mutex::new(Vec::new());

impl FileName {
    pub fn intern(name: &str) -> FileName {
        let mut names = FILE_NAMES.lock().unwrap_or_else(PoisonError::into_inner);
        let index = match names.iter().position(|n| **n == *name) {
            Some(i) => i,
            None => {
                names.push(Arc::from(name));
                names.len() - 1
            }
        };
        FileName(u32::try_from(index).expect("fewer than 4 billion input files"))
    }

    pub fn name(self) -> Arc<str> {
        let names = FILE_NAMES.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(&names[self.0 as usize])
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl fmt::Debug for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.name())
    }
}
