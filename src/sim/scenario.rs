//! Scenario files: what the simulated SFMC tenant looks like and how it changes over time.
//!
//! ```toml
//! [sim]
//! name = "demo"                  # optional; default: the file stem. Written as settings.name.
//! staging_delay = "5m"           # Setup rotation: staged secret accepted after this long (SFMC: 5m)
//! expires_in = 1079              # access-token lifetime in seconds reported and enforced
//! hang = "60s"                   # how long `timeout` faults hold a response (then 504)
//! seed = 42                      # optional: reproducible flakiness
//! base_url = "https://mc563885gzs27c5t9-63k636ttgm.{kind}.marketingcloudapis.com:{port}/"
//!                                # optional: the URLs clients are sent to (token body, /platform/v1/endpoints,
//!                                # written config); {kind} = auth | rest | soap, {port} = the bound port.
//!                                # Default: the address the simulator listens on. `--public-url` overrides it.
//! unknown_mid = "default"        # account_id that is not one of the client's mids: "default" = token for the
//!                                # first MID (tokenContext shows it), "reject" = 401 (see docs/fidelity.md)
//! token_context_status = 200     # tokenContext's success status (the docs show 202)
//!
//! [authwatch]                    # optional overrides for the [settings] of the written authwatch config
//! probe_interval = "30s"         # every key of authwatch's [settings] may appear; defaults suit a demo
//!
//! [[client]]                     # one installed package (API Integration component)
//! id = "crm-package"             # becomes the authwatch credential id
//! client_id = "5c9e1b7aa0d44f3e8a2b91c7"
//! secret = "..."                 # the active secret
//! scopes = ["data_extensions_read"]
//! mids = ["5100001"]             # business units (strings or numbers); first = default
//! enterprise_id = "5100000"      # default: the first MID
//! owner = "Jane Doe"
//! latency = "40ms"               # added to every response for this client
//! secret_expires_in_days = 120   # for the written config (negative = already expired); default 180
//! secret_valid = true            # false = refused with invalid_client (an expired secret)
//! fault = "none"                 # token endpoint: none | rate_limited | blocked | server_error | malformed_json
//!                                # | timeout | huge_body | bare_token | invalid_client_id
//! rest_fault = "none"            # REST and SOAP calls: none | rate_limited | blocked | unavailable | other_stack
//! retry_after = 5                # seconds, for rate_limited / blocked / server_error / unavailable
//! flaky_401 = 0.0                # probability per token request of a 401
//! flaky_timeout = 0.0            # probability per token request of a hang
//!
//! [[integration]]                # a consumer; only used to write the authwatch config
//! name = "crm-sync"
//! client = "crm-package"
//! account_id = "5100001"
//! scopes = ["data_extensions_read"]
//! check_path = "platform/v1/tokenContext"   # optional
//! business_unit = "NA Retail"
//! team = "crm-ops"
//! environment = "prod"
//! processes = ["Welcome journey"]
//!
//! [[timeline]]                   # relative to server start
//! at = "40s"
//! client = "crm-package"
//! action = "revoke_secret"       # revoke_secret | restore_secret | drop_scope | add_scope
//!                                # | set_fault | clear_fault | set_latency
//! scope = "..."                  # drop_scope / add_scope
//! fault = "rate_limited"         # set_fault
//! latency = "3s"                 # set_latency
//! ```

use super::SimError;
use crate::duration::HumanDuration;
use serde::Deserialize;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;
use toml::Spanned;

/// A validated scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    pub staging_delay: Duration,
    pub expires_in: u64,
    pub hang: Duration,
    pub seed: Option<u64>,
    /// Template for the URLs clients are sent to (`{kind}`, `{port}`); None = the listening address.
    pub base_url: Option<String>,
    pub unknown_mid: UnknownMid,
    pub token_context_status: u16,
    pub authwatch: AuthwatchSettings,
    pub clients: Vec<ClientSpec>,
    pub integrations: Vec<IntegrationSpec>,
    /// Sorted by `at` (stable).
    pub timeline: Vec<TimelineEvent>,
}

