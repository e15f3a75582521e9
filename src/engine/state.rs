//! What the engine holds: one state per integration, the credential holds, and the channels it owns.

use super::Summaries;
use super::handle::{EngineEvent, EngineHandle};
use super::history::HistoryWriter;
use super::snapshot::{IntegrationView, LogSourceView, Snapshot};
use crate::config::Config;
use crate::history_report::Summary as HistorySummary;
use crate::ingest::{FollowUpdate, FollowerHandle};
use crate::model::{Ack, Health};
use crate::model::{AuthEvent, ProbeResult};
use crate::probe::{NotProbed, ProbeSetupError, Prober, TokenCache};
use crate::rules::health::LogEvidence;
use crate::rules::tracking::{Credentials, Tracking};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::{Semaphore, broadcast, mpsc, watch};
use tokio::time::Instant;

pub(super) struct IntegrationState {
    /// Newest last, at most HISTORY_LEN; shared with the published view (one copy per integration).
    pub history: Arc<[ProbeResult]>,
    pub tracking: Tracking,
    /// None: not scheduled (paused, or done in a one-shot sweep).
    pub next_due: Option<Instant>,
    pub next_due_wall: Option<DateTime<Utc>>,
    pub in_flight: bool,
    pub secret_error: Option<String>,
    /// 401/403s from logs, newest last, pruned to `sustained_window`.
    pub log_events: VecDeque<LogEvidence>,
    pub acked: Option<Ack>,
    pub summary: HistorySummary,
    pub health: Health,
    pub view: Arc<IntegrationView>,
    pub changed: bool,
}

impl IntegrationState {
    /// Schedule the next probe `delay` from now; None pauses.
    pub fn schedule(&mut self, delay: Option<std::time::Duration>, now: Instant) {
        self.next_due = delay.map(|d| now.checked_add(d).unwrap_or(far_future(now)));
        self.next_due_wall = delay.map(|d| Utc::now() + crate::duration::to_chrono(d));
    }
}

/// A deadline nobody will reach (the largest addition tokio's clock accepts without overflow).
fn far_future(now: Instant) -> Instant {
    now + std::time::Duration::from_secs(86_400 * 365 * 30)
}

pub(super) type ResultMsg = (u64, usize, Result<ProbeResult, NotProbed>);

/// The receiving ends of the engine's channels, consumed by the run loop.
pub(super) struct Inbox {
    pub results: mpsc::UnboundedReceiver<ResultMsg>,
    pub summaries: mpsc::UnboundedReceiver<Summaries>,
    pub follow: mpsc::Receiver<FollowUpdate>,
}

pub(super) struct Engine {
    pub config: Arc<Config>,
    pub prober: Arc<Prober>,
    pub cache: Arc<TokenCache>,
    pub integrations: Vec<IntegrationState>,
    /// Integration indexes by name and by credential (rebuilt with the config).
    pub by_name: HashMap<String, usize>,
    pub by_credential: HashMap<String, Vec<usize>>,
    /// Credentials paused after refusals or held by the token endpoint.
    pub credentials: Credentials<Instant>,
    pub auth_log: VecDeque<AuthEvent>,
    /// Bumped on reload so results of the old config are dropped.
    pub generation: u64,
    pub version: u64,
    pub semaphore: Arc<Semaphore>,
    pub snapshots: watch::Sender<Arc<Snapshot>>,
    pub events: broadcast::Sender<EngineEvent>,
    pub results_tx: mpsc::UnboundedSender<ResultMsg>,
    pub history: Option<HistoryWriter>,
    /// Shown in snapshots while history cannot be saved.
    pub history_error: Option<String>,
    /// The 401/403 log or the credentials changed without any integration changing.
    pub log_changed: bool,
    /// Followed log sources, as last reported by their followers.
    pub log_sources: Vec<LogSourceView>,
    pub followers: Vec<FollowerHandle>,
    pub follow_tx: mpsc::Sender<FollowUpdate>,
    /// Newest offset of every followed file, per source (to resume after a reload).
    pub offsets: HashMap<String, Vec<crate::ingest::Offsets>>,
    /// The history database, read every minute for uptime and incidents.
    pub db_path: Option<std::path::PathBuf>,
    pub summaries_tx: mpsc::UnboundedSender<Summaries>,
    pub summarizing: bool,
    /// A one-shot sweep (`check`): confirm auth failures at once, never pause, stop when everything is final.
    pub one_shot: bool,
}

