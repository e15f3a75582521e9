//! `authwatch report`: uptime, incidents, MTTR and 401/403 counts per integration over a window.

use crate::model::Incident;
use crate::rules::uptime;
use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Serialize)]
pub struct HistoryReport {
    pub since: DateTime<Utc>,
    pub integrations: Vec<IntegrationHistory>,
}

#[derive(Debug, Serialize)]
pub struct IntegrationHistory {
    pub name: String,
    /// None when nothing was probed in the window.
    pub uptime_pct: Option<f64>,
    pub incidents: usize,
    /// Start of the incident still open at the end of the window (an integration failing from its first probe
    /// has one from then).
    pub ongoing_since: Option<DateTime<Utc>>,
    pub mttr_seconds: Option<i64>,
    pub longest_outage_seconds: Option<i64>,
    pub last_success: Option<DateTime<Utc>>,
    /// 401/403 counts over every source.
    pub auth_events: StatusCounts,
    /// The same, per source ("probe" or a log source name).
    pub auth_events_by_source: BTreeMap<String, StatusCounts>,
}

pub use crate::model::StatusCounts;

/// Incidents of one integration overlapping the window (one already open at `since` counts from `since`).
pub fn incidents(
    store: &Store,
    name: &str,
    since: DateTime<Utc>,
) -> Result<Vec<Incident>, StoreError> {
    let mut transitions: Vec<_> = store
        .transitions_since(name, since)?
        .into_iter()
        .map(|t| (t.at, t.to, t.reason))
        .collect();
    if let Some(before) = store.status_at(name, since)? {
        transitions.insert(
            0,
            (since, before, "open at the start of the window".to_string()),
        );
    }
    Ok(uptime::incidents(&transitions))
}

/// What the console's detail view shows: uptime over 24 h and 7 days, and the last week's incidents.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub uptime_24h: Option<f64>,
    pub uptime_7d: Option<f64>,
    /// Newest first.
    pub incidents: Vec<Incident>,
    /// The first probe result kept, when it is younger than a week: the uptimes cover only the time since.
    pub first_probe: Option<DateTime<Utc>>,
}

pub fn summarize(store: &Store, name: &str, now: DateTime<Utc>) -> Result<Summary, StoreError> {
    let week = now - chrono::Duration::days(7);
    let probes = store.probes_since(name, week)?;
    let day = now - chrono::Duration::hours(24);
    let from_day = probes.partition_point(|p| p.0 < day);
    let mut incidents = incidents(store, name, week)?;
    incidents.reverse();
    Ok(Summary {
        uptime_24h: uptime::uptime_pct(&probes[from_day..], now),
        uptime_7d: uptime::uptime_pct(&probes, now),
        incidents,
        first_probe: probes.first().map(|p| p.0).filter(|t| *t > week),
    })
}

pub fn build(
    store: &Store,
    names: &[String],
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<HistoryReport, StoreError> {
    let counts = store.auth_event_counts(since)?;
    let mut integrations = Vec::new();
    for name in names {
        let probes = store.probes_since(name, since)?;
        let incidents = incidents(store, name, since)?;
        let mut total = StatusCounts::default();
        let mut by_source: BTreeMap<String, StatusCounts> = BTreeMap::new();
        for (integration, source, status, n) in &counts {
            if integration.as_deref() == Some(name.as_str()) {
                total.add_n(*status, *n);
                by_source
                    .entry(source.clone())
                    .or_default()
                    .add_n(*status, *n);
            }
        }
        integrations.push(IntegrationHistory {
            name: name.clone(),
            uptime_pct: uptime::uptime_pct(&probes, now),
            incidents: incidents.len(),
            ongoing_since: incidents
                .iter()
                .find(|i| i.ended.is_none())
                .map(|i| i.started),
            mttr_seconds: uptime::mttr_seconds(&incidents),
            longest_outage_seconds: uptime::longest_seconds(&incidents, now),
            last_success: store.last_success(name)?,
            auth_events: total,
            auth_events_by_source: by_source,
        });
    }
    Ok(HistoryReport {
        since,
        integrations,
    })
}

impl HistoryReport {
    pub fn to_text(&self) -> String {
        use crate::sanitize::{column_width, fit};
        use std::fmt::Write;
        // Terminal cells, not bytes; long names cut with `…` (the same 40 as `check`'s table).
        let w = column_width(self.integrations.iter().map(|i| i.name.as_str()), 11, 40);
        let mut out = format!("since {}\n", self.since.format("%Y-%m-%d %H:%M UTC"));
        let _ = writeln!(
            out,
            "{}  {:>8}  {:>9}  {:>8}  {:>8}  {:>5}  {:>5}  LAST SUCCESS",
            fit("INTEGRATION", w),
            "UPTIME",
            "INCIDENTS",
            "MTTR",
            "LONGEST",
            "401",
            "403"
        );
        let secs = |s: Option<i64>| {
            s.map(|s| crate::duration::format_span(chrono::Duration::seconds(s)))
                .unwrap_or_else(|| "-".into())
        };
        for i in &self.integrations {
            let _ = writeln!(
                out,
                "{}  {:>8}  {:>9}  {:>8}  {:>8}  {:>5}  {:>5}  {}",
                fit(&i.name, w),
                i.uptime_pct
                    .map(|u| format!("{u:.2}%"))
                    .unwrap_or_else(|| "-".into()),
                match i.ongoing_since {
                    Some(_) => format!("{} ongoing", i.incidents),
                    None => i.incidents.to_string(),
                },
                secs(i.mttr_seconds),
                secs(i.longest_outage_seconds),
                i.auth_events.unauthorized,
                i.auth_events.forbidden,
                i.last_success
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_else(|| "never".into()),
            );
        }
        out
    }
}
