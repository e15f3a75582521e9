//! Sanitize at the boundary (issue 11): an endpoint answering with terminal escapes, Slack markup and the client
//! secret it was sent. Nothing of it may reach `check`, `rotate ... verify`, the audit trail, the agent's API and
//! metrics, notifications or the database raw: control characters become visible escapes (`\x1b`), Slack markup
//! is escaped, and the echoed secret is `[redacted]`.

use crate::common::*;
use crate::rotation::{Env, KEY, wait_staging};
use authwatch::agent::{AgentOptions, RunningAgent};
use authwatch::model::Status;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CLIENT: &str = "5c9e1b7aa0d44f3e8a2b91c7";
const DEADLINE: Duration = Duration::from_secs(20);

/// The error text: clear screen, red, set the window title, bell.
const PWNED: &str = "\u{1b}[2J\u{1b}[31mPWNED\u{1b}]0;title\u{7}";
/// The same, as authwatch shows and stores it.
const PWNED_SHOWN: &str = "\\x1b[2J\\x1b[31mPWNED\\x1b]0;title\\x07";
/// Slack markup an endpoint may put in its error: a channel-wide ping and a disguised link.
const MARKUP: &str = "<!channel> <https://evil.example/|click here> & more";

/// The secret the request carried: JSON body (sfmc), form body (oauth2 with client_auth = "body").
fn posted_secret(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        return v["client_secret"].as_str().unwrap_or("").to_string();
    }
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "client_secret")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// A token endpoint refusing every request with escapes, markup and the posted secret in `error`, the secret
/// echoed again in `error_description` (with a newline and a bidi override) and in a header.
async fn start_hostile() -> (String, tokio::task::JoinHandle<()>) {
    let app = Router::new().route(
        "/v2/token",
        post(|body: Bytes| async move {
            let secret = posted_secret(&body);
            let answer = serde_json::json!({
                "error": format!("{PWNED} {MARKUP} sent:{secret}"),
                "error_description": format!("client_secret {secret} is not valid\n\u{202e}txt.exe"),
                "message": "x",
            });
            (
                StatusCode::UNAUTHORIZED,
                [
                    ("content-type", "application/json".to_string()),
                    ("x-echo", secret),
                ],
                answer.to_string(),
            )
                .into_response()
        }),
    );
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(tcp, app).await;
    });
    (format!("http://{addr}/"), task)
}

/// No raw control character (other than line ends of the output itself), no bidi control, no secret.
fn assert_clean(what: &str, text: &str, secrets: &[&str]) {
    let raw: Vec<char> = text
        .chars()
        .filter(|c| authwatch::sanitize::is_unsafe(*c) && *c != '\n')
        .collect();
    assert!(raw.is_empty(), "{what} carries raw {raw:?}:\n{text}");
    for s in secrets {
        assert!(!text.contains(s), "{what} carries the secret:\n{text}");
    }
}

/// The bytes of a SQLite database and its WAL: no ESC, BEL or U+202E byte sequence, no secret.
fn assert_db_clean(db: &Path, secrets: &[&str]) {
    let mut found_pwned = false;
    for suffix in ["", "-wal", "-journal"] {
        let path = format!("{}{suffix}", db.display());
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        found_pwned |= bytes.windows(5).any(|w| w == b"PWNED");
        for needle in [&b"\x1b["[..], b"\x1b]", b"title\x07", "\u{202e}".as_bytes()] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{path} holds raw {needle:?}"
            );
        }
        for s in secrets {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "{path} holds the secret"
            );
        }
    }
    assert!(found_pwned, "the error text was not stored at all");
}

async fn authwatch(args: &[&str], dir: &Path) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_authwatch"))
        .args(args)
        .env("XDG_STATE_HOME", dir)
        .env("XDG_CONFIG_HOME", dir)
        .env_remove("AUTHWATCH_CONFIG")
        .current_dir(dir)
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn check_shows_escapes_and_redacts_the_echoed_secret() {
    let (url, server) = start_hostile().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", SENTINEL);
    let text = format!(
        "[settings]\nfailure_threshold = 1\n\n{}{}",
        sfmc_credential("pkg", &url, CLIENT, &secret),
        integration("crm-sync", "pkg", "")
    );
    let config = write_config(dir.path(), &text).display().to_string();

    let (code, stdout, stderr) = authwatch(&["check", "--config", &config], dir.path()).await;
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert_clean("check stdout", &stdout, &[SENTINEL]);
    assert_clean("check stderr", &stderr, &[SENTINEL]);
    assert!(stdout.contains(PWNED_SHOWN), "{stdout}");

    let (code, stdout, _) = authwatch(
        &["check", "--config", &config, "--format", "json"],
        dir.path(),
    )
    .await;
    assert_eq!(code, 2);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let probe = &v["integrations"][0]["probe"];
    assert_eq!(
        probe["error"],
        format!("{PWNED_SHOWN} {MARKUP} sent:[redacted]")
    );
    assert_eq!(
        probe["detail"],
        "client_secret [redacted] is not valid\\n\\u{202e}txt.exe"
    );
    // The JSON text itself: no \u001b escape a JSON reader would turn back into ESC.
    assert!(!stdout.contains("\\u001b"), "{stdout}");
    assert!(!stdout.contains(SENTINEL));
    server.abort();
}

