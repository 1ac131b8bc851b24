//! The runtime: a node registry plus the tokio runtime that drives pipelines.

use std::sync::{Arc, RwLock};

use crate::data::Data;
use crate::error::{Error, Result};
use crate::executor::{Output, Pipeline};
use crate::manifest::Manifest;
use crate::nodes::{NodeSpec, Registry};

/// Shared by a runtime and every pipeline built from it.
pub struct Runtime {
    registry: RwLock<Registry>,
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
            .thread_name("remotemedia-rt")
            .enable_time()
            .build()
            .map_err(|e| Error::Internal(format!("cannot start tokio: {e}")))?;
        Ok(Arc::new(Self { registry: RwLock::new(Registry::builtin()), tokio: Some(tokio) }))
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
        self.block_on(pipeline.run(input))
    }

    /// Drives `work` to completion on the calling thread.
    pub fn block_on<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::InvalidArgument("a blocking run cannot be called from inside an async runtime".into()));
        }
        // Poll on the calling thread with a lightweight executor; entering the tokio
        // context keeps tokio timers working (they are driven by the worker thread).
        let _context = self.tokio.as_ref().expect("present until dropped").enter();
        futures::executor::block_on(work)
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
