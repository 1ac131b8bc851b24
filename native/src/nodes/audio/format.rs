//! FormatConverter: sample-format conversion by the crate's one convention.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use crate::convert::convert;
use crate::data::{Data, SampleFormat};
use crate::error::NodeFailure;
use crate::nodes::{Emitter, Implementation, Node, NodeSpec, parse_params};

pub fn spec() -> NodeSpec {
    NodeSpec {
        node_type: "FormatConverter".into(),
        description: "Converts samples to f32, i16, i32 or f64 (full scale ±1.0; rounding half to even, clipping, NaN → 0).".into(),
        params_schema: json!({
            "type": "object",
            "properties": {"format": {"enum": ["f32", "i16", "i32", "f64"]}},
            "required": ["format"],
            "additionalProperties": false
        }),
        outputs: vec!["out".into()],
        implementation: Implementation::Native,
        create: Arc::new(|params| {
            let p: Params = parse_params(params)?;
            Ok(Box::new(FormatConverter { to: p.format.into() }))
        }),
    }
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Format {
    F32,
    I16,
    I32,
    F64,
}

impl From<Format> for SampleFormat {
    fn from(f: Format) -> Self {
        match f {
            Format::F32 => SampleFormat::F32,
            Format::I16 => SampleFormat::I16,
            Format::I32 => SampleFormat::I32,
            Format::F64 => SampleFormat::F64,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    format: Format,
}

struct FormatConverter {
    to: SampleFormat,
}

impl Node for FormatConverter {
    fn process(&mut self, input: &Data, out: &mut Emitter) -> Result<(), NodeFailure> {
        let audio = super::audio(input, "FormatConverter")?;
        if audio.samples().format() == self.to {
            out.emit(input.clone());
            return Ok(());
        }
        let converted = audio.with_samples(convert(audio.samples(), self.to)).map_err(|e| NodeFailure::new(e.to_string()))?;
        out.emit(Data::Audio(converted));
        Ok(())
    }
}
