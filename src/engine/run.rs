//! The run loop: wait for commands, results, log updates, history summaries and due probes; publish after each.
//! Also the one-shot mode `check` uses: the same engine, stopped when every selected integration is final.

use super::handle::{Command, EngineEvent, EngineHandle};
use super::snapshot::{Snapshot, Summary};
use super::state::{Engine, Inbox, IntegrationState};
use crate::config::Config;
use crate::model::Ack;
use crate::model::Status;
use crate::probe::{ProbeSetupError, Prober};
use crate::store::Record;
use chrono::Utc;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How often health is re-evaluated without new probe results (secret expiry and log windows move with the clock).
const REEVALUATE_EVERY: Duration = Duration::from_secs(60);
/// At most one snapshot per this: a burst of results becomes one publish (a few per second), not one each.
const PUBLISH_EVERY: Duration = Duration::from_millis(250);

#[derive(Default)]
pub struct EngineOptions {
    /// Wait for this before the first probe (the console fires it after its first frame: no network I/O before it).
    pub start_gate: Option<oneshot::Receiver<()>>,
    /// Where history is kept; None keeps it in memory only.
    pub store: Option<crate::store::Store>,
    /// How long history is kept in the store.
    pub retention: Duration,
    /// Run rotations here (the console's wizard, the agent's API): the config, database and (demo) simulator.
    pub rotation: Option<crate::rotation::session::RotationSetup>,
}

/// A running engine: the handle for consumers and the task to await on shutdown.
pub struct RunningEngine {
    pub handle: EngineHandle,
    pub task: JoinHandle<()>,
}

/// Start the engine on the current tokio runtime.
pub fn spawn(
    config: impl Into<Arc<Config>>,
    options: EngineOptions,
) -> Result<RunningEngine, ProbeSetupError> {
    let (mut engine, handle, mut inbox, commands) = Engine::new(config)?;
    let mut start_gate = options.start_gate;
    if let Some(setup) = options.rotation {
        // The driver's start-up reads (every credential's rotation state) wait for the console's first frame
        // rather than compete with it for the cores: the gate opens both.
        let driver_gate = start_gate.take().map(|gate| {
            let (engine_tx, engine_rx) = oneshot::channel();
            let (driver_tx, driver_rx) = oneshot::channel();
            tokio::spawn(async move {
                let _ = gate.await;
                let _ = driver_tx.send(());
                let _ = engine_tx.send(());
            });
            start_gate = Some(engine_rx);
            driver_rx
        });
        let (link, out) = super::rotation_link::Link::spawn(setup, driver_gate);
        engine.rotation = Some(link);
        inbox.rotation = Some(out);
    }
    engine.publish(Utc::now());
    let task = tokio::spawn(async move {
        let mut engine = engine;
        if let Some(store) = options.store {
            engine.restore(store, options.retention).await;
        }
        engine.start_followers();
        let (mut commands, mut inbox, mut gate) = (commands, inbox, start_gate);
        // Supervised: a panic is logged and counted, and the loop goes on with the state it had.
        while let Err(cause) =
            super::supervise::catch(engine.run(&mut commands, &mut inbox, &mut gate)).await
        {
            super::supervise::record_restart("engine", &cause);
        }
        engine.followers.clear();
        if let Some(history) = engine.history.take() {
            let _ = tokio::task::spawn_blocking(move || history.close()).await;
        }
    });
    Ok(RunningEngine { handle, task })
}

/// Probe the integrations at `selected` (indexes into the config) once with fresh tokens, confirming auth
/// failures at once up to `failure_threshold` attempts, in rounds (so consumers of one credential share one
/// token request per round); the snapshot holds the selected integrations only. No store, no log followers.
pub async fn run_once(config: Config, selected: &[usize]) -> Result<Snapshot, ProbeSetupError> {
    let (mut engine, _handle, mut inbox, _commands) = Engine::new(config)?;
    engine.one_shot = true;
    for (idx, st) in engine.integrations.iter_mut().enumerate() {
        st.tracking.fresh_next = true;
        if !selected.contains(&idx) {
            st.next_due = None;
        }
    }
    engine.reset_due();
    loop {
        if !engine.integrations.iter().any(|s| s.in_flight) {
            engine.start_due();
            if !engine.integrations.iter().any(|s| s.in_flight) {
                break;
            }
        }
        let Some(msg) = inbox.results.recv().await else {
            break;
        };
        engine.apply(msg);
    }
    engine.publish(Utc::now());
    let all = engine.snapshots.borrow().clone();
    let integrations: Vec<_> = selected
        .iter()
        .filter_map(|&i| all.integrations.get(i).cloned())
        .collect();
    let mut summary = Summary::default();
    for i in &integrations {
        summary.add(i.health.status);
    }
    Ok(Snapshot {
        version: 1,
        newest_data_at: integrations
            .iter()
            .filter_map(|i| i.last_probe().map(|p| p.at))
            .max(),
        integrations,
        summary,
        auth_log: Arc::new(Vec::new()),
        ..(*all).clone()
    })
}

