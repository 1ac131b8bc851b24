//! The runtime: a node registry plus the tokio runtime that drives pipelines.

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use serde_json::{Value, json};

use crate::data::Data;
use crate::error::{Error, Result};
use crate::executor::{Output, Pipeline};
use crate::manifest::Manifest;
use crate::nodes::PluginMeta;
use crate::nodes::{NodeSpec, Registry};
use crate::plugin::{self, Plugin};

/// Plugins a runtime loaded, and those discovery rejected.
#[derive(Default)]
struct Plugins {
    loaded: Vec<Arc<Plugin>>,
    /// `(file, reason)` of each library discovery could not load.
    rejected: Vec<(String, String)>,
}

/// Shared by a runtime and every pipeline built from it.
pub struct Runtime {
    registry: RwLock<Registry>,
    plugins: Mutex<Plugins>,
    /// Always `Some` until dropped.
    tokio: Option<tokio::runtime::Runtime>,
}

impl Drop for Runtime {
    /// Shuts tokio down without waiting: a node abandoned after a timeout may still be
    /// running on a blocking thread, and must not hang the runtime's owner.
    fn drop(&mut self) {
        if let Some(tokio) = self.tokio.take() {
            tokio.shutdown_background();
        }
    }
}

impl Runtime {
    /// A runtime with the built-in node types and one timer/worker thread.
    ///
    /// Pipelines run on the thread that calls [`Runtime::run`]; many threads may run
    /// different pipelines of one runtime at once.
    pub fn new() -> Result<Arc<Self>> {
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(crate::budget::MAX_BLOCKING_THREADS)
            .thread_name("remotemedia-rt")
            .enable_time()
            .build()
            .map_err(|e| Error::Internal(format!("cannot start tokio: {e}")))?;
        Ok(Arc::new(Self { registry: RwLock::new(Registry::builtin()), plugins: Mutex::default(), tokio: Some(tokio) }))
    }

    /// Loads every plugin on the search path ([`plugin::search_path`]). A library that
    /// fails to load is recorded with the reason (see [`Runtime::plugins`]) and skipped;
    /// the others still load.
    pub fn discover_plugins(&self) {
        let (files, skipped) = plugin::discovery::candidates(&plugin::search_path());
        let mut rejected: Vec<(String, String)> = skipped.into_iter().map(|(p, why)| (p.display().to_string(), why)).collect();
        for file in files {
            if let Err(e) = self.load_plugin(&file) {
                let why = match e {
                    Error::Plugin { message, .. } => message,
                    other => other.to_string(),
                };
                tracing::warn!(file = %file.display(), "plugin rejected: {why}");
                rejected.push((file.display().to_string(), why));
            }
        }
        self.plugins.lock().unwrap_or_else(|e| e.into_inner()).rejected.extend(rejected);
    }

    /// Loads the plugin at `path` (relative paths are taken from the current directory)
    /// and registers its node types. Loading the same file again is a no-op. Fails with
    /// [`Error::Plugin`] naming the file and the reason; nothing is registered then.
    pub fn load_plugin(&self, path: &Path) -> Result<Arc<PluginMeta>> {
        let plugin = plugin::load(path)?;
        let mut plugins = self.plugins.lock().unwrap_or_else(|e| e.into_inner());
        if plugins.loaded.iter().any(|p| Arc::ptr_eq(p, &plugin)) {
            return Ok(plugin.meta.clone());
        }
        let fail = |message: String| plugin::error(&plugin.meta.file, message);
        if let Some(other) = plugins.loaded.iter().find(|p| p.meta.name == plugin.meta.name) {
            return Err(fail(format!("a plugin named '{}' is already loaded from {}", other.meta.name, other.meta.file.display())));
        }
        self.registry
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .add_group(plugin.specs(), &format!("plugin '{}'", plugin.meta.name))
            .map_err(fail)?;
        tracing::info!(plugin = %plugin.meta.name, file = %plugin.meta.file.display(), "plugin loaded");
        plugins.loaded.push(plugin.clone());
        Ok(plugin.meta.clone())
    }

    /// Loaded plugins, rejected libraries and the search path, as JSON.
    pub fn plugins(&self) -> Value {
        let plugins = self.plugins.lock().unwrap_or_else(|e| e.into_inner());
        json!({
            "plugins": plugins.loaded.iter().map(|p| p.describe()).collect::<Vec<_>>(),
            "rejected": plugins.rejected.iter().map(|(file, reason)| json!({"file": file, "reason": reason})).collect::<Vec<_>>(),
            "search_path": plugin::search_path(),
        })
    }

    /// Adds a node type (a host node, for instance); replaces one of the same name and implementation.
    pub fn register(&self, spec: NodeSpec) {
        self.registry.write().unwrap_or_else(|e| e.into_inner()).insert(spec);
    }

    /// A snapshot of the registry.
    pub fn registry(&self) -> Registry {
        self.registry.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Parses, validates and instantiates a pipeline.
    pub fn pipeline(&self, manifest_json: &str) -> Result<Pipeline> {
        let manifest = Manifest::from_json(manifest_json)?;
        let registry = self.registry.read().unwrap_or_else(|e| e.into_inner());
        Pipeline::build(manifest, &registry)
    }

    /// Runs `pipeline` once on `input`, blocking the calling thread until it is done.
    pub fn run(&self, pipeline: &mut Pipeline, input: Data) -> Result<Vec<Output>> {
        self.run_viewing(pipeline, input).map(crate::executor::owned)
    }

    /// [`Runtime::run`] through [`Pipeline::run_viewing`]: outputs may still view
    /// borrowed input samples.
    pub fn run_viewing(&self, pipeline: &mut Pipeline, input: Data) -> Result<Vec<Output>> {
        self.block_on(pipeline.run_viewing(input))
    }

    /// Runs `pipeline` once on several of its inputs (index and item each).
    pub fn run_inputs(&self, pipeline: &mut Pipeline, inputs: impl IntoIterator<Item = (usize, Data)>) -> Result<Vec<Output>> {
        self.block_on(pipeline.run_inputs(inputs))
    }

    /// Drives `work` to completion on the calling thread.
    pub fn block_on<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        crate::executor::block_on(&self.tokio(), work)
    }

    /// A handle on the runtime's timer thread, for sessions; valid while this runtime lives.
    pub fn tokio(&self) -> tokio::runtime::Handle {
        self.tokio.as_ref().expect("present until dropped").handle().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokio_timers_work_on_the_calling_thread() {
        let rt = Runtime::new().unwrap();
        let _context = rt.tokio.as_ref().unwrap().enter();
        let started = std::time::Instant::now();
        futures::executor::block_on(tokio::time::sleep(std::time::Duration::from_millis(5)));
        assert!(started.elapsed() >= std::time::Duration::from_millis(5));
    }

    #[test]
    fn blocking_run_inside_async_is_an_error() {
        let rt = Runtime::new().unwrap();
        let mut p = rt.pipeline(r#"{"version":"1","nodes":[{"id":"p","node_type":"PassThrough"}]}"#).unwrap();
        let input = Data::Json(std::sync::Arc::new(serde_json::json!({})));
        let inner = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let err = inner.block_on(async { rt.run(&mut p, input) }).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    }
}
