//! How consumers talk to the engine: read snapshots and events, send commands.

use super::snapshot::Snapshot;
use crate::model::{Outcome, Status};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc, watch};

/// A rotation step: which credential, what, who asks (and from where), and the wizard session it belongs to.
#[derive(Debug)]
pub struct RotateCommand {
    pub credential: String,
    pub cmd: crate::rotation::session::WizardCmd,
    pub actor: crate::rotation::session::Actor,
    pub session: Option<u64>,
    pub reply: Option<tokio::sync::oneshot::Sender<crate::rotation::session::Update>>,
}

/// What a consumer may ask the engine to do.
#[derive(Debug)]
pub enum Command {
    /// Probe one integration now with a fresh token (also lifts a pause).
    ProbeNow { integration: String },
    /// Probe every integration now with fresh tokens (also lifts pauses).
    ProbeAll,
    /// 401/403s read from integrations' own logs (or posted to the agent).
    Ingest {
        events: Vec<crate::model::AuthEvent>,
    },
    /// Acknowledge the integration's current incident: shown as ACK, mutes notifications, not the screen.
    Ack { integration: String, actor: String },
    /// Take the acknowledgement back (notifications resume); recorded, so a restart does not bring it back.
    Unack { integration: String, actor: String },
    /// A rotation was activated: the credential's secret now expires then (the calendar and rules use it at once).
    SetSecretExpiry {
        credential: String,
        expires: DateTime<Utc>,
    },
    /// A rotation step, run by the engine's one rotation driver (off the async workers); the answer goes to
    /// `reply`, and the credential's rotation view is published in the snapshot.
    Rotate(Box<RotateCommand>),
    /// Replace the configuration (clears pauses and cached tokens).
    Reload(Box<crate::config::Config>),
    /// Answer on the channel: the loop is turning, not stuck (the systemd watchdog asks before each ping).
    Ping(mpsc::Sender<()>),
    /// Stop the scheduler; in-flight probes are abandoned.
    Shutdown,
}

/// Things that happened, for live feeds (agent SSE, notifications, console messages).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EngineEvent {
    ProbeStarted {
        integration: String,
        at: DateTime<Utc>,
    },
    ProbeFinished {
        integration: String,
        at: DateTime<Utc>,
        outcome: Outcome,
        fresh_token: bool,
    },
    StatusChanged {
        integration: String,
        at: DateTime<Utc>,
        from: Status,
        to: Status,
        reason: String,
    },
    /// Automatic probing of a credential or integration paused after repeated auth failures.
    Paused {
        integration: String,
        at: DateTime<Utc>,
        reason: String,
    },
    ConfigReloaded {
        at: DateTime<Utc>,
        integrations: usize,
    },
}

impl EngineEvent {
    /// One of the two events every probe makes (started, finished).
    fn is_probe_progress(&self) -> bool {
        matches!(
            self,
            EngineEvent::ProbeStarted { .. } | EngineEvent::ProbeFinished { .. }
        )
    }
}

/// The engine's events as two feeds: all of them, and all but the two-per-probe started/finished events, so a
/// consumer that does not want those is not woken for each (1,000 integrations every 30 s: 66 a second, times
/// every live SSE client).
#[derive(Clone)]
pub struct EventBus {
    all: broadcast::Sender<EngineEvent>,
    changes: broadcast::Sender<EngineEvent>,
}

impl EventBus {
    pub fn new(capacity: usize) -> Self {
        Self {
            all: broadcast::channel(capacity).0,
            changes: broadcast::channel(capacity).0,
        }
    }

    pub fn send(&self, event: EngineEvent) {
        if !event.is_probe_progress() && self.changes.receiver_count() > 0 {
            let _ = self.changes.send(event.clone());
        }
        let _ = self.all.send(event);
    }
}

/// Cheap to clone; every consumer holds one.
#[derive(Clone)]
pub struct EngineHandle {
    pub(crate) snapshots: watch::Receiver<Arc<Snapshot>>,
    pub(crate) events: EventBus,
    pub(crate) commands: mpsc::Sender<Command>,
}

#[derive(Debug, thiserror::Error)]
#[error("the engine has stopped")]
pub struct EngineStopped;

impl EngineHandle {
    /// The newest snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }
    /// A receiver that wakes on every published snapshot.
    pub fn watch(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshots.clone()
    }
    /// Every event, with a started and a finished event for each probe.
    pub fn events(&self) -> broadcast::Receiver<EngineEvent> {
        self.events.all.subscribe()
    }
    /// Every event but probes starting and finishing.
    pub fn changes(&self) -> broadcast::Receiver<EngineEvent> {
        self.events.changes.subscribe()
    }
    /// The engine's loop still takes commands.
    pub fn is_running(&self) -> bool {
        !self.commands.is_closed()
    }
    pub async fn send(&self, cmd: Command) -> Result<(), EngineStopped> {
        self.commands.send(cmd).await.map_err(|_| EngineStopped)
    }
    /// For synchronous callers (key handlers): fails instead of waiting when the queue is full.
    pub fn try_send(&self, cmd: Command) -> Result<(), EngineStopped> {
        self.commands.try_send(cmd).map_err(|_| EngineStopped)
    }
}

impl EngineHandle {
    /// A handle wired to plain channels instead of a running engine: the caller publishes snapshots and reads
    /// the commands consumers send. Used by the console's tests and by remote (agent) front-ends.
    pub fn from_channels(
        snapshots: watch::Receiver<Arc<Snapshot>>,
        commands: mpsc::Sender<Command>,
    ) -> Self {
        Self {
            snapshots,
            events: EventBus::new(16),
            commands,
        }
    }
}

impl EngineHandle {
    /// A wizard's link to the engine's rotation driver: requests in, answers out in the same order. The link
    /// is one session: after it opens a credential it holds that credential's lease until it sends `Close`
    /// (or goes quiet; see `rotation::session::SESSION_IDLE`). On a `--connect` console the engine handle is the
    /// agent's client, which turns each step into an API call.
    pub fn rotation_link(
        &self,
        actor: crate::rotation::session::Actor,
    ) -> (
        mpsc::UnboundedSender<crate::rotation::session::Request>,
        mpsc::UnboundedReceiver<crate::rotation::session::Update>,
    ) {
        use crate::rotation::session::{Request, Update};
        static SESSIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let session = SESSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ^ (u64::from(std::process::id()) << 32);
        let (req_tx, mut req_rx) = mpsc::unbounded_channel::<Request>();
        let (upd_tx, upd_rx) = mpsc::unbounded_channel();
        let handle = self.clone();
        tokio::spawn(async move {
            while let Some(Request { credential, cmd }) = req_rx.recv().await {
                // Closing a session answers nobody: the wizard is gone.
                let quiet = matches!(cmd, crate::rotation::session::WizardCmd::Close);
                let (tx, rx) = tokio::sync::oneshot::channel();
                let sent = handle
                    .send(Command::Rotate(Box::new(RotateCommand {
                        credential: credential.clone(),
                        cmd,
                        actor: actor.clone(),
                        session: Some(session),
                        reply: Some(tx),
                    })))
                    .await;
                let update = match sent {
                    Ok(()) => rx.await.unwrap_or_else(|_| {
                        Update::failed(&credential, "rotation is not running".into())
                    }),
                    Err(EngineStopped) => {
                        Update::failed(&credential, "rotation is not running".into())
                    }
                };
                if !quiet && upd_tx.send(update).is_err() {
                    break;
                }
            }
        });
        (req_tx, upd_rx)
    }
}
