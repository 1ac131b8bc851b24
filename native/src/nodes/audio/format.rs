//! FormatConverter: sample-format conversion by the crate's one convention.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use crate::convert::convert;
use crate::data::{Data, SampleFormat};
use crate::error::NodeFailure;
use crate::nodes::{Emitter, Implementation, Node, NodeSpec, ParamError, no_latency, parse_params};

pub fn spec() -> NodeSpec {
    NodeSpec {
        node_type: "FormatConverter".into(),
        description: "Converts samples to f32, i16, i32 or f64 (full scale ±1.0; rounding half to even, clipping, NaN → 0).".into(),
        params_schema: json!({
            "type": "object",
            "properties": {"format": {"enum": SampleFormat::ALL.map(SampleFormat::name)}},
            "required": ["format"],
            "additionalProperties": false
        }),
        outputs: vec!["out".into()],
        implementation: Implementation::Native,
        prefers_isolation: false,
        caps: Some(json!({"input": {"kind": "audio"}, "outputs": {"out": {"format": {"param": "format"}}}})),
        latency: no_latency(),
        create: Arc::new(|params| {
            let p: Params = parse_params(params)?;
            let to = SampleFormat::ALL.into_iter().find(|f| f.name() == p.format).ok_or_else(|| {
                let names = SampleFormat::ALL.map(SampleFormat::name).join(", ");
                ParamError::new("format", format!("unknown format `{}`, expected one of {names}", p.format))
            })?;
            Ok(Box::new(FormatConverter { to }))
        }),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    format: String,
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
