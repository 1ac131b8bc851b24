//! The process-wide inference thread budget: at most N model calls (both engines: the
//! built-in forwards and onnxruntime) run at once in the process, each on the thread
//! that calls it with one intra-op thread. A call over the budget waits, blocked (no
//! spinning), until one ends. N is `REMOTEMEDIA_INFERENCE_THREADS` when set, else the
//! number of CPUs the process may use; [`set_threads`] (`rm_set_inference_threads`,
//! `remotemedia.set_inference_threads`) changes it at any time.

use std::sync::{Condvar, Mutex};

/// The environment variable read for the budget.
pub const ENV: &str = "REMOTEMEDIA_INFERENCE_THREADS";
/// The largest budget accepted.
pub const MAX_THREADS: usize = 1024;

struct Budget {
    /// The budget; 0 until first read.
    limit: usize,
    running: usize,
}

static BUDGET: Mutex<Budget> = Mutex::new(Budget { limit: 0, running: 0 });
static FREED: Condvar = Condvar::new();

/// The budget when nothing set it: the environment variable, else the CPUs available.
fn initial() -> usize {
    match std::env::var(ENV).ok().and_then(|v| v.trim().parse::<usize>().ok()) {
        Some(n) if (1..=MAX_THREADS).contains(&n) => n,
        _ => std::thread::available_parallelism().map_or(1, usize::from),
    }
}

fn lock() -> std::sync::MutexGuard<'static, Budget> {
    let mut b = BUDGET.lock().unwrap_or_else(|p| p.into_inner());
    if b.limit == 0 {
        b.limit = initial();
    }
    b
}

/// Sets the budget to `n` threads (1..=[`MAX_THREADS`]), effective for calls that start
/// from now on; or why `n` is refused.
pub fn set_threads(n: usize) -> Result<(), String> {
    if !(1..=MAX_THREADS).contains(&n) {
        return Err(format!("the inference thread budget must be 1..={MAX_THREADS}, not {n}"));
    }
    lock().limit = n;
    FREED.notify_all();
    Ok(())
}

/// The budget now.
pub fn threads() -> usize {
    lock().limit
}

/// Runs `f` (one model call) within the budget.
pub fn run<R>(f: impl FnOnce() -> R) -> R {
    {
        let mut b = lock();
        while b.running >= b.limit {
            b = FREED.wait(b).unwrap_or_else(|p| p.into_inner());
        }
        b.running += 1;
    }
    struct Release;
    impl Drop for Release {
        fn drop(&mut self) {
            lock().running -= 1;
            FREED.notify_one();
        }
    }
    let _release = Release;
    f()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn no_more_calls_run_at_once_than_the_budget() {
        set_threads(2).unwrap();
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let (now, most) = (now.clone(), most.clone());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        run(|| {
                            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(n, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_micros(200));
                            now.fetch_sub(1, Ordering::SeqCst);
                        });
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert!(set_threads(0).is_err() && set_threads(MAX_THREADS + 1).is_err());
        set_threads(initial()).unwrap();
    }
}
