//! The SQLite store on real files: permissions, migrations, retention, restart, clear errors.

use crate::common::*;
use authwatch::engine::{self, EngineEvent, EngineOptions};
use authwatch::model::{AuthEvent, Outcome, Phase, ProbeResult, Status};
use authwatch::store::{self, Record, Store, StoreError, Transition};
use chrono::{Duration as Days, Utc};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

fn probe(at: chrono::DateTime<Utc>, outcome: Outcome) -> ProbeResult {
    let mut r = ProbeResult::new(at, outcome, Phase::Token);
    r.http_status = Some(if outcome.is_ok() { 200 } else { 401 });
    r.error = (!outcome.is_ok()).then(|| "invalid_client".to_string());
    r.token_ms = Some(12);
    r
}

#[test]
fn new_database_is_private_and_at_the_latest_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/state/authwatch.db");
    let store = Store::open(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, store::LATEST_VERSION);
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    drop(store);
}

#[test]
fn every_earlier_schema_version_upgrades_and_keeps_its_rows() {
    for from in 0..=store::LATEST_VERSION {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let mut conn = rusqlite::Connection::open(&path).unwrap();
            store::migrations::migrate_to(&mut conn, from).unwrap();
            if from >= 1 {
                conn.execute(
                    "INSERT INTO probes (integration, at, outcome, phase) VALUES ('crm-sync', 1, 'ok', 'token')",
                    [],
                )
                .unwrap();
            }
        }
        let store = Store::open(&path).unwrap_or_else(|e| panic!("upgrade from {from}: {e}"));
        assert_eq!(
            store.count("probes").unwrap(),
            u64::from(from >= 1),
            "from {from}"
        );
    }
}

#[test]
fn a_database_from_a_newer_authwatch_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 999).unwrap();
    }
    let err = Store::open(&path).err().unwrap();
    assert!(matches!(err, StoreError::TooNew { found: 999, .. }));
    assert!(
        err.to_string()
            .contains("upgrade authwatch or pass --db PATH"),
        "{err}"
    );
}

#[test]
fn corrupt_file_names_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.db");
    std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
    let err = Store::open(&path).err().unwrap();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{text}");
    assert!(
        text.contains(&path.display().to_string()) && text.contains("move it aside"),
        "{text}"
    );
}

#[test]
fn read_only_database_names_the_file_and_the_fix() {
    if unsafe_is_root() {
        // root ignores file permissions; the read-only case cannot be produced this way.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ro.db");
        drop(Store::open(&path).unwrap());
        let conn = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let e = conn
            .execute(
                "INSERT INTO acks (integration, at, actor) VALUES ('x', 1, 'y')",
                [],
            )
            .unwrap_err();
        assert_eq!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::ReadOnly));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.db");
    drop(Store::open(&path).unwrap());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o500)).unwrap();
    let err = Store::open(&path).err().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    assert!(err.to_string().contains("read-only"), "{err}");
}

fn unsafe_is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

#[test]
fn locked_database_names_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked.db");
    drop(Store::open(&path).unwrap());
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder
        .execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;")
        .unwrap();
    let err = Store::open(&path).err().unwrap();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert!(
        err.to_string().contains("is another authwatch running"),
        "{err}"
    );
}

/// The rotation watcher's cheap question: has anyone else committed since I last looked?
#[test]
fn data_version_moves_only_when_another_connection_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("authwatch.db");
    let watcher = Store::open(&path).unwrap();
    let mut writer = Store::open(&path).unwrap();
    let before = watcher.data_version().unwrap();
    assert_eq!(watcher.data_version().unwrap(), before, "nothing committed");
    writer
        .write(&[Record::Probe {
            integration: "crm-sync".into(),
            result: probe(Utc::now(), Outcome::Ok),
        }])
        .unwrap();
    assert_ne!(watcher.data_version().unwrap(), before);
}

