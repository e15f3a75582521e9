//! The simulated tenant's mutable state: secrets (active + staged), issued tokens, recorded requests, timeline.

use super::SimError;
use super::scenario::{Action, ClientSpec, Scenario};
use chrono::{DateTime, Utc};
use rand::distr::{Alphanumeric, SampleString};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// One request the simulator answered (admin calls are not recorded).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordedRequest {
    pub at: DateTime<Utc>,
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Token requests: the client_id sent; REST calls: the client_id the bearer token was issued to.
    pub client_id: Option<String>,
    /// The status sent (a `timeout` hang is recorded as the 504 it ends with).
    pub status: u16,
}

/// How many requests `requests()` remembers.
pub const MAX_RECORDED: usize = 100_000;

pub struct Staged {
    pub secret: String,
    pub generated: Instant,
    pub accepted_after: DateTime<Utc>,
}

pub struct ClientState {
    pub spec: ClientSpec,
    /// The active secret is refused while false (revoke_secret / an expired secret).
    pub active_valid: bool,
    pub staged: Option<Staged>,
    pub last_generate: Option<Instant>,
    pub last_activate: Option<Instant>,
}

pub struct TokenInfo {
    pub client: usize,
    pub mid: u64,
    pub scopes: Vec<String>,
    pub expires: Instant,
}

pub struct State {
    pub scenario: Scenario,
    pub started: Instant,
    pub clients: Vec<ClientState>,
    pub tokens: HashMap<String, TokenInfo>,
    pub requests: VecDeque<RecordedRequest>,
    pub flaky_rng: StdRng,
    timeline_next: usize,
}

/// What the token endpoint should do for a known client after faults were considered.
pub enum Injected {
    None,
    RateLimited(u32),
    Unavailable(u32),
    MalformedJson,
    Hang,
    HugeBody,
    Flaky401,
    Blocked(u32),
    BareToken,
    InvalidClientId,
}

impl State {
    pub fn new(scenario: Scenario) -> State {
        let clients = scenario
            .clients
            .iter()
            .map(|c| ClientState {
                active_valid: c.secret_valid,
                spec: c.clone(),
                staged: None,
                last_generate: None,
                last_activate: None,
            })
            .collect();
        let flaky_rng = match scenario.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        State {
            scenario,
            started: Instant::now(),
            clients,
            tokens: HashMap::new(),
            requests: VecDeque::new(),
            flaky_rng,
            timeline_next: 0,
        }
    }

    /// Apply every timeline event whose time has come.
    pub fn tick(&mut self) {
        let elapsed = self.started.elapsed();
        while let Some(ev) = self.scenario.timeline.get(self.timeline_next) {
            if ev.at > elapsed {
                break;
            }
            let ev = ev.clone();
            self.timeline_next += 1;
            let Some(c) = self.clients.iter_mut().find(|c| c.spec.id == ev.client) else {
                continue;
            };
            tracing::info!(client = %ev.client, action = ?ev.action, "sim timeline event");
            match ev.action {
                Action::RevokeSecret => c.active_valid = false,
                Action::RestoreSecret => c.active_valid = true,
                Action::DropScope(s) => c.spec.scopes.retain(|x| *x != s),
                Action::AddScope(s) => {
                    if !c.spec.scopes.contains(&s) {
                        c.spec.scopes.push(s)
                    }
                }
                Action::SetFault(f) => c.spec.fault = f,
                Action::ClearFault => c.spec.fault = Default::default(),
                Action::SetLatency(d) => c.spec.latency = d,
            }
        }
    }

    pub fn client_by_client_id(&self, client_id: &str) -> Option<usize> {
        self.clients
            .iter()
            .position(|c| c.spec.client_id == client_id)
    }

    pub fn client_by_key(&self, key: &str) -> Result<usize, SimError> {
        self.clients
            .iter()
            .position(|c| c.spec.id == key)
            .ok_or_else(|| SimError::UnknownClient(key.to_string()))
    }

    /// Is `secret` accepted for this client right now (active, or staged and past the staging delay)?
    pub fn secret_ok(&self, idx: usize, secret: &str) -> bool {
        let c = &self.clients[idx];
        if c.active_valid && ct_eq(&c.spec.secret, secret) {
            return true;
        }
        match &c.staged {
            Some(s) => {
                ct_eq(&s.secret, secret) && s.generated.elapsed() >= self.scenario.staging_delay
            }
            None => false,
        }
    }

    /// Decide the fault/flakiness for one token request of this client.
    pub fn injected(&mut self, idx: usize) -> Injected {
        use super::scenario::Fault;
        let spec = &self.clients[idx].spec;
        let (fault, retry_after, p401, ptimeout) = (
            spec.fault,
            spec.retry_after,
            spec.flaky_401,
            spec.flaky_timeout,
        );
        match fault {
            Fault::None => {}
            Fault::RateLimited => return Injected::RateLimited(retry_after),
            Fault::ServerError => return Injected::Unavailable(retry_after),
            Fault::MalformedJson => return Injected::MalformedJson,
            Fault::Timeout => return Injected::Hang,
            Fault::HugeBody => return Injected::HugeBody,
            Fault::Blocked => return Injected::Blocked(retry_after),
            Fault::BareToken => return Injected::BareToken,
            Fault::InvalidClientId => return Injected::InvalidClientId,
        }
        // Always draw both numbers so one probability does not shift the other's sequence.
        let a: f64 = self.flaky_rng.random();
        let b: f64 = self.flaky_rng.random();
        if a < p401 {
            Injected::Flaky401
        } else if b < ptimeout {
            Injected::Hang
        } else {
            Injected::None
        }
    }

