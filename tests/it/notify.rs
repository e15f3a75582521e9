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
            ..Default::default()
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
            ..Default::default()
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

const ROUTING_KEY: &str = "R0UT1NGKEY0123456789abcdef012345";

/// PagerDuty Events API v2's documented request shape; a violation is answered 400 like PagerDuty does.
fn pagerduty_violation(v: &serde_json::Value) -> Option<String> {
    let s = |p: &str| v.pointer(p).and_then(|x| x.as_str());
    if s("/routing_key").is_none_or(|k| k.len() != 32) {
        return Some("routing_key must be the 32-character integration key".into());
    }
    let action = s("/event_action")?;
    if !["trigger", "acknowledge", "resolve"].contains(&action) {
        return Some(format!("event_action {action}"));
    }
    if s("/dedup_key").is_none_or(|k| k.is_empty() || k.len() > 255) {
        return Some("dedup_key".into());
    }
    if action == "trigger" {
        if s("/payload/summary").is_none_or(|x| x.is_empty() || x.chars().count() > 1024) {
            return Some("payload.summary".into());
        }
        if s("/payload/source").is_none_or(str::is_empty) {
            return Some("payload.source".into());
        }
        if !["critical", "error", "warning", "info"].contains(&s("/payload/severity").unwrap_or(""))
        {
            return Some("payload.severity".into());
        }
        if let Some(t) = s("/payload/timestamp")
            && chrono::DateTime::parse_from_rfc3339(t).is_err()
        {
            return Some("payload.timestamp".into());
        }
        if !v
            .pointer("/payload/custom_details")
            .is_some_and(|d| d.is_object())
        {
            return Some("payload.custom_details".into());
        }
    }
    None
}

/// A Teams Workflows webhook's message with an Adaptive Card attachment.
fn teams_violation(v: &serde_json::Value) -> Option<String> {
    if v["type"] != "message" {
        return Some("type must be message".into());
    }
    let att = v["attachments"].as_array().filter(|a| a.len() == 1)?;
    if att[0]["contentType"] != "application/vnd.microsoft.card.adaptive" {
        return Some("contentType".into());
    }
    let card = &att[0]["content"];
    if card["type"] != "AdaptiveCard" || !card["version"].is_string() {
        return Some("AdaptiveCard type/version".into());
    }
    let body = card["body"].as_array()?;
    for el in body {
        match el["type"].as_str() {
            Some("TextBlock") if el["text"].is_string() => {}
            Some("FactSet")
                if el["facts"].as_array().is_some_and(|f| {
                    f.iter()
                        .all(|x| x["title"].is_string() && x["value"].is_string())
                }) => {}
            _ => return Some(format!("card element {el}")),
        }
    }
    None
}

type Inbox = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

/// One loopback server with PagerDuty's `/v2/enqueue` and a Teams workflow path, each checking its schema.
async fn start_oncall_receivers() -> (String, Inbox) {
    let inbox: Inbox = Arc::default();
    let check = |kind: &'static str, f: fn(&serde_json::Value) -> Option<String>| {
        move |State(st): State<Inbox>, Json(body): Json<serde_json::Value>| async move {
            if let Some(why) = f(&body) {
                st.lock()
                    .unwrap()
                    .push((format!("{kind}-invalid: {why}"), body));
                return (
                    StatusCode::BAD_REQUEST,
                    Json(serde_json::json!({"status": "invalid event"})),
                );
            }
            st.lock().unwrap().push((kind.to_string(), body.clone()));
            (
                StatusCode::ACCEPTED,
                Json(
                    serde_json::json!({"status": "success", "message": "Event processed", "dedup_key": body["dedup_key"]}),
                ),
            )
        }
    };
    let app = axum::Router::new()
        .route(
            "/v2/enqueue",
            axum::routing::post(check("pagerduty", pagerduty_violation)),
        )
        .route(
            "/workflows/abc/triggers/manual/paths/invoke",
            axum::routing::post(check("teams", teams_violation)),
        )
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), inbox)
}

