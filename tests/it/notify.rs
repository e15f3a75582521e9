//! Notifications into a local test receiver: one fail and one resolved per incident, retries after receiver
//! errors, every send recorded, maintenance mutes.

use crate::common::*;
use authwatch::agent::{AgentOptions, RunningAgent};
use authwatch::engine::Command;
use authwatch::store::Store;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CLIENT: &str = "5c9e1b7aa0d44f3e8a2b91c7";

#[derive(Default)]
struct Receiver {
    /// Requests still to refuse with 500.
    fail_next: usize,
    refused: usize,
    accepted: Vec<serde_json::Value>,
}

async fn start_receiver(fail_next: usize) -> (String, Arc<Mutex<Receiver>>) {
    let state = Arc::new(Mutex::new(Receiver {
        fail_next,
        ..Default::default()
    }));
    let app =
        axum::Router::new()
            .route(
                "/hook/{key}",
                axum::routing::post(
                    |State(st): State<Arc<Mutex<Receiver>>>,
                     Json(body): Json<serde_json::Value>| async move {
                        let mut r = st.lock().unwrap();
                        if r.fail_next > 0 {
                            r.fail_next -= 1;
                            r.refused += 1;
                            return StatusCode::INTERNAL_SERVER_ERROR;
                        }
                        r.accepted.push(body);
                        StatusCode::OK
                    },
                ),
            )
            .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook/S3CRETKEY"), state)
}

fn config(dir: &Path, auth_url: &str, secret: &Path, hook_file: &Path, extra: &str) -> String {
    format!(
        "[settings]\nprobe_interval = \"1h\"\nconfirm_retry = \"20ms\"\nfailure_threshold = 2\n\n\
         [[notify]]\nname = \"crm-ops-hook\"\nkind = \"webhook\"\nurl = {{ file = \"{}\" }}\nteams = [\"crm-ops\"]\n\n\
         {extra}{}{}{}",
        hook_file.display(),
        sfmc_credential("pkg", auth_url, CLIENT, secret),
        integration("crm-sync", "pkg", "team = \"crm-ops\""),
        integration("web-shop", "pkg", "team = \"web\""),
    )
    .replace("{dir}", &dir.display().to_string())
}

