//! Caps: what a port carries (kind, sample format, channel count, sample rate), the
//! rules a node type declares its ports with, and their evaluation against a node's
//! params.
//!
//! A declaration is JSON, the same in the contract, in a plugin's extension and on a
//! Python node class: `{"input": ACCEPT, "outputs": {PORT: PRODUCE, ...}}`. A node has
//! one input port, `in`, unless it declares more: `"inputs": {PORT: ACCEPT, ...}` names
//! them in order, each with its rules; `"input_ports": {"param": P, "prefix": S}` makes
//! one port per element of param `P` (`S0`, `S1`, ...), each taking `"input"`'s rules.
//! With `"aligned": true` every input port must carry the caps of the node's first
//! inbound edge (a mixer's inputs are added sample by sample). `"output_ports": {"param":
//! P}` names the output ports by param `P` when it is a list of names (each port then
//! produces as the type's first output port does); otherwise they are the type's. ACCEPT
//! and PRODUCE map the fields `kind`, `format`, `channels` and `sample_rate` to rules.
//! A rule is `"any"`; `"input"` (PRODUCE only: the input's value); a value; a list of
//! values (ACCEPT only; the first is preferred); `{"min": a, "max": b}` (ACCEPT only);
//! or `{"param": P, ...}`, read from the node's param `P` (or its schema default):
//! its value, its length with `"len": true`, the rule `"cases"[value]`, or the rule
//! `"set"` whenever it is set; `"default"` is the rule when it is unset or its value
//! has no case. An absent field is `"any"` in ACCEPT and `"input"` (the first input
//! port's value) in PRODUCE; an undeclared node type has the one port `in`, accepts
//! anything and produces what is not known before data flows.

use remotemedia_plugin::abi::SampleFormat;
use serde_json::{Map, Value, json};

use crate::data::Data;

/// The caps fields, in the order [`Caps`] holds them.
pub const FIELDS: [&str; 4] = ["kind", "format", "channels", "sample_rate"];
const KIND: usize = 0;
/// Deepest nesting of `{"param": ...}` rules a declaration may use.
const MAX_RULE_DEPTH: usize = 4;
/// Largest declaration accepted from a plugin or a host, in bytes of JSON.
pub const MAX_DECL_BYTES: usize = 16 << 10;

/// What one port carries; a field is `None` when it is not known before data flows.
/// JSON ports carry only their kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caps(pub [Option<Value>; 4]);

impl Caps {
    /// The caps of a data item.
    pub fn of(data: &Data) -> Self {
        match data {
            Data::Audio(a) => Self::audio(Some(a.samples().format()), Some(a.channels().into()), Some(a.sample_rate())),
            Data::Json(_) => Self([Some(json!("json")), None, None, None]),
        }
    }

    /// Audio caps with the fields that are known.
    pub fn audio(format: Option<SampleFormat>, channels: Option<u32>, rate: Option<u32>) -> Self {
        Self([Some(json!("audio")), format.map(|f| json!(f.name())), channels.map(|c| json!(c)), rate.map(|r| json!(r))])
    }

    /// Format, channels and rate, when this is audio with all three known.
    pub fn sample_caps(&self) -> Option<(SampleFormat, u16, u32)> {
        (self.is_audio() == Some(true)).then_some((self.format()?, self.channels()?, self.rate()?))
    }

    /// The sample rate, when known.
    pub fn rate(&self) -> Option<u32> {
        self.0[3].as_ref()?.as_u64()?.try_into().ok()
    }

    /// The channel count, when known.
    pub fn channels(&self) -> Option<u16> {
        self.0[2].as_ref()?.as_u64()?.try_into().ok()
    }