/// One installed package.
#[derive(Clone)]
pub struct ClientSpec {
    pub id: String,
    pub client_id: String,
    pub secret: String,
    pub scopes: Vec<String>,
    pub mids: Vec<u64>,
    pub enterprise_id: u64,
    pub owner: Option<String>,
    pub latency: Duration,
    pub secret_expires_in_days: i64,
    pub secret_valid: bool,
    pub fault: Fault,
    pub rest_fault: RestFault,
    pub retry_after: u32,
    pub flaky_401: f64,
    pub flaky_timeout: f64,
}

impl fmt::Debug for ClientSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSpec")
            .field("id", &self.id)
            .field("client_id", &self.client_id)
            .field("secret", &"<redacted>")
            .field("scopes", &self.scopes)
            .field("mids", &self.mids)
            .field("enterprise_id", &self.enterprise_id)
            .field("owner", &self.owner)
            .field("latency", &self.latency)
            .field("secret_expires_in_days", &self.secret_expires_in_days)
            .field("secret_valid", &self.secret_valid)
            .field("fault", &self.fault)
            .field("rest_fault", &self.rest_fault)
            .field("retry_after", &self.retry_after)
            .field("flaky_401", &self.flaky_401)
            .field("flaky_timeout", &self.flaky_timeout)
            .finish()
    }
}

/// How token requests for a client misbehave.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    #[default]
    None,
    /// 429 errorcode 50100 + Retry-After.
    RateLimited,
    /// 503 errorcode 50300 + Retry-After.
    ServerError,
    /// 200 with a truncated JSON body.
    MalformedJson,
    /// Hold the response for `hang`, then 504.
    Timeout,
    /// 200 with a body over 1 MiB.
    HugeBody,
    /// 429 errorcode 50200 "Your requests are temporarily blocked." + Retry-After.
    Blocked,
    /// 200 with only access_token, token_type and expires_in (no instance URLs, no scope).
    BareToken,
    /// 401 invalid_client with the docs' wording: "Invalid client ID. Use the client ID in ... Installed Packages."
    InvalidClientId,
}

/// How REST (and SOAP) calls with a valid token misbehave.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestFault {
    #[default]
    None,
    /// 429 errorcode 50100 + Retry-After (SOAP: HTTP 500 "Rate Limited").
    RateLimited,
    /// 429 errorcode 50200 "Your requests are temporarily blocked." + Retry-After.
    Blocked,
    /// 503 errorcode 50300 + Retry-After.
    Unavailable,
    /// 403 errorcode 40002: the token was issued by another stack/tenant (SOAP: "Login failed").
    OtherStack,
}

/// What an account_id the client has no business unit for gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownMid {
    /// A token for the client's first MID ([I]; tokenContext shows which one).
    #[default]
    Default,
    /// 401 refused at the token endpoint ([I]).
    Reject,
}

/// A consumer of a package; only used to write the authwatch config.
#[derive(Clone, Debug)]
pub struct IntegrationSpec {
    pub name: String,
    /// The scenario client's `id`.
    pub client: String,
    pub account_id: Option<String>,
    pub scopes: Vec<String>,
    pub check_path: Option<String>,
    pub business_unit: Option<String>,
    pub team: Option<String>,
    pub environment: Option<String>,
    pub processes: Vec<String>,
}

/// Overrides for the `[settings]` of the written authwatch config; unset keys get demo-friendly defaults.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthwatchSettings {
    pub name: Option<String>,
    pub probe_interval: Option<HumanDuration>,
    pub token_refresh: Option<HumanDuration>,
    pub timeout: Option<HumanDuration>,
    pub failure_threshold: Option<u32>,
    pub confirm_retry: Option<HumanDuration>,
    pub warn_before: Option<HumanDuration>,
    pub critical_before: Option<HumanDuration>,
    pub latency_warn: Option<HumanDuration>,
    pub max_concurrent_probes: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct TimelineEvent {
    pub at: Duration,
    /// The scenario client's `id`.
    pub client: String,
    pub action: Action,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    RevokeSecret,
    RestoreSecret,
    DropScope(String),
    AddScope(String),
    SetFault(Fault),
    ClearFault,
    SetLatency(Duration),
}

