//! Typed params: every node parses its `params` object into a struct.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// A param that a node rejects; `param` is its path inside `params`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    pub param: String,
    pub message: String,
}

impl ParamError {
    /// An error about `param`.
    pub fn new(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self { param: param.into(), message: message.into() }
    }
}

/// Parses `params` into `T` (which should deny unknown fields), naming the bad param.
pub fn parse_params<T: DeserializeOwned>(params: &Map<String, Value>) -> Result<T, ParamError> {
    let value = Value::Object(params.clone());
    serde_path_to_error::deserialize(value).map_err(|e| {
        let param = match e.path().to_string() {
            root if root == "." || root == "?" => String::new(),
            path => path,
        };
        ParamError { param, message: e.into_inner().to_string() }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct P {
        #[serde(default)]
        gain_db: f64,
    }

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn names_wrong_type_and_unknown_param() {
        let e = parse_params::<P>(&map(serde_json::json!({"gain_db": "loud"}))).unwrap_err();
        assert_eq!(e.param, "gain_db");
        let e = parse_params::<P>(&map(serde_json::json!({"gian_db": 1}))).unwrap_err();
        assert_eq!(e.param, "gian_db");
        assert!(e.message.contains("unknown field"));
        assert!(parse_params::<P>(&Map::new()).is_ok());
    }
}