    /// The sample format, when known.
    pub fn format(&self) -> Option<SampleFormat> {
        let name = self.0[1].as_ref()?.as_str()?;
        SampleFormat::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Whether this port carries audio (`Some(false)` for JSON, `None` when unknown).
    pub fn is_audio(&self) -> Option<bool> {
        self.0[KIND].as_ref().map(|k| k == "audio")
    }

    /// Reads `{"format", "channels", "sample_rate"}` (each optional) as audio caps.
    pub fn from_json(value: &Value) -> Result<Self, (String, String)> {
        let Some(object) = value.as_object() else {
            return Err((String::new(), "expected an object with format, channels and sample_rate".into()));
        };
        let mut caps = Self::audio(None, None, None);
        for (key, v) in object {
            let field = match FIELDS[1..].iter().position(|f| f == key) {
                Some(i) => i + 1,
                None => return Err((key.clone(), format!("unknown field `{key}`, expected one of format, channels, sample_rate"))),
            };
            if !v.is_null() {
                check_value(field, v).map_err(|m| (key.clone(), m))?;
                caps.0[field] = Some(v.clone());
            }
        }
        Ok(caps)
    }

    /// `{"kind", "format", "channels", "sample_rate"}` with `null` for what is unknown
    /// (a JSON port: `{"kind": "json"}`).
    pub fn to_json(&self) -> Value {
        if self.is_audio() == Some(false) {
            return json!({"kind": "json"});
        }
        FIELDS.iter().zip(&self.0).map(|(k, v)| (k.to_string(), v.clone().unwrap_or(Value::Null))).collect::<Map<_, _>>().into()
    }

    /// For messages: `i16, 2 ch, 48000 Hz`, `JSON events`, `?` for an unknown field.
    pub fn describe(&self) -> String {
        match self.is_audio() {
            Some(false) => "JSON events".into(),
            None if self.0.iter().all(Option::is_none) => "unknown caps".into(),
            _ => {
                let show = |v: &Option<Value>| v.as_ref().map_or("?".to_string(), |v| v.as_str().map_or(v.to_string(), str::to_string));
                format!("{}, {} ch, {} Hz", show(&self.0[1]), show(&self.0[2]), show(&self.0[3]))
            }
        }
    }
}

/// A rule after its params are read.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    Any,
    Input,
    One(Value),
    List(Vec<Value>),
    Range(u64, u64),
}

impl Rule {
    /// Whether a port carrying `v` (unknown: `None`) may feed this rule; unknown passes.
    pub fn accepts(&self, v: Option<&Value>) -> bool {
        let Some(v) = v else { return true };
        match self {
            Rule::Any | Rule::Input => true,
            Rule::One(x) => x == v,
            Rule::List(xs) => xs.contains(v),
            Rule::Range(lo, hi) => v.as_u64().is_some_and(|x| (*lo..=*hi).contains(&x)),
        }
    }

    /// The value to convert `v` to: `v` itself when accepted, else the preferred one.
    pub fn prefer(&self, v: &Value) -> Value {
        match self {
            _ if self.accepts(Some(v)) => v.clone(),
            Rule::One(x) => x.clone(),
            Rule::List(xs) => xs[0].clone(),
            Rule::Range(lo, hi) => json!(v.as_u64().unwrap_or(*lo).clamp(*lo, *hi)),
            Rule::Any | Rule::Input => v.clone(),
        }
    }

    /// What an output port with this rule carries when its input carries `input`.
    fn produce(&self, input: Option<&Value>) -> Option<Value> {
        match self {
            Rule::Input => input.cloned(),
            Rule::One(x) => Some(x.clone()),
            Rule::Any | Rule::List(_) | Rule::Range(..) => None,
        }
    }

    /// For messages: `f32`, `8000|16000`, `8000..=192000`, `any`.
    pub fn describe(&self) -> String {
        let show = |v: &Value| v.as_str().map_or(v.to_string(), str::to_string);
        match self {
            Rule::Any | Rule::Input => "any".into(),
            Rule::One(x) => show(x),
            Rule::List(xs) => xs.iter().map(show).collect::<Vec<_>>().join("|"),
            Rule::Range(lo, hi) => format!("{lo}..={hi}"),
        }
    }
}

/// The name of a node's input port when it declares none.
pub const DEFAULT_INPUT: &str = "in";
/// Most input ports a node may have.
pub const MAX_INPUT_PORTS: usize = 64;

/// A node's port rules, read against its params: its input ports and what each
/// accepts, and per output port what it produces.
#[derive(Debug, Clone)]
pub struct Ports {
    /// Input port names, in order; the first is the default port.
    pub inputs: Vec<String>,
    /// What each input port accepts.
    pub accept: Vec<[Rule; 4]>,
    /// Every input port must carry the caps of the node's first inbound edge.
    pub aligned: bool,
    /// Output port names, in order; the first is the default port.
    pub outputs: Vec<String>,
    pub produce: Vec<[Rule; 4]>,
}

