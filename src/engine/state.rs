//! What the engine holds: one state per integration, the credential holds, and the channels it owns.

use super::Summaries;
use super::handle::{EngineHandle, EventBus};
use super::history::HistoryWriter;
use super::snapshot::{IntegrationView, LogSourceView, Snapshot};
use crate::config::Config;
use crate::history_report::Summary as HistorySummary;
use crate::ingest::{FollowUpdate, FollowerHandle};
use crate::model::{Ack, Health, History};
use crate::model::{AuthEvent, ProbeResult};
use crate::probe::{NotProbed, ProbeSetupError, Prober, TokenCache};
use crate::rules::health::LogEvidence;
use crate::rules::tracking::{Credentials, Tracking};
use crate::rules::uptime::{Change, Runs};
use chrono::{DateTime, Utc};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;

pub(super) struct IntegrationState {
    /// Newest last, at most HISTORY_LEN; shared with the published view (one copy per integration).
    pub history: History,
    pub tracking: Tracking,
    /// None: not scheduled (paused, or done in a one-shot sweep).
    pub next_due: Option<Instant>,
    /// Bumped on every schedule: timer-heap entries with an older number are stale.
    pub due_seq: u64,
    pub next_due_wall: Option<DateTime<Utc>>,
    pub in_flight: bool,
    pub secret_error: Option<String>,
    /// 401/403s from logs, newest last, pruned to `sustained_window`.
    pub log_events: VecDeque<LogEvidence>,
    pub acked: Option<Ack>,
    /// The last week's results and status changes, kept as they happen (restored from the store at start),
    /// for the uptime and incidents in `summary`: no re-reading the database every minute.
    pub runs: Runs,
    pub changes: Vec<Change>,
    pub summary: HistorySummary,
    pub health: Health,
    pub view: Arc<IntegrationView>,
    /// Its inputs changed: evaluate and rebuild the view at the next publish.
    pub changed: bool,
    /// Only the clock moved: rebuild the summary, evaluate again only from `health_stable_until` on.
    pub clock_moved: bool,
    pub health_stable_until: DateTime<Utc>,
}

/// Due probes, soonest first: (when, integration index, its `due_seq` then). Stale entries are skipped when they
/// reach the top, so scheduling is O(log n) and finding the next wake is O(1) instead of a scan of every
/// integration.
pub(super) type DueHeap = BinaryHeap<Reverse<(Instant, usize, u64)>>;

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
    pub secret_reads: mpsc::UnboundedReceiver<super::fingerprint::SecretReads>,
    /// Answers of the rotation driver (None: no rotation here).
    pub rotation: Option<mpsc::UnboundedReceiver<super::rotation_link::DriverOut>>,
}

