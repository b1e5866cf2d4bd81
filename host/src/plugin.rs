//! The loaded library: its proxy entry points, Register/Unregister with the generation's def,
//! the config map a 5.1.1+ host reads from the def, and the `struct flbgo_input_plugin` the
//! host hands to Init. Each entry point is called through one method here.

use crate::abi;
use crate::callbacks::{api_table, host_exports};
use crate::generation::{
    Generation, PLUGIN_API, PLUGIN_CB_INIT, PLUGIN_CONTEXT, PLUGIN_I_INS, PLUGIN_NAME,
};
use crate::guarded::Guarded;
use crate::host::HostError;
use std::ffi::{c_int, c_void, CStr};
use std::path::Path;

type FnRegister = unsafe extern "C" fn(*mut c_void) -> c_int;
type FnIntArg = unsafe extern "C" fn(c_int) -> c_int;
type FnInit = unsafe extern "C" fn(*mut c_void) -> c_int;
type FnCollect = unsafe extern "C" fn(*mut *mut c_void, *mut usize) -> c_int;
type FnCollectCtx = unsafe extern "C" fn(*mut c_void, *mut *mut c_void, *mut usize) -> c_int;
type FnCleanup = unsafe extern "C" fn(*mut c_void) -> c_int;
type FnCleanupCtx = unsafe extern "C" fn(*mut c_void, *mut c_void) -> c_int;
type FnVoid = unsafe extern "C" fn();
type FnVoidInt = unsafe extern "C" fn(c_int);
type FnExit = unsafe extern "C" fn() -> c_int;

/// `dlopen(RTLD_LAZY)` as Fluent Bit's proxy loader, which takes a name starting with `flb-`
/// for a native plugin.
pub(crate) fn open(path: &Path) -> Result<libloading::Library, HostError> {
    let base = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if base.starts_with("flb-") {
        return Err(HostError::Load(format!(
            "'{base}' starts with flb-: Fluent Bit would treat it as a native plugin"
        )));
    }
    // SAFETY: loading the plugin under test; its constructors are ours.
    let lib = unsafe { libloading::os::unix::Library::open(Some(path), libc::RTLD_LAZY) }
        .map_err(|e| HostError::Load(e.to_string()))?;
    Ok(lib.into())
}

fn sym<T: Copy>(lib: &libloading::Library, name: &str) -> Option<T> {
    // SAFETY: the symbol types mirror the proxy ABI for these names.
    unsafe { lib.get::<T>(name.as_bytes()).ok().map(|s| *s) }
}

/// The plugin's entry points, as the host generation looks them up.
#[derive(Clone, Copy)]
pub(crate) struct Syms {
    pre_register: Option<FnIntArg>,
    register: FnRegister,
    unregister: Option<FnCleanup>,
    init: FnInit,
    pre_run: Option<FnIntArg>,
    collect: Option<FnCollect>,
    collect_ctx: Option<FnCollectCtx>,
    cleanup: Option<FnCleanup>,
    cleanup_ctx: Option<FnCleanupCtx>,
    pause: Option<FnVoid>,
    resume: Option<FnVoid>,
    pre_exit: Option<FnVoidInt>,
    exit: Option<FnExit>,
}