/// The output port names of a node with `params`: those param `output_ports.param`
/// lists (when it lists names), else the type's `outputs`.
pub fn output_names(decl: Option<&Value>, outputs: &[String], params: &Map<String, Value>) -> Vec<String> {
    let named = decl.and_then(|d| d.get("output_ports")).and_then(|o| o.get("param")).and_then(Value::as_str);
    match named.and_then(|p| params.get(p)).and_then(Value::as_array) {
        Some(names) if !names.is_empty() && names.iter().all(Value::is_string) => {
            names.iter().filter_map(Value::as_str).map(String::from).collect()
        }
        _ => outputs.to_vec(),
    }
}

impl Ports {
    /// The rules of a node with `params`, from its type's declaration (`None`:
    /// undeclared), output port names and params schema (for param defaults).
    pub fn of(decl: Option<&Value>, outputs: &[String], params: &Map<String, Value>, schema: &Value) -> Self {
        let Some(decl) = decl else {
            return Self {
                inputs: vec![DEFAULT_INPUT.to_string()],
                accept: vec![std::array::from_fn(|_| Rule::Any)],
                aligned: false,
                outputs: outputs.to_vec(),
                produce: vec![std::array::from_fn(|_| Rule::Any); outputs.len()],
            };
        };
        let read = |side: Option<&Value>, absent: &Rule| -> [Rule; 4] {
            std::array::from_fn(|f| resolve(side.and_then(|s| s.get(FIELDS[f])), f, params, schema, absent))
        };
        let (inputs, accept) = match (decl.get("inputs").and_then(Value::as_object), decl.get("input_ports")) {
            (Some(ports), _) => ports.iter().map(|(name, side)| (name.clone(), read(Some(side), &Rule::Any))).unzip(),
            (None, Some(counted)) => {
                let prefix = counted.get("prefix").and_then(Value::as_str).unwrap_or(DEFAULT_INPUT);
                let name = counted.get("param").and_then(Value::as_str).unwrap_or_default();
                let default = schema.get("properties").and_then(|p| p.get(name)).and_then(|p| p.get("default"));
                let n = params.get(name).or(default).and_then(Value::as_array).map_or(0, Vec::len).min(MAX_INPUT_PORTS);
                ((0..n).map(|i| format!("{prefix}{i}")).collect(), vec![read(decl.get("input"), &Rule::Any); n])
            }
            (None, None) => (vec![DEFAULT_INPUT.to_string()], vec![read(decl.get("input"), &Rule::Any)]),
        };
        let names = output_names(Some(decl), outputs, params);
        // dynamic ports produce as the type's first port
        let rules_of = |p: &String| if names.as_slice() == outputs { p.clone() } else { outputs.first().cloned().unwrap_or_default() };
        Self {
            inputs,
            accept,
            aligned: decl.get("aligned") == Some(&Value::Bool(true)),
            produce: names.iter().map(|p| read(decl.get("outputs").and_then(|o| o.get(rules_of(p))), &Rule::Input)).collect(),
            outputs: names,
        }
    }

    /// Index of the input port called `name`.
    pub fn input_index(&self, name: &str) -> Option<usize> {
        self.inputs.iter().position(|p| p == name)
    }

    /// Whether input port `port` accepts `caps` (unknown fields pass).
    pub fn accepts(&self, port: usize, caps: &Caps) -> bool {
        self.accept[port].iter().zip(&caps.0).all(|(rule, v)| rule.accepts(v.as_ref()))
    }

    /// What output `port` carries when the input carries `input`.
    pub fn output(&self, port: usize, input: &Caps) -> Caps {
        let rules = &self.produce[port];
        let mut caps = Caps(std::array::from_fn(|f| rules[f].produce(input.0[f].as_ref())));
        if caps.is_audio() == Some(false) {
            caps.0[1..].iter_mut().for_each(|v| *v = None);
        }
        caps
    }

    /// For messages, what input port `port` takes: `f32, 1 ch, 8000|16000 Hz` (or
    /// `JSON events`, `anything`).
    pub fn describe_accept(&self, port: usize) -> String {
        let accept = &self.accept[port];
        match &accept[KIND] {
            Rule::One(k) if k == "json" => "JSON events".into(),
            _ if accept.iter().all(|r| matches!(r, Rule::Any)) => "anything".into(),
            _ => format!("{}, {} ch, {} Hz", accept[1].describe(), accept[2].describe(), accept[3].describe()),
        }
    }
}

