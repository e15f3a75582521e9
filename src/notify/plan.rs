//! What to notify, decided from snapshots alone (pure: `now` is passed in, no I/O), so that it is table-tested.
//!
//! - An incident opens when an integration reaches the receiver's `min_severity` (after the engine's confirm
//!   retries, i.e. when its status turns FAIL) and closes when it is OK again: one `fail` and one `resolved`
//!   message per incident, never one per probe.
//! - A maintenance window or an acknowledgement mutes the `fail` message (recorded as muted). When a
//!   maintenance window ends while the incident is still open and unacknowledged, the `fail` goes out then.
//!   A `resolved` is sent whenever its `fail` was: resolutions only ever reduce noise.
//! - A client secret crossing each of the receiver's `expiry_reminders` (default 30, 14, 7 and 1 days) before
//!   expiry, and expiring, is notified once each (muted notices wait for the window to end). A reminder's
//!   severity is the credential's expiry status (at least warn), and `min_severity` applies to it.
//! - A receiver gets only the `events` it asks for; PagerDuty receivers also get an `acknowledged` when the
//!   incident is acknowledged in authwatch.

use crate::config::{Maintenance, NotifyConfig, NotifyEvent, NotifyKind};
use crate::engine::{IntegrationView, Snapshot};
use crate::model::Status;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// The runbook line of an expiry notice.
pub const EXPIRY_RUNBOOK: &str = "Generate a new client secret for the package in Setup > Installed Packages, update \
     every consumer (authwatch rotate guides it), then revoke the old one.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Fail,
    Resolved,
    Expiry,
    /// Alertmanager only: a firing alert re-posted so that it does not time out.
    Refresh,
    /// PagerDuty only: the incident was acknowledged in authwatch.
    Acknowledged,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Fail => "fail",
            EventKind::Resolved => "resolved",
            EventKind::Expiry => "expiry",
            EventKind::Refresh => "refresh",
            EventKind::Acknowledged => "acknowledged",
        }
    }
}

/// One notification, independent of how a receiver formats it. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub event: EventKind,
    /// Integration name (fail/resolved) or credential id (expiry).
    pub subject: String,
    pub integration: Option<String>,
    pub credential: String,
    pub team: Option<String>,
    pub business_unit: Option<String>,
    pub environment: Option<String>,
    /// The credential's owner (from `[[credential]] owner`).
    pub owner: Option<String>,
    /// The business unit's MID.
    pub account_id: Option<String>,
    /// What an on-call person should do (the probe outcome's runbook line).
    pub runbook: Option<String>,
    pub status: Status,
    pub reason: String,
    pub at: DateTime<Utc>,
    /// When the incident began (fail/resolved).
    pub started: Option<DateTime<Utc>>,
    pub days_left: Option<i64>,
    pub expires: Option<DateTime<Utc>>,
    /// Identifies the incident or notice; the same for an incident's fail and resolved.
    pub incident_key: String,
}

/// A decision for one receiver: send it, or record it as muted (with why).
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub receiver: String,
    pub message: Message,
    pub muted: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenIncident {
    pub key: String,
    pub started: DateTime<Utc>,
    /// The fail message went out (not muted).
    pub sent: bool,
    /// The acknowledgement went out (PagerDuty).
    pub acked: bool,
}

/// Incidents and notices per receiver, carried from snapshot to snapshot (and restored from the store).
#[derive(Debug, Default)]
pub struct Planner {
    /// (receiver, integration) -> open incident.
    pub open: HashMap<(String, String), OpenIncident>,
    /// (receiver, notice key) already sent.
    pub notices: HashSet<(String, String)>,
}

/// Open maintenance windows that concern the integration.
fn maintenance_reason(
    windows: &[Maintenance],
    integration: &str,
    team: Option<&str>,
    now: DateTime<Utc>,
) -> Option<String> {
    windows
        .iter()
        .find(|w| w.applies_to(integration, team) && w.is_open(now))
        .map(|w| format!("maintenance window {:?}", w.name))
}

fn wants(r: &NotifyConfig, team: Option<&str>) -> bool {
    r.teams.is_empty() || team.is_some_and(|t| r.teams.iter().any(|x| x == t))
}

