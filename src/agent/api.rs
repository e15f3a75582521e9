//! The HTTP API (axum): state, live events, actions, ingest, metrics, health.

use super::auth::{Caller, Denied, Tokens};
use super::stream::Hub;
use crate::config::{Config, Role};
use crate::config::{LogFormat, LogSourceConfig};
use crate::engine::{Command, EngineHandle};
use crate::ingest::{self, Line, LineParser, Matcher};
use crate::metrics::Metrics;
use crate::report::StateReport;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

/// Largest accepted ingest body.
pub const MAX_INGEST_BYTES: usize = 8 * 1024 * 1024;
/// How long an SSE viewer may fall behind (its buffer full) before it is dropped.
const SLOW_VIEWER: Duration = Duration::from_secs(10);
/// Ingest bodies read at the same time.
static INGEST_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);
/// Longest a request may take until its answer starts (live streams then go on; the idle timeout bounds them).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What a reload replaces: read by every request.
pub struct Current {
    pub config: Arc<Config>,
    pub tokens: Arc<Tokens>,
    pub matcher: Arc<Matcher>,
}

#[derive(Clone)]
pub struct AppState {
    pub engine: EngineHandle,
    pub current: Arc<RwLock<Current>>,
    pub metrics: Arc<Metrics>,
    pub hub: Arc<Hub>,
    /// Turns true when the agent stops: live streams end so the server can finish.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// When this agent's engine started (sweeps are counted from here).
    pub started_at: chrono::DateTime<Utc>,
    /// A history database is configured.
    pub db_configured: bool,
    /// A secret may be sent to this agent: it speaks TLS or listens on loopback only (`stage` needs it).
    pub secrets_safe: bool,
}

impl AppState {
    #[allow(clippy::result_large_err)] // the refusal is the response itself
    fn authorize(&self, headers: &HeaderMap, need: Role) -> Result<Caller, Response> {
        let tokens = self
            .current
            .read()
            .expect("agent state lock")
            .tokens
            .clone();
        tokens
            .authorize(
                headers
                    .get(header::AUTHORIZATION)
                    .map(HeaderValue::as_bytes),
                need,
            )
            .map_err(|d| denied(d, need))
    }
}

fn denied(d: Denied, need: Role) -> Response {
    match d {
        Denied::Unauthenticated => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"authwatch\"")],
            Json(ErrorBody {
                error: "a bearer token is required: Authorization: Bearer <token>".into(),
            }),
        )
            .into_response(),
        Denied::Forbidden => (
            StatusCode::FORBIDDEN,
            Json(ErrorBody {
                error: format!(
                    "this token may only read; {} needs a token with role \"{}\"",
                    "this action",
                    need.as_str()
                ),
            }),
        )
            .into_response(),
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(ErrorBody { error: msg.into() })).into_response()
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/v1/status.txt", get(status_text))
        .route("/metrics", get(metrics))
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/state", get(state_report))
        .route("/api/v1/snapshot", get(snapshot))
        .route("/api/v1/events", get(events))
        .route("/api/v1/probe", post(probe_all))
        .route("/api/v1/probe/{integration}", post(probe_one))
        .route("/api/v1/ack/{integration}", post(ack).delete(unack))
        .route("/api/v1/ingest", post(ingest))
        .route(
            "/api/v1/rotations/{credential}",
            get(rotation_get).post(rotation_post),
        )
        // No route but ingest reads a body (and it reads its own, after the token).
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn(whole_request_timeout))
        .with_state(state)
}

async fn whole_request_timeout(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(r) => r,
        Err(_) => error(StatusCode::REQUEST_TIMEOUT, "request took too long"),
    }
}

impl AppState {
    /// Readiness now (see [`super::readiness`]).
    pub fn readiness(&self) -> super::readiness::Readiness {
        let snap = self.engine.snapshot();
        let probe_interval = self
            .current
            .read()
            .expect("agent state lock")
            .config
            .settings
            .probe_interval;
        super::readiness::evaluate(
            &super::readiness::Inputs {
                snapshot: &snap,
                started_at: self.started_at,
                probe_interval,
                engine_running: self.engine.is_running(),
                db_configured: self.db_configured,
            },
            Utc::now(),
        )
    }
}

