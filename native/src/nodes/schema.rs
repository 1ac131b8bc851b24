//! Params checked against a node type's declared JSON Schema (with `boon`, which
//! implements drafts 4 to 2020-12), for plugin node types, whose params reach foreign
//! code. Built-in nodes parse their params into typed structs whose bounds are the
//! constants their schemas are generated from; Python nodes are checked by the Python
//! side's `_schema` in their `create`, the same on both runtimes.

use serde_json::{Map, Value};

use crate::error::catch;

use super::ParamError;

/// A compiled params schema.
pub struct ParamsSchema {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

/// Refuses every `$ref` to a document outside the schema itself (no file or network
/// access while compiling a plugin's schema).
struct NoLoader;

impl boon::UrlLoader for NoLoader {
    fn load(&self, url: &str) -> Result<Value, Box<dyn std::error::Error>> {
        Err(format!("params schemas may not refer to other documents ({url})").into())
    }
}

const LOCATION: &str = "urn:remotemedia:params";

impl ParamsSchema {
    /// Compiles `schema` (draft 2020-12 unless it names another in `$schema`), or says
    /// why it is not a usable schema.
    pub fn compile(schema: &Value) -> Result<Self, String> {
        catch(|| {
            let mut compiler = boon::Compiler::new();
            compiler.set_default_draft(boon::Draft::V2020_12);
            compiler.use_loader(Box::new(NoLoader));
            compiler.add_resource(LOCATION, schema.clone()).map_err(|e| format!("{e:#}"))?;
            let mut schemas = boon::Schemas::new();
            let index = compiler.compile(LOCATION, &mut schemas).map_err(|e| format!("{e:#}"))?;
            Ok(Self { schemas, index })
        })
        .unwrap_or_else(|_| Err("the schema could not be compiled".to_string()))
    }

    /// Checks `params`; the error names the first offending param (`gain_db`,
    /// `map[0]`, or empty for the whole object), as typed parsing does.
    pub fn check(&self, params: &Map<String, Value>) -> Result<(), ParamError> {
        let value = Value::Object(params.clone());
        let Err(e) = self.schemas.validate(&value, self.index) else { return Ok(()) };
        let mut leaves = Vec::new();
        collect_leaves(&e, &mut leaves);
        // the first fault in the order typed parsing finds them: shapes, then missing
        // fields, then bounds
        let leaf = leaves.iter().min_by_key(|l| phase(&l.kind)).copied().unwrap_or(&e);
        let mut path = String::new();
        for token in &leaf.instance_location.tokens {
            match token {
                boon::InstanceToken::Prop(p) if path.is_empty() => path.push_str(p),
                boon::InstanceToken::Prop(p) => {
                    path.push('.');
                    path.push_str(p);
                }
                boon::InstanceToken::Item(i) => path.push_str(&format!("[{i}]")),
            }
        }
        if let boon::ErrorKind::AdditionalProperties { got } = &leaf.kind {
            if let Some(key) = got.first() {
                path = if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
            }
        }
        Err(ParamError::new(path, format!("{} (the node type's params schema)", leaf.kind)))
    }
}

fn collect_leaves<'a, 's, 'v>(e: &'a boon::ValidationError<'s, 'v>, out: &mut Vec<&'a boon::ValidationError<'s, 'v>>) {
    if e.causes.is_empty() {
        out.push(e);
    }
    for cause in &e.causes {
        collect_leaves(cause, out);
    }
}

fn phase(kind: &boon::ErrorKind<'_, '_>) -> u8 {
    match kind {
        boon::ErrorKind::Type { .. }
        | boon::ErrorKind::Enum { .. }
        | boon::ErrorKind::Const { .. }
        | boon::ErrorKind::AdditionalProperties { .. }
        | boon::ErrorKind::FalseSchema => 0,
        boon::ErrorKind::Required { .. } => 1,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn names_the_offending_param() {
        let schema = ParamsSchema::compile(&json!({
            "type": "object", "additionalProperties": false, "required": ["gain"],
            "properties": {"gain": {"type": "number", "minimum": 0, "maximum": 1},
                           "map": {"type": "array", "items": {"type": "integer"}}}
        }))
        .unwrap();
        assert!(schema.check(&params(json!({"gain": 0.5, "map": [1, 2]}))).is_ok());
        let e = schema.check(&params(json!({"gain": 2}))).unwrap_err();
        assert_eq!(e.param, "gain");
        assert!(e.message.contains("must be <=1, but got 2"), "{}", e.message);
        assert_eq!(schema.check(&params(json!({"gain": "x"}))).unwrap_err().param, "gain");
        assert_eq!(schema.check(&params(json!({"gain": 0, "map": [1, "x"]}))).unwrap_err().param, "map[1]");
        assert_eq!(schema.check(&params(json!({"gain": 0, "gian": 1}))).unwrap_err().param, "gian");
        assert_eq!(schema.check(&params(json!({}))).unwrap_err().param, "");
        // several faults: the shape one first, as typed parsing reports it
        assert_eq!(schema.check(&params(json!({"gian": 1}))).unwrap_err().param, "gian");
        assert_eq!(schema.check(&params(json!({"gain": 5, "map": ["x"]}))).unwrap_err().param, "map[0]");
    }

    #[test]
    fn refuses_bad_schemas_and_outside_references() {
        assert!(ParamsSchema::compile(&json!({"type": 5})).is_err());
        assert!(ParamsSchema::compile(&json!({"minimum": "low"})).is_err());
        let e = ParamsSchema::compile(&json!({"$ref": "file:///etc/passwd"})).err().unwrap();
        assert!(e.contains("may not refer"), "{e}");
        assert!(ParamsSchema::compile(&json!({"$defs": {"g": {"type": "number"}}, "properties": {"g": {"$ref": "#/$defs/g"}}})).is_ok());
    }
}
