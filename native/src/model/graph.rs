//! The generic engine: runs an ONNX graph of float tensors, op by op, on the calling
//! thread. It covers the operators of small frame-wise audio models (dense and 1-D
//! convolutional classifiers, embeddings, gains and filters): [`OPS`]. A graph with any
//! other operator is refused when it is loaded, naming the operator.
//!
//! Why not a library: `tract-onnx`, the pure-Rust ONNX engine on crates.io, takes 5 min
//! to build in release on this project's CI machine (2 cores; the whole library takes
//! 1 min), once per build profile, and needs a newer compiler than the project's for one
//! of its dependencies. This engine is about 400 lines and is checked against
//! onnxruntime by the tests.

use std::collections::HashMap;

use super::onnx::{Attribute, OnnxGraph, OnnxNode};

/// The operators the engine runs.
pub const OPS: [&str; 28] = [
    "Abs",
    "Add",
    "Concat",
    "Constant",
    "Conv",
    "Div",
    "Exp",
    "Flatten",
    "Gemm",
    "Identity",
    "Log",
    "MatMul",
    "Mul",
    "Neg",
    "ReduceMax",
    "ReduceMean",
    "ReduceSum",
    "Relu",
    "Reshape",
    "Sigmoid",
    "Softmax",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Tanh",
    "Transpose",
    "Unsqueeze",
    "Gelu",
];

/// A float tensor: shape and row-major values.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// A value flowing between nodes.
#[derive(Clone, Debug)]
enum Value {
    F(Array),
    I(Vec<i64>),
}

/// A loaded graph: immutable, shared by every stream that runs it.
pub struct Graph {
    nodes: Vec<OnnxNode>,
    constants: HashMap<String, Value>,
    pub input: String,
    /// The input's declared dimensions (`None`: symbolic or unknown).
    pub input_dims: Vec<Option<i64>>,
    pub output: String,
}

impl Graph {
    /// The graph of `onnx`, run from the input named `input` (default: the first graph
    /// input that is not an initializer) to the output `output` (default: the first);
    /// refused when an operator is not in [`OPS`].
    pub fn new(onnx: OnnxGraph, input: Option<&str>, output: Option<&str>) -> Result<Self, String> {
        let mut constants: HashMap<String, Value> = HashMap::new();
        for (name, t) in onnx.tensors {
            constants.insert(name, Value::F(Array { shape: t.dims, data: t.values }));
        }
        for (name, t) in onnx.ints {
            constants.insert(name, Value::I(t.values));
        }
        let inputs: Vec<&str> = onnx.inputs.iter().map(|i| i.name.as_str()).filter(|n| !constants.contains_key(*n)).collect();
        let input = match input {
            Some(name) if inputs.contains(&name) => name.to_string(),
            Some(name) => return Err(format!("it has no input '{name}' (its inputs: {inputs:?})")),
            None => inputs.first().ok_or("it has no input")?.to_string(),
        };
        let outputs: Vec<&str> = onnx.outputs.iter().map(|o| o.name.as_str()).collect();
        let output = match output {
            Some(name) if outputs.contains(&name) => name.to_string(),
            Some(name) => return Err(format!("it has no output '{name}' (its outputs: {outputs:?})")),
            None => outputs.first().ok_or("it has no output")?.to_string(),
        };
        if let Some(node) = onnx.nodes.iter().find(|n| !OPS.contains(&n.op_type.as_str())) {
            return Err(format!("operator '{}' is not supported by the built-in engine (it runs {})", node.op_type, OPS.join(", ")));
        }
        let input_dims = onnx.inputs.iter().find(|i| i.name == input).map(|i| i.dims.clone()).unwrap_or_default();
        Ok(Self { nodes: onnx.nodes, constants, input, input_dims, output })
    }

    /// Runs the graph on `input` and returns the output tensor.
    pub fn run(&self, input: Array) -> Result<Array, String> {
        let mut values: HashMap<&str, Value> = HashMap::new();
        values.insert(self.input.as_str(), Value::F(input));
        for node in &self.nodes {
            let args: Vec<Option<&Value>> = node
                .inputs
                .iter()
                .map(|name| if name.is_empty() { None } else { values.get(name.as_str()).or_else(|| self.constants.get(name)) })
                .collect();
            let out =
                op(node, &args).map_err(|e| format!("{} ({}): {e}", node.op_type, node.outputs.first().map_or("", |s| s.as_str())))?;
            if let Some(name) = node.outputs.first() {
                values.insert(name.as_str(), out);
            }
        }
        match values.remove(self.output.as_str()).or_else(|| self.constants.get(&self.output).cloned()) {
            Some(Value::F(a)) => Ok(a),
            _ => Err(format!("output '{}' was not computed as a float tensor", self.output)),
        }
    }
}

