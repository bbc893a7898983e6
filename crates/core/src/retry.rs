//! Bounded exponential backoff for retryable provider errors.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// Reads an HTTP `Retry-After` value: seconds (whole or fractional) or an HTTP date,
/// as a pause from `now`. Zero, negative, past and unparsable values give `None`, so
/// the policy's own backoff applies; long values are capped by [`RetryPolicy::delay`].
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs > 0.0 && secs < 1e9)
            .then(|| Duration::from_secs_f64(secs));
    }
    let at = parse_http_date(value)?;
    at.duration_since(now).ok().filter(|d| !d.is_zero())
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form HTTP servers send.
fn parse_http_date(text: &str) -> Option<SystemTime> {
    let rest = text.split_once(", ").map_or(text, |(_, rest)| rest);
    let mut parts = rest.split_whitespace();
    let day: u32 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':');
    let h: u64 = hms.next()?.parse().ok()?;
    let m: u64 = hms.next()?.parse().ok()?;
    let s: u64 = hms.next()?.parse().ok()?;
    if parts.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    // Days since 1970-01-01 from the civil date (Howard Hinnant's algorithm).
    let (y, mo) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + m * 60 + s;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
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
    fn retry_after_values_read_as_seconds_or_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_770); // 1994-11-06 08:49:30
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(" 1.5 ", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            None,
            "past"
        );
        assert_eq!(parse_retry_after("0", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(
            parse_retry_after("Sun, 32 Nov 1994 08:49:37 GMT", now),
            None
        );
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