impl Engine {
    /// An engine for `config`, with its handle and the receiving ends of its channels.
    pub fn new(
        config: Config,
    ) -> Result<(Engine, EngineHandle, Inbox, mpsc::Receiver<super::Command>), ProbeSetupError>
    {
        let prober = Arc::new(Prober::new(&config.settings)?);
        let (snap_tx, snap_rx) = watch::channel(Arc::new(Snapshot::empty(config.name.clone())));
        let (events_tx, _) = broadcast::channel(1024);
        let (cmd_tx, cmd_rx) = mpsc::channel(256);
        let (results_tx, results) = mpsc::unbounded_channel();
        let (summaries_tx, summaries) = mpsc::unbounded_channel();
        let (follow_tx, follow) = mpsc::channel(64);
        let mut engine = Engine {
            semaphore: Arc::new(Semaphore::new(config.settings.max_concurrent_probes.max(1))),
            config: Arc::new(config),
            prober,
            cache: Arc::new(TokenCache::new()),
            integrations: Vec::new(),
            by_name: HashMap::new(),
            by_credential: HashMap::new(),
            credentials: Credentials::default(),
            auth_log: VecDeque::new(),
            generation: 0,
            version: 0,
            snapshots: snap_tx,
            events: events_tx.clone(),
            results_tx,
            history: None,
            history_error: None,
            log_changed: false,
            log_sources: Vec::new(),
            followers: Vec::new(),
            follow_tx,
            offsets: HashMap::new(),
            db_path: None,
            summaries_tx,
            summarizing: false,
            one_shot: false,
        };
        engine.integrations = engine.fresh_states(&HashMap::new());
        let handle = EngineHandle {
            snapshots: snap_rx,
            events: events_tx,
            commands: cmd_tx,
        };
        let inbox = Inbox {
            results,
            summaries,
            follow,
        };
        Ok((engine, handle, inbox, cmd_rx))
    }

    /// States for the current config, keeping the history of integrations that keep their name.
    pub fn fresh_states(
        &mut self,
        old: &HashMap<String, IntegrationState>,
    ) -> Vec<IntegrationState> {
        let now = Instant::now();
        let settings = &self.config.settings;
        self.by_name.clear();
        self.by_credential.clear();
        for (idx, i) in self.config.integrations.iter().enumerate() {
            self.by_name.insert(i.name.clone(), idx);
            self.by_credential
                .entry(i.credential.clone())
                .or_default()
                .push(idx);
        }
        self.config
            .integrations
            .iter()
            .map(|i| {
                let kept = old.get(&i.name);
                IntegrationState {
                    history: kept.map(|k| k.history.clone()).unwrap_or_default(),
                    tracking: kept
                        .map(|k| k.tracking.after_reload(settings))
                        .unwrap_or_default(),
                    next_due: Some(now),
                    next_due_wall: Some(Utc::now()),
                    in_flight: false,
                    secret_error: None,
                    log_events: kept.map(|k| k.log_events.clone()).unwrap_or_default(),
                    acked: kept.and_then(|k| k.acked.clone()),
                    summary: kept.map(|k| k.summary.clone()).unwrap_or_default(),
                    health: Health::default(),
                    view: Arc::new(IntegrationView::placeholder(i)),
                    changed: true,
                }
            })
            .collect()
    }

    /// The integration named so in the current config.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The other consumers of a credential.
    pub fn consumers(&self, credential: &str) -> Vec<usize> {
        self.by_credential
            .get(credential)
            .cloned()
            .unwrap_or_default()
    }

    pub fn record(&self, record: crate::store::Record) {
        if let Some(h) = &self.history {
            h.record(record);
        }
    }
}