/// Liveness: 503 when the engine stopped or its sweeps went stale (a restart is the fix).
async fn healthz(State(s): State<AppState>) -> Response {
    let snap = s.engine.snapshot();
    let r = s.readiness();
    let body = serde_json::json!({
        "status": if r.live { "ok" } else { "unhealthy" },
        "integrations": snap.integrations.len(),
        "version": snap.version,
        "history_error": snap.history_error,
        "checks": r.checks.iter().filter(|c| c.name == "engine" || c.name == "sweep").collect::<Vec<_>>(),
    });
    let code = if r.live {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// Readiness for orchestrators and load balancers: config, database, engine, a recent sweep.
async fn readyz(State(s): State<AppState>) -> Response {
    let r = s.readiness();
    let code = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(r)).into_response()
}

/// For `curl`: one line per non-OK integration and a summary line.
async fn status_text(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = s.authorize(&headers, Role::Viewer) {
        return r;
    }
    let snap = s.engine.snapshot();
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        crate::nagios::status_text(&snap),
    )
        .into_response()
}

async fn metrics(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = s.authorize(&headers, Role::Viewer) {
        return r;
    }
    let snap = s.engine.snapshot();
    let metrics = s.metrics.clone();
    let text = tokio::task::spawn_blocking(move || metrics.render(&snap))
        .await
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

#[derive(Serialize, Deserialize, Debug)]
pub struct WhoAmI {
    pub name: String,
    pub role: Role,
}

async fn whoami(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match s.authorize(&headers, Role::Viewer) {
        Ok(c) => Json(WhoAmI {
            name: c.name,
            role: c.role,
        })
        .into_response(),
        Err(r) => r,
    }
}

/// `check --format json`'s vocabulary, plus the acknowledgement and pause of each integration.
#[derive(Serialize)]
struct StateBody {
    #[serde(flatten)]
    report: StateReport,
    version: u64,
    config_name: String,
    acknowledged: Vec<AckBody>,
    /// Each credential's rotation (state, steps, checks, lease): read-only progress for every role.
    rotations: Arc<Vec<crate::rotation::session::RotationView>>,
}

#[derive(Serialize)]
struct AckBody {
    integration: String,
    actor: String,
    at: chrono::DateTime<Utc>,
}

async fn state_report(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = s.authorize(&headers, Role::Viewer) {
        return r;
    }
    let snap = s.engine.snapshot();
    Json(StateBody {
        report: StateReport::from_snapshot(&snap),
        version: snap.version,
        config_name: snap.config_name.clone(),
        acknowledged: snap
            .integrations
            .iter()
            .filter_map(|i| {
                i.acked.as_ref().map(|a| AckBody {
                    integration: i.name.clone(),
                    actor: a.actor.clone(),
                    at: a.at,
                })
            })
            .collect(),
        rotations: snap.rotations.clone(),
    })
    .into_response()
}

async fn snapshot(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = s.authorize(&headers, Role::Viewer) {
        return r;
    }
    Json(&*s.engine.snapshot()).into_response()
}

#[derive(Deserialize, Default)]
struct EventsQuery {
    /// Also stream probe_started / probe_finished (two per probe: heavy with many integrations).
    #[serde(default)]
    probes: bool,
}

async fn events(
    State(s): State<AppState>,
    Query(q): Query<EventsQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = s.authorize(&headers, Role::Viewer) {
        return r;
    }
    let (tx, mut rx) = mpsc::channel::<Event>(4);
    let hub = s.hub.clone();
    let mut engine_events = if q.probes {
        s.engine.events()
    } else {
        s.engine.changes()
    };
    let mut stop = s.shutdown.clone();
    tokio::spawn(async move {
        let (mut have, full, mut deltas) = hub.join();
        if tx
            .send(Event::default().event("snapshot").data(&*full))
            .await
            .is_err()
        {
            return;
        }
        loop {
            let ev = tokio::select! {
                d = deltas.recv() => match d {
                    Ok(d) if d.version <= have => continue,
                    Ok(d) if d.base == have => {
                        have = d.version;
                        Event::default().event("delta").data(&*d.json)
                    }
                    // Out of step (a gap or lagging behind): start over from a whole snapshot.
                    Ok(_) | Err(RecvError::Lagged(_)) => {
                        let (v, full, rx) = hub.join();
                        have = v;
                        deltas = rx;
                        Event::default().event("snapshot").data(&*full)
                    }
                    Err(RecvError::Closed) => break,
                },
                e = engine_events.recv() => match e {
                    Ok(e) => match serde_json::to_string(&e) {
                        Ok(json) => Event::default().event("engine").data(json),
                        Err(_) => continue,
                    },
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => break,
                },
                _ = tx.closed() => break,
                _ = stop.wait_for(|v| *v) => break,
            };
            // A viewer that stopped reading is dropped (its buffered events freed), not waited for.
            if tx.send_timeout(ev, SLOW_VIEWER).await.is_err() {
                break;
            }
        }
    });
    let stream = futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|o| o.map(Ok::<Event, Infallible>))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

#[derive(Serialize, Deserialize, Debug)]
pub struct Accepted {
    pub accepted: bool,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration: Option<String>,
    pub by: String,
}

async fn act(s: &AppState, cmd: Command, caller: Caller, action: &str) -> Response {
    let integration = match &cmd {
        Command::ProbeNow { integration }
        | Command::Ack { integration, .. }
        | Command::Unack { integration, .. } => Some(integration.clone()),
        _ => None,
    };
    tracing::info!(
        "{action} {} requested by {}",
        integration.as_deref().unwrap_or("all"),
        caller.name
    );
    match s.engine.send(cmd).await {
        Ok(()) => (
            StatusCode::ACCEPTED,
            Json(Accepted {
                accepted: true,
                action: action.into(),
                integration,
                by: caller.name,
            }),
        )
            .into_response(),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "the engine has stopped"),
    }
}