#[test]
fn retention_prunes_old_rows_and_keeps_recent_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("a.db")).unwrap();
    let now = Utc::now();
    let mut batch = Vec::new();
    for days_ago in [40, 31, 29, 1] {
        let at = now - Days::days(days_ago);
        batch.push(Record::Probe {
            integration: "crm-sync".into(),
            result: probe(at, Outcome::Ok),
        });
        batch.push(Record::AuthEvent(AuthEvent {
            at,
            integration: Some("crm-sync".into()),
            http_status: 401,
            error: "invalid_client".into(),
            source: "probe".into(),
            origin: Default::default(),
        }));
        batch.push(Record::Transition(Transition {
            integration: "crm-sync".into(),
            at,
            from: Status::Ok,
            to: Status::Fail,
            reason: "x".into(),
        }));
    }
    store.write(&batch).unwrap();
    for days_ago in [40, 31, 29, 1] {
        store
            .record_notification(&authwatch::store::NotificationRecord {
                at: now - Days::days(days_ago),
                receiver: "crm-ops-hook".into(),
                kind: "webhook".into(),
                event: "fail".into(),
                subject: "crm-sync".into(),
                incident_key: format!("crm-sync@{days_ago}"),
                outcome: "sent".into(),
                attempts: 1,
                detail: None,
            })
            .unwrap();
    }
    let removed = store.prune(now - Days::days(30)).unwrap();
    assert_eq!(removed, 8);
    for table in ["probes", "auth_events", "transitions", "notifications"] {
        assert_eq!(store.count(table).unwrap(), 2, "{table}");
    }
}

#[test]
fn recent_history_loads_newest_per_integration_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("a.db")).unwrap();
    let now = Utc::now();
    let batch: Vec<Record> = (0..10)
        .map(|i| Record::Probe {
            integration: if i % 2 == 0 { "a".into() } else { "b".into() },
            result: probe(
                now - Days::minutes(10 - i),
                if i >= 8 {
                    Outcome::AuthRejected
                } else {
                    Outcome::Ok
                },
            ),
        })
        .collect();
    store.write(&batch).unwrap();
    let recent = store.load_recent(3, 10).unwrap();
    let a = &recent.probes["a"];
    assert_eq!(a.len(), 3);
    assert!(a.windows(2).all(|w| w[0].at <= w[1].at), "oldest first");
    assert_eq!(a.last().unwrap().outcome, Outcome::AuthRejected);
    assert_eq!(a.last().unwrap().error.as_deref(), Some("invalid_client"));
}

