//! The agent on loopback: token roles, SSE, the `--connect` client (snapshots, actions, reconnect).

use crate::common::*;
use authwatch::agent::{AgentOptions, RunningAgent, client};
use authwatch::config::Role;
use authwatch::engine::{Command, Snapshot};
use authwatch::model::Status;
use secrecy::SecretString;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const CLIENT: &str = "5c9e1b7aa0d44f3e8a2b91c7";
const VIEWER: &str = "viewer-token-5f0c1e9a7b3d";
const OPERATOR: &str = "operator-token-8d2a6c4e1f7b";
const DEADLINE: Duration = Duration::from_secs(20);

fn config_text(dir: &Path, auth_url: &str, secret_file: &Path, extra: &str) -> String {
    let viewer = write_secret(dir, "viewer.token", VIEWER);
    let operator = write_secret(dir, "operator.token", OPERATOR);
    format!(
        "[settings]\nprobe_interval = \"1h\"\nconfirm_retry = \"20ms\"\nfailure_threshold = 1\n\n\
         [agent]\nlisten = \"127.0.0.1:0\"\n\n\
         [[agent.token]]\nname = \"war-room\"\nrole = \"viewer\"\ntoken = {{ file = \"{}\" }}\n\n\
         [[agent.token]]\nname = \"oncall\"\nrole = \"operator\"\ntoken = {{ file = \"{}\" }}\n\n{}{}{extra}",
        viewer.display(),
        operator.display(),
        sfmc_credential("pkg", auth_url, CLIENT, secret_file),
        integration(
            "crm-sync",
            "pkg",
            "team = \"crm-ops\"\nenvironment = \"prod\""
        ),
    )
}