fn message(
    snap: &Snapshot,
    v: &IntegrationView,
    event: EventKind,
    key: &str,
    started: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Message {
    Message {
        owner: snap.credential(&v.credential).and_then(|c| c.owner.clone()),
        account_id: v.account_id.clone(),
        runbook: v
            .last_probe()
            .filter(|p| !p.outcome.is_ok())
            .map(|p| p.outcome.runbook().to_string()),
        event,
        subject: v.name.clone(),
        integration: Some(v.name.clone()),
        credential: v.credential.clone(),
        team: v.team.clone(),
        business_unit: v.business_unit.clone(),
        environment: v.environment.clone(),
        status: v.health.status,
        reason: v.health.short_reason().to_string(),
        at: now,
        started: Some(started),
        days_left: None,
        expires: v.secret_expires,
        incident_key: key.to_string(),
    }
}

impl Planner {
    pub fn plan(
        &mut self,
        snap: &Snapshot,
        receivers: &[NotifyConfig],
        windows: &[Maintenance],
        now: DateTime<Utc>,
    ) -> Vec<Planned> {
        let mut out = Vec::new();
        // Receivers removed by a reload: their incidents end without a message (a receiver added back later
        // with the same name starts afresh instead of inheriting an incident whose resolution it never saw).
        self.open
            .retain(|(rn, _), _| receivers.iter().any(|r| &r.name == rn));
        for r in receivers {
            for v in &snap.integrations {
                let team = v.team.as_deref();
                let slot = (r.name.clone(), v.name.clone());
                if !wants(r, team) {
                    // No longer this receiver's (its teams changed by a reload): the incident ends silently,
                    // so that it cannot hold back the fail of a later incident should the receiver want it again.
                    self.open.remove(&slot);
                    continue;
                }
                let status = v.health.status;
                let event = match status {
                    Status::Fail => Some(NotifyEvent::Fail),
                    Status::Warn => Some(NotifyEvent::Warn),
                    _ => None,
                };
                let qualifies = event.is_some_and(|e| r.wants(e)) && status >= r.min_severity;
                let muting = || {
                    maintenance_reason(windows, &v.name, team, now).or_else(|| {
                        v.acked
                            .as_ref()
                            .map(|a| format!("acknowledged by {}", a.actor))
                    })
                };
                match self.open.get_mut(&slot) {
                    None if qualifies => {
                        let started = v.failing_since.unwrap_or(now);
                        let key = format!("{}@{}", v.name, started.timestamp_millis());
                        let muted = muting();
                        self.open.insert(
                            slot,
                            OpenIncident {
                                key: key.clone(),
                                started,
                                sent: muted.is_none(),
                                acked: false,
                            },
                        );
                        out.push(Planned {
                            receiver: r.name.clone(),
                            message: message(snap, v, EventKind::Fail, &key, started, now),
                            muted,
                        });
                    }
                    None => {}
                    Some(inc) if status == Status::Ok => {
                        let inc = inc.clone();
                        self.open.remove(&slot);
                        if r.wants(NotifyEvent::Resolved) {
                            out.push(Planned {
                                receiver: r.name.clone(),
                                message: message(
                                    snap,
                                    v,
                                    EventKind::Resolved,
                                    &inc.key,
                                    inc.started,
                                    now,
                                ),
                                muted: (!inc.sent)
                                    .then(|| "its failure was not notified (muted)".to_string()),
                            });
                        }
                    }
                    // PagerDuty: an acknowledgement in authwatch acknowledges the PagerDuty incident.
                    Some(inc)
                        if inc.sent
                            && !inc.acked
                            && v.acked.is_some()
                            && r.kind == NotifyKind::PagerDuty =>
                    {
                        inc.acked = true;
                        out.push(Planned {
                            receiver: r.name.clone(),
                            message: message(
                                snap,
                                v,
                                EventKind::Acknowledged,
                                &inc.key,
                                inc.started,
                                now,
                            ),
                            muted: None,
                        });
                    }
                    // Muted by a window that has ended, not acknowledged: notify now.
                    Some(inc) if !inc.sent && qualifies && muting().is_none() => {
                        inc.sent = true;
                        out.push(Planned {
                            receiver: r.name.clone(),
                            message: message(snap, v, EventKind::Fail, &inc.key, inc.started, now),
                            muted: None,
                        });
                    }
                    Some(_) => {}
                }
            }
            // Integrations removed by a reload: their incidents end without a message.
            self.open.retain(|(rn, name), _| {
                rn != &r.name || snap.integrations.iter().any(|i| &i.name == name)
            });
            for c in &snap.credentials {
                let (Some(days), Some(expires)) = (c.days_left, c.secret_expires) else {
                    continue;
                };
                // A reminder is at least a warning; min_severity = "fail" keeps only the critical ones.
                let severity = c.expiry_status.max(Status::Warn);
                if !r.wants(NotifyEvent::Expiry) || severity < r.min_severity {
                    continue;
                }
                let Some(threshold) = r.expiry_reminders.iter().rev().find(|t| days <= **t) else {
                    continue;
                };
                let users: Vec<&IntegrationView> = snap
                    .integrations
                    .iter()
                    .filter(|i| i.credential == c.id)
                    .map(|i| &**i)
                    .filter(|i| wants(r, i.team.as_deref()))
                    .collect();
                let Some(first) = users.first() else { continue };
                // Expiry itself is a notice of its own: the consumers stop working now, not in a day.
                let notice = if days < 0 {
                    "expired".to_string()
                } else {
                    format!("{threshold}d")
                };
                let key = format!("expiry:{}:{}:{notice}", c.id, expires.format("%Y-%m-%d"));
                let slot = (r.name.clone(), key.clone());
                if self.notices.contains(&slot) {
                    continue;
                }
                if users
                    .iter()
                    .any(|i| maintenance_reason(windows, &i.name, i.team.as_deref(), now).is_some())
                {
                    continue;
                }
                self.notices.insert(slot);
                let when = if days < 0 {
                    format!("expired {} days ago", -days)
                } else if days == 0 {
                    "expires today".to_string()
                } else {
                    format!("expires in {days} days")
                };
                out.push(Planned {
                    receiver: r.name.clone(),
                    message: Message {
                        event: EventKind::Expiry,
                        subject: c.id.clone(),
                        integration: None,
                        credential: c.id.clone(),
                        team: first.team.clone(),
                        business_unit: first.business_unit.clone(),
                        environment: first.environment.clone(),
                        owner: c.owner.clone(),
                        account_id: first.account_id.clone(),
                        runbook: Some(EXPIRY_RUNBOOK.to_string()),
                        status: severity,
                        reason: format!(
                            "client secret of {} {when} ({}); used by {}",
                            c.id,
                            expires.format("%Y-%m-%d"),
                            users
                                .iter()
                                .map(|i| i.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        at: now,
                        started: None,
                        days_left: Some(days),
                        expires: Some(expires),
                        incident_key: key,
                    },
                    muted: None,
                });
            }
        }
        out
    }

    /// Continue from the notification records of an earlier run.
    pub fn restore(&mut self, records: &[crate::store::NotificationRecord]) {
        for rec in records {
            match rec.event.as_str() {
                "fail" if rec.outcome != "superseded" => {
                    let slot = (rec.receiver.clone(), rec.subject.clone());
                    let started = rec
                        .incident_key
                        .rsplit_once('@')
                        .and_then(|(_, ms)| ms.parse::<i64>().ok())
                        .and_then(chrono::DateTime::from_timestamp_millis)
                        .unwrap_or(rec.at);
                    let sent = rec.outcome == "sent" || rec.outcome == "failed";
                    let entry = self.open.entry(slot).or_insert(OpenIncident {
                        key: rec.incident_key.clone(),
                        started,
                        sent,
                        acked: false,
                    });
                    if entry.key == rec.incident_key {
                        entry.sent |= sent;
                    } else {
                        *entry = OpenIncident {
                            key: rec.incident_key.clone(),
                            started,
                            sent,
                            acked: false,
                        };
                    }
                }
                "resolved" => {
                    let slot = (rec.receiver.clone(), rec.subject.clone());
                    if self
                        .open
                        .get(&slot)
                        .is_some_and(|i| i.key == rec.incident_key)
                    {
                        self.open.remove(&slot);
                    }
                }
                "acknowledged" => {
                    let slot = (rec.receiver.clone(), rec.subject.clone());
                    if let Some(inc) = self
                        .open
                        .get_mut(&slot)
                        .filter(|i| i.key == rec.incident_key)
                    {
                        inc.acked = true;
                    }
                }
                "expiry" => {
                    self.notices
                        .insert((rec.receiver.clone(), rec.incident_key.clone()));
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::{NotifyKind, Schedule, UrlRef};
    use crate::engine::CredentialView;
    use crate::model::{Ack, Health};
    use crate::store::NotificationRecord;
    use chrono::{Duration, TimeZone};
    use std::sync::Arc;

    /// 2026-03-14 10:00:00Z: every test time is relative to it (no clock).
    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 14, 10, 0, 0).unwrap()
    }

    fn mins(m: i64) -> DateTime<Utc> {
        t0() + Duration::minutes(m)
    }

    pub(crate) fn receiver(name: &str, teams: &[&str], min_severity: Status) -> NotifyConfig {
        NotifyConfig {
            name: name.into(),
            kind: NotifyKind::Webhook,
            url: UrlRef::Plain(url::Url::parse("https://hooks.example.com/x").unwrap()),
            teams: teams.iter().map(|t| t.to_string()).collect(),
            min_severity,
            routing_key: None,
            expiry_reminders: crate::config::DEFAULT_EXPIRY_REMINDERS.to_vec(),
            events: NotifyEvent::ALL.to_vec(),
        }
    }

    /// An integration view with only what the planner reads filled in.
    pub(crate) fn view(
        name: &str,
        team: Option<&str>,
        status: Status,
        failing_since: Option<DateTime<Utc>>,
    ) -> IntegrationView {
        IntegrationView {
            name: name.into(),
            credential: "pkg".into(),
            account_id: None,
            business_unit: Some("DE".into()),
            team: team.map(String::from),
            environment: Some("prod".into()),
            processes: vec![],
            required_scopes: vec![],
            health: Health {
                status,
                reasons: match status {
                    Status::Ok => vec![],
                    s => vec![format!("{} reason", s.as_str())],
                },
            },
            history: Default::default(),
            consecutive_auth_failures: 0,
            failing_since,
            last_success: None,
            next_probe_at: None,
            paused: false,
            probing: false,
            secret_expires: None,
            acked: None,
            uptime_24h: None,
            uptime_7d: None,
            incidents: vec![],
            uptime_since: None,
            secret_verified_at: None,
            token_reused_until: None,
        }
    }

    pub(crate) fn failing(name: &str, team: Option<&str>, since: DateTime<Utc>) -> IntegrationView {
        view(name, team, Status::Fail, Some(since))
    }

    pub(crate) fn ok(name: &str, team: Option<&str>) -> IntegrationView {
        view(name, team, Status::Ok, None)
    }

    fn acked(mut v: IntegrationView, actor: &str) -> IntegrationView {
        v.acked = Some(Ack {
            at: t0(),
            actor: actor.into(),
        });
        v
    }

    fn credential(id: &str, expires: DateTime<Utc>, now: DateTime<Utc>) -> CredentialView {
        CredentialView {
            id: id.into(),
            owner: None,
            client_id: "5c9e1b7aa0d44f3e8a2b91c7".into(),
            secret_expires: Some(expires),
            days_left: Some(crate::rules::health::days_left(expires, now)),
            expiry_status: Status::Warn,
            integrations: vec![],
            paused: false,
        }
    }

    pub(crate) fn snap(
        integrations: Vec<IntegrationView>,
        credentials: Vec<CredentialView>,
    ) -> Snapshot {
        let mut s = Snapshot::empty("test");
        s.generated_at = t0();
        s.integrations = integrations.into_iter().map(Arc::new).collect();
        s.credentials = credentials.into_iter().map(Arc::new).collect();
        s
    }

    /// A one-off window of `hours` starting at `start`, for `teams` (empty: everything).
    fn window(name: &str, start: DateTime<Utc>, hours: u64, teams: &[&str]) -> Maintenance {
        Maintenance {
            name: name.into(),
            schedule: Schedule::Once(start),
            duration: std::time::Duration::from_secs(hours * 3600),
            teams: teams.iter().map(|t| t.to_string()).collect(),
            integrations: vec![],
        }
    }

    /// (receiver, event, subject, incident key, muted) of each planned message: easy to compare.
    type Brief = (String, &'static str, String, String, bool);

    /// One message to `ops` about crm-sync: (receiver, event, subject, incident key, muted).
    fn only(event: &'static str, key: &str, muted: bool) -> Vec<Brief> {
        vec![(
            "ops".into(),
            event,
            "crm-sync".into(),
            key.to_string(),
            muted,
        )]
    }

    fn brief(planned: &[Planned]) -> Vec<Brief> {
        planned
            .iter()
            .map(|p| {
                (
                    p.receiver.clone(),
                    p.message.event.as_str(),
                    p.message.subject.clone(),
                    p.message.incident_key.clone(),
                    p.muted.is_some(),
                )
            })
            .collect()
    }

    fn key(name: &str, since: DateTime<Utc>) -> String {
        format!("{name}@{}", since.timestamp_millis())
    }

    fn record(event: &str, subject: &str, key: &str, outcome: &str) -> NotificationRecord {
        NotificationRecord {
            at: mins(-60),
            receiver: "ops".into(),
            kind: "webhook".into(),
            event: event.into(),
            subject: subject.into(),
            incident_key: key.into(),
            outcome: outcome.into(),
            attempts: 1,
            detail: None,
        }
    }

    #[test]
    fn one_fail_and_one_resolved_per_incident() {
        let rs = [receiver("ops", &[], Status::Fail)];
        let mut p = Planner::default();
        let since = mins(-2);
        let k = key("crm-sync", since);

        assert!(
            p.plan(
                &snap(vec![ok("crm-sync", None)], vec![]),
                &rs,
                &[],
                mins(-5)
            )
            .is_empty()
        );

        let out = p.plan(
            &snap(vec![failing("crm-sync", None, since)], vec![]),
            &rs,
            &[],
            t0(),
        );
        assert_eq!(brief(&out), only("fail", &k, false));
        let m = &out[0].message;
        assert_eq!(m.status, Status::Fail);
        assert_eq!(m.started, Some(since));
        assert_eq!(m.at, t0());
        assert_eq!(m.integration.as_deref(), Some("crm-sync"));
        assert_eq!(m.reason, "fail reason");

        // Further failing snapshots are the same incident.
        for m in 1..=5 {
            let s = snap(vec![failing("crm-sync", None, since)], vec![]);
            assert!(p.plan(&s, &rs, &[], mins(m)).is_empty(), "minute {m}");
        }

        let out = p.plan(
            &snap(vec![ok("crm-sync", None)], vec![]),
            &rs,
            &[],
            mins(10),
        );
        assert_eq!(brief(&out), only("resolved", &k, false));
        assert_eq!(out[0].message.started, Some(since));
        assert_eq!(out[0].message.status, Status::Ok);
        assert!(p.open.is_empty());
        assert!(
            p.plan(
                &snap(vec![ok("crm-sync", None)], vec![]),
                &rs,
                &[],
                mins(11)
            )
            .is_empty()
        );

        // The next failure is a new incident with a new key.
        let again = mins(20);
        let out = p.plan(
            &snap(vec![failing("crm-sync", None, again)], vec![]),
            &rs,
            &[],
            mins(21),
        );
        assert_eq!(brief(&out), only("fail", &key("crm-sync", again), false));
    }

    #[test]
    fn receivers_filter_by_team_and_min_severity() {
        let rs = [
            receiver("all-fail", &[], Status::Fail),
            receiver("crm-warn", &["crm-ops"], Status::Warn),
            receiver("web-fail", &["web"], Status::Fail),
        ];
        let cases: &[(Option<&str>, Status, &[&str])] = &[
            (Some("crm-ops"), Status::Ok, &[]),
            (Some("crm-ops"), Status::Unknown, &[]),
            (Some("crm-ops"), Status::Warn, &["crm-warn"]),
            (Some("crm-ops"), Status::Fail, &["all-fail", "crm-warn"]),
            (Some("web"), Status::Warn, &[]),
            (Some("web"), Status::Fail, &["all-fail", "web-fail"]),
            (Some("other"), Status::Fail, &["all-fail"]),
            (None, Status::Warn, &[]),
            (None, Status::Fail, &["all-fail"]),
        ];
        for (team, status, expected) in cases {
            let mut p = Planner::default();
            let s = snap(vec![view("x", *team, *status, Some(mins(-1)))], vec![]);
            let out = p.plan(&s, &rs, &[], t0());
            let got: Vec<&str> = out.iter().map(|p| p.receiver.as_str()).collect();
            assert_eq!(&got, expected, "team {team:?}, status {status:?}");
            assert!(
                out.iter()
                    .all(|p| p.message.event == EventKind::Fail && p.muted.is_none())
            );
        }
    }

    #[test]
    fn warn_then_fail_is_one_incident_per_receiver() {
        let rs = [
            receiver("pager", &[], Status::Fail),
            receiver("chat", &[], Status::Warn),
        ];
        let mut p = Planner::default();
        let since = mins(-1);
        let out = p.plan(
            &snap(vec![view("x", None, Status::Warn, Some(since))], vec![]),
            &rs,
            &[],
            t0(),
        );
        assert_eq!(
            brief(&out),
            [("chat".into(), "fail", "x".into(), key("x", since), false)]
        );
        assert_eq!(out[0].message.status, Status::Warn);
        // Worse: the fail receiver opens its incident, the warn receiver already has one.
        let out = p.plan(
            &snap(vec![failing("x", None, since)], vec![]),
            &rs,
            &[],
            mins(1),
        );
        assert_eq!(
            brief(&out),
            [("pager".into(), "fail", "x".into(), key("x", since), false)]
        );
        // Better again but not OK: both stay open.
        let out = p.plan(
            &snap(vec![view("x", None, Status::Warn, Some(since))], vec![]),
            &rs,
            &[],
            mins(2),
        );
        assert!(out.is_empty(), "{out:#?}");
        let out = p.plan(&snap(vec![ok("x", None)], vec![]), &rs, &[], mins(3));
        let got: Vec<(&str, &str)> = out
            .iter()
            .map(|p| (p.receiver.as_str(), p.message.event.as_str()))
            .collect();
        assert_eq!(got, [("pager", "resolved"), ("chat", "resolved")]);
    }

    #[test]
    fn an_acknowledged_incident_is_muted_and_so_is_its_resolution() {
        let rs = [receiver("ops", &[], Status::Fail)];
        let mut p = Planner::default();
        let since = mins(-1);
        let s = snap(
            vec![acked(failing("crm-sync", None, since), "oncall")],
            vec![],
        );
        let out = p.plan(&s, &rs, &[], t0());
        assert_eq!(brief(&out), only("fail", &key("crm-sync", since), true));
        assert_eq!(out[0].muted.as_deref(), Some("acknowledged by oncall"));
        assert!(p.plan(&s, &rs, &[], mins(5)).is_empty());
        let out = p.plan(
            &snap(vec![ok("crm-sync", None)], vec![]),
            &rs,
            &[],
            mins(10),
        );
        assert_eq!(brief(&out), only("resolved", &key("crm-sync", since), true));

        // Acknowledged after the fail went out: nothing more, and the resolution is sent.
        let mut p = Planner::default();
        let out = p.plan(
            &snap(vec![failing("crm-sync", None, since)], vec![]),
            &rs,
            &[],
            t0(),
        );
        assert!(out[0].muted.is_none());
        assert!(p.plan(&s, &rs, &[], mins(1)).is_empty());
        let out = p.plan(&snap(vec![ok("crm-sync", None)], vec![]), &rs, &[], mins(2));
        assert_eq!(out.len(), 1);
        assert!(out[0].muted.is_none());
    }

    #[test]
    fn a_maintenance_window_holds_the_fail_until_it_ends() {
        let rs = [receiver("ops", &[], Status::Fail)];
        // Open from t0 - 1h to t0 + 1h, for crm-ops only.
        let windows = [window("SFMC release", mins(-60), 2, &["crm-ops"])];
        let since = mins(-1);
        let k = key("crm-sync", since);
        let fail = snap(vec![failing("crm-sync", Some("crm-ops"), since)], vec![]);

        let mut p = Planner::default();
        let out = p.plan(&fail, &rs, &windows, t0());
        assert_eq!(brief(&out), only("fail", &k, true));
        assert_eq!(
            out[0].muted.as_deref(),
            Some("maintenance window \"SFMC release\"")
        );
        assert!(p.plan(&fail, &rs, &windows, mins(59)).is_empty());
        // The window has ended, still failing, nobody acknowledged: the fail goes out now, same incident.
        let out = p.plan(&fail, &rs, &windows, mins(60));
        assert_eq!(brief(&out), only("fail", &k, false));
        assert_eq!(out[0].message.started, Some(since));
        assert_eq!(out[0].message.at, mins(60));
        assert!(p.plan(&fail, &rs, &windows, mins(61)).is_empty());
        let out = p.plan(
            &snap(vec![ok("crm-sync", Some("crm-ops"))], vec![]),
            &rs,
            &windows,
            mins(70),
        );
        assert_eq!(brief(&out), only("resolved", &k, false));

        // Acknowledged when the window ends: stays muted, and so does the resolution.
        let mut p = Planner::default();
        assert!(p.plan(&fail, &rs, &windows, t0())[0].muted.is_some());
        let fail_acked = snap(
            vec![acked(failing("crm-sync", Some("crm-ops"), since), "oncall")],
            vec![],
        );
        assert!(p.plan(&fail_acked, &rs, &windows, mins(60)).is_empty());
        let out = p.plan(
            &snap(vec![ok("crm-sync", Some("crm-ops"))], vec![]),
            &rs,
            &windows,
            mins(70),
        );
        assert_eq!(brief(&out), only("resolved", &k, true));

        // Recovered before the window ends: never notified at all.
        let mut p = Planner::default();
        assert!(p.plan(&fail, &rs, &windows, t0())[0].muted.is_some());
        let out = p.plan(
            &snap(vec![ok("crm-sync", Some("crm-ops"))], vec![]),
            &rs,
            &windows,
            mins(30),
        );
        assert!(out[0].muted.is_some());
        assert!(
            p.plan(
                &snap(vec![ok("crm-sync", Some("crm-ops"))], vec![]),
                &rs,
                &windows,
                mins(90)
            )
            .is_empty()
        );

        // A window for another team does not mute; neither does one that has not begun.
        for windows in [
            [window("web release", mins(-60), 2, &["web"])],
            [window("later", mins(10), 2, &[])],
        ] {
            let mut p = Planner::default();
            let out = p.plan(&fail, &rs, &windows, t0());
            assert_eq!(brief(&out), only("fail", &k, false));
        }
    }

    #[test]
    fn expiry_thresholds_notify_once_each() {
        let rs = [receiver("ops", &[], Status::Warn)];
        let expires = Utc.with_ymd_and_hms(2026, 6, 30, 12, 0, 0).unwrap();
        let users = || vec![ok("crm-sync", Some("crm-ops")), ok("web-shop", Some("web"))];
        let mut p = Planner::default();
        // (days before expiry, the notice sent then)
        let steps: &[(i64, Option<&str>)] = &[
            (45, None),
            (31, None),
            (30, Some("30d")),
            (29, None),
            (20, None),
            (15, None),
            (13, Some("14d")),
            (8, None),
            (7, Some("7d")),
            (3, None),
            (1, Some("1d")),
            (0, None),
            (-1, Some("expired")),
            (-10, None),
        ];
        for &(days, expected) in steps {
            let now = expires - Duration::days(days);
            let s = snap(users(), vec![credential("pkg", expires, now)]);
            let out = p.plan(&s, &rs, &[], now);
            let got: Vec<String> = out.iter().map(|p| p.message.incident_key.clone()).collect();
            let want: Vec<String> = expected
                .map(|t| format!("expiry:pkg:2026-06-30:{t}"))
                .into_iter()
                .collect();
            assert_eq!(got, want, "{days} days before expiry");
            for m in out.iter().map(|p| &p.message) {
                assert_eq!(m.event, EventKind::Expiry);
                assert_eq!(m.subject, "pkg");
                assert_eq!(m.days_left, Some(days));
                assert_eq!(m.expires, Some(expires));
                let when = match days {
                    d if d < 0 => format!("expired {} days ago", -d),
                    d => format!("expires in {d} days"),
                };
                assert!(m.reason.contains(&when), "{}", m.reason);
                assert!(
                    m.reason.ends_with("used by crm-sync, web-shop"),
                    "{}",
                    m.reason
                );
            }
        }

        // Seen for the first time at 20 days: the 30-day notice, once.
        let mut p = Planner::default();
        let now = expires - Duration::days(20);
        let s = snap(users(), vec![credential("pkg", expires, now)]);
        let out = p.plan(&s, &rs, &[], now);
        assert_eq!(
            brief(&out),
            [(
                "ops".into(),
                "expiry",
                "pkg".into(),
                "expiry:pkg:2026-06-30:30d".into(),
                false
            )]
        );
        assert!(p.plan(&s, &rs, &[], now + Duration::hours(1)).is_empty());

        // A rotated secret (new expiry date) starts over.
        let renewed = expires + Duration::days(365);
        let now = renewed - Duration::days(30);
        let out = p.plan(
            &snap(users(), vec![credential("pkg", renewed, now)]),
            &rs,
            &[],
            now,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].message.incident_key, "expiry:pkg:2027-06-30:30d");
    }

    #[test]
    fn an_expired_secret_is_notified_once() {
        let rs = [receiver("ops", &[], Status::Warn)];
        let expires = Utc.with_ymd_and_hms(2026, 3, 11, 8, 0, 0).unwrap();
        let s = snap(
            vec![ok("crm-sync", None)],
            vec![credential("pkg", expires, t0())],
        );
        let mut p = Planner::default();
        let out = p.plan(&s, &rs, &[], t0());
        assert_eq!(out.len(), 1);
        let m = &out[0].message;
        assert_eq!(m.days_left, Some(-3));
        assert!(m.reason.contains("expired 3 days ago"), "{}", m.reason);
        assert!(p.plan(&s, &rs, &[], mins(60)).is_empty());

        // Expires today.
        let mut p = Planner::default();
        let today = Utc.with_ymd_and_hms(2026, 3, 14, 23, 0, 0).unwrap();
        let out = p.plan(
            &snap(
                vec![ok("crm-sync", None)],
                vec![credential("pkg", today, t0())],
            ),
            &rs,
            &[],
            t0(),
        );
        assert!(
            out[0].message.reason.contains("expires today"),
            "{}",
            out[0].message.reason
        );
    }

    #[test]
    fn expiry_notices_follow_the_receivers_teams() {
        let rs = [
            receiver("crm", &["crm-ops"], Status::Warn),
            receiver("web", &["web"], Status::Warn),
        ];
        let expires = t0() + Duration::days(10);
        let mut web_only = ok("web-shop", Some("web"));
        web_only.credential = "web-pkg".into();
        let s = snap(
            vec![ok("crm-sync", Some("crm-ops")), web_only],
            vec![
                credential("pkg", expires, t0()),
                credential("web-pkg", expires, t0()),
                credential("unused", expires, t0()),
            ],
        );
        let out = Planner::default().plan(&s, &rs, &[], t0());
        let got: Vec<(&str, &str, Option<&str>)> = out
            .iter()
            .map(|p| {
                (
                    p.receiver.as_str(),
                    p.message.subject.as_str(),
                    p.message.team.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("crm", "pkg", Some("crm-ops")),
                ("web", "web-pkg", Some("web"))
            ]
        );
    }

    #[test]
    fn a_maintenance_window_holds_back_expiry_notices_until_it_ends() {
        let rs = [receiver("ops", &[], Status::Warn)];
        let windows = [window("freeze", mins(-60), 2, &["crm-ops"])];
        let expires = t0() + Duration::days(10);
        let s = snap(
            vec![ok("crm-sync", Some("crm-ops"))],
            vec![credential("pkg", expires, t0())],
        );
        let mut p = Planner::default();
        assert!(p.plan(&s, &rs, &windows, t0()).is_empty());
        assert!(p.plan(&s, &rs, &windows, mins(59)).is_empty());
        let out = p.plan(&s, &rs, &windows, mins(60));
        assert_eq!(
            brief(&out),
            [(
                "ops".into(),
                "expiry",
                "pkg".into(),
                "expiry:pkg:2026-03-24:14d".into(),
                false
            )]
        );
        assert!(p.plan(&s, &rs, &windows, mins(61)).is_empty());
    }

    #[test]
    fn restore_continues_where_the_last_run_stopped() {
        let rs = [receiver("ops", &[], Status::Warn)];
        let since = mins(-120);
        let k = key("crm-sync", since);
        let fail = snap(vec![failing("crm-sync", None, since)], vec![]);
        let fine = snap(vec![ok("crm-sync", None)], vec![]);

        // An open incident continues: no second fail, and its resolution carries its key.
        let mut p = Planner::default();
        p.restore(&[record("fail", "crm-sync", &k, "sent")]);
        assert_eq!(
            p.open.get(&("ops".into(), "crm-sync".into())),
            Some(&OpenIncident {
                key: k.clone(),
                started: since,
                sent: true,
                acked: false,
            })
        );
        assert!(p.plan(&fail, &rs, &[], t0()).is_empty());
        let out = p.plan(&fine, &rs, &[], mins(1));
        assert_eq!(brief(&out), only("resolved", &k, false));
        assert_eq!(out[0].message.started, Some(since));

        // A fail that could not be delivered still counts as notified.
        let mut p = Planner::default();
        p.restore(&[record("fail", "crm-sync", &k, "failed")]);
        assert!(p.plan(&fail, &rs, &[], t0()).is_empty());
        assert!(p.plan(&fine, &rs, &[], mins(1))[0].muted.is_none());

        // A resolved incident is closed: OK is silent, the next failure is a new incident.
        let mut p = Planner::default();
        p.restore(&[
            record("fail", "crm-sync", &k, "sent"),
            record("resolved", "crm-sync", &k, "sent"),
        ]);
        assert!(p.open.is_empty());
        assert!(p.plan(&fine, &rs, &[], t0()).is_empty());
        let again = mins(5);
        let out = p.plan(
            &snap(vec![failing("crm-sync", None, again)], vec![]),
            &rs,
            &[],
            mins(6),
        );
        assert_eq!(brief(&out), only("fail", &key("crm-sync", again), false));

        // A muted fail (window over by now, not acknowledged): the fail goes out with the old key.
        let mut p = Planner::default();
        p.restore(&[record("fail", "crm-sync", &k, "muted")]);
        let out = p.plan(&fail, &rs, &[], t0());
        assert_eq!(brief(&out), only("fail", &k, false));
        // ... and a muted fail that was later sent is not sent again.
        let mut p = Planner::default();
        p.restore(&[
            record("fail", "crm-sync", &k, "muted"),
            record("fail", "crm-sync", &k, "sent"),
        ]);
        assert!(p.plan(&fail, &rs, &[], t0()).is_empty());
        // A muted fail that recovered meanwhile: the resolution is muted too.
        let mut p = Planner::default();
        p.restore(&[record("fail", "crm-sync", &k, "muted")]);
        assert!(p.plan(&fine, &rs, &[], t0())[0].muted.is_some());

        // Another receiver's records do not count for this one.
        let mut p = Planner::default();
        let mut other = record("fail", "crm-sync", &k, "sent");
        other.receiver = "someone-else".into();
        p.restore(&[other]);
        assert_eq!(brief(&p.plan(&fail, &rs, &[], t0())).len(), 1);

        // Expiry notices sent before are not sent again; the next threshold is.
        let expires = Utc.with_ymd_and_hms(2026, 6, 30, 12, 0, 0).unwrap();
        let mut p = Planner::default();
        p.restore(&[record("expiry", "pkg", "expiry:pkg:2026-06-30:30d", "sent")]);
        let at = |days: i64| expires - Duration::days(days);
        let s = |days: i64| {
            snap(
                vec![ok("crm-sync", None)],
                vec![credential("pkg", expires, at(days))],
            )
        };
        assert!(p.plan(&s(20), &rs, &[], at(20)).is_empty());
        let out = p.plan(&s(13), &rs, &[], at(13));
        assert_eq!(
            brief(&out),
            [(
                "ops".into(),
                "expiry",
                "pkg".into(),
                "expiry:pkg:2026-06-30:14d".into(),
                false
            )]
        );
    }

    #[test]
    fn an_integration_removed_by_a_reload_ends_silently() {
        let rs = [receiver("ops", &[], Status::Fail)];
        let since = mins(-1);
        let mut p = Planner::default();
        let both = snap(
            vec![
                failing("crm-sync", None, since),
                failing("web-shop", None, since),
            ],
            vec![],
        );
        assert_eq!(p.plan(&both, &rs, &[], t0()).len(), 2);
        let out = p.plan(
            &snap(vec![failing("web-shop", None, since)], vec![]),
            &rs,
            &[],
            mins(1),
        );
        assert!(out.is_empty(), "{out:#?}");
        assert_eq!(p.open.len(), 1);
        assert!(p.open.contains_key(&("ops".into(), "web-shop".into())));
        let out = p.plan(&snap(vec![ok("web-shop", None)], vec![]), &rs, &[], mins(2));
        assert_eq!(
            brief(&out),
            [(
                "ops".into(),
                "resolved",
                "web-shop".into(),
                key("web-shop", since),
                false
            )]
        );
        assert!(p.open.is_empty());
    }

    #[test]
    fn a_receiver_removed_or_refiltered_by_a_reload_starts_afresh() {
        let ops = receiver("ops", &[], Status::Fail);
        let web_only = receiver("ops", &["web"], Status::Fail);
        let first = mins(-1);
        let fail = |since| snap(vec![failing("crm-sync", Some("crm-ops"), since)], vec![]);
        let fine = snap(vec![ok("crm-sync", Some("crm-ops"))], vec![]);

        // Removed while crm-sync fails; it recovers meanwhile; added back and crm-sync fails again.
        let mut p = Planner::default();
        assert_eq!(
            p.plan(&fail(first), std::slice::from_ref(&ops), &[], t0())
                .len(),
            1
        );
        assert!(p.plan(&fail(first), &[], &[], mins(1)).is_empty());
        assert!(p.open.is_empty());
        assert!(p.plan(&fine, &[], &[], mins(2)).is_empty());
        let again = mins(10);
        let out = p.plan(&fail(again), std::slice::from_ref(&ops), &[], mins(11));
        assert_eq!(brief(&out), only("fail", &key("crm-sync", again), false));

        // Its teams no longer include crm-sync's: same.
        let mut p = Planner::default();
        assert_eq!(
            p.plan(&fail(first), std::slice::from_ref(&ops), &[], t0())
                .len(),
            1
        );
        assert!(
            p.plan(&fine, std::slice::from_ref(&web_only), &[], mins(2))
                .is_empty()
        );
        assert!(p.open.is_empty());
        let out = p.plan(&fail(again), std::slice::from_ref(&ops), &[], mins(11));
        assert_eq!(brief(&out), only("fail", &key("crm-sync", again), false));
    }

    #[test]
    fn reminders_events_and_min_severity_per_receiver() {
        let expires = Utc.with_ymd_and_hms(2026, 6, 30, 12, 0, 0).unwrap();
        // The credential's expiry status as the engine computes it: warn within 30 days, fail within 7.
        let cred = |now: DateTime<Utc>| {
            let mut c = credential("pkg", expires, now);
            c.expiry_status = if c.days_left.unwrap() <= 7 {
                Status::Fail
            } else {
                Status::Warn
            };
            c
        };
        let critical_only = receiver("pager", &[], Status::Fail);
        let mut custom = receiver("chat", &[], Status::Warn);
        custom.expiry_reminders = vec![60, 3];
        let mut outages_only = receiver("outages", &[], Status::Warn);
        outages_only.events = vec![NotifyEvent::Fail, NotifyEvent::Resolved];
        let mut expiry_only = receiver("expiry", &[], Status::Warn);
        expiry_only.events = vec![NotifyEvent::Expiry];
        let rs = [critical_only, custom, outages_only, expiry_only];
        let mut p = Planner::default();
        let mut got: Vec<(String, String)> = Vec::new();
        for days in [61, 60, 30, 14, 7, 3, 1] {
            let now = expires - Duration::days(days);
            let s = snap(vec![ok("crm-sync", None)], vec![cred(now)]);
            for planned in p.plan(&s, &rs, &[], now) {
                assert_eq!(planned.message.event, EventKind::Expiry);
                got.push((planned.receiver, planned.message.incident_key));
            }
        }
        let want = |r: &str, t: &str| (r.to_string(), format!("expiry:pkg:2026-06-30:{t}"));
        assert_eq!(
            got,
            [
                want("chat", "60d"),
                want("expiry", "30d"),
                want("expiry", "14d"),
                // critical (within 7 days): now min_severity = "fail" lets it through
                want("pager", "7d"),
                want("expiry", "7d"),
                want("chat", "3d"),
                want("pager", "1d"),
                want("expiry", "1d"),
            ]
        );

        // Outages: the expiry-only receiver gets none, the outages one a fail and a resolved.
        let since = mins(-5);
        let mut p = Planner::default();
        let fail = snap(vec![failing("crm-sync", None, since)], vec![]);
        let out = p.plan(&fail, &rs, &[], t0());
        let who: Vec<&str> = out.iter().map(|p| p.receiver.as_str()).collect();
        assert_eq!(who, ["pager", "chat", "outages"]);
        let out = p.plan(&snap(vec![ok("crm-sync", None)], vec![]), &rs, &[], mins(1));
        assert!(out.iter().all(|p| p.message.event == EventKind::Resolved));
        assert_eq!(out.len(), 3);

        // A WARN opens an incident only where "warn" is among the events (and min_severity allows it).
        let mut no_warn = receiver("no-warn", &[], Status::Warn);
        no_warn.events = vec![NotifyEvent::Fail, NotifyEvent::Resolved];
        let chat = receiver("chat", &[], Status::Warn);
        let mut p = Planner::default();
        let warn = snap(
            vec![view("crm-sync", None, Status::Warn, Some(since))],
            vec![],
        );
        let out = p.plan(&warn, &[no_warn, chat], &[], t0());
        assert_eq!(brief(&out).len(), 1);
        assert_eq!(out[0].receiver, "chat");
    }

    #[test]
    fn pagerduty_gets_an_acknowledgement_once_per_incident() {
        let mut pd = receiver("ops", &[], Status::Fail);
        pd.kind = NotifyKind::PagerDuty;
        let hook = receiver("hook", &[], Status::Fail);
        let rs = [pd, hook];
        let since = mins(-5);
        let k = key("crm-sync", since);
        let mut owned = credential("pkg", t0() + Duration::days(300), t0());
        owned.owner = Some("jane.doe@example.com".into());
        let mut failing_view = failing("crm-sync", Some("crm-ops"), since);
        failing_view.account_id = Some("5100001".into());
        let s = |v: IntegrationView| snap(vec![v], vec![owned.clone()]);
        let mut p = Planner::default();
        let out = p.plan(&s(failing_view.clone()), &rs, &[], t0());
        assert_eq!(out.len(), 2);
        let m = &out[0].message;
        assert_eq!(m.owner.as_deref(), Some("jane.doe@example.com"));
        assert_eq!(m.account_id.as_deref(), Some("5100001"));
        let out = p.plan(&s(acked(failing_view.clone(), "oncall")), &rs, &[], mins(1));
        assert_eq!(brief(&out), only("acknowledged", &k, false));
        assert!(
            p.plan(&s(acked(failing_view.clone(), "oncall")), &rs, &[], mins(2))
                .is_empty()
        );
        // Restored from the records: acknowledged already, not again.
        let mut q = Planner::default();
        let rec = |event: &str| NotificationRecord {
            at: t0(),
            receiver: "ops".into(),
            kind: "pagerduty".into(),
            event: event.into(),
            subject: "crm-sync".into(),
            incident_key: k.clone(),
            outcome: "sent".into(),
            attempts: 1,
            detail: None,
        };
        q.restore(&[rec("fail"), rec("acknowledged")]);
        assert!(
            q.plan(&s(acked(failing_view, "oncall")), &rs[..1], &[], mins(3))
                .is_empty()
        );
        let out = p.plan(&s(ok("crm-sync", Some("crm-ops"))), &rs, &[], mins(4));
        let events: Vec<&str> = out.iter().map(|p| p.message.event.as_str()).collect();
        assert_eq!(events, ["resolved", "resolved"]);
        assert!(out.iter().all(|p| p.message.incident_key == k));
    }
}