/// An operator acting on an integration this agent watches.
#[allow(clippy::result_large_err)] // the refusal is the response itself
fn operator_on(s: &AppState, headers: &HeaderMap, integration: &str) -> Result<Caller, Response> {
    let caller = s.authorize(headers, Role::Operator)?;
    known(s, integration)?;
    Ok(caller)
}

#[allow(clippy::result_large_err)]
fn known(s: &AppState, name: &str) -> Result<(), Response> {
    if s.engine.snapshot().integration(name).is_some() {
        Ok(())
    } else {
        Err(error(
            StatusCode::NOT_FOUND,
            format!("no integration named {name:?}"),
        ))
    }
}

async fn probe_all(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match s.authorize(&headers, Role::Operator) {
        Ok(c) => act(&s, Command::ProbeAll, c, "probe").await,
        Err(r) => r,
    }
}

async fn probe_one(
    State(s): State<AppState>,
    Path(integration): Path<String>,
    headers: HeaderMap,
) -> Response {
    let caller = match operator_on(&s, &headers, &integration) {
        Ok(c) => c,
        Err(r) => return r,
    };
    act(&s, Command::ProbeNow { integration }, caller, "probe").await
}

async fn ack(s: State<AppState>, integration: Path<String>, headers: HeaderMap) -> Response {
    acknowledgement(s, integration, headers, true).await
}

async fn unack(s: State<AppState>, integration: Path<String>, headers: HeaderMap) -> Response {
    acknowledgement(s, integration, headers, false).await
}

/// Acknowledge (POST) or take the acknowledgement back (DELETE); the token name is the actor.
async fn acknowledgement(
    State(s): State<AppState>,
    Path(integration): Path<String>,
    headers: HeaderMap,
    acknowledge: bool,
) -> Response {
    let caller = match operator_on(&s, &headers, &integration) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let actor = caller.name.clone();
    if acknowledge {
        act(&s, Command::Ack { integration, actor }, caller, "ack").await
    } else {
        act(&s, Command::Unack { integration, actor }, caller, "unack").await
    }
}

#[derive(Deserialize)]
struct IngestQuery {
    /// Shown as the event's source (default "api").
    source: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Default, PartialEq, Eq)]
pub struct IngestResult {
    /// 401/403 lines turned into events.
    pub events: usize,
    /// Of those, the ones no integration matched.
    pub unmatched: usize,
    /// Lines with another status.
    pub other: usize,
    pub malformed: usize,
}

