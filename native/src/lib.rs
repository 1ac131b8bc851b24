//! remotemedia: an embedded runtime for audio pipelines described by JSON manifests.
//!
//! Layers, bottom up: [`data`] (typed buffers), [`manifest`] (parsing and validation),
//! [`nodes`] (the node interface and registry), [`executor`] (graph and scheduling),
//! [`runtime`] (registry plus tokio), [`plugin`] (node types loaded from shared
//! libraries), and [`capi`] (the stable C ABI in `include/remotemedia.h`, whose node
//! ABI lives in the `remotemedia-plugin` crate and `include/remotemedia_plugin.h`).

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
