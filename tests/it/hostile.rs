//! A hostile token endpoint: one path per behaviour an attacker (or a broken proxy) may answer with, and what
//! authwatch makes of each. The server is real HTTP on a loopback port; bodies are streamed, never allocated.

use crate::common::*;
use authwatch::agent::{AgentOptions, RunningAgent};
use authwatch::config::Config;
use authwatch::engine::{Command, EngineEvent};
use authwatch::model::{Outcome, ProbeResult};
use authwatch::probe::{self, Freshness, ProbeTarget, Prober, TokenCache};
use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const CLIENT: &str = "5c9e1b7aa0d44f3e8a2b91c7";
const DEADLINE: Duration = Duration::from_secs(30);

fn json(status: StatusCode, headers: &[(&'static str, String)], body: String) -> Response {
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
    for (k, v) in headers {
        h.insert(*k, v.parse().unwrap());
    }
    (status, h, body).into_response()
}

/// Every behaviour, by path prefix: the credential's `auth_url` is `http://addr/<behaviour>/`.
fn router() -> Router {
    Router::new()
        .route(
            "/giant-retry-after/v2/token",
            post(|| async {
                json(
                    StatusCode::TOO_MANY_REQUESTS,
                    &[("retry-after", "18446744073709551615".into())],
                    r#"{"message":"Rate limit exceeded","errorcode":50100}"#.into(),
                )
            }),
        )
        .route(
            "/giant-retry-after-json/v2/token",
            post(|| async {
                json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &[],
                    r#"{"message":"Service Unavailable","retryAfter":9000000000000}"#.into(),
                )
            }),
        )
}

pub struct Hostile {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Hostile {
    pub async fn start() -> Hostile {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(tcp, router()).await;
        });
        Hostile { addr, task }
    }
    pub fn url(&self, behaviour: &str) -> String {
        format!("http://{}/{behaviour}/", self.addr)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A config with one integration per behaviour (named after it), each on its own credential.
fn config(dir: &std::path::Path, hostile: &Hostile, behaviours: &[&str], extra: &str) -> Config {
    let secret = write_secret(dir, "secret", SENTINEL);
    let mut text = format!("[settings]\ntimeout = \"3s\"\n{extra}\n\n");
    for b in behaviours {
        text += &sfmc_credential(b, &hostile.url(b), CLIENT, &secret);
        text += &integration(b, b, "");
    }
    load_config(dir, &text)
}

/// Probe the integration named `behaviour` once; the elapsed time comes back too.
async fn probe_behaviour(behaviour: &str) -> (ProbeResult, Duration) {
    let hostile = Hostile::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &hostile, &[behaviour], "");
    let prober = Prober::new(&config.settings).unwrap();
    let integration = &config.integrations[0];
    let credential = config.credential(&integration.credential).unwrap();
    let secret = probe::secret_source(&credential.client_secret, Duration::from_secs(5));
    let started = Instant::now();
    let r = probe::probe(
        &prober,
        &TokenCache::new(),
        ProbeTarget {
            integration,
            credential,
        },
        &secret,
        Freshness::fresh_batch(),
    )
    .await
    .expect("secret resolves");
    (r, started.elapsed())
}

#[tokio::test]
async fn giant_retry_after_header_is_clamped_to_a_day_and_named() {
    let (r, _) = probe_behaviour("giant-retry-after").await;
    assert_eq!(r.outcome, Outcome::RateLimited);
    assert_eq!(r.retry_after_secs, Some(86_400));
    assert!(r.summary().contains("capped at 24h"), "{}", r.summary());
    let detail = r.detail.unwrap();
    assert!(
        detail.contains("Retry-After 18446744073709551615s clamped to 86400s"),
        "{detail}"
    );
}

#[tokio::test]
async fn giant_retry_after_in_the_json_body_is_clamped_too() {
    let (r, _) = probe_behaviour("giant-retry-after-json").await;
    assert_eq!(r.outcome, Outcome::ServerError);
    assert_eq!(r.retry_after_secs, Some(86_400));
    assert!(r.summary().contains("capped at 24h"), "{}", r.summary());
}

/// The finding that stopped all monitoring: one integration's endpoint answers with a giant Retry-After; the
/// agent goes on probing the others and `/healthz` tells the truth before and after the engine stops.
#[tokio::test]
async fn agent_facing_a_giant_retry_after_keeps_probing_the_others_and_healthz_tells_the_truth() {
    let hostile = Hostile::start().await;
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", SENTINEL);
    let mut text = "[settings]\nprobe_interval = \"300ms\"\nconfirm_retry = \"100ms\"\n\n\
                    [agent]\nlisten = \"127.0.0.1:0\"\n\n"
        .to_string();
    for b in ["giant-retry-after", "giant-retry-after-json"] {
        text += &sfmc_credential(b, &hostile.url(b), CLIENT, &secret);
        text += &integration(b, b, "");
    }
    text += &sfmc_credential("healthy", &sim.base_url(), CLIENT, &secret);
    text += &integration("crm-sync", "healthy", "");
    let config = load_config(dir.path(), &text);
    let agent = RunningAgent::start(config, AgentOptions::default())
        .await
        .expect("agent starts");
    let mut events = agent.engine.events();
    let mut hostile_done = 0;
    let mut healthy_after = 0;
    tokio::time::timeout(DEADLINE, async {
        while healthy_after < 4 {
            if let Ok(EngineEvent::ProbeFinished { integration, .. }) = events.recv().await {
                if integration.starts_with("giant") {
                    hostile_done += 1;
                } else if hostile_done >= 2 {
                    healthy_after += 1;
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!("healthy integration probed {healthy_after} times after the giant Retry-After")
    });
    let snap = agent.engine.snapshot();
    let reason = snap
        .integration("giant-retry-after")
        .unwrap()
        .health
        .reasons
        .join("; ");
    assert!(reason.contains("capped at 24h"), "{reason}");

    let http = reqwest::Client::new();
    let health = http
        .get(format!("{}/healthz", agent.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // The engine gone: /healthz must not say ok any more.
    agent.engine.send(Command::Shutdown).await.unwrap();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let r = http
            .get(format!("{}/healthz", agent.url()))
            .send()
            .await
            .unwrap();
        if r.status() == 503 {
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["status"], "unhealthy", "{body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/healthz still 200 after the engine stopped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    agent.stop().await;
}