#[tokio::test]
async fn pagerduty_and_teams_receive_their_documented_payloads() {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", "wrong-secret");
    let (base, inbox) = start_oncall_receivers().await;
    let key = write_secret(dir.path(), "pd-key", ROUTING_KEY);
    let teams_url = write_secret(
        dir.path(),
        "teams-url",
        &format!("{base}/workflows/abc/triggers/manual/paths/invoke"),
    );
    let text = format!(
        "[settings]\nprobe_interval = \"1h\"\nconfirm_retry = \"20ms\"\nfailure_threshold = 1\nwarn_before = \"10d\"\n\n\
         [[notify]]\nname = \"pd\"\nkind = \"pagerduty\"\nurl = \"{base}/v2/enqueue\"\nrouting_key = {{ file = \"{}\" }}\n\
         events = [\"fail\", \"resolved\"]\n\n\
         [[notify]]\nname = \"teams\"\nkind = \"teams\"\nurl = {{ file = \"{}\" }}\nmin_severity = \"warn\"\n\n{}owner = \"jane.doe@example.com\"\nsecret_expires = \"{}\"\n\n{}",
        key.display(),
        teams_url.display(),
        sfmc_credential("pkg", &sim.base_url(), CLIENT, &secret),
        (chrono::Utc::now() + chrono::Duration::days(20)).format("%Y-%m-%d"),
        integration(
            "crm-sync",
            "pkg",
            "team = \"crm-ops\"\naccount_id = \"5100001\""
        ),
    );
    let cfg = load_config(dir.path(), &text);
    let agent = RunningAgent::start(cfg, AgentOptions::default())
        .await
        .unwrap();
    let got = |kind: &str, pred: &dyn Fn(&serde_json::Value) -> bool| {
        inbox
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, v)| k == kind && pred(v))
            .count()
    };

    // Failing: PagerDuty triggers; Teams gets a card for the failure and one for the 20-day expiry reminder
    // (PagerDuty asked for fail and resolved only).
    until("trigger and cards", || {
        got("pagerduty", &|v| v["event_action"] == "trigger") == 1 && got("teams", &|_| true) == 2
    })
    .await;
    let trigger = inbox
        .lock()
        .unwrap()
        .iter()
        .find(|(k, _)| k == "pagerduty")
        .unwrap()
        .1
        .clone();
    let dedup = trigger["dedup_key"].as_str().unwrap().to_string();
    assert_eq!(trigger["payload"]["severity"], "critical");
    let d = &trigger["payload"]["custom_details"];
    assert_eq!(d["team"], "crm-ops");
    assert_eq!(d["owner"], "jane.doe@example.com");
    assert_eq!(d["mid"], "5100001");
    assert!(
        d["reason"].as_str().unwrap().contains("invalid_client"),
        "{d}"
    );
    assert!(!d["runbook"].as_str().unwrap().is_empty());
    assert!(
        trigger["payload"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("FAIL crm-sync")
    );
    let cards: Vec<String> = inbox
        .lock()
        .unwrap()
        .iter()
        .filter(|(k, _)| k == "teams")
        .map(|(_, v)| {
            v["attachments"][0]["content"]["body"][0]["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(cards.contains(&"FAIL crm-sync".to_string()), "{cards:?}");
    assert!(
        cards.contains(&"SECRET EXPIRY pkg".to_string()),
        "{cards:?}"
    );

    // Acknowledged in authwatch: PagerDuty acknowledges the same incident.
    agent
        .engine
        .send(Command::Ack {
            integration: "crm-sync".into(),
            actor: "oncall".into(),
        })
        .await
        .unwrap();
    until("acknowledge", || {
        got("pagerduty", &|v| v["event_action"] == "acknowledge") == 1
    })
    .await;

    // Fixed: resolve with the same dedup_key, and a resolved card.
    write_secret(dir.path(), "secret", SENTINEL);
    agent.engine.send(Command::ProbeAll).await.unwrap();
    until("resolve", || {
        got("pagerduty", &|v| v["event_action"] == "resolve") == 1 && got("teams", &|_| true) == 3
    })
    .await;
    agent.stop().await;
    let all = inbox.lock().unwrap().clone();
    assert!(all.iter().all(|(k, _)| !k.contains("invalid")), "{all:#?}");
    let pd: Vec<(&str, &str)> = all
        .iter()
        .filter(|(k, _)| k == "pagerduty")
        .map(|(_, v)| {
            (
                v["event_action"].as_str().unwrap(),
                v["dedup_key"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        pd,
        [
            ("trigger", dedup.as_str()),
            ("acknowledge", dedup.as_str()),
            ("resolve", dedup.as_str())
        ]
    );
    assert!(!format!("{all:?}").contains(SENTINEL));
}

/// Requests one server saw: path and Referer header of each.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A server recording every request; answers `answer(path)`.
async fn recording_server(
    answer: fn(&str, &str) -> axum::response::Response,
    other: String,
) -> (std::net::SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let log = log.clone();
        let other = other.clone();
        async move {
            let path = req.uri().path().to_string();
            let referer = req
                .headers()
                .get("referer")
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            log.lock().unwrap().push((path.clone(), referer));
            answer(&path, &other)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

/// `/hook/<status>/<key>` answers that 3xx with a Location on `other`.
fn redirect_by_path(path: &str, other: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let status = path
        .split('/')
        .nth(2)
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::NOT_FOUND);
    (
        status,
        [(axum::http::header::LOCATION, format!("{other}/landed"))],
    )
        .into_response()
}

fn accept_all(_: &str, _: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    StatusCode::OK.into_response()
}

/// A webhook receiver answering 301/302/307/308 towards another host: nothing is followed (the other host sees
/// no request), each send fails at once and is recorded with the status and the target host only, and no
/// request carries a Referer (which would hold the secret webhook URL).
#[tokio::test]
async fn webhook_redirects_to_another_host_are_not_followed_and_recorded_by_host() {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", "wrong-secret");
    let (other_addr, landed) = recording_server(accept_all, String::new()).await;
    let (hook_addr, knocked) = recording_server(
        redirect_by_path,
        format!("http://localhost:{}", other_addr.port()),
    )
    .await;
    let statuses = [301, 302, 307, 308];
    let mut receivers = String::new();
    for status in statuses {
        let file = write_secret(
            dir.path(),
            &format!("hook-{status}"),
            &format!("http://{hook_addr}/hook/{status}/S3CRETKEY"),
        );
        receivers += &format!(
            "[[notify]]\nname = \"hook-{status}\"\nkind = \"webhook\"\nurl = {{ file = \"{}\" }}\nteams = [\"crm-ops\"]\n\n",
            file.display()
        );
    }
    let text = format!(
        "[settings]\nprobe_interval = \"1h\"\nconfirm_retry = \"20ms\"\nfailure_threshold = 2\n\n{receivers}{}{}",
        sfmc_credential("pkg", &sim.base_url(), CLIENT, &secret),
        integration("crm-sync", "pkg", "team = \"crm-ops\""),
    );
    let db = dir.path().join("authwatch.db");
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
    until("a failed send recorded per receiver", || {
        Store::open(&db)
            .and_then(|s| s.notifications(None))
            .is_ok_and(|r| r.iter().filter(|n| n.outcome == "failed").count() == statuses.len())
    })
    .await;
    agent.stop().await;
    let records = Store::open(&db).unwrap().notifications(None).unwrap();
    for status in statuses {
        let r = records
            .iter()
            .find(|r| r.receiver == format!("hook-{status}"))
            .unwrap_or_else(|| panic!("no record for hook-{status}: {records:#?}"));
        assert_eq!((r.outcome.as_str(), r.attempts), ("failed", 1), "{r:#?}");
        let detail = r.detail.as_deref().unwrap_or("");
        assert!(
            detail.contains(&status.to_string())
                && detail.contains("a redirect to localhost (not followed)"),
            "{detail}"
        );
        assert!(!format!("{r:?}").contains("S3CRETKEY"), "{r:#?}");
        assert!(!format!("{r:?}").contains("/landed"), "{r:#?}");
    }
    assert!(
        landed.lock().unwrap().is_empty(),
        "the other host was reached: {:?}",
        landed.lock().unwrap()
    );
    let knocked = knocked.lock().unwrap();
    assert_eq!(knocked.len(), statuses.len(), "{knocked:?}");
    assert!(
        knocked.iter().all(|(_, referer)| referer.is_none()),
        "{knocked:?}"
    );
}