/// Probe, stop, start again on the same database: same statuses, failure counts, pause and 401/403 log.
#[tokio::test]
async fn restart_keeps_statuses_failures_pause_and_the_auth_log() {
    const CLIENT: &str = "5c9e1b7aa0d44f3e8a2b91c7";
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let good = write_secret(dir.path(), "good", SENTINEL);
    let bad = write_secret(dir.path(), "bad", "wrong-secret");
    let text = format!(
        "[settings]\nconfirm_retry = \"20ms\"\nfailure_threshold = 2\n\n{}{}{}{}",
        sfmc_credential("good", &sim.base_url(), CLIENT, &good),
        sfmc_credential("bad", &sim.base_url(), CLIENT, &bad),
        integration("healthy", "good", ""),
        integration("broken", "bad", "")
    );
    let config = load_config(dir.path(), &text);
    let db = dir.path().join("state.db");

    let first = {
        let running = engine::spawn(
            config.clone(),
            EngineOptions {
                store: Some(Store::open(&db).unwrap()),
                retention: Duration::from_secs(86_400),
                ..Default::default()
            },
        )
        .unwrap();
        let mut events = running.handle.events();
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                if let Ok(EngineEvent::Paused { integration, .. }) = events.recv().await
                    && integration == "broken"
                {
                    break;
                }
            }
        })
        .await
        .expect("broken pauses");
        let mut watch = running.handle.watch();
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let s = watch.borrow_and_update().clone();
                if s.integration("broken").unwrap().paused
                    && s.integration("healthy").unwrap().health.status == Status::Ok
                {
                    return;
                }
                watch.changed().await.unwrap();
            }
        })
        .await
        .unwrap();
        // Acknowledge the failing one; the healthy one has no incident to acknowledge.
        for name in ["broken", "healthy"] {
            running
                .handle
                .send(engine::Command::Ack {
                    integration: name.into(),
                    actor: "jane".into(),
                })
                .await
                .unwrap();
        }
        let snap = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let s = watch.borrow_and_update().clone();
                if s.integration("broken").unwrap().acked.is_some() {
                    return s;
                }
                watch.changed().await.unwrap();
            }
        })
        .await
        .expect("ack shown");
        assert_eq!(
            snap.integration("broken")
                .unwrap()
                .acked
                .as_ref()
                .unwrap()
                .actor,
            "jane"
        );
        assert!(snap.integration("healthy").unwrap().acked.is_none());
        running
            .handle
            .send(engine::Command::Shutdown)
            .await
            .unwrap();
        running.task.await.unwrap();
        snap
    };
    let requests_before = sim.requests().len();

    // Start again with a gate that never opens: everything shown comes from the store, not from probing.
    let (_gate, gate_rx) = tokio::sync::oneshot::channel::<()>();
    let running = engine::spawn(
        config,
        EngineOptions {
            start_gate: Some(gate_rx),
            store: Some(Store::open(&db).unwrap()),
            retention: Duration::from_secs(86_400),
            ..Default::default()
        },
    )
    .unwrap();
    let mut watch = running.handle.watch();
    let restored = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let s = watch.borrow_and_update().clone();
            let broken = s.integration("broken").unwrap();
            if broken.consecutive_auth_failures > 0 && broken.uptime_24h.is_some() {
                return s;
            }
            watch.changed().await.unwrap();
        }
    })
    .await
    .expect("history restored");
    for name in ["healthy", "broken"] {
        let (a, b) = (
            first.integration(name).unwrap(),
            restored.integration(name).unwrap(),
        );
        assert_eq!(a.health.status, b.health.status, "{name}");
        assert_eq!(
            a.consecutive_auth_failures, b.consecutive_auth_failures,
            "{name}"
        );
        assert_eq!(a.paused, b.paused, "{name}");
        assert_eq!(a.last_success, b.last_success, "{name}");
        assert_eq!(a.history.len(), b.history.len(), "{name}");
    }
    let broken = restored.integration("broken").unwrap();
    assert!(broken.paused);
    assert_eq!(
        broken.acked,
        first.integration("broken").unwrap().acked,
        "the acknowledgement survives"
    );
    // From the history database: never ok, one incident still open; the healthy one fully up.
    assert_eq!(broken.uptime_24h, Some(0.0));
    assert_eq!(broken.incidents.len(), 1);
    assert_eq!(broken.incidents[0].ended, None);
    assert_eq!(broken.incidents[0].worst, Status::Fail);
    assert_eq!(
        restored.integration("healthy").unwrap().uptime_24h,
        Some(100.0)
    );
    assert!(
        restored
            .integration("healthy")
            .unwrap()
            .incidents
            .is_empty()
    );
    assert_eq!(first.auth_log.as_slice(), restored.auth_log.as_slice());
    assert!(!restored.auth_log.is_empty());
    // The event view's facts of a probe's 401: the client id it used and the token endpoint's host.
    let refused = &restored.auth_log[0].origin;
    assert_eq!(refused.client_id.as_deref(), Some(CLIENT));
    assert_eq!(refused.url_host.as_deref(), Some("127.0.0.1"));
    assert_eq!(refused.location, None, "a probe has no log line");
    assert_eq!(
        sim.requests().len(),
        requests_before,
        "no probing before the gate opens"
    );
    // Never a secret in the database file (nor in its WAL).
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let path = file.unwrap().path();
        if path.to_string_lossy().contains("state.db") {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(SENTINEL),
                "{} holds the secret",
                path.display()
            );
        }
    }
}

