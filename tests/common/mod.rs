//! Helpers shared by the integration tests (and the `process` bench).

pub mod clap_host;
pub mod notes;
