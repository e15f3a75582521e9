//! Publishing: rebuild the views of what changed, evaluate the health rules, send one snapshot.

use super::handle::EngineEvent;
use super::history::HistoryWriter;
use super::snapshot::{CredentialView, IntegrationView, Snapshot, Summary};
use super::state::Engine;
use crate::config::Config;
use crate::history_report::Summary as HistorySummary;
use crate::model::AuthEvent;
use crate::model::Status;
use crate::rules::health::{self, Evidence, Thresholds};
use crate::rules::uptime::{self, Change, Runs};
use crate::store::{Record, Transition};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

impl Engine {
    /// Rebuild the views that changed and publish one snapshot (none when nothing changed).
    pub(super) fn publish(&mut self, now: DateTime<Utc>) {
        let thresholds = Thresholds::from(&self.config.settings);
        let mut any = false;
        for idx in 0..self.integrations.len() {
            let st = &mut self.integrations[idx];
            let changed = std::mem::take(&mut st.changed);
            if std::mem::take(&mut st.clock_moved) || changed {
                let evaluate = changed || now >= st.health_stable_until;
                any = true;
                self.rebuild_view(idx, now, &thresholds, evaluate);
            }
        }
        let history_error = self
            .history
            .as_ref()
            .and_then(HistoryWriter::error)
            .or_else(|| self.history_error.clone());
        if !any
            && !self.log_changed
            && !self.rotations_changed
            && self.version > 0
            && history_error == self.snapshots.borrow().history_error
        {
            return;
        }
        self.log_changed = false;
        self.rotations_changed = false;
        let mut summary = Summary::default();
        for st in &self.integrations {
            summary.add(st.view.health.status);
        }
        self.version += 1;
        let snapshot = Snapshot {
            version: self.version,
            generated_at: now,
            config_name: self.config.name.clone(),
            environments: self.environments.clone(),
            integrations: self.integrations.iter().map(|s| s.view.clone()).collect(),
            credentials: self.credential_views(now),
            auth_log: self.auth_log_view(),
            summary,
            history_error,
            log_sources: self.log_sources.clone(),
            connection: None,
            rotations: self.rotation_views.clone(),
            newest_data_at: self
                .integrations
                .iter()
                .filter_map(|s| s.history.last().map(|r| r.at))
                .max(),
        };
        self.snapshots.send_replace(Arc::new(snapshot));
    }

    /// The credentials' views, rebuilt only when the config, a pause or the clock's minute changed.
    fn credential_views(&mut self, now: DateTime<Utc>) -> Vec<Arc<CredentialView>> {
        if std::mem::take(&mut self.credential_views_dirty) {
            self.credential_views = credential_views(
                &self.config,
                &self.by_credential,
                now,
                self.credentials.paused(),
            );
        }
        self.credential_views.clone()
    }

    /// The 401/403 log, copied only when it changed (consumers compare the `Arc` to skip unchanged logs).
    fn auth_log_view(&mut self) -> Arc<Vec<AuthEvent>> {
        if std::mem::take(&mut self.auth_log_dirty) {
            self.auth_log_view = Arc::new(self.auth_log.iter().cloned().collect());
        }
        self.auth_log_view.clone()
    }