async fn wait_snapshot(
    rx: &mut tokio::sync::watch::Receiver<Arc<Snapshot>>,
    what: &str,
    mut pred: impl FnMut(&Snapshot) -> bool,
) -> Arc<Snapshot> {
    tokio::time::timeout(DEADLINE, async {
        loop {
            let s = rx.borrow_and_update().clone();
            if pred(&s) {
                return s;
            }
            rx.changed().await.expect("snapshots go on");
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn status_of(s: &Snapshot, name: &str) -> Option<Status> {
    s.integration(name).map(|i| i.health.status)
}

#[tokio::test]
async fn tokens_decide_who_may_read_and_act() {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", SENTINEL);
    let config = load_config(
        dir.path(),
        &config_text(dir.path(), &sim.base_url(), &secret, ""),
    );
    let agent = RunningAgent::start(config, AgentOptions::default())
        .await
        .expect("agent starts");
    let base = agent.url();
    let http = reqwest::Client::new();
    let get = |path: &str, token: Option<&str>| {
        let mut rb = http.get(format!("{base}{path}"));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        rb.send()
    };
    assert_eq!(get("/healthz", None).await.unwrap().status(), 200);
    for path in [
        "/api/v1/state",
        "/api/v1/snapshot",
        "/metrics",
        "/api/v1/whoami",
    ] {
        assert_eq!(get(path, None).await.unwrap().status(), 401, "{path}");
        assert_eq!(
            get(path, Some("wrong-token-wrong-token"))
                .await
                .unwrap()
                .status(),
            401,
            "{path}"
        );
        assert_eq!(
            get(path, Some(VIEWER)).await.unwrap().status(),
            200,
            "{path}"
        );
    }
    let state: serde_json::Value = get("/api/v1/state", Some(VIEWER))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["integrations"][0]["name"], "crm-sync");
    assert!(state["summary"].is_object());

    let post = |path: &str, token: Option<&str>| {
        let mut rb = http.post(format!("{base}{path}"));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        rb.send()
    };
    for path in [
        "/api/v1/probe",
        "/api/v1/probe/crm-sync",
        "/api/v1/ack/crm-sync",
        "/api/v1/ingest",
    ] {
        assert_eq!(post(path, None).await.unwrap().status(), 401, "{path}");
        assert_eq!(
            post(path, Some(VIEWER)).await.unwrap().status(),
            403,
            "{path}"
        );
    }
    assert_eq!(
        post("/api/v1/probe", Some(OPERATOR))
            .await
            .unwrap()
            .status(),
        202
    );
    let r = post("/api/v1/probe/crm-sync", Some(OPERATOR))
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["by"], "oncall");
    assert_eq!(
        post("/api/v1/probe/nope", Some(OPERATOR))
            .await
            .unwrap()
            .status(),
        404
    );

    // Ingest: JSON lines from middleware become 401/403 events of the matching integration.
    let lines = format!(
        "{{\"status\":401,\"client_id\":\"{CLIENT}\",\"error\":\"Not Authorized\"}}\n{{\"status\":200}}\nnot json\n{{\"status\":403,\"integration\":\"crm-sync\"}}\n"
    );
    let r = http
        .post(format!("{base}/api/v1/ingest?source=middleware"))
        .bearer_auth(OPERATOR)
        .body(lines)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let res: serde_json::Value = r.json().await.unwrap();
    assert_eq!(res["events"], 2);
    assert_eq!(res["other"], 1);
    assert_eq!(res["malformed"], 1);
    let mut rx = agent.engine.watch();
    wait_snapshot(&mut rx, "ingested events", |s| {
        s.auth_log
            .iter()
            .filter(|e| e.source == "middleware")
            .count()
            == 2
    })
    .await;

    let metrics = get("/metrics", Some(VIEWER))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "authwatch_integration_status{",
        "authwatch_probes_total{",
        "authwatch_token_request_duration_seconds_bucket{",
        "authwatch_auth_events_total{",
    ] {
        assert!(metrics.contains(name), "{name} missing from:\n{metrics}");
    }
    assert!(
        metrics.contains("code=\"401\",source=\"middleware\""),
        "{metrics}"
    );
    assert!(metrics.contains("team=\"crm-ops\""), "{metrics}");
    // Nothing secret in any answer.
    for text in [metrics, state.to_string()] {
        assert!(!text.contains(SENTINEL) && !text.contains(VIEWER) && !text.contains(OPERATOR));
    }
    agent.stop().await;
}

#[tokio::test]
async fn listening_beyond_loopback_without_tokens_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", SENTINEL);
    let text = format!(
        "[agent]\nlisten = \"0.0.0.0:0\"\n\n{}{}",
        sfmc_credential("pkg", "http://127.0.0.1:9/", CLIENT, &secret),
        integration("crm-sync", "pkg", "")
    );
    let config = load_config(dir.path(), &text);
    let err = RunningAgent::start(config, AgentOptions::default())
        .await
        .err()
        .expect("refused");
    assert!(err.contains("without any [[agent.token]]"), "{err}");
}

#[tokio::test]
async fn the_console_client_follows_changes_and_acts_through_the_api() {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    // A wrong secret: the first probe fails.
    let secret = write_secret(dir.path(), "secret", "wrong-secret");
    let config = load_config(
        dir.path(),
        &config_text(dir.path(), &sim.base_url(), &secret, ""),
    );
    let agent = RunningAgent::start(config, AgentOptions::default())
        .await
        .expect("agent starts");
    let url: url::Url = agent.url().parse().unwrap();

    let viewer = client::connect(url.clone(), Some(SecretString::from(VIEWER.to_string())))
        .await
        .expect("viewer connects");
    assert_eq!(viewer.role, Role::Viewer);
    assert_eq!(viewer.name, "war-room");
    let mut rx = viewer.handle.watch();
    let snap = wait_snapshot(&mut rx, "FAIL over SSE", |s| {
        status_of(s, "crm-sync") == Some(Status::Fail)
    })
    .await;
    assert!(snap.connection.is_none());

    // An operator console's probe command reaches the agent; the fix shows up on the viewer's screen.
    let operator = client::connect(url.clone(), Some(SecretString::from(OPERATOR.to_string())))
        .await
        .expect("operator connects");
    assert_eq!(operator.role, Role::Operator);
    write_secret(dir.path(), "secret", SENTINEL);
    operator
        .handle
        .send(Command::ProbeNow {
            integration: "crm-sync".into(),
        })
        .await
        .unwrap();
    wait_snapshot(&mut rx, "OK after the forced probe", |s| {
        status_of(s, "crm-sync") == Some(Status::Ok)
    })
    .await;

    // A wrong token fails at once, with a clear message.
    let err = client::connect(
        url,
        Some(SecretString::from("not-a-token-at-all".to_string())),
    )
    .await
    .err()
    .expect("refused");
    assert!(err.to_string().contains("401"), "{err}");
    agent.stop().await;
}

