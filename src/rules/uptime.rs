//! Availability figures from history: pure functions over probe results and status transitions.

use crate::model::{Incident, Outcome, Status};
use chrono::{DateTime, Utc};
use std::collections::VecDeque;

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

/// One integration's probe results as runs of equal ok-ness, for uptime without keeping every result (a week
/// at a 5-minute interval is 2,016 results; its runs are usually a handful). Updated as results arrive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Runs {
    /// (first result of the run, ok), oldest first.
    runs: VecDeque<(DateTime<Utc>, bool)>,
    newest: Option<DateTime<Utc>>,
}

impl Runs {
    /// Add a result (one older than the newest is ignored: results of one integration arrive in order).
    pub fn push(&mut self, at: DateTime<Utc>, ok: bool) {
        if self.newest.is_some_and(|n| at < n) {
            return;
        }
        self.newest = Some(at);
        if self.runs.back().is_none_or(|r| r.1 != ok) {
            self.runs.push_back((at, ok));
        }
    }

    /// The first result kept (the start of the oldest run).
    pub fn first(&self) -> Option<DateTime<Utc>> {
        self.runs.front().map(|r| r.0)
    }

    /// Forget runs that ended before `since` (the one in progress at `since` stays).
    pub fn prune(&mut self, since: DateTime<Utc>) {
        while self.runs.get(1).is_some_and(|r| r.0 <= since) {
            self.runs.pop_front();
        }
    }

    /// `uptime_pct` over the results since `since`, except that a run already in progress at `since` counts
    /// from `since` (the first result inside the window is not kept). None when nothing was probed since.
    pub fn uptime(&self, since: DateTime<Utc>, now: DateTime<Utc>) -> Option<f64> {
        if self.newest.is_none_or(|n| n < since) {
            return None;
        }
        let (mut covered, mut up) = (0i64, 0i64);
        for (i, (start, ok)) in self.runs.iter().enumerate() {
            let from = (*start).max(since);
            let until = self.runs.get(i + 1).map_or(now, |r| r.0).min(now);
            let span = (until - from).num_milliseconds().max(0);
            covered += span;
            if *ok {
                up += span;
            }
        }
        if covered == 0 {
            return Some(if self.runs.back().is_some_and(|r| r.1) {
                100.0
            } else {
                0.0
            });
        }
        Some((up as f64 * 10_000.0 / covered as f64).round() / 100.0)
    }
}

/// A status change: when, to what, why.
pub type Change = (DateTime<Utc>, Status, String);

/// Incidents overlapping the window from `since`, from status changes (oldest first); one already open at
/// `since` counts from `since`.
pub fn incidents_since(changes: &[Change], since: DateTime<Utc>) -> Vec<Incident> {
    let from = changes.partition_point(|c| c.0 < since);
    let mut list: Vec<Change> = Vec::with_capacity(changes.len() - from + 1);
    if let Some(before) = from.checked_sub(1).map(|i| &changes[i]) {
        list.push((
            since,
            before.1,
            "open at the start of the window".to_string(),
        ));
    }
    list.extend_from_slice(&changes[from..]);
    incidents(&list)
}

/// Forget changes before `since`, except the last one (it says what was in force at `since`).
pub fn prune_changes(changes: &mut Vec<Change>, since: DateTime<Utc>) {
    let from = changes.partition_point(|c| c.0 < since);
    changes.drain(..from.saturating_sub(1));
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

    #[test]
    fn runs_agree_with_every_result_when_the_window_starts_at_a_run() {
        use Outcome::*;
        let results = [
            (t(0), Timeout),
            (t(5), Timeout),
            (t(10), Ok),
            (t(20), Ok),
            (t(30), AuthRejected),
            (t(45), Ok),
        ];
        let mut runs = Runs::default();
        for (at, o) in &results {
            runs.push(*at, o.is_ok());
        }
        for (since, now) in [
            (t(0), t(60)),
            (t(10), t(60)),
            (t(30), t(50)),
            (t(45), t(45)),
        ] {
            let inside: Vec<_> = results.iter().filter(|r| r.0 >= since).copied().collect();
            assert_eq!(
                runs.uptime(since, now),
                uptime_pct(&inside, now),
                "{since} {now}"
            );
        }
        // A run in progress at the window's start counts from it: ok 15-30, failing 30-45, ok 45-60.
        assert_eq!(runs.uptime(t(15), t(60)), Some(66.67));
        assert_eq!(runs.uptime(t(61), t(70)), None, "nothing probed since");
        runs.prune(t(31));
        assert_eq!(
            runs.uptime(t(31), t(60)),
            Some(51.72),
            "pruning keeps the run in progress"
        );
        runs.push(t(44), false);
        assert_eq!(
            runs.uptime(t(31), t(60)),
            Some(51.72),
            "an older result is ignored"
        );
    }

    #[test]
    fn incidents_since_a_time_count_an_open_one_from_it() {
        let mut changes: Vec<Change> = vec![
            (t(0), Status::Fail, "refused".into()),
            (t(10), Status::Ok, "ok".into()),
            (t(20), Status::Warn, "slow".into()),
        ];
        assert_eq!(incidents_since(&changes, t(5)).len(), 2);
        assert_eq!(incidents_since(&changes, t(5))[0].started, t(5));
        assert_eq!(incidents_since(&changes, t(15)).len(), 1);
        prune_changes(&mut changes, t(15));
        assert_eq!(changes.len(), 2, "the change in force at the start stays");
        assert_eq!(incidents_since(&changes, t(25))[0].started, t(25));
    }
}
