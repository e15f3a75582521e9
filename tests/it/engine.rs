//! The scheduler against the simulator: token reuse, Retry-After, pause after the threshold, forced probes.

use crate::common::*;
use authwatch::engine::{self, Command, EngineEvent, EngineHandle, EngineOptions};
use authwatch::model::{Outcome, Status};
use std::time::Duration;
use tokio::sync::broadcast;

const CLIENT: &str = "5c9e1b7aa0d44f3e8a2b91c7";
const DEADLINE: Duration = Duration::from_secs(20);

/// Wait for the `n`th ProbeFinished of `integration`, returning the outcomes seen.
async fn finished(
    events: &mut broadcast::Receiver<EngineEvent>,
    integration: &str,
    n: usize,
) -> Vec<Outcome> {
    let mut seen = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while seen.len() < n {
            match events.recv().await {
                Ok(EngineEvent::ProbeFinished {
                    integration: name,
                    outcome,
                    ..
                }) if name == integration => seen.push(outcome),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event stream ended: {e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "only {} of {n} probes of {integration} finished in time",
            seen.len()
        )
    });
    seen
}

async fn paused(events: &mut broadcast::Receiver<EngineEvent>, integration: &str) {
    tokio::time::timeout(DEADLINE, async {
        loop {
            if let Ok(EngineEvent::Paused {
                integration: name, ..
            }) = events.recv().await
                && name == integration
            {
                return;
            }
        }
    })
    .await
    .expect("integration pauses");
}