/// JSON lines of API responses (`status`, `time`, `integration` / `client_id` / `account_id` / `url`, `error`),
/// the same fields a jsonl `[[log_source]]` reads by default.
async fn ingest(
    State(s): State<AppState>,
    Query(q): Query<IngestQuery>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    // The token first: an unauthenticated body is never read.
    if let Err(r) = s.authorize(&headers, Role::Operator) {
        return r;
    }
    // A few bodies at a time, each capped: memory stays bounded whatever operators send at once.
    let Ok(_slot) = INGEST_SLOTS.try_acquire() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            Json(ErrorBody {
                error: "too many ingest requests at once".into(),
            }),
        )
            .into_response();
    };
    let body = match axum::body::to_bytes(body, MAX_INGEST_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "ingest body larger than {} MiB, or broken off",
                    MAX_INGEST_BYTES >> 20
                ),
            );
        }
    };
    let source = q
        .source
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.chars().take(64).collect::<String>())
        .unwrap_or_else(|| "api".to_string());
    let matcher = s.current.read().expect("agent state lock").matcher.clone();
    let parser = LineParser::new(&LogSourceConfig::new(source.clone(), "", LogFormat::Jsonl));
    let now = Utc::now();
    let mut result = IngestResult::default();
    let mut events = Vec::new();
    for line in body.split(|b| *b == b'\n') {
        if line.trim_ascii().is_empty() {
            continue;
        }
        match parser.parse(line) {
            Line::Event(ev) => {
                let e = ingest::auth_event(&ev, &matcher, &source, now);
                if e.integration.is_none() {
                    result.unmatched += 1;
                }
                events.push(e);
            }
            Line::OtherStatus => result.other += 1,
            Line::Malformed => result.malformed += 1,
        }
    }
    result.events = events.len();
    if !events.is_empty() && s.engine.send(Command::Ingest { events }).await.is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the engine has stopped");
    }
    (StatusCode::ACCEPTED, Json(result)).into_response()
}

// ── Rotation (operator role): the engine's rotation driver, as the console's wizard and the CLI use it ──

/// The credential is configured here; else the 404 to answer.
#[allow(clippy::result_large_err)] // the refusal is the response itself
fn known_credential(s: &AppState, credential: &str) -> Result<(), Response> {
    let config = s.current.read().expect("agent state lock").config.clone();
    if config.credential(credential).is_some() {
        return Ok(());
    }
    let ids = config.credentials.iter().map(|c| c.id.as_str());
    let hint = crate::suggest::nearest(credential, ids)
        .map(|n| format!(": did you mean `{n}`?"))
        .unwrap_or_default();
    Err(error(
        StatusCode::NOT_FOUND,
        format!(
            "no credential `{}` here{hint}",
            crate::sanitize::text(credential)
        ),
    ))
}

/// `GET /api/v1/rotations/{credential}`: state, steps done, the last step's checks, who holds the lease.
async fn rotation_get(
    State(s): State<AppState>,
    Path(credential): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = s.authorize(&headers, Role::Operator) {
        return r;
    }
    if let Err(r) = known_credential(&s, &credential) {
        return r;
    }
    if !s.db_configured {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "rotation is not available on this agent (it needs the history database: --db)",
        );
    }
    // Right after start the rotation driver is still reading the store (and reconciling): wait for it.
    let mut snapshots = s.engine.watch();
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let snap = snapshots.borrow_and_update().clone();
            if let Some(v) = snap.rotation(&credential) {
                return Some(v.clone());
            }
            if snapshots.changed().await.is_err() {
                return None;
            }
        }
    })
    .await;
    match found {
        Ok(Some(v)) => Json(v).into_response(),
        _ => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the rotation state is not available yet: try again",
        ),
    }
}

/// A secret in a request body: straight into a [`SecretString`], never shown (Debug redacts it).
struct SecretField(SecretString);

impl<'de> Deserialize<'de> for SecretField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = zeroize::Zeroizing::new(String::deserialize(d)?);
        Ok(SecretField(SecretString::from(text.as_str())))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepBody {
    step: String,
    /// stage only: the new secret.
    secret: Option<SecretField>,
    /// activate only: the credential's id, typed by someone who activated the new secret in Setup.
    confirm: Option<String>,
    /// promote only: the consumers of a manual sink were updated by hand.
    #[serde(default)]
    confirm_manual: bool,
    /// A console's wizard: its session holds the credential's lease from `open` to `close`.
    session: Option<u64>,
    /// "console" when a `--connect` console's wizard sends the step (audited as such); default "api".
    origin: Option<crate::rotation::session::Origin>,
}