/// The agent's `GET /metrics` once it has a line starting with `series` (counters are bumped as outcomes are
/// recorded, just after the receiver answered).
async fn metric_line(base: &str, series: &str) -> String {
    let http = reqwest::Client::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let text = http
                .get(format!("{base}/metrics"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            if let Some(line) = text.lines().find(|l| l.starts_with(series)) {
                return line.to_string();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {series} in /metrics"))
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(20), async {
        while !f() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

#[tokio::test]
async fn one_fail_and_one_resolved_per_incident_with_retries_and_records() {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", "wrong-secret");
    // The receiver refuses the first two requests: the notifier retries.
    let (url, rx) = start_receiver(2).await;
    let hook = write_secret(dir.path(), "hook", &url);
    let db = dir.path().join("authwatch.db");
    let cfg = load_config(
        dir.path(),
        &config(dir.path(), &sim.base_url(), &secret, &hook, ""),
    );
    let agent = RunningAgent::start(
        cfg,
        AgentOptions {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            db: Some(db.clone()),
        },
    )
    .await
    .unwrap();

    until("the fail notification", || {
        !rx.lock().unwrap().accepted.is_empty()
    })
    .await;
    // Further failing probes (forced) are the same incident: no new message (the records at the end hold every
    // message the notifier planned, so a second fail would show there).
    let mut events = agent.engine.events();
    agent
        .engine
        .send(Command::ProbeNow {
            integration: "crm-sync".into(),
        })
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(authwatch::engine::EngineEvent::ProbeFinished { integration, .. }) =
                events.recv().await
                && integration == "crm-sync"
            {
                break;
            }
        }
    })
    .await
    .expect("the forced probe finishes");
    {
        let r = rx.lock().unwrap();
        assert_eq!(r.refused, 2);
        assert_eq!(r.accepted.len(), 1, "{:#?}", r.accepted);
        let m = &r.accepted[0];
        assert_eq!(m["event"], "fail");
        assert_eq!(m["integration"], "crm-sync");
        assert_eq!(m["team"], "crm-ops");
        assert!(m["text"].as_str().unwrap().starts_with("FAIL crm-sync"));
    }
    // Counted once, as sent (the refused attempts were retries, not outcomes).
    let url = agent.url();
    assert_eq!(
        metric_line(
            &url,
            r#"authwatch_notifications_total{receiver="crm-ops-hook",event="fail",outcome="sent"}"#
        )
        .await
        .rsplit(' ')
        .next(),
        Some("1")
    );

    // Fixed: one resolved, nothing for web-shop (another team's receiver filter).
    write_secret(dir.path(), "secret", SENTINEL);
    agent.engine.send(Command::ProbeAll).await.unwrap();
    until("the resolved notification", || {
        rx.lock().unwrap().accepted.len() >= 2
    })
    .await;
    {
        let r = rx.lock().unwrap();
        assert_eq!(r.accepted.len(), 2, "{:#?}", r.accepted);
        assert_eq!(r.accepted[1]["event"], "resolved");
        assert_eq!(r.accepted[1]["incident_key"], r.accepted[0]["incident_key"]);
        assert!(r.accepted.iter().all(|m| m["integration"] == "crm-sync"));
    }
    agent.stop().await;

    let records = Store::open(&db).unwrap().notifications(None).unwrap();
    let sent: Vec<(&str, &str, u32)> = records
        .iter()
        .map(|r| (r.event.as_str(), r.outcome.as_str(), r.attempts))
        .collect();
    assert_eq!(sent, [("fail", "sent", 3), ("resolved", "sent", 1)]);
    // The webhook URL is a credential: never recorded.
    for r in &records {
        assert!(!format!("{r:?}").contains("S3CRETKEY"));
    }
}

#[tokio::test]
async fn maintenance_windows_mute_notifications() {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", "wrong-secret");
    let (url, rx) = start_receiver(0).await;
    let hook = write_secret(dir.path(), "hook", &url);
    let db = dir.path().join("authwatch.db");
    let start = (chrono::Utc::now() - chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ");
    let window = format!(
        "[[maintenance]]\nname = \"SFMC release\"\nstart = {start}\nduration = \"2h\"\nteams = [\"crm-ops\"]\n\n"
    );
    let cfg = load_config(
        dir.path(),
        &config(dir.path(), &sim.base_url(), &secret, &hook, &window),
    );
    let agent = RunningAgent::start(
        cfg,
        AgentOptions {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            db: Some(db.clone()),
        },
    )
    .await
    .unwrap();
    let mut snaps = agent.engine.watch();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if snaps
                .borrow_and_update()
                .integration("crm-sync")
                .is_some_and(|i| i.health.status == authwatch::model::Status::Fail)
            {
                break;
            }
            snaps.changed().await.unwrap();
        }
    })
    .await
    .expect("crm-sync fails");
    write_secret(dir.path(), "secret", SENTINEL);
    agent.engine.send(Command::ProbeAll).await.unwrap();
    // The resolution is recorded (muted) like every planned message.
    until("the muted resolution", || {
        Store::open(&db)
            .and_then(|s| s.notifications(None))
            .is_ok_and(|r| r.iter().any(|n| n.event == "resolved"))
    })
    .await;
    let url = agent.url();
    for event in ["fail", "resolved"] {
        let series = format!(
            r#"authwatch_notifications_total{{receiver="crm-ops-hook",event="{event}",outcome="muted"}}"#
        );
        assert!(metric_line(&url, &series).await.ends_with(" 1"), "{series}");
    }
    agent.stop().await;
    assert!(rx.lock().unwrap().accepted.is_empty());
    let records = Store::open(&db).unwrap().notifications(None).unwrap();
    let muted: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r.event.as_str(), r.outcome.as_str()))
        .collect();
    assert_eq!(muted, [("fail", "muted"), ("resolved", "muted")]);
    assert!(
        records[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("SFMC release")
    );
}
