//! Bounded exponential backoff for retryable provider errors.

use std::future::Future;
use std::time::Duration;

use crate::ProviderError;

/// How often and how patiently to retry a retryable failure: exponential backoff from
/// `initial`, doubled each attempt up to `max`, at most `attempts` tries in all. A
/// provider's `Retry-After` replaces the computed delay (capped at `max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (1 means no retry).
    pub attempts: u32,
    /// The pause before the first retry.
    pub initial: Duration,
    /// The longest pause.
    pub max: Duration,
}

impl Default for RetryPolicy {
    /// Three tries, 250 ms then 500 ms: short enough for a live call.
    fn default() -> Self {
        Self {
            attempts: 3,
            initial: Duration::from_millis(250),
            max: Duration::from_secs(4),
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub const NONE: Self = Self {
        attempts: 1,
        initial: Duration::ZERO,
        max: Duration::ZERO,
    };

    /// The pause before retry number `retry` (0-based), honouring `Retry-After`.
    pub fn delay(&self, retry: u32, error: &ProviderError) -> Duration {
        let computed = self
            .initial
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.max);
        error
            .retry_after
            .map_or(computed, |after| after.min(self.max))
    }

    /// Runs `operation` until it succeeds, fails permanently, or runs out of attempts;
    /// returns the last error then.
    pub async fn run<T, F, Fut>(&self, mut operation: F) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let mut retry = 0;
        loop {
            match operation().await {
                Ok(value) => return Ok(value),
                Err(e) if e.is_retryable() && retry + 1 < self.attempts.max(1) => {
                    let pause = self.delay(retry, &e);
                    tracing::warn!(error = %e, ?pause, attempt = retry + 1, "retrying");
                    tokio::time::sleep(pause).await;
                    retry += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn retries_retryable_errors_with_growing_pauses() {
        let policy = RetryPolicy {
            attempts: 3,
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let result: Result<(), _> = policy
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(ProviderError::from_http("x", 503, "busy"))
            })
            .await;
        assert_eq!(result.map_err(|e| e.kind), Err(ErrorKind::Server));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(
            started.elapsed(),
            Duration::from_millis(300),
            "100 + 200 ms"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = RetryPolicy::default()
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(ProviderError::from_http("x", 401, "bad key"))
            })
            .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn retry_after_replaces_the_computed_pause_up_to_max() {
        let policy = RetryPolicy::default();
        let e = ProviderError::from_http("x", 429, "slow down")
            .with_retry_after(Duration::from_secs(2));
        assert_eq!(policy.delay(0, &e), Duration::from_secs(2));
        let e = e.with_retry_after(Duration::from_secs(60));
        assert_eq!(policy.delay(0, &e), policy.max);
    }
}
