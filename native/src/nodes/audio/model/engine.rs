//! Which engine runs a `Model` node, the checks made when the node is built (every bad
//! param is a params error then, never at the first chunk), and one run of n windows.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::model::onnxruntime::{Feed, LoadError, Port};
use crate::model::tensor::{self, Elem, Tensor, Values};
use crate::model::{Array, Graph, OPS, OrtModel};
use crate::nodes::ParamError;

pub const ENGINES: [&str; 3] = ["auto", "native", "onnxruntime"];

/// What the node asks of its model, from its params.
pub struct Wants<'a> {
    pub path: &'a str,
    pub engine: &'a str,
    pub input: Option<&'a str>,
    pub outputs: &'a [String],
    pub state: &'a [(String, String)],
    pub constants: &'a Map<String, Value>,
    /// Samples per input tensor: context + window.
    pub samples: usize,
    pub batch: usize,
}

/// A model ready to run windows.
pub enum Engine {
    Builtin { graph: Arc<Graph>, shape: Vec<usize> },
    Ort(OrtRun),
}

/// A model on onnxruntime, with what each run feeds it.
pub struct OrtRun {
    model: Arc<OrtModel>,
    input: usize,
    elem: Elem,
    /// The input tensor's shape for one window.
    shape: Vec<i64>,
    outputs: Vec<usize>,
    /// (input, output) index pairs carried per stream, and their zero tensors.
    state: Vec<(usize, usize)>,
    state_zeros: Vec<Tensor>,
    constants: Vec<(usize, Tensor)>,
    /// Most windows per run (1: one at a time).
    pub batch: usize,
}

/// The output tensors of one window, in the node's output order.
pub type Outputs = Vec<Tensor>;

impl Engine {
    /// The engine `wants` asks for, loaded and checked by one run on silence.
    pub fn new(wants: &Wants<'_>) -> Result<Self, ParamError> {
        let one_output = wants.outputs.len() <= 1;
        let builtin_fits = wants.state.is_empty() && wants.constants.is_empty() && one_output;
        match wants.engine {
            "native" => {
                if !builtin_fits {
                    return Err(ParamError::new(
                        "engine",
                        "the built-in engine runs one input to one output; state, constants and several outputs need engine \"onnxruntime\"",
                    ));
                }
                let unsupported = crate::model::unsupported_ops(wants.path).map_err(|e| ParamError::new("model_path", e))?;
                if !unsupported.is_empty() {
                    return Err(ParamError::new(
                        "engine",
                        format!(
                            "the built-in engine does not run the model's operators {} (it runs {}); use engine \"onnxruntime\" or \"auto\"",
                            unsupported.join(", "),
                            OPS.join(", ")
                        ),
                    ));
                }
                builtin(wants)
            }
            "auto" => {
                // the built-in engine refuses a graph with an operator it does not run
                if builtin_fits && let Ok(engine) = builtin(wants) {
                    return Ok(engine);
                }
                ort(wants, &crate::model::unsupported_ops(wants.path).unwrap_or_default())
            }
            "onnxruntime" => ort(wants, &[]),
            other => Err(ParamError::new("engine", format!("'{other}' is not one of \"auto\", \"native\", \"onnxruntime\""))),
        }
    }

    /// A new stream's state: every carried tensor zero.
    pub fn state_zeros(&self) -> Vec<Tensor> {
        match self {
            Engine::Ort(o) => o.state_zeros.clone(),
            Engine::Builtin { .. } => Vec::new(),
        }
    }

    /// The engine's name, as `plan()` and the docs say it.
    pub fn name(&self) -> &'static str {
        match self {
            Engine::Builtin { .. } => "native",
            Engine::Ort(_) => "onnxruntime",
        }
    }

    /// Runs `n` windows laid out one after another in `x` (each `samples` long) with the
    /// stream's `state` (updated), and returns the outputs of each window.
    pub fn run(&self, x: &[f32], n: usize, state: &mut [Tensor]) -> Result<Vec<Outputs>, String> {
        match self {
            Engine::Builtin { graph, shape } => x
                .chunks_exact(x.len() / n.max(1))
                .map(|w| {
                    let y = crate::model::budget::run(|| graph.run(Array { shape: shape.clone(), data: w.to_vec() }))?;
                    let shape = y.shape.iter().map(|&d| d as i64).collect();
                    Ok(vec![Tensor { shape, values: Values::F32(y.data) }])
                })
                .collect(),
            Engine::Ort(o) => o.run(x, n, state),
        }
    }
}

fn builtin(wants: &Wants<'_>) -> Result<Engine, ParamError> {
    let graph = crate::model::graph(wants.path, wants.input, wants.outputs.first().map(String::as_str))
        .map_err(|e| ParamError::new("model_path", e))?;
    let shape = fit(&graph.input_dims, wants.samples).map_err(|e| ParamError::new("window", e))?;
    let engine = Engine::Builtin { graph, shape };
    ran(engine.run(&vec![0.0; wants.samples], 1, &mut []), wants.samples)?;
    Ok(engine)
}

