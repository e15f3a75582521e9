//! Continuing from the store: histories, failure counts, pauses, statuses and the 401/403 log at start, and
//! the expiries rotations record (read again whenever a rotation moves).

use super::history::HistoryWriter;
use super::state::Engine;
use super::{AUTH_LOG_LEN, HISTORY_LEN, Summaries};
use crate::model::PROBE_SOURCE;
use crate::rules::health::LogEvidence;
use crate::rules::tracking::Tracking;
use crate::rules::uptime::{Change, Runs};
use crate::store::{Recent, Record, Store, Transition};
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
        let names: Vec<String> = self
            .config
            .integrations
            .iter()
            .map(|i| i.name.clone())
            .collect();
        let now = Utc::now();
        let loaded = tokio::task::spawn_blocking(move || {
            let recent = load(&store, &names, sources, now);
            (store, recent)
        })
        .await;
        let Ok((store, recent)) = loaded else {
            return;
        };
        let mut unrecorded = Vec::new();
        match recent {
            Ok((recent, weeks)) => {
                // Status changes evaluated before the store was attached (the first snapshot, e.g. FAIL for a
                // secret that expired days ago) were not recorded: `early_changes` records them.
                let mut early = Vec::with_capacity(self.integrations.len());
                for (st, (runs, changes)) in self.integrations.iter_mut().zip(weeks) {
                    st.runs = runs;
                    early.push(std::mem::replace(&mut st.changes, changes));
                }
                let stored: std::collections::HashSet<String> =
                    recent.statuses.keys().cloned().collect();
                self.apply_recent(recent, now);
                unrecorded = self.early_changes(early, &stored);
            }
            Err(e) => {
                tracing::error!("cannot load history: {e}");
                self.history_error = Some(format!("history not loaded: {e}"));
            }
        }
        self.db_path = Some(store.path().to_path_buf());
        let writer = HistoryWriter::spawn(store, retention);
        if !unrecorded.is_empty() {
            writer.record_all(unrecorded);
        }
        self.history = Some(writer);
        self.publish(Utc::now());
        release_free_memory();
    }

    /// The changes of the first evaluation (before the store was attached) of integrations the store has no
    /// status for: recorded as if they had happened with the store there, so an integration failing from the
    /// start has its incident in `report` and in the detail view. One with a stored status was set back to it
    /// by `apply_recent`, and its next evaluation records the change from there.
    fn early_changes(
        &mut self,
        early: Vec<Vec<Change>>,
        stored: &std::collections::HashSet<String>,
    ) -> Vec<Record> {
        let mut out = Vec::new();
        for (idx, changes) in early.into_iter().enumerate() {
            let name = self.config.integrations[idx].name.clone();
            let Some(st) = self.integrations.get_mut(idx) else {
                break;
            };
            if stored.contains(&name) || changes.is_empty() {
                continue;
            }
            let mut from = crate::model::Status::Unknown;
            for (at, to, reason) in changes {
                out.push(Record::Transition(Transition {
                    integration: name.clone(),
                    at,
                    from,
                    to,
                    reason: reason.clone(),
                }));
                st.changes.push((at, to, reason));
                from = to;
            }
            st.changed = true;
        }
        out
    }

    fn apply_recent(&mut self, mut recent: Recent, now: DateTime<Utc>) {
        let now_i = tokio::time::Instant::now();
        let config = self.config.clone();
        for (idx, integration) in config.integrations.iter().enumerate() {
            if let Some(probes) = recent.probes.remove(&integration.name) {
                if let Some(p) = probes.iter().rev().find(|p| p.verified_secret()) {
                    self.note_secret_verified(&integration.credential, p.at);
                }
                let tracking = Tracking::from_history(&probes, &config.settings);
                if tracking.paused {
                    self.schedule(idx, None, now_i);
                }
                if tracking.refuses_credential(&probes) {
                    self.credentials.pause(&integration.credential);
                }
                let st = &mut self.integrations[idx];
                st.tracking = tracking;
                st.history = probes.into();
            }
            let st = &mut self.integrations[idx];
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
        self.auth_log_dirty = true;
        self.credential_views_dirty = true;
    }

    /// Read the expiries recorded by rotations (here or by `authwatch rotate` in another process) off the
    /// engine's thread, one job at a time: at start, on reload, and when the rotation watcher sees a rotation
    /// move or complete (not on a timer: 500 credentials cost a database open and 500 queries). Uptime and
    /// incidents are kept in memory instead.
    pub(super) fn summarize(&mut self) {
        let Some(path) = self.db_path.clone() else {
            return;
        };
        if self.summarizing {
            return;
        }
        self.summarizing = true;
        let tx = self.summaries_tx.clone();
        let generation = self.generation;
        tokio::task::spawn_blocking(move || {
            // Every recorded expiry (a credential no longer configured is skipped where they are applied).
            let expiries = match Store::open(&path).and_then(|store| store.recorded_expiries()) {
                Ok(recorded) => recorded.into_iter().collect(),
                Err(e) => {
                    tracing::warn!("cannot read recorded expiries: {e}");
                    Vec::new()
                }
            };
            let _ = tx.send(Summaries {
                generation,
                expiries,
            });
        });
    }

    /// Expiries read by `summarize`, for the configuration they were read for.
    pub(super) fn take_summaries(&mut self, summaries: Summaries) {
        self.summarizing = false;
        if summaries.generation != self.generation {
            return;
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
        // Copied only while someone else holds it: a batch of expiries copies it once.
        let config = Arc::make_mut(&mut self.config);
        if let Some(c) = config.credentials.iter_mut().find(|c| c.id == credential) {
            c.secret_expires = Some(expires);
        }
        for idx in self.consumers(credential) {
            self.integrations[idx].changed = true;
        }
        // The calendar shows credentials even without a changed integration.
        self.credential_views_dirty = true;
        self.log_changed = true;
    }
}

/// Hand memory freed by the last big job (the restore's reads, a sweep's requests) back to the system: glibc
/// keeps it in the arena of the thread that freed it otherwise (one per worker and blocking thread), and the
/// console's resident size would stay at its start-up peak.
pub(super) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas; 0 = keep no extra padding.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A week of one integration: its result runs and status changes (with the one in force at the start).
type Week = (Runs, Vec<Change>);

/// The store's recent state plus the offsets of every followed file, and each integration's week.
fn load(
    store: &Store,
    names: &[String],
    sources: Vec<String>,
    now: DateTime<Utc>,
) -> Result<(Recent, Vec<Week>), crate::store::StoreError> {
    let mut recent = store.load_recent_for(names, HISTORY_LEN, AUTH_LOG_LEN)?;
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
    let week = now - chrono::Duration::days(7);
    let weeks = names
        .iter()
        .map(|name| load_week(store, name, week))
        .collect::<Result<_, _>>()?;
    Ok((recent, weeks))
}

fn load_week(
    store: &Store,
    name: &str,
    week: DateTime<Utc>,
) -> Result<Week, crate::store::StoreError> {
    let (starts, newest) = store.probe_runs(name, week)?;
    let mut runs = Runs::default();
    for (at, ok) in starts.into_iter().chain(newest) {
        runs.push(at, ok);
    }
    let mut changes: Vec<Change> = Vec::new();
    if let Some(before) = store.status_at(name, week)? {
        changes.push((
            week - chrono::Duration::milliseconds(1),
            before,
            String::new(),
        ));
    }
    changes.extend(
        store
            .transitions_since(name, week)?
            .into_iter()
            .map(|t| (t.at, t.to, t.reason)),
    );
    Ok((runs, changes))
}