/// A full disk must not lose the in-memory state or stop probing: the snapshot says history is not saved.
#[tokio::test]
async fn a_full_disk_is_reported_and_probing_goes_on() {
    const CLIENT: &str = "5c9e1b7aa0d44f3e8a2b91c7";
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "s", SENTINEL);
    let text = format!(
        "[settings]\nprobe_interval = \"20ms\"\n\n{}{}",
        sfmc_credential("pkg", &sim.base_url(), CLIENT, &secret),
        integration("crm-sync", "pkg", "")
    );
    let store = Store::open(&dir.path().join("full.db")).unwrap();
    store.cap_at_current_size_for_tests().unwrap();
    let running = engine::spawn(
        load_config(dir.path(), &text),
        EngineOptions {
            store: Some(store),
            retention: Duration::from_secs(86_400),
            ..Default::default()
        },
    )
    .unwrap();
    let mut watch = running.handle.watch();
    let snap = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let s = watch.borrow_and_update().clone();
            if s.history_error.is_some() && s.integration("crm-sync").unwrap().history.len() >= 5 {
                return s;
            }
            watch.changed().await.unwrap();
        }
    })
    .await
    .expect("history error shown while probing continues");
    let err = snap.history_error.as_deref().unwrap();
    assert!(err.contains("disk is full"), "{err}");
    assert_eq!(
        snap.integration("crm-sync").unwrap().health.status,
        Status::Ok
    );
}

/// The week's result runs the console restores come from `probe_runs`, kept by triggers: they must equal the
/// runs computed from every result (in (at, id) order), also after results written out of order, after the
/// retention prune and after an upgrade of a database that already had results.
#[test]
fn probe_runs_equal_the_runs_of_every_result_after_out_of_order_writes_and_pruning() {
    use chrono::TimeZone;
    let t = |s: i64| {
        Utc.timestamp_millis_opt(1_700_000_000_000 + s * 1000)
            .unwrap()
    };
    // From the results themselves, the way the console computed them before `probe_runs`.
    type Runs = (Vec<(i64, bool)>, Option<(i64, bool)>);
    fn expected(conn: &rusqlite::Connection, name: &str, since: i64) -> Runs {
        let mut st = conn
            .prepare("SELECT at, outcome = 'ok' FROM probes WHERE integration = ?1 AND at >= ?2 ORDER BY at, id")
            .unwrap();
        let rows: Vec<(i64, bool)> = st
            .query_map(rusqlite::params![name, since], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut runs: Vec<(i64, bool)> = Vec::new();
        for &(at, ok) in &rows {
            if runs.last().is_none_or(|r| r.1 != ok) {
                runs.push((at, ok));
            }
        }
        (runs, rows.last().copied())
    }
    let check = |store: &Store, path: &std::path::Path, since: i64, what: &str| {
        let conn = rusqlite::Connection::open(path).unwrap();
        for name in ["a", "b"] {
            let (runs, newest) = store.probe_runs(name, t(since)).unwrap();
            let got = (
                runs.iter()
                    .map(|(at, ok)| (at.timestamp_millis(), *ok))
                    .collect::<Vec<_>>(),
                newest.map(|(at, ok)| (at.timestamp_millis(), ok)),
            );
            assert_eq!(
                got,
                expected(&conn, name, t(since).timestamp_millis()),
                "{what}, {name}"
            );
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.db");
    // Results written before the upgrade to `probe_runs` are backfilled by it.
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        store::migrations::migrate_to(&mut conn, 5).unwrap();
        for (s, outcome) in [(0, "ok"), (10, "ok"), (20, "timeout"), (30, "ok")] {
            conn.execute(
                "INSERT INTO probes (integration, at, outcome, phase) VALUES ('a', ?1, ?2, 'call')",
                rusqlite::params![t(s).timestamp_millis(), outcome],
            )
            .unwrap();
        }
    }
    let mut store = Store::open(&path).unwrap();
    check(&store, &path, 0, "backfilled");
    let write = |name: &str, s: i64, ok: bool| {
        store::Store::open(&path)
            .unwrap()
            .write(&[Record::Probe {
                integration: name.to_string(),
                result: probe(
                    t(s),
                    if ok {
                        Outcome::Ok
                    } else {
                        Outcome::AuthRejected
                    },
                ),
            }])
            .unwrap();
    };
    // In order, then before later results (each case: same as both neighbours, unlike both, like one).
    for (s, ok) in [(40, true), (50, false), (60, false), (70, true), (80, true)] {
        write("a", s, ok);
        write("b", s, !ok);
    }
    check(&store, &path, 0, "in order");
    for (s, ok) in [
        (55, true),
        (65, false),
        (45, false),
        (75, true),
        (5, false),
        (35, true),
        (35, false),
    ] {
        write("a", s, ok);
        write("b", s + 1, ok);
        for since in [0, 20, 36, 56, 90] {
            check(&store, &path, since, &format!("after {s}"));
        }
    }
    // The retention prune removes everything before a time.
    store.prune(t(36)).unwrap();
    for since in [0, 36, 50, 66] {
        check(&store, &path, since, "after the prune");
    }
}

/// `a` twice in the console (or DELETE /api/v1/ack/..) takes an acknowledgement back; a restart must not bring it
/// back, and a new acknowledgement after that counts again.
#[test]
fn a_withdrawn_acknowledgement_is_not_restored_and_a_new_one_is() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("acks.db")).unwrap();
    let now = Utc::now();
    let ack = |minutes_ago: i64, actor: &str, note: Option<&str>| Record::Ack {
        integration: "crm-sync".into(),
        at: now - Days::minutes(minutes_ago),
        actor: actor.into(),
        note: note.map(str::to_string),
    };
    store.write(&[ack(10, "jane", None)]).unwrap();
    assert_eq!(
        store.load_recent(3, 10).unwrap().acks["crm-sync"].actor,
        "jane"
    );
    store
        .write(&[ack(5, "ali", Some(store::ACK_WITHDRAWN))])
        .unwrap();
    assert!(
        !store
            .load_recent(3, 10)
            .unwrap()
            .acks
            .contains_key("crm-sync"),
        "withdrawn stays withdrawn"
    );
    store.write(&[ack(1, "ali", None)]).unwrap();
    assert_eq!(
        store.load_recent(3, 10).unwrap().acks["crm-sync"].actor,
        "ali"
    );
}