#[tokio::test]
async fn a_lost_agent_shows_stale_data_and_the_client_reconnects() {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", SENTINEL);
    let text = config_text(dir.path(), &sim.base_url(), &secret, "");
    let agent = RunningAgent::start(load_config(dir.path(), &text), AgentOptions::default())
        .await
        .expect("agent starts");
    let addr = agent.addr;
    let conn = client::connect(
        agent.url().parse().unwrap(),
        Some(SecretString::from(VIEWER.to_string())),
    )
    .await
    .unwrap();
    let mut rx = conn.handle.watch();
    wait_snapshot(&mut rx, "OK", |s| {
        status_of(s, "crm-sync") == Some(Status::Ok)
    })
    .await;

    agent.stop().await;
    let stale = wait_snapshot(&mut rx, "the stale notice", |s| s.connection.is_some()).await;
    assert!(
        stale
            .connection
            .as_deref()
            .unwrap()
            .starts_with("NO AGENT since")
    );
    // The last known state stays on screen.
    assert_eq!(status_of(&stale, "crm-sync"), Some(Status::Ok));

    // The agent comes back on the same address: the client reconnects by itself.
    let options = AgentOptions {
        listen: Some(addr),
        ..Default::default()
    };
    let agent = RunningAgent::start(load_config(dir.path(), &text), options)
        .await
        .expect("agent restarts");
    wait_snapshot(&mut rx, "reconnected", |s| {
        s.connection.is_none() && s.version > 0 && status_of(s, "crm-sync") == Some(Status::Ok)
    })
    .await;
    agent.stop().await;
}