fn float<'a>(args: &[Option<&'a Value>], i: usize) -> Result<&'a Array, String> {
    match args.get(i).copied().flatten() {
        Some(Value::F(a)) => Ok(a),
        Some(Value::I(_)) => Err(format!("input {i} is an integer tensor")),
        None => Err(format!("input {i} is missing")),
    }
}

fn ints(args: &[Option<&Value>], i: usize) -> Option<Vec<i64>> {
    match args.get(i).copied().flatten() {
        Some(Value::I(v)) => Some(v.clone()),
        Some(Value::F(a)) => Some(a.data.iter().map(|&x| x as i64).collect()),
        None => None,
    }
}

fn attr_int(node: &OnnxNode, name: &str, default: i64) -> i64 {
    match node.attributes.get(name) {
        Some(Attribute::Int(i)) => *i,
        _ => default,
    }
}

fn attr_float(node: &OnnxNode, name: &str, default: f32) -> f32 {
    match node.attributes.get(name) {
        Some(Attribute::Float(f)) => *f,
        _ => default,
    }
}

fn attr_ints(node: &OnnxNode, name: &str) -> Option<Vec<i64>> {
    match node.attributes.get(name) {
        Some(Attribute::Ints(v)) => Some(v.clone()),
        Some(Attribute::Int(i)) => Some(vec![*i]),
        _ => None,
    }
}

/// `axis` (negative counts from the end) as an index into `rank` dimensions.
fn axis(axis: i64, rank: usize) -> Result<usize, String> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    usize::try_from(a).ok().filter(|&a| a < rank).ok_or_else(|| format!("axis {axis} is out of range for rank {rank}"))
}

