//! Health rules: pure functions from what we know to a status with reasons. `now` is always passed in.

use crate::config::Settings;
use crate::duration::to_chrono;
use crate::model::Health;
use crate::model::{Outcome, ProbeResult, Status};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// The knobs the rules use (a subset of `[settings]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub failure_threshold: u32,
    pub warn_before: Duration,
    pub critical_before: Duration,
    pub latency_warn: Duration,
    pub sustained_window: Duration,
    pub log_fail_threshold: u32,
}

impl From<&Settings> for Thresholds {
    fn from(s: &Settings) -> Self {
        Self {
            failure_threshold: s.failure_threshold,
            warn_before: s.warn_before,
            critical_before: s.critical_before,
            latency_warn: s.latency_warn,
            sustained_window: s.sustained_window,
            log_fail_threshold: s.log_fail_threshold,
        }
    }
}

/// A 401/403 seen in an integration's own logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvidence {
    pub at: DateTime<Utc>,
    pub http_status: u16,
    /// The log source's name.
    pub source: String,
}

/// What the rules look at for one integration.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// Newest last.
    pub history: &'a [ProbeResult],
    pub consecutive_auth_failures: u32,
    /// Start of the current run of auth failures.
    pub failing_since: Option<DateTime<Utc>>,
    pub paused: bool,
    pub secret_expires: Option<DateTime<Utc>>,
    /// The secret reference could not be resolved (message never contains the value).
    pub secret_error: Option<&'a str>,
    /// 401/403s from the integration's own logs (any age; the rule keeps those inside `sustained_window`).
    pub log_events: &'a [LogEvidence],
}

/// One finding; the verdict is the worst finding and the reasons are listed worst first.
type Finding = (Status, String);

pub fn evaluate(ev: &Evidence<'_>, now: DateTime<Utc>, t: &Thresholds) -> Health {
    let mut findings: Vec<Finding> = Vec::new();

    if let Some(err) = ev.secret_error {
        findings.push((Status::Unknown, format!("secret not available: {err}")));
    }
    if let Some(f) = auth_finding(ev, t) {
        findings.push(f);
    }
    if ev.paused {
        let why = if ev.consecutive_auth_failures >= t.failure_threshold {
            format!("{} consecutive auth failures", ev.consecutive_auth_failures)
        } else {
            "repeated auth failures of its credential".to_string()
        };
        findings.push((
            Status::Warn,
            format!("probing paused after {why}: probe now to retry"),
        ));
    }
    if let Some(last) = ev.history.last() {
        findings.extend(last_probe_finding(last, t));
    }
    if let Some((status, reason)) = expiry_finding(ev.secret_expires, now, t) {
        findings.push((status, reason));
    }
    if let Some(f) = log_finding(ev.log_events, now, t) {
        findings.push(f);
    }
    if ev.history.is_empty() && ev.secret_error.is_none() {
        findings.push((Status::Unknown, "not probed yet".to_string()));
    }

    // Stable sort keeps rule order among equals, so the most specific reason of a severity comes first.
    findings.sort_by_key(|f| std::cmp::Reverse(f.0));
    let status = findings.first().map(|f| f.0).unwrap_or(Status::Ok);
    Health {
        status,
        reasons: findings.into_iter().map(|f| f.1).collect(),
    }
}

fn auth_finding(ev: &Evidence<'_>, t: &Thresholds) -> Option<Finding> {
    let n = ev.consecutive_auth_failures;
    if n == 0 {
        return None;
    }
    let last_auth = ev
        .history
        .iter()
        .rev()
        .find(|p| p.outcome.is_auth_failure())?;
    let since = ev
        .failing_since
        .map(|s| format!(" since {}", s.format("%H:%M UTC")))
        .unwrap_or_default();
    let plural = if n == 1 { "failure" } else { "failures" };
    // The server's own words (error_description) close the reason: they usually say what to fix.
    let said = last_auth
        .description()
        .map(|d| format!(". {d}"))
        .unwrap_or_default();
    if n >= t.failure_threshold {
        Some((
            Status::Fail,
            format!(
                "{}{since}, {n} consecutive {plural}{said}",
                last_auth.summary()
            ),
        ))
    } else if ev.paused {
        // Paused before its own confirmation: another consumer of the same credential confirmed the refusal,
        // and the credential is not probed again until a human acts.
        Some((
            Status::Fail,
            format!(
                "{}{since}, {n} {plural} here, confirmed by the other consumers of its credential{said}",
                last_auth.summary()
            ),
        ))
    } else {
        Some((
            Status::Warn,
            format!(
                "{}{since}, {n} of {} failures, confirming{said}",
                last_auth.summary(),
                t.failure_threshold
            ),
        ))
    }
}

