//! Typed audio buffers and the items that travel along graph edges.
//!
//! Samples are interleaved. A buffer is either shared (`Arc`, cloned for free on
//! fan-out) or borrowed from the caller for the duration of one run, which is how a
//! numpy array reaches the first node without a copy.

use std::ops::Deref;
use std::sync::Arc;

use serde_json::Value;

use crate::error::{Error, Result};

/// Sample encoding of an audio buffer (defined by the node ABI, with the one scaling
/// convention for conversions).
pub use remotemedia_plugin::abi::SampleFormat;

enum Repr<T> {
    Shared(Arc<Vec<T>>),
    Borrowed { ptr: *const T, len: usize },
}

/// An immutable run of samples, shared or borrowed; cloning never copies samples.
///
/// When the last clone of a shared buffer drops, its `Vec` goes back to the pool of
/// its sample type ([`pooled_vec`]), so a stream in steady state reuses its buffers
/// instead of allocating payload-sized memory per chunk.
pub struct SampleBuf<T: Sample> {
    repr: Repr<T>,
}

/// Largest buffer (in samples) kept in a pool, and most buffers kept per sample type.
const POOL_MAX_SAMPLES: usize = 1 << 20;
const POOL_MAX_BUFFERS: usize = 64;

/// An empty `Vec` with room for at least `capacity` samples, from the pool if it holds
/// one big enough.
pub fn pooled_vec<T: Sample>(capacity: usize) -> Vec<T> {
    let mut pool = T::pool().lock().unwrap_or_else(|e| e.into_inner());
    match pool.iter().rposition(|v| v.capacity() >= capacity) {
        Some(i) => pool.swap_remove(i),
        None => Vec::with_capacity(capacity),
    }
}

fn recycle<T: Sample>(mut v: Vec<T>) {
    if v.capacity() == 0 || v.capacity() > POOL_MAX_SAMPLES {
        return;
    }
    v.clear();
    let mut pool = T::pool().lock().unwrap_or_else(|e| e.into_inner());
    if pool.len() < POOL_MAX_BUFFERS {
        pool.push(v);
    }
}

impl<T: Sample> Drop for SampleBuf<T> {
    fn drop(&mut self) {
        let repr = std::mem::replace(&mut self.repr, Repr::Borrowed { ptr: std::ptr::null(), len: 0 });
        if let Repr::Shared(arc) = repr
            && let Ok(v) = Arc::try_unwrap(arc)
        {
            recycle(v);
        }
    }
}

// SAFETY: a Borrowed buffer is only created through `SampleBuf::borrowed`, whose caller
// promises the memory stays valid and unmodified while any clone lives; the data is
// read-only, so sharing across threads is sound.
unsafe impl<T: Sample> Send for SampleBuf<T> {}
unsafe impl<T: Sample> Sync for SampleBuf<T> {}

impl<T: Sample> SampleBuf<T> {
    /// Takes ownership of `samples`.
    pub fn owned(samples: Vec<T>) -> Self {
        Self { repr: Repr::Shared(Arc::new(samples)) }
    }

    /// Views memory owned by the caller without copying.
    ///
    /// # Safety
    /// `slice` must stay valid and unmodified until every clone of the returned buffer
    /// is dropped or made owned with [`SampleBuf::into_owned`].
    pub unsafe fn borrowed(slice: &[T]) -> Self {
        Self { repr: Repr::Borrowed { ptr: slice.as_ptr(), len: slice.len() } }
    }

    /// True when this buffer views caller memory.
    pub fn is_borrowed(&self) -> bool {
        matches!(self.repr, Repr::Borrowed { .. })
    }

    /// A buffer that owns its samples: itself when shared, a (pooled) copy when borrowed.
    pub fn into_owned(self) -> Self {
        match self.repr {
            Repr::Shared(_) => self,
            Repr::Borrowed { .. } => {
                let mut v = pooled_vec(self.len());
                v.extend_from_slice(&self);
                Self::owned(v)
            }
        }
    }
}

impl<T: Sample> Clone for SampleBuf<T> {
    fn clone(&self) -> Self {
        let repr = match &self.repr {
            Repr::Shared(a) => Repr::Shared(a.clone()),
            Repr::Borrowed { ptr, len } => Repr::Borrowed { ptr: *ptr, len: *len },
        };
        Self { repr }
    }
}

impl<T: Sample> std::fmt::Debug for SampleBuf<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if matches!(self.repr, Repr::Borrowed { .. }) { "borrowed" } else { "shared" };
        write!(f, "SampleBuf({kind}, {} samples)", self.len())
    }
}

