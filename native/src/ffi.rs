//! Helpers for reading C arguments and writing C strings, at the bottom of the crate so
//! every layer that meets a C pointer (the C API, host and plugin nodes, data views)
//! shares one set of rules: a null pointer is an `InvalidArgument` naming the argument,
//! strings must be UTF-8, and an interior NUL written out becomes the two characters `\0`.

use std::ffi::{CStr, CString, c_char};

use crate::error::{Error, Result};

pub(crate) use remotemedia_plugin::c_string;

/// A non-null pointer as a reference, or an invalid-argument error naming `what`.
///
/// # Safety
/// A non-null `ptr` must be valid for reads of `T` for the returned lifetime.
pub(crate) unsafe fn arg<'a, T>(ptr: *const T, what: &str) -> Result<&'a T> {
    unsafe { ptr.as_ref() }.ok_or_else(|| null(what))
}

/// A non-null pointer as a mutable reference, or an invalid-argument error naming `what`.
///
/// # Safety
/// A non-null `ptr` must be valid for reads and writes of `T` and not aliased.
pub(crate) unsafe fn arg_mut<'a, T>(ptr: *mut T, what: &str) -> Result<&'a mut T> {
    unsafe { ptr.as_mut() }.ok_or_else(|| null(what))
}

/// `n` elements at `ptr` (which may be NULL only when `n` is 0), or an
/// invalid-argument error naming `what`.
///
/// # Safety
/// A non-null `ptr` must point to `n` readable `T`s that stay valid for the lifetime.
pub(crate) unsafe fn slice_arg<'a, T>(ptr: *const T, n: usize, what: &str) -> Result<&'a [T]> {
    match n {
        0 => Ok(&[]),
        // SAFETY: the caller provides `n` readable elements at a non-null `ptr`.
        _ => Ok(unsafe { std::slice::from_raw_parts(ptr.as_ref().ok_or_else(|| null(what))?, n) }),
    }
}

/// A NUL-terminated UTF-8 string argument.
///
/// # Safety
/// A non-null `ptr` must point to a NUL-terminated string valid for the returned lifetime.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, what: &str) -> Result<&'a str> {
    if ptr.is_null() {
        return Err(null(what));
    }
    unsafe { CStr::from_ptr(ptr) }.to_str().map_err(|_| Error::InvalidArgument(format!("{what} is not UTF-8")))
}

/// An optional NUL-terminated UTF-8 string (NULL gives `None`), copied.
///
/// # Safety
/// A non-null `ptr` must point to a NUL-terminated string.
pub(crate) unsafe fn optional_str_arg(ptr: *const c_char, what: &str) -> Result<Option<String>> {
    if ptr.is_null() { Ok(None) } else { unsafe { str_arg(ptr, what) }.map(|s| Some(s.to_string())) }
}

/// A UTF-8 string argument given as pointer and byte length (no NUL needed).
///
/// # Safety
/// A non-null `ptr` must point to `len` readable bytes valid for the returned lifetime.
pub(crate) unsafe fn str_len_arg<'a>(ptr: *const c_char, len: usize, what: &str) -> Result<&'a str> {
    if ptr.is_null() {
        return Err(null(what));
    }
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    std::str::from_utf8(bytes).map_err(|e| Error::InvalidArgument(format!("{what} is not UTF-8: {e}")))
}

/// `text` as a C string the caller owns and frees with `rm_string_free`.
pub(crate) fn into_raw_c_string(text: &str) -> *mut c_char {
    c_string(text).into_raw()
}

/// Frees a string made by [`into_raw_c_string`]; NULL is ignored.
///
/// # Safety
/// A non-null `ptr` must come from [`into_raw_c_string`] and not be used afterwards.
pub(crate) unsafe fn free_raw_c_string(ptr: *mut c_char) {
    if !ptr.is_null() {
        drop(unsafe { CString::from_raw(ptr) });
    }
}

fn null(what: &str) -> Error {
    Error::InvalidArgument(format!("{what} is null"))
}