fn op(node: &OnnxNode, args: &[Option<&Value>]) -> Result<Value, String> {
    let unary = |f: fn(f32) -> f32| -> Result<Value, String> {
        let a = float(args, 0)?;
        Ok(Value::F(Array { shape: a.shape.clone(), data: a.data.iter().map(|&x| f(x)).collect() }))
    };
    let binary = |f: fn(f32, f32) -> f32| -> Result<Value, String> { Ok(Value::F(broadcast(float(args, 0)?, float(args, 1)?, f)?)) };
    match node.op_type.as_str() {
        "Abs" => unary(f32::abs),
        "Neg" => unary(|x| -x),
        "Exp" => unary(f32::exp),
        "Log" => unary(f32::ln),
        "Sqrt" => unary(f32::sqrt),
        "Relu" => unary(|x| x.max(0.0)),
        "Sigmoid" => unary(|x| 1.0 / (1.0 + (-x).exp())),
        "Tanh" => unary(f32::tanh),
        "Gelu" => unary(super::gelu),
        "Identity" => args.first().copied().flatten().cloned().ok_or_else(|| "input 0 is missing".into()),
        "Add" => binary(|a, b| a + b),
        "Sub" => binary(|a, b| a - b),
        "Mul" => binary(|a, b| a * b),
        "Div" => binary(|a, b| a / b),
        "Constant" => match node.attributes.get("value") {
            Some(Attribute::Tensor(t)) => Ok(Value::F(Array { shape: t.dims.clone(), data: t.values.clone() })),
            Some(Attribute::IntTensor(t)) => Ok(Value::I(t.values.clone())),
            Some(Attribute::Float(f)) => Ok(Value::F(Array { shape: vec![], data: vec![*f] })),
            Some(Attribute::Floats(v)) => Ok(Value::F(Array { shape: vec![v.len()], data: v.clone() })),
            Some(Attribute::Int(i)) => Ok(Value::I(vec![*i])),
            Some(Attribute::Ints(v)) => Ok(Value::I(v.clone())),
            _ => Err("a Constant without a supported value".into()),
        },
        "MatMul" => matmul(float(args, 0)?, float(args, 1)?).map(Value::F),
        "Gemm" => gemm(node, args).map(Value::F),
        "Conv" => conv1d(node, args).map(Value::F),
        "Softmax" => {
            let a = float(args, 0)?;
            let ax = axis(attr_int(node, "axis", -1), a.shape.len())?;
            Ok(Value::F(softmax(a, ax)))
        }
        "ReduceMean" | "ReduceSum" | "ReduceMax" => reduce(node, args).map(Value::F),
        "Reshape" => {
            let a = float(args, 0)?;
            let target = ints(args, 1).ok_or("Reshape needs a shape")?;
            let mut shape = Vec::with_capacity(target.len());
            for (i, &d) in target.iter().enumerate() {
                shape.push(match d {
                    0 => *a.shape.get(i).ok_or("a 0 in the shape past the input's rank")?,
                    -1 => 0,
                    d => usize::try_from(d).map_err(|_| format!("bad dimension {d}"))?,
                });
            }
            if let Some(free) = target.iter().position(|&d| d == -1) {
                let known: usize = shape.iter().enumerate().filter(|&(i, _)| i != free).map(|(_, &d)| d).product();
                shape[free] = a.data.len().checked_div(known).unwrap_or(0);
            }
            reshaped(a, shape)
        }
        "Flatten" => {
            let a = float(args, 0)?;
            let at = attr_int(node, "axis", 1);
            let at = if at < 0 { at + a.shape.len() as i64 } else { at } as usize;
            let outer: usize = a.shape[..at.min(a.shape.len())].iter().product();
            reshaped(a, vec![outer, a.data.len() / outer.max(1)])
        }
        "Squeeze" => {
            let a = float(args, 0)?;
            let axes = ints(args, 1).or_else(|| attr_ints(node, "axes"));
            let rank = a.shape.len();
            let drop: Vec<usize> = match axes {
                Some(axes) => axes.iter().map(|&x| axis(x, rank)).collect::<Result<_, _>>()?,
                None => (0..rank).filter(|&i| a.shape[i] == 1).collect(),
            };
            reshaped(a, a.shape.iter().enumerate().filter(|(i, _)| !drop.contains(i)).map(|(_, &d)| d).collect())
        }
        "Unsqueeze" => {
            let a = float(args, 0)?;
            let axes = ints(args, 1).or_else(|| attr_ints(node, "axes")).ok_or("Unsqueeze needs axes")?;
            let rank = a.shape.len() + axes.len();
            let mut at: Vec<usize> = axes.iter().map(|&x| axis(x, rank)).collect::<Result<_, _>>()?;
            at.sort_unstable();
            let mut shape = a.shape.clone();
            for i in at {
                shape.insert(i.min(shape.len()), 1);
            }
            reshaped(a, shape)
        }
        "Transpose" => {
            let a = float(args, 0)?;
            let perm: Vec<usize> = match attr_ints(node, "perm") {
                Some(p) => p.iter().map(|&x| axis(x, a.shape.len())).collect::<Result<_, _>>()?,
                None => (0..a.shape.len()).rev().collect(),
            };
            transpose(a, &perm).map(Value::F)
        }
        "Concat" => {
            let parts: Vec<&Array> = (0..args.len()).map(|i| float(args, i)).collect::<Result<_, _>>()?;
            let first = parts.first().ok_or("Concat of nothing")?;
            let ax = axis(attr_int(node, "axis", 0), first.shape.len())?;
            concat(&parts, ax).map(Value::F)
        }
        other => Err(format!("operator '{other}' is not supported")),
    }
}

fn reshaped(a: &Array, shape: Vec<usize>) -> Result<Value, String> {
    if shape.iter().product::<usize>() != a.data.len() {
        return Err(format!("cannot reshape {:?} to {shape:?}", a.shape));
    }
    Ok(Value::F(Array { shape, data: a.data.clone() }))
}

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Elementwise `f` with numpy broadcasting.
fn broadcast(a: &Array, b: &Array, f: fn(f32, f32) -> f32) -> Result<Array, String> {
    let rank = a.shape.len().max(b.shape.len());
    let pad = |s: &[usize]| -> Vec<usize> { std::iter::repeat_n(1, rank - s.len()).chain(s.iter().copied()).collect() };
    let (sa, sb) = (pad(&a.shape), pad(&b.shape));
    let mut shape = Vec::with_capacity(rank);
    for (&x, &y) in sa.iter().zip(&sb) {
        shape.push(match (x, y) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err(format!("shapes {:?} and {:?} do not broadcast", a.shape, b.shape)),
        });
    }
    let (ta, tb, to) = (strides(&sa), strides(&sb), strides(&shape));
    let n: usize = shape.iter().product();
    let data = (0..n)
        .map(|i| {
            let (mut ia, mut ib) = (0, 0);
            for d in 0..rank {
                let k = i / to[d] % shape[d];
                ia += if sa[d] == 1 { 0 } else { k * ta[d] };
                ib += if sb[d] == 1 { 0 } else { k * tb[d] };
            }
            f(a.data[ia], b.data[ib])
        })
        .collect();
    Ok(Array { shape, data })
}

