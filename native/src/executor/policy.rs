//! Retry with exponential backoff, and the per-node circuit breaker.

use std::time::Duration;

use tokio::time::Instant;

use crate::manifest::{BreakerPolicy, RetryPolicy};

/// The delay before retry number `attempt` (from 1): `base·factor^(attempt-1)`, capped,
/// shortened by up to `jitter` of itself using `rng`.
pub fn backoff(policy: &RetryPolicy, attempt: u32, rng: &mut u64) -> Duration {
    let raw = policy.base_ms as f64 * policy.factor.powi(attempt.saturating_sub(1) as i32);
    let capped = raw.min(policy.max_ms as f64);
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    let unit = (*rng >> 11) as f64 / (1u64 << 53) as f64;
    Duration::from_secs_f64(capped * (1.0 - policy.jitter * unit) / 1000.0)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen,
}

/// A circuit breaker on tokio's clock (so tests can pause time).
#[derive(Debug)]
pub struct Breaker {
    pub policy: BreakerPolicy,
    state: State,
    consecutive: u32,
}

impl Breaker {
    pub fn new(policy: BreakerPolicy) -> Self {
        Self { policy, state: State::Closed, consecutive: 0 }
    }

    /// Whether a call may go ahead; an open breaker past its cooldown half-opens.
    pub fn admit(&mut self) -> bool {
        match self.state {
            State::Closed | State::HalfOpen => true,
            State::Open { until } if Instant::now() >= until => {
                self.state = State::HalfOpen;
                true
            }
            State::Open { .. } => false,
        }
    }

    /// A call succeeded: the breaker closes.
    pub fn success(&mut self) {
        self.consecutive = 0;
        self.state = State::Closed;
    }

    /// A call failed (after its retries): a half-open breaker or one past its threshold opens.
    pub fn failure(&mut self) {
        self.consecutive += 1;
        if self.state == State::HalfOpen || self.consecutive >= self.policy.failures {
            self.state = State::Open { until: Instant::now() + Duration::from_millis(self.policy.cooldown_ms) };
        }
    }

    /// "closed", "open" or "half_open".
    pub fn name(&self) -> &'static str {
        match self.state {
            State::Closed => "closed",
            State::Open { .. } => "open",
            State::HalfOpen => "half_open",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy { max_retries: 5, base_ms: 100, factor: 2.0, max_ms: 300, jitter: 0.0 };
        let mut rng = 1;
        let d: Vec<u128> = (1..=4).map(|a| backoff(&p, a, &mut rng).as_millis()).collect();
        assert_eq!(d, vec![100, 200, 300, 300]);
        let j = RetryPolicy { jitter: 0.5, ..p };
        for a in 1..50 {
            let ms = backoff(&j, 1, &mut rng).as_secs_f64() * 1000.0;
            assert!((50.0..=100.0).contains(&ms), "attempt {a}: {ms}");
        }
    }
}
