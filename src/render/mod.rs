//! Turning a host's spec into config files through Jinja2 templates. Built-in templates are
//! embedded in the binary; a user's own `templates/*.j2` replace them file by file, as with
//! Ansible's template module. Rendering knows nothing about what is deployed on hosts.
//!
//! Takes a `HostSpec` (and the inventory's groups); returns a `RenderedHost`: each config
//! file's path and content. `templates.rs` loads and runs the templates, `view.rs` is the
//! typed spec as templates see it (`lb`).

mod rendered;
mod templates;
mod view;

pub use rendered::{RenderedFile, RenderedHost};
pub use templates::{RunContext, Templates, check_flag_dir, override_dirs};