/// `a` (…, m, k) · `b` (k, n), or 1-D operands as numpy treats them.
fn matmul(a: &Array, b: &Array) -> Result<Array, String> {
    let (k, n, b_vector) = match b.shape.as_slice() {
        [k] => (*k, 1, true),
        [k, n] => (*k, *n, false),
        s => return Err(format!("MatMul's second operand must be 1-D or 2-D, got {s:?}")),
    };
    if a.shape.last() != Some(&k) {
        return Err(format!("MatMul of {:?} and {:?}", a.shape, b.shape));
    }
    let m = a.data.len() / k;
    let mut data = vec![0.0f32; m * n];
    for (row, out) in a.data.chunks_exact(k).zip(data.chunks_exact_mut(n)) {
        for (kk, &x) in row.iter().enumerate() {
            for (o, &w) in out.iter_mut().zip(&b.data[kk * n..(kk + 1) * n]) {
                *o += x * w;
            }
        }
    }
    let mut shape = a.shape[..a.shape.len() - 1].to_vec();
    if !b_vector {
        shape.push(n);
    }
    Ok(Array { shape, data })
}

fn gemm(node: &OnnxNode, args: &[Option<&Value>]) -> Result<Array, String> {
    let (a, b) = (float(args, 0)?, float(args, 1)?);
    let at = if attr_int(node, "transA", 0) != 0 { transpose(a, &[1, 0])? } else { a.clone() };
    let bt = if attr_int(node, "transB", 0) != 0 { transpose(b, &[1, 0])? } else { b.clone() };
    let (alpha, beta) = (attr_float(node, "alpha", 1.0), attr_float(node, "beta", 1.0));
    let mut y = matmul(&at, &bt)?;
    y.data.iter_mut().for_each(|v| *v *= alpha);
    match args.get(2).copied().flatten() {
        Some(Value::F(c)) => {
            let c = Array { shape: c.shape.clone(), data: c.data.iter().map(|v| v * beta).collect() };
            broadcast(&y, &c, |x, z| x + z)
        }
        _ => Ok(y),
    }
}

fn transpose(a: &Array, perm: &[usize]) -> Result<Array, String> {
    if perm.len() != a.shape.len() {
        return Err(format!("perm {perm:?} for shape {:?}", a.shape));
    }
    let shape: Vec<usize> = perm.iter().map(|&p| a.shape[p]).collect();
    let (from, to) = (strides(&a.shape), strides(&shape));
    let data = (0..a.data.len())
        .map(|i| (0..shape.len()).map(|d| (i / to[d] % shape[d]) * from[perm[d]]).sum::<usize>())
        .map(|src| a.data[src])
        .collect();
    Ok(Array { shape, data })
}

/// Splits `shape` around axis `ax`: (outer, size, inner).
fn around(shape: &[usize], ax: usize) -> (usize, usize, usize) {
    (shape[..ax].iter().product(), shape[ax], shape[ax + 1..].iter().product())
}

fn softmax(a: &Array, ax: usize) -> Array {
    let (outer, size, inner) = around(&a.shape, ax);
    let mut data = a.data.clone();
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| (o * size + j) * inner + i;
            let max = (0..size).map(|j| data[at(j)]).fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = (0..size).map(|j| (data[at(j)] - max).exp()).sum();
            for j in 0..size {
                data[at(j)] = (data[at(j)] - max).exp() / sum;
            }
        }
    }
    Array { shape: a.shape.clone(), data }
}

