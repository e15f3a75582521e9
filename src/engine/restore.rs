//! Continuing from the store: histories, failure counts, pauses, statuses and the 401/403 log at start, and
//! the uptime/incident summaries and recorded expiries read from it every minute.

use super::history::HistoryWriter;
use super::state::Engine;
use super::{AUTH_LOG_LEN, HISTORY_LEN, Summaries};
use crate::history_report;
use crate::model::PROBE_SOURCE;
use crate::rules::health::LogEvidence;
use crate::rules::tracking::Tracking;
use crate::store::{Recent, Store};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

impl Engine {
    /// Continue where the last run stopped: histories, failure counts, pauses, statuses and the 401/403 log.
    pub(super) async fn restore(&mut self, store: Store, retention: Duration) {
        let sources: Vec<String> = self
            .config
            .log_sources
            .iter()
            .map(|s| s.name.clone())
            .collect();
        let loaded = tokio::task::spawn_blocking(move || {
            let recent = load(&store, sources);
            (store, recent)
        })
        .await;
        let Ok((store, recent)) = loaded else {
            return;
        };
        match recent {
            Ok(recent) => self.apply_recent(recent, Utc::now()),
            Err(e) => {
                tracing::error!("cannot load history: {e}");
                self.history_error = Some(format!("history not loaded: {e}"));
            }
        }
        self.db_path = Some(store.path().to_path_buf());
        self.history = Some(HistoryWriter::spawn(store, retention));
        self.publish(Utc::now());
    }

    fn apply_recent(&mut self, mut recent: Recent, now: DateTime<Utc>) {
        let now_i = tokio::time::Instant::now();
        for (idx, integration) in self.config.integrations.iter().enumerate() {
            let st = &mut self.integrations[idx];
            if let Some(probes) = recent.probes.remove(&integration.name) {
                st.tracking = Tracking::from_history(&probes, &self.config.settings);
                if st.tracking.paused {
                    st.schedule(None, now_i);
                }
                if st.tracking.refuses_credential(&probes) {
                    self.credentials.pause(&integration.credential);
                }
                st.history = probes.into();
            }
            if let Some(ack) = recent.acks.remove(&integration.name) {
                st.acked = Some(ack);
            }
            if let Some(status) = recent.statuses.get(&integration.name) {
                // The verdict it had when we stopped: no "changed" event for a status that did not change.
                st.health.status = *status;
            }
            st.changed = true;
        }
        self.offsets = std::mem::take(&mut recent.offsets);
        let window = crate::duration::to_chrono(self.config.settings.sustained_window);
        for event in recent.auth_events.iter().rev() {
            if event.source == PROBE_SOURCE || now - event.at > window {
                continue;
            }
            if let Some(idx) = event.integration.as_deref().and_then(|n| self.index_of(n)) {
                self.integrations[idx].log_events.push_back(LogEvidence {
                    at: event.at,
                    http_status: event.http_status,
                    source: event.source.clone(),
                });
            }
        }
        self.auth_log = recent.auth_events.into();
    }

    /// Read uptime, incidents and recorded expiries from the history database off the engine's thread (one job at a time).
    pub(super) fn summarize(&mut self) {
        let Some(path) = self.db_path.clone() else {
            return;
        };
        if self.summarizing {
            return;
        }
        self.summarizing = true;
        let names: Vec<String> = self
            .config
            .integrations
            .iter()
            .map(|i| i.name.clone())
            .collect();
        let credentials: Vec<String> = self
            .config
            .credentials
            .iter()
            .map(|c| c.id.clone())
            .collect();
        let tx = self.summaries_tx.clone();
        let generation = self.generation;
        tokio::task::spawn_blocking(move || {
            let now = Utc::now();
            let (list, expiries) = match Store::open(&path) {
                Ok(store) => (
                    names
                        .iter()
                        .map(|n| history_report::summarize(&store, n, now).ok())
                        .collect(),
                    credentials
                        .into_iter()
                        .filter_map(|c| {
                            let at = store.recorded_expiry(&c).ok().flatten()?;
                            Some((c, at))
                        })
                        .collect(),
                ),
                Err(e) => {
                    tracing::warn!("cannot read history for uptime: {e}");
                    (vec![None; names.len()], Vec::new())
                }
            };
            let _ = tx.send(Summaries {
                generation,
                list,
                expiries,
            });
        });
    }

    /// Summaries read by `summarize`, for the configuration they were read for.
    pub(super) fn take_summaries(&mut self, summaries: Summaries) {
        self.summarizing = false;
        if summaries.generation != self.generation {
            return;
        }
        for (st, summary) in self.integrations.iter_mut().zip(summaries.list) {
            if let Some(summary) = summary.filter(|s| *s != st.summary) {
                st.summary = summary;
                st.changed = true;
            }
        }
        for (credential, expires) in summaries.expiries {
            self.set_secret_expiry(&credential, expires);
        }
    }

    /// A rotation recorded a new expiry (here, or by `authwatch rotate` in another process): use it when it is
    /// later than the configured one.
    pub(super) fn set_secret_expiry(&mut self, credential: &str, expires: DateTime<Utc>) {
        let Some(current) = self.config.credential(credential) else {
            return;
        };
        if current.secret_expires.is_some_and(|e| e >= expires) {
            return;
        }
        let mut config = (*self.config).clone();
        if let Some(c) = config.credentials.iter_mut().find(|c| c.id == credential) {
            c.secret_expires = Some(expires);
        }
        self.config = Arc::new(config);
        for idx in self.consumers(credential) {
            self.integrations[idx].changed = true;
        }
        // The calendar shows credentials even without a changed integration.
        self.log_changed = true;
    }
}

/// The store's recent state plus the offsets of every followed file.
fn load(store: &Store, sources: Vec<String>) -> Result<Recent, crate::store::StoreError> {
    let mut recent = store.load_recent(HISTORY_LEN, AUTH_LOG_LEN)?;
    for source in sources {
        let offsets = store
            .offsets(&source)?
            .into_iter()
            .filter_map(|(path, identity, offset)| {
                Some(crate::ingest::Offsets {
                    path: path.into(),
                    identity: serde_json::from_str(&identity).ok()?,
                    offset,
                })
            })
            .collect();
        recent.offsets.insert(source, offsets);
    }
    Ok(recent)
}
