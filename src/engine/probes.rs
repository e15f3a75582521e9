//! Starting probes and applying their results; the counting and the decisions are `rules::tracking`'s.

use super::HISTORY_LEN;
use super::handle::EngineEvent;
use super::state::{Engine, ResultMsg};
use super::supervise;
use crate::model::{AuthEvent, PROBE_SOURCE, ProbeResult};
use crate::probe::{self, NotProbed, ProbeTarget};
use crate::rules::tracking::{CredentialChange, Forced};
use crate::store::Record;
use chrono::Utc;
use std::cmp::Reverse;
use std::time::Duration;
use tokio::time::Instant;

impl Engine {
    /// Start every probe that is due, unless its credential is held or paused.
    pub(super) fn start_due(&mut self) {
        let now = Instant::now();
        // One horizon per batch, so integrations sharing a grant share one fresh token (or one refusal).
        let batch = std::time::Instant::now();
        while let Some(&Reverse((at, idx, seq))) = self.due.peek() {
            if at > now {
                break;
            }
            self.due.pop();
            let Some(st) = self.integrations.get(idx) else {
                continue;
            };
            if seq != st.due_seq || st.in_flight || st.tracking.paused {
                continue; // stale: rescheduled, running (its result reschedules it) or paused since
            }
            let cred_name = &self.config.integrations[idx].credential;
            if let Some(until) = self.credentials.held_until(cred_name).filter(|t| *t > now) {
                self.due.push(Reverse((until, idx, seq)));
                continue;
            }
            if self.credentials.is_paused(cred_name) && !self.one_shot {
                self.integrations[idx].tracking.credential_paused();
                self.schedule(idx, None, now);
                self.integrations[idx].changed = true;
                continue;
            }
            self.spawn_probe(idx, batch);
        }
    }

    fn spawn_probe(&mut self, idx: usize, batch: std::time::Instant) {
        let st = &mut self.integrations[idx];
        st.in_flight = true;
        st.changed = true;
        let freshness = probe::Freshness {
            token_since: std::mem::take(&mut st.tracking.fresh_next).then_some(batch),
            batch,
        };
        let config = self.config.clone();
        let credential_idx = self.credential_of[idx];
        let prober = self.prober.clone();
        let cache = self.cache.clone();
        let semaphore = self.semaphore.clone();
        let tx = self.results_tx.clone();
        let generation = self.generation;
        let name = config.integrations[idx].name.clone();
        self.events.send(EngineEvent::ProbeStarted {
            integration: name,
            at: Utc::now(),
        });
        tokio::spawn(async move {
            let Ok(_permit) = semaphore.acquire_owned().await else {
                return;
            };
            let integration = &config.integrations[idx];
            let Some(credential) = credential_idx.and_then(|c| config.credentials.get(c)) else {
                return;
            };
            let timeout = config.settings.secret_command_timeout;
            let secret = probe::secret_source(&credential.client_secret, timeout);
            let target = ProbeTarget {
                integration,
                credential,
            };
            let probed =
                supervise::catch(probe::probe(&prober, &cache, target, &secret, freshness)).await;
            // A probe that panics is a failed probe of its integration, not the end of probing.
            let result = probed.unwrap_or_else(|cause| {
                supervise::record_restart("probe", &cause);
                Ok(supervise::crashed_probe(&cause))
            });
            let _ = tx.send((generation, idx, result));
        });
    }

    /// One probe result: count it, schedule the next probe, tell the credential's other consumers, store it.
    pub(super) fn apply(&mut self, (generation, idx, result): ResultMsg) {
        if generation != self.generation || idx >= self.integrations.len() {
            return;
        }
        self.results_since_trim = self.results_since_trim.saturating_add(1);
        let now = Instant::now();
        let st = &mut self.integrations[idx];
        st.in_flight = false;
        st.changed = true;
        let result = match result {
            Ok(r) => r,
            Err(NotProbed::Secret(msg)) => {
                st.secret_error = Some(msg);
                let delay = st.tracking.secret_unavailable(&self.config.settings);
                let delay = (!self.one_shot).then_some(delay);
                self.schedule(idx, delay, now);
                return;
            }
        };
        st.secret_error = None;
        let decision = st
            .tracking
            .observe(&result, &self.config.settings, rand::random::<f64>());
        if self.one_shot {
            // Confirm at once; whatever is final stops (a sweep never pauses).
            let done = st.tracking.one_shot_done();
            self.schedule(idx, (!done).then_some(Duration::ZERO), now);
        } else {
            self.schedule(idx, decision.next, now);
            self.credential_change(idx, decision.credential, now);
        }
        self.record_result(idx, result);
    }

