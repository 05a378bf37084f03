//! Jinja2 as Ansible runs it, for variables and for templates alike.
//!
//! One environment (`environment`): Ansible's filters and tests (`filters`), `trim_blocks`,
//! values printed as Python prints them, and errors that name what was undefined. Variables
//! are evaluated lazily in a host's scope (`scope`), as ansible-core 2.19 does: a value is
//! evaluated when something reads it (lbctl's spec, a template, another variable), a string
//! that is a single `{{ expression }}` keeps the expression's type (`native`), containers are
//! read item by item (`lazy`), `hostvars` gives any host's scope, and a variable that refers
//! back to itself is reported as a loop instead of recursing.
//!
//! Takes the inventory and the variable sources; returns a `Templar` that hands out each
//! host's `HostScope`, which gives variables as template values or as positioned `Node`s.

mod chain;
mod env;
mod error;
mod filters;
mod lazy;
mod lookups;
mod methods;
mod mutable;
mod native;
mod omit;
mod scope;
mod stack;

pub use chain::render as render_through_missing;
pub use env::environment;
pub use error::{TemplateError, advice, explain};
pub use filters::python_str;
pub use mutable::{check_chains, prepare};
pub use native::{is_template, render_file};
pub use scope::{HostScope, Templar};
pub use stack::{spawn_scoped, with_deep_stack};
