//! Talking to the Mimecast API 2.0.

pub mod client;