    /// Issue a token for the granted scopes (requested ∩ package; None = all) and MID (default if not the client's).
    pub fn issue(
        &mut self,
        idx: usize,
        requested: Option<&str>,
        account_id: Option<u64>,
    ) -> (String, Vec<String>) {
        let spec = &self.clients[idx].spec;
        let scopes: Vec<String> = match requested {
            None => spec.scopes.clone(),
            Some(req) => {
                let mut out = Vec::new();
                for s in req.split_whitespace() {
                    if spec.scopes.iter().any(|x| x == s) && !out.iter().any(|x| x == s) {
                        out.push(s.to_string());
                    }
                }
                out
            }
        };
        let mid = match account_id {
            Some(m) if spec.mids.contains(&m) => m,
            _ => spec.mids[0],
        };
        let token = new_token();
        let expires = Instant::now() + Duration::from_secs(self.scenario.expires_in);
        // Drop expired tokens now and then so a long-running demo does not grow without bound.
        if self.tokens.len() > 10_000 {
            let now = Instant::now();
            self.tokens.retain(|_, t| t.expires > now);
        }
        self.tokens.insert(
            token.clone(),
            TokenInfo {
                client: idx,
                mid,
                scopes: scopes.clone(),
                expires,
            },
        );
        (token, scopes)
    }

    /// The token and whether it has expired (SOAP tells "Token Expired" from "Login failed").
    pub fn token_even_expired(&self, token: &str) -> Option<(&TokenInfo, bool)> {
        self.tokens
            .get(token)
            .map(|t| (t, t.expires <= Instant::now()))
    }

    /// The live token, if `token` is one.
    pub fn token(&self, token: &str) -> Option<&TokenInfo> {
        self.tokens
            .get(token)
            .filter(|t| t.expires > Instant::now())
    }

    pub fn record(&mut self, r: RecordedRequest) {
        if self.requests.len() >= MAX_RECORDED {
            self.requests.pop_front();
        }
        self.requests.push_back(r);
    }

    /// Setup "generate": a new staged secret, replacing an unactivated one.
    pub fn generate(&mut self, key: &str) -> Result<(String, DateTime<Utc>), SimError> {
        let idx = self.client_by_key(key)?;
        let delay = self.scenario.staging_delay;
        let c = &mut self.clients[idx];
        if let Some(last) = c.last_generate
            && last.elapsed() < delay
        {
            return Err(SimError::Conflict(format!(
                "a secret for {key:?} was generated {}s ago; at most one generation per {}",
                last.elapsed().as_secs(),
                crate::duration::format_duration(delay)
            )));
        }
        let secret = new_secret();
        let now = Instant::now();
        let accepted_after = Utc::now() + crate::duration::to_chrono(delay);
        c.staged = Some(Staged {
            secret: secret.clone(),
            generated: now,
            accepted_after,
        });
        c.last_generate = Some(now);
        tracing::info!(client = key, "sim: staged a new client secret");
        Ok((secret, accepted_after))
    }

    /// Setup "activate": the staged secret becomes the only valid one.
    pub fn activate(&mut self, key: &str) -> Result<(), SimError> {
        let idx = self.client_by_key(key)?;
        let delay = self.scenario.staging_delay;
        let c = &mut self.clients[idx];
        let Some(staged) = &c.staged else {
            return Err(SimError::Conflict(format!(
                "{key:?} has no staged secret to activate; generate one first"
            )));
        };
        if staged.generated.elapsed() < delay {
            return Err(SimError::Conflict(format!(
                "the staged secret of {key:?} is not accepted before {}; activate after that",
                staged.accepted_after.to_rfc3339()
            )));
        }
        if let Some(last) = c.last_activate
            && last.elapsed() < delay
        {
            return Err(SimError::Conflict(format!(
                "a secret for {key:?} was activated {}s ago; at most one activation per {}",
                last.elapsed().as_secs(),
                crate::duration::format_duration(delay)
            )));
        }
        let staged = c.staged.take().expect("checked above");
        c.spec.secret = staged.secret;
        c.active_valid = true;
        c.last_activate = Some(Instant::now());
        tracing::info!(client = key, "sim: activated the staged client secret");
        Ok(())
    }
}

fn new_token() -> String {
    // Opaque, JWT-looking, well under the documented 512-character maximum.
    format!("eyJ{}", Alphanumeric.sample_string(&mut rand::rng(), 200))
}

fn new_secret() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 24)
}

/// Comparison that does not stop at the first differing byte.
fn ct_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
