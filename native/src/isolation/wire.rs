//! What travels between host and child: call and reply headers (on the socket) and
//! items (in the region). Audio travels as its raw samples; only events are JSON.
//!
//! Everything read from the child is checked (lengths, formats, layout), so a
//! confused or hostile child can only make its own call fail.

use std::sync::Arc;

use crate::data::{AudioBuffer, Data, Sample, SampleBuf, SampleFormat, Samples, pooled_vec};
use crate::error::{FailureKind, NodeFailure};

/// What a call asks the child to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Process = 1,
    Flush = 2,
    Reset = 3,
}

impl Op {
    pub fn from_code(code: u64) -> Option<Self> {
        match code {
            1 => Some(Op::Process),
            2 => Some(Op::Flush),
            3 => Some(Op::Reset),
            _ => None,
        }
    }
}

/// A call: the operation, the region's size, and the input item's bytes at offset 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    pub op: u64,
    pub region_len: u64,
    pub input_len: u64,
}

/// A reply: `status` 0 with `n_items` outputs at `out_off..out_off+out_len` of the
/// region, or 1 with a failure of `kind` whose message (`msg_len` bytes) follows the
/// header on the socket. `latency` is the node's after the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reply {
    pub status: u64,
    pub kind: u64,
    pub region_len: u64,
    pub out_off: u64,
    pub out_len: u64,
    pub n_items: u64,
    pub latency: u64,
    pub msg_len: u64,
}

/// Longest failure message a reply may carry.
pub(crate) const MAX_MESSAGE: u64 = 1 << 16;

macro_rules! header {
    ($t:ident, $($f:ident),+) => {
        impl $t {
            pub const SIZE: usize = 8 * [$(stringify!($f)),+].len();
            pub fn encode(&self) -> [u8; Self::SIZE] {
                let mut out = [0u8; Self::SIZE];
                for (chunk, v) in out.chunks_exact_mut(8).zip([$(self.$f),+]) {
                    chunk.copy_from_slice(&v.to_le_bytes());
                }
                out
            }
            pub fn decode(bytes: &[u8; Self::SIZE]) -> Self {
                let mut words = bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")));
                Self { $($f: words.next().expect("sized")),+ }
            }
        }
    };
}
header!(Call, op, region_len, input_len);
header!(Reply, status, kind, region_len, out_off, out_len, n_items, latency, msg_len);

/// The code of a failure kind on the wire.
pub fn kind_code(kind: FailureKind) -> u64 {
    match kind {
        FailureKind::Permanent => 0,
        FailureKind::Transient => 1,
        FailureKind::Broken => 2,
        FailureKind::InvalidInput => 3,
        FailureKind::TimedOut => 4,
        FailureKind::Crashed => 5,
    }
}

/// The failure a reply reports.
pub fn failure(kind: u64, message: String) -> NodeFailure {
    let kind = match kind {
        1 => FailureKind::Transient,
        2 => FailureKind::Broken,
        3 => FailureKind::InvalidInput,
        _ => FailureKind::Permanent,
    };
    NodeFailure { message, kind }
}

/// Bytes of one item's header: port u32, kind u8, format u8, channels u16, rate u32,
/// reserved u32, payload length u64. Payloads start 8-byte aligned.
const ITEM_HEADER: usize = 24;
const AUDIO: u8 = 0;
const JSON: u8 = 1;

fn padded(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// An item's payload: audio samples as bytes, or an event's JSON text.
enum Payload<'a> {
    Audio(&'a AudioBuffer),
    Json(Vec<u8>),
}

fn payload(item: &Data) -> Payload<'_> {
    match item {
        Data::Audio(a) => Payload::Audio(a),
        Data::Json(v) => Payload::Json(serde_json::to_vec(&**v).unwrap_or_else(|_| b"null".to_vec())),
    }
}

