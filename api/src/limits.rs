//! Rate limits (GCRA) by key, such as an address or a handle, in this process.
//!
//! Keys are a client address (`extract::ClientAddress`), a handle, or a user (for read
//! and delivered markers, which go to every member of a chat). The counts are kept in
//! each process: behind a load balancer with N instances a client gets up to N times the
//! limit.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `burst` attempts, refilled evenly over `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub burst: u32,
    pub period: Duration,
}

impl Limit {
    pub fn per_minute(burst: u32) -> Self {
        Self {
            burst,
            period: Duration::from_secs(60),
        }
    }
}

/// Cheap to clone; clones share the counters.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    /// The theoretical arrival time of each key.
    cells: moka::sync::Cache<String, Arc<Mutex<Instant>>>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self {
            cells: moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_idle(Duration::from_secs(3_600))
                .build(),
        }
    }
}

impl RateLimiter {
    /// Counts one attempt for `key`; refused with the time until the next is allowed.
    pub fn check(&self, key: &str, limit: Limit) -> Result<(), Duration> {
        if limit.burst == 0 {
            return Err(limit.period);
        }
        let interval = limit.period / limit.burst;
        let now = Instant::now();
        let cell = self
            .cells
            .get_with(key.to_owned(), || Arc::new(Mutex::new(now)));
        let Ok(mut tat) = cell.lock() else {
            return Ok(());
        };
        let start = (*tat).max(now);
        let allowed_ahead = limit.period - interval;
        if start.duration_since(now) > allowed_ahead {
            return Err(start.duration_since(now) - allowed_ahead);
        }
        *tat = start + interval;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_burst_passes_then_the_key_waits() {
        let limiter = RateLimiter::default();
        let limit = Limit::per_minute(3);
        for _ in 0..3 {
            assert!(limiter.check("ip:1", limit).is_ok());
        }
        let wait = limiter.check("ip:1", limit).unwrap_err();
        assert!(wait > Duration::from_secs(15) && wait <= Duration::from_secs(20));
        assert!(limiter.check("ip:2", limit).is_ok(), "keys are independent");
    }
}
