//! fbhost: loads a proxy input plugin `.so` and drives it exactly as Fluent Bit's proxy loader
//! does (src/flb_plugin_proxy.c and src/proxy/go/go.c), for each ABI generation:
//!
//! - main thread: `dlopen(RTLD_LAZY)`, `FLBPluginPreRegister(hot_reload)`, `FLBPluginRegister(def)`
//!   with a zeroed def of the generation's size; at the end `FLBPluginUnregister(def)`, dlclose;
//! - one thread per instance: `FLBPluginInit(plugin)` (instances one after another), PreRun, then
//!   collect every 1 s on a fixed timer (a slow collect is followed at once by the next, ticks
//!   are not queued), append, cleanup right after; Pause/Resume, PreExit, Exit on that thread.
//!
//! Every host-allocated struct is followed by canary bytes that are checked after each call:
//! a plugin writing past what an older host allocated is caught. Every buffer is decoded
//! strictly: a single invalid record is a violation (Fluent Bit would drop the rest of the chunk).
//!
//! Modules, one concern each:
//! - `generation`: the Fluent Bit generations and the sizes and offsets of their structs;
//! - `guarded`: host allocations followed by canary bytes;
//! - `callbacks`: what the plugin calls back (`struct flb_api`, log lines, `cmt_version`);
//! - `plugin`: the loaded library's entry points, Register, the plugin struct;
//! - `host`: the lifecycle on the main thread (load, instances, hot reload, stop);
//! - `instance`: an instance's thread (Init, the 1 s collect loop, cleanup);
//! - `decode`: strict record decoding and validation;
//! - `collected`: what a host's instances delivered;
//! - `config`: instance properties and the classic config.

/// The proxy ABI layouts, from the plugin's own header (include/flb_proxy_abi.h).
#[allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    clippy::all
)]
pub mod abi {
    include!("../../src/ffi/bindings.rs");
}

mod callbacks;
mod collected;
mod config;
mod decode;
mod generation;
mod guarded;
mod host;
mod instance;
mod plugin;

pub use callbacks::{plugin_logs, set_log_echo, InsState};
pub use collected::{Collected, Keep, Printer};
pub use config::{expand_env, host_key, parse_classic_config, InstanceSpec};
pub use decode::{count_by, decode_strict, to_json, validate_strict, Record};
pub use generation::Generation;
pub use host::{Host, HostError};