#[tokio::test]
async fn sse_stream_starts_with_a_snapshot_and_delivers_status_changes() {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", "wrong-secret");
    let config = load_config(
        dir.path(),
        &config_text(dir.path(), &sim.base_url(), &secret, ""),
    );
    let agent = RunningAgent::start(config, AgentOptions::default())
        .await
        .expect("agent starts");
    // Two streams: the default one (changes only), and one that also wants every probe.
    let open = |query: &'static str| {
        reqwest::Client::new()
            .get(format!("{}/api/v1/events{query}", agent.url()))
            .bearer_auth(VIEWER)
            .send()
    };
    let mut changes = open("").await.unwrap();
    let mut probes = open("?probes=true").await.unwrap();
    assert_eq!(changes.status(), 200);
    assert_eq!(probes.status(), 200);
    let read_until = async |resp: &mut reqwest::Response, what: &[&str]| {
        let mut text = String::new();
        tokio::time::timeout(DEADLINE, async {
            while !what.iter().all(|w| text.contains(w)) {
                let chunk = resp.chunk().await.unwrap().expect("stream goes on");
                text.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {what:?} in:\n{text}"));
        assert!(text.starts_with("event: snapshot\n"), "{text}");
        assert!(!text.contains(SENTINEL) && !text.contains("wrong-secret"));
        text
    };
    let text = read_until(
        &mut changes,
        &[
            "event: engine\n",
            "\"type\":\"status_changed\"",
            "\"to\":\"fail\"",
        ],
    )
    .await;
    // The failure took probes (first try and confirmation), not streamed by default.
    assert!(!text.contains("probe_finished"), "{text}");
    agent.engine.send(Command::ProbeAll).await.unwrap();
    read_until(&mut probes, &["\"type\":\"probe_finished\""]).await;
    agent.stop().await;
}

/// `/readyz` waits for the first sweep (here held back by a secret command that waits for a gate file),
/// `/healthz` and `/readyz` turn 503 when the engine stops; `/api/v1/status.txt` is the viewer's plain text.
#[tokio::test]
async fn readiness_liveness_and_the_plain_status() {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", SENTINEL);
    let gate = dir.path().join("gate");
    let script = format!(
        "while [ ! -e '{}' ]; do sleep 0.02; done; cat '{}'",
        gate.display(),
        secret.display()
    );
    let text = config_text(dir.path(), &sim.base_url(), &secret, "").replace(
        &format!("client_secret = {{ file = \"{}\" }}", secret.display()),
        &format!("client_secret = {{ command = [\"sh\", \"-c\", {script:?}] }}"),
    );
    assert!(text.contains("command = "), "{text}");
    let text = text.replace(
        "[settings]\n",
        "[settings]\nsecret_command_timeout = \"60s\"\n",
    );
    let config = load_config(dir.path(), &text);
    let db = dir.path().join("history.db");
    let agent = RunningAgent::start(
        config,
        AgentOptions {
            db: Some(db),
            ..Default::default()
        },
    )
    .await
    .expect("agent starts");
    let base = agent.url();
    let http = reqwest::Client::new();
    let get = |path: &str, token: Option<&str>| {
        let mut rb = http.get(format!("{base}{path}"));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        rb.send()
    };

    // The probe is waiting on its secret: alive, not ready.
    let r = get("/readyz", None).await.unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["ready"], false);
    let sweep = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "sweep")
        .unwrap()
        .clone();
    assert!(
        sweep["detail"]
            .as_str()
            .unwrap()
            .contains("first sweep pending for 1 of 1"),
        "{body}"
    );
    assert_eq!(get("/healthz", None).await.unwrap().status(), 200);

    std::fs::write(&gate, "").unwrap();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let r = get("/readyz", None).await.unwrap();
        if r.status() == 200 {
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["ready"], true);
            assert!(
                body["checks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|c| c["ok"] == true),
                "{body}"
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // status.txt: viewer role, one summary line when all is well.
    assert_eq!(get("/api/v1/status.txt", None).await.unwrap().status(), 401);
    let r = get("/api/v1/status.txt", Some(VIEWER)).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(
        r.text().await.unwrap(),
        "OK 0 fail, 0 warn, 0 unknown, 1 ok\n"
    );

    // A wrong secret, probed now: one line for the failing integration, then the summary.
    std::fs::write(&secret, "a-wrong-secret").unwrap();
    let mut rx = agent.engine.watch();
    http.post(format!("{base}/api/v1/probe/crm-sync"))
        .bearer_auth(OPERATOR)
        .send()
        .await
        .unwrap();
    wait_snapshot(&mut rx, "FAIL", |s| {
        status_of(s, "crm-sync") == Some(Status::Fail)
    })
    .await;
    let text = get("/api/v1/status.txt", Some(VIEWER))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("FAIL crm-sync: token request rejected: invalid_client (401)"),
        "{text}"
    );
    assert_eq!(lines[1], "FAIL 1 fail, 0 warn, 0 unknown, 0 ok");
    assert!(!text.contains(SENTINEL));

    // The engine stops (as when its loop dies): neither alive nor ready.
    agent.engine.send(Command::Shutdown).await.unwrap();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while agent.engine.is_running() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "engine never stopped"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = get("/healthz", None).await.unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "unhealthy", "{body}");
    assert_eq!(get("/readyz", None).await.unwrap().status(), 503);
    agent.stop().await;
}

