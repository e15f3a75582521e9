//! The engine following an integration's own log: events on screen, stored with their offsets, no loss and no
//! duplicate across a restart.

use crate::common::*;
use authwatch::engine::{self, EngineOptions, Snapshot};
use authwatch::store::Store;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const CLIENT: &str = "5c9e1b7aa0d44f3e8a2b91c7";

fn append(path: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

/// Log lines of the last hour (inside the test's one-day retention, whatever the date the tests run on).
static BASE: std::sync::LazyLock<chrono::DateTime<chrono::Utc>> =
    std::sync::LazyLock::new(|| chrono::Utc::now() - chrono::Duration::hours(1));

fn line(i: usize, status: u16, integration: &str) -> String {
    let at = *BASE + chrono::Duration::seconds(i as i64);
    // The client id would match the line to crm-sync: only crm-sync's lines carry it.
    let client = if integration == "crm-sync" {
        CLIENT
    } else {
        "unknown-client"
    };
    format!(
        r#"{{"time":"{}","integration":"{integration}","status":{status},"error":"invalid_client","url":"https://x/v2/token","client_id":"{client}","account_id":"510000123"}}"#,
        at.format("%Y-%m-%dT%H:%M:%SZ")
    )
}

async fn wait_for(
    handle: &engine::EngineHandle,
    what: &str,
    pred: impl Fn(&Snapshot) -> bool,
) -> Arc<Snapshot> {
    let mut watch = handle.watch();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let s = watch.borrow_and_update().clone();
            if pred(&s) {
                return s;
            }
            watch.changed().await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

#[tokio::test]
async fn followed_log_events_survive_a_restart_without_loss_or_duplicates() {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "s", SENTINEL);
    let log = dir.path().join("mw.jsonl");
    let text = format!(
        "[settings]\nprobe_interval = \"1h\"\n\n{}{}[[log_source]]\nname = \"mw\"\npath = \"{}\"\n",
        sfmc_credential("pkg", &sim.base_url(), CLIENT, &secret),
        integration("crm-sync", "pkg", ""),
        log.display()
    );
    let config = load_config(dir.path(), &text);
    let db = dir.path().join("h.db");
    let open = || EngineOptions {
        store: Some(Store::open(&db).unwrap()),
        retention: Duration::from_secs(86_400),
        ..Default::default()
    };

    // Before the file exists the source is waiting for it.
    let running = engine::spawn(config.clone(), open()).unwrap();
    let snap = wait_for(&running.handle, "waiting status", |s| {
        s.log_sources.first().is_some_and(|v| !v.ok)
    })
    .await;
    assert!(
        snap.log_sources[0].status.starts_with("waiting for"),
        "{:?}",
        snap.log_sources
    );

    // 3 auth failures, 1 unmatched, a 200 and a malformed line.
    append(
        &log,
        &[
            line(1, 401, "crm-sync"),
            line(2, 200, "crm-sync"),
            line(3, 403, "crm-sync"),
            "{not json".into(),
            line(4, 401, "nobody"),
            line(5, 401, "crm-sync"),
        ],
    );
    let snap = wait_for(&running.handle, "first events", |s| {
        s.auth_log.iter().filter(|e| e.source == "mw").count() == 4 && s.log_sources[0].ok
    })
    .await;
    assert!(snap.log_sources[0].ok);
    // The event view's facts: the file and line, and what the line said.
    let forbidden = |s: &Snapshot| {
        s.auth_log
            .iter()
            .find(|e| e.source == "mw" && e.http_status == 403)
            .cloned()
            .expect("the 403 of line 3")
    };
    let (seen_at, origin) = {
        let e = forbidden(&snap);
        (e.at, e.origin)
    };
    assert_eq!(
        origin.location.as_deref(),
        Some(format!("{} line 3", log.display()).as_str())
    );
    assert_eq!(origin.client_id.as_deref(), Some(CLIENT));
    assert_eq!(origin.mid.as_deref(), Some("510000123"));
    assert_eq!(origin.url_host.as_deref(), Some("x"));
    assert_eq!(snap.log_sources[0].unmatched, 1);
    assert_eq!(snap.log_sources[0].malformed, 1);
    assert_eq!(
        snap.auth_log
            .iter()
            .filter(|e| e.integration.is_none())
            .count(),
        1
    );
    running
        .handle
        .send(engine::Command::Shutdown)
        .await
        .unwrap();
    running.task.await.unwrap();

    // Lines appended while authwatch is down are read after the restart; the earlier ones are not read twice.
    append(&log, &[line(6, 403, "crm-sync"), line(7, 401, "crm-sync")]);
    let running = engine::spawn(config, open()).unwrap();
    let snap = wait_for(&running.handle, "events after restart", |s| {
        s.auth_log.iter().filter(|e| e.source == "mw").count() >= 6
    })
    .await;
    running
        .handle
        .send(engine::Command::Shutdown)
        .await
        .unwrap();
    running.task.await.unwrap();
    let restored = snap
        .auth_log
        .iter()
        .find(|e| e.source == "mw" && e.at == seen_at)
        .expect("line 3's event restored");
    assert_eq!(
        restored.origin, origin,
        "restored from the database as it was seen"
    );
    let from_log = snap.auth_log.iter().filter(|e| e.source == "mw").count();
    assert_eq!(from_log, 6, "no loss, no duplicate: {:?}", snap.auth_log);
    let store = Store::open(&db).unwrap();
    assert_eq!(
        store.count("auth_events").unwrap() as usize,
        6 + snap.auth_log.iter().filter(|e| e.source == "probe").count()
    );
}
