//! Reading an ONNX file: its initializers (float and int64 tensors), its nodes with
//! their attributes, and the names and shapes of its inputs and outputs.
//!
//! ONNX files are protobuf `ModelProto` messages. Only the fields the model engine
//! needs are read (graph → initializers, nodes, input and output names); every other
//! field is skipped by its wire type. A length that runs past its message, a wire type
//! protobuf does not define, or weights stored outside the file are errors, so a file
//! that is not ONNX fails here and not in a forward pass.

use std::collections::HashMap;

/// Tensors and nodes of one ONNX graph.
#[derive(Debug, Default)]
pub struct OnnxGraph {
    /// Float initializers by name: shape and row-major values.
    pub tensors: HashMap<String, Tensor>,
    /// Int64 initializers by name (shapes, axes).
    pub ints: HashMap<String, IntTensor>,
    /// Int8, uint8 and int32 initializers by name (quantized weights, zero points).
    pub quantized: HashMap<String, QuantTensor>,
    pub nodes: Vec<OnnxNode>,
    pub inputs: Vec<ValueInfo>,
    pub outputs: Vec<ValueInfo>,
}

#[derive(Debug, Clone)]
pub struct Tensor {
    pub dims: Vec<usize>,
    pub values: Vec<f32>,
}

/// An int64 tensor's values (the engine reads shapes and axes from them).
#[derive(Debug, Clone)]
pub struct IntTensor {
    pub values: Vec<i64>,
}

