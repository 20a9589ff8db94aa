//! How a delivery can fail and what the relay does about it: a closed error taxonomy that
//! drives retries (transient and rate-limited failures are retried with backoff; auth, rejected
//! and malformed ones go to the dead-letter queue at once), exponential backoff with full
//! jitter, and a token-bucket rate limit per destination.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth trying again: a 5xx, a timeout, a refused connection, the bus being down.
    #[error("transient: {0}")]
    Transient(String),
    /// The channel asked us to slow down (HTTP 429, GraphQL THROTTLED), for this long.
    #[error("rate limited: retry after {retry_after:?}")]
    RateLimited { retry_after: Duration },
    /// Credentials refused (401/403): retrying will not help until someone fixes them.
    #[error("authentication: {0}")]
    Auth(String),
    /// The channel refused the content (4xx, user errors).
    #[error("rejected: {0}")]
    Rejected(String),
    /// Ordo could not build the request (a SKU with no channel id, an unreadable payload).
    #[error("malformed: {0}")]
    Malformed(String),
}

impl DeliveryError {
    pub fn retryable(&self) -> bool {
        matches!(self, Self::Transient(_) | Self::RateLimited { .. })
    }

    /// The taxonomy of an HTTP answer that was not a success.
    pub fn from_status(status: u16, retry_after: Option<&str>, body: &str) -> Self {
        let detail = format!("HTTP {status}: {}", body.chars().take(300).collect::<String>());
        match status {
            429 => Self::RateLimited {
                retry_after: retry_after
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map_or(Duration::from_secs(1), |s| Duration::from_millis((s * 1000.0) as u64)),
            },
            401 | 403 => Self::Auth(detail),
            408 | 500..=599 => Self::Transient(detail),
            _ => Self::Rejected(detail),
        }
    }
}

/// Exponential backoff with full jitter: attempt n waits a random time in
/// `[0, min(cap, base × 2ⁿ)]`, so a fleet of relays retrying a recovering channel spreads out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub cap: Duration,
    /// Attempts before a message is dead-lettered (`u32::MAX`: never, for the bus).
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { base: Duration::from_millis(200), cap: Duration::from_secs(60), max_attempts: 8 }
    }
}

impl RetryPolicy {
    pub fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self.base.saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX)).min(self.cap);
        let millis = ceiling.as_millis() as u64;
        Duration::from_millis(if millis == 0 { 0 } else { rand::random_range(0..=millis) })
    }
}

/// A token bucket: `rate` requests per second, bursts of up to `burst`.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    pub fn new(rate_per_second: f64, burst: u32) -> Self {
        assert!(rate_per_second > 0.0, "a rate limit is positive");
        let burst = f64::from(burst.max(1));
        Self { rate: rate_per_second, burst, tokens: burst, last: Instant::now() }
    }

    /// Waits until a request may go.
    pub async fn acquire(&mut self) {
        loop {
            let now = Instant::now();
            self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
            self.last = now;
            if self.tokens >= 1.0 {
                self.tokens -= 1.0;
                return;
            }
            tokio::time::sleep(Duration::from_secs_f64((1.0 - self.tokens) / self.rate)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_the_taxonomy() {
        assert_eq!(
            DeliveryError::from_status(429, Some("2"), ""),
            DeliveryError::RateLimited { retry_after: Duration::from_secs(2) }
        );
        assert_eq!(
            DeliveryError::from_status(429, Some("0.25"), ""),
            DeliveryError::RateLimited { retry_after: Duration::from_millis(250) }
        );
        assert!(
            matches!(DeliveryError::from_status(503, None, "down"), DeliveryError::Transient(m) if m.contains("503"))
        );
        assert!(matches!(DeliveryError::from_status(401, None, ""), DeliveryError::Auth(_)));
        assert!(matches!(DeliveryError::from_status(422, None, "bad"), DeliveryError::Rejected(_)));
        assert!(DeliveryError::Transient(String::new()).retryable());
        assert!(!DeliveryError::Rejected(String::new()).retryable());
    }

    #[test]
    fn backoff_grows_to_its_cap_and_stays_within_it() {
        let p = RetryPolicy { base: Duration::from_millis(100), cap: Duration::from_secs(2), max_attempts: 5 };
        for attempt in 0..40 {
            let ceiling = Duration::from_millis(100 * (1u64 << attempt.min(20))).min(Duration::from_secs(2));
            for _ in 0..20 {
                assert!(p.backoff(attempt) <= ceiling, "attempt {attempt}");
            }
        }
        // Jittered: not all the same.
        let draws: std::collections::BTreeSet<_> = (0..50).map(|_| p.backoff(10)).collect();
        assert!(draws.len() > 10);
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_limit_spaces_requests_after_the_burst() {
        let mut limiter = RateLimiter::new(10.0, 2);
        let started = Instant::now();
        for _ in 0..12 {
            limiter.acquire().await;
        }
        // 2 at once, then 10 more at 10 per second: about a second.
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(990) && took < Duration::from_millis(1100), "{took:?}");
    }
}
