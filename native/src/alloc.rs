//! The library's global allocator: `System`, plus attribution of heap memory to the
//! node (or pipeline) whose code runs on the allocating thread.
//!
//! While a node call runs, a thread-local pointer names that node's [`Memory`]
//! counters (see [`attribute`]); every Rust allocation and free on that thread in the
//! meantime is counted there. Not counted: memory allocated by other allocators
//! (Python objects and numpy arrays of Python nodes, C plugins' `malloc`), and work
//! a node hands to other threads. A buffer allocated by one node and freed by another
//! is counted as allocated by the first and freed by the second.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Allocations at least this large count as payload-sized ("large").
pub const LARGE: usize = 1024;

/// Heap counters of one node or pipeline.
#[derive(Debug, Default)]
pub struct Memory {
    pub allocations: AtomicU64,
    pub allocated_bytes: AtomicU64,
    pub freed_bytes: AtomicU64,
    /// Allocations of at least [`LARGE`] bytes.
    pub large_allocations: AtomicU64,
}

/// Adds to a counter that only one thread writes at a time: a plain load and store,
/// much cheaper than an atomic read-modify-write on every allocation. A `Memory` is
/// written only by the thread running its node's call (calls of one instance never
/// overlap) or its pipeline's push; readers on other threads still see whole values.
fn bump(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Ordering::Relaxed) + by, Ordering::Relaxed);
}

impl Memory {
    fn allocated(&self, size: usize) {
        bump(&self.allocations, 1);
        bump(&self.allocated_bytes, size as u64);
        if size >= LARGE {
            bump(&self.large_allocations, 1);
        }
    }

    fn freed(&self, size: usize) {
        bump(&self.freed_bytes, size as u64);
    }

    /// Adds `other`'s counts to these.
    pub fn add(&self, other: &Memory) {
        for (a, b) in [
            (&self.allocations, &other.allocations),
            (&self.allocated_bytes, &other.allocated_bytes),
            (&self.freed_bytes, &other.freed_bytes),
            (&self.large_allocations, &other.large_allocations),
        ] {
            bump(a, b.load(Ordering::Relaxed));
        }
    }

    /// The counters as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        serde_json::json!({
            "measured": true,
            "allocations": get(&self.allocations),
            "allocated_bytes": get(&self.allocated_bytes),
            "freed_bytes": get(&self.freed_bytes),
            "large_allocations": get(&self.large_allocations),
        })
    }
}

thread_local! {
    static CURRENT: Cell<*const Memory> = const { Cell::new(std::ptr::null()) };
}

fn with_current(f: impl FnOnce(&Memory)) {
    // `try_with`: during thread teardown the slot may be gone; such frees go uncounted.
    let _ = CURRENT.try_with(|c| {
        // SAFETY: `attribute` keeps the pointee alive while the pointer is installed.
        if let Some(m) = unsafe { c.get().as_ref() } {
            f(m);
        }
    });
}

/// Runs `f` with this thread's allocations counted in `memory`, then restores the
/// previous attribution (so scopes nest).
pub fn attribute<T>(memory: &Memory, f: impl FnOnce() -> T) -> T {
    struct Restore(*const Memory);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = CURRENT.try_with(|c| c.set(self.0));
        }
    }
    let previous = CURRENT.with(|c| c.replace(memory));
    let _restore = Restore(previous);
    f()
}

/// The attributing allocator.
pub struct Attributing;

// SAFETY: every call forwards to `System` unchanged; the counting touches only atomics
// and a const-initialized thread-local, and never allocates.
unsafe impl GlobalAlloc for Attributing {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            with_current(|m| m.allocated(layout.size()));
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            with_current(|m| m.allocated(layout.size()));
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        with_current(|m| m.freed(layout.size()));
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            with_current(|m| {
                m.freed(layout.size());
                m.allocated(new_size);
            });
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Attributing = Attributing;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_are_attributed_to_the_innermost_scope() {
        let outer = Memory::default();
        let inner = Memory::default();
        attribute(&outer, || {
            let a = vec![0u8; 2000];
            attribute(&inner, || drop(vec![0u8; 100]));
            drop(a);
        });
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        assert_eq!((n(&outer.allocations), n(&outer.large_allocations)), (1, 1));
        assert_eq!((n(&outer.allocated_bytes), n(&outer.freed_bytes)), (2000, 2000));
        assert_eq!((n(&inner.allocated_bytes), n(&inner.freed_bytes), n(&inner.large_allocations)), (100, 100, 0));
        drop(vec![0u8; 5000]);
        assert_eq!(n(&outer.allocations), 1, "nothing counted outside a scope");
    }
}
