//! The engine loop: schedules probes, applies results and the health rules, publishes snapshots.

use super::handle::{Command, EngineEvent, EngineHandle};
use super::history::HistoryWriter;
use super::schedule::{self, Next};
use super::snapshot::{CredentialView, IntegrationView, LogSourceView, Snapshot, Summary};
use super::{AUTH_LOG_LEN, HISTORY_LEN};
use crate::config::Config;
use crate::duration::to_chrono;
use crate::health::{self, Evidence, LogEvidence, Thresholds};
use crate::history_report::{self, Summary as HistorySummary};
use crate::ingest::{FollowUpdate, Follower, FollowerHandle, Matcher, SourceStatus};
use crate::model::{Ack, AuthEvent, Health, Outcome, PROBE_SOURCE, ProbeResult, Status};
use crate::probe::{self, NotProbed, ProbeSetupError, ProbeTarget, Prober, TokenCache};
use crate::store::{Recent, Record, Store, Transition};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How often health is re-evaluated without new probe results (secret expiry and log windows move with the clock).
const REEVALUATE_EVERY: Duration = Duration::from_secs(60);

/// What a history read found, for the configuration of `generation`.
struct Summaries {
    generation: u64,
    list: Vec<Option<HistorySummary>>,
    /// (credential, expiry recorded at its latest activation).
    expiries: Vec<(String, DateTime<Utc>)>,
}
/// Log 401/403s kept per integration as evidence (within `sustained_window`).
const LOG_EVIDENCE_LEN: usize = 10_000;

#[derive(Default)]
pub struct EngineOptions {
    /// Wait for this before the first probe (the console fires it after its first frame: no network I/O before it).
    pub start_gate: Option<oneshot::Receiver<()>>,
    /// Where history is kept; None keeps it in memory only.
    pub store: Option<crate::store::Store>,
    /// How long history is kept in the store.
    pub retention: Duration,
}

/// A running engine: the handle for consumers and the task to await on shutdown.
pub struct RunningEngine {
    pub handle: EngineHandle,
    pub task: JoinHandle<()>,
}

/// Start the engine on the current tokio runtime.
pub fn spawn(config: Config, options: EngineOptions) -> Result<RunningEngine, ProbeSetupError> {
    let prober = Arc::new(Prober::new(&config.settings)?);
    let (snap_tx, snap_rx) = watch::channel(Arc::new(Snapshot::empty(config.name.clone())));
    let (events_tx, _) = broadcast::channel(1024);
    let (cmd_tx, cmd_rx) = mpsc::channel(256);
    let (results_tx, results_rx) = mpsc::unbounded_channel();
    let (summaries_tx, summaries_rx) = mpsc::unbounded_channel();
    let (follow_tx, follow_rx) = mpsc::channel(64);
    let mut engine = Engine {
        semaphore: Arc::new(Semaphore::new(config.settings.max_concurrent_probes.max(1))),
        config: Arc::new(config),
        prober,
        cache: Arc::new(TokenCache::new()),
        integrations: Vec::new(),
        paused_credentials: HashSet::new(),
        held_credentials: HashMap::new(),
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
    };
    engine.integrations = engine.fresh_states(&HashMap::new());
    engine.publish(Utc::now());
    let store = options.store;
    let retention = options.retention;
    let handle = EngineHandle {
        snapshots: snap_rx,
        events: events_tx,
        commands: cmd_tx,
    };
    let task = tokio::spawn(async move {
        let mut engine = engine;
        if let Some(store) = store {
            engine.restore(store, retention).await;
        }
        engine.start_followers();
        engine
            .run(
                cmd_rx,
                results_rx,
                summaries_rx,
                follow_rx,
                options.start_gate,
            )
            .await;
        engine.followers.clear();
        if let Some(history) = engine.history.take() {
            let _ = tokio::task::spawn_blocking(move || history.close()).await;
        }
    });
    Ok(RunningEngine { handle, task })
}

