//! Prometheus metrics of the agent (`GET /metrics`), in the text exposition format via `prometheus-client`.
//!
//! Names are fixed (dashboards and the shipped alert rules depend on them):
//! - `authwatch_integration_status` (0 ok, 1 warn, 2 fail, 3 unknown)
//! - `authwatch_secret_expiry_timestamp_seconds`, `authwatch_last_success_timestamp_seconds`
//! - `authwatch_token_request_duration_seconds` (histogram)
//! - `authwatch_probes_total{outcome}`, `authwatch_auth_events_total{code,source}`
//!
//! with the labels integration, credential, business_unit, team and environment (empty when not configured,
//! which Prometheus treats as absent); and `authwatch_notifications_total{receiver,event,outcome}` (outcome
//! sent, failed or muted; counted by the notifier as each outcome is recorded). Gauges are rebuilt from the
//! newest snapshot at every scrape, so an integration removed by a reload disappears; counters and the
//! histogram follow the snapshots as they come.

use crate::engine::{IntegrationView, Snapshot};
use crate::model::{AuthEvent, Status};
use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The labels every per-integration series carries.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IntegrationLabels {
    pub integration: String,
    pub credential: String,
    pub business_unit: String,
    pub team: String,
    pub environment: String,
}

impl IntegrationLabels {
    pub fn of(v: &IntegrationView) -> Self {
        Self {
            integration: v.name.clone(),
            credential: v.credential.clone(),
            business_unit: v.business_unit.clone().unwrap_or_default(),
            team: v.team.clone().unwrap_or_default(),
            environment: v.environment.clone().unwrap_or_default(),
        }
    }
    fn unmatched() -> Self {
        Self {
            integration: String::new(),
            credential: String::new(),
            business_unit: String::new(),
            team: String::new(),
            environment: String::new(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLabels {
    #[prometheus(flatten)]
    integration: IntegrationLabels,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuthLabels {
    #[prometheus(flatten)]
    integration: IntegrationLabels,
    code: String,
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    task: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotificationLabels {
    receiver: String,
    event: String,
    outcome: String,
}

/// The numeric value of `authwatch_integration_status`.
pub fn status_value(s: Status) -> i64 {
    match s {
        Status::Ok => 0,
        Status::Warn => 1,
        Status::Fail => 2,
        Status::Unknown => 3,
    }
}

/// Token request latency buckets (seconds): SFMC answers in 100-500 ms; timeouts are 10 s by default.
const DURATION_BUCKETS: [f64; 11] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 30.0];

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

type AuthKey = (DateTime<Utc>, Option<String>, u16, String, String);

struct Tracking {
    /// Newest probe counted, per integration.
    last_probe: HashMap<String, DateTime<Utc>>,
    /// The history last counted, per integration: the engine shares it between snapshots until a probe
    /// finishes, so an unchanged integration costs one pointer comparison, not a relabelling.
    counted: HashMap<String, crate::model::History>,
    /// The 401/403 log as last seen (multiset), to count only what is new.
    auth_seen: HashMap<AuthKey, usize>,
    auth_log: Option<Arc<Vec<AuthEvent>>>,
    last_version: u64,
}

/// All authwatch metrics. Cheap to share (`Arc`).
pub struct Metrics {
    registry: Registry,
    status: Family<IntegrationLabels, Gauge>,
    expiry: Family<IntegrationLabels, Gauge>,
    last_success: Family<IntegrationLabels, Gauge>,
    up_since: Gauge,
    duration: Family<IntegrationLabels, Histogram, fn() -> Histogram>,
    probes: Family<ProbeLabels, Counter>,
    auth_events: Family<AuthLabels, Counter>,
    notifications: Family<NotificationLabels, Counter>,
    task_restarts: Family<TaskLabels, Counter>,
    started: DateTime<Utc>,
    tracking: Mutex<Tracking>,
    /// Held while gauges are rebuilt and encoded, so a scrape never sees half a refresh.
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let status = Family::<IntegrationLabels, Gauge>::default();
        let expiry = Family::<IntegrationLabels, Gauge>::default();
        let last_success = Family::<IntegrationLabels, Gauge>::default();
        let up_since = Gauge::default();
        let duration =
            Family::<IntegrationLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                duration_histogram,
            );
        let probes = Family::<ProbeLabels, Counter>::default();
        let auth_events = Family::<AuthLabels, Counter>::default();
        let notifications = Family::<NotificationLabels, Counter>::default();
        let task_restarts = Family::<TaskLabels, Counter>::default();
        registry.register(
            "authwatch_integration_status",
            "Health of the integration: 0 ok, 1 warn, 2 fail, 3 unknown",
            status.clone(),
        );
        registry.register(
            "authwatch_secret_expiry_timestamp_seconds",
            "When the client secret of the integration's credential expires (Unix time)",
            expiry.clone(),
        );
        registry.register(
            "authwatch_last_success_timestamp_seconds",
            "Time of the integration's last successful probe (Unix time)",
            last_success.clone(),
        );
        registry.register(
            "authwatch_token_request_duration_seconds",
            "Duration of token requests made by probes",
            duration.clone(),
        );
        registry.register(
            "authwatch_probes",
            "Probes finished, by outcome",
            probes.clone(),
        );
        registry.register(
            "authwatch_auth_events",
            "401/403 responses seen by probes and in the integrations' own logs",
            auth_events.clone(),
        );
        registry.register(
            "authwatch_notifications",
            "Notifications to [[notify]] receivers, by event and outcome (sent, failed, muted)",
            notifications.clone(),
        );
        registry.register(
            "authwatch_task_restarts",
            "Long-lived tasks (engine, probe) restarted after a panic",
            task_restarts.clone(),
        );
        registry.register(
            "authwatch_start_time_seconds",
            "When this authwatch process started (Unix time)",
            up_since.clone(),
        );
        let started = Utc::now();
        up_since.set(started.timestamp());
        Self {
            registry,
            status,
            expiry,
            last_success,
            up_since,
            duration,
            probes,
            auth_events,
            notifications,
            task_restarts,
            started,
            tracking: Mutex::new(Tracking {
                last_probe: HashMap::new(),
                counted: HashMap::new(),
                auth_seen: HashMap::new(),
                auth_log: None,
                last_version: 0,
            }),
            scrape: Mutex::new(()),
        }
    }

    /// Count one notification outcome (`sent`, `failed` or `muted`) of `event` for `receiver`.
    pub fn notification(&self, receiver: &str, event: &str, outcome: &str) {
        self.notifications
            .get_or_create(&NotificationLabels {
                receiver: receiver.to_string(),
                event: event.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Count what is new in `snap`: probes finished (outcome counter, token duration) and 401/403 events.
    /// Probes older than this process (history restored from the database) are not counted.
    pub fn observe(&self, snap: &Snapshot) {
        let mut t = self.tracking.lock().expect("metrics lock");
        if snap.version != 0 && snap.version == t.last_version {
            return;
        }
        t.last_version = snap.version;
        for view in &snap.integrations {
            if t.counted
                .get(&view.name)
                .is_some_and(|h| h.shares(&view.history))
            {
                continue;
            }
            t.counted.insert(view.name.clone(), view.history.clone());
            let since = t
                .last_probe
                .get(&view.name)
                .copied()
                .unwrap_or(self.started);
            let mut newest = since;
            let labels = IntegrationLabels::of(view);
            for p in view.history.iter().filter(|p| p.at > since) {
                newest = newest.max(p.at);
                self.probes
                    .get_or_create(&ProbeLabels {
                        integration: labels.clone(),
                        outcome: p.outcome.as_str().to_string(),
                    })
                    .inc();
                if let Some(ms) = p.token_ms {
                    self.duration
                        .get_or_create(&labels)
                        .observe(ms as f64 / 1000.0);
                }
            }
            if newest > since || !t.last_probe.contains_key(&view.name) {
                t.last_probe.insert(view.name.clone(), newest);
            }
        }
        // The log is shared (Arc) between snapshots until it changes.
        if t.auth_log
            .as_ref()
            .is_some_and(|old| Arc::ptr_eq(old, &snap.auth_log))
        {
            return;
        }
        let mut now_seen: HashMap<AuthKey, usize> = HashMap::new();
        for e in snap.auth_log.iter() {
            *now_seen
                .entry((
                    e.at,
                    e.integration.clone(),
                    e.http_status,
                    e.source.clone(),
                    e.error.clone(),
                ))
                .or_default() += 1;
        }
        let first = t.auth_log.is_none();
        for (key, n) in &now_seen {
            let before = t.auth_seen.get(key).copied().unwrap_or(0);
            // On the first look only events newer than the process count (the rest is restored history).
            let new = if first {
                if key.0 >= self.started { *n } else { 0 }
            } else {
                n.saturating_sub(before)
            };
            if new == 0 {
                continue;
            }
            let integration = key
                .1
                .as_deref()
                .and_then(|name| snap.integration(name))
                .map(|v| IntegrationLabels::of(v))
                .unwrap_or_else(|| IntegrationLabels {
                    integration: key.1.clone().unwrap_or_default(),
                    ..IntegrationLabels::unmatched()
                });
            self.auth_events
                .get_or_create(&AuthLabels {
                    integration,
                    code: key.2.to_string(),
                    source: key.3.clone(),
                })
                .inc_by(new as u64);
        }
        t.auth_seen = now_seen;
        t.auth_log = Some(snap.auth_log.clone());
    }

    /// The text exposition of every metric, gauges taken from `snap`.
    pub fn render(&self, snap: &Snapshot) -> String {
        self.observe(snap);
        let _guard = self.scrape.lock().expect("metrics scrape lock");
        self.status.clear();
        self.expiry.clear();
        self.last_success.clear();
        for view in &snap.integrations {
            let labels = IntegrationLabels::of(view);
            self.status
                .get_or_create(&labels)
                .set(status_value(view.health.status));
            if let Some(t) = view.secret_expires {
                self.expiry.get_or_create(&labels).set(t.timestamp());
            }
            if let Some(t) = view.last_success {
                self.last_success.get_or_create(&labels).set(t.timestamp());
            }
        }
        self.up_since.set(self.started.timestamp());
        for (task, n) in crate::engine::supervise::restarts() {
            let c = self.task_restarts.get_or_create(&TaskLabels {
                task: task.to_string(),
            });
            c.inc_by(n.saturating_sub(c.get()));
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!("cannot encode metrics: {e}");
        }
        out
    }
}

/// Follow the engine's snapshots so counters see every change, not only the ones a scrape happens to find.
pub fn follow(metrics: Arc<Metrics>, mut snapshots: tokio::sync::watch::Receiver<Arc<Snapshot>>) {
    tokio::spawn(async move {
        loop {
            let snap = snapshots.borrow_and_update().clone();
            metrics.observe(&snap);
            if snapshots.changed().await.is_err() {
                break;
            }
        }
    });
}
