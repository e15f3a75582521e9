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
use futures::StreamExt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// `len` bytes of `byte`, streamed in 64 KiB chunks (never allocated whole); `None`: without end.
fn stream_of(byte: u8, len: Option<u64>) -> axum::body::Body {
    let chunk = axum::body::Bytes::from(vec![byte; 64 * 1024]);
    let chunks = len.map_or(usize::MAX, |l| l.div_ceil(64 * 1024) as usize);
    axum::body::Body::from_stream(
        futures::stream::repeat(chunk)
            .take(chunks)
            .map(Ok::<_, std::convert::Infallible>),
    )
}

fn redirect(status: u16, location: String) -> Response {
    let mut r = Response::new(axum::body::Body::empty());
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    r.headers_mut()
        .insert(header::LOCATION, location.parse().unwrap());
    r
}

/// 200 MB of zeros, gzip-compressed (about 200 KB), made once with the system's gzip.
fn gzip_bomb() -> axum::body::Bytes {
    static BOMB: std::sync::OnceLock<axum::body::Bytes> = std::sync::OnceLock::new();
    BOMB.get_or_init(|| {
        let out = std::process::Command::new("sh")
            .args(["-c", "head -c 200000000 /dev/zero | gzip -1"])
            .output()
            .expect("sh and gzip");
        assert!(out.status.success() && out.stdout.len() > 1000);
        axum::body::Bytes::from(out.stdout)
    })
    .clone()
}

