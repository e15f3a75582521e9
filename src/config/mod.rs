//! Configuration: the TOML schema, validation with file:line:column errors, and where the file is found.
//!
//! The public types below are the validated form every other module uses. Parsing keeps spans so that every
//! error can point at the exact place in the file.

mod diag;
mod discover;
mod keys;
mod load;
mod log_source;
mod parts;
mod read;
mod report;
mod team;

pub use diag::{ConfigError, Diagnostic};
pub use discover::{ConfigNotFound, DiscoverEnv, Searched, discover, discover_with};
pub use keys::{KEY_ACTIONS, KEY_NAMES, KeyBindings, KeySpec, parse_key};
pub use load::{CREDENTIAL_KEYS, INTEGRATION_KEYS, SECTIONS, SETTINGS_KEYS, load, parse};
pub use log_source::{LogFormat, LogSourceConfig};
pub use report::check_report;
pub use team::{
    AGENT_KEYS, AGENT_TOKEN_KEYS, AgentConfig, ApiToken, DEFAULT_AGENT_LISTEN,
    DEFAULT_EXPIRY_REMINDERS, MAINTENANCE_KEYS, Maintenance, NOTIFY_KEYS, NotifyConfig,
    NotifyEvent, NotifyKind, PAGERDUTY_EVENTS_URL, Role, Schedule, TlsFiles, UrlRef,
};

use crate::secrets::SecretRef;
use chrono::{DateTime, Utc};
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// A loaded, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from (None for configs built in code, e.g. tests).
    pub path: Option<PathBuf>,
    /// Shown in the console header: `settings.name`, else the file stem.
    pub name: String,
    pub settings: Settings,
    pub credentials: Vec<Credential>,
    pub integrations: Vec<Integration>,
    /// Integrations' own logs to read 401/403s from.
    pub log_sources: Vec<LogSourceConfig>,
    /// Non-fatal findings, e.g. an http:// URL to a non-loopback host.
    pub warnings: Vec<String>,
    /// `[agent]`: the headless agent's API (listen address, tokens, TLS).
    pub agent: AgentConfig,
    /// `[[notify]]`: receivers of direct notifications.
    pub notify: Vec<NotifyConfig>,
    /// `[[maintenance]]`: windows that mute notifications.
    pub maintenance: Vec<Maintenance>,
    /// `[keys]`: the console's keys, remapped.
    pub keys: KeyBindings,
}

impl Config {
    /// Every environment variable a `{ env = .. }` secret reference of this configuration names.
    pub fn secret_env_names(&self) -> Vec<String> {
        let refs = self
            .credentials
            .iter()
            .map(|c| &c.client_secret)
            .chain(self.agent.tokens.iter().map(|t| &t.token))
            .chain(self.notify.iter().filter_map(|n| n.routing_key.as_ref()))
            .chain(self.notify.iter().filter_map(|n| match &n.url {
                team::UrlRef::Secret(r) => Some(r),
                team::UrlRef::Plain(_) => None,
            }));
        refs.filter_map(|r| match r {
            SecretRef::Env(name) => Some(name.clone()),
            _ => None,
        })
        .collect()
    }

    pub fn credential(&self, id: &str) -> Option<&Credential> {
        self.credentials.iter().find(|c| c.id == id)
    }
    pub fn integration(&self, name: &str) -> Option<&Integration> {
        self.integrations.iter().find(|i| i.name == name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub name: Option<String>,
    pub probe_interval: Duration,
    pub token_refresh: Duration,
    pub timeout: Duration,
    pub failure_threshold: u32,
    pub confirm_retry: Duration,
    pub warn_before: Duration,
    pub critical_before: Duration,
    pub latency_warn: Duration,
    pub max_concurrent_probes: usize,
    /// Extra CA bundle (PEM) for corporate TLS interception.
    pub ca_file: Option<PathBuf>,
    /// How long a `{ command = [...] }` secret reference may run.
    pub secret_command_timeout: Duration,
    /// How often `env`, `file` and `store` secret references are re-read to notice a changed secret (compared
    /// by a keyed fingerprint, never kept); a change re-probes the credential at once. Zero: never.
    pub secret_check_interval: Duration,
    /// History database (default under $XDG_STATE_HOME); `--db` overrides it.
    pub db: Option<PathBuf>,
    /// How long history is kept.
    pub retention: Duration,
    /// Window in which 401/403s from logs count as evidence.
    pub sustained_window: Duration,
    /// Log 401/403s within `sustained_window` that make an integration FAIL.
    pub log_fail_threshold: u32,
    /// Secret rotation: how long after generation SFMC accepts a staged secret (SFMC: 5 minutes).
    pub staging_delay: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            name: None,
            probe_interval: Duration::from_secs(300),
            token_refresh: Duration::from_secs(900),
            timeout: Duration::from_secs(10),
            failure_threshold: 3,
            confirm_retry: Duration::from_secs(30),
            warn_before: Duration::from_secs(30 * 86_400),
            critical_before: Duration::from_secs(7 * 86_400),
            latency_warn: Duration::from_secs(2),
            max_concurrent_probes: 16,
            ca_file: None,
            secret_command_timeout: Duration::from_secs(10),
            secret_check_interval: Duration::from_secs(60),
            db: None,
            retention: Duration::from_secs(30 * 86_400),
            sustained_window: Duration::from_secs(600),
            log_fail_threshold: 10,
            staging_delay: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// JSON body to `{auth_url}v2/token`.
    Sfmc,
    /// RFC 6749 form body to `token_url`.
    Oauth2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic (RFC 6749 preferred).
    Basic,
    /// client_id/client_secret in the form body.
    Body,
}

#[derive(Debug, Clone)]
pub struct Credential {
    pub id: String,
    pub provider: Provider,
    /// sfmc: base URL ending in `/`; the token endpoint is `{auth_url}v2/token`.
    pub auth_url: Option<Url>,
    /// oauth2: the full token endpoint.
    pub token_url: Option<Url>,
    pub client_auth: ClientAuth,
    pub client_id: String,
    pub client_secret: SecretRef,
    pub secret_expires: Option<DateTime<Utc>>,
    pub owner: Option<String>,
    /// `client_secret_update = { command = [..] }`: writes a rotated secret (given on stdin) where a
    /// `{ command = .. }` reference reads it.
    pub client_secret_update: Option<Vec<String>>,
}

impl Credential {
    /// The URL token requests go to.
    pub fn token_endpoint(&self) -> Url {
        match self.provider {
            Provider::Sfmc => {
                let base = self
                    .auth_url
                    .as_ref()
                    .expect("validated: sfmc has auth_url");
                base.join("v2/token").expect("validated base URL")
            }
            Provider::Oauth2 => self
                .token_url
                .clone()
                .expect("validated: oauth2 has token_url"),
        }
    }
}

pub const DEFAULT_CHECK_PATH: &str = "platform/v1/tokenContext";

#[derive(Debug, Clone)]
pub struct Integration {
    pub name: String,
    /// Id of a [`Credential`].
    pub credential: String,
    /// MID of the business unit.
    pub account_id: Option<String>,
    /// Required scopes (also requested in the token request when non-empty).
    pub scopes: Vec<String>,
    /// Representative read-only call, relative to rest_instance_url.
    pub check_path: String,
    /// oauth2: an absolute URL to call with the token (none: the token request alone is the probe).
    pub check_url: Option<Url>,
    pub business_unit: Option<String>,
    pub team: Option<String>,
    pub environment: Option<String>,
    pub processes: Vec<String>,
}