/// Log evidence: any 401/403 in the window warns; `log_fail_threshold` of them fail when they are sustained, i.e.
/// spread over at least half the window (one retry storm of a few seconds is a burst, not an outage).
fn log_finding(events: &[LogEvidence], now: DateTime<Utc>, t: &Thresholds) -> Option<Finding> {
    let window = to_chrono(t.sustained_window);
    let recent: Vec<&LogEvidence> = events
        .iter()
        .filter(|e| e.at <= now && now - e.at <= window)
        .collect();
    let first = recent.iter().map(|e| e.at).min()?;
    let last = recent.iter().map(|e| e.at).max()?;
    let count = |code| recent.iter().filter(|e| e.http_status == code).count();
    let mut sources: Vec<&str> = recent.iter().map(|e| e.source.as_str()).collect();
    sources.sort_unstable();
    sources.dedup();
    let codes = match (count(401), count(403)) {
        (a, 0) => format!("{a}x 401"),
        (0, b) => format!("{b}x 403"),
        (a, b) => format!("{a}x 401, {b}x 403"),
    };
    let text = format!(
        "{codes} in logs in the last {} ({})",
        crate::duration::format_duration(t.sustained_window),
        sources.join(", ")
    );
    let sustained = (last - first) * 2 >= window;
    if recent.len() as u32 >= t.log_fail_threshold && sustained {
        Some((Status::Fail, text))
    } else {
        Some((Status::Warn, text))
    }
}

fn last_probe_finding(last: &ProbeResult, t: &Thresholds) -> Option<Finding> {
    match last.outcome {
        Outcome::Ok => {
            let ms = last.latency_ms()?;
            let limit = t.latency_warn.as_millis() as u64;
            (ms > limit).then(|| {
                (
                    Status::Warn,
                    format!("slow: {} (limit {})", fmt_ms(ms), fmt_ms(limit)),
                )
            })
        }
        o if o.is_auth_failure() => None, // covered by the consecutive-failure rule
        _ => Some((Status::Warn, format!("cannot verify: {}", last.explained()))),
    }
}

fn fmt_ms(ms: u64) -> String {
    if ms >= 1000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{ms}ms")
    }
}

/// Until when `evaluate` gives the same answer for the same evidence as the clock moves: the soonest moment a
/// secret's expiry window opens, or `now` when a finding already depends on the clock (an expiry that counts
/// days, log events that leave their window). The engine re-evaluates only integrations whose answer can have
/// changed since.
pub fn stable_until(
    secret_expires: Option<DateTime<Utc>>,
    log_events: &[LogEvidence],
    now: DateTime<Utc>,
    t: &Thresholds,
) -> DateTime<Utc> {
    if !log_events.is_empty() {
        return now;
    }
    match secret_expires {
        None => DateTime::<Utc>::MAX_UTC,
        Some(expires) => {
            let opens = expires
                .checked_sub_signed(to_chrono(expiry_window(t)))
                .unwrap_or(DateTime::<Utc>::MIN_UTC);
            if opens > now { opens } else { now }
        }
    }
}

/// Whole days from `now` to `expires` (negative once expired), counted by calendar date.
pub fn days_left(expires: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (expires.date_naive() - now.date_naive()).num_days()
}