// ---------------------------------------------------------------------------------------------------------------
// Raw (as written) form.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    #[serde(default)]
    sim: RawSim,
    #[serde(default)]
    authwatch: AuthwatchSettings,
    #[serde(default, rename = "client")]
    clients: Vec<RawClient>,
    #[serde(default, rename = "integration")]
    integrations: Vec<RawIntegration>,
    #[serde(default, rename = "timeline")]
    timeline: Vec<Spanned<RawEvent>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSim {
    name: Option<String>,
    staging_delay: Option<HumanDuration>,
    expires_in: Option<Spanned<u64>>,
    hang: Option<HumanDuration>,
    seed: Option<u64>,
    base_url: Option<Spanned<String>>,
    #[serde(default)]
    unknown_mid: UnknownMid,
    token_context_status: Option<Spanned<u16>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawMid {
    Text(String),
    Number(i64),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    id: Spanned<String>,
    client_id: Spanned<String>,
    secret: Spanned<String>,
    #[serde(default)]
    scopes: Vec<String>,
    mids: Spanned<Vec<Spanned<RawMid>>>,
    enterprise_id: Option<Spanned<RawMid>>,
    owner: Option<String>,
    latency: Option<HumanDuration>,
    secret_expires_in_days: Option<i64>,
    secret_valid: Option<bool>,
    #[serde(default)]
    fault: Fault,
    #[serde(default)]
    rest_fault: RestFault,
    retry_after: Option<u32>,
    flaky_401: Option<Spanned<f64>>,
    flaky_timeout: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntegration {
    name: Spanned<String>,
    client: Spanned<String>,
    #[serde(default)]
    account_id: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    check_path: Option<String>,
    #[serde(default)]
    business_unit: Option<String>,
    #[serde(default)]
    team: Option<String>,
    #[serde(default)]
    environment: Option<String>,
    #[serde(default)]
    processes: Vec<String>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum RawAction {
    RevokeSecret,
    RestoreSecret,
    DropScope,
    AddScope,
    SetFault,
    ClearFault,
    SetLatency,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    at: HumanDuration,
    client: Spanned<String>,
    action: Spanned<RawAction>,
    scope: Option<String>,
    fault: Option<Fault>,
    latency: Option<HumanDuration>,
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

struct Ctx<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Ctx<'_> {
    fn err(&self, span: Option<Range<usize>>, message: impl Into<String>) -> SimError {
        let (line, col) = span.map(|s| line_col(self.text, s.start)).unwrap_or((1, 1));
        SimError::Scenario {
            origin: self.origin.to_string(),
            line,
            col,
            message: message.into(),
        }
    }

    fn mid(&self, raw: &Spanned<RawMid>) -> Result<u64, SimError> {
        let bad = || {
            self.err(
                Some(raw.span()),
                "a MID is a positive number, e.g. \"5100001\" or 5100001",
            )
        };
        match raw.get_ref() {
            RawMid::Text(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse().map_err(|_| bad())
            }
            RawMid::Number(n) if *n > 0 => Ok(*n as u64),
            _ => Err(bad()),
        }
    }

    fn probability(&self, raw: &Option<Spanned<f64>>, key: &str) -> Result<f64, SimError> {
        match raw {
            None => Ok(0.0),
            Some(p) if (0.0..=1.0).contains(p.get_ref()) => Ok(*p.get_ref()),
            Some(p) => Err(self.err(
                Some(p.span()),
                format!("{key} is a probability between 0.0 and 1.0"),
            )),
        }
    }
}

/// A `base_url` / `--public-url` template: http(s), a host, and a trailing slash added when missing.
pub fn check_base_url(template: &str) -> Result<String, String> {
    let mut t = template.trim().to_string();
    if !t.ends_with('/') {
        t.push('/');
    }
    let probe = t.replace("{kind}", "auth").replace("{port}", "1");
    match url::Url::parse(&probe) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() && u.path() == "/" => Ok(t),
        _ => Err(format!(
            "base_url must look like https://HOST[:PORT]/ (with {{kind}} = auth|rest|soap and {{port}} allowed), not {template:?}"
        )),
    }
}

impl Scenario {
    /// The built-in demo (assets/scenarios/demo.toml).
    pub fn demo() -> Scenario {
        Scenario::from_toml(
            include_str!("../../assets/scenarios/demo.toml"),
            "demo.toml",
        )
        .expect("the embedded demo scenario is valid")
    }

    /// Read and validate a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Scenario::from_toml(&text, &path.display().to_string())
    }

    /// Parse and validate; `origin` names the file in errors (`origin:line:col: message`).
    pub fn from_toml(text: &str, origin: &str) -> Result<Scenario, SimError> {
        let cx = Ctx { text, origin };
        let raw: RawScenario = toml::from_str(text).map_err(|e| {
            let message = e.message().trim().to_string();
            cx.err(e.span(), message)
        })?;

        let name = raw.sim.name.clone().unwrap_or_else(|| {
            Path::new(origin)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "sim".to_string())
        });
        let expires_in = match &raw.sim.expires_in {
            None => 1079,
            Some(v) if *v.get_ref() > 0 => *v.get_ref(),
            Some(v) => {
                return Err(cx.err(Some(v.span()), "expires_in must be at least 1 (seconds)"));
            }
        };

        let token_context_status = match &raw.sim.token_context_status {
            None => 200,
            Some(v) if (200..300).contains(v.get_ref()) => *v.get_ref(),
            Some(v) => {
                return Err(cx.err(
                    Some(v.span()),
                    "token_context_status is a success status, 200 to 299 (the docs show 202)",
                ));
            }
        };
        let base_url = match &raw.sim.base_url {
            None => None,
            Some(v) => {
                Some(check_base_url(v.get_ref()).map_err(|why| cx.err(Some(v.span()), why))?)
            }
        };

        if raw.clients.is_empty() {
            return Err(cx.err(
                None,
                "the scenario has no [[client]] (an installed package); add at least one",
            ));
        }
        let mut clients: Vec<ClientSpec> = Vec::with_capacity(raw.clients.len());
        for c in &raw.clients {
            let id_ok = |id: &str| {
                !id.is_empty()
                    && !id.starts_with('.')
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            };
            if !id_ok(c.id.get_ref()) {
                return Err(cx.err(
                    Some(c.id.span()),
                    "client id must be letters, digits, '.', '_' or '-' (it names a secret file)",
                ));
            }
            if clients.iter().any(|o| o.id == *c.id.get_ref()) {
                return Err(cx.err(
                    Some(c.id.span()),
                    format!("duplicate client id {:?}", c.id.get_ref()),
                ));
            }
            if c.client_id.get_ref().is_empty() {
                return Err(cx.err(Some(c.client_id.span()), "client_id must not be empty"));
            }
            if clients
                .iter()
                .any(|o| o.client_id == *c.client_id.get_ref())
            {
                return Err(cx.err(
                    Some(c.client_id.span()),
                    format!("duplicate client_id {:?}", c.client_id.get_ref()),
                ));
            }
            if c.secret.get_ref().is_empty() {
                return Err(cx.err(Some(c.secret.span()), "secret must not be empty"));
            }
            if c.mids.get_ref().is_empty() {
                return Err(cx.err(
                    Some(c.mids.span()),
                    "mids needs at least one business unit MID (the first is the default)",
                ));
            }
            let mids = c
                .mids
                .get_ref()
                .iter()
                .map(|m| cx.mid(m))
                .collect::<Result<Vec<_>, _>>()?;
            let enterprise_id = match &c.enterprise_id {
                Some(m) => cx.mid(m)?,
                None => mids[0],
            };
            clients.push(ClientSpec {
                id: c.id.get_ref().clone(),
                client_id: c.client_id.get_ref().clone(),
                secret: c.secret.get_ref().clone(),
                scopes: c.scopes.clone(),
                mids,
                enterprise_id,
                owner: c.owner.clone(),
                latency: c.latency.map(|d| d.as_std()).unwrap_or_default(),
                secret_expires_in_days: c.secret_expires_in_days.unwrap_or(180),
                secret_valid: c.secret_valid.unwrap_or(true),
                fault: c.fault,
                rest_fault: c.rest_fault,
                retry_after: c.retry_after.unwrap_or(5),
                flaky_401: cx.probability(&c.flaky_401, "flaky_401")?,
                flaky_timeout: cx.probability(&c.flaky_timeout, "flaky_timeout")?,
            });
        }
        let known = |id: &str| clients.iter().any(|c| c.id == id);
        let client_list = || {
            clients
                .iter()
                .map(|c| c.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };

        let mut integrations: Vec<IntegrationSpec> = Vec::with_capacity(raw.integrations.len());
        for i in &raw.integrations {
            let name = i.name.get_ref();
            if name.trim().is_empty() {
                return Err(cx.err(Some(i.name.span()), "integration name must not be empty"));
            }
            if integrations.iter().any(|o| o.name == *name) {
                return Err(cx.err(
                    Some(i.name.span()),
                    format!("duplicate integration name {name:?}"),
                ));
            }
            if !known(i.client.get_ref()) {
                return Err(cx.err(
                    Some(i.client.span()),
                    format!(
                        "integration {name:?} uses unknown client {:?} (known: {})",
                        i.client.get_ref(),
                        client_list()
                    ),
                ));
            }
            integrations.push(IntegrationSpec {
                name: name.clone(),
                client: i.client.get_ref().clone(),
                account_id: i.account_id.clone(),
                scopes: i.scopes.clone(),
                check_path: i.check_path.clone(),
                business_unit: i.business_unit.clone(),
                team: i.team.clone(),
                environment: i.environment.clone(),
                processes: i.processes.clone(),
            });
        }

        let mut timeline = Vec::with_capacity(raw.timeline.len());
        for e in &raw.timeline {
            let ev = e.get_ref();
            if !known(ev.client.get_ref()) {
                return Err(cx.err(
                    Some(ev.client.span()),
                    format!(
                        "unknown client {:?} (known: {})",
                        ev.client.get_ref(),
                        client_list()
                    ),
                ));
            }
            let need = |what: &str| {
                cx.err(
                    Some(ev.action.span()),
                    format!("this action needs `{what} = ...` in the same [[timeline]] entry"),
                )
            };
            let action = match ev.action.get_ref() {
                RawAction::RevokeSecret => Action::RevokeSecret,
                RawAction::RestoreSecret => Action::RestoreSecret,
                RawAction::DropScope => {
                    Action::DropScope(ev.scope.clone().ok_or_else(|| need("scope"))?)
                }
                RawAction::AddScope => {
                    Action::AddScope(ev.scope.clone().ok_or_else(|| need("scope"))?)
                }
                RawAction::SetFault => Action::SetFault(ev.fault.ok_or_else(|| need("fault"))?),
                RawAction::ClearFault => Action::ClearFault,
                RawAction::SetLatency => {
                    Action::SetLatency(ev.latency.ok_or_else(|| need("latency"))?.as_std())
                }
            };
            timeline.push(TimelineEvent {
                at: ev.at.as_std(),
                client: ev.client.get_ref().clone(),
                action,
            });
        }
        timeline.sort_by_key(|e| e.at);

        Ok(Scenario {
            name,
            staging_delay: raw
                .sim
                .staging_delay
                .map(|d| d.as_std())
                .unwrap_or(Duration::from_secs(300)),
            expires_in,
            hang: raw
                .sim
                .hang
                .map(|d| d.as_std())
                .unwrap_or(Duration::from_secs(60)),
            seed: raw.sim.seed,
            base_url,
            unknown_mid: raw.sim.unknown_mid,
            token_context_status,
            authwatch: raw.authwatch,
            clients,
            integrations,
            timeline,
        })
    }

    /// The client with this scenario `id`.
    pub fn client(&self, id: &str) -> Option<&ClientSpec> {
        self.clients.iter().find(|c| c.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        let t = "a\nbé c\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 2), (2, 1));
        assert_eq!(line_col(t, 5), (2, 3));
    }

    #[test]
    fn demo_is_valid_and_debug_hides_secrets() {
        let s = Scenario::demo();
        assert!(s.clients.len() >= 6);
        let dbg = format!("{s:?}");
        for c in &s.clients {
            assert!(!dbg.contains(&c.secret), "secret of {} in Debug", c.id);
        }
    }
}
