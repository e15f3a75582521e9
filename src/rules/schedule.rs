//! When to probe next: pure decisions from an outcome and the settings.

use crate::config::Settings;
use crate::model::{Outcome, ProbeResult};
use std::time::Duration;

/// Longest wait the backoff may reach.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// What the scheduler should do after a probe result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Probe again after this delay (before jitter).
    After { delay: Duration, fresh_token: bool },
    /// Stop automatic probing until a human acts.
    Pause,
}

/// Decide the next probe. `consecutive_auth` already counts this result; `non_auth_streak` counts consecutive
/// cannot-verify results including this one.
pub fn next_after(
    result: &ProbeResult,
    consecutive_auth: u32,
    non_auth_streak: u32,
    s: &Settings,
) -> Next {
    let retry_after = result
        .retry_after_secs
        .map(Duration::from_secs)
        .unwrap_or_default();
    match result.outcome {
        Outcome::Ok => Next::After {
            delay: s.probe_interval,
            fresh_token: false,
        },
        o if o.is_auth_failure() => {
            if consecutive_auth >= s.failure_threshold {
                Next::Pause
            } else {
                // Confirm quickly, backing off: confirm_retry, 2x, 4x...
                Next::After {
                    delay: exp(s.confirm_retry, consecutive_auth)
                        .min(s.probe_interval.max(s.confirm_retry)),
                    fresh_token: true,
                }
            }
        }
        Outcome::RateLimited => Next::After {
            // Throttled: back off from the normal interval, never sooner than Retry-After.
            delay: exp(s.probe_interval, non_auth_streak)
                .min(MAX_BACKOFF)
                .max(retry_after),
            fresh_token: false,
        },
        _ => Next::After {
            // Cannot verify: look again soon, backing off up to the normal interval.
            delay: exp(s.confirm_retry, non_auth_streak)
                .min(s.probe_interval.max(s.confirm_retry))
                .max(retry_after),
            fresh_token: false,
        },
    }
}

/// How long a granted token is reused: until 75% of its lifetime (`expires_in`) or `token_refresh`, whichever
/// comes first (`token_refresh` alone when the server states no lifetime). Probes within it check the token and
/// the call, not the client secret: the secret is checked when the next token is requested.
pub fn token_reuse(lifetime: Option<Duration>, token_refresh: Duration) -> Duration {
    match lifetime {
        Some(l) => (l / 4 * 3).min(token_refresh),
        None => token_refresh,
    }
}

/// The longest a revoked (or expired, or replaced) client secret can go on showing OK before its integration
/// turns FAIL, with tokens of `token_lifetime`, not counting the probes' own HTTP time (at most `timeout` per
/// request). Revoking a secret does not revoke the tokens already granted, so the worst case is a token granted
/// just before the revocation:
/// 1. it is reused for `token_reuse(token_lifetime, token_refresh)`;
/// 2. the first probe after that (at most one `probe_interval` later, +10% jitter) requests a new token and is
///    refused: WARN, "confirming";
/// 3. `failure_threshold - 1` confirmations follow, each after the confirm backoff (+10% jitter); the last one
///    turns it FAIL.
///
/// A human pressing "probe now", `authwatch check` and a changed secret reference skip all of it (fresh token).
pub fn revocation_detection_bound(s: &Settings, token_lifetime: Option<Duration>) -> Duration {
    let upper = |d: Duration| jitter(d, 1.0);
    let mut total =
        token_reuse(token_lifetime, s.token_refresh).saturating_add(upper(s.probe_interval));
    for n in 1..s.failure_threshold {
        let confirm = exp(s.confirm_retry, n).min(s.probe_interval.max(s.confirm_retry));
        total = total.saturating_add(upper(confirm));
    }
    total
}

/// base * 2^(n-1), saturating.
fn exp(base: Duration, n: u32) -> Duration {
    let factor = 1u32
        .checked_shl(n.saturating_sub(1).min(20))
        .unwrap_or(u32::MAX);
    base.checked_mul(factor).unwrap_or(MAX_BACKOFF)
}

/// ±10% jitter so a thousand integrations do not probe in lockstep. `unit` is a random number in [0, 1).
/// Saturating: a delay too large to scale is kept as it is.
pub fn jitter(delay: Duration, unit: f64) -> Duration {
    let unit = if unit.is_nan() { 0.5 } else { unit };
    Duration::try_from_secs_f64(delay.as_secs_f64() * (0.9 + 0.2 * unit.clamp(0.0, 1.0)))
        .unwrap_or(delay)
}

/// Far enough to mean "not in this process's lifetime" and near enough for every clock type.
const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `now + d`, saturating at a far future instead of panicking on overflow.
pub fn instant_after(now: tokio::time::Instant, d: Duration) -> tokio::time::Instant {
    now.checked_add(d.min(FAR))
        .or_else(|| now.checked_add(Duration::from_secs(24 * 3600)))
        .unwrap_or(now)
}

