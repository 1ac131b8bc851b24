//! Node types by name: built-in native ones and those the host registers.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::manifest::RuntimeHint;

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

    /// Adds every spec of `group` (the node types of one plugin, which `owner` names in
    /// messages), or none of them when one of their names is taken by a built-in or
    /// another plugin's node type (the error names both).
    pub fn add_group(&mut self, group: &[Arc<NodeSpec>], owner: &str) -> Result<(), String> {
        if let Some((spec, taken)) = group.iter().find_map(|s| self.native.get(&s.node_type).map(|t| (s, t))) {
            return Err(format!("node type '{}' of {owner} clashes with {}", spec.node_type, taken.implementation.owner()));
        }
        for spec in group {
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
            _ => {
                let known = self.native.keys().chain(self.host.keys()).map(String::as_str);
                format!("unknown node type '{node_type}'{}", crate::error::did_you_mean(node_type, known))
            }
        })
    }

    /// Every node type, native first, each table sorted by name.
    pub fn specs(&self) -> impl Iterator<Item = &Arc<NodeSpec>> {
        self.native.values().chain(self.host.values())
    }
}
