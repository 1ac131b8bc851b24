//! Typed tensors a model takes and gives on onnxruntime: the element types audio
//! models declare (float32, float16, float64, int64, int32, int8, uint8, bool), row-major.

use half::f16;
use serde_json::Value;

/// An element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem {
    F32,
    F16,
    F64,
    I64,
    I32,
    I8,
    U8,
    Bool,
}

impl Elem {
    pub fn name(self) -> &'static str {
        match self {
            Elem::F32 => "float32",
            Elem::F16 => "float16",
            Elem::F64 => "float64",
            Elem::I64 => "int64",
            Elem::I32 => "int32",
            Elem::I8 => "int8",
            Elem::U8 => "uint8",
            Elem::Bool => "bool",
        }
    }

    fn is_float(self) -> bool {
        matches!(self, Elem::F32 | Elem::F16 | Elem::F64)
    }
}

/// Values of one element type.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    F32(Vec<f32>),
    F16(Vec<f16>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    I32(Vec<i32>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    Bool(Vec<bool>),
}

/// A tensor: shape and row-major values.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<i64>,
    pub values: Values,
}

/// `$body` with `$v` bound to the vector inside `$values`, whatever its type.
macro_rules! each {
    ($values:expr, $v:ident => $body:expr) => {
        match $values {
            Values::F32($v) => $body,
            Values::F16($v) => $body,
            Values::F64($v) => $body,
            Values::I64($v) => $body,
            Values::I32($v) => $body,
            Values::I8($v) => $body,
            Values::U8($v) => $body,
            Values::Bool($v) => $body,
        }
    };
}
pub(crate) use each;

impl Values {
    /// `n` zeros of `elem`.
    pub fn zeros(elem: Elem, n: usize) -> Self {
        Self::from_f64(elem, std::iter::repeat_n(0.0, n))
    }

    /// `values` converted to `elem` (rounded toward zero for integers, saturating).
    pub fn from_f64(elem: Elem, values: impl Iterator<Item = f64>) -> Self {
        match elem {
            Elem::F32 => Values::F32(values.map(|x| x as f32).collect()),
            Elem::F16 => Values::F16(values.map(f16::from_f64).collect()),
            Elem::F64 => Values::F64(values.collect()),
            Elem::I64 => Values::I64(values.map(|x| x as i64).collect()),
            Elem::I32 => Values::I32(values.map(|x| x as i32).collect()),
            Elem::I8 => Values::I8(values.map(|x| x as i8).collect()),
            Elem::U8 => Values::U8(values.map(|x| x as u8).collect()),
            Elem::Bool => Values::Bool(values.map(|x| x != 0.0).collect()),
        }
    }

    pub fn len(&self) -> usize {
        each!(self, v => v.len())
    }

    /// The values as f64 (JSON events).
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            Values::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Values::F16(v) => v.iter().map(|&x| x.to_f64()).collect(),
            Values::F64(v) => v.clone(),
            Values::I64(v) => v.iter().map(|&x| x as f64).collect(),
            Values::I32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Values::I8(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Values::U8(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Values::Bool(v) => v.iter().map(|&x| f64::from(u8::from(x))).collect(),
        }
    }

    /// The values as f32 (audio out).
    pub fn into_f32(self) -> Vec<f32> {
        match self {
            Values::F32(v) => v,
            other => other.to_f64().into_iter().map(|x| x as f32).collect(),
        }
    }

    /// Values `range` of `self`, as a new vector of the same type.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Values {
        match self {
            Values::F32(v) => Values::F32(v[range].to_vec()),
            Values::F16(v) => Values::F16(v[range].to_vec()),
            Values::F64(v) => Values::F64(v[range].to_vec()),
            Values::I64(v) => Values::I64(v[range].to_vec()),
            Values::I32(v) => Values::I32(v[range].to_vec()),
            Values::I8(v) => Values::I8(v[range].to_vec()),
            Values::U8(v) => Values::U8(v[range].to_vec()),
            Values::Bool(v) => Values::Bool(v[range].to_vec()),
        }
    }
}