    /// What a result at the token endpoint means for the credential's other consumers.
    fn credential_change(&mut self, idx: usize, change: CredentialChange, now: Instant) {
        let credential = self.config.integrations[idx].credential.clone();
        match change {
            CredentialChange::None => {}
            CredentialChange::Hold(wait) => {
                let until = now
                    .checked_add(wait)
                    .unwrap_or(now + Duration::from_secs(86_400));
                self.credentials.hold(&credential, until);
            }
            CredentialChange::Refused => {
                self.credentials.pause(&credential);
                self.credential_views_dirty = true;
                for j in self.consumers(&credential) {
                    let o = &mut self.integrations[j];
                    if j != idx && o.tracking.confirmed_by_other(o.in_flight) {
                        o.changed = true;
                        self.schedule(j, None, now);
                    }
                }
            }
            CredentialChange::Accepted => {
                self.credential_views_dirty |= self.credentials.is_paused(&credential);
                self.credentials.accept(&credential);
                for j in self.consumers(&credential) {
                    let o = &mut self.integrations[j];
                    if j != idx && o.tracking.resumed_by_other(&self.config.settings) {
                        o.changed = true;
                        self.schedule(j, Some(Duration::ZERO), now);
                    }
                }
            }
        }
    }

    /// Where a probe's 401/403 came from: the token endpoint's host for token requests, the client id and MID used.
    fn probe_origin(&self, idx: usize, result: &ProbeResult) -> crate::model::EventOrigin {
        let integration = &self.config.integrations[idx];
        let credential = self
            .credential_of
            .get(idx)
            .copied()
            .flatten()
            .map(|c| &self.config.credentials[c]);
        crate::model::EventOrigin {
            location: None,
            client_id: credential.map(|c| c.client_id.clone()),
            mid: result
                .mid
                .clone()
                .or_else(|| integration.account_id.clone()),
            url_host: credential
                .filter(|_| result.phase == crate::model::Phase::Token)
                .and_then(|c| c.token_endpoint().host_str().map(str::to_string)),
        }
    }

    /// Keep the result in the history, the 401/403 log and the store; tell the live feeds.
    fn record_result(&mut self, idx: usize, result: ProbeResult) {
        let name = self.config.integrations[idx].name.clone();
        let (at, outcome, fresh_token) = (result.at, result.outcome, result.fresh_token);
        if result.verified_secret() {
            let credential = self.config.integrations[idx].credential.clone();
            self.note_secret_verified(&credential, at);
        }
        if let Some(status) = result.http_status.filter(|s| *s == 401 || *s == 403) {
            let event = AuthEvent {
                at,
                integration: Some(name.clone()),
                http_status: status,
                error: result
                    .error
                    .clone()
                    .unwrap_or_else(|| outcome.as_str().to_string()),
                source: PROBE_SOURCE.to_string(),
                origin: self.probe_origin(idx, &result),
            };
            self.record(Record::AuthEvent(event.clone()));
            self.auth_log.push_front(event);
            self.auth_log.truncate(super::AUTH_LOG_LEN);
            self.auth_log_dirty = true;
        }
        self.record(Record::Probe {
            integration: name.clone(),
            result: result.clone(),
        });
        let st = &mut self.integrations[idx];
        st.runs.push(at, outcome.is_ok());
        // A new slice per result: the published view keeps sharing the old one until the next snapshot.
        let keep = st.history.len().saturating_sub(HISTORY_LEN - 1);
        st.history = st.history[keep..]
            .iter()
            .cloned()
            .chain(std::iter::once(result))
            .collect();
        self.events.send(EngineEvent::ProbeFinished {
            integration: name.clone(),
            at,
            outcome,
            fresh_token,
        });
        if st.tracking.paused {
            self.events.send(EngineEvent::Paused {
                integration: name,
                at,
                reason: format!("{} consecutive auth failures", st.tracking.consecutive_auth),
            });
        }
    }

    /// A human asked: probe now with a fresh token, lifting any pause.
    pub(super) fn force(&mut self, idx: usize) {
        let cred = self.config.integrations[idx].credential.clone();
        self.credential_views_dirty |= self.credentials.is_paused(&cred);
        self.credentials.lift(&cred);
        let st = &mut self.integrations[idx];
        st.changed = true;
        if st.tracking.force(st.in_flight) == Forced::Now {
            self.schedule(idx, Some(Duration::ZERO), Instant::now());
        }
    }

    /// The soonest scheduled probe (possibly a stale entry: waking early for it is harmless).
    pub(super) fn next_wake(&self) -> Option<Instant> {
        self.due.peek().map(|Reverse((at, _, _))| *at)
    }
}
