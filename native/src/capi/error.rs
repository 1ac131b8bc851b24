//! Status codes and the thread-local last error.

use std::cell::RefCell;
use std::ffi::{CString, c_char};

use crate::ffi::c_string;

use crate::error::Error;

pub use remotemedia_plugin::abi::RmStatus;

struct LastError {
    message: CString,
    node_id: Option<CString>,
    operation: Option<CString>,
    path: Option<CString>,
    retryable: bool,
}

thread_local! {
    static LAST: RefCell<Option<LastError>> = const { RefCell::new(None) };
}

pub(crate) fn clear() {
    LAST.with(|l| l.borrow_mut().take());
}

/// Stores `e` as this thread's last error and returns its status.
pub(crate) fn record(e: &Error) -> RmStatus {
    let last = LastError {
        message: c_string(&e.to_string()),
        node_id: e.node_id().map(c_string),
        operation: e.operation().map(|o| c_string(o.as_str())),
        path: e.path().map(c_string),
        retryable: e.is_retryable(),
    };
    LAST.with(|l| *l.borrow_mut() = Some(last));
    e.status()
}

/// Reads the last error with panics caught (`fallback` if one happens).
fn with_last<T>(fallback: T, f: impl FnOnce(Option<&LastError>) -> T) -> T {
    crate::error::catch(|| LAST.with(|l| f(l.borrow().as_ref()))).unwrap_or(fallback)
}

/// One optional string of the last error, or NULL.
fn optional(field: impl FnOnce(&LastError) -> Option<&CString>) -> *const c_char {
    with_last(std::ptr::null(), |l| l.and_then(field).map_or(std::ptr::null(), |s| s.as_ptr()))
}

/// Message of the last failed call on this thread, or "" if the last call succeeded.
///
/// The string is owned by the library and stays valid until the next `rm_*` call on
/// the same thread; copy it to keep it. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn rm_last_error_message() -> *const c_char {
    with_last(c"".as_ptr(), |l| l.map_or(c"".as_ptr(), |l| l.message.as_ptr()))
}

/// Id of the node the last error on this thread belongs to, or NULL if none.
/// Owned by the library; valid until the next `rm_*` call on the same thread.
#[unsafe(no_mangle)]
pub extern "C" fn rm_last_error_node_id() -> *const c_char {
    optional(|l| l.node_id.as_ref())
}

/// Node operation ("create", "configure", "process", "flush", "reset") of the last error on this
/// thread, or NULL if none. Owned by the library; valid until the next `rm_*` call on
/// the same thread.
#[unsafe(no_mangle)]
pub extern "C" fn rm_last_error_operation() -> *const c_char {
    optional(|l| l.operation.as_ref())
}

/// Manifest path of the last error on this thread (such as `nodes[0].params.gain_db`,
/// or `$` for the whole manifest) when it is `RM_STATUS_MANIFEST`; for
/// `RM_STATUS_PLUGIN`, the params a plugin node's `create` refused (`nodes[0].params`);
/// else NULL. Owned by
/// the library; valid until the next `rm_*` call on the same thread.
#[unsafe(no_mangle)]
pub extern "C" fn rm_last_error_path() -> *const c_char {
    optional(|l| l.path.as_ref())
}

/// True when the last error on this thread may succeed if the call is repeated.
#[unsafe(no_mangle)]
pub extern "C" fn rm_last_error_retryable() -> bool {
    with_last(false, |l| l.is_some_and(|l| l.retryable))
}
