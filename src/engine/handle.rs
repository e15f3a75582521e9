//! How consumers talk to the engine: read snapshots and events, send commands.

use super::snapshot::Snapshot;
use crate::model::{Outcome, Status};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc, watch};

/// What a consumer may ask the engine to do.
#[derive(Debug, Clone)]
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
    /// A rotation was activated: the credential's secret now expires then (the calendar and rules use it at once).
    SetSecretExpiry {
        credential: String,
        expires: DateTime<Utc>,
    },
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

/// Cheap to clone; every consumer holds one.
#[derive(Clone)]
pub struct EngineHandle {
    pub(crate) snapshots: watch::Receiver<Arc<Snapshot>>,
    pub(crate) events: broadcast::Sender<EngineEvent>,
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
    pub fn events(&self) -> broadcast::Receiver<EngineEvent> {
        self.events.subscribe()
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
        events: broadcast::Sender<EngineEvent>,
        commands: mpsc::Sender<Command>,
    ) -> Self {
        Self {
            snapshots,
            events,
            commands,
        }
    }
}
