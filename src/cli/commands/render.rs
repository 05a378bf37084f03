use std::{
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use serde::Serialize;

use super::Global;
use crate::{cli::Error, render::RenderedHost};

#[derive(Debug, Serialize)]
pub struct Written {
    pub host: String,
    pub files: Vec<WrittenFile>,
}

#[derive(Debug, Serialize)]
pub struct WrittenFile {
    pub service: crate::spec::Service,
    pub written: PathBuf,
    /// Where `apply` would put it on the host.
    pub remote_path: String,
}

/// Renders every load balancer's files into `out/<host>/`. Nothing is written unless every
/// host validated and rendered: each host's files are staged next to their final names as
/// soon as the host is rendered (its output is then dropped), and put in place once every
/// host has been.
pub fn run(global: &Global, out: &Path) -> Result<Vec<Written>, Error> {
    let loaded = global.load()?;
    let mut staged = Staged::default();
    let rendered = loaded.render_each(global, |index, host| staged.write(out, index, host));
    // The process ends after this command: freeing a large spec node by node took longer
    // than writing the files (20,000 backends: ~0.05 s), and the OS frees it at once.
    std::mem::forget(loaded);
    match rendered {
        Ok(()) => staged.commit(),
        Err(e) => {
            staged.discard();
            Err(e)
        }
    }
}

/// Files written under a temporary name, and the directories created for them.
#[derive(Default)]
struct Staged {
    hosts: Vec<(usize, Written)>,
    /// Innermost last, so that removing them in reverse order empties each before its parent.
    created_dirs: Vec<PathBuf>,
}

impl Staged {
    fn write(&mut self, out: &Path, index: usize, host: RenderedHost) -> Result<(), Error> {
        let dir = out.join(&host.host);
        let missing: Vec<PathBuf> = dir
            .ancestors()
            .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
            .map(Path::to_path_buf)
            .collect();
        self.created_dirs.extend(missing.into_iter().rev());
        std::fs::create_dir_all(&dir).map_err(|source| Error::Write {
            path: dir.clone(),
            source,
        })?;
        // A host's directory is lbctl's to write into, never a link planted there to send
        // its files elsewhere.
        if std::fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(Error::Write {
                path: dir,
                source: std::io::Error::other(
                    "is a symbolic link; lbctl writes a host's files into a directory of its own, not through a link (remove the link)",
                ),
            });
        }
        self.hosts.push((
            index,
            Written {
                host: host.host,
                files: Vec::new(),
            },
        ));
        let files = &mut self.hosts.last_mut().expect("just pushed").1.files;
        for file in host.files {
            let path = dir.join(file.service.file_name());
            let temp = staging_name(&path);
            // Recorded first, so that a partly written file is removed too.
            files.push(WrittenFile {
                service: file.service,
                written: path,
                remote_path: file.path,
            });
            write_new(&temp, file.content.as_bytes()).map_err(|source| Error::Write {
                path: temp.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Moves every staged file to its final name; returns the hosts in the fleet's order.
    fn commit(mut self) -> Result<Vec<Written>, Error> {
        self.hosts.sort_by_key(|(index, _)| *index);
        for (_, host) in &self.hosts {
            for file in &host.files {
                std::fs::rename(staging_name(&file.written), &file.written).map_err(|source| {
                    Error::Write {
                        path: file.written.clone(),
                        source,
                    }
                })?;
            }
        }
        Ok(self.hosts.into_iter().map(|(_, host)| host).collect())
    }

    /// Removes what was staged, so that a failed render leaves `out` as it found it.
    fn discard(self) {
        for (_, host) in &self.hosts {
            for file in &host.files {
                let _ = std::fs::remove_file(staging_name(&file.written));
            }
        }
        for dir in self.created_dirs.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Writes a new file at `path`, never through whatever is there: a leftover (or a link planted
/// at the staging name) is removed first, and the file is created exclusively (`O_EXCL`, which
/// does not follow a link).
fn write_new(path: &Path, content: &[u8]) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    // Private (0600): the files hold the configuration's secrets (stats password, VRRP
    // password) in clear.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?
        .write_all(content)
}

fn staging_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lbctl-new");
    PathBuf::from(name)
}
