//! Reading the Smart Turn v3 network out of its quantized ONNX graph.
//!
//! The file is the QDQ form onnxruntime's quantizer writes: every activation a product
//! takes passes `QuantizeLinear` → `DequantizeLinear` (uint8, one scale and zero point
//! per tensor), every weight is `DequantizeLinear` of an int8 initializer (a scale per
//! output channel, zero point 0). The graph is walked from its input along the data
//! flow, each step checking the operator it expects; what the forward needs (weights
//! as int8, scales, zero points, biases, constants) is collected on the way. Anything
//! else is refused with the step that did not match.

use std::collections::HashMap;

use super::super::int8::{Kernel, PackedB};
use super::super::onnx::{Attribute, OnnxGraph, OnnxNode, QuantElem};
use super::{Dense, HeadLayer, Layer, Net, Norm, Quant};

type R<T> = Result<T, String>;

/// An int8 weight: its dimensions, values (row-major), per-channel scales and the
/// axis they run along.
struct Weight {
    dims: Vec<usize>,
    values: Vec<i32>,
    scales: Vec<f32>,
    axis: usize,
}

/// The graph with its edges indexed both ways.
struct Graph<'a> {
    g: &'a OnnxGraph,
    consumers: HashMap<&'a str, Vec<&'a OnnxNode>>,
    producer: HashMap<&'a str, &'a OnnxNode>,
    kernel: Kernel,
}

fn attr_int(node: &OnnxNode, name: &str) -> Option<i64> {
    match node.attributes.get(name) {
        Some(Attribute::Int(i)) => Some(*i),
        _ => None,
    }
}

fn attr_ints(node: &OnnxNode, name: &str) -> Option<Vec<i64>> {
    match node.attributes.get(name) {
        Some(Attribute::Ints(v)) => Some(v.clone()),
        _ => None,
    }
}

impl<'a> Graph<'a> {
    fn new(g: &'a OnnxGraph, kernel: Kernel) -> Self {
        let mut consumers: HashMap<&str, Vec<&OnnxNode>> = HashMap::new();
        let mut producer = HashMap::new();
        for node in &g.nodes {
            for input in &node.inputs {
                consumers.entry(input.as_str()).or_default().push(node);
            }
            for output in &node.outputs {
                producer.insert(output.as_str(), node);
            }
        }
        Self { g, consumers, producer, kernel }
    }

