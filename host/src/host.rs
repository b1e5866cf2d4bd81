//! The host's lifecycle, on the caller's (main) thread as Fluent Bit's proxy loader: load and
//! Register, add instances, start collecting, Pause/Resume, hot reload, and the two ways to
//! stop (graceful, or after an Init failure), ending with Unregister and dlclose.

use crate::callbacks::InsState;
use crate::collected::{Collected, Keep, Printer};
use crate::config::{expand_env, host_key, InstanceSpec};
use crate::generation::Generation;
use crate::guarded::Guarded;
use crate::instance::{Cmd, InstanceThread, Shared};
use crate::plugin::{self, read_config_map, Syms};
use std::ffi::{c_int, CString};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Errors of the host's own run.
#[derive(Debug)]
pub enum HostError {
    Load(String),
    Register(String),
    InitFailed(usize),
    /// A 5.1.1+ host with the plugin's config map refuses keys the map does not list.
    UnknownProperty(String),
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostError::Load(m) => write!(f, "cannot load plugin: {m}"),
            HostError::Register(m) => write!(f, "register failed: {m}"),
            HostError::InitFailed(i) => write!(f, "instance {i} failed to initialize"),
            HostError::UnknownProperty(k) => write!(f, "unknown configuration property '{k}'"),
        }
    }
}

pub struct Host {
    /// Property names of the plugin's config map, when a 5.1.1+ host was given one.
    pub config_map: Option<Vec<String>>,
    lib: Option<libloading::Library>,
    shared: Arc<Shared>,
    def: Guarded,
    instances: Vec<InstanceThread>,
    next_index: usize,
    pub collected: Arc<Collected>,
}

impl Host {
    /// Loads the library and registers it, as Fluent Bit does at start (or on hot reload).
    pub fn load(
        path: &Path,
        gen: Generation,
        keep: Keep,
        printer: Option<Printer>,
    ) -> Result<Host, HostError> {
        let lib = plugin::open(path)?;
        let syms = Syms::resolve(&lib, gen)?;
        let def = syms.register_def(gen, 0)?;
        let config_map = read_config_map(&def, gen);
        let (plugin, api) = syms.plugin_struct(gen);
        let collected = Arc::new(Collected::default());
        Ok(Host {
            config_map,
            lib: Some(lib),
            shared: Arc::new(Shared {
                gen,
                syms,
                plugin,
                api,
                plugin_lock: Mutex::new(()),
                collected: collected.clone(),
                keep,
                printer,
                stop_all: AtomicBool::new(false),
            }),
            def,
            instances: Vec::new(),
            next_index: 0,
            collected,
        })
    }

    /// Adds an instance: Init on its own thread (waiting for the result, as instances are
    /// initialised one after another), then PreRun. Collecting starts with `start()`.
    pub fn add_instance(&mut self, spec: InstanceSpec) -> Result<usize, HostError> {
        self.check_properties(&spec)?;
        let index = self.next_index;
        self.next_index += 1;
        let name = format!("mimecast.{index}");
        let tag = spec
            .props
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("tag"))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| name.clone());
        let props = spec
            .props
            .iter()
            .map(|(k, v)| (k.clone(), CString::new(expand_env(v)).unwrap_or_default()))
            .collect();
        let ins = Box::new(InsState {
            props,
            log_level: spec.log_level,
            name,
            events: Default::default(),
            taken: Default::default(),
        });
        let thread = InstanceThread::spawn(self.shared.clone(), ins, index, tag)?;
        self.instances.push(thread);
        Ok(index)
    }

    /// With the plugin's config map (5.1.1+), every key must be the host's or in the map.
    fn check_properties(&self, spec: &InstanceSpec) -> Result<(), HostError> {
        if let Some(names) = &self.config_map {
            for (k, _) in &spec.props {
                if !host_key(k)
                    && !k.eq_ignore_ascii_case("name")
                    && !names.iter().any(|n| n.eq_ignore_ascii_case(k))
                {
                    return Err(HostError::UnknownProperty(k.clone()));
                }
            }
        }
        Ok(())
    }

    /// Starts every instance's 1 s collect timer.
    pub fn start(&self) {
        for i in &self.instances {
            i.send(Cmd::StartCollect);
        }
    }

    /// Pauses instance `i` as Fluent Bit does at `mem_buf_limit`: its collect stops and its
    /// ring buffer is no longer moved into chunks, until [`Host::resume`]; stopped meanwhile,
    /// it exits with what waits there freed, not taken in.
    pub fn pause(&self, i: usize) {
        if let Some(t) = self.instances.get(i) {
            t.send(Cmd::Pause);
        }
    }

    pub fn resume(&self, i: usize) {
        if let Some(t) = self.instances.get(i) {
            t.send(Cmd::Resume);
        }
    }

    fn stop_instances(&mut self, hot: c_int) {
        for t in &self.instances {
            t.send(Cmd::StopIngestion);
            t.send(Cmd::StopIngestion);
            t.send(Cmd::PreExit(hot));
            t.send(Cmd::Exit);
        }
        for t in self.instances.drain(..) {
            t.wait_exit();
        }
    }

    /// Hot reload (SIGHUP with -Y): PreRegister(1), Register(new def), old instances Pause,
    /// PreExit(1), Exit, Unregister(old def), then the new instances Init and PreRun(1).
    pub fn hot_reload(&mut self, specs: Vec<InstanceSpec>) -> Result<Vec<usize>, HostError> {
        let new_def = self.shared.syms.register_def(self.shared.gen, 1)?;
        self.stop_instances(1);
        self.shared.syms.unregister_def(&self.def);
        self.def = new_def;
        self.next_index = 0;
        let mut ids = Vec::new();
        for s in specs {
            ids.push(self.add_instance(s)?);
        }
        self.start();
        Ok(ids)
    }

    /// Graceful stop as on SIGTERM: Pause twice (none for an instance [`Host::pause`]d, which
    /// Fluent Bit finds paused already), PreExit(0), Exit per instance on its thread,
    /// Unregister on this thread, dlclose.
    pub fn stop(mut self) -> Arc<Collected> {
        self.stop_instances(0);
        self.finish()
    }

    /// What Fluent Bit does when an Init failed: no PreExit/Exit for the others, only
    /// Unregister, then dlclose.
    pub fn abort_after_init_failure(mut self) -> Arc<Collected> {
        self.shared.stop_all.store(true, Ordering::SeqCst);
        for t in self.instances.drain(..) {
            t.join();
        }
        self.finish()
    }

    fn finish(&mut self) -> Arc<Collected> {
        self.shared.syms.unregister_def(&self.def);
        if !self.shared.plugin.intact() || !self.shared.api.intact() {
            self.collected
                .violation("plugin wrote past the host's flbgo_input_plugin or flb_api".into());
        }
        drop(self.lib.take());
        self.collected.clone()
    }
}