fn reduce(node: &OnnxNode, args: &[Option<&Value>]) -> Result<Array, String> {
    let a = float(args, 0)?;
    let rank = a.shape.len();
    let axes: Vec<usize> = match ints(args, 1).or_else(|| attr_ints(node, "axes")) {
        Some(axes) => axes.iter().map(|&x| axis(x, rank)).collect::<Result<_, _>>()?,
        None => (0..rank).collect(),
    };
    let keep = attr_int(node, "keepdims", 1) != 0;
    let mut current = a.clone();
    for &ax in &axes {
        let (outer, size, inner) = around(&current.shape, ax);
        let mut data = Vec::with_capacity(outer * inner);
        for o in 0..outer {
            for i in 0..inner {
                let values = (0..size).map(|j| current.data[(o * size + j) * inner + i]);
                data.push(match node.op_type.as_str() {
                    "ReduceMax" => values.fold(f32::NEG_INFINITY, f32::max),
                    "ReduceSum" => values.sum(),
                    _ => values.sum::<f32>() / size.max(1) as f32,
                });
            }
        }
        let mut shape = current.shape.clone();
        shape[ax] = 1;
        current = Array { shape, data };
    }
    if !keep {
        current.shape = current.shape.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, &d)| d).collect();
    }
    Ok(current)
}

fn concat(parts: &[&Array], ax: usize) -> Result<Array, String> {
    let first = parts[0];
    let mut shape = first.shape.clone();
    shape[ax] = 0;
    for p in parts {
        if p.shape.len() != first.shape.len() || p.shape.iter().enumerate().any(|(i, &d)| i != ax && d != first.shape[i]) {
            return Err(format!("Concat of {:?} and {:?}", first.shape, p.shape));
        }
        shape[ax] += p.shape[ax];
    }
    let (outer, _, inner) = around(&first.shape, ax);
    let mut data = Vec::with_capacity(shape.iter().product());
    for o in 0..outer {
        for p in parts {
            let block = p.shape[ax] * inner;
            data.extend_from_slice(&p.data[o * block..(o + 1) * block]);
        }
    }
    Ok(Array { shape, data })
}

/// 1-D convolution: x (N, C, L), w (M, C, K), optional bias (M); `group` 1.
fn conv1d(node: &OnnxNode, args: &[Option<&Value>]) -> Result<Array, String> {
    let (x, w) = (float(args, 0)?, float(args, 1)?);
    let (&[n, c, len], &[m, cw, k]) = (x.shape.as_slice(), w.shape.as_slice()) else {
        return Err(format!("only 1-D Conv is supported (input {:?}, kernel {:?})", x.shape, w.shape));
    };
    if cw != c || attr_int(node, "group", 1) != 1 {
        return Err("only Conv with group 1 is supported".into());
    }
    if matches!(node.attributes.get("auto_pad"), Some(Attribute::Bytes(p)) if p.as_slice() != b"NOTSET") {
        return Err("Conv's auto_pad is not supported; give pads".into());
    }
    let one = |name: &str, default: i64| attr_ints(node, name).and_then(|v| v.first().copied()).unwrap_or(default);
    let (stride, dilation) = (one("strides", 1).max(1) as usize, one("dilations", 1).max(1) as usize);
    let pads = attr_ints(node, "pads").unwrap_or_else(|| vec![0, 0]);
    let (before, after) = (pads.first().copied().unwrap_or(0) as usize, pads.get(1).copied().unwrap_or(0) as usize);
    let span = dilation * (k - 1) + 1;
    let padded = len + before + after;
    if padded < span {
        return Err(format!("Conv kernel of {span} samples over {padded}"));
    }
    let out_len = (padded - span) / stride + 1;
    let bias = float(args, 2).ok();
    let mut data = vec![0.0f32; n * m * out_len];
    for b in 0..n {
        for o in 0..m {
            for t in 0..out_len {
                let mut acc = bias.map_or(0.0, |bias| bias.data[o]);
                for ch in 0..c {
                    for kk in 0..k {
                        let pos = (t * stride + kk * dilation) as isize - before as isize;
                        if pos >= 0 && (pos as usize) < len {
                            acc += w.data[(o * c + ch) * k + kk] * x.data[(b * c + ch) * len + pos as usize];
                        }
                    }
                }
                data[(b * m + o) * out_len + t] = acc;
            }
        }
    }
    Ok(Array { shape: vec![n, m, out_len], data })
}