/// An int8, uint8 or int32 tensor, its values widened to i32.
#[derive(Debug, Clone)]
pub struct QuantTensor {
    pub dims: Vec<usize>,
    pub elem: QuantElem,
    pub values: Vec<i32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantElem {
    U8,
    I8,
    I32,
}

/// A graph input or output: its name and its dimensions (`None`: symbolic or unknown).
#[derive(Debug, Default, Clone)]
pub struct ValueInfo {
    pub name: String,
    pub dims: Vec<Option<i64>>,
}

/// One operator: its type, the names of its inputs and outputs, and its attributes.
#[derive(Debug, Default)]
pub struct OnnxNode {
    pub op_type: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub attributes: HashMap<String, Attribute>,
}

/// An attribute value of the kinds the engine reads.
#[derive(Debug, Clone)]
pub enum Attribute {
    Float(f32),
    Int(i64),
    Ints(Vec<i64>),
    Floats(Vec<f32>),
    Bytes(Vec<u8>),
    Tensor(Tensor),
    IntTensor(IntTensor),
    Other,
}

/// ModelProto.graph, GraphProto.{node, initializer, input, output}.
const MODEL_GRAPH: u64 = 7;
const GRAPH_NODE: u64 = 1;
const GRAPH_INITIALIZER: u64 = 5;
const GRAPH_INPUT: u64 = 11;
const GRAPH_OUTPUT: u64 = 12;
/// NodeProto.{input, output, op_type, attribute}; ValueInfoProto.{name, type};
/// TypeProto.tensor_type; TypeProto.Tensor.shape; TensorShapeProto.dim;
/// Dimension.dim_value.
const NODE_INPUT: u64 = 1;
const NODE_OUTPUT: u64 = 2;
const NODE_OP_TYPE: u64 = 4;
const NODE_ATTRIBUTE: u64 = 5;
const VALUE_NAME: u64 = 1;
const VALUE_TYPE: u64 = 2;
const TYPE_TENSOR: u64 = 1;
const TENSOR_TYPE_SHAPE: u64 = 2;
const SHAPE_DIM: u64 = 1;
const DIM_VALUE: u64 = 1;
/// AttributeProto.{name, f, i, s, t, floats, ints}.
const ATTR_NAME: u64 = 1;
const ATTR_F: u64 = 2;
const ATTR_I: u64 = 3;
const ATTR_S: u64 = 4;
const ATTR_T: u64 = 5;
const ATTR_FLOATS: u64 = 7;
const ATTR_INTS: u64 = 8;
/// TensorProto.{dims, data_type, float_data, name, raw_data, data_location}.
const TENSOR_DIMS: u64 = 1;
const TENSOR_DATA_TYPE: u64 = 2;
const TENSOR_FLOAT_DATA: u64 = 4;
const TENSOR_INT32_DATA: u64 = 5;
const TENSOR_INT64_DATA: u64 = 7;
const TENSOR_NAME: u64 = 8;
const TENSOR_RAW_DATA: u64 = 9;
const TENSOR_DATA_LOCATION: u64 = 14;
/// TensorProto.DataType.{FLOAT, UINT8, INT8, INT32, INT64}; TensorProto.DataLocation.EXTERNAL.
const FLOAT: u64 = 1;
const UINT8: u64 = 2;
const INT8: u64 = 3;
const INT32: u64 = 6;
const INT64: u64 = 7;
const EXTERNAL: u64 = 1;

/// Parses the bytes of an ONNX file.
pub fn parse(bytes: &[u8]) -> Result<OnnxGraph, String> {
    let mut graph = None;
    for field in Fields::new(bytes) {
        let (number, value) = field?;
        if number == MODEL_GRAPH {
            graph = Some(parse_graph(value.bytes()?)?);
        }
    }
    graph.ok_or_else(|| "it holds no graph".to_string())
}

fn parse_graph(bytes: &[u8]) -> Result<OnnxGraph, String> {
    let mut graph = OnnxGraph::default();
    for field in Fields::new(bytes) {
        let (number, value) = field?;
        match number {
            GRAPH_NODE => graph.nodes.push(parse_node(value.bytes()?)?),
            GRAPH_INITIALIZER => match parse_tensor(value.bytes()?)? {
                Some((name, Parsed::Float(t))) => drop(graph.tensors.insert(name, t)),
                Some((name, Parsed::Int(t))) => drop(graph.ints.insert(name, t)),
                Some((name, Parsed::Quant(t))) => drop(graph.quantized.insert(name, t)),
                None => {}
            },
            GRAPH_INPUT | GRAPH_OUTPUT => {
                let info = parse_value_info(value.bytes()?)?;
                if number == GRAPH_INPUT { &mut graph.inputs } else { &mut graph.outputs }.push(info);
            }
            _ => {}
        }
    }
    Ok(graph)
}

fn parse_value_info(bytes: &[u8]) -> Result<ValueInfo, String> {
    let mut info = ValueInfo::default();
    for field in Fields::new(bytes) {
        let (number, value) = field?;
        match number {
            VALUE_NAME => info.name = value.string()?,
            VALUE_TYPE => {
                let tensor_type = message_field(value.bytes()?, TYPE_TENSOR)?;
                let shape = match tensor_type {
                    Some(t) => message_field(t, TENSOR_TYPE_SHAPE)?,
                    None => None,
                };
                for dim in Fields::new(shape.unwrap_or(&[])) {
                    let (n, d) = dim?;
                    if n == SHAPE_DIM {
                        let mut size = None;
                        for f in Fields::new(d.bytes()?) {
                            if let (DIM_VALUE, Value::Varint(v)) = f? {
                                size = Some(v as i64);
                            }
                        }
                        info.dims.push(size);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(info)
}

/// The bytes of the last field `number` of a message, if any.
fn message_field(bytes: &[u8], number: u64) -> Result<Option<&[u8]>, String> {
    let mut found = None;
    for field in Fields::new(bytes) {
        let (n, v) = field?;
        if n == number {
            found = Some(v.bytes()?);
        }
    }
    Ok(found)
}

fn parse_node(bytes: &[u8]) -> Result<OnnxNode, String> {
    let mut node = OnnxNode::default();
    for field in Fields::new(bytes) {
        let (number, value) = field?;
        match number {
            NODE_INPUT => node.inputs.push(value.string()?),
            NODE_OUTPUT => node.outputs.push(value.string()?),
            NODE_OP_TYPE => node.op_type = value.string()?,
            NODE_ATTRIBUTE => {
                let (name, attribute) = parse_attribute(value.bytes()?)?;
                node.attributes.insert(name, attribute);
            }
            _ => {}
        }
    }
    Ok(node)
}

fn parse_attribute(bytes: &[u8]) -> Result<(String, Attribute), String> {
    let (mut name, mut attribute) = (String::new(), Attribute::Other);
    let (mut ints, mut floats) = (Vec::new(), Vec::new());
    for field in Fields::new(bytes) {
        let (number, value) = field?;
        match (number, value) {
            (ATTR_NAME, v) => name = v.string()?,
            (ATTR_F, Value::Fixed32(bits)) => attribute = Attribute::Float(f32::from_bits(bits)),
            (ATTR_I, Value::Varint(i)) => attribute = Attribute::Int(i as i64),
            (ATTR_S, Value::Bytes(b)) => attribute = Attribute::Bytes(b.to_vec()),
            (ATTR_T, Value::Bytes(b)) => {
                attribute = match parse_tensor(b)? {
                    Some((_, Parsed::Float(t))) => Attribute::Tensor(t),
                    Some((_, Parsed::Int(t))) => Attribute::IntTensor(t),
                    Some((_, Parsed::Quant(_))) | None => Attribute::Other,
                }
            }
            (ATTR_INTS, Value::Varint(i)) => ints.push(i as i64),
            (ATTR_INTS, Value::Bytes(packed)) => ints.extend(varints(packed)?.into_iter().map(|i| i as i64)),
            (ATTR_FLOATS, Value::Fixed32(bits)) => floats.push(f32::from_bits(bits)),
            (ATTR_FLOATS, Value::Bytes(packed)) => floats.extend(le_floats(packed)?),
            _ => {}
        }
    }
    if !ints.is_empty() {
        attribute = Attribute::Ints(ints);
    } else if !floats.is_empty() {
        attribute = Attribute::Floats(floats);
    }
    Ok((name, attribute))
}

/// A parsed initializer of a supported element type.
enum Parsed {
    Float(Tensor),
    Int(IntTensor),
    Quant(QuantTensor),
}

/// A float, int64, int32, int8 or uint8 initializer as (name, tensor); `None` for other
/// element types.
fn parse_tensor(bytes: &[u8]) -> Result<Option<(String, Parsed)>, String> {
    let (mut name, mut dims, mut data_type) = (String::new(), Vec::new(), 0);
    let (mut raw, mut floats, mut ints, mut int32s) = (None, Vec::new(), Vec::new(), Vec::new());
    for field in Fields::new(bytes) {
        let (number, value) = field?;
        match (number, value) {
            (TENSOR_DIMS, Value::Varint(d)) => dims.push(d),
            (TENSOR_DIMS, Value::Bytes(packed)) => dims.extend(varints(packed)?),
            (TENSOR_DATA_TYPE, Value::Varint(t)) => data_type = t,
            (TENSOR_FLOAT_DATA, Value::Fixed32(bits)) => floats.push(f32::from_bits(bits)),
            (TENSOR_FLOAT_DATA, Value::Bytes(packed)) => floats.extend(le_floats(packed)?),
            (TENSOR_INT32_DATA, Value::Varint(i)) => int32s.push(i as i32),
            (TENSOR_INT32_DATA, Value::Bytes(packed)) => int32s.extend(varints(packed)?.into_iter().map(|i| i as i32)),
            (TENSOR_INT64_DATA, Value::Varint(i)) => ints.push(i as i64),
            (TENSOR_INT64_DATA, Value::Bytes(packed)) => ints.extend(varints(packed)?.into_iter().map(|i| i as i64)),
            (TENSOR_NAME, v) => name = v.string()?,
            (TENSOR_RAW_DATA, v) => raw = Some(v.bytes()?),
            (TENSOR_DATA_LOCATION, Value::Varint(EXTERNAL)) => {
                return Err(format!("tensor '{name}' is stored in an external file, which is not supported"));
            }
            _ => {}
        }
    }
    let dims: Vec<usize> = dims
        .into_iter()
        .map(|d| usize::try_from(d).map_err(|_| format!("tensor '{name}' has a bad dimension")))
        .collect::<Result<_, _>>()?;
    let count = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    let (parsed, len) = match data_type {
        FLOAT => {
            let values = raw.map_or(Ok(floats), le_floats)?;
            let len = values.len();
            (Parsed::Float(Tensor { dims: dims.clone(), values }), len)
        }
        INT64 => {
            let values: Vec<i64> = match raw {
                Some(raw) if raw.len() % 8 == 0 => {
                    raw.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes"))).collect()
                }
                Some(_) => return Err(format!("tensor '{name}': int64 data whose length is not a multiple of 8")),
                None => ints,
            };
            let len = values.len();
            (Parsed::Int(IntTensor { values }), len)
        }
        UINT8 | INT8 | INT32 => {
            let (elem, values) = match (data_type, raw) {
                (UINT8, Some(raw)) => (QuantElem::U8, raw.iter().map(|&b| i32::from(b)).collect()),
                (INT8, Some(raw)) => (QuantElem::I8, raw.iter().map(|&b| i32::from(b as i8)).collect()),
                (INT32, Some(raw)) if raw.len() % 4 == 0 => {
                    (QuantElem::I32, raw.chunks_exact(4).map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes"))).collect())
                }
                (INT32, Some(_)) => return Err(format!("tensor '{name}': int32 data whose length is not a multiple of 4")),
                (UINT8, None) => (QuantElem::U8, int32s),
                (INT8, None) => (QuantElem::I8, int32s),
                _ => (QuantElem::I32, int32s),
            };
            let len = values.len();
            (Parsed::Quant(QuantTensor { dims: dims.clone(), elem, values }), len)
        }
        _ => return Ok(None),
    };
    if count != Some(len) {
        return Err(format!("tensor '{name}' has shape {dims:?} but {len} values"));
    }
    Ok(Some((name, parsed)))
}

fn le_floats(bytes: &[u8]) -> Result<Vec<f32>, String> {
    if !bytes.len().is_multiple_of(4) {
        return Err("float data whose length is not a multiple of 4".into());
    }
    Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

fn varints(mut bytes: &[u8]) -> Result<Vec<u64>, String> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        out.push(varint(&mut bytes)?);
    }
    Ok(out)
}

fn varint(bytes: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first().ok_or("a number runs past the end of its message")?;
        *bytes = rest;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("a number longer than 10 bytes".into())
}

/// One field's value by protobuf wire type.
#[derive(Clone, Copy)]
enum Value<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl<'a> Value<'a> {
    fn bytes(self) -> Result<&'a [u8], String> {
        match self {
            Value::Bytes(b) => Ok(b),
            _ => Err("a message field has the wrong wire type".into()),
        }
    }

    fn string(self) -> Result<String, String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| "a name that is not UTF-8".into())
    }
}

/// The fields of one protobuf message, in order.
struct Fields<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes, failed: false }
    }