impl<T: Sample> Deref for SampleBuf<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match &self.repr {
            Repr::Shared(a) => a,
            // SAFETY: guaranteed valid by the contract of `SampleBuf::borrowed`.
            Repr::Borrowed { ptr, len } => unsafe { std::slice::from_raw_parts(*ptr, *len) },
        }
    }
}

/// A sample type of one of the supported formats, for code generic over formats.
pub trait Sample: Copy + Default + Send + Sync + 'static {
    /// The format of this type.
    const FORMAT: SampleFormat;
    /// The typed buffer of `samples`, if they are of this type.
    fn buf(samples: &Samples) -> Option<&SampleBuf<Self>>;
    /// Wraps owned samples of this type.
    fn wrap(samples: Vec<Self>) -> Samples;
    /// Spare buffers of this type (see [`pooled_vec`]).
    fn pool() -> &'static std::sync::Mutex<Vec<Vec<Self>>>;
}

macro_rules! impl_sample {
    ($t:ty, $variant:ident) => {
        impl Sample for $t {
            const FORMAT: SampleFormat = SampleFormat::$variant;
            fn buf(samples: &Samples) -> Option<&SampleBuf<Self>> {
                match samples {
                    Samples::$variant(b) => Some(b),
                    _ => None,
                }
            }
            fn wrap(samples: Vec<Self>) -> Samples {
                Samples::$variant(SampleBuf::owned(samples))
            }
            fn pool() -> &'static std::sync::Mutex<Vec<Vec<Self>>> {
                static POOL: std::sync::Mutex<Vec<Vec<$t>>> = std::sync::Mutex::new(Vec::new());
                &POOL
            }
        }
    };
}
impl_sample!(f32, F32);
impl_sample!(i16, I16);
impl_sample!(i32, I32);
impl_sample!(f64, F64);

/// Samples of one of the supported formats.
#[derive(Clone, Debug)]
pub enum Samples {
    F32(SampleBuf<f32>),
    I16(SampleBuf<i16>),
    I32(SampleBuf<i32>),
    F64(SampleBuf<f64>),
}

/// Applies the same expression to whichever typed buffer a `Samples` holds.
macro_rules! with_samples {
    ($samples:expr, $buf:ident => $body:expr) => {
        match $samples {
            Samples::F32($buf) => $body,
            Samples::I16($buf) => $body,
            Samples::I32($buf) => $body,
            Samples::F64($buf) => $body,
        }
    };
}

impl Samples {
    /// The sample encoding.
    pub fn format(&self) -> SampleFormat {
        match self {
            Samples::F32(_) => SampleFormat::F32,
            Samples::I16(_) => SampleFormat::I16,
            Samples::I32(_) => SampleFormat::I32,
            Samples::F64(_) => SampleFormat::F64,
        }
    }

    /// Number of samples (all channels).
    pub fn len(&self) -> usize {
        with_samples!(self, b => b.len())
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Address of the first sample.
    pub fn as_ptr(&self) -> *const u8 {
        with_samples!(self, b => b.as_ptr().cast())
    }

    /// The samples' bytes, in native byte order.
    pub fn as_bytes(&self) -> &[u8] {
        with_samples!(self, b => bytemuck::cast_slice(&b[..]))
    }

    /// True when the samples view caller memory.
    pub fn is_borrowed(&self) -> bool {
        with_samples!(self, b => b.is_borrowed())
    }

    /// Owned samples: no copy unless borrowed.
    pub fn into_owned(self) -> Self {
        match self {
            Samples::F32(b) => Samples::F32(b.into_owned()),
            Samples::I16(b) => Samples::I16(b.into_owned()),
            Samples::I32(b) => Samples::I32(b.into_owned()),
            Samples::F64(b) => Samples::F64(b.into_owned()),
        }
    }

    /// Views raw caller memory as samples of `format`.
    ///
    /// # Safety
    /// `ptr` must point to `len` readable samples of `format`, aligned for that type,
    /// valid and unmodified as required by [`SampleBuf::borrowed`]. `ptr` may be null
    /// only when `len` is 0.
    pub unsafe fn borrow_raw(ptr: *const u8, len: usize, format: SampleFormat) -> Result<Self> {
        if len == 0 {
            return Ok(match format {
                SampleFormat::F32 => Samples::F32(SampleBuf::owned(Vec::new())),
                SampleFormat::I16 => Samples::I16(SampleBuf::owned(Vec::new())),
                SampleFormat::I32 => Samples::I32(SampleBuf::owned(Vec::new())),
                SampleFormat::F64 => Samples::F64(SampleBuf::owned(Vec::new())),
            });
        }
        if ptr.is_null() {
            return Err(Error::InvalidArgument("null sample pointer with non-zero length".into()));
        }
        let size =
            len.checked_mul(format.size()).ok_or_else(|| Error::InvalidArgument(format!("{len} samples overflow the address space")))?;
        // SAFETY: the caller guarantees `len` readable samples (`size` bytes) at `ptr`.
        let bytes = unsafe { std::slice::from_raw_parts(ptr, size) };
        fn view<T: Sample + bytemuck::Pod>(bytes: &[u8]) -> Result<SampleBuf<T>> {
            // bytemuck checks alignment and size; no byte is copied.
            let typed: &[T] = bytemuck::try_cast_slice(bytes)
                .map_err(|e| Error::InvalidArgument(format!("sample pointer is not usable as {}: {e:?}", std::any::type_name::<T>())))?;
            // SAFETY: validity for the buffer's life is the caller's contract (see above).
            Ok(unsafe { SampleBuf::borrowed(typed) })
        }
        Ok(match format {
            SampleFormat::F32 => Samples::F32(view(bytes)?),
            SampleFormat::I16 => Samples::I16(view(bytes)?),
            SampleFormat::I32 => Samples::I32(view(bytes)?),
            SampleFormat::F64 => Samples::F64(view(bytes)?),
        })
    }
}

/// Interleaved audio with its layout.
#[derive(Clone, Debug)]
pub struct AudioBuffer {
    samples: Samples,
    channels: u16,
    sample_rate: u32,
}

impl AudioBuffer {
    /// Checks the layout: at least one channel, a positive rate, whole frames.
    pub fn new(samples: Samples, channels: u16, sample_rate: u32) -> Result<Self> {
        if channels == 0 {
            return Err(Error::InvalidArgument("audio must have at least one channel".into()));
        }
        if sample_rate == 0 {
            return Err(Error::InvalidArgument("audio sample_rate must be positive".into()));
        }
        if !samples.len().is_multiple_of(channels as usize) {
            return Err(Error::InvalidArgument(format!("{} samples do not make whole frames of {} channels", samples.len(), channels)));
        }
        Ok(Self { samples, channels, sample_rate })
    }

