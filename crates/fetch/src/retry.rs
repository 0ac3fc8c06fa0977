//! When and how long to wait before trying a request again.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Duration, SystemTime};

/// The longest wait we accept from a `Retry-After` header or the backoff: a server asking
/// for more is better reported than waited for.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(60);

/// Whether a reply with this status is worth another try.
pub(crate) fn is_transient(status: u16) -> bool {
    status == 429 || (500..=599).contains(&status)
}

/// The wait before retry `attempt` (0 for the first retry): `base` doubled per attempt, at
/// most a minute, with "equal jitter" (half the delay fixed, half random) so that many
/// clients failing at once (32 concurrent requests to one index) do not retry in step.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let full = base.saturating_mul(1u32 << attempt.min(16)).min(MAX_WAIT);
    let half = full / 2;
    // A fresh RandomState is randomly keyed per instance: enough randomness for jitter
    // without a dependency on a random-number crate.
    let random = RandomState::new().hash_one(attempt);
    let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    let extra = if nanos == 0 { 0 } else { random % nanos };
    half + Duration::from_nanos(extra)
}

/// Parses `Retry-After`: either delay seconds or an HTTP date.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_WAIT));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO).min(MAX_WAIT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_bounded() {
        let base = Duration::from_millis(100);
        for attempt in 0..5 {
            let d = backoff(base, attempt);
            let full = base * (1 << attempt);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
        assert!(backoff(base, 40) <= MAX_WAIT);
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(parse_retry_after(" 3 ", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("100000", now), Some(MAX_WAIT));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