/// Expiry verdict on its own: for the calendar, the credential list and `check`.
pub fn expiry_status(expires: Option<DateTime<Utc>>, now: DateTime<Utc>, t: &Thresholds) -> Status {
    expiry_finding(expires, now, t)
        .map(|f| f.0)
        .unwrap_or(Status::Ok)
}

/// How long before a secret expires it is reported at all (as a warning or as critical).
fn expiry_window(t: &Thresholds) -> Duration {
    t.critical_before.max(t.warn_before)
}

fn expiry_finding(
    expires: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    t: &Thresholds,
) -> Option<Finding> {
    let expires = expires?;
    let left = expires - now;
    let within = |d: Duration| left <= to_chrono(d);
    if !within(expiry_window(t)) {
        return None; // most credentials, most of the time: no words to format
    }
    let date = expires.format("%Y-%m-%d");
    let days = days_left(expires, now);
    if expires <= now {
        let ago = -days;
        let when = if ago == 0 {
            "today".to_string()
        } else {
            format!("{ago}d ago")
        };
        return Some((Status::Fail, format!("secret expired {when} ({date})")));
    }
    let text = format!("secret expires in {days}d ({date})");
    if within(t.critical_before) {
        Some((Status::Fail, text))
    } else if within(t.warn_before) {
        Some((Status::Warn, text))
    } else {
        None
    }
}