impl Engine {
    async fn run(
        &mut self,
        commands: &mut mpsc::Receiver<Command>,
        inbox: &mut Inbox,
        gate: &mut Option<oneshot::Receiver<()>>,
    ) {
        self.summarize();
        let (mut completed, mut moved) = match &self.db_path {
            Some(db) if !self.one_shot => super::rotations::watch(db.clone()),
            _ => (mpsc::unbounded_channel().1, mpsc::unbounded_channel().1),
        };
        // Until the gate opens nothing is probed; commands, log events and history are handled all the same.
        let mut reevaluate = tokio::time::interval(REEVALUATE_EVERY);
        reevaluate.tick().await;
        // The first tick is at once (once the gate opens): the baseline of every secret reference.
        let mut secret_tick = secret_interval(&self.config);
        loop {
            let wake = if gate.is_some() {
                None
            } else {
                self.next_wake()
            };
            let publish_at = self
                .last_publish
                .filter(|_| self.publish_pending)
                .map(|t| t + PUBLISH_EVERY);
            tokio::select! {
                // A dropped sender also opens the gate: the consumer went away or does not care.
                _ = async { gate.as_mut().expect("guarded").await }, if gate.is_some() => *gate = None,
                cmd = commands.recv() => match cmd {
                    None | Some(Command::Shutdown) => break,
                    Some(cmd) => self.command(cmd),
                },
                Some(msg) = inbox.results.recv() => {
                    self.apply(msg);
                    // Coalesce: apply everything already waiting before publishing once.
                    while let Ok(msg) = inbox.results.try_recv() {
                        self.apply(msg);
                    }
                }
                _ = sleep_until_opt(wake) => {}
                _ = sleep_until_opt(publish_at) => {}
                _ = reevaluate.tick() => {
                    for st in &mut self.integrations {
                        st.clock_moved = true;
                    }
                    // Days left move with the clock.
                    self.credential_views_dirty = true;
                    // Memory goes back to the system only after a sweep's worth of work: a trim walks every
                    // arena (up to 40 ms at 10,000 integrations), and the pages it returns fault back in on the
                    // next pass over the views.
                    if self.results_since_trim >= self.integrations.len().max(1) {
                        self.results_since_trim = 0;
                        super::restore::release_free_memory();
                    }
                }
                Some(update) = inbox.follow.recv() => {
                    self.follow_update(update);
                    while let Ok(update) = inbox.follow.try_recv() {
                        self.follow_update(update);
                    }
                }
                Some(summaries) = inbox.summaries.recv() => self.take_summaries(summaries),
                _ = secret_tick.tick(), if gate.is_none() && !self.one_shot => self.check_secrets(),
                Some(reads) = inbox.secret_reads.recv() => self.secrets_read(reads),
                Some(credentials) = completed.recv() => self.rotation_completed(&credentials),
                Some(credentials) = moved.recv() => {
                    // A step may have recorded a new expiry (here or in another process).
                    self.summarizing = false;
                    self.summarize();
                    if let Some(link) = &self.rotation {
                        link.refresh(credentials);
                    }
                }
                Some(out) = super::rotation_link::next_out(&mut inbox.rotation) => {
                    self.rotation_out(out);
                    // A step's answer goes out with the snapshot that shows it.
                    self.last_publish = Some(Instant::now());
                    self.publish_pending = false;
                    self.publish(Utc::now());
                    self.send_rotation_replies();
                }
            }
            if secret_tick.period() != secret_period(&self.config) {
                secret_tick = secret_interval(&self.config); // reloaded with another interval
            }
            if gate.is_none() {
                self.start_due();
            }
            self.publish_coalesced();
        }
    }