impl Syms {
    /// Register and Init are required; the Ctx callbacks are looked up on 4.1+ hosts only.
    pub(crate) fn resolve(lib: &libloading::Library, gen: Generation) -> Result<Syms, HostError> {
        let register = sym::<FnRegister>(lib, "FLBPluginRegister")
            .ok_or_else(|| HostError::Load("no FLBPluginRegister".into()))?;
        let init = sym::<FnInit>(lib, "FLBPluginInit")
            .ok_or_else(|| HostError::Load("no FLBPluginInit".into()))?;
        Ok(Syms {
            pre_register: sym(lib, "FLBPluginPreRegister"),
            register,
            unregister: sym(lib, "FLBPluginUnregister"),
            init,
            pre_run: sym(lib, "FLBPluginInputPreRun"),
            collect: sym(lib, "FLBPluginInputCallback"),
            collect_ctx: if gen.has_ctx() {
                sym(lib, "FLBPluginInputCallbackCtx")
            } else {
                None
            },
            cleanup: sym(lib, "FLBPluginInputCleanupCallback"),
            cleanup_ctx: if gen.has_ctx() {
                sym(lib, "FLBPluginInputCleanupCallbackCtx")
            } else {
                None
            },
            pause: sym(lib, "FLBPluginInputPause"),
            resume: sym(lib, "FLBPluginInputResume"),
            pre_exit: sym(lib, "FLBPluginInputPreExit"),
            exit: sym(lib, "FLBPluginExit"),
        })
    }

    /// `FLBPluginPreRegister(hot)`, then `FLBPluginRegister` with a zeroed def of the
    /// generation's size, checked for writes past it and for what Fluent Bit requires.
    pub(crate) fn register_def(&self, gen: Generation, hot: c_int) -> Result<Guarded, HostError> {
        if let Some(pre) = self.pre_register {
            // SAFETY: plugin entry point with an int argument.
            if unsafe { pre(hot) } == -1 {
                return Err(HostError::Register(
                    "FLBPluginPreRegister returned -1".into(),
                ));
            }
        }
        let def = Guarded::exact(gen.def_size());
        host_exports().set_cmt_version(gen.cmt_version());
        // SAFETY: def is a zeroed allocation of the generation's size.
        let rc = unsafe { (self.register)(def.ptr.cast()) };
        if rc == -1 {
            return Err(HostError::Register("FLBPluginRegister returned -1".into()));
        }
        if !def.intact() {
            return Err(HostError::Register(format!(
                "plugin wrote past the {}-byte def of this host generation",
                gen.def_size()
            )));
        }
        // SAFETY: the first 32 bytes are the v2.0 layout in every generation.
        let d = unsafe { &*(def.ptr as *const abi::flb_plugin_proxy_def_v2_0) };
        if d.type_ != 1 || d.proxy != 11 || d.name.is_null() {
            return Err(HostError::Register(format!(
                "def has type {} proxy {} (want 1 and 11) or no name",
                d.type_, d.proxy
            )));
        }
        Ok(def)
    }

    pub(crate) fn unregister_def(&self, def: &Guarded) {
        if let Some(f) = self.unregister {
            // SAFETY: plugin entry point; def is the one we registered.
            unsafe { f(def.ptr.cast()) };
        }
    }

    /// The host's `struct flbgo_input_plugin` and the `struct flb_api` it points to, both of
    /// the generation's size; `i_ins` and `context` are set per instance before Init.
    pub(crate) fn plugin_struct(&self, gen: Generation) -> (Guarded, Guarded) {
        let api = api_table(gen);
        let plugin = Guarded::new(gen.plugin_size());
        plugin.set_word(PLUGIN_NAME, c"mimecast".as_ptr() as usize);
        plugin.set_word(PLUGIN_API, api.ptr as usize);
        let f = |o: Option<usize>| o.unwrap_or(0);
        plugin.set_word(PLUGIN_CB_INIT, self.init as usize);
        let at = gen.plugin_callbacks();
        plugin.set_word(at.collect, f(self.collect.map(|x| x as usize)));
        if let Some(off) = at.collect_ctx {
            plugin.set_word(off, f(self.collect_ctx.map(|x| x as usize)));
        }
        plugin.set_word(at.cleanup, f(self.cleanup.map(|x| x as usize)));
        if let Some(off) = at.cleanup_ctx {
            plugin.set_word(off, f(self.cleanup_ctx.map(|x| x as usize)));
        }
        plugin.set_word(at.exit, f(self.exit.map(|x| x as usize)));
        (plugin, api)
    }

