//! The engine owns all state and all I/O: it schedules probes, applies the rules (`crate::rules`) and publishes
//! snapshots. `run` is the loop (and the one-shot sweep), `state` what it holds, `probes` starting probes and
//! applying results, `restore` continuing from the store, `publish` the views, `evidence` the log 401/403s.

mod evidence;
mod fingerprint;
mod handle;
mod history;
mod probes;
mod publish;
mod restore;
mod rotation_link;
mod rotations;
mod run;
mod secret_watch;
mod snapshot;
mod state;
pub mod supervise;

pub use handle::{Command, EngineEvent, EngineHandle, EngineStopped, RotateCommand};
pub use run::{EngineOptions, RunningEngine, run_once, spawn};
pub use snapshot::{CredentialView, IntegrationView, LogSourceView, Snapshot, Summary};

/// Probe results kept per integration in memory.
pub const HISTORY_LEN: usize = 50;
/// 401/403 events kept in memory for the log pane.
pub const AUTH_LOG_LEN: usize = 500;

/// What a history read found, for the configuration of `generation`.
struct Summaries {
    generation: u64,
    /// (credential, expiry recorded at its latest activation).
    expiries: Vec<(String, chrono::DateTime<chrono::Utc>)>,
}
