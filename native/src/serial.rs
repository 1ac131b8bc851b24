//! A mutex that serializes calls from many threads and refuses a re-entrant call from
//! the thread that holds it (a node callback calling back into its own pipeline), which
//! a plain mutex would turn into a deadlock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::error::{Error, Result};

/// Serialized access to a `T`: callers on other threads wait their turn.
pub struct Serial<T> {
    inner: Mutex<T>,
    /// The id of the thread holding `inner` (0: none).
    owner: AtomicU64,
}

/// Access to the value; dropping it lets the next caller in.
pub struct Turn<'a, T> {
    guard: MutexGuard<'a, T>,
    owner: &'a AtomicU64,
}

fn this_thread() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! { static ID: u64 = NEXT.fetch_add(1, Ordering::Relaxed); }
    ID.with(|id| *id)
}

impl<T> Serial<T> {
    pub fn new(value: T) -> Self {
        Self { inner: Mutex::new(value), owner: AtomicU64::new(0) }
    }

    /// Waits for the value; fails at once if this thread already holds it. `what`
    /// names the value in that error.
    pub fn lock(&self, what: &str) -> Result<Turn<'_, T>> {
        let me = this_thread();
        if self.owner.load(Ordering::Acquire) == me {
            return Err(Error::InvalidArgument(format!(
                "re-entrant call: this thread is already inside a call on this {what} (a node calling back into it?)"
            )));
        }
        let guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        self.owner.store(me, Ordering::Release);
        Ok(Turn { guard, owner: &self.owner })
    }
}

impl<T> Drop for Turn<'_, T> {
    fn drop(&mut self) {
        self.owner.store(0, Ordering::Release);
    }
}

impl<T> std::ops::Deref for Turn<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> std::ops::DerefMut for Turn<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn other_threads_wait_and_the_holder_is_refused() {
        let s = Arc::new(Serial::new(0u32));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        *s.lock("counter").unwrap() += 1;
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let held = s.lock("counter").unwrap();
        assert_eq!(*held, 8000);
        assert!(matches!(s.lock("counter"), Err(Error::InvalidArgument(m)) if m.contains("re-entrant")));
    }
}
