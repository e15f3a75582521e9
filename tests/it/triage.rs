//! Issue 13, engine side: incidents and uptime right from the first probe (report, agent, detail view), the
//! revoked-secret detection bound, and re-probing at once when a secret, the configuration or a rotation changes.

use crate::common::*;
use authwatch::agent::{AgentOptions, RunningAgent};
use authwatch::engine::{Command, EngineHandle, IntegrationView, Snapshot};
use authwatch::model::Status;
use authwatch::store::Store;
use authwatch::tui::{App, AppOptions};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const CLIENT: &str = "5c9e1b7aa0d44f3e8a2b91c7";
const DEADLINE: Duration = Duration::from_secs(30);

/// The newest snapshot once `pred` holds for it (awaited on the engine's snapshot stream, bounded by DEADLINE).
async fn wait_for(
    handle: &EngineHandle,
    what: &str,
    mut pred: impl FnMut(&Snapshot) -> bool,
) -> Arc<Snapshot> {
    let mut rx = handle.watch();
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

fn view<'a>(s: &'a Snapshot, name: &str) -> &'a IntegrationView {
    s.integration(name).expect("integration in the snapshot")
}

/// The console's detail view of the first integration, as text.
fn detail_text(snapshot: Arc<Snapshot>, now: chrono::DateTime<chrono::Utc>) -> String {
    let mut app = App::new(
        snapshot,
        AppOptions {
            read_only: false,
            color: false,
            ascii: false,
            log_path: None,
            ..Default::default()
        },
    );
    app.handle_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE), now);
    authwatch::tui::fixture::render_text(&app, 120, 60, now)
}

fn agent_config(dir: &Path, auth_url: &str, secret: &str, credential_extra: &str) -> String {
    let secret_file = write_secret(dir, "secret", secret);
    format!(
        "[settings]\nprobe_interval = \"1h\"\nconfirm_retry = \"20ms\"\nfailure_threshold = 1\n\n\
         [agent]\nlisten = \"127.0.0.1:0\"\n\n{}{credential_extra}\n\n{}",
        sfmc_credential("pkg", auth_url, CLIENT, &secret_file),
        integration("nightly-etl-loader", "pkg", ""),
    )
}

async fn state_json(agent: &RunningAgent) -> serde_json::Value {
    reqwest::get(format!("{}/api/v1/state", agent.url()))
        .await
        .expect("agent answers")
        .json()
        .await
        .expect("state is JSON")
}

/// The nightly-etl-loader: its secret expired days ago, so it is FAIL from the very first evaluation (before
/// any probe) and its first probe is refused too. That is one ongoing incident everywhere: the engine's view (the
/// detail view), the agent's /api/v1/state and `authwatch report` (which reads the history database).
#[tokio::test]
async fn failing_from_the_first_evaluation_is_one_incident_in_the_detail_the_agent_and_the_report()
{
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let expired = (chrono::Utc::now() - chrono::Duration::days(3)).format("%Y-%m-%d");
    let text = agent_config(
        dir.path(),
        &sim.base_url(),
        "an-expired-secret",
        &format!("secret_expires = \"{expired}\""),
    );
    let db = dir.path().join("history.db");
    let agent = RunningAgent::start(
        load_config(dir.path(), &text),
        AgentOptions {
            db: Some(db.clone()),
            ..Default::default()
        },
    )
    .await
    .expect("agent starts");
    let snap = wait_for(&agent.engine, "the first probe's verdict", |s| {
        let v = view(s, "nightly-etl-loader");
        !v.history.is_empty() && v.health.status == Status::Fail && !v.probing
    })
    .await;
    let v = view(&snap, "nightly-etl-loader");
    assert_eq!(v.incidents.len(), 1, "one incident: {:?}", v.incidents);
    assert_eq!(v.incidents[0].ended, None, "still ongoing");
    assert_eq!(v.incidents[0].worst, Status::Fail);
    assert_eq!(
        v.uptime_24h,
        Some(0.0),
        "uptime counts from the first probe"
    );
    assert_eq!(v.uptime_7d, Some(0.0));

    let screen = detail_text(snap.clone(), chrono::Utc::now());
    let line = |label: &str| {
        screen
            .lines()
            .find(|l| l.contains(label))
            .unwrap_or_else(|| panic!("no {label} line in:\n{screen}"))
            .to_string()
    };
    assert!(line("Incidents (7d)").contains("ongoing"), "{screen}");
    assert!(!line("Incidents (7d)").contains("none"), "{screen}");
    assert!(line("Uptime").contains("0.00%"), "{screen}");
    assert!(
        line("Uptime").contains("since"),
        "covers only the time since the first probe: {screen}"
    );

    let state = state_json(&agent).await;
    let i = &state["integrations"][0];
    assert_eq!(i["name"], "nightly-etl-loader");
    assert_eq!(i["history"]["uptime_24h"], 0.0, "{i:#}");
    assert_eq!(i["history"]["incidents_7d"], 1, "{i:#}");
    assert!(i["history"]["incident_since"].is_string(), "{i:#}");
    assert!(i["history"]["uptime_since"].is_string(), "{i:#}");

    agent.stop().await;
    let store = Store::open(&db).unwrap();
    let now = chrono::Utc::now();
    let report = authwatch::history_report::build(
        &store,
        &["nightly-etl-loader".to_string()],
        now - chrono::Duration::hours(24),
        now,
    )
    .unwrap();
    let r = &report.integrations[0];
    assert_eq!(r.incidents, 1, "{}", report.to_text());
    assert_eq!(r.mttr_seconds, None, "ongoing: no MTTR yet");
    assert!(r.longest_outage_seconds.is_some());
    assert_eq!(r.uptime_pct, Some(0.0));
    assert!(r.ongoing_since.is_some());
    let text = report.to_text();
    assert!(text.contains("1 ongoing"), "{text}");
}