struct IntegrationState {
    /// Newest last, at most HISTORY_LEN; shared with the published view (one copy per integration).
    history: Arc<[ProbeResult]>,
    consecutive_auth: u32,
    non_auth_streak: u32,
    failing_since: Option<DateTime<Utc>>,
    last_success: Option<DateTime<Utc>>,
    /// None: not scheduled (paused).
    next_due: Option<Instant>,
    next_due_wall: Option<DateTime<Utc>>,
    fresh_next: bool,
    paused: bool,
    in_flight: bool,
    /// A forced probe asked for while one was running.
    forced_pending: bool,
    secret_error: Option<String>,
    /// 401/403s from logs, newest last, pruned to `sustained_window`.
    log_events: VecDeque<LogEvidence>,
    acked: Option<Ack>,
    summary: HistorySummary,
    health: Health,
    view: Arc<IntegrationView>,
    changed: bool,
}

type ResultMsg = (u64, usize, Result<ProbeResult, NotProbed>);

struct Engine {
    config: Arc<Config>,
    prober: Arc<Prober>,
    cache: Arc<TokenCache>,
    integrations: Vec<IntegrationState>,
    /// Credentials whose token requests were refused `failure_threshold` times: no automatic probing.
    paused_credentials: HashSet<String>,
    /// Credentials told to wait (429/503 on the token endpoint): no probe of theirs starts before.
    held_credentials: HashMap<String, Instant>,
    auth_log: VecDeque<AuthEvent>,
    /// Bumped on reload so results of the old config are dropped.
    generation: u64,
    version: u64,
    semaphore: Arc<Semaphore>,
    snapshots: watch::Sender<Arc<Snapshot>>,
    events: broadcast::Sender<EngineEvent>,
    results_tx: mpsc::UnboundedSender<ResultMsg>,
    history: Option<HistoryWriter>,
    /// Shown in snapshots while history cannot be saved.
    history_error: Option<String>,
    /// The 401/403 log changed without any integration changing (unmatched log events).
    log_changed: bool,
    /// Followed log sources, as last reported by their followers.
    log_sources: Vec<LogSourceView>,
    followers: Vec<FollowerHandle>,
    follow_tx: mpsc::Sender<FollowUpdate>,
    /// Newest offset of every followed file, per source (to resume after a reload).
    offsets: HashMap<String, Vec<crate::ingest::Offsets>>,
    /// The history database, read every minute for uptime and incidents.
    db_path: Option<std::path::PathBuf>,
    summaries_tx: mpsc::UnboundedSender<Summaries>,
    summarizing: bool,
}

impl Engine {
    /// States for the current config, keeping the history of integrations that keep their name.
    fn fresh_states(&self, old: &HashMap<String, IntegrationState>) -> Vec<IntegrationState> {
        let now = Instant::now();
        self.config
            .integrations
            .iter()
            .map(|i| {
                let kept = old.get(&i.name);
                let mut st = IntegrationState {
                    history: kept.map(|k| k.history.clone()).unwrap_or_default(),
                    consecutive_auth: kept.map_or(0, |k| k.consecutive_auth),
                    non_auth_streak: 0,
                    failing_since: kept.and_then(|k| k.failing_since),
                    last_success: kept.and_then(|k| k.last_success),
                    next_due: Some(now),
                    next_due_wall: Some(Utc::now()),
                    fresh_next: false,
                    paused: false,
                    in_flight: false,
                    forced_pending: false,
                    secret_error: None,
                    log_events: kept.map(|k| k.log_events.clone()).unwrap_or_default(),
                    acked: kept.and_then(|k| k.acked.clone()),
                    summary: kept.map(|k| k.summary.clone()).unwrap_or_default(),
                    health: Health::default(),
                    view: Arc::new(placeholder_view(i)),
                    changed: true,
                };
                // A reload is a human acting: forget the pause but not the evidence.
                st.consecutive_auth = st
                    .consecutive_auth
                    .min(self.config.settings.failure_threshold.saturating_sub(1));
                st
            })
            .collect()
    }