/// Reads `rule` of field `field` against `params` (see the module docs); `absent` when
/// there is none. A param value that is no value of the field reads as `"any"`.
fn resolve(rule: Option<&Value>, field: usize, params: &Map<String, Value>, schema: &Value, absent: &Rule) -> Rule {
    let Some(rule) = rule else { return absent.clone() };
    match rule {
        Value::String(s) if s == "any" => Rule::Any,
        Value::String(s) if s == "input" => Rule::Input,
        Value::Array(xs) => Rule::List(xs.clone()),
        Value::Object(o) if o.contains_key("param") => {
            let name = o["param"].as_str().unwrap_or_default();
            let default = schema.get("properties").and_then(|p| p.get(name)).and_then(|p| p.get("default"));
            let value = params.get(name).filter(|v| !v.is_null()).or(default).filter(|v| !v.is_null());
            let fallback = || resolve(o.get("default"), field, params, schema, &Rule::Any);
            match value {
                None => fallback(),
                Some(v) => {
                    if let Some(cases) = o.get("cases") {
                        let key = v.as_str().map_or(v.to_string(), str::to_string);
                        cases.get(&key).map_or_else(fallback, |r| resolve(Some(r), field, params, schema, &Rule::Any))
                    } else if let Some(set) = o.get("set") {
                        resolve(Some(set), field, params, schema, &Rule::Any)
                    } else {
                        let value =
                            if o.get("len") == Some(&Value::Bool(true)) { json!(v.as_array().map_or(0, Vec::len)) } else { v.clone() };
                        if check_value(field, &value).is_ok() { Rule::One(value) } else { Rule::Any }
                    }
                }
            }
        }
        Value::Object(o) => Rule::Range(o["min"].as_u64().unwrap_or(0), o["max"].as_u64().unwrap_or(u64::MAX)),
        v => Rule::One(v.clone()),
    }
}

/// Checks a declaration from a plugin or a host: the shape the module docs give, its
/// output ports among `outputs`, each value in its field's domain.
pub fn check_decl(decl: &Value, outputs: &[String]) -> Result<(), String> {
    let size = decl.to_string().len();
    if size > MAX_DECL_BYTES {
        return Err(format!("caps declaration is {size} bytes, more than {MAX_DECL_BYTES}"));
    }
    let object = decl.as_object().ok_or("caps: expected an object with input and outputs")?;
    if object.contains_key("inputs") && object.contains_key("input_ports") {
        return Err("caps: give inputs or input_ports, not both".into());
    }
    for (key, side) in object {
        match key.as_str() {
            "input" => check_side(side, true).map_err(|m| format!("caps.input{m}"))?,
            "inputs" => {
                let ports = side.as_object().ok_or("caps.inputs: expected an object keyed by input port")?;
                if ports.is_empty() || ports.len() > MAX_INPUT_PORTS {
                    return Err(format!("caps.inputs: a node has 1 to {MAX_INPUT_PORTS} input ports"));
                }
                for (port, accept) in ports {
                    check_port_name(port).map_err(|m| format!("caps.inputs.{port}: {m}"))?;
                    check_side(accept, true).map_err(|m| format!("caps.inputs.{port}{m}"))?;
                }
            }
            "input_ports" => match side.as_object() {
                Some(o)
                    if o.len() == 2 && o.get("param").is_some_and(Value::is_string) && o.get("prefix").is_some_and(Value::is_string) =>
                {
                    check_port_name(&format!("{}0", o["prefix"].as_str().unwrap_or_default()))
                        .map_err(|m| format!("caps.input_ports.prefix: {m}"))?;
                }
                _ => return Err("caps.input_ports: expected {\"param\": P, \"prefix\": S}".into()),
            },
            "output_ports" => match side.as_object() {
                Some(o) if o.len() == 1 && o.get("param").is_some_and(Value::is_string) => {}
                _ => return Err("caps.output_ports: expected {\"param\": P}".into()),
            },
            "aligned" if side.is_boolean() => {}
            "aligned" => return Err("caps.aligned: expected true or false".into()),
            "outputs" => {
                let ports = side.as_object().ok_or("caps.outputs: expected an object keyed by output port")?;
                for (port, produce) in ports {
                    if !outputs.contains(port) {
                        return Err(format!("caps.outputs.{port}: no output port '{port}'; ports: {}", outputs.join(", ")));
                    }
                    check_side(produce, false).map_err(|m| format!("caps.outputs.{port}{m}"))?;
                }
            }
            other => {
                return Err(format!("caps.{other}: unknown field, expected input, inputs, input_ports, aligned, outputs or output_ports"));
            }
        }
    }
    Ok(())
}

