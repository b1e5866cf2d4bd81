//! Talking to the Mimecast API 2.0: the client and its retry loop (`client`), the access token
//! (`auth`), the request budget per client id (`budget`), the classified errors (`error`), and
//! the transport (`tls`).

mod auth;
mod budget;
pub mod client;
pub mod error;
pub mod tls;