#[tokio::test]
async fn the_agent_api_metrics_and_database_carry_no_raw_control_character_and_no_secret() {
    let (url, server) = start_hostile().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", SENTINEL);
    let db = dir.path().join("authwatch.db");
    let text = format!(
        "[settings]\nprobe_interval = \"1h\"\nconfirm_retry = \"20ms\"\nfailure_threshold = 1\n\n{}{}",
        sfmc_credential("pkg", &url, CLIENT, &secret),
        integration("crm-sync", "pkg", "")
    );
    let agent = RunningAgent::start(
        load_config(dir.path(), &text),
        AgentOptions {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            db: Some(db.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut rx = agent.engine.watch();
    tokio::time::timeout(DEADLINE, async {
        loop {
            let done = rx
                .borrow_and_update()
                .integration("crm-sync")
                .is_some_and(|i| i.health.status == Status::Fail);
            if done {
                break;
            }
            rx.changed().await.unwrap();
        }
    })
    .await
    .expect("crm-sync fails");
    let http = reqwest::Client::new();
    for path in ["/api/v1/state", "/metrics"] {
        let body = http
            .get(format!("{}{path}", agent.url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_clean(path, &body, &[SENTINEL]);
        assert!(!body.contains("\\u001b"), "{path}: {body}");
    }
    let state = http
        .get(format!("{}/api/v1/state", agent.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        state.contains("client_secret [redacted] is not valid"),
        "{state}"
    );
    agent.stop().await;
    assert_db_clean(&db, &[SENTINEL]);
    server.abort();
}

/// `rotate ... verify` prints the endpoint's answer and the audit trail keeps it: escaped, the new secret that
/// the endpoint echoes redacted; `authwatch audit` replays it escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_verify_and_the_audit_trail_show_escapes_and_redact_the_new_secret() {
    let (url, server) = start_hostile().await;
    let env = Env::new(&url, "[\"data_extensions_read\"]", Some(KEY));
    let new_secret = "NEW-rotated-secret-4f1c9a0b7e2d";
    let out = env.rotate("stage", &[], Some(new_secret));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    wait_staging();
    let out = env.rotate("verify", &[], None);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert_clean("verify stdout", &out.stdout, &[SENTINEL, new_secret]);
    assert_clean("verify stderr", &out.stderr, &[SENTINEL, new_secret]);
    assert!(
        out.stdout
            .contains(&format!("{PWNED_SHOWN} {MARKUP} sent:[redacted]")),
        "{}",
        out.stdout
    );
    for args in [&["audit"][..], &["audit", "--format", "json"]] {
        let out = env.run(args, None);
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        assert_clean("audit", &out.stdout, &[SENTINEL, new_secret]);
        assert!(!out.stdout.contains("\\u001b"), "{}", out.stdout);
        assert!(out.stdout.contains("PWNED"), "{}", out.stdout);
        assert!(out.stdout.contains("sent:[redacted]"), "{}", out.stdout);
    }
    let out = env.run(&["audit"], None);
    assert!(out.stdout.contains(PWNED_SHOWN), "{}", out.stdout);
    env.assert_never_leaked(&[SENTINEL, new_secret]);
    assert_db_clean(&env.db, &[SENTINEL, new_secret]);
    server.abort();
}

/// Slack renders `<!channel>` and `<url|text>` from the message text: the endpoint's words must arrive escaped.
#[tokio::test]
async fn slack_receives_escaped_markup_and_no_raw_control_characters() {
    let (url, server) = start_hostile().await;
    let inbox: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let app = Router::new()
        .route(
            "/services/T0/B0/slack-hook-key-0123456789",
            post(
                |State(inbox): State<Arc<Mutex<Vec<serde_json::Value>>>>, body: Bytes| async move {
                    inbox
                        .lock()
                        .unwrap()
                        .push(serde_json::from_slice(&body).unwrap());
                    "ok"
                },
            ),
        )
        .with_state(inbox.clone());
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!(
        "http://{}/services/T0/B0/slack-hook-key-0123456789",
        tcp.local_addr().unwrap()
    );
    let receiver = tokio::spawn(async move {
        let _ = axum::serve(tcp, app).await;
    });
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", SENTINEL);
    let hook = write_secret(dir.path(), "hook", &hook_url);
    let text = format!(
        "[settings]\nprobe_interval = \"1h\"\nconfirm_retry = \"20ms\"\nfailure_threshold = 1\n\n\
         [[notify]]\nname = \"crm-ops-slack\"\nkind = \"slack\"\nurl = {{ file = \"{}\" }}\n\n{}{}",
        hook.display(),
        sfmc_credential("pkg", &url, CLIENT, &secret),
        integration("crm-sync", "pkg", "team = \"crm-ops\"")
    );
    let agent = RunningAgent::start(load_config(dir.path(), &text), AgentOptions::default())
        .await
        .unwrap();
    let message = tokio::time::timeout(DEADLINE, async {
        loop {
            if let Some(m) = inbox.lock().unwrap().first().cloned() {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the fail message arrives");
    let text = message["text"].as_str().unwrap();
    assert!(
        text.contains("&lt;!channel&gt; &lt;https://evil.example/|click here&gt; &amp; more"),
        "{text}"
    );
    assert!(
        !text.contains("<!channel>") && !text.contains("<https://"),
        "{text}"
    );
    assert!(text.contains(PWNED_SHOWN), "{text}");
    assert_clean("slack text", &message.to_string(), &[SENTINEL]);
    agent.stop().await;
    receiver.abort();
    server.abort();
}

/// A followed log line is outside text too: its error text (escapes, a bidi override, the client secret a
/// middleware logged from a request body) is stored and shown escaped and redacted.
#[tokio::test]
async fn log_line_fields_are_escaped_and_redacted_before_they_are_stored() {
    use authwatch::engine::{self, EngineOptions};
    use authwatch::store::Store;
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "s", SENTINEL);
    let log = dir.path().join("mw.jsonl");
    std::fs::write(&log, "").unwrap();
    let text = format!(
        "[settings]\nprobe_interval = \"1h\"\n\n{}{}[[log_source]]\nname = \"mw\"\npath = \"{}\"\n",
        sfmc_credential("pkg", &sim.base_url(), CLIENT, &secret),
        integration("crm-sync", "pkg", ""),
        log.display()
    );
    let db = dir.path().join("h.db");
    let running = engine::spawn(
        load_config(dir.path(), &text),
        EngineOptions {
            store: Some(Store::open(&db).unwrap()),
            retention: Duration::from_secs(86_400),
            ..Default::default()
        },
    )
    .unwrap();
    let mut watch = running.handle.watch();
    // The first probe resolves the secret: from then on it is a known value.
    wait(&mut watch, |s| {
        s.integration("crm-sync")
            .is_some_and(|i| i.health.status == Status::Ok)
    })
    .await;
    let at = (chrono::Utc::now() - chrono::Duration::minutes(1)).format("%Y-%m-%dT%H:%M:%SZ");
    let line = serde_json::json!({
        "time": at.to_string(),
        "integration": "crm-sync",
        "status": 401,
        "error": format!("{PWNED} body client_secret={SENTINEL} \u{202e}gnp.exe"),
    });
    std::fs::write(&log, format!("{line}\n")).unwrap();
    let snap = wait(&mut watch, |s| s.auth_log.iter().any(|e| e.source == "mw")).await;
    let event = snap.auth_log.iter().find(|e| e.source == "mw").unwrap();
    assert_eq!(
        event.error,
        format!("{PWNED_SHOWN} body client_secret=[redacted] \\u{{202e}}gnp.exe")
    );
    running
        .handle
        .send(engine::Command::Shutdown)
        .await
        .unwrap();
    running.task.await.unwrap();
    assert_db_clean(&db, &[SENTINEL]);
    sim.shutdown().await;
}

async fn wait(
    watch: &mut tokio::sync::watch::Receiver<Arc<authwatch::engine::Snapshot>>,
    pred: impl Fn(&authwatch::engine::Snapshot) -> bool,
) -> Arc<authwatch::engine::Snapshot> {
    tokio::time::timeout(DEADLINE, async {
        loop {
            let s = watch.borrow_and_update().clone();
            if pred(&s) {
                return s;
            }
            watch.changed().await.unwrap();
        }
    })
    .await
    .expect("the engine gets there")
}
