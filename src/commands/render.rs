use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Global;
use crate::error::Error;

#[derive(Debug, Serialize)]
pub struct Written {
    pub host: String,
    pub files: Vec<WrittenFile>,
}

#[derive(Debug, Serialize)]
pub struct WrittenFile {
    pub service: crate::render::Service,
    pub written: PathBuf,
    /// Where `apply` would put it on the host.
    pub remote_path: String,
}

/// Renders every load balancer's files into `out/<host>/`. Nothing is written unless every
/// host validated and rendered.
pub fn run(global: &Global, out: &Path) -> Result<Vec<Written>, Error> {
    let loaded = global.load()?;
    let rendered = loaded.render_all(global)?;
    let mut written = Vec::new();
    for host in rendered {
        let dir = out.join(&host.host);
        std::fs::create_dir_all(&dir).map_err(|source| Error::Write {
            path: dir.clone(),
            source,
        })?;
        let mut files = Vec::new();
        for file in host.files {
            let path = dir.join(file.service.file_name());
            std::fs::write(&path, &file.content).map_err(|source| Error::Write {
                path: path.clone(),
                source,
            })?;
            files.push(WrittenFile {
                service: file.service,
                written: path,
                remote_path: file.path,
            });
        }
        written.push(Written {
            host: host.host,
            files,
        });
    }
    Ok(written)
}
