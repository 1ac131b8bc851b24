//! Per-node and per-pipeline metrics, exported as JSON (`docs/metrics.schema.json`)
//! and Prometheus text.
//!
//! Node call times go into a log-scale histogram (each octave split into 4 equal
//! buckets, so a percentile is exact to within 25%); counters are plain integers.
//! Recording one call costs one clock read (consecutive calls share timestamps) and
//! a few integer operations.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::alloc::Memory;
use crate::data::Data;

const BUCKETS: usize = 256;

/// Latency histogram in nanoseconds.
#[derive(Clone, Debug)]
pub struct Histogram {
    count: u64,
    total_ns: u64,
    min_ns: u64,
    max_ns: u64,
    buckets: Box<[u32; BUCKETS]>,
}

impl Default for Histogram {
    fn default() -> Self {
        Self { count: 0, total_ns: 0, min_ns: u64::MAX, max_ns: 0, buckets: Box::new([0; BUCKETS]) }
    }
}

impl Histogram {
    /// Bucket `4·octave + quarter`: the octave is the top bit, the quarter the next two.
    fn bucket(ns: u64) -> usize {
        if ns < 4 {
            return ns as usize;
        }
        let octave = 63 - ns.leading_zeros() as usize;
        (4 * octave + ((ns >> (octave - 2)) & 3) as usize).min(BUCKETS - 1)
    }

    /// The largest value in bucket `b`.
    fn upper(b: usize) -> f64 {
        if b < 4 {
            return b as f64;
        }
        let (octave, quarter) = (b / 4, b % 4);
        (((4 + quarter + 1) as f64) * 2f64.powi(octave as i32 - 2)) - 1.0
    }

    /// Adds one duration.
    pub fn record(&mut self, d: Duration) {
        let ns = d.as_nanos().min(u128::from(u64::MAX)) as u64;
        self.count += 1;
        self.total_ns += ns;
        self.min_ns = self.min_ns.min(ns);
        self.max_ns = self.max_ns.max(ns);
        self.buckets[Self::bucket(ns)] += 1;
    }

    /// The `q` quantile (0..=1) in nanoseconds: the upper edge of its bucket, clamped
    /// to the observed range.
    pub fn quantile_ns(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let target = (q * self.count as f64).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += u64::from(n);
            if seen >= target {
                return Self::upper(i).clamp(self.min_ns as f64, self.max_ns as f64);
            }
        }
        self.max_ns as f64
    }

    fn to_json(&self) -> Value {
        let us = |ns: f64| ns.round() / 1000.0; // µs with ns precision
        let (min, mean) = if self.count == 0 { (0.0, 0.0) } else { (self.min_ns as f64, self.total_ns as f64 / self.count as f64) };
        json!({
            "count": self.count,
            "total": us(self.total_ns as f64),
            "min": us(min),
            "max": us(self.max_ns as f64),
            "mean": us(mean),
            "p50": us(self.quantile_ns(0.50)),
            "p95": us(self.quantile_ns(0.95)),
            "p99": us(self.quantile_ns(0.99)),
        })
    }
}

/// Counters and timings of one node.
#[derive(Clone, Debug, Default)]
pub struct NodeMetrics {
    pub calls: u64,
    pub errors: u64,
    pub retries: u64,
    pub time: Histogram,
    pub items_in: u64,
    pub items_out: u64,
    pub samples_in: u64,
    pub samples_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

fn size(data: &Data) -> (u64, u64) {
    match data {
        Data::Audio(a) => {
            let n = a.samples().len() as u64;
            (n, n * a.samples().format().size() as u64)
        }
        Data::Json(_) => (0, 0),
    }
}

impl NodeMetrics {
    /// Counts an input item.
    pub fn input(&mut self, data: &Data) {
        let (samples, bytes) = size(data);
        self.items_in += 1;
        self.samples_in += samples;
        self.bytes_in += bytes;
    }

    /// Counts output items.
    pub fn outputs<'a>(&mut self, items: impl Iterator<Item = &'a Data>) {
        for data in items {
            let (samples, bytes) = size(data);
            self.items_out += 1;
            self.samples_out += samples;
            self.bytes_out += bytes;
        }
    }
}

/// Totals of a pipeline (or session).
#[derive(Clone, Debug, Default)]
pub struct PipelineMetrics {
    /// One-shot runs.
    pub runs: u64,
    /// Chunks pushed into a session.
    pub pushes: u64,
    /// Time spent inside runs, pushes and flushes.
    pub wall: Duration,
    /// Seconds of audio fed to the source nodes.
    pub audio_seconds: f64,
}

/// Most pushes the input clock remembers; an output older than all of them is timed
/// from the oldest.
pub(crate) const CLOCK_PUSHES: usize = 1024;

/// When the input's media time arrived: the media end time (seconds from the stream's
/// start) and start instant of each recent push.
#[derive(Debug, Default)]
pub struct InputClock {
    pushes: std::collections::VecDeque<(f64, Instant)>,
    media: f64,
}

