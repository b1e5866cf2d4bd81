//! Everything that touches the host: the ABI bindings, exported symbols, host API wrappers and
//! host-allocated buffers. The only place with `unsafe` code.

pub mod abi;
pub mod buffer;
pub mod cmetrics;
pub mod config_map;
pub mod event;
pub mod exports;
pub mod host;
pub mod panic;
pub mod trim;