#[test]
fn recorded_expiries_and_open_journals_of_every_credential_are_read_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("history.db")).unwrap();
    let now = Utc::now();
    assert!(store.recorded_expiries().unwrap().is_empty());
    assert!(store.journal_open_credentials().unwrap().is_empty());
    let (a, b) = (now + Days::days(180), now + Days::days(90));
    store.record_expiry("crm", a, now).unwrap();
    store.record_expiry("cdp", b, now).unwrap();
    // A later activation replaces the earlier expiry.
    store.record_expiry("crm", a + Days::days(1), now).unwrap();
    let expiries = store.recorded_expiries().unwrap();
    assert_eq!(expiries.len(), 2);
    assert_eq!(
        expiries["crm"].timestamp_millis(),
        (a + Days::days(1)).timestamp_millis()
    );
    assert_eq!(expiries["cdp"].timestamp_millis(), b.timestamp_millis());

    // One finished effect, two left open for one credential and one for another.
    let done = store
        .journal_intent("crm", "write-sink", "staged", now)
        .unwrap();
    store.journal_result(done, "ok", now).unwrap();
    store
        .journal_intent("cdp", "write-sink", "staged", now)
        .unwrap();
    store
        .journal_intent("cdp", "record-expiry", "active", now)
        .unwrap();
    store
        .journal_intent("etl", "restore", "staged", now)
        .unwrap();
    let mut open: Vec<String> = store
        .journal_open_credentials()
        .unwrap()
        .into_iter()
        .collect();
    open.sort();
    assert_eq!(open, ["cdp", "etl"]);
}
