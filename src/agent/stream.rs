//! The live feed behind `GET /api/v1/events`: one full snapshot when a client connects, then deltas that carry
//! only what changed (a 1,000-integration snapshot is megabytes; a probe result changes one integration).
//! Deltas are computed and serialized once per snapshot for every client, at most a few times a second.
//!
//! Wire format (Server-Sent Events):
//! - `event: snapshot` / `data: {Snapshot}`: the whole state; the client replaces what it has.
//! - `event: delta` / `data: {Delta}`: apply only when `base` is the version the client has; otherwise the
//!   client is out of step and the server follows with a new `snapshot`.
//! - `event: engine` / `data: {EngineEvent}`: status changed, paused, reloaded; probe started/finished only with
//!   `?probes=true` (two per probe: with a thousand integrations they would be most of the traffic).

use crate::engine::{CredentialView, IntegrationView, LogSourceView, Snapshot, Summary};
use crate::model::AuthEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// Fewest time between two deltas: bursts of probe results coalesce into one.
pub const MIN_DELTA_INTERVAL: Duration = Duration::from_millis(250);

/// What changed between snapshot `base` and snapshot `version`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delta {
    pub base: u64,
    pub version: u64,
    pub generated_at: DateTime<Utc>,
    pub summary: Summary,
    pub newest_data_at: Option<DateTime<Utc>>,
    pub history_error: Option<String>,
    /// Present when the set or order of integrations changed (a reload): names in config order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<Vec<String>>,
    /// Integrations whose view changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub integrations: Vec<Arc<IntegrationView>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environments: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Vec<Arc<CredentialView>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_log: Option<Arc<Vec<AuthEvent>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_sources: Option<Vec<LogSourceView>>,
}

impl Delta {
    /// Apply to the snapshot it was computed against (`snap.version == self.base`).
    pub fn apply(self, snap: &Snapshot) -> Snapshot {
        let mut by_name: HashMap<String, Arc<IntegrationView>> = snap
            .integrations
            .iter()
            .map(|i| (i.name.clone(), i.clone()))
            .collect();
        for i in self.integrations {
            by_name.insert(i.name.clone(), i);
        }
        let order: Vec<String> = self
            .order
            .unwrap_or_else(|| snap.integrations.iter().map(|i| i.name.clone()).collect());
        Snapshot {
            version: self.version,
            generated_at: self.generated_at,
            config_name: self.config_name.unwrap_or_else(|| snap.config_name.clone()),
            environments: self
                .environments
                .unwrap_or_else(|| snap.environments.clone()),
            integrations: order
                .iter()
                .filter_map(|n| by_name.get(n).cloned())
                .collect(),
            credentials: self.credentials.unwrap_or_else(|| snap.credentials.clone()),
            auth_log: self.auth_log.unwrap_or_else(|| snap.auth_log.clone()),
            summary: self.summary,
            newest_data_at: self.newest_data_at,
            history_error: self.history_error,
            log_sources: self.log_sources.unwrap_or_else(|| snap.log_sources.clone()),
            connection: None,
        }
    }
}

/// One message for every client: a delta, serialized once.
#[derive(Clone, Debug)]
pub struct DeltaMsg {
    pub base: u64,
    pub version: u64,
    pub json: Arc<str>,
}

/// Computes deltas from the engine's snapshots and fans them out.
pub struct Hub {
    state: Mutex<HubState>,
    tx: broadcast::Sender<DeltaMsg>,
}

struct HubState {
    /// The snapshot the last delta led to (what a new client starts from).
    current: Arc<Snapshot>,
    /// Its full JSON, made on the first client's demand.
    full_json: Option<Arc<str>>,
    /// Serialized views as last sent, to skip rebuilt-but-identical ones.
    sent_views: HashMap<String, String>,
    sent_credentials: String,
}

