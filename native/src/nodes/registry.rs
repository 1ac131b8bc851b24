//! Node types by name: built-in native ones and those the host registers.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::manifest::RuntimeHint;
use crate::plugin::Plugin;

use super::{Implementation, NodeSpec, audio, basic, fault};

/// Node types by `node_type`, one table per implementation.
#[derive(Clone, Default)]
pub struct Registry {
    native: BTreeMap<String, Arc<NodeSpec>>,
    host: BTreeMap<String, Arc<NodeSpec>>,
}

impl Registry {
    /// A registry holding every built-in native node type.
    pub fn builtin() -> Self {
        let mut r = Self::default();
        for spec in basic::specs().into_iter().chain(audio::specs()).chain([fault::spec()]) {
            r.insert(spec);
        }
        r
    }

    /// Adds or replaces a node type in the table of its implementation.
    pub fn insert(&mut self, spec: NodeSpec) {
        let table = match spec.implementation {
            Implementation::Native | Implementation::Plugin(_) => &mut self.native,
            Implementation::Host => &mut self.host,
        };
        table.insert(spec.node_type.clone(), Arc::new(spec));
    }

    /// Adds every node type of `plugin`, or none of them when one of their names is
    /// taken by a built-in or another plugin's node type (the error names both).
    pub fn add_plugin(&mut self, plugin: &Plugin) -> Result<(), String> {
        for spec in plugin.specs() {
            if let Some(taken) = self.native.get(&spec.node_type) {
                let owner = match taken.implementation.plugin() {
                    Some(p) => format!("plugin '{}' ({})", p.name, p.file.display()),
                    None => "a built-in node type".to_string(),
                };
                return Err(format!("node type '{}' of plugin '{}' clashes with {owner}", spec.node_type, plugin.meta.name));
            }
        }
        for spec in plugin.specs() {
            self.native.insert(spec.node_type.clone(), spec.clone());
        }
        Ok(())
    }

    /// The implementation of `node_type` chosen by `hint`, or why there is none.
    pub fn resolve(&self, node_type: &str, hint: RuntimeHint) -> Result<Arc<NodeSpec>, String> {
        let native = self.native.get(node_type);
        let host = self.host.get(node_type);
        let found = match hint {
            RuntimeHint::Native => native,
            RuntimeHint::Python => host,
            RuntimeHint::Auto => native.or(host),
        };
        found.cloned().ok_or_else(|| match (hint, native, host) {
            (RuntimeHint::Native, None, Some(_)) => {
                format!("node type '{node_type}' has no native implementation (runtime_hint is 'native')")
            }
            (RuntimeHint::Python, Some(_), None) => {
                format!("node type '{node_type}' has no python implementation registered (runtime_hint is 'python')")
            }
            _ => format!("unknown node type '{node_type}'"),
        })
    }

    /// Every node type, native first, each table sorted by name.
    pub fn specs(&self) -> impl Iterator<Item = &Arc<NodeSpec>> {
        self.native.values().chain(self.host.values())
    }
}
