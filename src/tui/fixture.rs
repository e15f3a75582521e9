//! Hand-built snapshots for the console's tests, snapshot files and benchmark. Not part of the product API.

use super::app::App;
use super::views::render;
use crate::engine::{CredentialView, IntegrationView, Snapshot, Summary};
use crate::model::Health;
use crate::model::{AuthEvent, Outcome, Phase, ProbeResult, Status};
use chrono::{DateTime, Duration, TimeZone, Utc};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use std::sync::Arc;

/// The fixed "now" of every fixture: 2026-03-14 10:30:00 UTC.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 14, 10, 30, 0).unwrap()
}

fn ago(secs: i64) -> DateTime<Utc> {
    now() - Duration::seconds(secs)
}

fn probe(
    secs_ago: i64,
    outcome: Outcome,
    http: Option<u16>,
    token_ms: u64,
    call_ms: Option<u64>,
) -> ProbeResult {
    let phase = if matches!(outcome, Outcome::AuthRejected | Outcome::RateLimited) {
        Phase::Token
    } else {
        Phase::Call
    };
    let mut p = ProbeResult::new(ago(secs_ago), outcome, phase);
    p.http_status = http;
    p.token_ms = Some(token_ms);
    p.call_ms = call_ms;
    p.fresh_token = true;
    p
}

struct Spec {
    name: &'static str,
    credential: &'static str,
    bu: &'static str,
    mid: &'static str,
    team: &'static str,
    status: Status,
    reasons: &'static [&'static str],
    history: Vec<ProbeResult>,
}