/// Refused from its first probe, then fixed: one incident with an MTTR in the report, and the detail shows it.
#[tokio::test]
async fn refused_from_the_first_probe_then_fixed_is_one_closed_incident_with_mttr() {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let text = agent_config(dir.path(), &sim.base_url(), "a-wrong-secret", "");
    let db = dir.path().join("history.db");
    let agent = RunningAgent::start(
        load_config(dir.path(), &text),
        AgentOptions {
            db: Some(db.clone()),
            ..Default::default()
        },
    )
    .await
    .expect("agent starts");
    let snap = wait_for(&agent.engine, "FAIL", |s| {
        view(s, "nightly-etl-loader").health.status == Status::Fail
    })
    .await;
    assert_eq!(view(&snap, "nightly-etl-loader").incidents.len(), 1);
    write_secret(dir.path(), "secret", SENTINEL);
    agent
        .engine
        .send(Command::ProbeNow {
            integration: "nightly-etl-loader".into(),
        })
        .await
        .unwrap();
    let snap = wait_for(&agent.engine, "OK again", |s| {
        view(s, "nightly-etl-loader").health.status == Status::Ok
    })
    .await;
    let v = view(&snap, "nightly-etl-loader");
    assert_eq!(v.incidents.len(), 1, "{:?}", v.incidents);
    assert!(v.incidents[0].ended.is_some());
    let screen = detail_text(snap.clone(), chrono::Utc::now());
    assert!(screen.contains("lasted"), "{screen}");

    agent.stop().await;
    let store = Store::open(&db).unwrap();
    let now = chrono::Utc::now();
    let report = authwatch::history_report::build(
        &store,
        &["nightly-etl-loader".to_string()],
        now - chrono::Duration::hours(1),
        now,
    )
    .unwrap();
    let r = &report.integrations[0];
    assert_eq!(r.incidents, 1, "{}", report.to_text());
    assert!(r.mttr_seconds.is_some(), "{}", report.to_text());
    assert_eq!(r.ongoing_since, None);
}

/// An engine on `text` (optionally with a history database), probing at once.
fn spawn_engine(dir: &Path, text: &str, db: Option<&Path>) -> authwatch::engine::RunningEngine {
    let config = load_config(dir, text);
    let retention = config.settings.retention;
    authwatch::engine::spawn(
        config,
        authwatch::engine::EngineOptions {
            start_gate: None,
            store: db.map(|p| Store::open(p).unwrap()),
            retention,
            ..Default::default()
        },
    )
    .unwrap()
}

fn one_integration(settings: &str, auth_url: &str, secret_file: &Path) -> String {
    format!(
        "[settings]\n{settings}\n\n{}{}",
        sfmc_credential("pkg", auth_url, CLIENT, secret_file),
        integration("crm-sync", "pkg", "")
    )
}