impl InputClock {
    /// A push of `seconds` of audio began at `at`.
    pub fn push(&mut self, seconds: f64, at: Instant) {
        self.media += seconds;
        if self.pushes.len() == CLOCK_PUSHES {
            self.pushes.pop_front();
        }
        self.pushes.push_back((self.media, at));
    }

    /// Media time pushed so far, in seconds.
    pub fn media(&self) -> f64 {
        self.media
    }

    /// When the push that brought media time `t` began (the last push for a time past
    /// the input, as a flushed tail's).
    pub fn arrival(&self, t: f64) -> Option<Instant> {
        let i = self.pushes.partition_point(|&(end, _)| end < t - 1e-9);
        self.pushes.get(i).or(self.pushes.back()).map(|&(_, at)| at)
    }

    /// A new stream: media time starts again at 0.
    pub fn restart(&mut self) {
        self.pushes.clear();
        self.media = 0.0;
    }
}

/// Push→output latency of one sink output: each item is timed from the start of the
/// push that brought the input its media time ends at.
#[derive(Clone, Debug, Default)]
pub struct SinkMetrics {
    pub latency: Histogram,
    /// Items later than the sink's latency budget.
    pub overruns: u64,
    /// Its budget in ms, if the manifest sets one.
    pub budget_ms: Option<f64>,
    /// Audio frames emitted in this stream, and their rate: the media position.
    frames: u64,
    rate: u32,
}

impl SinkMetrics {
    /// Times an item emitted `now`: audio ends at the sink's media position, a JSON
    /// event at its `"end"` (else `"start"`) in seconds, else at the input's media time.
    pub fn record(&mut self, data: &Data, clock: &InputClock, now: Instant) {
        let t = match data {
            Data::Audio(a) => {
                if a.sample_rate() != self.rate {
                    (self.frames, self.rate) = (0, a.sample_rate());
                }
                self.frames += a.frames() as u64;
                self.frames as f64 / f64::from(self.rate)
            }
            Data::Json(v) => ["end", "start"].iter().find_map(|k| v.get(k).and_then(Value::as_f64)).unwrap_or(clock.media()),
        };
        let Some(at) = clock.arrival(t) else { return };
        let latency = now.saturating_duration_since(at);
        self.latency.record(latency);
        if self.budget_ms.is_some_and(|b| latency.as_secs_f64() * 1000.0 > b) {
            self.overruns += 1;
        }
    }

    /// A new stream: the media position starts again at 0.
    pub fn restart(&mut self) {
        self.frames = 0;
    }

    fn to_json(&self) -> Value {
        let ms = |ns: f64| (ns / 1000.0).round() / 1000.0; // ms with µs precision
        let h = &self.latency;
        json!({
            "latency_ms": {"count": h.count, "p50": ms(h.quantile_ns(0.5)), "p99": ms(h.quantile_ns(0.99)), "max": ms(h.max_ns as f64)},
            "budget_ms": self.budget_ms,
            "budget_overruns": self.overruns,
        })
    }
}

/// Identity of a node in exported metrics.
pub struct NodeLabel<'a> {
    pub id: &'a str,
    pub node_type: &'a str,
    pub runtime: &'a str,
    pub breaker: &'a str,
}

