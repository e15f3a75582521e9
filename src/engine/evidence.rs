//! Log evidence: 401/403s from followed log files and the agent's ingest API, kept per integration as
//! evidence for the health rules, shown in the 401/403 log and stored with their file offsets.

use super::AUTH_LOG_LEN;
use super::snapshot::LogSourceView;
use super::state::Engine;
use crate::ingest::{FollowUpdate, Follower, Matcher, SourceStatus};
use crate::model::AuthEvent;
use crate::rules::health::LogEvidence;
use crate::store::Record;
use chrono::Utc;
use std::sync::Arc;

/// Log 401/403s kept per integration as evidence (within `sustained_window`).
const LOG_EVIDENCE_LEN: usize = 10_000;

impl Engine {
    /// 401/403s posted to the engine (agent API): shown, kept as evidence and stored.
    pub(super) fn ingest(&mut self, events: Vec<AuthEvent>) {
        let records = self.take_events(events);
        if let Some(h) = &self.history {
            h.record_all(records);
        }
    }

    /// What a log follower found: the events and the offset after them are stored in one transaction, so a
    /// restart neither loses nor repeats a line.
    pub(super) fn follow_update(&mut self, update: FollowUpdate) {
        match update {
            FollowUpdate::Batch(batch) => {
                let mut records = self.take_events(batch.events);
                if let Some(offset) = batch.offset {
                    records.push(Record::Offset {
                        source: batch.source.clone(),
                        path: offset.path.display().to_string(),
                        identity: serde_json::to_string(&offset.identity).unwrap_or_default(),
                        offset: offset.offset,
                    });
                    let kept = self.offsets.entry(batch.source.clone()).or_default();
                    kept.retain(|o| o.path != offset.path);
                    kept.push(offset);
                }
                if let Some(h) = &self.history {
                    h.record_all(records);
                }
                if let Some(view) = self.log_sources.iter_mut().find(|v| v.name == batch.source) {
                    view.unmatched += batch.unmatched;
                    view.malformed += batch.malformed;
                }
                self.log_changed = true;
            }
            FollowUpdate::Status { source, status } => {
                if let Some(view) = self.log_sources.iter_mut().find(|v| v.name == source) {
                    view.ok = matches!(status, SourceStatus::Ok | SourceStatus::Starting);
                    view.status = match &status {
                        SourceStatus::WaitingForFile => {
                            let path = self
                                .config
                                .log_sources
                                .iter()
                                .find(|s| s.name == source)
                                .map(|s| s.path.as_str())
                                .unwrap_or("");
                            format!("waiting for {path}")
                        }
                        other => other.to_string(),
                    };
                    self.log_changed = true;
                }
            }
        }
    }

    /// Start one follower per log source, resuming from the stored offsets.
    pub(super) fn start_followers(&mut self) {
        self.followers.clear();
        let matcher = Arc::new(Matcher::from_config(&self.config));
        self.log_sources = self
            .config
            .log_sources
            .iter()
            .map(|s| LogSourceView {
                name: s.name.clone(),
                status: "starting".into(),
                ok: true,
                unmatched: 0,
                malformed: 0,
            })
            .collect();
        for source in &self.config.log_sources {
            let offsets = self.offsets.get(&source.name).cloned().unwrap_or_default();
            let handle = Follower::new(source.clone(), matcher.clone())
                .with_offsets(offsets)
                .spawn(self.follow_tx.clone());
            self.followers.push(handle);
        }
    }

    /// Events into the 401/403 log and the evidence of the integration they belong to; returns what to store.
    fn take_events(&mut self, events: Vec<AuthEvent>) -> Vec<Record> {
        let mut records = Vec::with_capacity(events.len() + 1);
        let window = crate::duration::to_chrono(self.config.settings.sustained_window);
        let now = Utc::now();
        for event in events {
            if let Some(idx) = event.integration.as_deref().and_then(|n| self.index_of(n)) {
                let st = &mut self.integrations[idx];
                st.log_events.push_back(LogEvidence {
                    at: event.at,
                    http_status: event.http_status,
                    source: event.source.clone(),
                });
                while st.log_events.front().is_some_and(|e| now - e.at > window)
                    || st.log_events.len() > LOG_EVIDENCE_LEN
                {
                    st.log_events.pop_front();
                }
                st.changed = true;
            }
            records.push(Record::AuthEvent(event.clone()));
            // Newest first; log lines may arrive out of order across sources.
            let pos = self
                .auth_log
                .iter()
                .position(|e| e.at <= event.at)
                .unwrap_or(self.auth_log.len());
            if pos < AUTH_LOG_LEN {
                self.auth_log.insert(pos, event);
            }
        }
        self.auth_log.truncate(AUTH_LOG_LEN);
        self.auth_log_dirty = true;
        self.log_changed = true;
        records
    }
}