/// `POST /api/v1/rotations/{credential}` with `{"step": "stage"|"verify"|"promote"|"activate"|"abort", ...}`.
async fn rotation_post(
    State(s): State<AppState>,
    Path(credential): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    use crate::rotation::session::{Actor, Origin, WizardCmd};
    let caller = match s.authorize(&headers, Role::Operator) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(r) = known_credential(&s, &credential) {
        return r;
    }
    // Parse errors say where, never what: the body may hold a secret.
    let b: StepBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "bad body ({:?} error at line {} column {}): expected {{\"step\": \"stage\"|\"verify\"|\"promote\"|\"activate\"|\"abort\", \"secret\": \"...\" (stage only), \"confirm\": \"<credential id>\" (activate only)}}",
                    e.classify(),
                    e.line(),
                    e.column()
                ),
            );
        }
    };
    if b.secret.is_some() && b.step != "stage" {
        return error(
            StatusCode::BAD_REQUEST,
            "only stage takes a secret: it was not used",
        );
    }
    let cmd = match b.step.as_str() {
        "stage" => {
            let Some(SecretField(secret)) = b.secret else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "stage needs the new secret: {\"step\": \"stage\", \"secret\": \"...\"}",
                );
            };
            if !s.secrets_safe {
                return error(
                    StatusCode::FORBIDDEN,
                    "refused: stage sends a secret, and this agent speaks plain http beyond loopback; configure [agent] tls_cert/tls_key (or listen on loopback), or stage on the agent's host with `authwatch rotate CREDENTIAL stage`",
                );
            }
            WizardCmd::Stage(secret)
        }
        "verify" => WizardCmd::Verify,
        "promote" => WizardCmd::Promote {
            manual_confirmed: b.confirm_manual,
        },
        "activate" => {
            if b.confirm.as_deref() != Some(credential.as_str()) {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "activate needs \"confirm\": \"{}\" (the credential id): activate the new secret in Setup first, the old one stops working at once",
                        crate::sanitize::text(&credential)
                    ),
                );
            }
            WizardCmd::Activate
        }
        "abort" => WizardCmd::Abort,
        // For consoles: where it stands (a session takes the lease), the audit trail, the session's end.
        "open" | "status" => WizardCmd::Open,
        "audit" => WizardCmd::Audit,
        "close" => WizardCmd::Close,
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "unknown step `{}`: stage, verify, promote, activate or abort",
                    crate::sanitize::text(other)
                ),
            );
        }
    };
    let origin = match b.origin {
        Some(Origin::Console) => Origin::Console,
        _ => Origin::Api,
    };
    let step = cmd.name();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let sent = s
        .engine
        .send(Command::Rotate(Box::new(crate::engine::RotateCommand {
            credential: credential.clone(),
            cmd,
            actor: Actor {
                name: caller.name.clone(),
                origin,
            },
            session: b.session,
            reply: Some(tx),
        })))
        .await;
    let update = match sent {
        Ok(()) => match rx.await {
            Ok(u) => u,
            Err(_) => return error(StatusCode::SERVICE_UNAVAILABLE, "the engine has stopped"),
        },
        Err(_) => return error(StatusCode::SERVICE_UNAVAILABLE, "the engine has stopped"),
    };
    tracing::info!(
        "rotation {step} of {credential} by {} ({}): {}",
        caller.name,
        origin.as_str(),
        if update.ok { "ok" } else { "not ok" }
    );
    let refused = update
        .lines
        .iter()
        .any(|l| l.kind == crate::rotation::LineKind::Refused && l.text.contains("held by"));
    let code = if refused {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    let state = update.rotation.as_ref().map(|r| r.phase);
    (
        code,
        Json(serde_json::json!({
            "credential": update.credential,
            "step": step,
            "ok": update.ok,
            "state": state,
            "checks": update.lines,
            "next": update.next,
            "update": update,
        })),
    )
        .into_response()
}