/// Every behaviour, by path prefix: the credential's `auth_url` is `http://addr/<behaviour>/`. Redirects point at
/// `elsewhere` (another server, which must never be reached).
fn router(elsewhere: String) -> Router {
    let mut router = Router::new();
    for status in [301u16, 302, 303, 307, 308] {
        let to = format!("{elsewhere}/v2/token");
        router = router.route(
            &format!("/redirect-{status}/v2/token"),
            post(move || async move { redirect(status, to) }),
        );
    }
    router
        .route(
            "/redirect-loop/v2/token",
            post(|| async { redirect(302, "/redirect-loop/v2/token".into()) }),
        )
        .route(
            "/huge-body/v2/token",
            post(|| async {
                let mut r = Response::new(stream_of(b' ', Some(1 << 30)));
                r.headers_mut()
                    .insert(header::CONTENT_LENGTH, (1u64 << 30).into());
                r
            }),
        )
        .route(
            "/endless-body/v2/token",
            post(|| async { Response::new(stream_of(b' ', None)) }),
        )
        .route(
            "/slow-headers/v2/token",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                StatusCode::OK
            }),
        )
        .route(
            "/invalid-json/v2/token",
            post(|| async { json(StatusCode::OK, &[], r#"{"access_token":"abc","#.into()) }),
        )
        .route(
            "/wrong-types/v2/token",
            post(|| async {
                json(
                    StatusCode::OK,
                    &[],
                    r#"{"access_token":["abc"],"expires_in":{"soon":true},"scope":7,"rest_instance_url":false}"#
                        .into(),
                )
            }),
        )
        .route(
            "/gzip-bomb/v2/token",
            post(|| async {
                let mut r = Response::new(axum::body::Body::from(gzip_bomb()));
                r.headers_mut()
                    .insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
                r
            }),
        )
        .route(
            "/invalid-utf8/v2/token",
            post(|| async {
                let mut body = br#"{"error":"invalid_client","error_description":"bad "#.to_vec();
                body.push(0xff);
                body.extend_from_slice(br#" byte"}"#);
                let mut r = Response::new(axum::body::Body::from(body));
                *r.status_mut() = StatusCode::UNAUTHORIZED;
                r
            }),
        )
        .route(
            "/reset-mid-body/v2/token",
            post(|| async {
                let parts: Vec<Result<axum::body::Bytes, std::io::Error>> = vec![
                    Ok(axum::body::Bytes::from_static(br#"{"access_token":"ab"#)),
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "reset",
                    )),
                ];
                let mut r = Response::new(axum::body::Body::from_stream(futures::stream::iter(parts)));
                r.headers_mut()
                    .insert(header::CONTENT_LENGTH, 10_000u64.into());
                r
            }),
        )
        .route(
            "/control-chars/v2/token",
            post(|| async {
                json(
                    StatusCode::UNAUTHORIZED,
                    &[],
                    r#"{"error":"invalid_client[2J","error_description":"[2J[31mPWNED]0;title and
more"}"#
                        .into(),
                )
            }),
        )
        .route(
            "/secret-echo/v2/token",
            post(|body: axum::body::Bytes| async move {
                // Echo the client secret of the request in the error text, as a misbehaving proxy might.
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let secret = v["client_secret"].as_str().unwrap_or("").to_string();
                json(
                    StatusCode::UNAUTHORIZED,
                    &[],
                    serde_json::json!({
                        "error": "invalid_client",
                        "error_description": format!("client_secret {secret} is not valid"),
                    })
                    .to_string(),
                )
            }),
        )
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
    /// Requests that reached the server redirects point to (must stay 0).
    elsewhere_hits: Arc<AtomicUsize>,
    elsewhere: tokio::task::JoinHandle<()>,
}

impl Hostile {
    pub async fn start() -> Hostile {
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let other = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let other_port = other.local_addr().unwrap().port();
        let elsewhere = tokio::spawn(async move {
            let app = Router::new().fallback(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async { StatusCode::OK }
            });
            let _ = axum::serve(other, app).await;
        });
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        // Another host name for the same loopback: what a redirect names must be the target's host.
        let router = router(format!("http://localhost:{other_port}"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(tcp, router).await;
        });
        Hostile {
            addr,
            task,
            elsewhere_hits: hits,
            elsewhere,
        }
    }
    pub fn url(&self, behaviour: &str) -> String {
        format!("http://{}/{behaviour}/", self.addr)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.task.abort();
        self.elsewhere.abort();
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
    let r = probe_on(&hostile, behaviour).await;
    assert_eq!(
        hostile.elsewhere_hits.load(Ordering::SeqCst),
        0,
        "{behaviour}: a redirect was followed"
    );
    r
}

async fn probe_on(hostile: &Hostile, behaviour: &str) -> (ProbeResult, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), hostile, &[behaviour], "");
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

/// The configured probe timeout (see [`config`]); every answer must be classified within it plus this slack.
const TIMEOUT: Duration = Duration::from_secs(3);
const SLACK: Duration = Duration::from_secs(5);

/// One test per behaviour: the outcome, words in the summary, and an elapsed time bounded by the timeout.
macro_rules! behaviour {
    ($test:ident, $behaviour:literal, $outcome:expr, $words:expr) => {
        #[tokio::test]
        async fn $test() {
            let (r, elapsed) = probe_behaviour($behaviour).await;
            let summary = r.summary();
            assert_eq!(r.outcome, $outcome, "{}: {summary}", $behaviour);
            for w in $words {
                assert!(
                    summary.contains(w),
                    "{}: {summary:?} lacks {w:?}",
                    $behaviour
                );
            }
            assert!(
                elapsed < TIMEOUT + SLACK,
                "{}: classified after {elapsed:?}",
                $behaviour
            );
        }
    };
}

behaviour!(
    a_1_gb_body_is_refused_by_its_length,
    "huge-body",
    Outcome::BadResponse,
    ["response body larger than 1 MiB"]
);
behaviour!(
    an_endless_body_is_cut_at_1_mib,
    "endless-body",
    Outcome::BadResponse,
    ["response body larger than 1 MiB"]
);
behaviour!(
    headers_that_never_come_time_out,
    "slow-headers",
    Outcome::Timeout,
    ["timed out"]
);
behaviour!(
    invalid_json_is_a_bad_response,
    "invalid-json",
    Outcome::BadResponse,
    ["token response is not valid JSON"]
);
behaviour!(
    wrong_json_types_are_a_bad_response,
    "wrong-types",
    Outcome::BadResponse,
    ["token response lacks access_token"]
);
behaviour!(
    redirect_301_is_named_with_its_target_host,
    "redirect-301",
    Outcome::BadResponse,
    ["redirect (301) to localhost:", ": not followed"]
);
behaviour!(
    redirect_302_is_named_with_its_target_host,
    "redirect-302",
    Outcome::BadResponse,
    ["redirect (302) to localhost:", ": not followed"]
);
behaviour!(
    redirect_303_is_named_with_its_target_host,
    "redirect-303",
    Outcome::BadResponse,
    ["redirect (303) to localhost:", ": not followed"]
);
behaviour!(
    redirect_307_is_named_with_its_target_host,
    "redirect-307",
    Outcome::BadResponse,
    ["redirect (307) to localhost:", ": not followed"]
);
behaviour!(
    redirect_308_is_named_with_its_target_host,
    "redirect-308",
    Outcome::BadResponse,
    ["redirect (308) to localhost:", ": not followed"]
);
behaviour!(
    a_redirect_loop_is_one_redirect_not_followed,
    "redirect-loop",
    Outcome::BadResponse,
    ["redirect (302) to 127.0.0.1:", ": not followed"]
);

/// The bomb is made before the clock starts (gzip of 200 MB takes a while on a loaded machine).
#[tokio::test]
async fn a_gzip_bomb_is_never_inflated() {
    tokio::task::spawn_blocking(gzip_bomb).await.unwrap();
    let (r, elapsed) = probe_behaviour("gzip-bomb").await;
    assert_eq!(r.outcome, Outcome::BadResponse, "{}", r.summary());
    assert!(
        r.summary().contains("token response is not valid JSON"),
        "{}",
        r.summary()
    );
    assert!(elapsed < TIMEOUT + SLACK, "classified after {elapsed:?}");
}
behaviour!(
    an_invalid_utf8_byte_keeps_the_oauth_error,
    "invalid-utf8",
    Outcome::AuthRejected,
    ["token request rejected: invalid_client (401)"]
);

/// A connection reset after the first bytes: a broken body, or (when the reset overtakes the head, as the kernel
/// may drop unread data on RST) a network error naming the reset. Never a token.
#[tokio::test]
async fn a_connection_reset_mid_body_is_a_broken_body_or_a_reset() {
    let (r, elapsed) = probe_behaviour("reset-mid-body").await;
    let summary = r.summary();
    assert!(
        (r.outcome == Outcome::BadResponse && summary.contains("response body broken off"))
            || (r.outcome == Outcome::Network && summary.contains("reset")),
        "{summary}"
    );
    assert!(elapsed < TIMEOUT + SLACK, "classified after {elapsed:?}");
}
behaviour!(
    a_secret_echoed_in_the_error_is_still_an_auth_rejection,
    "secret-echo",
    Outcome::AuthRejected,
    ["invalid_client"]
);

/// Control characters in the error texts: classified as the rejection it is; no raw escape, bell or newline
/// reaches the summary or the detail (how they are shown is `sanitize`'s business).
#[tokio::test]
async fn control_characters_in_the_error_are_classified_and_not_passed_raw() {
    let (r, elapsed) = probe_behaviour("control-chars").await;
    assert_eq!(r.outcome, Outcome::AuthRejected, "{}", r.summary());
    assert_eq!(r.http_status, Some(401));
    for text in [
        r.summary(),
        r.explained(),
        r.detail.clone().unwrap_or_default(),
    ] {
        assert!(
            !text.chars().any(|c| c.is_control()),
            "raw control character in {text:?}"
        );
    }
    assert!(elapsed < TIMEOUT + SLACK, "classified after {elapsed:?}");
}

/// The real binary, one `check` over every behaviour at once: each integration classified (none ok), within the
/// timeouts, and the process's own peak RSS (from wait4) far below the 1 GB, endless and 200 MB gzip bodies.
#[tokio::test]
async fn check_over_every_hostile_behaviour_keeps_its_memory_small() {
    let hostile = Hostile::start().await;
    let dir = tempfile::tempdir().unwrap();
    let behaviours = [
        "huge-body",
        "endless-body",
        "slow-headers",
        "invalid-json",
        "wrong-types",
        "redirect-301",
        "redirect-302",
        "redirect-303",
        "redirect-307",
        "redirect-308",
        "redirect-loop",
        "gzip-bomb",
        "invalid-utf8",
        "reset-mid-body",
        "control-chars",
        "secret-echo",
        "giant-retry-after",
        "giant-retry-after-json",
    ];
    let config = config(dir.path(), &hostile, &behaviours, "");
    let path = config.path.clone().expect("config file");
    tokio::task::spawn_blocking(gzip_bomb).await.unwrap();
    let started = Instant::now();
    let bin = env!("CARGO_BIN_EXE_authwatch");
    let path = path.display().to_string();
    let state = dir.path().to_path_buf();
    let (out, max_rss_kib) = tokio::task::spawn_blocking(move || {
        run_with_peak_rss(
            bin,
            &["check", "--format", "json", "--config", &path],
            |c| {
                c.env("XDG_STATE_HOME", &state);
            },
        )
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let elapsed = started.elapsed();
    eprintln!(
        "check over {} hostile endpoints: {elapsed:?}, peak RSS {max_rss_kib} KiB",
        behaviours.len()
    );
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    for b in behaviours {
        let row = report["integrations"]
            .as_array()
            .and_then(|a| a.iter().find(|i| i["name"] == b))
            .unwrap_or_else(|| panic!("{b} missing from {report}"));
        assert_ne!(row["status"], "ok", "{b}: {row}");
        assert!(
            row["probe"]["outcome"].is_string(),
            "{b} unclassified: {row}"
        );
    }
    assert!(
        max_rss_kib < 64 * 1024,
        "check peaked at {} MiB",
        max_rss_kib / 1024
    );
    // Probes run side by side; a few rounds of confirmation retries at most.
    assert!(elapsed < Duration::from_secs(60), "check took {elapsed:?}");
    assert_eq!(hostile.elsewhere_hits.load(Ordering::SeqCst), 0);
}
