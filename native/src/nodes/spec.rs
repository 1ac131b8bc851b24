//! What the runtime knows about a node type: its spec, who implements it, and where
//! it came from.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::error::Error;

use super::{Node, ParamError};

/// Who a plugin says it is: the provenance of its node types.
#[derive(Debug)]
pub struct PluginMeta {
    pub name: String,
    pub version: String,
    pub license: String,
    pub description: String,
    /// The library's canonical path.
    pub file: PathBuf,
    /// The plugin ABI version it was built against.
    pub abi: (u32, u32),
}

/// Which side implements a node type.
#[derive(Debug, Clone)]
pub enum Implementation {
    /// Compiled into this library.
    Native,
    /// Supplied by the embedding host at run time (Python nodes through the C ABI).
    Host,
    /// Loaded from a plugin library; runs natively like a built-in node.
    Plugin(Arc<PluginMeta>),
}

impl Implementation {
    /// `"native"` or `"python"`: the vocabulary of `runtime_hint` (plugins are native).
    pub fn as_str(&self) -> &'static str {
        match self {
            Implementation::Native | Implementation::Plugin(_) => "native",
            Implementation::Host => "python",
        }
    }

    /// The plugin providing the node type, if any.
    pub fn plugin(&self) -> Option<&Arc<PluginMeta>> {
        match self {
            Implementation::Plugin(p) => Some(p),
            _ => None,
        }
    }

    /// The error for a rejected param at `path` (`nodes[i].params.x`): a manifest error,
    /// or for a plugin's node type a plugin error naming its library.
    pub fn create_error(&self, path: &str, message: &str) -> Error {
        match self.plugin() {
            Some(p) => Error::Plugin {
                file: p.file.display().to_string(),
                message: format!("create failed at {path}: {message}"),
                path: Some(path.to_string()),
            },
            None => Error::manifest(path, message),
        }
    }

    /// Who provides the node type, for messages: `plugin 'name' (file)` or `a built-in node type`.
    pub fn owner(&self) -> String {
        match self {
            Implementation::Plugin(p) => format!("plugin '{}' ({})", p.name, p.file.display()),
            Implementation::Native => "a built-in node type".to_string(),
            Implementation::Host => "a host node type".to_string(),
        }
    }
}

/// A node type's algorithmic latency: the most output frames (at its output rate) an
/// input sample may wait inside a node with these params whose input carries these
/// caps; `None` when that is not known (a caps field it needs is unknown, or the type
/// does not say).
pub type LatencyFn = dyn Fn(&Map<String, Value>, &crate::caps::Caps) -> Option<usize> + Send + Sync;

/// The latency of a node type that emits as soon as it receives.
pub fn no_latency() -> Option<Arc<LatencyFn>> {
    Some(Arc::new(|_, _| Some(0)))
}

/// Creates a node instance from its params, or says which param is wrong.
pub type CreateFn = dyn Fn(&Map<String, Value>) -> Result<Box<dyn Node>, ParamError> + Send + Sync;

/// Everything the runtime knows about a node type.
pub struct NodeSpec {
    pub node_type: String,
    pub description: String,
    /// JSON Schema of `params`.
    pub params_schema: Value,
    /// Output port names; the first is the default port.
    pub outputs: Vec<String>,
    pub implementation: Implementation,
    /// The node type asks to run in a process of its own (a plugin's
    /// `RM_NODE_PREFERS_ISOLATION`); the manifest decides.
    pub prefers_isolation: bool,
    /// What its ports carry ([`crate::caps`]); `None`: undeclared (accepts anything,
    /// produces what is not known before data flows).
    pub caps: Option<Value>,
    /// Its algorithmic latency; `None`: not declared (plugins, host nodes).
    pub latency: Option<Arc<LatencyFn>>,
    pub create: Arc<CreateFn>,
}

impl NodeSpec {
    /// The port rules of a node of this type with `params`.
    pub fn ports(&self, params: &Map<String, Value>) -> crate::caps::Ports {
        crate::caps::Ports::of(self.caps.as_ref(), &self.outputs, params, &self.params_schema)
    }

    /// The output port names of a node of this type with `params` (the type's, or
    /// those its `output_ports` param lists).
    pub fn output_ports(&self, params: &Map<String, Value>) -> Vec<String> {
        crate::caps::output_names(self.caps.as_ref(), &self.outputs, params)
    }

    /// A JSON description for listings (`remotemedia nodes`).
    pub fn describe(&self) -> Value {
        let mut d = serde_json::json!({
            "node_type": self.node_type,
            "description": self.description,
            "runtime": self.implementation.as_str(),
            "outputs": self.outputs,
            "params": self.params_schema,
        });
        if let Some(p) = self.implementation.plugin() {
            d["plugin"] = p.name.clone().into();
        }
        if self.prefers_isolation {
            d["prefers_isolation"] = true.into();
        }
        if let Some(caps) = &self.caps {
            d["caps"] = caps.clone();
        }
        d
    }
}
