//! The Fluent Bit generations fbhost presents, and the layouts (sizes and offsets, LP64) of the
//! structs the host allocates for each: the plugin's def, `struct flb_api`,
//! `struct flbgo_input_plugin` and the input proxy context.

use std::ffi::CStr;

/// Which Fluent Bit's structs to present.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Generation {
    /// 2.0.0 - 4.0.x: no Ctx callbacks, no remote_context, 32-byte def, 56-byte api.
    V2_0,
    /// 4.1.x: Ctx callbacks and remote_context; 72-byte api; 32-byte def.
    V4_1,
    /// 5.0.x: def gains event_type (40 bytes).
    V5_0,
    /// 5.1.0: the 5.0 layout (40-byte def) with the libraries of 5.1.1 (cmetrics 2.2.1), the
    /// one release that the exported version functions alone cannot tell from 5.1.1.
    V5_1_0,
    /// 5.1.1+: def gains config_map (48 bytes).
    V5_1_1,
}

/// `struct flbgo_input_plugin`: the offsets every generation shares. Those of the callbacks
/// after `cb_init` depend on the generation: `Generation::plugin_callbacks`.
pub(crate) const PLUGIN_NAME: usize = 0;
pub(crate) const PLUGIN_API: usize = 8;
pub(crate) const PLUGIN_I_INS: usize = 16;
pub(crate) const PLUGIN_CONTEXT: usize = 24;
pub(crate) const PLUGIN_CB_INIT: usize = 32;

/// Offsets of the callbacks after `cb_init` in `struct flbgo_input_plugin`.
pub(crate) struct PluginCallbacks {
    pub(crate) collect: usize,
    /// 4.1+.
    pub(crate) collect_ctx: Option<usize>,
    pub(crate) cleanup: usize,
    /// 4.1+.
    pub(crate) cleanup_ctx: Option<usize>,
    pub(crate) exit: usize,
}

/// `struct flb_plugin_input_proxy_context`: `remote_context` (4.1+ only).
pub(crate) const CONTEXT_REMOTE: usize = 8;

impl Generation {
    pub const ALL: [Generation; 5] = [
        Generation::V2_0,
        Generation::V4_1,
        Generation::V5_0,
        Generation::V5_1_0,
        Generation::V5_1_1,
    ];

    pub fn parse(s: &str) -> Option<Generation> {
        match s {
            "2.0" | "2" | "3" | "4.0" => Some(Generation::V2_0),
            "4.1" | "4" => Some(Generation::V4_1),
            "5.0" => Some(Generation::V5_0),
            "5.1.0" => Some(Generation::V5_1_0),
            "5.1.1" | "5.1" | "5" => Some(Generation::V5_1_1),
            _ => None,
        }
    }

    /// `struct flb_plugin_proxy_def`, as the host allocates it for Register.
    pub(crate) fn def_size(self) -> usize {
        match self {
            Generation::V2_0 | Generation::V4_1 => 32,
            Generation::V5_0 | Generation::V5_1_0 => 40,
            Generation::V5_1_1 => 48,
        }
    }

    /// Where the def holds `config_map`, on the generations that read it (5.1.1+).
    pub(crate) fn def_config_map_offset(self) -> Option<usize> {
        (self >= Generation::V5_1_1).then_some(40)
    }