/// The integration's view once the snapshot shows it paused (published right after the result).
async fn paused_view(handle: &EngineHandle, name: &str) -> authwatch::engine::IntegrationView {
    let mut watch = handle.watch();
    tokio::time::timeout(DEADLINE, async {
        loop {
            let v = watch.borrow_and_update().integration(name).unwrap().clone();
            if v.paused {
                return (*v).clone();
            }
            watch.changed().await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{name} is not paused"))
}

struct Fixture {
    sim: authwatch::sim::SimServer,
    handle: EngineHandle,
    events: broadcast::Receiver<EngineEvent>,
    _dir: tempfile::TempDir,
}

async fn fixture(
    client_extra: &str,
    secret: &str,
    settings: &str,
    integrations: &[&str],
) -> Fixture {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, client_extra)).await;
    let dir = tempfile::tempdir().unwrap();
    let secret_file = write_secret(dir.path(), "secret", secret);
    let mut text = format!(
        "[settings]\n{settings}\n\n{}",
        sfmc_credential("pkg", &sim.base_url(), CLIENT, &secret_file)
    );
    for name in integrations {
        text += &integration(name, "pkg", "");
    }
    let config = load_config(dir.path(), &text);
    let (gate_tx, gate_rx) = tokio::sync::oneshot::channel();
    let running = engine::spawn(
        config,
        EngineOptions {
            start_gate: Some(gate_rx),
            ..Default::default()
        },
    )
    .unwrap();
    let events = running.handle.events();
    gate_tx.send(()).unwrap();
    Fixture {
        sim,
        handle: running.handle,
        events,
        _dir: dir,
    }
}

#[tokio::test]
async fn probes_within_a_refresh_window_share_one_token() {
    let mut f = fixture(
        "",
        SENTINEL,
        "probe_interval = \"50ms\"\ntoken_refresh = \"15m\"",
        &["crm-sync", "cdp-feed"],
    )
    .await;
    let outcomes = finished(&mut f.events, "crm-sync", 6).await;
    assert!(outcomes.iter().all(|o| *o == Outcome::Ok), "{outcomes:?}");
    // Both integrations share (credential, account, scopes): one token for all their probes.
    assert_eq!(f.sim.token_requests(CLIENT), 1);
    let snap = f.handle.snapshot();
    assert_eq!(
        snap.integration("crm-sync").unwrap().health.status,
        Status::Ok
    );
}

#[tokio::test]
async fn nothing_is_probed_before_the_start_gate_opens() {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let secret_file = write_secret(dir.path(), "secret", SENTINEL);
    let text = sfmc_credential("pkg", &sim.base_url(), CLIENT, &secret_file)
        + &integration("crm-sync", "pkg", "");
    let (gate_tx, gate_rx) = tokio::sync::oneshot::channel();
    let running = engine::spawn(
        load_config(dir.path(), &text),
        EngineOptions {
            start_gate: Some(gate_rx),
            ..Default::default()
        },
    )
    .unwrap();
    let mut events = running.handle.events();
    // The first snapshot is there at once, with placeholders and no request made.
    let snap = running.handle.snapshot();
    assert_eq!(snap.integrations[0].health.status, Status::Unknown);
    assert!(sim.requests().is_empty());
    gate_tx.send(()).unwrap();
    finished(&mut events, "crm-sync", 1).await;
    assert_eq!(sim.token_requests(CLIENT), 1);
}

#[tokio::test]
async fn retry_after_is_honoured_before_the_next_token_request() {
    let mut f = fixture(
        "fault = \"rate_limited\"\nretry_after = 1",
        SENTINEL,
        "probe_interval = \"50ms\"",
        &["crm-sync"],
    )
    .await;
    let outcomes = finished(&mut f.events, "crm-sync", 2).await;
    assert_eq!(outcomes, [Outcome::RateLimited, Outcome::RateLimited]);
    let times: Vec<_> = f
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/v2/token"))
        .map(|r| r.at)
        .collect();
    assert_eq!(times.len(), 2);
    let gap = times[1] - times[0];
    // Retry-After 1s, less the 10% jitter at most.
    assert!(
        gap >= chrono::Duration::milliseconds(900),
        "second request came after {gap}"
    );
}

#[tokio::test]
async fn repeated_auth_failures_fail_and_pause_until_a_human_acts() {
    let mut f = fixture(
        "",
        "wrong-secret",
        "probe_interval = \"50ms\"\nconfirm_retry = \"20ms\"\nfailure_threshold = 3",
        &["crm-sync"],
    )
    .await;
    let outcomes = finished(&mut f.events, "crm-sync", 3).await;
    assert_eq!(outcomes, [Outcome::AuthRejected; 3]);
    paused(&mut f.events, "crm-sync").await;
    // Wait until the snapshot shows the verdict (published right after the result).
    let view = paused_view(&f.handle, "crm-sync").await;
    assert_eq!(view.health.status, Status::Fail);
    assert_eq!(view.consecutive_auth_failures, 3);
    assert!(view.next_probe_at.is_none());
    assert!(
        view.health
            .reasons
            .iter()
            .any(|r| r.starts_with("probing paused after 3")),
        "{:?}",
        view.health.reasons
    );
    let requests_when_paused = f.sim.token_requests(CLIENT);
    assert_eq!(requests_when_paused, 3);

    // A forced probe is a human acting: one more (fresh) token request, then paused again.
    f.handle
        .send(Command::ProbeNow {
            integration: "crm-sync".into(),
        })
        .await
        .unwrap();
    finished(&mut f.events, "crm-sync", 1).await;
    paused(&mut f.events, "crm-sync").await;
    assert_eq!(f.sim.token_requests(CLIENT), 4);
}

#[tokio::test]
async fn probe_all_uses_one_fresh_token_per_grant() {
    let mut f = fixture("", SENTINEL, "probe_interval = \"1h\"", &["a", "b", "c"]).await;
    for name in ["a", "b", "c"] {
        finished(&mut f.events, name, 1).await;
    }
    assert_eq!(f.sim.token_requests(CLIENT), 1);
    f.handle.send(Command::ProbeAll).await.unwrap();
    for name in ["a", "b", "c"] {
        finished(&mut f.events, name, 1).await;
    }
    assert_eq!(
        f.sim.token_requests(CLIENT),
        2,
        "one fresh token shared by the three"
    );
}

#[tokio::test]
async fn status_change_is_announced_with_the_reason() {
    let mut f = fixture(
        "",
        "wrong-secret",
        "confirm_retry = \"20ms\"\nfailure_threshold = 2",
        &["crm-sync"],
    )
    .await;
    let change = tokio::time::timeout(DEADLINE, async {
        loop {
            if let Ok(EngineEvent::StatusChanged {
                to: Status::Fail,
                reason,
                ..
            }) = f.events.recv().await
            {
                return reason;
            }
        }
    })
    .await
    .unwrap();
    assert!(
        change.starts_with("token request rejected: invalid_client (401)"),
        "{change}"
    );
    // The server's error_description closes the reason (issue 14).
    assert!(
        change.ends_with("2 consecutive failures. Client authentication failed. Make sure that the client ID and client secret are valid and that the package is installed and enabled."),
        "{change}"
    );
}

#[tokio::test]
async fn a_thousand_integrations_are_held() {
    let names: Vec<String> = (0..1000).map(|i| format!("int-{i:04}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut f = fixture(
        "",
        SENTINEL,
        "probe_interval = \"1h\"\nmax_concurrent_probes = 64",
        &refs,
    )
    .await;
    tokio::time::timeout(DEADLINE, async {
        let mut done = std::collections::HashSet::new();
        while done.len() < 1000 {
            if let Ok(EngineEvent::ProbeFinished { integration, .. }) = f.events.recv().await {
                done.insert(integration);
            }
        }
    })
    .await
    .expect("all 1000 probed");
    let mut watch = f.handle.watch();
    let snap = tokio::time::timeout(DEADLINE, async {
        loop {
            let s = watch.borrow_and_update().clone();
            if s.summary.ok == 1000 {
                return s;
            }
            watch.changed().await.unwrap();
        }
    })
    .await
    .expect("snapshot shows all ok");
    assert_eq!(snap.integrations.len(), 1000);
    assert_eq!(f.sim.token_requests(CLIENT), 1);
    let _ = Duration::ZERO;
}

#[tokio::test]
async fn log_401s_make_a_healthy_integration_warn_and_fill_the_auth_log() {
    let mut f = fixture("", SENTINEL, "probe_interval = \"1h\"", &["crm-sync"]).await;
    finished(&mut f.events, "crm-sync", 1).await;
    let now = chrono::Utc::now();
    let event = |status: u16, integration: Option<&str>| authwatch::model::AuthEvent {
        at: now,
        integration: integration.map(str::to_string),
        http_status: status,
        error: "invalid_client".into(),
        source: "crm-middleware".into(),
        origin: Default::default(),
    };
    f.handle
        .send(Command::Ingest {
            events: vec![
                event(401, Some("crm-sync")),
                event(403, Some("crm-sync")),
                event(401, None),
            ],
        })
        .await
        .unwrap();
    let mut watch = f.handle.watch();
    let snap = tokio::time::timeout(DEADLINE, async {
        loop {
            let s = watch.borrow_and_update().clone();
            if s.auth_log.len() == 3
                && s.integration("crm-sync").unwrap().health.status == Status::Warn
            {
                return s;
            }
            watch.changed().await.unwrap();
        }
    })
    .await
    .expect("log events shown");
    assert_eq!(
        snap.integration("crm-sync").unwrap().health.short_reason(),
        "1x 401, 1x 403 in logs in the last 10m (crm-middleware)"
    );
    assert!(snap.auth_log.iter().all(|e| e.source == "crm-middleware"));
    assert_eq!(
        snap.auth_log
            .iter()
            .filter(|e| e.integration.is_none())
            .count(),
        1
    );
}

#[tokio::test]
async fn no_more_than_max_concurrent_probes_run_at_once() {
    // Slow answers (100 ms) and one grant per integration, so probes would overlap freely without the cap.
    let mids: Vec<String> = (1..=12).map(|i| format!("\"{i}\"")).collect();
    let scenario = format!(
        "[[client]]\nid = \"pkg\"\nclient_id = \"{CLIENT}\"\nsecret = \"{SENTINEL}\"\nscopes = [\"email_read\"]\nmids = [{}]\nlatency = \"100ms\"\n",
        mids.join(", ")
    );
    let sim = start_sim(&scenario).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "s", SENTINEL);
    let mut text = format!(
        "[settings]\nprobe_interval = \"1h\"\nmax_concurrent_probes = 3\n\n{}",
        sfmc_credential("pkg", &sim.base_url(), CLIENT, &secret)
    );
    for i in 1..=12 {
        text += &integration(&format!("int-{i}"), "pkg", &format!("account_id = \"{i}\""));
    }
    let running = engine::spawn(load_config(dir.path(), &text), EngineOptions::default()).unwrap();
    let mut events = running.handle.events();
    tokio::time::timeout(DEADLINE, async {
        let mut done = std::collections::HashSet::new();
        while done.len() < 12 {
            if let Ok(EngineEvent::ProbeFinished { integration, .. }) = events.recv().await {
                done.insert(integration);
            }
        }
    })
    .await
    .expect("all 12 probed");
    assert_eq!(sim.token_requests(CLIENT), 12);
    assert_eq!(
        sim.max_in_flight(),
        3,
        "the cap is reached and never exceeded"
    );
}

#[tokio::test]
async fn a_refusal_confirmed_by_one_consumer_fails_every_consumer_of_the_credential() {
    // Confirm retries far off: only the forced probe of crm-sync confirms the refusal.
    let mut f = fixture(
        "",
        "wrong-secret",
        "probe_interval = \"1h\"\nconfirm_retry = \"10m\"\nfailure_threshold = 2",
        &["crm-sync", "web-shop"],
    )
    .await;
    finished(&mut f.events, "crm-sync", 1).await;
    finished(&mut f.events, "web-shop", 1).await;
    f.handle
        .send(Command::ProbeNow {
            integration: "crm-sync".into(),
        })
        .await
        .unwrap();
    paused(&mut f.events, "crm-sync").await;
    let view = paused_view(&f.handle, "web-shop").await;
    assert_eq!(view.health.status, Status::Fail);
    let reason = &view.health.reasons[0];
    assert!(
        reason.starts_with("token request rejected: invalid_client (401) since ")
            && reason
                .contains(", 1 failure here, confirmed by the other consumers of its credential. Client authentication failed."),
        "{reason}"
    );
    assert!(view.next_probe_at.is_none());
    // No further token request is made for the paused credential.
    assert_eq!(f.sim.token_requests(CLIENT), 2);
}

#[tokio::test]
async fn an_expiry_recorded_by_a_rotation_elsewhere_is_used_and_an_older_one_is_not() {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let secret_file = write_secret(dir.path(), "secret", SENTINEL);
    let text = format!(
        "[settings]\nprobe_interval = \"1h\"\n\n{}{}{}",
        sfmc_credential("pkg", &sim.base_url(), CLIENT, &secret_file)
            .replace("\n\n", "\nsecret_expires = 2026-12-01\n\n"),
        sfmc_credential("other", &sim.base_url(), CLIENT, &secret_file)
            .replace("\n\n", "\nsecret_expires = 2027-03-01\n\n"),
        integration("crm-sync", "pkg", "") + &integration("web-shop", "other", ""),
    );
    let db = dir.path().join("aw.db");
    // `authwatch rotate ... activate` in another process recorded these.
    let renewed = chrono::DateTime::parse_from_rfc3339("2027-05-30T10:00:00Z")
        .unwrap()
        .to_utc();
    let older = chrono::DateTime::parse_from_rfc3339("2026-06-01T10:00:00Z")
        .unwrap()
        .to_utc();
    {
        let mut store = authwatch::store::Store::open(&db).unwrap();
        store
            .record_expiry("pkg", renewed, chrono::Utc::now())
            .unwrap();
        store
            .record_expiry("other", older, chrono::Utc::now())
            .unwrap();
    }
    let running = engine::spawn(
        load_config(dir.path(), &text),
        EngineOptions {
            store: Some(authwatch::store::Store::open(&db).unwrap()),
            ..Default::default()
        },
    )
    .unwrap();
    let mut watch = running.handle.watch();
    let expiry = |s: &authwatch::engine::Snapshot, id: &str| {
        s.credentials
            .iter()
            .find(|c| c.id == id)
            .and_then(|c| c.secret_expires)
    };
    tokio::time::timeout(DEADLINE, async {
        while expiry(&watch.borrow_and_update(), "pkg") != Some(renewed) {
            watch.changed().await.unwrap();
        }
    })
    .await
    .expect("the recorded expiry is used");
    let snap = running.handle.snapshot();
    assert_eq!(
        expiry(&snap, "other").unwrap().date_naive().to_string(),
        "2027-03-01",
        "an older recorded expiry does not replace the configured one"
    );
    assert_eq!(
        snap.integration("crm-sync").unwrap().secret_expires,
        Some(renewed)
    );
}