/// The result of one run on silence, so a model whose shapes do not fit fails validation.
fn ran(result: Result<Vec<Outputs>, String>, samples: usize) -> Result<(), ParamError> {
    result.map(drop).map_err(|e| ParamError::new("window", format!("the model does not run on a window of {samples} samples: {e}")))
}

fn ort(wants: &Wants<'_>, unsupported: &[String]) -> Result<Engine, ParamError> {
    let model = crate::model::onnxruntime(wants.path).map_err(|e| match e {
        LoadError::File(e) => ParamError::new("model_path", e),
        LoadError::Library(e) if !unsupported.is_empty() => ParamError::new(
            "engine",
            format!("the model's operators {} need onnxruntime (the built-in engine does not run them): {e}", unsupported.join(", ")),
        ),
        LoadError::Library(e) => ParamError::new("engine", e),
    })?;
    let find = |ports: &[Port], name: &str, what: &str, param: &str| {
        ports.iter().position(|p| p.name == name).ok_or_else(|| {
            let names: Vec<&str> = ports.iter().map(|p| p.name.as_str()).collect();
            ParamError::new(param, format!("the model has no {what} '{name}' (its {what}s: {})", names.join(", ")))
        })
    };
    let mut state = Vec::new();
    let mut state_zeros = Vec::new();
    for (i, (a, b)) in wants.state.iter().enumerate() {
        let param = format!("state[{i}]");
        let (input, output) = (find(&model.inputs, a, "input", &param)?, find(&model.outputs, b, "output", &param)?);
        let (pi, po) = (&model.inputs[input], &model.outputs[output]);
        let elem = pi.elem.ok_or_else(|| ParamError::new(&param, format!("input '{a}' is of a type the Model node does not take")))?;
        if pi.elem != po.elem || !compatible(&pi.dims, &po.dims) {
            return Err(ParamError::new(
                &param,
                format!(
                    "input '{a}' ({} {}) and output '{b}' ({} {}) differ, so one cannot carry the other",
                    elem.name(),
                    tensor::show_dims(&pi.dims),
                    po.elem.map_or("?", Elem::name),
                    tensor::show_dims(&po.dims)
                ),
            ));
        }
        let shape: Vec<i64> = pi.dims.iter().map(|d| d.unwrap_or(1)).collect();
        let n = shape.iter().product::<i64>() as usize;
        state.push((input, output));
        state_zeros.push(Tensor { shape, values: Values::zeros(elem, n) });
    }
    let mut constants = Vec::new();
    for (name, value) in wants.constants {
        let param = format!("constants.{name}");
        let input = find(&model.inputs, name, "input", &param)?;
        let elem = model.inputs[input]
            .elem
            .ok_or_else(|| ParamError::new(&param, format!("input '{name}' is of a type the Model node does not take")))?;
        let t = tensor::constant(value, elem, &model.inputs[input].dims).map_err(|e| ParamError::new(&param, e))?;
        constants.push((input, t));
    }
    let input = match wants.input {
        Some(name) => find(&model.inputs, name, "input", "input")?,
        None => (0..model.inputs.len())
            .find(|&i| !state.iter().any(|s| s.0 == i) && !constants.iter().any(|c| c.0 == i))
            .ok_or_else(|| ParamError::new("input", "every input of the model is state or a constant; none is left for the audio"))?,
    };
    let elem = match model.inputs[input].elem {
        Some(e @ (Elem::F32 | Elem::F16 | Elem::F64)) => e,
        other => {
            return Err(ParamError::new(
                "input",
                format!(
                    "input '{}' is {}, not a float tensor audio can fill",
                    model.inputs[input].name,
                    other.map_or("of another type", Elem::name)
                ),
            ));
        }
    };
    let fed = |i: usize| i == input || state.iter().any(|s| s.0 == i) || constants.iter().any(|c| c.0 == i);
    if let Some(p) = model.inputs.iter().enumerate().find(|(i, _)| !fed(*i)).map(|(_, p)| p) {
        return Err(ParamError::new(
            "constants",
            format!("the model's input '{}' is not fed: give it in constants, or pair it with an output in state", p.name),
        ));
    }
    if state.iter().any(|s| s.0 == input) || constants.iter().any(|c| c.0 == input) {
        return Err(ParamError::new(
            "input",
            format!("input '{}' is the audio input and cannot also be state or a constant", model.inputs[input].name),
        ));
    }
    let outputs = if wants.outputs.is_empty() {
        vec![(0..model.outputs.len()).find(|o| !state.iter().any(|s| s.1 == *o)).unwrap_or(0)]
    } else {
        wants.outputs.iter().map(|name| find(&model.outputs, name, "output", "output")).collect::<Result<_, _>>()?
    };
    if let Some(o) = outputs.iter().find(|&&o| model.outputs[o].elem.is_none()) {
        return Err(ParamError::new("output", format!("output '{}' is of a type the Model node does not give", model.outputs[*o].name)));
    }
    let shape: Vec<i64> =
        fit(&model.inputs[input].dims, wants.samples).map_err(|e| ParamError::new("window", e))?.into_iter().map(|d| d as i64).collect();
    let batchable = state.is_empty() && shape.len() >= 2 && shape[0] == 1 && model.inputs[input].dims[0].is_none();
    let mut run = OrtRun { model, input, elem, shape, outputs, state, state_zeros, constants, batch: 1 };
    let mut zeros = run.state_zeros.clone();
    ran(run.run(&vec![0.0; wants.samples], 1, &mut zeros), wants.samples)?;
    for (i, ((_, o), zero)) in run.state.iter().zip(&run.state_zeros).enumerate() {
        let got = &zeros[i];
        if got.shape != zero.shape {
            return Err(ParamError::new(
                format!("state[{i}]"),
                format!("output '{}' comes out as {:?}, but its input is {:?}", run.model.outputs[*o].name, got.shape, zero.shape),
            ));
        }
    }
    // batch only when every output keeps the windows on its first axis
    if batchable && wants.batch > 1 && run.run(&vec![0.0; 2 * wants.samples], 2, &mut []).is_ok() {
        run.batch = wants.batch;
    }
    Ok(Engine::Ort(run))
}

