//! How much input lbctl reads. Each limit is far beyond what a real inventory or vars file
//! holds, and each exists so that a crafted file (a YAML alias bomb, a list nested twenty
//! thousand deep, a multi-gigabyte file) gets a located error instead of exhausting memory or
//! the stack.

use std::{io::Read, path::Path, sync::Arc};

use super::{diagnostic::Diagnostic, loc::Loc};

/// Largest file read (inventories, vars files, `-e @file`, templates): 64 MiB. A vars file of
/// 20,000 backends with five servers each is about 17 MiB.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Deepest nesting of YAML collections. lbctl's own variables nest five levels (a list of
/// backends, a backend, its servers, a server, a field); Ansible inventories nest groups a
/// few levels more. Every tree lbctl builds is at most this deep, so the code that walks a
/// tree (conversion to template values, serialisation, drop) recurses at most this far.
pub const MAX_DEPTH: usize = 64;

/// Most values (keys included) one YAML file may produce, aliases expanded: a vars file of
/// 20,000 backends with five servers each holds about 1.7 million.
pub const MAX_NODES: usize = 4_000_000;

/// Most values the aliases of one file may copy, counted before each copy is made: a 1.6 KB
/// "billion laughs" file (nine levels of nine aliases) would otherwise copy 387 million.
pub const MAX_ALIAS_NODES: usize = 1_000_000;

/// At most `max` bytes from `reader`; more is an error ([`std::io::ErrorKind::FileTooLarge`])
/// that says how much lbctl reads, and nothing past `max` + 1 bytes is read (a device that
/// never ends, `/dev/zero`, a script that prints forever, stops there).
pub fn read_at_most(reader: impl Read, max: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("larger than {} MiB, more than lbctl reads", max >> 20),
        ));
    }
    Ok(bytes)
}

/// `path` opened for reading without waiting for a writer: a named pipe that nothing has
/// open for writing (`-e @fifo`, `--limit @fifo`) made lbctl wait for ever; opened so, it
/// reads as empty, while one a writer has open (`-e @<(sops -d vars.yml)`) reads as written.
pub fn open_without_waiting(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::{fd::AsRawFd, unix::fs::OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    // Reads wait for the writer again: without O_NONBLOCK, one not written yet would be
    // an error (EAGAIN) instead of its content.
    // SAFETY: fcntl on a descriptor this function owns, with flags it read from it.
    let cleared = unsafe {
        let flags = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
        flags >= 0 && libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK) == 0
    };
    if !cleared {
        return Err(std::io::Error::last_os_error());
    }
    Ok(file)
}

/// The file at `path` as [`read_at_most`] reads it, with [`MAX_FILE_BYTES`].
pub fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    read_at_most(std::fs::File::open(path)?, MAX_FILE_BYTES)
}

/// The text of `path`, refused past [`MAX_FILE_BYTES`] before anything is read (a FIFO or a
/// device stops at the limit too).
pub fn read_text(path: &Path) -> Result<String, Diagnostic> {
    let name: Arc<str> = Arc::from(path.display().to_string());
    let at_file =
        |message: String, hint: &str| Diagnostic::new(&Loc::new(&name, 0), "", message).hint(hint);
    let file = open_without_waiting(path).map_err(|e| {
        at_file(
            format!("cannot read file: {e}"),
            "check the path and that this user may read it",
        )
    })?;
    let too_big = || {
        at_file(
            format!(
                "the file is larger than {} MiB, more than lbctl reads",
                MAX_FILE_BYTES >> 20
            ),
            "a real inventory or vars file is far smaller; check that this is the file you meant",
        )
    };
    let metadata = file.metadata();
    let fifo = metadata
        .as_ref()
        .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type()));
    let size = match metadata {
        Ok(m) if m.is_dir() => {
            return Err(at_file(
                "is a directory, not a file".into(),
                "give the path of a YAML file",
            ));
        }
        Ok(m) if m.len() > MAX_FILE_BYTES => return Err(too_big()),
        Ok(m) => m.len(),
        Err(_) => 0,
    };
    // Sized up front: reading then ends with one call that finds the end of the file.
    let mut bytes = Vec::with_capacity(size as usize + 1);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| {
            at_file(
                format!("cannot read file: {e}"),
                "check the path and that this user may read it",
            )
        })?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big());
    }
    if fifo && bytes.is_empty() {
        return Err(at_file(
            "it is a named pipe (FIFO), and nothing wrote to it".into(),
            "give a file, or a pipe a program writes to (as `<(program)` does)",
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        Diagnostic::new(&Loc::new(&name, line), "", "the file is not UTF-8 text")
            .hint("save the file as UTF-8, as YAML and Ansible expect")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `-e @fifo` and `--limit @fifo` waited for a writer for ever.
    #[test]
    fn a_named_pipe_nothing_writes_to_is_an_error_at_once() {
        let path = std::env::temp_dir().join(format!("lbctl-limits-fifo-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads the NUL-terminated path it is given.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let started = std::time::Instant::now();
        let e = read_text(&path).unwrap_err().to_string();
        assert!(
            e.contains("nothing wrote to it") && e.contains("<(program)"),
            "{e}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        std::fs::remove_file(&path).unwrap();
    }
}