/// The metrics of a pipeline as JSON (see `docs/metrics.schema.json`); `sinks` are
/// its sink outputs by result key.
pub fn to_json(
    name: &str,
    pipeline: &PipelineMetrics,
    memory: &Memory,
    nodes: &[(NodeLabel<'_>, &NodeMetrics, &Memory)],
    sinks: &[(&str, &SinkMetrics)],
) -> Value {
    let wall_s = pipeline.wall.as_secs_f64();
    json!({
        "sinks": sinks.iter().map(|(key, m)| (key.to_string(), m.to_json())).collect::<serde_json::Map<_, _>>(),
        "pipeline": {
            "name": name,
            "runs": pipeline.runs,
            "pushes": pipeline.pushes,
            "wall_us": (wall_s * 1e6 * 1000.0).round() / 1000.0,
            "audio_seconds": pipeline.audio_seconds,
            "real_time_factor": if pipeline.audio_seconds > 0.0 { wall_s / pipeline.audio_seconds } else { 0.0 },
            "memory": memory.to_json(),
        },
        "nodes": nodes.iter().map(|(l, m, mem)| json!({
            "id": l.id,
            "node_type": l.node_type,
            "runtime": l.runtime,
            "breaker": l.breaker,
            "calls": m.calls,
            "errors": m.errors,
            "retries": m.retries,
            "time_us": m.time.to_json(),
            "items_in": m.items_in,
            "items_out": m.items_out,
            "samples_in": m.samples_in,
            "samples_out": m.samples_out,
            "bytes_in": m.bytes_in,
            "bytes_out": m.bytes_out,
            "memory": mem.to_json(),
        })).collect::<Vec<_>>(),
    })
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The same metrics in the Prometheus text exposition format.
pub fn to_prometheus(metrics: &Value) -> String {
    let mut out = String::new();
    let p = &metrics["pipeline"];
    let name = escape(p["name"].as_str().unwrap_or_default());
    let _ = writeln!(out, "# HELP remotemedia_pipeline_wall_seconds_total Time spent running the pipeline.");
    let _ = writeln!(out, "# TYPE remotemedia_pipeline_wall_seconds_total counter");
    let _ = writeln!(out, "remotemedia_pipeline_wall_seconds_total{{pipeline=\"{name}\"}} {}", p["wall_us"].as_f64().unwrap_or(0.0) / 1e6);
    let _ = writeln!(out, "# HELP remotemedia_pipeline_audio_seconds_total Seconds of audio fed to the pipeline.");
    let _ = writeln!(out, "# TYPE remotemedia_pipeline_audio_seconds_total counter");
    let _ = writeln!(out, "remotemedia_pipeline_audio_seconds_total{{pipeline=\"{name}\"}} {}", p["audio_seconds"]);
    let counters = [
        ("calls", "Node calls (process and flush)."),
        ("errors", "Node calls that failed."),
        ("retries", "Retried node calls."),
        ("items_in", "Items received."),
        ("items_out", "Items emitted."),
        ("samples_in", "Samples received."),
        ("samples_out", "Samples emitted."),
        ("bytes_in", "Sample bytes received."),
        ("bytes_out", "Sample bytes emitted."),
    ];
    let nodes = metrics["nodes"].as_array().cloned().unwrap_or_default();
    let labels = |n: &Value| {
        format!(
            "pipeline=\"{name}\",node=\"{}\",node_type=\"{}\",runtime=\"{}\"",
            escape(n["id"].as_str().unwrap_or_default()),
            escape(n["node_type"].as_str().unwrap_or_default()),
            escape(n["runtime"].as_str().unwrap_or_default())
        )
    };
    for (key, help) in counters {
        let _ = writeln!(out, "# HELP remotemedia_node_{key}_total {help}");
        let _ = writeln!(out, "# TYPE remotemedia_node_{key}_total counter");
        for n in &nodes {
            let _ = writeln!(out, "remotemedia_node_{key}_total{{{}}} {}", labels(n), n[key]);
        }
    }
    let _ = writeln!(out, "# HELP remotemedia_node_call_seconds Time per node call.");
    let _ = writeln!(out, "# TYPE remotemedia_node_call_seconds summary");
    for n in &nodes {
        let t = &n["time_us"];
        for (q, key) in [("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99")] {
            let _ =
                writeln!(out, "remotemedia_node_call_seconds{{{},quantile=\"{q}\"}} {}", labels(n), t[key].as_f64().unwrap_or(0.0) / 1e6);
        }
        let _ = writeln!(out, "remotemedia_node_call_seconds_sum{{{}}} {}", labels(n), t["total"].as_f64().unwrap_or(0.0) / 1e6);
        let _ = writeln!(out, "remotemedia_node_call_seconds_count{{{}}} {}", labels(n), t["count"]);
    }
    let sinks = metrics["sinks"].as_object().cloned().unwrap_or_default();
    let _ = writeln!(out, "# HELP remotemedia_sink_latency_seconds Push to output latency per sink output.");
    let _ = writeln!(out, "# TYPE remotemedia_sink_latency_seconds summary");
    for (key, s) in &sinks {
        let l = &s["latency_ms"];
        for (q, k) in [("0.5", "p50"), ("0.99", "p99")] {
            let _ = writeln!(
                out,
                "remotemedia_sink_latency_seconds{{pipeline=\"{name}\",sink=\"{}\",quantile=\"{q}\"}} {}",
                escape(key),
                l[k].as_f64().unwrap_or(0.0) / 1e3
            );
        }
        let _ = writeln!(out, "remotemedia_sink_latency_seconds_count{{pipeline=\"{name}\",sink=\"{}\"}} {}", escape(key), l["count"]);
    }
    let _ = writeln!(out, "# HELP remotemedia_sink_budget_overruns_total Sink outputs later than their latency budget.");
    let _ = writeln!(out, "# TYPE remotemedia_sink_budget_overruns_total counter");
    for (key, s) in &sinks {
        let _ = writeln!(
            out,
            "remotemedia_sink_budget_overruns_total{{pipeline=\"{name}\",sink=\"{}\"}} {}",
            escape(key),
            s["budget_overruns"]
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_split_octaves_in_quarters() {
        for ns in [0u64, 1, 3, 4, 5, 7, 8, 1000, 1023, 1024, 123_456_789] {
            let b = Histogram::bucket(ns);
            assert!(ns as f64 <= Histogram::upper(b), "{ns} above its bucket {b}");
            assert!(b == 0 || ns as f64 > Histogram::upper(b - 1), "{ns} fits bucket {}", b - 1);
        }
    }

    #[test]
    fn quantiles_are_within_a_bucket() {
        let mut h = Histogram::default();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        for (q, exact) in [(0.5, 500_000.0), (0.95, 950_000.0), (0.99, 990_000.0)] {
            let got = h.quantile_ns(q);
            assert!(got >= exact && got <= exact * 1.25 + 1.0, "q{q}: {got} vs {exact}");
        }
        assert_eq!(h.quantile_ns(1.0), 1_000_000.0);
        assert_eq!(Histogram::default().quantile_ns(0.5), 0.0);
    }
}
