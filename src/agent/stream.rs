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
use crate::model::{AuthEvent, ProbeResult};
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
    /// Integrations whose view changed, their probe history left out (see `histories`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub integrations: Vec<Arc<IntegrationView>>,
    /// How each changed integration's probe history moved on from the base: usually one result appended and,
    /// once the history is full, one dropped. Resending whole histories was most of the stream's bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub histories: Vec<HistoryPatch>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotations: Option<Arc<Vec<crate::rotation::session::RotationView>>>,
}

/// An integration's probe history, from the base's: drop the `drop` oldest results, append `append`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryPatch {
    pub name: String,
    pub drop: usize,
    pub append: Vec<ProbeResult>,
}

impl HistoryPatch {
    /// From `old` to `new`: the shortest patch when `new` continues `old`, else a full replacement.
    pub fn between(name: &str, old: &[ProbeResult], new: &[ProbeResult]) -> HistoryPatch {
        let drop = (0..=old.len())
            .find(|&k| {
                let kept = &old[k..];
                kept.len() <= new.len() && new[..kept.len()] == *kept
            })
            .unwrap_or(old.len());
        HistoryPatch {
            name: name.to_string(),
            drop,
            append: new[old.len() - drop..].to_vec(),
        }
    }

    pub fn apply(&self, old: &[ProbeResult]) -> Vec<ProbeResult> {
        let mut h: Vec<ProbeResult> = old[self.drop.min(old.len())..].to_vec();
        h.extend(self.append.iter().cloned());
        h
    }
}

/// The view as change detection and the wire see it: without its probe history.
fn without_history(view: &IntegrationView) -> IntegrationView {
    let mut bare = view.clone();
    bare.history = Default::default();
    bare
}

