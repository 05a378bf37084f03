//! What rendering produces: each host's config files, with where they live on the host.

use serde::Serialize;

use crate::spec::Service;

#[derive(Debug, Clone, Serialize)]
pub struct RenderedFile {
    pub service: Service,
    /// Where the file lives on the host.
    pub path: String,
    pub content: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RenderedHost {
    pub host: String,
    pub files: Vec<RenderedFile>,
}