    /// Continue where the last run stopped: histories, failure counts, pauses, statuses and the 401/403 log.
    async fn restore(&mut self, store: Store, retention: Duration) {
        let sources: Vec<String> = self
            .config
            .log_sources
            .iter()
            .map(|s| s.name.clone())
            .collect();
        let loaded = tokio::task::spawn_blocking(move || {
            let recent = store
                .load_recent(HISTORY_LEN, AUTH_LOG_LEN)
                .and_then(|mut recent| {
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
                });
            (store, recent)
        })
        .await;
        let Ok((store, recent)) = loaded else {
            return;
        };
        match recent {
            Ok(recent) => self.apply_recent(recent),
            Err(e) => {
                tracing::error!("cannot load history: {e}");
                self.history_error = Some(format!("history not loaded: {e}"));
            }
        }
        self.db_path = Some(store.path().to_path_buf());
        self.history = Some(HistoryWriter::spawn(store, retention));
        self.publish(Utc::now());
    }

    fn apply_recent(&mut self, mut recent: Recent) {
        let threshold = self.config.settings.failure_threshold;
        for (idx, integration) in self.config.integrations.iter().enumerate() {
            let st = &mut self.integrations[idx];
            if let Some(probes) = recent.probes.remove(&integration.name) {
                let trailing_auth = probes
                    .iter()
                    .rev()
                    .take_while(|r| r.outcome.is_auth_failure())
                    .count();
                st.consecutive_auth = trailing_auth as u32;
                st.failing_since =
                    (trailing_auth > 0).then(|| probes[probes.len() - trailing_auth].at);
                st.non_auth_streak = probes
                    .iter()
                    .rev()
                    .take_while(|r| !r.outcome.is_ok() && !r.outcome.is_auth_failure())
                    .count() as u32;
                st.last_success = probes
                    .iter()
                    .rev()
                    .find(|r| r.outcome.is_ok())
                    .map(|r| r.at);
                st.history = probes.into();
                if st.consecutive_auth >= threshold {
                    st.paused = true;
                    st.next_due = None;
                    st.next_due_wall = None;
                }
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
        for (idx, st) in self.integrations.iter().enumerate() {
            if st.paused
                && st
                    .history
                    .last()
                    .is_some_and(|r| r.outcome == Outcome::AuthRejected)
            {
                self.paused_credentials
                    .insert(self.config.integrations[idx].credential.clone());
            }
        }
        self.offsets = std::mem::take(&mut recent.offsets);
        let window = to_chrono(self.config.settings.sustained_window);
        let now = Utc::now();
        for event in recent.auth_events.iter().rev() {
            if event.source == PROBE_SOURCE || now - event.at > window {
                continue;
            }
            if let Some(idx) = event
                .integration
                .as_ref()
                .and_then(|n| self.config.integrations.iter().position(|i| &i.name == n))
            {
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
    fn summarize(&mut self) {
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

    /// A rotation recorded a new expiry (here, or by `authwatch rotate` in another process): use it when it is
    /// later than the configured one.
    fn set_secret_expiry(&mut self, credential: &str, expires: DateTime<Utc>) {
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
        for (st, i) in self.integrations.iter_mut().zip(&self.config.integrations) {
            if i.credential == credential {
                st.changed = true;
            }
        }
        // The calendar shows credentials even without a changed integration.
        self.log_changed = true;
    }

    fn record(&self, record: Record) {
        if let Some(h) = &self.history {
            h.record(record);
        }
    }

    async fn run(
        &mut self,
        mut commands: mpsc::Receiver<Command>,
        mut results: mpsc::UnboundedReceiver<ResultMsg>,
        mut summaries: mpsc::UnboundedReceiver<Summaries>,
        mut follow: mpsc::Receiver<FollowUpdate>,
        start_gate: Option<oneshot::Receiver<()>>,
    ) {
        self.summarize();
        // Until the gate opens nothing is probed; commands, log events and history are handled all the same.
        let mut gate = start_gate;
        let mut reevaluate = tokio::time::interval(REEVALUATE_EVERY);
        reevaluate.tick().await;
        loop {
            let wake = if gate.is_some() {
                None
            } else {
                self.next_wake()
            };
            tokio::select! {
                // A dropped sender also opens the gate: the consumer went away or does not care.
                _ = async { gate.as_mut().expect("guarded").await }, if gate.is_some() => gate = None,
                cmd = commands.recv() => match cmd {
                    None | Some(Command::Shutdown) => break,
                    Some(cmd) => self.command(cmd),
                },
                Some(msg) = results.recv() => {
                    self.apply(msg);
                    // Coalesce: apply everything already waiting before publishing once.
                    while let Ok(msg) = results.try_recv() {
                        self.apply(msg);
                    }
                }
                _ = sleep_until_opt(wake) => {}
                _ = reevaluate.tick() => {
                    for st in &mut self.integrations {
                        st.changed = true;
                    }
                    self.summarize();
                }
                Some(update) = follow.recv() => {
                    self.follow_update(update);
                    while let Ok(update) = follow.try_recv() {
                        self.follow_update(update);
                    }
                }
                Some(summaries) = summaries.recv() => {
                    self.summarizing = false;
                    if summaries.generation == self.generation {
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
                }
            }
            if gate.is_none() {
                self.start_due();
            }
            self.publish(Utc::now());
        }
    }

    fn next_wake(&self) -> Option<Instant> {
        self.integrations
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.in_flight && !s.paused)
            .filter_map(|(i, s)| s.next_due.map(|d| d.max(self.hold_until(i))))
            .min()
    }

    fn hold_until(&self, idx: usize) -> Instant {
        let cred = &self.config.integrations[idx].credential;
        self.held_credentials
            .get(cred)
            .copied()
            .unwrap_or_else(|| Instant::now() - Duration::from_secs(1))
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::ProbeNow { integration } => {
                if let Some(idx) = self
                    .config
                    .integrations
                    .iter()
                    .position(|i| i.name == integration)
                {
                    self.force(idx);
                }
            }
            Command::Ingest { events } => self.ingest(events),
            Command::ProbeAll => {
                for idx in 0..self.integrations.len() {
                    self.force(idx);
                }
            }
            Command::Reload(config) => {
                let old: HashMap<String, IntegrationState> = std::mem::take(&mut self.integrations)
                    .into_iter()
                    .zip(self.config.integrations.iter())
                    .map(|(st, i)| (i.name.clone(), st))
                    .collect();
                match Prober::new(&config.settings) {
                    Ok(p) => self.prober = Arc::new(p),
                    Err(e) => tracing::error!("keeping the old HTTP client after reload: {e}"),
                }
                self.semaphore =
                    Arc::new(Semaphore::new(config.settings.max_concurrent_probes.max(1)));
                self.config = Arc::new(*config);
                self.generation += 1;
                self.cache.clear();
                self.paused_credentials.clear();
                self.held_credentials.clear();
                self.integrations = self.fresh_states(&old);
                self.start_followers();
                // Uptime and the expiries recorded by rotations, for the new configuration.
                self.summarizing = false;
                self.summarize();
                let _ = self.events.send(EngineEvent::ConfigReloaded {
                    at: Utc::now(),
                    integrations: self.integrations.len(),
                });
            }
            Command::Ack { integration, actor } => {
                if let Some(idx) = self
                    .config
                    .integrations
                    .iter()
                    .position(|i| i.name == integration)
                {
                    let st = &mut self.integrations[idx];
                    if st.health.status != Status::Ok {
                        let ack = Ack {
                            at: chrono::SubsecRound::trunc_subsecs(Utc::now(), 3),
                            actor,
                        };
                        self.record(Record::Ack {
                            integration,
                            at: ack.at,
                            actor: ack.actor.clone(),
                            note: None,
                        });
                        let st = &mut self.integrations[idx];
                        st.acked = Some(ack);
                        st.changed = true;
                    }
                }
            }
            Command::SetSecretExpiry {
                credential,
                expires,
            } => self.set_secret_expiry(&credential, expires),
            Command::Shutdown => {}
        }
    }

    /// 401/403s posted to the engine (agent API): shown, kept as evidence and stored.
    fn ingest(&mut self, events: Vec<AuthEvent>) {
        let records = self.take_events(events);
        if let Some(h) = &self.history {
            h.record_all(records);
        }
    }

    /// What a log follower found: the events and the offset after them are stored in one transaction, so a
    /// restart neither loses nor repeats a line.
    fn follow_update(&mut self, update: FollowUpdate) {
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
    fn start_followers(&mut self) {
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
        let window = to_chrono(self.config.settings.sustained_window);
        let now = Utc::now();
        for event in events {
            if let Some(idx) = event.integration.as_ref().and_then(|name| {
                self.config
                    .integrations
                    .iter()
                    .position(|i| &i.name == name)
            }) {
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
        self.log_changed = true;
        records
    }

    /// A human asked: probe now with a fresh token, lifting any pause.
    fn force(&mut self, idx: usize) {
        let cred = self.config.integrations[idx].credential.clone();
        self.paused_credentials.remove(&cred);
        self.held_credentials.remove(&cred);
        let st = &mut self.integrations[idx];
        st.paused = false;
        st.fresh_next = true;
        if st.in_flight {
            st.forced_pending = true;
        } else {
            st.next_due = Some(Instant::now());
        }
        st.changed = true;
    }

    fn start_due(&mut self) {
        let now = Instant::now();
        // One horizon per batch, so integrations sharing a grant share one fresh token (or one refusal).
        let batch = std::time::Instant::now();
        for idx in 0..self.integrations.len() {
            let cred_name = &self.config.integrations[idx].credential;
            let held = self
                .held_credentials
                .get(cred_name)
                .is_some_and(|t| *t > now);
            let st = &self.integrations[idx];
            let due = st.next_due.is_some_and(|d| d <= now);
            if st.in_flight || st.paused || !due || held {
                continue;
            }
            if self.paused_credentials.contains(cred_name) {
                let st = &mut self.integrations[idx];
                st.paused = true;
                st.next_due = None;
                st.next_due_wall = None;
                st.changed = true;
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
            token_since: std::mem::take(&mut st.fresh_next).then_some(batch),
            batch,
        };
        let config = self.config.clone();
        let prober = self.prober.clone();
        let cache = self.cache.clone();
        let semaphore = self.semaphore.clone();
        let tx = self.results_tx.clone();
        let generation = self.generation;
        let name = config.integrations[idx].name.clone();
        let _ = self.events.send(EngineEvent::ProbeStarted {
            integration: name,
            at: Utc::now(),
        });
        tokio::spawn(async move {
            let Ok(_permit) = semaphore.acquire_owned().await else {
                return;
            };
            let integration = &config.integrations[idx];
            let Some(credential) = config.credential(&integration.credential) else {
                return;
            };
            let timeout = config.settings.secret_command_timeout;
            let secret = probe::secret_source(&credential.client_secret, timeout);
            let target = ProbeTarget {
                integration,
                credential,
            };
            let result = probe::probe(&prober, &cache, target, &secret, freshness).await;
            let _ = tx.send((generation, idx, result));
        });
    }

    fn apply(&mut self, (generation, idx, result): ResultMsg) {
        if generation != self.generation || idx >= self.integrations.len() {
            return;
        }
        let settings = self.config.settings.clone();
        let integration = self.config.integrations[idx].clone();
        let now_i = Instant::now();
        let mut rng_unit = rand::random::<f64>();
        let st = &mut self.integrations[idx];
        st.in_flight = false;
        st.changed = true;
        let result = match result {
            Ok(r) => r,
            Err(NotProbed::Secret(msg)) => {
                st.secret_error = Some(msg);
                st.next_due = Some(now_i + settings.probe_interval);
                st.next_due_wall = Some(Utc::now() + to_chrono(settings.probe_interval));
                return;
            }
        };
        st.secret_error = None;
        let at = result.at;
        let outcome = result.outcome;
        if outcome.is_ok() {
            st.consecutive_auth = 0;
            st.non_auth_streak = 0;
            st.failing_since = None;
            st.last_success = Some(at);
        } else if outcome.is_auth_failure() {
            st.consecutive_auth += 1;
            st.non_auth_streak = 0;
            st.failing_since.get_or_insert(at);
        } else {
            st.non_auth_streak += 1;
        }
        let mut next =
            schedule::next_after(&result, st.consecutive_auth, st.non_auth_streak, &settings);
        if st.forced_pending {
            st.forced_pending = false;
            st.fresh_next = true;
            next = Next::After {
                delay: Duration::ZERO,
                fresh_token: true,
            };
            rng_unit = 0.5;
        }
        match next {
            Next::After { delay, fresh_token } => {
                let delay = schedule::jitter(delay, rng_unit);
                st.paused = false;
                st.fresh_next |= fresh_token;
                st.next_due = Some(now_i + delay);
                st.next_due_wall = Some(Utc::now() + to_chrono(delay));
            }
            Next::Pause => {
                st.paused = true;
                st.next_due = None;
                st.next_due_wall = None;
            }
        }
        if let Some(status) = result.http_status.filter(|s| *s == 401 || *s == 403) {
            let event = AuthEvent {
                at,
                integration: Some(integration.name.clone()),
                http_status: status,
                error: result
                    .error
                    .clone()
                    .unwrap_or_else(|| outcome.as_str().to_string()),
                source: PROBE_SOURCE.to_string(),
            };
            self.record(Record::AuthEvent(event.clone()));
            self.auth_log.push_front(event);
            self.auth_log.truncate(AUTH_LOG_LEN);
        }
        self.record(Record::Probe {
            integration: integration.name.clone(),
            result: result.clone(),
        });
        // Throttling and refusals at the token endpoint concern every consumer of the credential.
        if result.phase == crate::model::Phase::Token {
            if matches!(outcome, Outcome::RateLimited | Outcome::ServerError)
                && let Some(secs) = result.retry_after_secs
            {
                self.held_credentials.insert(
                    integration.credential.clone(),
                    now_i + Duration::from_secs(secs),
                );
            }
            if outcome == Outcome::AuthRejected && self.integrations[idx].paused {
                self.paused_credentials
                    .insert(integration.credential.clone());
                // Consumers already refused with the same secret are confirmed by this one: pause them now,
                // rather than leave them "confirming" with no further probe coming.
                for (j, other) in self.config.integrations.iter().enumerate() {
                    let o = &mut self.integrations[j];
                    if j != idx
                        && other.credential == integration.credential
                        && !o.in_flight
                        && o.consecutive_auth > 0
                    {
                        o.paused = true;
                        o.next_due = None;
                        o.next_due_wall = None;
                        o.changed = true;
                    }
                }
            }
        }
        if outcome.is_ok() {
            self.paused_credentials.remove(&integration.credential);
            for (j, other) in self.config.integrations.iter().enumerate() {
                let o = &mut self.integrations[j];
                if other.credential == integration.credential
                    && o.paused
                    && j != idx
                    && o.consecutive_auth < settings.failure_threshold
                {
                    o.paused = false;
                    o.next_due = Some(now_i);
                    o.changed = true;
                }
            }
        }
        let st = &mut self.integrations[idx];
        let fresh_token = result.fresh_token;
        // A new slice per result: the published view keeps sharing the old one until the next snapshot.
        let keep = st.history.len().saturating_sub(HISTORY_LEN - 1);
        st.history = st.history[keep..]
            .iter()
            .cloned()
            .chain(std::iter::once(result))
            .collect();
        let _ = self.events.send(EngineEvent::ProbeFinished {
            integration: integration.name.clone(),
            at,
            outcome,
            fresh_token,
        });
        if st.paused {
            let _ = self.events.send(EngineEvent::Paused {
                integration: integration.name.clone(),
                at,
                reason: format!("{} consecutive auth failures", st.consecutive_auth),
            });
        }
    }

    /// Rebuild the views that changed and publish one snapshot.
    fn publish(&mut self, now: DateTime<Utc>) {
        let thresholds = Thresholds::from(&self.config.settings);
        let mut any = false;
        for (idx, st) in self.integrations.iter_mut().enumerate() {
            if !st.changed {
                continue;
            }
            st.changed = false;
            any = true;
            let integration = &self.config.integrations[idx];
            let secret_expires = self
                .config
                .credential(&integration.credential)
                .and_then(|c| c.secret_expires);
            let history = st.history.clone();
            let health = health::evaluate(
                &Evidence {
                    history: &history,
                    consecutive_auth_failures: st.consecutive_auth,
                    failing_since: st.failing_since,
                    paused: st.paused,
                    secret_expires,
                    secret_error: st.secret_error.as_deref(),
                    log_events: st.log_events.make_contiguous(),
                },
                now,
                &thresholds,
            );
            if health.status != st.health.status {
                let _ = self.events.send(EngineEvent::StatusChanged {
                    integration: integration.name.clone(),
                    at: now,
                    from: st.health.status,
                    to: health.status,
                    reason: health.short_reason().to_string(),
                });
                if let Some(h) = &self.history {
                    h.record(Record::Transition(Transition {
                        integration: integration.name.clone(),
                        at: now,
                        from: st.health.status,
                        to: health.status,
                        reason: health.short_reason().to_string(),
                    }));
                }
            }
            if health.status == Status::Ok {
                // The incident is over: the next one needs its own acknowledgement.
                st.acked = None;
            }
            st.health = health.clone();
            st.view = Arc::new(IntegrationView {
                health,
                history,
                consecutive_auth_failures: st.consecutive_auth,
                failing_since: st.failing_since,
                last_success: st.last_success,
                next_probe_at: st.next_due_wall.filter(|_| !st.paused),
                paused: st.paused,
                probing: st.in_flight,
                secret_expires,
                acked: st.acked.clone(),
                uptime_24h: st.summary.uptime_24h,
                uptime_7d: st.summary.uptime_7d,
                incidents: st.summary.incidents.clone(),
                ..placeholder_view(integration)
            });
        }
        let history_error = self
            .history
            .as_ref()
            .and_then(HistoryWriter::error)
            .or_else(|| self.history_error.clone());
        if !any
            && !self.log_changed
            && self.version > 0
            && history_error == self.snapshots.borrow().history_error
        {
            return;
        }
        self.log_changed = false;
        let mut summary = Summary::default();
        for st in &self.integrations {
            summary.add(st.view.health.status);
        }
        let credentials = credential_views(&self.config, now, &self.paused_credentials);
        let environments = environments(&self.config);
        self.version += 1;
        let snapshot = Snapshot {
            version: self.version,
            generated_at: now,
            config_name: self.config.name.clone(),
            environments,
            integrations: self.integrations.iter().map(|s| s.view.clone()).collect(),
            credentials,
            auth_log: Arc::new(self.auth_log.iter().cloned().collect()),
            summary,
            history_error,
            log_sources: self.log_sources.clone(),
            connection: None,
            newest_data_at: self
                .integrations
                .iter()
                .filter_map(|s| s.history.last().map(|r| r.at))
                .max(),
        };
        self.snapshots.send_replace(Arc::new(snapshot));
    }
}

/// Expiry views of every credential, for snapshots built by the engine and by one-shot sweeps.
pub(crate) fn credential_views(
    config: &Config,
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
                integrations: config
                    .integrations
                    .iter()
                    .filter(|i| i.credential == c.id)
                    .map(|i| i.name.clone())
                    .collect(),
                paused: paused.contains(&c.id),
            })
        })
        .collect()
}

/// Distinct environments of the integrations, sorted.
pub(crate) fn environments(config: &Config) -> Vec<String> {
    let mut envs: Vec<String> = config
        .integrations
        .iter()
        .filter_map(|i| i.environment.clone())
        .collect();
    envs.sort();
    envs.dedup();
    envs
}

pub(crate) fn placeholder_view(i: &crate::config::Integration) -> IntegrationView {
    IntegrationView {
        name: i.name.clone(),
        credential: i.credential.clone(),
        account_id: i.account_id.clone(),
        business_unit: i.business_unit.clone(),
        team: i.team.clone(),
        environment: i.environment.clone(),
        processes: i.processes.clone(),
        required_scopes: i.scopes.clone(),
        health: Health {
            status: Status::Unknown,
            reasons: vec!["probing...".to_string()],
        },
        history: Arc::from([]),
        consecutive_auth_failures: 0,
        failing_since: None,
        last_success: None,
        next_probe_at: None,
        paused: false,
        probing: false,
        secret_expires: None,
        acked: None,
        uptime_24h: None,
        uptime_7d: None,
        incidents: Vec::new(),
    }
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
