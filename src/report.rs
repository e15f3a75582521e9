//! The machine-readable state: `check --format json` and the agent's `/api/v1/state` speak this.

use crate::engine::{IntegrationView, Snapshot, Summary};
use crate::model::{Outcome, Status};
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct StateReport {
    pub generated_at: DateTime<Utc>,
    pub summary: Summary,
    pub integrations: Vec<IntegrationReport>,
    pub credentials: Vec<CredentialReport>,
}

#[derive(Debug, Serialize)]
pub struct IntegrationReport {
    pub name: String,
    pub credential: String,
    pub status: Status,
    pub reasons: Vec<String>,
    pub probe: Option<ProbeReport>,
    /// Uptime and incidents kept by a running engine (console, agent) from the first probe on; absent in a
    /// one-shot `check`, which keeps no history.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<HistoryFigures>,
}

#[derive(Debug, Serialize)]
pub struct HistoryFigures {
    /// Percent of the covered time the integration was ok (from its first probe when that is younger).
    pub uptime_24h: Option<f64>,
    pub uptime_7d: Option<f64>,
    /// The first probe, when younger than a week: the uptimes cover only the time since.
    pub uptime_since: Option<DateTime<Utc>>,
    /// Incidents overlapping the last 7 days, the ongoing one included.
    pub incidents_7d: usize,
    /// Start of the ongoing incident, if there is one.
    pub incident_since: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
pub struct ProbeReport {
    pub outcome: Outcome,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    /// What the server said beyond the code (error_description, SFMC errorcode), or the transport error chain.
    pub detail: Option<String>,
    pub token_ms: Option<u64>,
    pub call_ms: Option<u64>,
    pub missing_scopes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct CredentialReport {
    pub id: String,
    /// Date only, as Setup shows it.
    pub secret_expires: Option<String>,
    pub days_left: Option<i64>,
    pub status: Status,
}

impl StateReport {
    pub fn from_snapshot(s: &Snapshot) -> Self {
        Self {
            generated_at: s.generated_at,
            summary: s.summary,
            integrations: s
                .integrations
                .iter()
                .map(|i| IntegrationReport::from_view(i))
                .collect(),
            credentials: s
                .credentials
                .iter()
                .map(|c| CredentialReport {
                    id: c.id.clone(),
                    secret_expires: c.secret_expires.map(|d| d.format("%Y-%m-%d").to_string()),
                    days_left: c.days_left,
                    status: c.expiry_status,
                })
                .collect(),
        }
    }

    /// A plain table for terminals and Nagios-style output.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let name_w = self
            .integrations
            .iter()
            .map(|i| i.name.len())
            .max()
            .unwrap_or(4)
            .max(11);
        let cred_w = self
            .integrations
            .iter()
            .map(|i| i.credential.len())
            .max()
            .unwrap_or(4)
            .max(10);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<7}  {:<name_w$}  {:<cred_w$}  {:>8}  REASON",
            "STATUS", "INTEGRATION", "CREDENTIAL", "LATENCY"
        );
        // What is broken first: fail, warn, unknown, ok (config order within each).
        let mut integrations: Vec<&IntegrationReport> = self.integrations.iter().collect();
        integrations.sort_by_key(|i| std::cmp::Reverse(i.status));
        for i in integrations {
            let latency = i
                .probe
                .as_ref()
                .and_then(|p| match (p.token_ms, p.call_ms) {
                    (None, None) => None,
                    (t, c) => Some(t.unwrap_or(0) + c.unwrap_or(0)),
                })
                .map(|ms| format!("{ms}ms"))
                .unwrap_or_else(|| "-".into());
            let reason = i.reasons.first().map(String::as_str).unwrap_or("");
            let _ = writeln!(
                out,
                "{:<7}  {:<name_w$}  {:<cred_w$}  {latency:>8}  {reason}",
                i.status.label(),
                i.name,
                i.credential
            );
            for more in i.reasons.iter().skip(1) {
                let _ = writeln!(
                    out,
                    "{:<7}  {:<name_w$}  {:<cred_w$}  {:>8}  {more}",
                    "", "", "", ""
                );
            }
        }
        if !self.credentials.is_empty() {
            let _ = writeln!(out);
            let id_w = self
                .credentials
                .iter()
                .map(|c| c.id.len())
                .max()
                .unwrap_or(4)
                .max(10);
            let _ = writeln!(
                out,
                "{:<7}  {:<id_w$}  {:<10}  DAYS LEFT",
                "EXPIRY", "CREDENTIAL", "EXPIRES"
            );
            // Soonest expiry first; credentials without a date last.
            let mut credentials: Vec<&CredentialReport> = self.credentials.iter().collect();
            credentials.sort_by_key(|c| (c.days_left.is_none(), c.days_left));
            for c in credentials {
                let _ = writeln!(
                    out,
                    "{:<7}  {:<id_w$}  {:<10}  {}",
                    c.status.label(),
                    c.id,
                    c.secret_expires.as_deref().unwrap_or("-"),
                    c.days_left
                        .map(|d| d.to_string())
                        .unwrap_or_else(|| "-".into())
                );
            }
        }
        let s = &self.summary;
        let _ = writeln!(
            out,
            "\n{} ok, {} warn, {} fail, {} unknown",
            s.ok, s.warn, s.fail, s.unknown
        );
        out
    }
}

impl IntegrationReport {
    pub fn from_view(v: &IntegrationView) -> Self {
        Self {
            name: v.name.clone(),
            credential: v.credential.clone(),
            status: v.health.status,
            reasons: v.health.reasons.clone(),
            probe: v.last_probe().map(|p| ProbeReport {
                outcome: p.outcome,
                http_status: p.http_status,
                error: p.error.clone(),
                detail: p.detail.clone(),
                token_ms: p.token_ms,
                call_ms: p.call_ms,
                missing_scopes: p.missing_scopes.clone(),
            }),
            history: (v.uptime_24h.is_some() || !v.incidents.is_empty()).then(|| HistoryFigures {
                uptime_24h: v.uptime_24h,
                uptime_7d: v.uptime_7d,
                uptime_since: v.uptime_since,
                incidents_7d: v.incidents.len(),
                incident_since: v
                    .incidents
                    .iter()
                    .find(|i| i.ended.is_none())
                    .map(|i| i.started),
            }),
        }
    }
}
