//! What to notify, decided from snapshots alone (pure: `now` is passed in, no I/O), so that it is table-tested.
//!
//! - An incident opens when an integration reaches the receiver's `min_severity` (after the engine's confirm
//!   retries, i.e. when its status turns FAIL) and closes when it is OK again: one `fail` and one `resolved`
//!   message per incident, never one per probe.
//! - A maintenance window or an acknowledgement mutes the `fail` message (recorded as muted). When a
//!   maintenance window ends while the incident is still open and unacknowledged, the `fail` goes out then.
//!   A `resolved` is sent whenever its `fail` was: resolutions only ever reduce noise.
//! - A client secret crossing 30, 14, 7 and 1 days before expiry is notified once per threshold (muted
//!   notices wait for the window to end).

use crate::config::{Maintenance, NotifyConfig};
use crate::engine::{IntegrationView, Snapshot};
use crate::model::Status;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// Days before expiry at which a notice goes out.
pub const EXPIRY_THRESHOLDS: [i64; 4] = [30, 14, 7, 1];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Fail,
    Resolved,
    Expiry,
    /// Alertmanager only: a firing alert re-posted so that it does not time out.
    Refresh,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Fail => "fail",
            EventKind::Resolved => "resolved",
            EventKind::Expiry => "expiry",
            EventKind::Refresh => "refresh",
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
    v: &IntegrationView,
    event: EventKind,
    key: &str,
    started: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Message {
    Message {
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
        for r in receivers {
            for v in &snap.integrations {
                let team = v.team.as_deref();
                if !wants(r, team) {
                    continue;
                }
                let status = v.health.status;
                let slot = (r.name.clone(), v.name.clone());
                let qualifies =
                    matches!(status, Status::Warn | Status::Fail) && status >= r.min_severity;
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
                            },
                        );
                        out.push(Planned {
                            receiver: r.name.clone(),
                            message: message(v, EventKind::Fail, &key, started, now),
                            muted,
                        });
                    }
                    None => {}
                    Some(inc) if status == Status::Ok => {
                        let inc = inc.clone();
                        self.open.remove(&slot);
                        out.push(Planned {
                            receiver: r.name.clone(),
                            message: message(v, EventKind::Resolved, &inc.key, inc.started, now),
                            muted: (!inc.sent)
                                .then(|| "its failure was not notified (muted)".to_string()),
                        });
                    }
                    // Muted by a window that has ended, not acknowledged: notify now.
                    Some(inc) if !inc.sent && qualifies && muting().is_none() => {
                        inc.sent = true;
                        out.push(Planned {
                            receiver: r.name.clone(),
                            message: message(v, EventKind::Fail, &inc.key, inc.started, now),
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
                let Some(threshold) = EXPIRY_THRESHOLDS.iter().rev().find(|t| days <= **t) else {
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
                let key = format!(
                    "expiry:{}:{}:{threshold}d",
                    c.id,
                    expires.format("%Y-%m-%d")
                );
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
                        status: c.expiry_status,
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
                    });
                    if entry.key == rec.incident_key {
                        entry.sent |= sent;
                    } else {
                        *entry = OpenIncident {
                            key: rec.incident_key.clone(),
                            started,
                            sent,
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
                "expiry" => {
                    self.notices
                        .insert((rec.receiver.clone(), rec.incident_key.clone()));
                }
                _ => {}
            }
        }
    }
}
