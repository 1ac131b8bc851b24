//! Structured logs of the core (`tracing`) delivered to the host through a callback.

use std::ffi::{c_char, c_void};
use std::sync::RwLock;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use crate::error::Error;

use super::{RmStatus, guard};
use crate::ffi::c_string;

/// Receives one log record. `level` is 1 (error) to 5 (trace); `target` (the Rust
/// module) and `message` (with `key=value` fields appended) are NUL-terminated UTF-8
/// owned by the library and valid only during the call. May be called from any thread
/// that runs pipelines, including worker threads; it must not unwind.
pub type RmLogCallback = Option<unsafe extern "C" fn(user_data: *mut c_void, level: u32, target: *const c_char, message: *const c_char)>;

struct Sink {
    callback: unsafe extern "C" fn(*mut c_void, u32, *const c_char, *const c_char),
    user_data: *mut c_void,
    max_level: u32,
}

// SAFETY: the host promises (see `rm_set_log_callback`) that the callback and its
// user data may be used from any thread.
unsafe impl Send for Sink {}
unsafe impl Sync for Sink {}

static SINK: RwLock<Option<Sink>> = RwLock::new(None);

fn level_number(level: &Level) -> u32 {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            self.0.push_str(&format!(" {}={value}", field.name()));
        }
    }
}

struct CallbackLayer;

impl<S: Subscriber> Layer<S> for CallbackLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let sink = SINK.read().unwrap_or_else(|e| e.into_inner());
        let Some(sink) = sink.as_ref() else { return };
        let level = level_number(event.metadata().level());
        if level > sink.max_level {
            return;
        }
        let mut message = Message::default();
        event.record(&mut message);
        let (target, text) = (c_string(event.metadata().target()), c_string(&message.0));
        unsafe { (sink.callback)(sink.user_data, level, target.as_ptr(), text.as_ptr()) };
    }
}

/// Sends the core's log records at `max_level` (1 error … 5 trace) and more severe to
/// `callback`, replacing any earlier callback; a NULL callback stops delivery.
/// `user_data` is passed back on every call and stays owned by the caller, who must
/// keep it valid until the callback is replaced. Fails with `RM_STATUS_INTERNAL` if the
/// process already has another global `tracing` subscriber. Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_set_log_callback(callback: RmLogCallback, user_data: *mut c_void, max_level: u32) -> RmStatus {
    guard(|| {
        static INSTALL: std::sync::Once = std::sync::Once::new();
        static INSTALLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        INSTALL.call_once(|| {
            let subscriber = tracing_subscriber::registry().with(CallbackLayer);
            INSTALLED.store(tracing::subscriber::set_global_default(subscriber).is_ok(), std::sync::atomic::Ordering::SeqCst);
        });
        if !INSTALLED.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::Internal("another global tracing subscriber is installed in this process".into()));
        }
        *SINK.write().unwrap_or_else(|e| e.into_inner()) = callback.map(|callback| Sink { callback, user_data, max_level });
        Ok(())
    })
}
