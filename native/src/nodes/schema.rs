//! Params checked against a plugin node type's declared JSON Schema before its
//! `create`: the subset of JSON Schema that built-in nodes use, checked as the Python
//! runtime's `_schema.py` checks it (first shapes: types, enum values, unknown and
//! missing fields; then bounds), so a param error has the same path on a plugin node as
//! on a built-in node with the same schema. A schema with a keyword outside the subset
//! is refused when the plugin loads.
//!
//! Hand-written rather than a validator crate: `boon` (drafts 4 to 2020-12) was tried
//! and measured: it made the stripped library 6.7 MB instead of 3.8 MB (regex and ICU
//! for `pattern` and `format`, which params do not need), and reports several faults in
//! another order than typed parsing does.

use serde_json::{Map, Value};

use super::ParamError;

/// Keywords checked.
const CHECKED: [&str; 12] = [
    "type",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
];
/// Keywords allowed and not checked (annotations).
const ANNOTATIONS: [&str; 6] = ["default", "description", "title", "examples", "$schema", "$comment"];
const TYPES: [&str; 7] = ["object", "integer", "number", "boolean", "string", "array", "null"];

/// A params schema known to use only the supported subset.
#[derive(Debug, Clone)]
pub struct ParamsSchema(Value);

impl ParamsSchema {
    /// Checks that `schema` uses only the supported subset, correctly; the error names
    /// the place (`properties.gain.minimum`) and the problem.
    pub fn compile(schema: &Value) -> Result<Self, String> {
        well_formed(schema, "").map(|()| Self(schema.clone()))
    }

    /// Checks `params`; the error names the first offending param (`gain_db`,
    /// `map[0]`, or empty for the whole object) as typed parsing does.
    pub fn check(&self, params: &Map<String, Value>) -> Result<(), ParamError> {
        let value = Value::Object(params.clone());
        shape(&value, &self.0, "")?;
        bounds(&value, &self.0, "")
    }
}

fn at(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

fn well_formed(schema: &Value, path: &str) -> Result<(), String> {
    let Value::Object(s) = schema else { return Err(format!("{}: a schema must be an object", or_root(path))) };
    for (key, v) in s {
        let here = at(path, key);
        let ok = match key.as_str() {
            "type" => match v {
                Value::String(t) => TYPES.contains(&t.as_str()),
                Value::Array(ts) => !ts.is_empty() && ts.iter().all(|t| t.as_str().is_some_and(|t| TYPES.contains(&t))),
                _ => false,
            },
            "enum" => v.as_array().is_some_and(|a| !a.is_empty()),
            "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => v.is_number(),
            "minItems" | "maxItems" => v.is_u64(),
            "required" => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            "additionalProperties" => v.is_boolean(),
            "properties" => match v {
                Value::Object(props) => {
                    for (name, sub) in props {
                        well_formed(sub, &at(&here, name))?;
                    }
                    true
                }
                _ => false,
            },
            "items" => {
                well_formed(v, &here)?;
                true
            }
            k if ANNOTATIONS.contains(&k) => true,
            other => {
                return Err(format!(
                    "{here}: keyword '{other}' is outside the supported subset ({}; annotations {})",
                    CHECKED.join(", "),
                    ANNOTATIONS.join(", ")
                ));
            }
        };
        if !ok {
            return Err(format!("{here}: not a valid value for '{key}'"));
        }
    }
    Ok(())
}

fn or_root(path: &str) -> &str {
    if path.is_empty() { "the schema" } else { path }
}

/// How serde names a value in its messages.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) if n.is_f64() => format!("floating point `{n}`"),
        Value::Number(n) => format!("integer `{n}`"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "sequence".into(),
        Value::Object(_) => "map".into(),
    }
}

fn has_type(v: &Value, t: &str) -> bool {
    match t {
        "object" => v.is_object(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        _ => v.is_null(),
    }
}

/// The types a schema's `type` names (one or a list); empty when it names none.
pub(crate) fn declared_types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

/// Types, enum values, unknown and missing fields.
fn shape(v: &Value, schema: &Value, path: &str) -> Result<(), ParamError> {
    let kinds = declared_types(schema);
    if !kinds.is_empty() && !kinds.iter().any(|t| has_type(v, t)) {
        return Err(ParamError::new(path, format!("invalid type: {}, expected {}", describe(v), kinds.join(" or "))));
    }
    if let Some(Value::Array(options)) = schema.get("enum") {
        // JSON equality of the same kind (so 1 and 1.0 differ, as in Python)
        if !options.iter().any(|o| o == v && o.is_f64() == v.is_f64()) {
            let names: Vec<String> = options.iter().map(|o| o.as_str().map_or_else(|| o.to_string(), str::to_string)).collect();
            let shown = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            return Err(ParamError::new(path, format!("unknown variant `{shown}`, expected one of {}", names.join(", "))));
        }
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    if let Value::Object(fields) = v {
        for (key, item) in fields {
            match properties.and_then(|p| p.get(key)) {
                Some(sub) => shape(item, sub, &at(path, key))?,
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    let known: Vec<&str> = properties.into_iter().flat_map(|p| p.keys().map(String::as_str)).collect();
                    return Err(ParamError::new(at(path, key), format!("unknown field `{key}`, expected one of {}", known.join(", "))));
                }
                None => {}
            }
        }
        for key in schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            if !fields.contains_key(key) {
                return Err(ParamError::new(path, format!("missing field `{key}`")));
            }
        }
    }
    if let (Value::Array(items), Some(sub)) = (v, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            shape(item, sub, &format!("{path}[{i}]"))?;
        }
    }
    Ok(())
}