    /// Evaluate one integration's health (unless `evaluate` is false: only the clock moved, and not far enough
    /// to change it), record a status change, and rebuild its view.
    fn rebuild_view(
        &mut self,
        idx: usize,
        now: DateTime<Utc>,
        thresholds: &Thresholds,
        evaluate: bool,
    ) {
        if !evaluate {
            // The rules' answer stands: the view changes only if the uptimes or the incidents moved (rarely:
            // the day's uptime moves only while the window's edge crosses a failure).
            let st = &mut self.integrations[idx];
            if self.one_shot {
                return;
            }
            let moved = summary(&mut st.runs, &mut st.changes, now);
            if moved == st.summary {
                return;
            }
            st.summary = moved; // no status change here, so it stands for the view below
        }
        let integration = &self.config.integrations[idx];
        let secret_expires = self.credential_of[idx]
            .and_then(|c| self.config.credentials.get(c))
            .and_then(|c| c.secret_expires);
        let secret_verified_at = self.secret_verified.get(&integration.credential).copied();
        let st = &mut self.integrations[idx];
        let history = st.history.clone();
        let token_reused_until = history.last().and_then(|p| p.token_reused_until);
        let health = if evaluate {
            let log_events = st.log_events.make_contiguous();
            st.health_stable_until =
                health::stable_until(secret_expires, log_events, now, thresholds);
            health::evaluate(
                &Evidence {
                    history: &history,
                    consecutive_auth_failures: st.tracking.consecutive_auth,
                    failing_since: st.tracking.failing_since,
                    paused: st.tracking.paused,
                    secret_expires,
                    secret_error: st.secret_error.as_deref(),
                    log_events,
                },
                now,
                thresholds,
            )
        } else {
            st.health.clone()
        };
        if health.status != st.health.status {
            let reason = health.short_reason().to_string();
            st.changes.push((now, health.status, reason.clone()));
            self.events.send(EngineEvent::StatusChanged {
                integration: integration.name.clone(),
                at: now,
                from: st.health.status,
                to: health.status,
                reason: reason.clone(),
            });
            if let Some(h) = &self.history {
                h.record(Record::Transition(Transition {
                    integration: integration.name.clone(),
                    at: now,
                    from: st.health.status,
                    to: health.status,
                    reason,
                }));
            }
        }
        if health.status == Status::Ok {
            // The incident is over: the next one needs its own acknowledgement.
            st.acked = None;
        }
        st.health = health.clone();
        if evaluate && !self.one_shot {
            // Kept in memory from the first result on (with or without a store): a sweep has no history.
            st.summary = summary(&mut st.runs, &mut st.changes, now);
        }
        let live = Live {
            health,
            history,
            consecutive_auth_failures: st.tracking.consecutive_auth,
            failing_since: st.tracking.failing_since,
            last_success: st.tracking.last_success,
            next_probe_at: st.next_due_wall.filter(|_| !st.tracking.paused),
            paused: st.tracking.paused,
            probing: st.in_flight,
            secret_expires,
            acked: st.acked.clone(),
            uptime_24h: st.summary.uptime_24h,
            uptime_7d: st.summary.uptime_7d,
            incidents: st.summary.incidents.clone(),
            uptime_since: st.summary.first_probe,
            secret_verified_at,
            token_reused_until,
        };
        // An unchanged view keeps its `Arc`: consumers (the console's rows) see which integrations changed, e.g.
        // none of most after the minute's re-evaluation. A changed one is copied only if a snapshot still holds
        // it (never at start), and its configured fields are never rebuilt.
        if !live.matches(&st.view) {
            live.apply(Arc::make_mut(&mut st.view));
        } else if !st.history.shares(&st.view.history) {
            // Equal histories in two allocations (e.g. restored after the first results): share one, so the
            // next comparison is a pointer comparison, not a walk of every result.
            st.history = st.view.history.clone();
        }
    }
}

/// The fields of a view that results and the clock move (the others come from the config): one list for the
/// struct, the comparison and the update.
macro_rules! live_fields {
    ($($field:ident: $ty:ty),* $(,)?) => {
        struct Live {
            $($field: $ty),*
        }

        impl Live {
            fn matches(&self, view: &IntegrationView) -> bool {
                $(self.$field == view.$field)&&*
            }

            fn apply(self, view: &mut IntegrationView) {
                $(view.$field = self.$field;)*
            }
        }
    };
}

live_fields! {
    health: crate::model::Health,
    history: crate::model::History,
    consecutive_auth_failures: u32,
    failing_since: Option<DateTime<Utc>>,
    last_success: Option<DateTime<Utc>>,
    next_probe_at: Option<DateTime<Utc>>,
    paused: bool,
    probing: bool,
    secret_expires: Option<DateTime<Utc>>,
    acked: Option<crate::model::Ack>,
    uptime_24h: Option<f64>,
    uptime_7d: Option<f64>,
    incidents: Vec<crate::model::Incident>,
    uptime_since: Option<DateTime<Utc>>,
    secret_verified_at: Option<DateTime<Utc>>,
    token_reused_until: Option<DateTime<Utc>>,
}