impl Hub {
    /// Start following `snapshots`; the task ends when the engine does.
    pub fn spawn(mut snapshots: watch::Receiver<Arc<Snapshot>>) -> Arc<Hub> {
        let first = snapshots.borrow_and_update().clone();
        let (tx, _) = broadcast::channel(64);
        let sent_views = first
            .integrations
            .iter()
            .map(|i| (i.name.clone(), serde_json::to_string(i).unwrap_or_default()))
            .collect();
        let hub = Arc::new(Hub {
            state: Mutex::new(HubState {
                sent_credentials: serde_json::to_string(&first.credentials).unwrap_or_default(),
                current: first,
                full_json: None,
                sent_views,
            }),
            tx,
        });
        let weak = Arc::downgrade(&hub);
        tokio::spawn(async move {
            while snapshots.changed().await.is_ok() {
                let Some(hub) = weak.upgrade() else { break };
                let next = snapshots.borrow_and_update().clone();
                hub.advance(next);
                drop(hub);
                tokio::time::sleep(MIN_DELTA_INTERVAL).await;
            }
        });
        hub
    }

    fn advance(&self, next: Arc<Snapshot>) {
        let mut st = self.state.lock().expect("hub lock");
        let prev = st.current.clone();
        if next.version == prev.version {
            return;
        }
        let same_order = prev.integrations.len() == next.integrations.len()
            && prev
                .integrations
                .iter()
                .zip(&next.integrations)
                .all(|(a, b)| a.name == b.name);
        let mut changed = Vec::new();
        for (i, view) in next.integrations.iter().enumerate() {
            if same_order && Arc::ptr_eq(view, &prev.integrations[i]) {
                continue;
            }
            let json = serde_json::to_string(view).unwrap_or_default();
            if st.sent_views.get(&view.name) != Some(&json) {
                st.sent_views.insert(view.name.clone(), json);
                changed.push(view.clone());
            }
        }
        if !same_order {
            st.sent_views
                .retain(|name, _| next.integrations.iter().any(|i| &i.name == name));
        }
        let credentials_json = serde_json::to_string(&next.credentials).unwrap_or_default();
        let credentials = (credentials_json != st.sent_credentials).then(|| {
            st.sent_credentials = credentials_json;
            next.credentials.clone()
        });
        let delta = Delta {
            base: prev.version,
            version: next.version,
            generated_at: next.generated_at,
            summary: next.summary,
            newest_data_at: next.newest_data_at,
            history_error: next.history_error.clone(),
            order: (!same_order)
                .then(|| next.integrations.iter().map(|i| i.name.clone()).collect()),
            integrations: changed,
            config_name: (next.config_name != prev.config_name).then(|| next.config_name.clone()),
            environments: (next.environments != prev.environments)
                .then(|| next.environments.clone()),
            credentials,
            auth_log: (next.auth_log != prev.auth_log).then(|| next.auth_log.clone()),
            log_sources: (next.log_sources != prev.log_sources).then(|| next.log_sources.clone()),
        };
        let json: Arc<str> = serde_json::to_string(&delta).unwrap_or_default().into();
        st.current = next;
        st.full_json = None;
        let _ = self.tx.send(DeltaMsg {
            base: delta.base,
            version: delta.version,
            json,
        });
    }

    /// The current state (version and full JSON) and a receiver for every delta after it.
    pub fn join(&self) -> (u64, Arc<str>, broadcast::Receiver<DeltaMsg>) {
        let mut st = self.state.lock().expect("hub lock");
        let rx = self.tx.subscribe();
        let json = match &st.full_json {
            Some(j) => j.clone(),
            None => {
                let j: Arc<str> = serde_json::to_string(&*st.current)
                    .unwrap_or_default()
                    .into();
                st.full_json = Some(j.clone());
                j
            }
        };
        (st.current.version, json, rx)
    }

    /// Number of connected clients.
    pub fn clients(&self) -> usize {
        self.tx.receiver_count()
    }
}
