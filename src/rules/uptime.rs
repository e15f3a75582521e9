//! Availability figures from history: pure functions over probe results and status transitions.

use crate::model::{Incident, Outcome, Status};
use chrono::{DateTime, Utc};

/// Percentage of the covered time during which the newest probe result was ok. Each result holds from its time
/// until the next result (the last one until `now`); time before the first result in the window is not covered.
pub fn uptime_pct(probes: &[(DateTime<Utc>, Outcome)], now: DateTime<Utc>) -> Option<f64> {
    let mut covered = 0i64;
    let mut up = 0i64;
    for (i, (at, outcome)) in probes.iter().enumerate() {
        let until = probes.get(i + 1).map(|p| p.0).unwrap_or(now).min(now);
        let span = (until - *at).num_milliseconds().max(0);
        covered += span;
        if outcome.is_ok() {
            up += span;
        }
    }
    if probes.is_empty() {
        return None;
    }
    if covered == 0 {
        // A single result at `now`: it is all we know.
        return Some(if probes.last().is_some_and(|p| p.1.is_ok()) {
            100.0
        } else {
            0.0
        });
    }
    Some((up as f64 * 10_000.0 / covered as f64).round() / 100.0)
}

/// Incidents from status transitions (oldest first): one starts when the status goes to WARN or FAIL from
/// OK or UNKNOWN, and ends when it comes back to OK.
pub fn incidents(transitions: &[(DateTime<Utc>, Status, String)]) -> Vec<Incident> {
    let mut out: Vec<Incident> = Vec::new();
    let mut open: Option<Incident> = None;
    for (at, to, reason) in transitions {
        match (to, open.as_mut()) {
            (Status::Warn | Status::Fail, None) => {
                open = Some(Incident {
                    started: *at,
                    ended: None,
                    worst: *to,
                    reason: reason.clone(),
                })
            }
            (Status::Warn | Status::Fail, Some(inc)) if *to > inc.worst => {
                inc.worst = *to;
                inc.reason = reason.clone();
            }
            (Status::Ok, Some(_)) => {
                let mut inc = open.take().expect("checked");
                inc.ended = Some(*at);
                out.push(inc);
            }
            _ => {}
        }
    }
    out.extend(open);
    out
}

/// Mean time to recover over closed incidents, in seconds.
pub fn mttr_seconds(incidents: &[Incident]) -> Option<i64> {
    let closed: Vec<i64> = incidents
        .iter()
        .filter_map(|i| i.ended.map(|e| (e - i.started).num_seconds()))
        .collect();
    (!closed.is_empty()).then(|| closed.iter().sum::<i64>() / closed.len() as i64)
}

pub fn longest_seconds(incidents: &[Incident], now: DateTime<Utc>) -> Option<i64> {
    incidents
        .iter()
        .map(|i| i.duration(now).num_seconds())
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap() + chrono::Duration::minutes(min)
    }

    #[test]
    fn uptime_is_time_weighted() {
        use Outcome::*;
        type Case = (
            &'static str,
            Vec<(DateTime<Utc>, Outcome)>,
            DateTime<Utc>,
            Option<f64>,
        );
        let cases: Vec<Case> = vec![
            ("nothing known", vec![], t(60), None),
            ("all ok", vec![(t(0), Ok), (t(30), Ok)], t(60), Some(100.0)),
            // ok 0-45, failing 45-60: 75%.
            (
                "failing last quarter",
                vec![(t(0), Ok), (t(45), AuthRejected)],
                t(60),
                Some(75.0),
            ),
            // failing 0-10, ok 10-40: 75%, however many probes fall inside each stretch.
            (
                "many probes",
                vec![
                    (t(0), Timeout),
                    (t(5), Timeout),
                    (t(10), Ok),
                    (t(20), Ok),
                    (t(30), Ok),
                ],
                t(40),
                Some(75.0),
            ),
            (
                "one third",
                vec![(t(0), Ok), (t(1), ScopeMissing)],
                t(3),
                Some(33.33),
            ),
            ("single result now", vec![(t(0), Ok)], t(0), Some(100.0)),
        ];
        for (name, probes, now, want) in cases {
            assert_eq!(uptime_pct(&probes, now), want, "{name}");
        }
    }

    #[test]
    fn incidents_mttr_and_longest_outage() {
        let tr = |m, s| (t(m), s, format!("at {m}"));
        let transitions = vec![
            tr(0, Status::Ok),
            tr(10, Status::Warn),
            tr(12, Status::Fail),
            tr(24, Status::Ok),
            tr(30, Status::Fail),
            tr(34, Status::Ok),
            tr(50, Status::Fail),
        ];
        let inc = incidents(&transitions);
        assert_eq!(inc.len(), 3);
        assert_eq!(
            (inc[0].started, inc[0].ended, inc[0].worst),
            (t(10), Some(t(24)), Status::Fail)
        );
        assert_eq!(inc[0].reason, "at 12");
        assert_eq!(inc[2].ended, None);
        // Closed: 14 min and 4 min -> mean 9 min.
        assert_eq!(mttr_seconds(&inc), Some(540));
        // The open one has lasted 25 min at t(75).
        assert_eq!(longest_seconds(&inc, t(75)), Some(1500));
        assert_eq!(mttr_seconds(&[]), None);
    }

    #[test]
    fn startup_into_failure_opens_an_incident() {
        let inc = incidents(&[
            (t(0), Status::Fail, "x".into()),
            (t(5), Status::Ok, "ok".into()),
        ]);
        assert_eq!(inc.len(), 1);
        assert_eq!(inc[0].duration(t(100)).num_minutes(), 5);
    }
}
