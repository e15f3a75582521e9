//! The shared vocabulary every layer uses: statuses, probe outcomes, health verdicts, acks, incidents, auth
//! events. Plain data, no I/O.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Health of an integration or credential. Ordered by severity so sorting "worst first" is `sort_by(|a, b| b.cmp(a))`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    #[default]
    Unknown,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Unknown => "unknown",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
    /// The word shown on screen: status is never colour alone.
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Unknown => "UNKNOWN",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
    /// Nagios-style exit code used by `authwatch check`.
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Ok => 0,
            Status::Warn => 1,
            Status::Fail => 2,
            Status::Unknown => 3,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The closed set of things a probe can find out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    /// The token request was refused (invalid_client, unsupported_grant_type, ...).
    AuthRejected,
    /// The representative call refused a fresh token (401).
    TokenRejected,
    /// 403: insufficient privileges, or a token for another tenant (40002).
    Forbidden,
    /// The token was granted without every required scope.
    ScopeMissing,
    /// The token is for another business unit than the configured account_id.
    WrongAccount,
    /// 404: wrong tenant subdomain or wrong check path.
    NotFound,
    /// 429, with Retry-After.
    RateLimited,
    /// 5xx.
    ServerError,
    Timeout,
    /// DNS, connect, TLS.
    Network,
    /// Malformed or oversized body, missing fields.
    BadResponse,
}

impl Outcome {
    pub const ALL: [Outcome; 12] = [
        Outcome::Ok,
        Outcome::AuthRejected,
        Outcome::TokenRejected,
        Outcome::Forbidden,
        Outcome::ScopeMissing,
        Outcome::WrongAccount,
        Outcome::NotFound,
        Outcome::RateLimited,
        Outcome::ServerError,
        Outcome::Timeout,
        Outcome::Network,
        Outcome::BadResponse,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::AuthRejected => "auth_rejected",
            Outcome::TokenRejected => "token_rejected",
            Outcome::Forbidden => "forbidden",
            Outcome::ScopeMissing => "scope_missing",
            Outcome::WrongAccount => "wrong_account",
            Outcome::NotFound => "not_found",
            Outcome::RateLimited => "rate_limited",
            Outcome::ServerError => "server_error",
            Outcome::Timeout => "timeout",
            Outcome::Network => "network",
            Outcome::BadResponse => "bad_response",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// Auth-class outcomes say the credential or its grants are wrong; the others only say we could not verify.
    pub fn is_auth_failure(self) -> bool {
        matches!(
            self,
            Outcome::AuthRejected
                | Outcome::TokenRejected
                | Outcome::Forbidden
                | Outcome::ScopeMissing
                | Outcome::WrongAccount
        )
    }

    pub fn is_ok(self) -> bool {
        self == Outcome::Ok
    }

    /// What an operator should do about it: shown in the detail view and the check output.
    pub fn runbook(self) -> &'static str {
        match self {
            Outcome::Ok => "Nothing to do: the credential authenticates and the call works.",
            Outcome::AuthRejected => {
                "401 invalid_client: the client secret is wrong or expired, or the package was uninstalled or disabled. Check Setup > Installed Packages and rotate the secret."
            }
            Outcome::TokenRejected => {
                "A fresh token was refused by the REST call: check the tenant (rest_instance_url) and whether the package is still enabled."
            }
            Outcome::Forbidden => {
                "403: the installed package lacks a permission for this call, or the token is for another tenant/stack. Edit the package's API Integration scopes."
            }
            Outcome::ScopeMissing => {
                "A required scope was not granted: add it to the installed package's API Integration component (changes take up to 5 minutes)."
            }
            Outcome::WrongAccount => {
                "The token is for another business unit: check account_id (MID) and that the package has access to that business unit."
            }
            Outcome::NotFound => {
                "404: check the tenant subdomain in auth_url (28 characters, starts with mc) and the check_path."
            }
            Outcome::RateLimited => {
                "429: SFMC is throttling token or API requests. authwatch backs off and honours Retry-After; look for other consumers requesting tokens too often."
            }
            Outcome::ServerError => {
                "5xx: SFMC is unavailable or degraded. Check status.salesforce.com; authwatch retries with backoff."
            }
            Outcome::Timeout => {
                "No answer within the timeout: check network paths and proxies, and SFMC status."
            }
            Outcome::Network => {
                "Could not connect (DNS, TCP or TLS): check the subdomain, proxy settings (HTTPS_PROXY/NO_PROXY) and ca_file."
            }
            Outcome::BadResponse => {
                "The response was malformed or too large: a proxy or captive portal may be answering instead of SFMC."
            }
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which phase of a probe an outcome belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Token,
    Call,
}

/// Everything one probe found out. Never holds a secret or a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub at: DateTime<Utc>,
    pub outcome: Outcome,
    /// The phase that decided the outcome.
    pub phase: Phase,
    pub http_status: Option<u16>,
    /// Short machine-ish error: `invalid_client`, `40002`, `Insufficient privileges to complete this action.`
    pub error: Option<String>,
    /// Longer human detail (error_description, transport error chain).
    pub detail: Option<String>,
    pub token_ms: Option<u64>,
    pub call_ms: Option<u64>,
    /// A new token was requested for this probe (not served from the cache).
    pub fresh_token: bool,
    /// Scopes in the token response, when one was granted.
    pub granted_scopes: Option<Vec<String>>,
    pub missing_scopes: Vec<String>,
    /// organization.id from tokenContext, when the call returned it.
    pub mid: Option<String>,
    pub retry_after_secs: Option<u64>,
    /// When the token this probe used stops being reused (the next probe after it requests a new token, which
    /// checks the client secret again). None when no token was granted. Not stored: a restart starts without
    /// cached tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_reused_until: Option<DateTime<Utc>>,
}

impl ProbeResult {
    pub fn new(at: DateTime<Utc>, outcome: Outcome, phase: Phase) -> Self {
        Self {
            at,
            outcome,
            phase,
            http_status: None,
            error: None,
            detail: None,
            token_ms: None,
            call_ms: None,
            fresh_token: false,
            granted_scopes: None,
            missing_scopes: Vec::new(),
            mid: None,
            retry_after_secs: None,
            token_reused_until: None,
        }
    }