fn payload_bytes<'a>(p: &'a Payload<'a>) -> &'a [u8] {
    match p {
        Payload::Audio(a) => a.samples().as_bytes(),
        Payload::Json(bytes) => bytes,
    }
}

/// Items ready to be written into a region: each event serialized once.
pub struct Encoded<'r>(Vec<(usize, Payload<'r>)>);

/// Prepares `items` (port, item) for [`Encoded::write`].
pub fn encode<'r>(items: impl Iterator<Item = (usize, &'r Data)>) -> Encoded<'r> {
    Encoded(items.map(|(port, item)| (port, payload(item))).collect())
}

impl Encoded<'_> {
    /// Bytes the items take in a region.
    pub fn len(&self) -> usize {
        self.0.iter().map(|(_, p)| ITEM_HEADER + padded(payload_bytes(p).len())).sum()
    }

    /// Writes the items into `buf` from `at`, which must have room for [`Self::len`]
    /// bytes; returns the bytes written.
    pub fn write(&self, buf: &mut [u8], at: usize) -> usize {
        let mut pos = at;
        for (port, p) in &self.0 {
            let bytes = payload_bytes(p);
            let (kind, format, channels, rate) = match p {
                Payload::Audio(a) => (AUDIO, a.samples().format() as u8, a.channels(), a.sample_rate()),
                Payload::Json(_) => (JSON, 0, 0, 0),
            };
            let h = &mut buf[pos..pos + ITEM_HEADER];
            h[0..4].copy_from_slice(&(*port as u32).to_le_bytes());
            h[4] = kind;
            h[5] = format;
            h[6..8].copy_from_slice(&channels.to_le_bytes());
            h[8..12].copy_from_slice(&rate.to_le_bytes());
            h[12..16].fill(0);
            h[16..24].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
            pos += ITEM_HEADER;
            buf[pos..pos + bytes.len()].copy_from_slice(bytes);
            pos += padded(bytes.len());
        }
        pos - at
    }
}

/// Reads `n` items from `bytes`, each a fresh owned item; `ports` is the node's number
/// of output ports. Any inconsistency is an error naming it.
pub fn read_items(bytes: &[u8], n: usize, ports: usize) -> Result<Vec<(usize, Data)>, String> {
    let mut items = Vec::with_capacity(n.min(bytes.len() / ITEM_HEADER));
    let mut pos = 0;
    for i in 0..n {
        let h = bytes.get(pos..pos + ITEM_HEADER).ok_or_else(|| format!("item {i} lies outside its region"))?;
        let word = |r: std::ops::Range<usize>| {
            u64::from_le_bytes({
                let mut w = [0u8; 8];
                w[..r.len()].copy_from_slice(&h[r]);
                w
            })
        };
        let (port, kind, format, channels, rate, len) =
            (word(0..4) as usize, h[4], h[5], word(6..8) as u16, word(8..12) as u32, word(16..24));
        if port >= ports.max(1) {
            return Err(format!("item {i} is on output port {port}; the node has {ports}"));
        }
        pos += ITEM_HEADER;
        let len = usize::try_from(len).map_err(|_| format!("item {i} is too long"))?;
        let body = pos.checked_add(len).and_then(|end| bytes.get(pos..end)).ok_or_else(|| format!("item {i} lies outside its region"))?;
        pos += padded(len);
        let data = match kind {
            AUDIO => {
                let format = SampleFormat::from_raw(format as u32).ok_or_else(|| format!("item {i} has sample format code {format}"))?;
                let samples = samples(body, format).ok_or_else(|| format!("item {i}: {len} bytes are not whole {format:?} samples"))?;
                Data::Audio(AudioBuffer::new(samples, channels, rate).map_err(|e| format!("item {i}: {e}"))?)
            }
            JSON => Data::Json(Arc::new(serde_json::from_slice(body).map_err(|e| format!("item {i} is not JSON: {e}"))?)),
            other => return Err(format!("item {i} has kind {other}")),
        };
        items.push((port, data));
    }
    Ok(items)
}