/// The constant a param gives for an input of type `elem` and declared `dims`: a number
/// (a scalar, or one element where the declared shape holds one) or a flat list (its
/// declared shape when that holds as many, else one dimension); or why it does not fit.
pub fn constant(value: &Value, elem: Elem, dims: &[Option<i64>]) -> Result<Tensor, String> {
    let numbers: Vec<f64> = match value {
        Value::Number(n) => vec![n.as_f64().ok_or("not a number")?],
        Value::Bool(b) => vec![f64::from(u8::from(*b))],
        Value::Array(items) => items.iter().map(|x| x.as_f64().ok_or_else(|| format!("{x} is not a number"))).collect::<Result<_, _>>()?,
        other => return Err(format!("{other} is not a number or a list of numbers")),
    };
    for &x in &numbers {
        if !elem.is_float() && (x.fract() != 0.0 || !in_range(elem, x)) {
            return Err(format!("{x} is not a value of the input's type {}", elem.name()));
        }
        if elem == Elem::Bool && value.is_number() {
            return Err(format!("{x} is not a value of the input's type bool (give true or false)"));
        }
    }
    let declared: Option<Vec<i64>> = dims.iter().map(|d| d.filter(|&d| d > 0)).collect();
    let shape = match declared {
        Some(shape) if shape.iter().product::<i64>() == numbers.len() as i64 => shape,
        _ if dims.is_empty() && numbers.len() == 1 && !value.is_array() => Vec::new(),
        _ if dims.len() == 1 || (dims.is_empty() && value.is_array()) => vec![numbers.len() as i64],
        _ => return Err(format!("{} values do not fit the input's shape {}", numbers.len(), show_dims(dims))),
    };
    Ok(Tensor { shape, values: Values::from_f64(elem, numbers.into_iter()) })
}

fn in_range(elem: Elem, x: f64) -> bool {
    let (lo, hi) = match elem {
        Elem::I64 => (i64::MIN as f64, i64::MAX as f64),
        Elem::I32 => (f64::from(i32::MIN), f64::from(i32::MAX)),
        Elem::I8 => (f64::from(i8::MIN), f64::from(i8::MAX)),
        Elem::U8 => (0.0, f64::from(u8::MAX)),
        Elem::Bool => (0.0, 1.0),
        _ => return true,
    };
    (lo..=hi).contains(&x)
}

/// Dimensions as ONNX tools print them: `[2, ?, 128]`.
pub fn show_dims(dims: &[Option<i64>]) -> String {
    let parts: Vec<String> = dims.iter().map(|d| d.filter(|&d| d >= 0).map_or("?".into(), |d| d.to_string())).collect();
    format!("[{}]", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn constants_take_the_declared_type_and_shape() {
        assert_eq!(constant(&json!(16000), Elem::I64, &[]).unwrap(), Tensor { shape: vec![], values: Values::I64(vec![16000]) });
        assert_eq!(constant(&json!(16000), Elem::I64, &[Some(1)]).unwrap().shape, vec![1]);
        assert_eq!(constant(&json!([1, 2, 3, 4]), Elem::F32, &[Some(2), Some(2)]).unwrap().shape, vec![2, 2]);
        assert_eq!(constant(&json!([1, 2, 3]), Elem::I8, &[None]).unwrap().values, Values::I8(vec![1, 2, 3]));
        assert!(constant(&json!(0.5), Elem::I64, &[]).unwrap_err().contains("int64"));
        assert!(constant(&json!(300), Elem::I8, &[]).is_err());
        assert!(constant(&json!("x"), Elem::F32, &[]).is_err());
        assert!(constant(&json!([1, 2, 3]), Elem::F32, &[Some(2), Some(2)]).unwrap_err().contains("[2, 2]"));
        assert!(constant(&json!(1), Elem::Bool, &[]).is_err());
        assert_eq!(constant(&json!(true), Elem::Bool, &[]).unwrap().values, Values::Bool(vec![true]));
    }

    #[test]
    fn values_convert_between_types() {
        let v = Values::from_f64(Elem::F16, [0.5, -2.0].into_iter());
        assert_eq!(v.to_f64(), vec![0.5, -2.0]);
        assert_eq!(Values::zeros(Elem::I8, 3), Values::I8(vec![0; 3]));
        assert_eq!(Values::I64(vec![1, 2, 3]).slice(1..3), Values::I64(vec![2, 3]));
        assert_eq!(Values::Bool(vec![true]).into_f32(), vec![1.0]);
    }
}
