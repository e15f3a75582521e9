//! The engine owns all state and all I/O: it schedules probes, applies the health rules and publishes snapshots.

mod core;
mod handle;
mod history;
pub mod schedule;
mod snapshot;

pub use core::{EngineOptions, RunningEngine, spawn};
pub(crate) use core::{credential_views, environments, placeholder_view};
pub use handle::{Command, EngineEvent, EngineHandle, EngineStopped};
pub use snapshot::{CredentialView, IntegrationView, LogSourceView, Snapshot, Summary};

/// Probe results kept per integration in memory.
pub const HISTORY_LEN: usize = 50;
/// 401/403 events kept in memory for the log pane.
pub const AUTH_LOG_LEN: usize = 500;