/// `now + d` on the wall clock, saturating at the largest representable time.
pub fn wall_after(
    now: chrono::DateTime<chrono::Utc>,
    d: Duration,
) -> chrono::DateTime<chrono::Utc> {
    chrono::TimeDelta::from_std(d)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Phase;

    fn result(outcome: Outcome, retry_after: Option<u64>) -> ProbeResult {
        let mut r = ProbeResult::new(chrono::Utc::now(), outcome, Phase::Token);
        r.retry_after_secs = retry_after;
        r
    }

    #[test]
    fn table_of_next_probe_decisions() {
        let s = Settings::default(); // interval 5m, confirm 30s, threshold 3
        let secs = Duration::from_secs;
        let after = |d: u64, fresh| Next::After {
            delay: secs(d),
            fresh_token: fresh,
        };
        let cases = [
            (
                "ok waits an interval",
                result(Outcome::Ok, None),
                0,
                0,
                after(300, false),
            ),
            (
                "first auth failure confirms soon",
                result(Outcome::AuthRejected, None),
                1,
                0,
                after(30, true),
            ),
            (
                "second backs off",
                result(Outcome::Forbidden, None),
                2,
                0,
                after(60, true),
            ),
            (
                "threshold pauses",
                result(Outcome::ScopeMissing, None),
                3,
                0,
                Next::Pause,
            ),
            (
                "rate limited honours a long Retry-After",
                result(Outcome::RateLimited, Some(900)),
                0,
                1,
                after(900, false),
            ),
            (
                "rate limited backs off exponentially",
                result(Outcome::RateLimited, Some(5)),
                0,
                3,
                after(1200, false),
            ),
            (
                "backoff is capped",
                result(Outcome::RateLimited, None),
                0,
                30,
                after(3600, false),
            ),
            (
                "timeout re-checks soon",
                result(Outcome::Timeout, None),
                0,
                1,
                after(30, false),
            ),
            (
                "server error backs off to the interval",
                result(Outcome::ServerError, None),
                0,
                6,
                after(300, false),
            ),
            (
                "503 Retry-After is honoured",
                result(Outcome::ServerError, Some(120)),
                0,
                1,
                after(120, false),
            ),
        ];
        for (name, r, auth, streak, want) in cases {
            assert_eq!(next_after(&r, auth, streak, &s), want, "{name}");
        }
    }

    #[test]
    fn time_arithmetic_saturates_instead_of_panicking() {
        let huge = Duration::from_secs(u64::MAX);
        assert_eq!(jitter(huge, 0.999), huge);
        assert_eq!(jitter(Duration::MAX, f64::NAN), Duration::MAX);
        let now = tokio::time::Instant::now();
        assert!(instant_after(now, huge) > now);
        let wall = chrono::Utc::now();
        assert_eq!(
            wall_after(wall, huge),
            chrono::DateTime::<chrono::Utc>::MAX_UTC
        );
        assert_eq!(
            wall_after(wall, Duration::from_secs(9_000_000_000_000)),
            chrono::DateTime::<chrono::Utc>::MAX_UTC
        );
        let mut r = result(Outcome::RateLimited, Some(u64::MAX));
        assert!(matches!(
            next_after(&r, 0, 1, &Settings::default()),
            Next::After { .. }
        ));
        r.outcome = Outcome::ServerError;
        assert!(matches!(
            next_after(&r, 0, 1, &Settings::default()),
            Next::After { .. }
        ));
    }

    #[test]
    fn revocation_detection_bound_with_the_defaults_and_shorter_settings() {
        let sfmc = Some(Duration::from_secs(1079));
        let s = Settings::default();
        // 809.25s of token reuse + 330s (5m +10%) + 33s + 66s of confirmations = 1238.25s, about 20m38s.
        assert_eq!(
            token_reuse(sfmc, s.token_refresh),
            Duration::from_millis(809_250)
        );
        assert_eq!(
            revocation_detection_bound(&s, sfmc),
            Duration::from_millis(1_238_250)
        );
        // Without a stated lifetime, token_refresh alone (15m).
        assert_eq!(
            revocation_detection_bound(&s, None),
            Duration::from_millis(900_000 + 330_000 + 99_000)
        );
        // token_refresh shorter than probe_interval: every probe requests a new token.
        let short = Settings {
            token_refresh: Duration::from_secs(60),
            probe_interval: Duration::from_secs(60),
            failure_threshold: 1,
            ..Settings::default()
        };
        assert_eq!(
            revocation_detection_bound(&short, sfmc),
            Duration::from_secs(60 + 66)
        );
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let d = Duration::from_secs(100);
        assert_eq!(jitter(d, 0.0), Duration::from_secs(90));
        assert_eq!(jitter(d, 0.5), Duration::from_secs(100));
        assert!(jitter(d, 0.999_999) <= Duration::from_secs(110));
    }
}