/// A port name: non-empty, without a `.` (which separates node and port in a manifest).
pub fn check_port_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains('.') {
        return Err(format!("port name '{name}' must be non-empty and hold no '.'"));
    }
    Ok(())
}

fn check_side(side: &Value, accept: bool) -> Result<(), String> {
    let object = side.as_object().ok_or(": expected an object of kind, format, channels, sample_rate")?;
    for (key, rule) in object {
        let field =
            FIELDS.iter().position(|f| f == key).ok_or_else(|| format!(".{key}: unknown field, expected one of {}", FIELDS.join(", ")))?;
        check_rule(rule, field, accept, 0).map_err(|m| format!(".{key}: {m}"))?;
    }
    Ok(())
}

fn check_rule(rule: &Value, field: usize, accept: bool, depth: usize) -> Result<(), String> {
    if depth > MAX_RULE_DEPTH {
        return Err(format!("param rules nest deeper than {MAX_RULE_DEPTH}"));
    }
    match rule {
        Value::String(s) if s == "any" => Ok(()),
        Value::String(s) if s == "input" => {
            if accept {
                Err("\"input\" is for outputs".into())
            } else {
                Ok(())
            }
        }
        Value::Array(xs) if accept => {
            if xs.is_empty() {
                return Err("an empty list accepts nothing".into());
            }
            xs.iter().try_for_each(|x| check_value(field, x))
        }
        Value::Object(o) if o.contains_key("param") => {
            if !o["param"].is_string() {
                return Err("param: expected a param name".into());
            }
            for (key, sub) in o {
                match key.as_str() {
                    "param" => {}
                    "len" if sub.is_boolean() => {}
                    "set" | "default" => check_rule(sub, field, accept, depth + 1)?,
                    "cases" => {
                        let cases = sub.as_object().ok_or("cases: expected an object")?;
                        cases.values().try_for_each(|r| check_rule(r, field, accept, depth + 1))?;
                    }
                    other => return Err(format!("unknown key '{other}' in a param rule")),
                }
            }
            Ok(())
        }
        Value::Object(o) if accept && field >= 2 => {
            match (o.get("min").and_then(Value::as_u64), o.get("max").and_then(Value::as_u64), o.len()) {
                (Some(lo), Some(hi), 2) if lo <= hi => Ok(()),
                _ => Err("a range is {\"min\": a, \"max\": b} with whole numbers a <= b".into()),
            }
        }
        v => check_value(field, v),
    }
}