/// Whether two declared shapes can be the same (equal ranks, known dimensions equal).
fn compatible(a: &[Option<i64>], b: &[Option<i64>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.is_none() || y.is_none() || x == y)
}

impl OrtRun {
    fn run(&self, x: &[f32], n: usize, state: &mut [Tensor]) -> Result<Vec<Outputs>, String> {
        let mut shape = self.shape.clone();
        shape[0] *= n as i64;
        let converted;
        let window = match self.elem {
            Elem::F32 => Feed::F32(&shape, x),
            elem => {
                converted = Tensor { shape: shape.clone(), values: Values::from_f64(elem, x.iter().map(|&v| f64::from(v))) };
                Feed::Typed(&converted)
            }
        };
        let mut feeds = vec![(self.input, window)];
        feeds.extend(self.state.iter().zip(state.iter()).map(|((i, _), t)| (*i, Feed::Typed(t))));
        feeds.extend(self.constants.iter().map(|(i, t)| (*i, Feed::Typed(t))));
        let wanted: Vec<usize> = self.outputs.iter().chain(self.state.iter().map(|s| &s.1)).copied().collect();
        let mut got = self.model.run(&feeds, &wanted)?;
        for (slot, new) in state.iter_mut().zip(got.drain(self.outputs.len()..)) {
            *slot = new;
        }
        if n == 1 {
            return Ok(vec![got]);
        }
        let mut windows: Vec<Outputs> = (0..n).map(|_| Vec::with_capacity(got.len())).collect();
        for (o, t) in got.into_iter().enumerate() {
            if t.shape.first() != Some(&(n as i64)) {
                return Err(format!(
                    "output '{}' does not keep the windows of a batch on its first axis",
                    self.model.outputs[self.outputs[o]].name
                ));
            }
            let each = t.values.len() / n;
            let mut shape = t.shape.clone();
            shape[0] = 1;
            for (k, w) in windows.iter_mut().enumerate() {
                w.push(Tensor { shape: shape.clone(), values: t.values.slice(k * each..(k + 1) * each) });
            }
        }
        Ok(windows)
    }
}

/// The input shape for `samples` samples: the declared dimensions, unknown ones 1 except
/// the last unknown one, which takes what the known ones leave.
pub fn fit(dims: &[Option<i64>], samples: usize) -> Result<Vec<usize>, String> {
    let known: usize = dims.iter().filter_map(|d| d.filter(|&d| d > 0)).map(|d| d as usize).product();
    let mut shape: Vec<usize> = dims.iter().map(|d| d.filter(|&d| d > 0).map_or(1, |d| d as usize)).collect();
    match dims.iter().rposition(|d| d.is_none_or(|d| d <= 0)) {
        _ if dims.is_empty() => Ok(vec![samples]),
        Some(free) if samples.is_multiple_of(known) => {
            shape[free] = samples / known;
            Ok(shape)
        }
        None if known == samples => Ok(shape),
        _ => Err(format!("the model's input has shape {}, which does not take a window of {samples} samples", tensor::show_dims(dims))),
    }
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn windows_fit_the_declared_input() {
        assert_eq!(fit(&[Some(1), Some(400)], 400), Ok(vec![1, 400]));
        assert_eq!(fit(&[None, Some(1), None], 400), Ok(vec![1, 1, 400]));
        assert_eq!(fit(&[], 400), Ok(vec![400]));
        assert!(fit(&[Some(1), Some(512)], 400).is_err());
        assert!(fit(&[None, Some(3)], 400).is_err());
    }
}