    /// Publish now, or at most `PUBLISH_EVERY` after the previous snapshot.
    fn publish_coalesced(&mut self) {
        let now = Instant::now();
        if self.last_publish.is_some_and(|t| now < t + PUBLISH_EVERY) {
            self.publish_pending = true;
            return;
        }
        self.publish_pending = false;
        self.last_publish = Some(now);
        self.publish(Utc::now());
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::ProbeNow { integration } => {
                if let Some(idx) = self.index_of(&integration) {
                    self.force(idx);
                }
            }
            Command::Ingest { events } => self.ingest(events),
            Command::ProbeAll => {
                for idx in 0..self.integrations.len() {
                    self.force(idx);
                }
            }
            Command::Reload(config) => self.reload(*config),
            Command::Ack { integration, actor } => self.ack(&integration, actor),
            Command::Unack { integration, actor } => self.unack(&integration, actor),
            Command::SetSecretExpiry {
                credential,
                expires,
            } => self.set_secret_expiry(&credential, expires),
            Command::Rotate(cmd) => self.rotate(*cmd),
            Command::Ping(reply) => {
                let _ = reply.try_send(());
            }
            Command::Shutdown => {}
        }
    }

    /// A new configuration: keep what is known of integrations that keep their name, forget pauses and tokens.
    fn reload(&mut self, config: Config) {
        self.results_since_trim = usize::MAX; // the old states are freed: trim at the next minute
        let old: HashMap<String, IntegrationState> = std::mem::take(&mut self.integrations)
            .into_iter()
            .zip(self.config.integrations.iter())
            .map(|(st, i)| (i.name.clone(), st))
            .collect();
        match Prober::new(&config.settings) {
            Ok(p) => self.prober = Arc::new(p),
            Err(e) => tracing::error!("keeping the old HTTP client after reload: {e}"),
        }
        self.semaphore = Arc::new(Semaphore::new(config.settings.max_concurrent_probes.max(1)));
        let before = std::mem::replace(&mut self.config, Arc::new(config));
        self.keep_secret_reads(&before);
        self.secret_reading = false;
        if let Some(link) = &self.rotation {
            link.reconfigure(self.config.clone());
        }
        self.generation += 1;
        self.cache.clear();
        self.credentials.clear();
        self.integrations = self.fresh_states(&old);
        self.reset_due();
        self.start_followers();
        // Uptime and the expiries recorded by rotations, for the new configuration.
        self.summarizing = false;
        self.summarize();
        self.events.send(EngineEvent::ConfigReloaded {
            at: Utc::now(),
            integrations: self.integrations.len(),
        });
    }

    /// A rotation completed (here or elsewhere): lift the consumers' pause, re-probe them now, read the new expiry.
    fn rotation_completed(&mut self, credentials: &[String]) {
        for cred in credentials {
            let consumers = self.by_credential.get(cred).cloned().unwrap_or_default();
            for idx in consumers {
                self.force(idx);
            }
        }
        self.summarizing = false;
        self.summarize();
        if let Some(link) = &self.rotation {
            link.refresh(credentials.to_vec());
        }
    }

    /// Acknowledge the current incident (nothing to acknowledge while OK).
    fn ack(&mut self, integration: &str, actor: String) {
        let Some(idx) = self.index_of(integration) else {
            return;
        };
        if self.integrations[idx].health.status == Status::Ok {
            return;
        }
        let ack = Ack {
            at: chrono::SubsecRound::trunc_subsecs(Utc::now(), 3),
            actor,
        };
        self.record(Record::Ack {
            integration: integration.to_string(),
            at: ack.at,
            actor: ack.actor.clone(),
            note: None,
        });
        let st = &mut self.integrations[idx];
        st.acked = Some(ack);
        st.changed = true;
    }

    /// Withdraw the acknowledgement: stored as an ack row marked withdrawn, the newest row wins at restore.
    fn unack(&mut self, integration: &str, actor: String) {
        let Some(idx) = self.index_of(integration) else {
            return;
        };
        if self.integrations[idx].acked.is_none() {
            return;
        }
        self.record(Record::Ack {
            integration: integration.to_string(),
            at: chrono::SubsecRound::trunc_subsecs(Utc::now(), 3),
            actor,
            note: Some(crate::store::ACK_WITHDRAWN.to_string()),
        });
        let st = &mut self.integrations[idx];
        st.acked = None;
        st.changed = true;
    }
}

/// The timer of the secret-reference reads (`secret_check_interval`; zero turns the reads off, see `check_secrets`).
fn secret_interval(config: &Config) -> tokio::time::Interval {
    let mut tick = tokio::time::interval(secret_period(config));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

fn secret_period(config: &Config) -> Duration {
    match config.settings.secret_check_interval {
        d if d.is_zero() => Duration::from_secs(86_400),
        d => d,
    }
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
