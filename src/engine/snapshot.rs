//! The immutable state the engine publishes on every change. Consumers (console, agent, check) only read this.

use crate::model::{Ack, AuthEvent, Health, History, Incident, ProbeResult, Status};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntegrationView {
    pub name: String,
    pub credential: String,
    pub account_id: Option<String>,
    pub business_unit: Option<String>,
    pub team: Option<String>,
    pub environment: Option<String>,
    pub processes: Vec<String>,
    pub required_scopes: Vec<String>,
    pub health: Health,
    /// Newest last; bounded (see `engine::HISTORY_LEN`).
    /// Newest last; shared with the engine's state (cloning a view does not copy it).
    pub history: History,
    pub consecutive_auth_failures: u32,
    /// When the current run of failures (auth or not) began.
    pub failing_since: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    pub next_probe_at: Option<DateTime<Utc>>,
    /// Automatic probing is paused after repeated auth failures until a human forces a probe or reloads.
    pub paused: bool,
    /// A probe is running right now.
    pub probing: bool,
    pub secret_expires: Option<DateTime<Utc>>,
    /// Someone acknowledged the current incident (cleared when the integration is OK again).
    pub acked: Option<Ack>,
    /// From the results kept in memory (restored from the history database at start), moved with the clock
    /// every minute (None: nothing probed in the window).
    pub uptime_24h: Option<f64>,
    pub uptime_7d: Option<f64>,
    /// Incidents of the last 7 days, newest first.
    pub incidents: Vec<Incident>,
    /// The first probe result, when it is younger than a week: the uptimes cover only the time since.
    #[serde(default)]
    pub uptime_since: Option<DateTime<Utc>>,
    /// When a new token was last granted to its credential (by any of its consumers): the last time the client
    /// secret itself was verified. Probes that reuse a cached token check the token, not the secret.
    #[serde(default)]
    pub secret_verified_at: Option<DateTime<Utc>>,
    /// When the token its last probe used stops being reused: the first probe after it requests a new token
    /// (None when its last probe got no token).
    #[serde(default)]
    pub token_reused_until: Option<DateTime<Utc>>,
}

impl IntegrationView {
    /// What is shown before anything is known: the configuration, "probing...".
    pub(crate) fn placeholder(i: &crate::config::Integration) -> IntegrationView {
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
            history: History::default(),
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
            uptime_since: None,
            secret_verified_at: None,
            token_reused_until: None,
        }
    }

    pub fn last_probe(&self) -> Option<&ProbeResult> {
        self.history.last()
    }
    /// Scopes from the newest probe that was granted a token.
    pub fn granted_scopes(&self) -> Option<&[String]> {
        self.history
            .iter()
            .rev()
            .find_map(|p| p.granted_scopes.as_deref())
    }
    /// When the newest non-ok probe happened (for "sort by last failure").
    pub fn last_failure_at(&self) -> Option<DateTime<Utc>> {
        self.history
            .iter()
            .rev()
            .find(|p| !p.outcome.is_ok())
            .map(|p| p.at)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CredentialView {
    pub id: String,
    pub owner: Option<String>,
    pub client_id: String,
    pub secret_expires: Option<DateTime<Utc>>,
    /// Whole days until expiry (negative once expired).
    pub days_left: Option<i64>,
    /// Expiry-only verdict: ok / warn (within warn_before) / fail (expired or within critical_before).
    pub expiry_status: Status,
    pub integrations: Vec<String>,
    pub paused: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub ok: usize,
    pub warn: usize,
    pub fail: usize,
    pub unknown: usize,
}

impl Summary {
    pub fn add(&mut self, s: Status) {
        match s {
            Status::Ok => self.ok += 1,
            Status::Warn => self.warn += 1,
            Status::Fail => self.fail += 1,
            Status::Unknown => self.unknown += 1,
        }
    }
    /// Worst status present (Nagios precedence: fail > warn > unknown > ok... except unknown exits 3).
    pub fn worst(&self) -> Status {
        if self.fail > 0 {
            Status::Fail
        } else if self.warn > 0 {
            Status::Warn
        } else if self.unknown > 0 {
            Status::Unknown
        } else {
            Status::Ok
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// Increments on every publish, so consumers can tell a change from a repeat.
    pub version: u64,
    pub generated_at: DateTime<Utc>,
    /// Config name for the header.
    pub config_name: String,
    /// Distinct environments of the integrations, e.g. ["prod"].
    pub environments: Vec<String>,
    /// In config order; consumers sort as they like.
    pub integrations: Vec<Arc<IntegrationView>>,
    pub credentials: Vec<Arc<CredentialView>>,
    /// Newest first; bounded (see `engine::AUTH_LOG_LEN`).
    pub auth_log: Arc<Vec<AuthEvent>>,
    pub summary: Summary,
    /// Time of the newest probe result.
    pub newest_data_at: Option<DateTime<Utc>>,
    /// Set while history cannot be saved (disk full, read-only database): the screen must say so.
    pub history_error: Option<String>,
    /// The followed log sources and how they are doing.
    pub log_sources: Vec<LogSourceView>,
    /// Set by a console connected to a remote agent while the agent cannot be reached: the data shown is
    /// stale (e.g. "agent unreachable since 14:02:11, reconnecting"). None for a local engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    /// Each credential's rotation: state, steps done, the last step's checks, who holds the lease.
    #[serde(default)]
    pub rotations: Arc<Vec<crate::rotation::session::RotationView>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LogSourceView {
    pub name: String,
    /// "ok", "waiting for /var/log/x.jsonl", or an error in words.
    pub status: String,
    pub ok: bool,
    /// 401/403 lines that matched no integration, and lines that could not be parsed, since start.
    pub unmatched: u64,
    pub malformed: u64,
}

impl Snapshot {
    pub fn empty(config_name: impl Into<String>) -> Self {
        Self {
            version: 0,
            generated_at: Utc::now(),
            config_name: config_name.into(),
            environments: Vec::new(),
            integrations: Vec::new(),
            credentials: Vec::new(),
            auth_log: Arc::new(Vec::new()),
            summary: Summary::default(),
            newest_data_at: None,
            history_error: None,
            log_sources: Vec::new(),
            connection: None,
            rotations: Arc::new(Vec::new()),
        }
    }
    pub fn integration(&self, name: &str) -> Option<&Arc<IntegrationView>> {
        self.integrations.iter().find(|i| i.name == name)
    }
    pub fn rotation(&self, credential: &str) -> Option<&crate::rotation::session::RotationView> {
        self.rotations.iter().find(|r| r.credential == credential)
    }
    pub fn credential(&self, id: &str) -> Option<&Arc<CredentialView>> {
        self.credentials.iter().find(|c| c.id == id)
    }
}