/// Refused, confirmed and paused: FAIL with no automatic probe coming.
async fn paused_fail(handle: &EngineHandle) {
    wait_for(handle, "FAIL and paused", |s| {
        let v = view(s, "crm-sync");
        v.health.status == Status::Fail && v.paused
    })
    .await;
}

async fn ok_again(handle: &EngineHandle, what: &str) -> IntegrationView {
    let s = wait_for(handle, what, |s| {
        view(s, "crm-sync").health.status == Status::Ok
    })
    .await;
    view(&s, "crm-sync").clone()
}

/// The README's detection-time bound, held: the simulator revokes the secret (a scenario timeline event) while
/// a token granted before it is still being reused; FAIL must follow within `revocation_detection_bound` of the
/// configured settings and the simulator's token lifetime (plus the probes' own HTTP time, which the bound
/// leaves out). Short settings keep the test short; the formula is the one the README applies to the defaults.
#[tokio::test]
async fn a_revoked_secret_turns_fail_within_the_documented_bound() {
    use authwatch::engine::EngineEvent;
    let expires_in = 8;
    let scenario = format!(
        "[sim]\nexpires_in = {expires_in}\n\n[[client]]\nid = \"pkg\"\nclient_id = \"{CLIENT}\"\nsecret = \"{SENTINEL}\"\n\
         scopes = [\"data_extensions_read\"]\nmids = [\"5100001\"]\n\n\
         [[timeline]]\nat = \"1s\"\nclient = \"pkg\"\naction = \"revoke_secret\"\n"
    );
    // Started before the simulator: the revocation is at least 1s after this, so measuring from here only
    // makes the test stricter.
    let before_sim = tokio::time::Instant::now();
    let sim = start_sim(&scenario).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", SENTINEL);
    let text = one_integration(
        "probe_interval = \"2s\"\ntoken_refresh = \"15m\"\nconfirm_retry = \"500ms\"\nfailure_threshold = 2\n\
         secret_check_interval = \"0s\"",
        &sim.base_url(),
        &secret,
    );
    let config = load_config(dir.path(), &text);
    let bound = authwatch::rules::schedule::revocation_detection_bound(
        &config.settings,
        Some(Duration::from_secs(expires_in)),
    );
    // 8s tokens reused for 6s, + 2.2s, + 0.55s.
    assert_eq!(bound, Duration::from_millis(8_750));
    let running = spawn_engine(dir.path(), &text, None);
    let mut events = running.handle.events();
    let first = wait_for(&running.handle, "the first probe, ok", |s| {
        !view(s, "crm-sync").history.is_empty()
    })
    .await;
    assert_eq!(view(&first, "crm-sync").health.status, Status::Ok);
    let revoked_at = before_sim + Duration::from_secs(1);
    let failed_at = tokio::time::timeout(DEADLINE, async {
        loop {
            match events.recv().await {
                Ok(EngineEvent::StatusChanged {
                    to: Status::Fail, ..
                }) => {
                    return tokio::time::Instant::now();
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event stream ended: {e}"),
            }
        }
    })
    .await
    .expect("the revoked secret turns FAIL");
    let took = failed_at.saturating_duration_since(revoked_at);
    eprintln!("FAIL came {took:?} after the revocation; the bound is {bound:?}");
    // The probes' own HTTP time on loopback, which the bound leaves out (3 probes, generously).
    let http_time = Duration::from_secs(2);
    assert!(
        took <= bound + http_time,
        "FAIL came {took:?} after the revocation; the documented bound is {bound:?} (+{http_time:?} HTTP)"
    );
    // And it was the token request that found it: a cached token does not test the secret.
    let v = view(&running.handle.snapshot(), "crm-sync").clone();
    let last = v.last_probe().unwrap();
    assert!(
        last.fresh_token && last.outcome.is_auth_failure(),
        "{last:?}"
    );
}

/// A secret file rewritten with a new value re-probes at once with a new token and lifts the pause: no "probe
/// now", no waiting for the interval (1h here).
#[tokio::test]
async fn a_changed_secret_file_reprobes_at_once_and_lifts_the_pause() {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", "a-wrong-secret");
    let text = one_integration(
        "probe_interval = \"1h\"\nconfirm_retry = \"20ms\"\nfailure_threshold = 1\nsecret_check_interval = \"100ms\"",
        &sim.base_url(),
        &secret,
    );
    let running = spawn_engine(dir.path(), &text, None);
    paused_fail(&running.handle).await;
    let requests = sim.token_requests(CLIENT);
    write_secret(dir.path(), "secret", SENTINEL);
    let v = ok_again(&running.handle, "OK after the secret file changed").await;
    assert!(!v.paused);
    assert!(v.last_probe().unwrap().fresh_token);
    assert_eq!(sim.token_requests(CLIENT), requests + 1, "one new token");
    assert!(v.secret_verified_at.is_some());
    assert!(v.token_reused_until.is_some_and(|t| t > chrono::Utc::now()));
}

/// A secret that cannot be read (its file is missing) shows why; once it appears, the integration is probed at
/// once instead of after the interval.
#[tokio::test]
async fn a_secret_that_appears_is_probed_at_once() {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("not-yet");
    let text = one_integration(
        "probe_interval = \"1h\"\nsecret_check_interval = \"100ms\"",
        &sim.base_url(),
        &secret,
    );
    let running = spawn_engine(dir.path(), &text, None);
    let s = wait_for(&running.handle, "secret not available", |s| {
        view(s, "crm-sync")
            .health
            .short_reason()
            .starts_with("secret not available")
    })
    .await;
    assert_eq!(view(&s, "crm-sync").health.status, Status::Unknown);
    write_secret(dir.path(), "not-yet", SENTINEL);
    ok_again(&running.handle, "OK once the secret file exists").await;
}

/// A reload that changes the credential (here: the secret's file) re-probes at once and lifts the pause.
#[tokio::test]
async fn a_reload_with_a_changed_credential_reprobes_at_once_and_lifts_the_pause() {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = "probe_interval = \"1h\"\nconfirm_retry = \"20ms\"\nfailure_threshold = 1\nsecret_check_interval = \"0s\"";
    let wrong = write_secret(dir.path(), "wrong", "a-wrong-secret");
    let running = spawn_engine(
        dir.path(),
        &one_integration(settings, &sim.base_url(), &wrong),
        None,
    );
    paused_fail(&running.handle).await;
    let right = write_secret(dir.path(), "right", SENTINEL);
    let reloaded = load_config(
        dir.path(),
        &one_integration(settings, &sim.base_url(), &right),
    );
    running
        .handle
        .send(Command::Reload(Box::new(reloaded)))
        .await
        .unwrap();
    let v = ok_again(&running.handle, "OK after the reload").await;
    assert!(!v.paused);
}

/// A rotation completed in another process (its activation recorded in the shared database) re-probes the
/// credential's integrations at once and lifts their pause.
#[tokio::test]
async fn a_rotation_completed_elsewhere_reprobes_at_once_and_lifts_the_pause() {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", "a-wrong-secret");
    let db = dir.path().join("history.db");
    let text = one_integration(
        "probe_interval = \"1h\"\nconfirm_retry = \"20ms\"\nfailure_threshold = 1\nsecret_check_interval = \"0s\"",
        &sim.base_url(),
        &secret,
    );
    let running = spawn_engine(dir.path(), &text, Some(&db));
    paused_fail(&running.handle).await;
    // The other process: wrote the new secret where the consumer reads it, and recorded the activation.
    write_secret(dir.path(), "secret", SENTINEL);
    let mut other = Store::open(&db).unwrap();
    other
        .append_audit(&authwatch::store::AuditEntry {
            at: chrono::Utc::now(),
            actor: "cli".into(),
            origin: "cli".into(),
            credential: "pkg".into(),
            action: "activate-result".into(),
            from: "promoted".into(),
            to: "completed".into(),
            result: "ok".into(),
            details: String::new(),
        })
        .unwrap();
    let v = ok_again(&running.handle, "OK after the rotation completed elsewhere").await;
    assert!(!v.paused);
}

fn authwatch_help(args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_authwatch"))
        .args(args)
        .env("XDG_STATE_HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path())
        .env_remove("AUTHWATCH_CONFIG")
        .current_dir(dir.path())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The console's flags are on the console's commands only: `authwatch --help` and `authwatch demo --help` list
/// them, the one-shot subcommands' help does not, and given to one of those they are refused, not ignored.
#[test]
fn console_flags_are_only_on_the_console_commands() {
    const CONSOLE: [&str; 3] = ["--read-only", "--ascii", "--tick"];
    let (code, top, _) = authwatch_help(&["--help"]);
    assert_eq!(code, 0);
    for flag in CONSOLE.iter().chain(&["--connect", "--no-color"]) {
        assert!(top.contains(flag), "authwatch --help lacks {flag}:\n{top}");
    }
    let (_, demo, _) = authwatch_help(&["demo", "--help"]);
    for flag in CONSOLE.iter().chain(&["--no-color"]) {
        assert!(demo.contains(flag), "demo --help lacks {flag}:\n{demo}");
    }
    for sub in [
        &["check"][..],
        &["report"],
        &["agent"],
        &["scan"],
        &["audit"],
        &["rotate"],
        &["simulate"],
        &["config", "check"],
        &["secret", "set"],
    ] {
        let mut args = sub.to_vec();
        args.push("--help");
        let (code, help, _) = authwatch_help(&args);
        assert_eq!(code, 0, "{args:?}");
        for flag in CONSOLE.iter().chain(&["--connect", "--token-file"]) {
            assert!(!help.contains(flag), "{args:?} lists {flag}:\n{help}");
        }
        // Global: it also takes the colour out of error reports.
        assert!(help.contains("--no-color"), "{args:?}:\n{help}");
    }
    let (code, _, err) = authwatch_help(&["--read-only", "check", "--demo"]);
    assert_eq!(code, 3);
    assert!(err.contains("--read-only is a console option"), "{err}");
    let (code, _, err) = authwatch_help(&["check", "--read-only"]);
    assert_eq!(code, 3, "{err}");
}

/// The detail of an OK integration whose newest probe reused a cached token: when the secret itself was last
/// verified, and until when the token is reused (after which a new token checks the secret again).
#[test]
fn detail_says_when_the_secret_was_verified_and_until_when_the_token_is_reused_100x40() {
    use authwatch::tui::fixture::{self, now};
    let mut app = App::new(
        Arc::new(fixture::snapshot()),
        AppOptions {
            read_only: false,
            color: false,
            ascii: false,
            log_path: None,
            ..Default::default()
        },
    );
    for c in "/preference".chars() {
        app.handle_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE), now());
    }
    for _ in 0..2 {
        app.handle_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE), now());
    }
    let screen = fixture::render_text(&app, 100, 40, now());
    assert!(
        screen.contains("Token          reused until 2026-03-14 10:31:24 UTC (in 1m)"),
        "{screen}"
    );
    insta::assert_snapshot!(screen);
}

