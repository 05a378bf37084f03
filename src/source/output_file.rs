//! A file the user names for lbctl to write (`plan --out`, `failover-test --report`): checked
//! when the command line is read, before any host is touched, and written whole beside its
//! path, then renamed over it, so that nothing there is followed or written through.

use std::{
    fs,
    io::Write,
    os::unix::fs::{FileTypeExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

/// Why lbctl will not write a file the user named.
#[derive(Debug, thiserror::Error)]
pub enum OutputFileError {
    #[error("it names no file")]
    NoName,
    #[error("{} is not a directory", parent.display())]
    ParentNotDirectory { parent: PathBuf },
    #[error("its directory {}: {source}", parent.display())]
    Parent {
        parent: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Look(std::io::Error),
    #[error("it is {what}, not a file; name a new file, or a regular file to replace")]
    NotAFile { what: &'static str },
}

/// Why lbctl will not write `path`, if it will not: it must name a file in an existing
/// directory, and be missing, a regular file (replaced) or a symbolic link (replaced, never
/// followed). A directory, a named pipe (writing one waits for a reader, for ever) or a device
/// (renaming over `/dev/null` replaces the device for everyone) is refused.
pub fn check_output_file(path: &Path) -> Result<(), OutputFileError> {
    if path.file_name().is_none() {
        return Err(OutputFileError::NoName);
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match fs::metadata(parent) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(OutputFileError::ParentNotDirectory {
                parent: parent.to_path_buf(),
            });
        }
        Err(source) => {
            return Err(OutputFileError::Parent {
                parent: parent.to_path_buf(),
                source,
            });
        }
    }
    let kind = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(OutputFileError::Look(e)),
        Ok(meta) => meta.file_type(),
    };
    let what = if kind.is_file() || kind.is_symlink() {
        return Ok(());
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a named pipe"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "a socket"
    };
    Err(OutputFileError::NotAFile { what })
}

/// Writes `content` to `path` with `mode`, as [`check_output_file`] allows: into a new file
/// beside it (created exclusively, through no link), then renamed over it.
pub fn replace_file(path: &Path, content: &[u8], mode: u32) -> std::io::Result<()> {
    check_output_file(path).map_err(std::io::Error::other)?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(path.file_name().unwrap_or_default());
    temp_name.push(format!(".lbctl-{}", std::process::id()));
    let temp = path.with_file_name(temp_name);
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temp)
        .and_then(|mut f| {
            f.write_all(content)?;
            f.sync_all()
        })
        .and_then(|()| fs::rename(&temp, path));
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_new_file_a_regular_file_or_a_link_is_written_and_never_through() {
        let dir = std::env::temp_dir().join(format!("lbctl-output-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("target"), "kept").unwrap();
        std::os::unix::fs::symlink(dir.join("target"), dir.join("link")).unwrap();
        std::os::unix::fs::symlink("/nonexistent/x", dir.join("dangling")).unwrap();
        fs::create_dir(dir.join("dir")).unwrap();
        let fifo = std::ffi::CString::new(dir.join("fifo").to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads the NUL-terminated path it is given.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        for (name, refused) in [
            ("dir", "a directory"),
            ("fifo", "a named pipe"),
            ("missing/x", "No such file"),
            ("target/x", "not a directory"),
        ] {
            let e = replace_file(&dir.join(name), b"new", 0o600).unwrap_err();
            assert!(e.to_string().contains(refused), "{name}: {e}");
        }
        let e = check_output_file(Path::new("/dev/null"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("a device"), "{e}");
        for name in ["new", "link", "dangling"] {
            replace_file(&dir.join(name), b"new", 0o600).unwrap();
            assert_eq!(fs::read_to_string(dir.join(name)).unwrap(), "new");
        }
        assert!(!fs::symlink_metadata(dir.join("link")).unwrap().is_symlink());
        assert_eq!(fs::read_to_string(dir.join("target")).unwrap(), "kept");
        assert!(!dir.join("nonexistent").exists());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 6);
        fs::remove_dir_all(&dir).unwrap();
    }
}