pub(super) struct Engine {
    pub config: Arc<Config>,
    pub prober: Arc<Prober>,
    pub cache: Arc<TokenCache>,
    pub integrations: Vec<IntegrationState>,
    /// Integration indexes by name and by credential (rebuilt with the config).
    pub by_name: HashMap<String, usize>,
    pub by_credential: HashMap<String, Vec<usize>>,
    /// Each integration's credential, as an index into `config.credentials` (None: not defined).
    pub credential_of: Vec<Option<usize>>,
    /// Credentials paused after refusals or held by the token endpoint.
    pub credentials: Credentials<Instant>,
    /// Per credential: when a new token was last granted (the secret itself verified), by any consumer.
    pub secret_verified: HashMap<String, DateTime<Utc>>,
    /// The last read of each credential's secret reference (a fingerprint), to notice a changed secret.
    pub secret_reads: super::fingerprint::Reads,
    pub secret_key: Arc<ring::hmac::Key>,
    /// Probe results applied since memory was last handed back to the system.
    pub results_since_trim: usize,
    /// Secret files' stamps when last read, so unchanged ones are not read again every round.
    pub secret_stamps: Arc<std::sync::Mutex<super::fingerprint::FileStamps>>,
    pub secret_reads_tx: mpsc::UnboundedSender<super::fingerprint::SecretReads>,
    pub secret_reading: bool,
    pub due: DueHeap,
    /// Built when their inputs change (config, paused credentials, the clock's minute), not per snapshot.
    pub credential_views: Vec<Arc<crate::engine::CredentialView>>,
    pub credential_views_dirty: bool,
    pub environments: Vec<String>,
    /// The 401/403 log as last published (shared by snapshots until it changes).
    pub auth_log_view: Arc<Vec<AuthEvent>>,
    pub auth_log_dirty: bool,
    /// When the last snapshot was sent, and whether a change waits for the next one.
    pub last_publish: Option<Instant>,
    pub publish_pending: bool,
    pub auth_log: VecDeque<AuthEvent>,
    /// Bumped on reload so results of the old config are dropped.
    pub generation: u64,
    pub version: u64,
    pub semaphore: Arc<Semaphore>,
    pub snapshots: watch::Sender<Arc<Snapshot>>,
    pub events: EventBus,
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
    /// The history database, read for the expiries rotations record.
    pub db_path: Option<std::path::PathBuf>,
    pub summaries_tx: mpsc::UnboundedSender<Summaries>,
    pub summarizing: bool,
    /// A one-shot sweep (`check`): confirm auth failures at once, never pause, stop when everything is final.
    pub one_shot: bool,
    /// The rotation driver, when rotation runs here.
    pub rotation: Option<super::rotation_link::Link>,
    /// Each credential's rotation as published (credential order of the config).
    pub rotation_views: Arc<Vec<crate::rotation::session::RotationView>>,
    pub rotations_changed: bool,
}

impl Engine {
    /// An engine for `config`, with its handle and the receiving ends of its channels.
    pub fn new(
        config: impl Into<Arc<Config>>,
    ) -> Result<(Engine, EngineHandle, Inbox, mpsc::Receiver<super::Command>), ProbeSetupError>
    {
        let config = config.into();
        let prober = Arc::new(Prober::new(&config.settings)?);
        let (snap_tx, snap_rx) = watch::channel(Arc::new(Snapshot::empty(config.name.clone())));
        let events_tx = EventBus::new(1024);
        let (cmd_tx, cmd_rx) = mpsc::channel(256);
        let (results_tx, results) = mpsc::unbounded_channel();
        let (summaries_tx, summaries) = mpsc::unbounded_channel();
        let (follow_tx, follow) = mpsc::channel(64);
        let (secret_reads_tx, secret_reads) = mpsc::unbounded_channel();
        let mut engine = Engine {
            semaphore: Arc::new(Semaphore::new(config.settings.max_concurrent_probes.max(1))),
            config,
            prober,
            cache: Arc::new(TokenCache::new()),
            integrations: Vec::new(),
            by_name: HashMap::new(),
            by_credential: HashMap::new(),
            credential_of: Vec::new(),
            credentials: Credentials::default(),
            secret_verified: HashMap::new(),
            secret_reads: Default::default(),
            secret_key: Arc::new(super::fingerprint::fingerprint_key()),
            results_since_trim: 0,
            secret_stamps: Default::default(),
            secret_reads_tx,
            secret_reading: false,
            due: DueHeap::new(),
            credential_views: Vec::new(),
            credential_views_dirty: true,
            environments: Vec::new(),
            auth_log_view: Arc::new(Vec::new()),
            auth_log_dirty: true,
            last_publish: None,
            publish_pending: false,
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
            rotation: None,
            rotation_views: Arc::new(Vec::new()),
            rotations_changed: false,
        };
        engine.integrations = engine.fresh_states(&HashMap::new());
        engine.reset_due();
        let handle = EngineHandle {
            snapshots: snap_rx,
            events: events_tx,
            commands: cmd_tx,
        };
        let inbox = Inbox {
            results,
            summaries,
            follow,
            secret_reads,
            rotation: None,
        };
        Ok((engine, handle, inbox, cmd_rx))
    }