    fn consumers(&self, name: &str, op: &str) -> Vec<&'a OnnxNode> {
        self.consumers.get(name).map(|c| c.iter().copied().filter(|n| n.op_type == op).collect()).unwrap_or_default()
    }

    /// The one `op` that reads `name`.
    fn consumer(&self, name: &str, op: &str) -> R<&'a OnnxNode> {
        match self.consumers(name, op)[..] {
            [node] if !node.outputs.is_empty() => Ok(node),
            [] => Err(format!("expected {op} after '{name}'")),
            _ => Err(format!("expected one {op} after '{name}'")),
        }
    }

    fn out(node: &'a OnnxNode) -> &'a str {
        node.outputs[0].as_str()
    }

    fn scalar(&self, name: &str) -> R<f32> {
        match self.g.tensors.get(name) {
            Some(t) if t.values.len() == 1 => Ok(t.values[0]),
            _ => Err(format!("'{name}' is not a constant scalar")),
        }
    }

    fn floats(&self, name: &str, len: usize) -> R<Vec<f32>> {
        if let Some(t) = self.g.tensors.get(name) {
            return if t.values.len() == len {
                Ok(t.values.clone())
            } else {
                Err(format!("'{name}' has {} values, expected {len}", t.values.len()))
            };
        }
        // a bias stored quantized (int32) and dequantized in the graph
        let node = self.producer.get(name).filter(|n| n.op_type == "DequantizeLinear").ok_or(format!("'{name}' is not a constant"))?;
        let q = self
            .g
            .quantized
            .get(node.inputs[0].as_str())
            .filter(|q| q.values.len() == len)
            .ok_or(format!("'{name}' is not {len} values"))?;
        let scales = self.g.tensors.get(node.inputs.get(1).map_or("", String::as_str)).ok_or(format!("'{name}' has no scale"))?;
        let zero = |i: usize| node.inputs.get(2).and_then(|z| self.g.quantized.get(z.as_str())).map_or(0, |z| z.values[i % z.values.len()]);
        Ok((0..len).map(|i| (q.values[i] - zero(i)) as f32 * scales.values[i % scales.values.len()]).collect())
    }

    /// An operator's int32 bias of `len` (the DequantizeLinear of an int32 initializer),
    /// as the fused kernels add it to the integer sums.
    fn int_bias(&self, name: &str, len: usize) -> R<Vec<i32>> {
        let node = self.producer.get(name).filter(|n| n.op_type == "DequantizeLinear").ok_or(format!("'{name}' is not an int32 bias"))?;
        let q = self.g.quantized.get(node.inputs[0].as_str()).filter(|q| q.elem == QuantElem::I32 && q.values.len() == len);
        Ok(q.ok_or(format!("'{name}' is not an int32 bias of {len}"))?.values.clone())
    }

    /// The uint8 quantization of a QuantizeLinear node.
    fn quant(&self, node: &OnnxNode) -> R<Quant> {
        let scale = self.scalar(node.inputs.get(1).map_or("", String::as_str))?;
        let zero = node.inputs.get(2).and_then(|z| self.g.quantized.get(z.as_str()));
        match zero {
            Some(z) if z.elem == QuantElem::U8 && z.values.len() == 1 && scale > 0.0 && scale.is_finite() => {
                Ok(Quant::new(scale, z.values[0]))
            }
            _ => Err(format!("'{}' is not quantized to uint8 with one scale and zero point", node.inputs[0])),
        }
    }

    /// `name` through QuantizeLinear → DequantizeLinear if it goes through them: the
    /// quantization and the dequantized tensor's name.
    fn fake_quant(&self, name: &'a str) -> R<(Option<Quant>, &'a str)> {
        match self.consumers(name, "QuantizeLinear")[..] {
            [] => Ok((None, name)),
            [q] => {
                let dq = self.consumer(Self::out(q), "DequantizeLinear")?;
                Ok((Some(self.quant(q)?), Self::out(dq)))
            }
            _ => Err(format!("'{name}' is quantized twice")),
        }
    }

    /// The quantization and float input of the QuantizeLinear → DequantizeLinear pair
    /// whose output is `name`.
    fn dequantized_from(&self, name: &str) -> R<(Quant, &'a str)> {
        let dq = self.producer.get(name).filter(|n| n.op_type == "DequantizeLinear");
        let q = dq.and_then(|dq| self.producer.get(dq.inputs[0].as_str())).filter(|n| n.op_type == "QuantizeLinear");
        let q = q.ok_or(format!("'{name}' is not a quantized activation"))?;
        Ok((self.quant(q)?, q.inputs[0].as_str()))
    }

    /// As [`Self::fake_quant`], where the quantization must be there.
    fn quantized(&self, name: &'a str) -> R<(Quant, &'a str)> {
        match self.fake_quant(name)? {
            (Some(q), out) => Ok((q, out)),
            (None, _) => Err(format!("'{name}' is not quantized")),
        }
    }

    /// The int8 weight `name` dequantizes: values (row-major, `dims`) and per-channel scales
    /// along `axis`.
    fn weight(&self, name: &str) -> R<Weight> {
        let node = self.producer.get(name).filter(|n| n.op_type == "DequantizeLinear").ok_or(format!("'{name}' is not an int8 weight"))?;
        let q = self
            .g
            .quantized
            .get(node.inputs[0].as_str())
            .filter(|q| q.elem == QuantElem::I8)
            .ok_or(format!("'{name}' is not an int8 weight"))?;
        let scales = self.g.tensors.get(node.inputs.get(1).map_or("", String::as_str)).ok_or(format!("'{name}' has no scale"))?;
        if let Some(z) = node.inputs.get(2).and_then(|z| self.g.quantized.get(z.as_str()))
            && z.values.iter().any(|&v| v != 0)
        {
            return Err(format!("'{name}' has a nonzero zero point (expected symmetric int8 weights)"));
        }
        let axis = usize::try_from(attr_int(node, "axis").unwrap_or(1)).map_err(|_| format!("'{name}': a negative axis"))?;
        if scales.values.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(format!("'{name}' has a scale that is not positive"));
        }
        Ok(Weight { dims: q.dims.clone(), values: q.values.clone(), scales: scales.values.clone(), axis })
    }

    /// A Conv (kernel 3, padding 1) over `input`: its weights packed as im2col products
    /// (k = tap · channels + channel), its stride and its (dequantized) output.
    fn conv(&self, input: &'a str, in_q: Quant) -> R<(Dense, usize, &'a str)> {
        let node = self.consumer(input, "Conv")?;
        let Weight { dims, values: w, scales, axis } = self.weight(node.inputs.get(1).map_or("", String::as_str))?;
        let [outs, ins, 3] = dims[..] else { return Err(format!("conv weight of shape {dims:?}, expected [out, in, 3]")) };
        let strides = attr_ints(node, "strides").unwrap_or(vec![1]);
        if attr_ints(node, "pads").unwrap_or_default() != [1, 1]
            || attr_int(node, "group").unwrap_or(1) != 1
            || axis != 0
            || scales.len() != outs
        {
            return Err("a Conv that is not kernel 3, padding 1, one group, per-channel weights".into());
        }
        let stride = match strides[..] {
            [s @ (1 | 2)] => s as usize,
            _ => return Err(format!("a Conv of strides {strides:?}")),
        };
        let bias = match node.inputs.get(2) {
            Some(b) => Some(self.int_bias(b, outs)?),
            None => None,
        };
        let packed = PackedB::weights(self.kernel, 3 * ins, outs, |k, n| w[(n * ins + k % ins) * 3 + k / ins] as i8);
        let (out_q, out) = self.quantized(Self::out(node))?;
        Ok((Dense::new(packed, in_q, &scales, bias, out_q, None), stride, out))
    }

    /// A MatMul of `input` by an int8 weight [k, n], its output through its optional
    /// quantization and bias Add.
    fn matmul(&self, node: &'a OnnxNode, in_q: Quant) -> R<(Dense, &'a str)> {
        let Weight { dims, values: w, scales, axis } = self.weight(node.inputs.get(1).map_or("", String::as_str))?;
        let [k, n] = dims[..] else { return Err(format!("a MatMul weight of shape {dims:?}")) };
        if axis != 1 || (scales.len() != n && scales.len() != 1) || !k.is_multiple_of(4) {
            return Err(format!("a MatMul weight [{k}, {n}] not quantized per output column"));
        }
        let scales = if scales.len() == 1 { vec![scales[0]; n] } else { scales };
        let packed = PackedB::weights(self.kernel, k, n, |kk, j| w[kk * n + j] as i8);
        let (out_q, out) = self.quantized(Self::out(node))?;
        let (outer_bias, out) = self.bias_add(out, n)?;
        Ok((Dense::new(packed, in_q, &scales, None, out_q, outer_bias), out))
    }

    /// A Gemm (transB = 1: weight [n, k]) of `input`, bias inside, output quantized.
    fn gemm(&self, node: &'a OnnxNode, in_q: Quant) -> R<(Dense, &'a str)> {
        let Weight { dims, values: w, scales, axis } = self.weight(node.inputs.get(1).map_or("", String::as_str))?;
        let [n, k] = dims[..] else { return Err(format!("a Gemm weight of shape {dims:?}")) };
        if attr_int(node, "transB") != Some(1) || attr_int(node, "transA").unwrap_or(0) != 0 || axis != 0 || !k.is_multiple_of(4) {
            return Err("a Gemm that is not x · Wᵀ with per-row int8 weights".into());
        }
        for (attr, want) in [("alpha", 1.0), ("beta", 1.0)] {
            if let Some(Attribute::Float(v)) = node.attributes.get(attr)
                && *v != want
            {
                return Err(format!("a Gemm with {attr} {v}"));
            }
        }
        let scales = if scales.len() == 1 { vec![scales[0]; n] } else { scales };
        let bias = match node.inputs.get(2) {
            Some(b) => Some(self.int_bias(b, n)?),
            None => None,
        };
        let packed = PackedB::weights(self.kernel, k, n, |kk, j| w[j * k + kk] as i8);
        let (out_q, out) = self.quantized(Self::out(node))?;
        Ok((Dense::new(packed, in_q, &scales, bias, out_q, None), out))
    }

    /// `name` + a constant vector of `n`, if that Add follows.
    fn bias_add(&self, name: &'a str, n: usize) -> R<(Option<Vec<f32>>, &'a str)> {
        for add in self.consumers(name, "Add") {
            let other = add.inputs.iter().find(|i| i.as_str() != name).map_or("", String::as_str);
            if let Ok(bias) = self.floats(other, n) {
                return Ok((Some(bias), Self::out(add)));
            }
        }
        Ok((None, name))
    }

    /// The exact GELU written out (x · 0.5 · (1 + erf(x / √2))) after `name`: its output.
    fn gelu(&self, name: &'a str) -> R<&'a str> {
        let div = self.consumer(name, "Div")?;
        let erf = self.consumer(Self::out(div), "Erf")?;
        let add = self.consumer(Self::out(erf), "Add")?;
        let half = self.consumer(Self::out(add), "Mul")?;
        let mul = self.consumer(Self::out(half), "Mul")?;
        let constant = |node: &OnnxNode, skip: &str| {
            node.inputs.iter().find(|i| i.as_str() != skip).map(|i| self.scalar(i)).transpose().ok().flatten()
        };
        let ok = (constant(div, name).map(|c| (c - std::f32::consts::SQRT_2).abs() < 1e-6) == Some(true))
            && constant(add, Self::out(erf)) == Some(1.0)
            && constant(half, Self::out(add)) == Some(0.5)
            && mul.inputs.iter().any(|i| i == name);
        if ok { Ok(Self::out(mul)) } else { Err(format!("expected GELU (erf) after '{name}'")) }
    }

    fn norm(&self, node: &OnnxNode, width: usize) -> R<Norm> {
        if attr_int(node, "axis").unwrap_or(-1) != -1 || node.inputs.len() < 3 || !width.is_multiple_of(8) {
            return Err("a LayerNormalization not over the last axis with weight and bias".into());
        }
        let eps = match node.attributes.get("epsilon") {
            Some(Attribute::Float(e)) => *e,
            _ => 1e-5,
        };
        Ok(Norm { weight: self.floats(&node.inputs[1], width)?, bias: self.floats(&node.inputs[2], width)?, eps })
    }

    /// Follows `name` back through layout operators (Reshape, Transpose) and products
    /// with a scalar to `target`: the product of the scalars.
    fn back_to(&self, mut name: &'a str, target: &str) -> R<f32> {
        let mut scale = 1.0;
        while name != target {
            let node = self.producer.get(name).ok_or(format!("'{name}' does not come from '{target}'"))?;
            name = match node.op_type.as_str() {
                "Reshape" | "Transpose" => &node.inputs[0],
                "Mul" => {
                    let (value, constant) = (&node.inputs[0], &node.inputs[1]);
                    let (value, constant) = if self.scalar(constant).is_ok() { (value, constant) } else { (constant, value) };
                    scale *= self.scalar(constant)?;
                    value
                }
                op => return Err(format!("'{name}' comes from {op}, expected '{target}' reshaped")),
            };
        }
        Ok(scale)
    }

    /// Forward through layout operators and scalar products from `name` to the next
    /// QuantizeLinear: the product of the scalars and the fake-quantized tensor.
    fn forward_to_quant(&self, mut name: &'a str) -> R<(f32, Quant, &'a str)> {
        let mut scale = 1.0;
        loop {
            if let (Some(q), out) = self.fake_quant(name)? {
                return Ok((scale, q, out));
            }
            let next = self.consumers.get(name).and_then(|c| match c[..] {
                [node] => Some(node),
                _ => None,
            });
            let node = next.ok_or(format!("'{name}' does not lead to one quantized tensor"))?;
            match node.op_type.as_str() {
                "Reshape" | "Transpose" => {}
                "Mul" => scale *= node.inputs.iter().find(|i| i.as_str() != name).map(|c| self.scalar(c)).ok_or("a Mul")??,
                op => return Err(format!("{op} after '{name}', expected a reshape or a scalar product")),
            }
            name = Self::out(node);
        }
    }

    /// One encoder layer from the residual stream `h` (after its first LayerNormalization
    /// `ln`, whose quantized output `a` feeds three MatMuls): the layer and the stream after it.
    fn layer(&self, h: &'a str, ln: &'a OnnxNode, a_q: Quant, a: &'a str, width: usize) -> R<(Layer, &'a str)> {
        let norm1 = self.norm(ln, width)?;
        let mut q = None;
        let mut k = None;
        let mut v = None;
        for mm in self.consumers(a, "MatMul") {
            let (dense, out) = self.matmul(mm, a_q)?;
            if !biased(&dense) {
                k = Some((dense, out));
            } else {
                let (scale, quant, out2) = self.forward_to_quant(out)?;
                let role = (dense, scale, quant, out2);
                if scale != 1.0 { q = Some(role) } else { v = Some(role) }
            }
        }
        let ((qd, q_scale, q_quant, q_out), (kd, k_out), (vd, _, v_quant, v_out)) = match (q, k, v) {
            (Some(q), Some(k), Some(v)) => (q, k, v),
            _ => return Err(format!("after '{a}', expected the query, key and value projections")),
        };
        let scores = self.consumer(q_out, "MatMul")?;
        let (kt_q, kt_float) = self.dequantized_from(scores.inputs.get(1).map_or("", String::as_str))?;
        let k_scale = self.back_to(kt_float, k_out)?;
        let (scores_q, s) = self.quantized(Self::out(scores))?;
        let softmax = self.consumer(s, "Softmax")?;
        if attr_int(softmax, "axis").unwrap_or(-1) != -1 {
            return Err("an attention softmax not over the last axis".into());
        }
        let (probs_q, p) = self.quantized(Self::out(softmax))?;
        let pv = self.consumer(p, "MatMul")?;
        if pv.inputs.get(1).map(String::as_str) != Some(v_out) {
            return Err("the attention does not weigh the values".into());
        }
        let (ctx_q, ctx) = self.quantized(Self::out(pv))?;
        let (ctx_scale, ctx_q2, ctx) = self.forward_to_quant(ctx)?;
        if ctx_scale != 1.0 || (ctx_q.scale, ctx_q.zero) != (ctx_q2.scale, ctx_q2.zero) {
            return Err("an attention output scaled or quantized twice differently".into());
        }
        let (out_d, o) = self.matmul(self.consumer(ctx, "MatMul")?, ctx_q2)?;
        let residual = self.consumer(o, "Add")?;
        if !residual.inputs.iter().any(|i| i == h) {
            return Err(format!("expected the residual sum after '{o}'"));
        }
        let h1 = Self::out(residual);
        let ln2 = self.consumer(h1, "LayerNormalization")?;
        let norm2 = self.norm(ln2, width)?;
        let (a2_q, a2) = self.quantized(Self::out(ln2))?;
        let (fc1, f) = self.matmul(self.consumer(a2, "MatMul")?, a2_q)?;
        let g = self.gelu(f)?;
        let (g_q, g) = self.quantized(g)?;
        let (fc2, f2) = self.matmul(self.consumer(g, "MatMul")?, g_q)?;
        let residual = self.consumer(f2, "Add")?;
        if !residual.inputs.iter().any(|i| i == h1) {
            return Err(format!("expected the residual sum after '{f2}'"));
        }
        let heads = q_quant_heads(width)?;
        Ok((
            Layer {
                norm1,
                q: qd,
                k: kd,
                v: vd,
                q_scale,
                q_quant,
                k_scale,
                k_quant: kt_q,
                v_quant,
                heads,
                scores_q,
                probs_q,
                ctx_q,
                out: out_d,
                norm2,
                fc1,
                gelu_q: g_q,
                fc2,
            },
            Self::out(residual),
        ))
    }
}