/// `--connect A --connect B`: one console over two real agents, integrations named by agent, actions routed to
/// the owning agent, and the header naming the agent that went away while the other stays live.
#[tokio::test]
async fn several_agents_merge_into_one_console() {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let mut agents = Vec::new();
    let mut dirs = Vec::new();
    for secret in [SENTINEL, "a-wrong-secret"] {
        let dir = tempfile::tempdir().unwrap();
        let file = write_secret(dir.path(), "secret", secret);
        let text = config_text(dir.path(), &sim.base_url(), &file, "");
        agents.push(
            RunningAgent::start(load_config(dir.path(), &text), AgentOptions::default())
                .await
                .expect("agent starts"),
        );
        dirs.push(dir);
    }
    let urls: Vec<url::Url> = agents.iter().map(|a| a.url().parse().unwrap()).collect();
    let labels = authwatch::agent::merge::labels(&urls);
    assert_eq!(labels[0], format!("127.0.0.1:{}", agents[0].addr.port()));
    let mut conns = Vec::new();
    for u in &urls {
        conns.push(
            client::connect(u.clone(), Some(SecretString::from(OPERATOR.to_string())))
                .await
                .unwrap(),
        );
    }
    let conn = authwatch::agent::merge::combine(labels.clone(), conns);
    assert_eq!(conn.role, Role::Operator);
    let (healthy, failing) = (
        format!("{}/crm-sync", labels[0]),
        format!("{}/crm-sync", labels[1]),
    );
    let mut rx = conn.handle.watch();
    let merged = wait_snapshot(&mut rx, "both agents' verdicts", |s| {
        status_of(s, &healthy) == Some(Status::Ok) && status_of(s, &failing) == Some(Status::Fail)
    })
    .await;
    assert_eq!(merged.integrations.len(), 2);
    assert_eq!((merged.summary.ok, merged.summary.fail), (1, 1));
    assert_eq!(merged.config_name, labels.join(" + "));
    assert!(merged.connection.is_none());

    // An acknowledgement goes to the agent that owns the integration, and only there.
    conn.handle
        .send(Command::Ack {
            integration: failing.clone(),
            actor: "oncall".into(),
        })
        .await
        .unwrap();
    let acked = wait_snapshot(&mut rx, "the ack", |s| {
        s.integration(&failing).is_some_and(|i| i.acked.is_some())
    })
    .await;
    assert!(acked.integration(&healthy).unwrap().acked.is_none());
    assert!(
        agents[1]
            .engine
            .snapshot()
            .integration("crm-sync")
            .unwrap()
            .acked
            .is_some()
    );

    // The first agent goes away: the header names it; the other agent's data stays live.
    let first = agents.remove(0);
    first.stop().await;
    let stale = wait_snapshot(&mut rx, "the unreachable agent named", |s| {
        s.connection.is_some()
    })
    .await;
    let header = stale.connection.as_deref().unwrap();
    assert!(
        header.starts_with(&format!("{}: NO AGENT since", labels[0])),
        "{header}"
    );
    assert!(!header.contains(&labels[1]), "{header}");
    assert_eq!(
        status_of(&stale, &healthy),
        Some(Status::Ok),
        "last known state kept"
    );
    let _ = conn.handle.send(Command::Shutdown).await;
    agents.remove(0).stop().await;
}

/// An operator takes an acknowledgement back with `DELETE /api/v1/ack/{integration}`; a viewer may not.
#[tokio::test]
async fn an_operator_takes_an_acknowledgement_back_and_a_viewer_may_not() {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let wrong = write_secret(dir.path(), "secret", "not-the-secret-at-all");
    let config = load_config(
        dir.path(),
        &config_text(dir.path(), &sim.base_url(), &wrong, ""),
    );
    let agent = RunningAgent::start(config, AgentOptions::default())
        .await
        .expect("agent starts");
    let base = agent.url();
    let mut rx = agent.engine.watch();
    wait_snapshot(&mut rx, "crm-sync failing", |s| {
        status_of(s, "crm-sync") == Some(Status::Fail)
    })
    .await;
    let http = reqwest::Client::new();
    let url = format!("{base}/api/v1/ack/crm-sync");
    let r = http.post(&url).bearer_auth(OPERATOR).send().await.unwrap();
    assert_eq!(r.status(), 202);
    wait_snapshot(&mut rx, "the ack", |s| {
        s.integration("crm-sync").unwrap().acked.is_some()
    })
    .await;

    let r = http.delete(&url).bearer_auth(VIEWER).send().await.unwrap();
    assert_eq!(r.status(), 403, "a viewer cannot take it back");
    let r = http.delete(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .delete(&url)
        .bearer_auth(OPERATOR)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["action"], "unack");
    assert_eq!(body["by"], "oncall");
    wait_snapshot(&mut rx, "the ack taken back", |s| {
        s.integration("crm-sync").unwrap().acked.is_none()
    })
    .await;
    agent.stop().await;
}