    /// This probe requested a new token and was granted one: it verified the client secret itself.
    pub fn verified_secret(&self) -> bool {
        self.fresh_token && (self.phase == Phase::Call || self.token_reused_until.is_some())
    }

    /// Total latency of the phases that ran.
    pub fn latency_ms(&self) -> Option<u64> {
        match (self.token_ms, self.call_ms) {
            (None, None) => None,
            (t, c) => Some(t.unwrap_or(0) + c.unwrap_or(0)),
        }
    }

    /// One line for tables: "token request rejected: invalid_client (401)".
    /// " (403)" or " (403, errorcode 20002)": the status with SFMC's error code when there is one.
    fn status_and_detail(&self) -> String {
        let Some(status) = self.http_status else {
            return String::new();
        };
        let code = self.detail.as_deref().and_then(|d| {
            d.strip_prefix("errorcode ").or_else(|| {
                d.rsplit_once(" (errorcode ")
                    .map(|(_, c)| c.trim_end_matches(')'))
            })
        });
        match code {
            Some(c) => format!(" ({status}, errorcode {c})"),
            None => format!(" ({status})"),
        }
    }

    /// What the server said beyond its codes (OAuth `error_description`); None for transport failures, whose
    /// short error already names the cause.
    pub fn description(&self) -> Option<&str> {
        self.http_status?;
        let d = self.detail.as_deref()?;
        if d.starts_with("errorcode ") {
            return None;
        }
        Some(d.rsplit_once(" (errorcode ").map_or(d, |(text, _)| text))
    }

    /// The one-line summary followed by the server's own words, for reasons and reports.
    pub fn explained(&self) -> String {
        match self.description() {
            Some(d) => format!("{}. {d}", self.summary()),
            None => self.summary(),
        }
    }

    pub fn summary(&self) -> String {
        let status = self.status_and_detail();
        let err = self.error.as_deref().unwrap_or("");
        match self.outcome {
            Outcome::Ok => "ok".to_string(),
            Outcome::AuthRejected => format!("token request rejected: {err}{status}"),
            Outcome::TokenRejected => format!("call refused a fresh token: {err}{status}"),
            Outcome::Forbidden => format!("forbidden: {err}{status}"),
            Outcome::ScopeMissing => {
                let names = self.missing_scopes.join(", ");
                if self.missing_scopes.len() == 1 {
                    format!("scope {names} missing")
                } else {
                    format!("scopes {names} missing")
                }
            }
            Outcome::WrongAccount => format!(
                "token is for MID {}, not the configured account",
                self.mid.as_deref().unwrap_or("?")
            ),
            Outcome::NotFound => format!("not found{status}: check subdomain or path"),
            Outcome::RateLimited => match self.retry_after_secs {
                Some(s) => format!("rate limited{status}, retry after {s}s{}", capped(s)),
                None => format!("rate limited{status}"),
            },
            Outcome::ServerError => match self.retry_after_secs.filter(|s| *s >= MAX_WAIT_SECS) {
                Some(s) => format!("server error{status}: {err}, retry after {s}s{}", capped(s)),
                None => format!("server error{status}: {err}"),
            },
            Outcome::Timeout => "timed out".to_string(),
            Outcome::Network => format!("network error: {err}"),
            // "redirect (301) to other.example: not followed" names its status itself.
            Outcome::BadResponse if self.http_status.is_some_and(|s| (300..400).contains(&s)) => {
                err.to_string()
            }
            Outcome::BadResponse => format!("bad response{status}: {err}"),
        }
    }
}

/// The longest Retry-After authwatch honours (see `probe::classify::MAX_RETRY_AFTER`).
pub const MAX_WAIT_SECS: u64 = 24 * 3600;

/// Names the clamp when an endpoint's wait reached it (longer asks are clamped to it).
fn capped(secs: u64) -> &'static str {
    if secs >= MAX_WAIT_SECS {
        " (capped at 24h)"
    } else {
        ""
    }
}