/// Numeric ranges and array lengths, of a value whose shape was checked.
fn bounds(v: &Value, schema: &Value, path: &str) -> Result<(), ParamError> {
    let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
    if let Some(x) = v.as_f64() {
        let fail = |m: String| Err(ParamError::new(path, m));
        let n = v.to_string();
        match (bound("minimum"), bound("maximum"), bound("exclusiveMinimum"), bound("exclusiveMaximum")) {
            (Some(lo), ..) if x < lo => return fail(format!("{n} is less than {}", schema["minimum"])),
            (_, Some(hi), ..) if x > hi => return fail(format!("{n} is more than {}", schema["maximum"])),
            (_, _, Some(lo), _) if x <= lo => return fail(format!("{n} must be more than {}", schema["exclusiveMinimum"])),
            (.., Some(hi)) if x >= hi => return fail(format!("{n} must be less than {}", schema["exclusiveMaximum"])),
            _ => {}
        }
    }
    if let Value::Object(fields) = v {
        let properties = schema.get("properties").and_then(Value::as_object);
        for (key, item) in fields {
            if let Some(sub) = properties.and_then(|p| p.get(key)) {
                bounds(item, sub, &at(path, key))?;
            }
        }
    }
    if let Value::Array(items) = v {
        let low = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
        let high = schema.get("maxItems").and_then(Value::as_u64);
        let n = items.len() as u64;
        if n < low || high.is_some_and(|h| n > h) {
            let high = high.map_or_else(|| "any".to_string(), |h| h.to_string());
            return Err(ParamError::new(path, format!("must list {low} to {high} items, got {n}")));
        }
        let any = Value::Object(Map::new());
        for (i, item) in items.iter().enumerate() {
            bounds(item, schema.get("items").unwrap_or(&any), &format!("{path}[{i}]"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn names_the_offending_param_shapes_first() {
        let schema = ParamsSchema::compile(&json!({
            "type": "object", "additionalProperties": false, "required": ["gain"],
            "properties": {"gain": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.5},
                           "map": {"type": "array", "items": {"type": "integer", "minimum": 0}, "maxItems": 2},
                           "mode": {"enum": ["a", "b"]}}
        }))
        .unwrap();
        assert!(schema.check(&params(json!({"gain": 0.5, "map": [1, 2], "mode": "b"}))).is_ok());
        let e = schema.check(&params(json!({"gain": 2}))).unwrap_err();
        assert_eq!((e.param.as_str(), e.message.as_str()), ("gain", "2 is more than 1"));
        assert_eq!(schema.check(&params(json!({"gain": "x"}))).unwrap_err().param, "gain");
        assert_eq!(schema.check(&params(json!({"gain": 0, "map": [1, "x"]}))).unwrap_err().param, "map[1]");
        assert_eq!(schema.check(&params(json!({"gain": 0, "map": [1, -1]}))).unwrap_err().param, "map[1]");
        assert_eq!(schema.check(&params(json!({"gain": 0, "map": [1, 2, 3]}))).unwrap_err().param, "map");
        assert_eq!(schema.check(&params(json!({"gain": 0, "mode": "c"}))).unwrap_err().param, "mode");
        assert_eq!(schema.check(&params(json!({"gain": 0, "gian": 1}))).unwrap_err().param, "gian");
        assert_eq!(schema.check(&params(json!({}))).unwrap_err().param, "");
        // several faults: shapes (an unknown field) before a missing field and bounds
        assert_eq!(schema.check(&params(json!({"gian": 1}))).unwrap_err().param, "gian");
        assert_eq!(schema.check(&params(json!({"gain": 5, "map": ["x"]}))).unwrap_err().param, "map[0]");
        assert_eq!(schema.check(&params(json!({"gain": true}))).unwrap_err().param, "gain", "a boolean is not a number");
    }

    #[test]
    fn refuses_schemas_outside_the_subset() {
        for bad in [json!({"type": 5}), json!({"minimum": "low"}), json!({"properties": {"x": {"pattern": "a+"}}}), json!([])] {
            assert!(ParamsSchema::compile(&bad).is_err(), "{bad}");
        }
        let e = ParamsSchema::compile(&json!({"properties": {"x": {"$ref": "file:///etc/passwd"}}})).unwrap_err();
        assert!(e.starts_with("properties.x.$ref: keyword '$ref' is outside the supported subset"), "{e}");
        assert!(
            ParamsSchema::compile(&json!({"title": "t", "properties": {"g": {"type": ["number", "null"], "description": "d"}}})).is_ok()
        );
    }
}