/// A pooled owned copy of `bytes` as samples of `format`.
fn samples(bytes: &[u8], format: SampleFormat) -> Option<Samples> {
    fn copy<T: Sample + bytemuck::Pod>(bytes: &[u8]) -> Option<SampleBuf<T>> {
        let size = std::mem::size_of::<T>();
        if !bytes.len().is_multiple_of(size) {
            return None;
        }
        let mut v: Vec<T> = pooled_vec(bytes.len() / size);
        v.resize(bytes.len() / size, T::zeroed());
        bytemuck::cast_slice_mut::<T, u8>(&mut v).copy_from_slice(bytes);
        Some(SampleBuf::owned(v))
    }
    Some(match format {
        SampleFormat::F32 => Samples::F32(copy(bytes)?),
        SampleFormat::I16 => Samples::I16(copy(bytes)?),
        SampleFormat::I32 => Samples::I32(copy(bytes)?),
        SampleFormat::F64 => Samples::F64(copy(bytes)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_round_trip_and_bad_bytes_are_refused() {
        let audio = AudioBuffer::new(Samples::I16(SampleBuf::owned(vec![1, -2, 3, 4, 5, 6])), 2, 48_000).unwrap();
        let items = [(0usize, Data::Audio(audio)), (1, Data::Json(Arc::new(serde_json::json!({"a": [1, 2]}))))];
        let encoded = encode(items.iter().map(|(p, d)| (*p, d)));
        let mut buf = vec![0; encoded.len()];
        let n = encoded.write(&mut buf, 0);
        assert_eq!(n, buf.len());
        let back = read_items(&buf[..n], 2, 2).unwrap();
        match &back[0] {
            (0, Data::Audio(a)) => {
                assert_eq!((a.channels(), a.sample_rate(), a.frames()), (2, 48_000, 3));
                assert!(matches!(a.samples(), Samples::I16(s) if **s == [1, -2, 3, 4, 5, 6]));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&back[1], (1, Data::Json(v)) if v["a"][1] == 2));
        assert!(read_items(&buf[..n], 3, 2).unwrap_err().contains("outside"));
        assert!(read_items(&buf[..n], 2, 1).unwrap_err().contains("port 1"));
        let mut bad = buf.clone();
        bad[4] = 9;
        assert!(read_items(&bad, 1, 2).unwrap_err().contains("kind 9"));
        bad = buf.clone();
        bad[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(read_items(&bad, 1, 2).is_err());
        bad = buf.clone();
        bad[6] = 0; // zero channels
        assert!(read_items(&bad, 1, 2).unwrap_err().contains("channel"));
        let call = Call { op: 1, region_len: 2, input_len: 3 };
        assert_eq!(Call::decode(&call.encode()), call);
        let reply = Reply { status: 1, kind: 5, region_len: 7, out_off: 64, out_len: 24, n_items: 1, latency: 9, msg_len: 3 };
        assert_eq!(Reply::decode(&reply.encode()), reply);
    }

    #[test]
    fn random_and_mutated_bytes_never_panic() {
        let audio = AudioBuffer::new(Samples::F64(SampleBuf::owned(vec![0.5; 6])), 3, 8_000).unwrap();
        let items = [(0usize, Data::Audio(audio)), (0, Data::Json(Arc::new(serde_json::json!([1]))))];
        let encoded = encode(items.iter().map(|(p, d)| (*p, d)));
        let mut good = vec![0; encoded.len()];
        encoded.write(&mut good, 0);
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for _ in 0..20_000 {
            let mut bytes = good.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() as usize) % bytes.len();
                bytes[at] = next() as u8;
            }
            bytes.truncate((next() as usize) % (bytes.len() + 1));
            let _ = read_items(&bytes, (next() % 4) as usize, 1 + (next() % 3) as usize);
        }
    }
}
