//! The Rust/Python contract: the facts both runtimes must share (the release version,
//! status codes, enum
//! names, manifest limits and policy schemas, every built-in node type with its params
//! schema and ports), as one JSON document. It is committed as
//! `py/remotemedia/contract.json`, checked against this source by the test that checks
//! the C headers, and read by the Python package instead of retyping any of it.

use remotemedia_plugin::abi::{RM_PLUGIN_ABI_MAJOR, RM_PLUGIN_ABI_MINOR, RmDataKind, RmLogLevel, RmStatus, SampleFormat};
use serde_json::{Map, Value, json};

use crate::budget;
use crate::executor::{DEFAULT_CAPACITY, MAX_CAPACITY, MAX_TIMEOUT_MS, MAX_WORKERS, Overflow};
use crate::nodes::Registry;

/// The contract as JSON (see the module docs).
pub fn contract() -> Value {
    let status: Map<String, Value> = RmStatus::ALL.iter().map(|&s| (s.name().to_string(), json!(s as i32))).collect();
    let levels = [RmLogLevel::Error, RmLogLevel::Warn, RmLogLevel::Info, RmLogLevel::Debug, RmLogLevel::Trace];
    let nodes: Vec<Value> = Registry::builtin()
        .specs()
        .map(|s| {
            let native_only = crate::nodes::NATIVE_ONLY.contains(&s.node_type.as_str());
            json!({"node_type": s.node_type, "description": s.description, "outputs": s.outputs, "params": s.params_schema, "caps": s.caps, "native_only": native_only})
        })
        .collect();
    json!({
        "generated_by": "REMOTEMEDIA_BLESS=1 cargo test -p remotemedia --test header (from native/src/contract.rs); do not edit",
        "version": env!("CARGO_PKG_VERSION"),
        "plugin_abi": [RM_PLUGIN_ABI_MAJOR, RM_PLUGIN_ABI_MINOR],
        "status": status,
        "sample_formats": SampleFormat::ALL.iter().map(|&f| (f.name().to_string(), json!(f as u32))).collect::<Map<_, _>>(),
        "data_kinds": {"audio": RmDataKind::Audio as u32, "json": RmDataKind::Json as u32},
        "log_levels": levels.iter().map(|&l| (format!("{l:?}").to_lowercase(), json!(l as u32))).collect::<Map<_, _>>(),
        "overflow": [Overflow::Block, Overflow::DropOldest],
        "session": {"default_capacity": DEFAULT_CAPACITY, "max_capacity": MAX_CAPACITY, "max_timeout_ms": MAX_TIMEOUT_MS, "max_workers": MAX_WORKERS},
        "max_sample_rate": u32::MAX,
        "max_channels": crate::budget::MAX_CHANNELS,
        "suggest_max_chars": crate::error::SUGGEST_MAX_CHARS,
        "clock_pushes": crate::metrics::CLOCK_PUSHES,
        "budget": {
            "max_buffer_samples": budget::MAX_BUFFER_SAMPLES,
            "max_items_per_step": budget::MAX_ITEMS_PER_STEP,
            "max_paths": budget::MAX_PATHS,
            "max_hung_calls": budget::MAX_HUNG_CALLS,
            "max_node_processes": budget::MAX_NODE_PROCESSES,
        },
        "manifest": crate::manifest::rules(),
        "model": {
            "ops": crate::model::OPS,
            "max_model_bytes": crate::model::MAX_MODEL_BYTES,
            "max_inference_threads": crate::model::budget::MAX_THREADS,
            "inference_threads_env": crate::model::budget::ENV,
            "onnxruntime_env": crate::model::onnxruntime::ENV,
            "onnxruntime_min_version": crate::model::onnxruntime::MIN_VERSION
        },
        "nodes": nodes,
    })
}