    /// The samples.
    pub fn samples(&self) -> &Samples {
        &self.samples
    }
    /// Channel count (interleaved).
    pub fn channels(&self) -> u16 {
        self.channels
    }
    /// Frames per second.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }
    /// Number of frames.
    pub fn frames(&self) -> usize {
        self.samples.len() / self.channels as usize
    }
    /// Same layout, other samples (which must make whole frames).
    pub fn with_samples(&self, samples: Samples) -> Result<Self> {
        Self::new(samples, self.channels, self.sample_rate)
    }
    /// Owned audio: no copy unless borrowed.
    pub fn into_owned(self) -> Self {
        Self { samples: self.samples.into_owned(), ..self }
    }
}

/// One item on an edge: audio, or a structured event (never audio encoded as JSON).
#[derive(Clone, Debug)]
pub enum Data {
    Audio(AudioBuffer),
    Json(Arc<Value>),
}

impl Data {
    /// Owned data: no copy unless the audio is borrowed.
    pub fn into_owned(self) -> Self {
        match self {
            Data::Audio(a) => Data::Audio(a.into_owned()),
            json => json,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_becomes_owned_copy() {
        let v = vec![1.0f32, 2.0, 3.0];
        let b = unsafe { SampleBuf::borrowed(&v) };
        assert!(b.is_borrowed());
        let o = b.into_owned();
        assert!(!o.is_borrowed());
        assert_ne!(o.as_ptr(), v.as_ptr());
        assert_eq!(&*o, &v[..]);
    }

    #[test]
    fn clone_of_shared_does_not_copy() {
        let a = SampleBuf::owned(vec![1i16, 2, 3]);
        let b = a.clone();
        assert_eq!(a.as_ptr(), b.as_ptr());
    }

    #[test]
    fn layout_is_checked() {
        let s = Samples::F32(SampleBuf::owned(vec![0.0; 5]));
        assert!(AudioBuffer::new(s.clone(), 2, 48000).is_err());
        assert!(AudioBuffer::new(s.clone(), 0, 48000).is_err());
        assert!(AudioBuffer::new(s.clone(), 1, 0).is_err());
        assert_eq!(AudioBuffer::new(s, 5, 8000).unwrap().frames(), 1);
    }

    #[test]
    fn misaligned_and_null_pointers_are_rejected() {
        let v = [0u8; 16];
        assert!(unsafe { Samples::borrow_raw(v.as_ptr().wrapping_add(1), 2, SampleFormat::F32) }.is_err());
        assert!(unsafe { Samples::borrow_raw(std::ptr::null(), 2, SampleFormat::I16) }.is_err());
        assert!(unsafe { Samples::borrow_raw(std::ptr::null(), 0, SampleFormat::I16) }.unwrap().is_empty());
    }
}