    /// What `cmt_version()` returns in the newest release of the generation (4.0.3, 4.1.2,
    /// 5.0.9, 5.1.0, 5.1.1), read from each release's bundled cmetrics.
    pub(crate) fn cmt_version(self) -> &'static CStr {
        match self {
            Generation::V2_0 => c"1.0.3",
            Generation::V4_1 => c"1.0.5",
            Generation::V5_0 => c"2.1.5",
            Generation::V5_1_0 | Generation::V5_1_1 => c"2.2.1",
        }
    }

    /// 4.1+: the Ctx callbacks, `remote_context` and the custom_* api functions.
    pub(crate) fn has_ctx(self) -> bool {
        self >= Generation::V4_1
    }

    /// `struct flb_api`: 7 function pointers, 9 with the custom_* ones (4.1+).
    pub(crate) fn api_size(self) -> usize {
        if self.has_ctx() {
            72
        } else {
            56
        }
    }

    /// `struct flbgo_input_plugin`: 8 words, 10 with the Ctx callbacks (4.1+).
    pub(crate) fn plugin_size(self) -> usize {
        if self.has_ctx() {
            80
        } else {
            64
        }
    }

    /// Where `struct flbgo_input_plugin` holds the callbacks after `cb_init`.
    pub(crate) fn plugin_callbacks(self) -> PluginCallbacks {
        if self.has_ctx() {
            PluginCallbacks {
                collect: 40,
                collect_ctx: Some(48),
                cleanup: 56,
                cleanup_ctx: Some(64),
                exit: 72,
            }
        } else {
            PluginCallbacks {
                collect: 40,
                collect_ctx: None,
                cleanup: 48,
                cleanup_ctx: None,
                exit: 56,
            }
        }
    }

    /// `struct flb_plugin_input_proxy_context`: coll_fd, (remote_context,) proxy.
    pub(crate) fn context_size(self) -> usize {
        if self.has_ctx() {
            24
        } else {
            16
        }
    }

    /// Where the input proxy context holds its `proxy` pointer.
    pub(crate) fn context_proxy_offset(self) -> usize {
        if self.has_ctx() {
            16
        } else {
            8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi;
    use std::mem::{offset_of, size_of};

    #[test]
    fn layouts_match_the_plugin_header() {
        let (old, new) = (Generation::V2_0, Generation::V5_1_1);
        assert_eq!(old.def_size(), size_of::<abi::flb_plugin_proxy_def_v2_0>());
        assert_eq!(
            Generation::V5_0.def_size(),
            size_of::<abi::flb_plugin_proxy_def_v5_0>()
        );
        assert_eq!(new.def_size(), size_of::<abi::flb_plugin_proxy_def>());
        assert_eq!(
            new.def_config_map_offset(),
            Some(offset_of!(abi::flb_plugin_proxy_def, config_map))
        );
        assert_eq!(old.api_size(), size_of::<abi::flb_api_v2_0>());
        assert_eq!(new.api_size(), size_of::<abi::flb_api>());
        assert_eq!(old.plugin_size(), size_of::<abi::flbgo_input_plugin_v2_0>());
        assert_eq!(new.plugin_size(), size_of::<abi::flbgo_input_plugin>());
        type P = abi::flbgo_input_plugin;
        assert_eq!(PLUGIN_NAME, offset_of!(P, name));
        assert_eq!(PLUGIN_API, offset_of!(P, api));
        assert_eq!(PLUGIN_I_INS, offset_of!(P, i_ins));
        assert_eq!(PLUGIN_CONTEXT, offset_of!(P, context));
        assert_eq!(PLUGIN_CB_INIT, offset_of!(P, cb_init));
        let cb = new.plugin_callbacks();
        assert_eq!(cb.collect, offset_of!(P, cb_collect));
        assert_eq!(cb.collect_ctx, Some(offset_of!(P, cb_collect_ctx)));
        assert_eq!(cb.cleanup, offset_of!(P, cb_cleanup));
        assert_eq!(cb.cleanup_ctx, Some(offset_of!(P, cb_cleanup_ctx)));
        assert_eq!(cb.exit, offset_of!(P, cb_exit));
        type P2 = abi::flbgo_input_plugin_v2_0;
        let cb = old.plugin_callbacks();
        assert_eq!(cb.collect, offset_of!(P2, cb_collect));
        assert_eq!((cb.collect_ctx, cb.cleanup_ctx), (None, None));
        assert_eq!(cb.cleanup, offset_of!(P2, cb_cleanup));
        assert_eq!(cb.exit, offset_of!(P2, cb_exit));
        type C2 = abi::flb_plugin_input_proxy_context_v2_0;
        type C = abi::flb_plugin_input_proxy_context;
        assert_eq!(old.context_size(), size_of::<C2>());
        assert_eq!(new.context_size(), size_of::<C>());
        assert_eq!(old.context_proxy_offset(), offset_of!(C2, proxy));
        assert_eq!(new.context_proxy_offset(), offset_of!(C, proxy));
        assert_eq!(CONTEXT_REMOTE, offset_of!(C, remote_context));
    }
}
