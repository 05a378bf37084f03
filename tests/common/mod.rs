//! Helpers shared by integration tests that use the namespace lab (`mod common;`).

pub mod lab;