    fn next_field(&mut self) -> Result<(u64, Value<'a>), String> {
        let key = varint(&mut self.rest)?;
        let value = match key & 7 {
            0 => Value::Varint(varint(&mut self.rest)?),
            1 => {
                self.rest = self.rest.get(8..).ok_or("a field runs past the end of its message")?;
                Value::Fixed64
            }
            2 => {
                let len = usize::try_from(varint(&mut self.rest)?).map_err(|_| "a length too large")?;
                if len > self.rest.len() {
                    return Err("a field runs past the end of its message".into());
                }
                let (b, rest) = self.rest.split_at(len);
                self.rest = rest;
                Value::Bytes(b)
            }
            5 => {
                let b = self.rest.get(..4).ok_or("a field runs past the end of its message")?;
                self.rest = &self.rest[4..];
                Value::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            t => return Err(format!("wire type {t} is not protobuf")),
        };
        Ok((key >> 3, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Value<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.failed {
            return None;
        }
        let field = self.next_field();
        self.failed = field.is_err();
        Some(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(number: u64, wire: u64) -> u8 {
        (number << 3 | wire) as u8
    }

    fn message(number: u64, body: &[u8]) -> Vec<u8> {
        let mut out = vec![key(number, 2), body.len() as u8];
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn reads_a_float_initializer_from_raw_and_packed_data() {
        let raw: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|f| f.to_le_bytes()).collect();
        let mut t = vec![key(TENSOR_DIMS, 0), 2, key(TENSOR_DATA_TYPE, 0), 1];
        t.extend(message(TENSOR_NAME, b"w"));
        t.extend(message(TENSOR_RAW_DATA, &raw));
        let mut packed = vec![key(TENSOR_DATA_TYPE, 0), 1];
        packed.extend(message(TENSOR_DIMS, &[1, 2]));
        packed.extend(message(TENSOR_NAME, b"p"));
        packed.extend(message(TENSOR_FLOAT_DATA, &raw));
        let mut g = message(GRAPH_INITIALIZER, &t);
        g.extend(message(GRAPH_INITIALIZER, &packed));
        g.extend(message(GRAPH_NODE, &[message(NODE_OP_TYPE, b"LSTM"), message(NODE_INPUT, b"x")].concat()));
        let graph = parse(&message(MODEL_GRAPH, &g)).unwrap();
        assert_eq!(graph.tensors["w"].dims, [2]);
        assert_eq!(graph.tensors["w"].values, [1.5, -2.0]);
        assert_eq!(graph.tensors["p"].dims, [1, 2], "packed dims");
        assert_eq!(graph.tensors["p"].values, [1.5, -2.0]);
        assert_eq!(graph.nodes[0].op_type, "LSTM");
        assert_eq!(graph.nodes[0].inputs, ["x"]);
    }

    #[test]
    fn refuses_what_is_not_onnx() {
        assert!(parse(b"").unwrap_err().contains("no graph"));
        assert!(parse(b"RIFF\x24\x00\x00\x00WAVEfmt ").is_err());
        assert!(parse(&[key(MODEL_GRAPH, 2), 50, 1, 2]).unwrap_err().contains("past the end"));
        assert!(parse(&[0xff; 11]).is_err());
        let t = [vec![key(TENSOR_DIMS, 0), 3, key(TENSOR_DATA_TYPE, 0), 1], message(TENSOR_RAW_DATA, &[0; 8])].concat();
        let e = parse(&message(MODEL_GRAPH, &message(GRAPH_INITIALIZER, &t))).unwrap_err();
        assert!(e.contains("shape [3] but 2 values"), "{e}");
    }
}