    /// `FLBPluginInit` with the plugin struct, once its `i_ins` and `context` are this
    /// instance's (see `set_instance`).
    pub(crate) fn call_init(&self, plugin: &Guarded) -> c_int {
        // SAFETY: plugin entry point with the host's struct, as go.c proxy_go_input_init does.
        unsafe { (self.init)(plugin.ptr.cast()) }
    }

    pub(crate) fn call_pre_run(&self, hot: c_int) {
        if let Some(pre_run) = self.pre_run {
            // SAFETY: plugin entry point.
            unsafe { pre_run(hot) };
        }
    }

    /// `FLBPluginInputCallbackCtx` where the host has it, else `FLBPluginInputCallback`:
    /// (return code, buffer, length); None when the plugin has neither.
    pub(crate) fn call_collect(&self, remote: usize) -> Option<(c_int, *mut c_void, usize)> {
        let mut data: *mut c_void = std::ptr::null_mut();
        let mut len: usize = 0;
        // SAFETY: plugin entry points with valid out-params, as proxy_go_input_collect.
        let rc = unsafe {
            match (self.collect_ctx, self.collect) {
                (Some(f), _) => f(remote as *mut c_void, &mut data, &mut len),
                (None, Some(f)) => f(&mut data, &mut len),
                (None, None) => return None,
            }
        };
        Some((rc, data, len))
    }

    /// The cleanup callback for a collected buffer (Ctx where the host has it); with neither,
    /// the host frees it.
    ///
    /// # Safety
    /// `data` is the buffer a collect of this plugin handed over, not cleaned up yet.
    pub(crate) unsafe fn call_cleanup(&self, remote: usize, data: *mut c_void) -> c_int {
        // SAFETY: cleanup right after append, as proxy_go_input_cleanup.
        unsafe {
            match (self.cleanup_ctx, self.cleanup) {
                (Some(f), _) => f(remote as *mut c_void, data),
                (None, Some(f)) => f(data),
                (None, None) => {
                    libc::free(data);
                    0
                }
            }
        }
    }

    pub(crate) fn call_pause(&self) {
        if let Some(f) = self.pause {
            // SAFETY: plugin entry point.
            unsafe { f() };
        }
    }

    pub(crate) fn call_resume(&self) {
        if let Some(f) = self.resume {
            // SAFETY: plugin entry point.
            unsafe { f() };
        }
    }

    pub(crate) fn call_pre_exit(&self, hot: c_int) {
        if let Some(f) = self.pre_exit {
            // SAFETY: plugin entry point.
            unsafe { f(hot) };
        }
    }

    /// `FLBPluginExit`, on the instance's thread.
    pub(crate) fn call_exit(&self) {
        if let Some(f) = self.exit {
            // SAFETY: plugin entry point, called on this instance's thread.
            unsafe { f() };
        }
    }
}

/// Points the plugin struct at one instance's `i_ins` and input context (under the host's
/// plugin lock, as instances are initialised one after another).
pub(crate) fn set_instance(plugin: &Guarded, ins: usize, context: &Guarded) {
    plugin.set_word(PLUGIN_I_INS, ins);
    plugin.set_word(PLUGIN_CONTEXT, context.ptr as usize);
}

/// On 5.1.1+ the host reads `config_map` (offset 40) and copies the NULL-terminated table.
pub(crate) fn read_config_map(def: &Guarded, gen: Generation) -> Option<Vec<String>> {
    let table = def.word(gen.def_config_map_offset()?) as *const abi::flb_config_map;
    if table.is_null() {
        return None;
    }
    let mut names = Vec::new();
    for i in 0..10_000 {
        // SAFETY: the plugin hands a NULL-terminated array of flb_config_map.
        let e = unsafe { &*table.add(i) };
        if e.name.is_null() {
            break;
        }
        // SAFETY: names are NUL-terminated C strings.
        names.push(
            unsafe { CStr::from_ptr(e.name) }
                .to_string_lossy()
                .into_owned(),
        );
    }
    Some(names)
}
