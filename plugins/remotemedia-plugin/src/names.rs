//! Every value of the ABI's enums with its stable name, for listings and the generated
//! contract file. Kept out of `abi.rs`, which cbindgen turns into the C header.

use crate::abi::{RmStatus, SampleFormat};

impl RmStatus {
    /// Every status, in the order of their C values (which are dense from 0).
    pub const ALL: [RmStatus; 14] = [
        RmStatus::Ok,
        RmStatus::InvalidArgument,
        RmStatus::Manifest,
        RmStatus::Graph,
        RmStatus::Cycle,
        RmStatus::Node,
        RmStatus::Internal,
        RmStatus::Transient,
        RmStatus::QueueFull,
        RmStatus::Closed,
        RmStatus::CircuitOpen,
        RmStatus::Timeout,
        RmStatus::Cancelled,
        RmStatus::Plugin,
    ];

    /// The C name without its prefix: `OK`, `INVALID_ARGUMENT`, …
    pub fn name(self) -> &'static str {
        match self {
            RmStatus::Ok => "OK",
            RmStatus::InvalidArgument => "INVALID_ARGUMENT",
            RmStatus::Manifest => "MANIFEST",
            RmStatus::Graph => "GRAPH",
            RmStatus::Cycle => "CYCLE",
            RmStatus::Node => "NODE",
            RmStatus::Internal => "INTERNAL",
            RmStatus::Transient => "TRANSIENT",
            RmStatus::QueueFull => "QUEUE_FULL",
            RmStatus::Closed => "CLOSED",
            RmStatus::CircuitOpen => "CIRCUIT_OPEN",
            RmStatus::Timeout => "TIMEOUT",
            RmStatus::Cancelled => "CANCELLED",
            RmStatus::Plugin => "PLUGIN",
        }
    }
}

impl SampleFormat {
    /// Every format, in the order of their C values.
    pub const ALL: [SampleFormat; 4] = [SampleFormat::F32, SampleFormat::I16, SampleFormat::I32, SampleFormat::F64];

    /// The name used in manifests and by the Python runtime: `f32`, `i16`, `i32`, `f64`.
    pub fn name(self) -> &'static str {
        match self {
            SampleFormat::F32 => "f32",
            SampleFormat::I16 => "i16",
            SampleFormat::I32 => "i32",
            SampleFormat::F64 => "f64",
        }
    }
}
