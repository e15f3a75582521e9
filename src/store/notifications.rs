//! The record of every notification: sent, muted (maintenance, acknowledgement) or given up on. The notifier
//! also reads it back on start, so an incident notified before a restart is not notified again.

use super::{Store, StoreError, from_ms, ms};
use chrono::{DateTime, Utc};
use rusqlite::params;

/// One row of the `notifications` table. Never holds a URL or a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRecord {
    pub at: DateTime<Utc>,
    /// The `[[notify]]` name.
    pub receiver: String,
    /// webhook, slack, alertmanager.
    pub kind: String,
    /// fail, resolved, expiry, refresh.
    pub event: String,
    /// The integration or credential it is about.
    pub subject: String,
    /// Identifies the incident (or expiry notice) so that each is notified once.
    pub incident_key: String,
    /// sent, muted, failed.
    pub outcome: String,
    pub attempts: u32,
    /// Why it was muted or failed (never a URL).
    pub detail: Option<String>,
}

impl Store {
    pub fn record_notification(&mut self, n: &NotificationRecord) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO notifications (at, receiver, kind, event, subject, incident_key, outcome, attempts, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    ms(n.at),
                    n.receiver,
                    n.kind,
                    n.event,
                    n.subject,
                    n.incident_key,
                    n.outcome,
                    n.attempts,
                    n.detail
                ])
            })
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// All notification records, oldest first (optionally only since `since`).
    pub fn notifications(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT at, receiver, kind, event, subject, incident_key, outcome, attempts, detail
                 FROM notifications WHERE at >= ?1 ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![since.map(ms).unwrap_or(i64::MIN)], |r| {
                Ok(NotificationRecord {
                    at: from_ms(r.get(0)?),
                    receiver: r.get(1)?,
                    kind: r.get(2)?,
                    event: r.get(3)?,
                    subject: r.get(4)?,
                    incident_key: r.get(5)?,
                    outcome: r.get(6)?,
                    attempts: r.get(7)?,
                    detail: r.get(8)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }
}