/// Whether the product has a bias added after its output quantization.
fn biased(d: &Dense) -> bool {
    d.outer_bias.iter().any(|&b| b != 0.0)
}

/// Heads of 64 channels.
fn q_quant_heads(width: usize) -> R<usize> {
    if width.is_multiple_of(64) { Ok(width / 64) } else { Err(format!("a width of {width}, not heads of 64")) }
}

/// The network in `g`, its products packed for `kernel`.
pub(super) fn load(g: &OnnxGraph, kernel: Kernel) -> R<Net> {
    let graph = Graph::new(g, kernel);
    let input = g.inputs.first().ok_or("the graph has no input")?;
    if input.dims.len() != 3 || input.dims[1] != Some(80) || input.dims[2] != Some(800) {
        return Err(format!("input '{}' is not [batch, 80, 800] log-mel features", input.name));
    }
    let (in_q, x) = graph.quantized(&input.name)?;
    let (conv1, s1, c1) = graph.conv(x, in_q)?;
    let (g1_q, g1) = graph.quantized(graph.gelu(c1)?)?;
    let (conv2, s2, c2) = graph.conv(g1, g1_q)?;
    let g2 = graph.gelu(c2)?;
    if (s1, s2) != (1, 2) {
        return Err("the two convolutions are not of strides 1 and 2".into());
    }
    let width = conv2.b.n();
    let t = graph.consumer(g2, "Transpose")?;
    let add = graph.consumer(Graph::out(t), "Add")?;
    let pos_name = add.inputs.iter().find(|i| i.as_str() != Graph::out(t)).map_or("", String::as_str);
    let positions = graph.floats(pos_name, 400 * width).map_err(|e| format!("positional embedding: {e}"))?;
    let mut h = Graph::out(add);
    let mut layers = Vec::new();
    let (final_norm, lf_q, lf) = loop {
        let ln = graph.consumer(h, "LayerNormalization")?;
        let (a_q, a) = graph.quantized(Graph::out(ln))?;
        if graph.consumers(a, "MatMul").len() == 3 {
            let (layer, next) = graph.layer(h, ln, a_q, a, width).map_err(|e| format!("encoder layer {}: {e}", layers.len()))?;
            layers.push(layer);
            h = next;
        } else {
            break (graph.norm(ln, width)?, a_q, a);
        }
    };
    if layers.is_empty() {
        return Err("no encoder layer".into());
    }
    // attention pooling over time: softmax(tanh(x W1 + b1) W2 + b2) weighs the frames
    let (pool1, p1) = graph.matmul(graph.consumer(lf, "MatMul")?, lf_q)?;
    let tanh = graph.consumer(p1, "Tanh")?;
    let (tanh_q, t) = graph.quantized(Graph::out(tanh))?;
    let (pool2, p2) = graph.matmul(graph.consumer(t, "MatMul")?, tanh_q)?;
    if pool2.b.n() != 1 {
        return Err("the attention pooling does not score one value per frame".into());
    }
    let softmax = graph.consumer(p2, "Softmax")?;
    let mul = graph.consumer(Graph::out(softmax), "Mul")?;
    if !mul.inputs.iter().any(|i| i == lf) {
        return Err("the pooling weights do not weigh the encoder output".into());
    }
    let sum = graph.consumer(Graph::out(mul), "ReduceSum")?;
    let (mut cur_q, mut cur) = graph.quantized(Graph::out(sum))?;
    let mut head = Vec::new();
    let probability = loop {
        let node = graph.consumer(cur, "Gemm")?;
        let (dense, y) = graph.gemm(node, cur_q)?;
        let n = dense.b.n();
        let mut norm = None;
        let mut y = y;
        if let Ok(ln) = graph.consumer(y, "LayerNormalization") {
            norm = Some(graph.norm(ln, n)?);
            y = Graph::out(ln);
        }
        let gelu = graph.gelu(y).ok();
        if let Some(g) = gelu {
            y = g;
        }
        if let Ok(sigmoid) = graph.consumer(y, "Sigmoid") {
            head.push(HeadLayer { dense, norm, gelu: gelu.is_some() });
            break Graph::out(sigmoid);
        }
        let (q, next) = graph.quantized(y)?;
        head.push(HeadLayer { dense, norm, gelu: gelu.is_some() });
        (cur_q, cur) = (q, next);
    };
    if g.outputs.first().map(|o| o.name.as_str()) != Some(probability) || head.last().is_none_or(|h| h.dense.b.n() != 1) {
        return Err("the graph does not end in one probability".into());
    }
    Ok(Net { conv1, conv2, positions, width, layers, final_norm, final_q: lf_q, pool1, tanh_q, pool2, head })
}