fn scopes(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn expiry_of(cred: &str) -> Option<DateTime<Utc>> {
    let d = |m, d| Some(Utc.with_ymd_and_hms(2026, m, d, 0, 0, 0).unwrap());
    match cred {
        "crm-prod" => d(3, 11),
        "journeys" => d(8, 1),
        "email" => d(3, 16),
        "loyalty" => d(3, 19),
        "analytics" => d(4, 3),
        "data" => d(5, 30),
        "shared-ro" => d(9, 30),
        _ => None,
    }
}

fn integrations() -> Vec<IntegrationView> {
    let ok = |s| probe(s, Outcome::Ok, Some(200), 180, Some(95));
    let mut auth = probe(40, Outcome::AuthRejected, Some(401), 210, None);
    auth.error = Some("invalid_client".into());
    let mut forb = probe(75, Outcome::Forbidden, Some(403), 190, Some(120));
    forb.error = Some("Insufficient privileges to complete this action.".into());
    let mut scope = probe(20, Outcome::ScopeMissing, Some(200), 170, None);
    scope.missing_scopes = scopes(&["email_send"]);
    scope.granted_scopes = Some(scopes(&["email_read", "list_and_subscribers_read"]));
    let mut rate = probe(12, Outcome::RateLimited, Some(429), 60, None);
    rate.retry_after_secs = Some(5);
    rate.error = Some("Rate limit exceeded".into());
    let slow = probe(30, Outcome::Ok, Some(200), 2900, Some(1300));
    let mut timeout = probe(50, Outcome::Timeout, None, 10_000, None);
    timeout.error = Some("no answer within 10s".into());
    let granted_ok = |mut p: ProbeResult, s: &[&str]| {
        p.granted_scopes = Some(scopes(s));
        p
    };

    let specs = vec![
        Spec {
            name: "crm-sync",
            credential: "crm-prod",
            bu: "Acme US",
            mid: "514000101",
            team: "crm",
            status: Status::Fail,
            reasons: &[
                "invalid_client (401): secret expired 3d ago",
                "paused after 4 auth failures",
            ],
            history: vec![
                granted_ok(ok(9000), &["list_and_subscribers_read"]),
                {
                    let mut a = auth.clone();
                    a.at = ago(900);
                    a
                },
                {
                    let mut a = auth.clone();
                    a.at = ago(600);
                    a
                },
                {
                    let mut a = auth.clone();
                    a.at = ago(300);
                    a
                },
                auth,
            ],
        },
        Spec {
            name: "journey-events",
            credential: "journeys",
            bu: "Acme EU",
            mid: "514000202",
            team: "lifecycle",
            status: Status::Fail,
            reasons: &["forbidden (403): Insufficient privileges"],
            // A longer history with a latency bump and one probe that never connected: the sparkline's material.
            history: [
                180, 190, 175, 210, 260, 340, 520, 0, 480, 300, 220, 200, 190, 185, 195, 230,
            ]
            .iter()
            .enumerate()
            .map(|(n, &ms)| {
                let at = 75 + (16 - n as i64) * 300;
                if ms == 0 {
                    let mut p = probe(at, Outcome::Network, None, 0, None);
                    p.token_ms = None;
                    p.error = Some("connection reset by peer".into());
                    p
                } else {
                    granted_ok(
                        probe(at, Outcome::Ok, Some(200), ms, Some(95)),
                        &["journeys_read"],
                    )
                }
            })
            .chain([forb])
            .collect(),
        },
        Spec {
            name: "email-sends",
            credential: "email",
            bu: "Acme US",
            mid: "514000101",
            team: "crm",
            status: Status::Fail,
            reasons: &["scope email_send missing", "secret expires in 1d"],
            history: vec![scope],
        },
        Spec {
            name: "loyalty-export",
            credential: "loyalty",
            bu: "Loyalty",
            mid: "514000303",
            team: "loyalty",
            status: Status::Warn,
            reasons: &["secret expires in 4d (2026-03-19)"],
            history: vec![ok(900), ok(300)],
        },
        Spec {
            name: "data-extract",
            credential: "data",
            bu: "Acme US",
            mid: "514000101",
            team: "data",
            status: Status::Warn,
            reasons: &["rate limited (429), retry after 5s"],
            history: vec![ok(700), rate],
        },
        Spec {
            name: "web-analytics",
            credential: "analytics",
            bu: "Acme EU",
            mid: "514000202",
            team: "web",
            status: Status::Warn,
            reasons: &["slow: 4.2s (threshold 2s)", "secret expires in 19d"],
            history: vec![slow],
        },
        Spec {
            name: "sms-gateway",
            credential: "sms",
            bu: "Mobile",
            mid: "514000404",
            team: "mobile",
            status: Status::Unknown,
            reasons: &[],
            history: vec![],
        },
        Spec {
            name: "reporting",
            credential: "data",
            bu: "Analytics",
            mid: "514000505",
            team: "data",
            status: Status::Unknown,
            reasons: &["could not verify: timed out"],
            history: vec![timeout],
        },
        Spec {
            name: "preference-center",
            credential: "shared-ro",
            bu: "Acme US",
            mid: "514000101",
            team: "web",
            status: Status::Ok,
            reasons: &[],
            // The newest probe reused the cached token: the secret itself was last checked 12 minutes ago.
            history: vec![
                granted_ok(
                    ok(725),
                    &["list_and_subscribers_read", "data_extensions_read"],
                ),
                ProbeResult {
                    fresh_token: false,
                    token_ms: None,
                    ..ok(65)
                },
            ],
        },
        Spec {
            name: "audience-sync",
            credential: "shared-ro",
            bu: "Acme EU",
            mid: "514000202",
            team: "crm",
            status: Status::Ok,
            reasons: &[],
            history: vec![ok(125)],
        },
        Spec {
            name: "tx-messages",
            credential: "shared-ro",
            bu: "Acme US",
            mid: "514000101",
            team: "crm",
            status: Status::Ok,
            reasons: &[],
            history: vec![ok(8)],
        },
    ];

    specs
        .into_iter()
        .map(|s| {
            let last_success = s
                .history
                .iter()
                .rev()
                .find(|p| p.outcome.is_ok())
                .map(|p| p.at);
            let failing_since = if s.history.last().is_some_and(|p| !p.outcome.is_ok()) {
                s.history
                    .iter()
                    .rev()
                    .take_while(|p| !p.outcome.is_ok())
                    .last()
                    .map(|p| p.at)
            } else {
                None
            };
            let consecutive = s
                .history
                .iter()
                .rev()
                .take_while(|p| p.outcome.is_auth_failure())
                .count() as u32;
            let paused = s.name == "crm-sync";
            // The engine's view of the token: granted by the newest probe that asked for one, reused for 13m29s
            // (75% of SFMC's 1079 s), and only while the newest probe still had it.
            let secret_verified_at = s
                .history
                .iter()
                .rev()
                .find(|p| p.verified_secret())
                .map(|p| p.at);
            let token_reused_until = secret_verified_at
                .filter(|_| s.history.last().is_some_and(|p| p.phase == Phase::Call))
                .map(|at| at + Duration::milliseconds(809_250));
            IntegrationView {
                name: s.name.into(),
                credential: s.credential.into(),
                account_id: Some(s.mid.into()),
                business_unit: Some(s.bu.into()),
                team: Some(s.team.into()),
                environment: Some("prod".into()),
                processes: match s.name {
                    "crm-sync" => scopes(&["nightly CRM contact sync", "lead scoring"]),
                    "email-sends" => scopes(&["order confirmations"]),
                    _ => scopes(&["batch job"]),
                },
                required_scopes: match s.name {
                    "email-sends" => {
                        scopes(&["email_read", "email_send", "list_and_subscribers_read"])
                    }
                    "journey-events" => scopes(&["journeys_read", "journeys_write"]),
                    _ => scopes(&["list_and_subscribers_read"]),
                },
                health: Health {
                    status: s.status,
                    reasons: s.reasons.iter().map(|r| r.to_string()).collect(),
                },
                consecutive_auth_failures: consecutive,
                failing_since,
                last_success,
                next_probe_at: if paused {
                    None
                } else {
                    Some(now() + Duration::seconds(240))
                },
                paused,
                probing: s.history.is_empty(),
                secret_expires: expiry_of(s.credential),
                history: s.history.into(),
                acked: (s.name == "journey-events").then(|| crate::model::Ack {
                    at: ago(600),
                    actor: "jane".into(),
                }),
                uptime_24h: match s.status {
                    Status::Ok => Some(100.0),
                    Status::Warn => Some(99.31),
                    Status::Fail => Some(82.5),
                    Status::Unknown => None,
                },
                uptime_7d: match s.status {
                    Status::Unknown => None,
                    Status::Fail => Some(97.12),
                    _ => Some(99.9),
                },
                incidents: if s.status == Status::Fail {
                    vec![
                        crate::model::Incident {
                            // The ongoing incident began when the failures did.
                            started: failing_since.unwrap_or_else(|| ago(2_700)),
                            ended: None,
                            worst: Status::Fail,
                            reason: s.reasons.first().map(|r| r.to_string()).unwrap_or_default(),
                        },
                        crate::model::Incident {
                            started: ago(3 * 86_400),
                            ended: Some(ago(3 * 86_400 - 840)),
                            worst: Status::Warn,
                            reason: "cannot verify: timed out".into(),
                        },
                    ]
                } else {
                    Vec::new()
                },
                uptime_since: None,
                secret_verified_at,
                token_reused_until,
            }
        })
        .collect()
}

fn credentials(integrations: &[IntegrationView]) -> Vec<CredentialView> {
    let specs: [(&str, Option<&str>, Status); 8] = [
        ("crm-prod", Some("crm-team@acme.example"), Status::Fail),
        ("journeys", Some("lifecycle@acme.example"), Status::Ok),
        ("email", Some("crm-team@acme.example"), Status::Fail),
        ("loyalty", None, Status::Warn),
        ("analytics", Some("web@acme.example"), Status::Warn),
        ("data", Some("data@acme.example"), Status::Ok),
        ("shared-ro", Some("platform@acme.example"), Status::Ok),
        ("sms", None, Status::Unknown),
    ];
    specs
        .into_iter()
        .map(|(id, owner, status)| {
            let expires = expiry_of(id);
            CredentialView {
                id: id.into(),
                owner: owner.map(String::from),
                client_id: format!("{id}-0a1b2c3d4e5f6a7b8c9d"),
                secret_expires: expires,
                days_left: expires.map(|e| (e - now()).num_days()),
                expiry_status: status,
                integrations: integrations
                    .iter()
                    .filter(|i| i.credential == id)
                    .map(|i| i.name.clone())
                    .collect(),
                paused: id == "crm-prod",
            }
        })
        .collect()
}

fn auth_log() -> Vec<AuthEvent> {
    let ev = |secs: i64, integ: Option<&str>, status: u16, error: &str, source: &str| AuthEvent {
        at: ago(secs),
        integration: integ.map(String::from),
        http_status: status,
        error: error.into(),
        source: source.into(),
        origin: if source == "probe" {
            crate::model::EventOrigin {
                url_host: Some("mcx1k2.auth.marketingcloudapis.com".into()),
                ..Default::default()
            }
        } else {
            crate::model::EventOrigin {
                location: Some(format!("/var/log/middleware/{source} line {}", 1000 + secs)),
                client_id: Some("4f1c2a9e7d3b".into()),
                mid: Some("510000123".into()),
                url_host: Some("mcx1k2.rest.marketingcloudapis.com".into()),
            }
        },
    };
    let priv_msg = "Insufficient privileges to complete this action.";
    vec![
        ev(40, Some("crm-sync"), 401, "invalid_client", "probe"),
        ev(75, Some("journey-events"), 403, priv_msg, "probe"),
        ev(
            130,
            Some("crm-sync"),
            401,
            "invalid_client",
            "crm-worker.log",
        ),
        ev(200, None, 401, "Not Authorized", "access.log"),
        ev(300, Some("crm-sync"), 401, "invalid_client", "probe"),
        ev(
            420,
            Some("journey-events"),
            403,
            "40002 Authorization token invalid on this endpoint",
            "journeys.jsonl",
        ),
        ev(600, Some("crm-sync"), 401, "invalid_client", "probe"),
        ev(1500, None, 403, priv_msg, "access.log"),
        ev(
            86_400 + 3600,
            Some("crm-sync"),
            401,
            "Token Expired",
            "crm-worker.log",
        ),
    ]
}

fn summarize(items: &[IntegrationView]) -> Summary {
    let mut s = Summary::default();
    for i in items {
        s.add(i.health.status);
    }
    s
}

/// The realistic fixture: 11 integrations in every state, 8 credentials, a 401/403 log.
pub fn snapshot() -> Snapshot {
    let items = integrations();
    let creds = credentials(&items);
    Snapshot {
        version: 7,
        generated_at: now(),
        config_name: "acme-sfmc".into(),
        environments: vec!["prod".into()],
        summary: summarize(&items),
        credentials: creds.into_iter().map(Arc::new).collect(),
        integrations: items.into_iter().map(Arc::new).collect(),
        auth_log: Arc::new(auth_log()),
        newest_data_at: Some(ago(8)),
        history_error: None,
        log_sources: vec![
            crate::engine::LogSourceView {
                name: "crm-worker.log".into(),
                status: "ok".into(),
                ok: true,
                unmatched: 3,
                malformed: 1,
            },
            crate::engine::LogSourceView {
                name: "access.log".into(),
                status: "ok".into(),
                ok: true,
                unmatched: 2,
                malformed: 0,
            },
            // Its files were rotated away: the 401/403s it gave earlier stay in the log.
            crate::engine::LogSourceView {
                name: "journeys.jsonl".into(),
                status: "waiting for /var/log/journeys/*.jsonl".into(),
                ok: false,
                unmatched: 0,
                malformed: 0,
            },
        ],
        connection: None,
        rotations: Arc::new(Vec::new()),
    }
}

/// The first snapshot a console sees: configuration known, nothing probed yet.
pub fn startup_snapshot() -> Snapshot {
    let mut snap = snapshot();
    let items: Vec<IntegrationView> = snap
        .integrations
        .iter()
        .map(|i| {
            let mut i = (**i).clone();
            i.history = Default::default();
            i.health = Health::default();
            i.probing = true;
            i.consecutive_auth_failures = 0;
            i.failing_since = None;
            i.last_success = None;
            i
        })
        .collect();
    snap.summary = summarize(&items);
    snap.integrations = items.into_iter().map(Arc::new).collect();
    snap.auth_log = Arc::new(Vec::new());
    snap.newest_data_at = None;
    snap.version = 0;
    snap
}

/// `n` integrations cycling through the fixture's states (for the benchmark and scrolling tests).
pub fn big_snapshot(n: usize) -> Snapshot {
    let base = snapshot();
    let items: Vec<IntegrationView> = (0..n)
        .map(|k| {
            let mut i = (*base.integrations[k % base.integrations.len()]).clone();
            i.name = format!("{}-{k:04}", i.name);
            i
        })
        .collect();
    let log: Vec<AuthEvent> = (0..500)
        .map(|k| {
            let mut e = base.auth_log[k % base.auth_log.len()].clone();
            e.at -= Duration::seconds(k as i64 * 30);
            e
        })
        .collect();
    Snapshot {
        summary: summarize(&items),
        integrations: items.into_iter().map(Arc::new).collect(),
        auth_log: Arc::new(log),
        ..base
    }
}

/// The buffer as plain text lines (one per row, trailing spaces trimmed).
pub fn buffer_text(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        let mut skip = 0;
        for x in 0..buf.area.width {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            let sym = buf[(x, y)].symbol();
            line.push_str(sym);
            skip = super::text::width(sym).saturating_sub(1);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Render `app` at `width`x`height` on a test backend; returns the buffer.
pub fn render_buffer(app: &App, width: u16, height: u16, now: DateTime<Utc>) -> Buffer {
    let mut term = Terminal::new(TestBackend::new(width, height)).expect("test backend");
    term.draw(|f| render(f, app, now)).expect("draw");
    term.backend().buffer().clone()
}

/// Render and return the screen as text.
pub fn render_text(app: &App, width: u16, height: u16, now: DateTime<Utc>) -> String {
    buffer_text(&render_buffer(app, width, height, now))
}
