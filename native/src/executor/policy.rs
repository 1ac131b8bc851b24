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

/// Where a circuit breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go ahead.
    Closed,
    /// Calls are refused until the cooldown ends.
    Open,
    /// The cooldown ended: one trial call decides.
    HalfOpen,
}

impl BreakerState {
    /// "closed", "open" or "half_open", as in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// A circuit breaker on tokio's clock (so tests can pause time).
#[derive(Debug)]
pub struct Breaker {
    pub policy: BreakerPolicy,
    state: BreakerState,
    /// When an open breaker half-opens.
    until: Instant,
    consecutive: u32,
}

impl Breaker {
    pub fn new(policy: BreakerPolicy) -> Self {
        Self { policy, state: BreakerState::Closed, until: Instant::now(), consecutive: 0 }
    }

    /// Whether a call may go ahead; an open breaker past its cooldown half-opens.
    pub fn admit(&mut self) -> bool {
        match self.state {
            BreakerState::Closed | BreakerState::HalfOpen => true,
            BreakerState::Open if Instant::now() >= self.until => {
                self.state = BreakerState::HalfOpen;
                true
            }
            BreakerState::Open => false,
        }
    }

    /// A call succeeded: the breaker closes.
    pub fn success(&mut self) {
        self.consecutive = 0;
        self.state = BreakerState::Closed;
    }

    /// A call failed (after its retries): a half-open breaker or one past its threshold opens.
    pub fn failure(&mut self) {
        self.consecutive += 1;
        if self.state == BreakerState::HalfOpen || self.consecutive >= self.policy.failures {
            self.state = BreakerState::Open;
            self.until = Instant::now() + Duration::from_millis(self.policy.cooldown_ms);
        }
    }

    /// Where the breaker stands.
    pub fn state(&self) -> BreakerState {
        self.state
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
