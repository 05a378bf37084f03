//! Where a value was written, compactly: every node of the input carries one.

use std::{
    collections::HashMap,
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

/// The name of a file values came from, stored once for the whole run. A run may read tens of
/// thousands of files (a `host_vars/` file per load balancer), so names are found by hash.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FileName(u32);

struct FileNames {
    list: Vec<Arc<str>>,
    index: Option<HashMap<Arc<str>, u32>>,
}

static FILE_NAMES: Mutex<FileNames> = Mutex::new(FileNames {
    list: Vec::new(),
    index: None,
});

impl FileName {
    pub fn intern(name: &str) -> FileName {
        let mut names = FILE_NAMES.lock().unwrap_or_else(PoisonError::into_inner);
        let FileNames { list, index } = &mut *names;
        let index = index.get_or_insert_with(HashMap::new);
        if let Some(&i) = index.get(name) {
            return FileName(i);
        }
        let i = u32::try_from(list.len()).expect("fewer than 4 billion input files");
        let name: Arc<str> = Arc::from(name);
        list.push(Arc::clone(&name));
        index.insert(name, i);
        FileName(i)
    }

    pub fn name(self) -> Arc<str> {
        let names = FILE_NAMES.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(&names.list[self.0 as usize])
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
