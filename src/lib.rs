//! Fluent Bit input plugin for Mimecast API 2.0 logs.
//!
//! `ffi` is the only module with `unsafe` code and `extern "C"` functions; everything else is
//! plain Rust driven through it.

/// The plugin's version (semantic versioning; see CHANGELOG.md).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub mod config;
pub mod encode;
pub mod ffi;
pub mod handoff;
pub mod hash;
pub mod instance;
pub mod log;
pub mod metrics;
pub mod mimecast;
pub mod probe;
pub mod schema;
pub mod sources;
pub mod state;
