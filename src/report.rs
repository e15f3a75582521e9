//! The machine-readable state: `check --format json` and the agent's `/api/v1/state` speak this.

use crate::engine::{IntegrationView, Snapshot, Summary};
use crate::model::{Outcome, Status};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// The widest a name column of a text table gets (terminal cells); longer names are cut with `…`.
pub const MAX_NAME_COLUMN: usize = 40;

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

    /// A plain table for terminals and Nagios-style output. Columns are measured in terminal cells (CJK and
    /// emoji take two) and long names are cut with `…` at [`MAX_NAME_COLUMN`].
    pub fn to_text(&self) -> String {
        use crate::sanitize::{column_width, fit};
        use std::fmt::Write;
        let name_w = column_width(
            self.integrations.iter().map(|i| i.name.as_str()),
            11,
            MAX_NAME_COLUMN,
        );
        let cred_w = column_width(
            self.integrations.iter().map(|i| i.credential.as_str()),
            10,
            MAX_NAME_COLUMN,
        );
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<7}  {}  {}  {:>8}  REASON",
            "STATUS",
            fit("INTEGRATION", name_w),
            fit("CREDENTIAL", cred_w),
            "LATENCY"
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
                    (t, c) => Some(t.unwrap_or(0).saturating_add(c.unwrap_or(0))),
                })
                .map(|ms| format!("{ms}ms"))
                .unwrap_or_else(|| "-".into());
            let reason = i.reasons.first().map(String::as_str).unwrap_or("");
            let _ = writeln!(
                out,
                "{:<7}  {}  {}  {latency:>8}  {reason}",
                i.status.label(),
                fit(&i.name, name_w),
                fit(&i.credential, cred_w)
            );
            for more in i.reasons.iter().skip(1) {
                let _ = writeln!(
                    out,
                    "{:<7}  {}  {}  {:>8}  {more}",
                    "",
                    fit("", name_w),
                    fit("", cred_w),
                    ""
                );
            }
        }
        if !self.credentials.is_empty() {
            let _ = writeln!(out);
            let id_w = column_width(
                self.credentials.iter().map(|c| c.id.as_str()),
                10,
                MAX_NAME_COLUMN,
            );
            let _ = writeln!(
                out,
                "{:<7}  {}  {:<10}  DAYS LEFT",
                "EXPIRY",
                fit("CREDENTIAL", id_w),
                "EXPIRES"
            );
            // Soonest expiry first; credentials without a date last.
            let mut credentials: Vec<&CredentialReport> = self.credentials.iter().collect();
            credentials.sort_by_key(|c| (c.days_left.is_none(), c.days_left));
            for c in credentials {
                let _ = writeln!(
                    out,
                    "{:<7}  {}  {:<10}  {}",
                    c.status.label(),
                    fit(&c.id, id_w),
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