/// Whether `v` is a value of field `field`.
fn check_value(field: usize, v: &Value) -> Result<(), String> {
    let ok = match FIELDS[field] {
        "kind" => v == "audio" || v == "json",
        "format" => v.as_str().is_some_and(|s| SampleFormat::ALL.iter().any(|f| f.name() == s)),
        "channels" => v.as_u64().is_some_and(|c| (1..=u64::from(u16::MAX)).contains(&c)),
        _ => v.as_u64().is_some_and(|r| (1..=u64::from(u32::MAX)).contains(&r)),
    };
    if ok {
        return Ok(());
    }
    let domain = match FIELDS[field] {
        "kind" => "\"audio\" or \"json\"".to_string(),
        "format" => SampleFormat::ALL.iter().map(|f| format!("\"{}\"", f.name())).collect::<Vec<_>>().join(", "),
        "channels" => format!("a whole number from 1 to {}", u16::MAX),
        _ => format!("a whole number of Hz from 1 to {}", u32::MAX),
    };
    Err(format!("{v} is not a valid {}; expected {domain}", FIELDS[field]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(decl: Value, params: Value) -> Ports {
        let schema = json!({"properties": {"engine": {"default": "spectral"}}});
        Ports::of(Some(&decl), &["out".to_string()], params.as_object().unwrap(), &schema)
    }

    #[test]
    fn param_rules_read_values_lengths_cases_and_defaults() {
        let decl = json!({
            "input": {"format": {"param": "map", "set": "any", "default": ["f32", "f64"]},
                      "sample_rate": {"param": "engine", "cases": {"silero": [16000]}, "default": [16000, 8000]}},
            "outputs": {"out": {"channels": {"param": "map", "len": true, "default": 1}, "sample_rate": {"param": "rate"}}}
        });
        let plain = ports(decl.clone(), json!({"rate": 8000}));
        assert_eq!(plain.accept[0][1], Rule::List(vec![json!("f32"), json!("f64")]));
        assert_eq!(plain.accept[0][3], Rule::List(vec![json!(16000), json!(8000)]));
        let input = Caps::audio(Some(SampleFormat::I16), Some(2), Some(48000));
        assert_eq!(plain.output(0, &input), Caps::audio(Some(SampleFormat::I16), Some(1), Some(8000)));
        let mapped = ports(decl, json!({"map": [0, 0, 1], "engine": "silero"}));
        assert_eq!(mapped.accept[0][1], Rule::Any);
        assert_eq!(mapped.accept[0][3], Rule::List(vec![json!(16000)]));
        assert_eq!(mapped.output(0, &input).0[2], Some(json!(3)));
        assert_eq!(mapped.output(0, &input).0[3], None, "an unset param with no default rule is unknown");
    }

    #[test]
    fn accept_and_prefer() {
        let range = Rule::Range(8000, 192000);
        assert!(range.accepts(Some(&json!(44100))) && !range.accepts(Some(&json!(4000))) && range.accepts(None));
        assert_eq!(range.prefer(&json!(4000)), json!(8000));
        assert_eq!(Rule::List(vec![json!(16000), json!(8000)]).prefer(&json!(44100)), json!(16000));
        assert_eq!(Rule::List(vec![json!(16000), json!(8000)]).prefer(&json!(8000)), json!(8000));
    }

    #[test]
    fn undeclared_accepts_anything_and_produces_unknown() {
        let p = Ports::of(None, &["out".into()], &Map::new(), &json!({}));
        let input = Caps::audio(Some(SampleFormat::F32), Some(1), Some(16000));
        assert!(p.accepts(0, &input));
        assert_eq!(p.inputs, ["in"]);
        assert_eq!(p.output(0, &input), Caps::default());
    }

    #[test]
    fn declarations_are_checked() {
        let outs = ["out".to_string()];
        assert!(check_decl(&json!({"input": {"format": ["f32"]}, "outputs": {"out": {"sample_rate": {"param": "r"}}}}), &outs).is_ok());
        for (bad, says) in [
            (json!({"input": {"format": ["mp3"]}}), "caps.input.format"),
            (json!({"input": {"rate": 1}}), "unknown field"),
            (json!({"outputs": {"nope": {}}}), "no output port 'nope'"),
            (json!({"input": {"channels": "input"}}), "for outputs"),
            (json!({"outputs": {"out": {"channels": [1, 2]}}}), "not a valid channels"),
            (json!({"input": {"channels": []}}), "empty list"),
            (json!({"input": {"sample_rate": {"min": 9, "max": 1}}}), "a range"),
            (
                json!({"input": {"kind": {"param": "p", "cases": {"a": {"param": "p", "set": {"param": "p", "set": {"param": "p", "set": {"param": "p", "set": {"param": "p"}}}}}}}}}),
                "deeper",
            ),
        ] {
            let err = check_decl(&bad, &outs).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn caps_read_from_json_are_checked() {
        let caps = Caps::from_json(&json!({"format": "i16", "channels": 2, "sample_rate": 48000})).unwrap();
        assert_eq!(caps.describe(), "i16, 2 ch, 48000 Hz");
        assert_eq!(Caps::from_json(&json!({"channels": 2})).unwrap().describe(), "?, 2 ch, ? Hz");
        assert_eq!(Caps::from_json(&json!({"format": "u8"})).unwrap_err().0, "format");
        assert_eq!(Caps::from_json(&json!({"sample_rate": 0})).unwrap_err().0, "sample_rate");
        assert_eq!(Caps::from_json(&json!({"bits": 8})).unwrap_err().0, "bits");
    }
}