/// A 401/403 seen by authwatch's probes or in an integration's own logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthEvent {
    pub at: DateTime<Utc>,
    /// None when a log line could not be matched to an integration.
    pub integration: Option<String>,
    pub http_status: u16,
    pub error: String,
    /// "probe" or the name of the log source.
    pub source: String,
    /// Where it was seen and what the line itself said (the event view shows it).
    #[serde(default, skip_serializing_if = "EventOrigin::is_empty")]
    pub origin: EventOrigin,
}

/// What a 401/403 event says about where it came from: the log file and line, and the client id, MID and URL host
/// as written in the line (for probes: the ones the probe used). All sanitized where they entered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventOrigin {
    /// `path line N` (or `path line N after byte B` when the follower started mid-file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_host: Option<String>,
}

impl EventOrigin {
    pub fn is_empty(&self) -> bool {
        *self == EventOrigin::default()
    }
}

pub const PROBE_SOURCE: &str = "probe";

/// 401 and 403 counts; JSON `{"401": n, "403": m}` as `scan` and `report` print them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    #[serde(rename = "401")]
    pub unauthorized: u64,
    #[serde(rename = "403")]
    pub forbidden: u64,
}

impl StatusCounts {
    /// Count one event (any status other than 401 counts as 403: callers only pass the two).
    pub fn add(&mut self, status: u16) {
        self.add_n(status, 1);
    }

    pub fn add_n(&mut self, status: u16, n: u64) {
        if status == 401 {
            self.unauthorized += n;
        } else {
            self.forbidden += n;
        }
    }

    pub fn total(&self) -> u64 {
        self.unauthorized + self.forbidden
    }
}

/// Health verdict with the reasons in words, worst first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Health {
    pub status: Status,
    pub reasons: Vec<String>,
}

impl Health {
    /// The reason shown in one-line tables.
    pub fn short_reason(&self) -> &str {
        self.reasons.first().map(String::as_str).unwrap_or("")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub at: DateTime<Utc>,
    /// OS user (console) or token name (agent).
    pub actor: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
/// A stretch of time an integration was not OK.
pub struct Incident {
    pub started: DateTime<Utc>,
    /// None: still open.
    pub ended: Option<DateTime<Utc>>,
    pub worst: Status,
    pub reason: String,
}

impl Incident {
    pub fn duration(&self, now: DateTime<Utc>) -> chrono::Duration {
        self.ended.unwrap_or(now) - self.started
    }
}

/// An integration's recent results, newest last, shared by the engine and every snapshot that shows them.
/// Equal when it is the same allocation, else when the results are: an unchanged history compares by pointer
/// (std's `Arc` compares the contents), which keeps the minute's re-evaluation of 10,000 views cheap.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct History(std::sync::Arc<[ProbeResult]>);

impl History {
    /// The same allocation (not only equal results).
    pub fn shares(&self, other: &History) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl PartialEq for History {
    fn eq(&self, other: &Self) -> bool {
        self.shares(other) || self.0 == other.0
    }
}

impl Eq for History {}

impl std::ops::Deref for History {
    type Target = [ProbeResult];
    fn deref(&self) -> &[ProbeResult] {
        &self.0
    }
}

impl From<Vec<ProbeResult>> for History {
    fn from(results: Vec<ProbeResult>) -> Self {
        History(results.into())
    }
}

impl FromIterator<ProbeResult> for History {
    fn from_iter<I: IntoIterator<Item = ProbeResult>>(iter: I) -> Self {
        History(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_status_sorts_last() {
        let mut v = vec![Status::Fail, Status::Ok, Status::Warn, Status::Unknown];
        v.sort();
        assert_eq!(v, [Status::Ok, Status::Unknown, Status::Warn, Status::Fail]);
    }

    #[test]
    fn outcome_names_round_trip() {
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
            let json = serde_json::to_string(&o).unwrap();
            assert_eq!(json, format!("\"{}\"", o.as_str()));
        }
    }

    #[test]
    fn exactly_the_auth_class_outcomes_count_as_auth_failures() {
        let auth: Vec<_> = Outcome::ALL
            .into_iter()
            .filter(|o| o.is_auth_failure())
            .collect();
        assert_eq!(
            auth,
            [
                Outcome::AuthRejected,
                Outcome::TokenRejected,
                Outcome::Forbidden,
                Outcome::ScopeMissing,
                Outcome::WrongAccount
            ]
        );
    }
}