/// Uptime over 24 hours and 7 days and the week's incidents (newest first), from what is kept in memory.
fn summary(runs: &mut Runs, changes: &mut Vec<Change>, now: DateTime<Utc>) -> HistorySummary {
    let week = now - chrono::Duration::days(7);
    runs.prune(week);
    uptime::prune_changes(changes, week);
    let mut incidents = uptime::incidents_since(changes, week);
    incidents.reverse();
    HistorySummary {
        uptime_24h: runs.uptime(now - chrono::Duration::hours(24), now),
        uptime_7d: runs.uptime(week, now),
        incidents,
        first_probe: runs.first().filter(|t| *t > week),
    }
}

/// Expiry views of every credential, for snapshots built by the engine and by one-shot sweeps.
pub(super) fn credential_views(
    config: &Config,
    by_credential: &HashMap<String, Vec<usize>>,
    now: DateTime<Utc>,
    paused: &HashSet<String>,
) -> Vec<Arc<CredentialView>> {
    let thresholds = Thresholds::from(&config.settings);
    config
        .credentials
        .iter()
        .map(|c| {
            Arc::new(CredentialView {
                id: c.id.clone(),
                owner: c.owner.clone(),
                client_id: c.client_id.clone(),
                secret_expires: c.secret_expires,
                days_left: c.secret_expires.map(|e| health::days_left(e, now)),
                expiry_status: health::expiry_status(c.secret_expires, now, &thresholds),
                integrations: by_credential
                    .get(&c.id)
                    .into_iter()
                    .flatten()
                    .map(|&i| config.integrations[i].name.clone())
                    .collect(),
                paused: paused.contains(&c.id),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// One integration whose secret expires on 2027-01-16; warnings start 14 days before.
    fn engine() -> Engine {
        let text = r#"
[settings]
warn_before = "14d"
critical_before = "3d"

[[credential]]
id = "crm"
auth_url = "http://127.0.0.1:9/"
client_id = "abc"
client_secret = { env = "AUTHWATCH_TEST_UNUSED" }
secret_expires = 2027-01-16

[[integration]]
name = "crm-sync"
credential = "crm"
"#;
        let config = crate::config::parse(text, std::path::Path::new("t.toml")).unwrap();
        Engine::new(config).unwrap().0
    }

    fn reasons(e: &Engine) -> Vec<String> {
        e.snapshots.borrow().integrations[0].health.reasons.clone()
    }

    /// The minute's pass skips the rules while nothing can have moved them, and still turns a secret's
    /// expiry into a warning the minute its window opens, then counts its days down.
    #[test]
    fn the_clock_alone_brings_a_secret_into_its_warning_window_and_counts_it_down() {
        let mut e = engine();
        let t0 = Utc.with_ymd_and_hms(2026, 12, 31, 23, 58, 0).unwrap();
        e.integrations[0]
            .runs
            .push(t0 - chrono::Duration::hours(1), true);
        e.publish(t0);
        assert_eq!(reasons(&e), ["not probed yet"]);
        let uptime = |e: &Engine| e.snapshots.borrow().integrations[0].uptime_24h;
        assert_eq!(uptime(&e), Some(100.0));
        let tick = |e: &mut Engine, at| {
            for st in &mut e.integrations {
                st.clock_moved = true;
            }
            e.publish(at);
            reasons(e)
        };
        assert_eq!(
            tick(&mut e, t0 + chrono::Duration::minutes(1)),
            ["not probed yet"]
        );
        assert_eq!(uptime(&e), Some(100.0));
        // The last result leaves the day's window: the clock alone changes the uptime shown.
        let a_day_on = Utc.with_ymd_and_hms(2027, 1, 1, 23, 0, 0).unwrap();
        assert_eq!(tick(&mut e, a_day_on), ["not probed yet"]);
        assert_eq!(uptime(&e), None);
        let opened = Utc.with_ymd_and_hms(2027, 1, 2, 0, 0, 0).unwrap();
        assert_eq!(
            tick(&mut e, opened),
            ["secret expires in 14d (2027-01-16)", "not probed yet"]
        );
        assert_eq!(
            tick(&mut e, opened + chrono::Duration::days(1)),
            ["secret expires in 13d (2027-01-16)", "not probed yet"]
        );
    }
}