/// Short expiry wording for lists: "expired 3d ago", "today", "5d".
pub fn expiry_label(expires: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let days = days_left(expires, now);
    match days {
        d if d < 0 => format!("expired {}d ago", -d),
        _ if expires <= now => "expired today".to_string(),
        0 => "today".to_string(),
        d => format!("{d}d"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Phase;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
    }

    fn t() -> Thresholds {
        Thresholds::from(&Settings::default())
    }

    fn probe(outcome: Outcome, status: Option<u16>, error: Option<&str>, ms: u64) -> ProbeResult {
        let mut p = ProbeResult::new(now(), outcome, Phase::Token);
        p.http_status = status;
        p.error = error.map(str::to_string);
        p.token_ms = Some(ms);
        if outcome == Outcome::ScopeMissing {
            p.missing_scopes = vec!["data_extensions_write".into()];
        }
        p
    }

    fn ev(history: &[ProbeResult], consecutive: u32) -> Evidence<'_> {
        Evidence {
            history,
            consecutive_auth_failures: consecutive,
            failing_since: None,
            paused: false,
            secret_expires: None,
            secret_error: None,
            log_events: &[],
        }
    }

    #[test]
    fn table_of_probe_histories() {
        let invalid = probe(Outcome::AuthRejected, Some(401), Some("invalid_client"), 12);
        let ok = probe(Outcome::Ok, Some(200), None, 80);
        let slow = probe(Outcome::Ok, Some(200), None, 2_500);
        let scope = probe(Outcome::ScopeMissing, Some(200), None, 30);
        let limited = {
            let mut p = probe(Outcome::RateLimited, Some(429), None, 5);
            p.retry_after_secs = Some(5);
            p
        };
        let timeout = probe(Outcome::Timeout, None, None, 10_000);
        let cases: Vec<(&str, Vec<ProbeResult>, u32, Status, &str)> = vec![
            ("never probed", vec![], 0, Status::Unknown, "not probed yet"),
            ("healthy", vec![ok.clone()], 0, Status::Ok, ""),
            (
                "first auth failure warns while confirming",
                vec![ok.clone(), invalid.clone()],
                1,
                Status::Warn,
                "token request rejected: invalid_client (401), 1 of 3 failures, confirming",
            ),
            (
                "threshold reached fails",
                vec![invalid.clone(), invalid.clone(), invalid.clone()],
                3,
                Status::Fail,
                "token request rejected: invalid_client (401), 3 consecutive failures",
            ),
            (
                "scope missing counts as auth failure",
                vec![scope.clone(); 3],
                3,
                Status::Fail,
                "scope data_extensions_write missing, 3 consecutive failures",
            ),
            (
                "rate limited cannot verify",
                vec![ok.clone(), limited],
                0,
                Status::Warn,
                "cannot verify: rate limited (429), retry after 5s",
            ),
            (
                "timeout cannot verify",
                vec![timeout.clone()],
                0,
                Status::Warn,
                "cannot verify: timed out",
            ),
            (
                "a timeout does not hide a confirmed auth failure",
                vec![invalid.clone(), invalid.clone(), invalid.clone(), timeout],
                3,
                Status::Fail,
                "token request rejected: invalid_client (401), 3 consecutive failures",
            ),
            (
                "slow but working",
                vec![slow],
                0,
                Status::Warn,
                "slow: 2.5s (limit 2.0s)",
            ),
            ("recovered", vec![invalid, ok], 0, Status::Ok, ""),
        ];
        for (name, history, consecutive, want, reason) in cases {
            let h = evaluate(&ev(&history, consecutive), now(), &t());
            assert_eq!(h.status, want, "{name}: {h:?}");
            assert_eq!(h.short_reason(), reason, "{name}");
        }
    }

    #[test]
    fn a_consumer_paused_by_its_credential_fails_without_its_own_confirmation() {
        // A sibling on the same credential confirmed the refusal first; this one stopped at 1 of 3.
        let invalid = probe(Outcome::AuthRejected, Some(401), Some("invalid_client"), 12);
        let history = vec![invalid];
        let mut e = ev(&history, 1);
        e.paused = true;
        let h = evaluate(&e, now(), &t());
        assert_eq!(h.status, Status::Fail);
        assert_eq!(
            h.reasons,
            [
                "token request rejected: invalid_client (401), 1 failure here, confirmed by the other consumers of its credential",
                "probing paused after repeated auth failures of its credential: probe now to retry",
            ]
        );
    }

    #[test]
    fn failing_since_and_pause_are_explained() {
        let invalid = probe(Outcome::AuthRejected, Some(401), Some("invalid_client"), 12);
        let history = vec![invalid.clone(), invalid.clone(), invalid.clone(), invalid];
        let mut e = ev(&history, 4);
        e.failing_since = Some(Utc.with_ymd_and_hms(2026, 11, 22, 9, 42, 7).unwrap());
        e.paused = true;
        let h = evaluate(&e, now(), &t());
        assert_eq!(h.status, Status::Fail);
        assert_eq!(
            h.reasons,
            [
                "token request rejected: invalid_client (401) since 09:42 UTC, 4 consecutive failures",
                "probing paused after 4 consecutive auth failures: probe now to retry",
            ]
        );
    }

    #[test]
    fn table_of_secret_expiry() {
        let ok = [probe(Outcome::Ok, Some(200), None, 50)];
        let day = |d: i64| now() + chrono::Duration::days(d);
        let cases = [
            (day(-3), Status::Fail, "secret expired 3d ago (2026-11-19)"),
            (now(), Status::Fail, "secret expired today (2026-11-22)"),
            (day(5), Status::Fail, "secret expires in 5d (2026-11-27)"),
            (day(7), Status::Fail, "secret expires in 7d (2026-11-29)"),
            (day(8), Status::Warn, "secret expires in 8d (2026-11-30)"),
            (day(20), Status::Warn, "secret expires in 20d (2026-12-12)"),
            (day(30), Status::Warn, "secret expires in 30d (2026-12-22)"),
            (day(31), Status::Ok, ""),
        ];
        for (expires, want, reason) in cases {
            let mut e = ev(&ok, 0);
            e.secret_expires = Some(expires);
            let h = evaluate(&e, now(), &t());
            assert_eq!(h.status, want, "{expires}");
            assert_eq!(h.short_reason(), reason, "{expires}");
            assert_eq!(expiry_status(Some(expires), now(), &t()), want);
        }
    }

    #[test]
    fn expired_secret_fails_even_before_the_first_probe() {
        let mut e = ev(&[], 0);
        e.secret_expires = Some(now() - chrono::Duration::days(1));
        let h = evaluate(&e, now(), &t());
        assert_eq!(h.status, Status::Fail);
        assert_eq!(
            h.reasons,
            ["secret expired 1d ago (2026-11-21)", "not probed yet"]
        );
    }

    #[test]
    fn unresolvable_secret_is_unknown_with_the_reason() {
        let mut e = ev(&[], 0);
        e.secret_error = Some("environment variable CRM_SECRET is not set");
        let h = evaluate(&e, now(), &t());
        assert_eq!(h.status, Status::Unknown);
        assert_eq!(
            h.reasons,
            ["secret not available: environment variable CRM_SECRET is not set"]
        );
    }

    #[test]
    fn the_answer_stands_until_an_expiry_window_opens_or_at_once_with_log_evidence() {
        let expires = now() + chrono::Duration::days(90);
        let opens = expires - to_chrono(t().warn_before.max(t().critical_before));
        assert!(opens > now());
        assert_eq!(stable_until(Some(expires), &[], now(), &t()), opens);
        assert_eq!(stable_until(Some(expires), &[], opens, &t()), opens);
        let later = opens + chrono::Duration::hours(1);
        assert_eq!(stable_until(Some(expires), &[], later, &t()), later);
        assert_eq!(
            stable_until(None, &[], now(), &t()),
            DateTime::<Utc>::MAX_UTC
        );
        let logged = [LogEvidence {
            at: now(),
            http_status: 401,
            source: "mw".into(),
        }];
        assert_eq!(stable_until(None, &logged, now(), &t()), now());
    }

    #[test]
    fn table_of_log_evidence() {
        let ok = [probe(Outcome::Ok, Some(200), None, 50)];
        let ev_at = |secs_ago: i64, status: u16, source: &str| LogEvidence {
            at: now() - chrono::Duration::seconds(secs_ago),
            http_status: status,
            source: source.into(),
        };
        // n events evenly over the last 9 minutes.
        let spread = |n: i64| -> Vec<LogEvidence> {
            (0..n)
                .map(|i| ev_at(i * 540 / (n - 1).max(1), 401, "mw"))
                .collect()
        };
        let cases: Vec<(&str, Vec<LogEvidence>, Status, &str)> = vec![
            ("nothing", vec![], Status::Ok, ""),
            (
                "old events do not count",
                vec![ev_at(660, 401, "mw")],
                Status::Ok,
                "",
            ),
            (
                "one recent 401 warns",
                vec![ev_at(120, 401, "mw")],
                Status::Warn,
                "1x 401 in logs in the last 10m (mw)",
            ),
            (
                "both codes and sources are named",
                vec![
                    ev_at(60, 401, "mw"),
                    ev_at(120, 403, "etl"),
                    ev_at(180, 403, "mw"),
                ],
                Status::Warn,
                "1x 401, 2x 403 in logs in the last 10m (etl, mw)",
            ),
            (
                "nine spread over the window only warn",
                spread(9),
                Status::Warn,
                "9x 401 in logs in the last 10m (mw)",
            ),
            (
                "ten spread over the window fail",
                spread(10),
                Status::Fail,
                "10x 401 in logs in the last 10m (mw)",
            ),
            (
                "ten in one burst warn",
                (0..10).map(|i| ev_at(60 + i, 401, "mw")).collect(),
                Status::Warn,
                "10x 401 in logs in the last 10m (mw)",
            ),
        ];
        for (name, events, want, reason) in cases {
            let mut e = ev(&ok, 0);
            e.log_events = &events;
            let h = evaluate(&e, now(), &t());
            assert_eq!(h.status, want, "{name}: {h:?}");
            assert_eq!(h.short_reason(), reason, "{name}");
        }
    }

    #[test]
    fn expiry_labels() {
        let day = |d: i64| now() + chrono::Duration::days(d);
        assert_eq!(expiry_label(day(-3), now()), "expired 3d ago");
        assert_eq!(expiry_label(day(5), now()), "5d");
        assert_eq!(
            expiry_label(now() + chrono::Duration::hours(3), now()),
            "today"
        );
        assert_eq!(
            expiry_label(now() - chrono::Duration::hours(3), now()),
            "expired today"
        );
    }
}