    /// States for the current config, keeping the history of integrations that keep their name.
    pub fn fresh_states(
        &mut self,
        old: &HashMap<String, IntegrationState>,
    ) -> Vec<IntegrationState> {
        let now = Instant::now();
        let wall_now = Utc::now();
        let settings = &self.config.settings;
        self.environments = environments(&self.config);
        self.credential_views_dirty = true;
        self.by_name.clear();
        self.by_credential.clear();
        let credential_index: HashMap<&str, usize> = self
            .config
            .credentials
            .iter()
            .enumerate()
            .map(|(idx, c)| (c.id.as_str(), idx))
            .collect();
        self.credential_of = self
            .config
            .integrations
            .iter()
            .map(|i| credential_index.get(i.credential.as_str()).copied())
            .collect();
        for (idx, i) in self.config.integrations.iter().enumerate() {
            self.by_name.insert(i.name.clone(), idx);
            match self.by_credential.get_mut(i.credential.as_str()) {
                Some(consumers) => consumers.push(idx),
                None => {
                    self.by_credential.insert(i.credential.clone(), vec![idx]);
                }
            }
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
                    due_seq: 0,
                    next_due_wall: Some(wall_now),
                    in_flight: false,
                    secret_error: None,
                    log_events: kept.map(|k| k.log_events.clone()).unwrap_or_default(),
                    acked: kept.and_then(|k| k.acked.clone()),
                    runs: kept.map(|k| k.runs.clone()).unwrap_or_default(),
                    changes: kept.map(|k| k.changes.clone()).unwrap_or_default(),
                    summary: kept.map(|k| k.summary.clone()).unwrap_or_default(),
                    health: Health::default(),
                    view: Arc::new(IntegrationView::placeholder(i)),
                    changed: true,
                    clock_moved: false,
                    health_stable_until: DateTime::<Utc>::MIN_UTC,
                }
            })
            .collect()
    }

    /// Schedule integration `idx`'s next probe `delay` from `now`; None unschedules it (paused, or done).
    pub fn schedule(&mut self, idx: usize, delay: Option<std::time::Duration>, now: Instant) {
        let st = &mut self.integrations[idx];
        st.next_due = delay.map(|d| now.checked_add(d).unwrap_or(far_future(now)));
        // Saturating: a wait from outside (Retry-After) must not overflow the wall clock.
        st.next_due_wall = delay.map(|d| crate::rules::schedule::wall_after(Utc::now(), d));
        st.due_seq += 1;
        if let Some(at) = st.next_due {
            self.due.push(Reverse((at, idx, st.due_seq)));
        }
    }

    /// The heap from scratch, after the integrations were replaced.
    pub fn reset_due(&mut self) {
        self.due = self
            .integrations
            .iter()
            .enumerate()
            .filter_map(|(idx, st)| st.next_due.map(|at| Reverse((at, idx, st.due_seq))))
            .collect();
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

    /// A new token was granted to `credential` at `at`: its consumers' views say the secret was verified then.
    pub fn note_secret_verified(&mut self, credential: &str, at: DateTime<Utc>) {
        let slot = self
            .secret_verified
            .entry(credential.to_string())
            .or_insert(at);
        *slot = (*slot).max(at);
        for idx in self.consumers(credential) {
            self.integrations[idx].changed = true;
        }
    }

    pub fn record(&self, record: crate::store::Record) {
        if let Some(h) = &self.history {
            h.record(record);
        }
    }
}

/// Distinct environments of the integrations, sorted.
fn environments(config: &Config) -> Vec<String> {
    let mut envs: Vec<String> = config
        .integrations
        .iter()
        .filter_map(|i| i.environment.clone())
        .collect();
    envs.sort();
    envs.dedup();
    envs
}