impl Delta {
    /// Apply to the snapshot it was computed against (`snap.version == self.base`).
    pub fn apply(self, snap: &Snapshot) -> Snapshot {
        let mut by_name: HashMap<String, Arc<IntegrationView>> = snap
            .integrations
            .iter()
            .map(|i| (i.name.clone(), i.clone()))
            .collect();
        let patches: HashMap<&str, &HistoryPatch> = self
            .histories
            .iter()
            .map(|p| (p.name.as_str(), p))
            .collect();
        for i in self.integrations {
            let i = match patches.get(i.name.as_str()) {
                Some(patch) => {
                    let old = by_name.get(&i.name).map(|v| &v.history[..]);
                    let mut view = Arc::unwrap_or_clone(i);
                    view.history = patch.apply(old.unwrap_or(&[])).into();
                    Arc::new(view)
                }
                None => i,
            };
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
            rotations: self.rotations.unwrap_or_else(|| snap.rotations.clone()),
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
            .map(|i| {
                let bare = without_history(i);
                (
                    i.name.clone(),
                    serde_json::to_string(&bare).unwrap_or_default(),
                )
            })
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
        let prev_by_name: HashMap<&str, &Arc<IntegrationView>> = prev
            .integrations
            .iter()
            .map(|i| (i.name.as_str(), i))
            .collect();
        let mut changed = Vec::new();
        let mut histories = Vec::new();
        for (i, view) in next.integrations.iter().enumerate() {
            if same_order && Arc::ptr_eq(view, &prev.integrations[i]) {
                continue;
            }
            let old_history = prev_by_name
                .get(view.name.as_str())
                .map(|p| &p.history[..])
                .unwrap_or(&[]);
            let bare = without_history(view);
            let json = serde_json::to_string(&bare).unwrap_or_default();
            if st.sent_views.get(&view.name) != Some(&json) || *view.history != *old_history {
                st.sent_views.insert(view.name.clone(), json);
                histories.push(HistoryPatch::between(
                    &view.name,
                    old_history,
                    &view.history,
                ));
                changed.push(Arc::new(bare));
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
            histories,
            config_name: (next.config_name != prev.config_name).then(|| next.config_name.clone()),
            environments: (next.environments != prev.environments)
                .then(|| next.environments.clone()),
            credentials,
            auth_log: (next.auth_log != prev.auth_log).then(|| next.auth_log.clone()),
            log_sources: (next.log_sources != prev.log_sources).then(|| next.log_sources.clone()),
            rotations: (next.rotations != prev.rotations).then(|| next.rotations.clone()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Outcome, Phase};

    fn probe(ms: u64) -> ProbeResult {
        let mut p = ProbeResult::new(
            crate::tui::fixture::now() + chrono::Duration::milliseconds(ms as i64),
            Outcome::Ok,
            Phase::Call,
        );
        p.token_ms = Some(ms);
        p
    }

    #[test]
    fn history_patches_carry_only_what_moved_on() {
        let [a, b, c, d, x] = [1, 2, 3, 4, 5].map(probe);
        /// (what, old history, new history, dropped, appended)
        type Case = (
            &'static str,
            Vec<ProbeResult>,
            Vec<ProbeResult>,
            usize,
            usize,
        );
        let cases: Vec<Case> = vec![
            ("first probe", vec![], vec![a.clone()], 0, 1),
            (
                "appended",
                vec![a.clone(), b.clone()],
                vec![a.clone(), b.clone(), c.clone()],
                0,
                1,
            ),
            (
                "full: one in, one out",
                vec![a.clone(), b.clone(), c.clone()],
                vec![b.clone(), c.clone(), d.clone()],
                1,
                1,
            ),
            (
                "two results at once",
                vec![a.clone(), b.clone()],
                vec![b.clone(), c.clone(), d.clone()],
                1,
                2,
            ),
            (
                "unchanged",
                vec![a.clone(), b.clone()],
                vec![a.clone(), b.clone()],
                0,
                0,
            ),
            (
                "unrelated (a reload)",
                vec![a.clone(), b.clone()],
                vec![x.clone()],
                2,
                1,
            ),
        ];
        for (what, old, new, drop, appended) in cases {
            let p = HistoryPatch::between("crm-sync", &old, &new);
            assert_eq!((p.drop, p.append.len()), (drop, appended), "{what}");
            assert_eq!(p.apply(&old), new, "{what}");
        }
    }

    #[tokio::test]
    async fn a_delta_sends_the_new_probe_not_the_history_and_rebuilds_the_snapshot() {
        let first = Arc::new(crate::tui::fixture::snapshot());
        let (_tx, rx) = watch::channel(first.clone());
        let hub = Hub::spawn(rx);
        let (_, _, mut deltas) = hub.join();

        // One integration gets a new probe result (its oldest dropped), as the engine does when full.
        let mut next = (*first).clone();
        next.version += 1;
        let idx = next
            .integrations
            .iter()
            .position(|i| i.history.len() >= 3)
            .expect("an integration with a history");
        let mut view = (*next.integrations[idx]).clone();
        view.history = view.history[1..]
            .iter()
            .cloned()
            .chain([probe(777)])
            .collect();
        view.last_success = Some(crate::tui::fixture::now());
        next.integrations[idx] = Arc::new(view.clone());
        hub.advance(Arc::new(next.clone()));

        let msg = deltas.recv().await.unwrap();
        let delta: Delta = serde_json::from_str(&msg.json).unwrap();
        assert_eq!(delta.integrations.len(), 1);
        assert!(delta.integrations[0].history.is_empty());
        assert_eq!(
            delta.histories,
            [HistoryPatch {
                name: view.name.clone(),
                drop: 1,
                append: vec![probe(777)],
            }]
        );
        let full_view = serde_json::to_string(&view).unwrap();
        assert!(
            msg.json.len() < full_view.len(),
            "delta {} bytes, the view alone {}",
            msg.json.len(),
            full_view.len()
        );
        let rebuilt = delta.apply(&first);
        assert_eq!(
            serde_json::to_value(&rebuilt).unwrap(),
            serde_json::to_value(&next).unwrap()
        );
    }
}
