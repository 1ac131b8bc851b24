//! remotemedia: an embedded runtime for audio pipelines described by JSON manifests.
//!
//! Layers, bottom up, as `docs/ARCHITECTURE.md` draws them (each module imports only
//! from those below it; `tests/python/test_layers.py` holds them): `error`,
//! [`budget`] and `ffi` (C argument rules) at the bottom; [`data`] (typed buffers),
//! `convert`, [`caps`] (what ports carry, input ports included), [`metrics`],
//! [`manifest`] (parsing, validation, named inputs), `serial`, `model` (ONNX files,
//! the silero network, the graph engine), `view`, [`alloc`]; then [`nodes`] (the node
//! interface, specs, registry, built-in and foreign nodes), `plugin` (loading and
//! discovery), [`isolation`] (nodes in child processes), `conformance`, [`executor`]
//! (building, caps negotiation and the plan, calling nodes under their policies,
//! waves, sessions), [`runtime`] (registry plus tokio), [`contract`] (the facts both
//! runtimes share) and, on top, [`capi`]: the stable C ABI in `include/remotemedia.h`,
//! whose node ABI lives in the `remotemedia-plugin` crate and
//! `include/remotemedia_plugin.h`.

pub mod alloc;
pub mod budget;
pub mod capi;
pub mod caps;
mod conformance;
pub mod contract;
mod convert;
pub mod data;
mod error;
pub mod executor;
mod ffi;
pub mod isolation;
pub mod manifest;
pub mod metrics;
pub(crate) mod model;
pub mod nodes;
mod plugin;
pub mod runtime;
mod serial;
mod view;

pub use error::{Error, FailureKind, NodeFailure, Operation, Result};
pub use runtime::Runtime;