/// The demo revokes preference-center's secret at 40s; its settings (token_refresh 2m) make that show as FAIL within
/// about 3 minutes, as the scenario's header says, not the 21 minutes of the defaults.
#[tokio::test]
async fn the_demo_shows_its_revoked_secret_within_three_minutes() {
    let demo = authwatch::demo::Demo::start(false).await.unwrap();
    let bound = authwatch::rules::schedule::revocation_detection_bound(
        &demo.config.settings,
        Some(Duration::from_secs(1079)),
    );
    assert!(bound <= Duration::from_secs(180), "{bound:?}");
    let defaults = authwatch::rules::schedule::revocation_detection_bound(
        &authwatch::config::Settings::default(),
        Some(Duration::from_secs(1079)),
    );
    // The README's table.
    assert_eq!(defaults.as_secs(), 20 * 60 + 38);
    demo.stop().await;
}

/// `authwatch config check` states the bound for the configuration at hand (the README's table with its settings).
#[test]
fn config_check_states_the_detection_bound_of_the_settings() {
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", SENTINEL);
    let base = sfmc_credential("pkg", "http://127.0.0.1:9/", CLIENT, &secret)
        + &integration("crm-sync", "pkg", "");
    let config = write_config(dir.path(), &base).display().to_string();
    let (code, out, err) = authwatch_help(&["--config", &config, "config", "check"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("a revoked secret turns FAIL within 20m 38s at most"),
        "{out}"
    );
    let shorter = format!("[settings]\ntoken_refresh = \"1m\"\n\n{base}");
    let config = write_config(dir.path(), &shorter).display().to_string();
    let (_, out, _) = authwatch_help(&["--config", &config, "config", "check"]);
    // 1m + 5m30s + 1m39s.
    assert!(out.contains("within 8m 09s at most"), "{out}");
}
