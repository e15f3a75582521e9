//! Blocking work (SQLite, file locks, file writes) never runs on the async workers: on the machines we run on
//! there are two, and one blocked worker stalls the console.

use crate::common::*;
use authwatch::rotation::fsm::Phase;
use authwatch::rotation::session::{self, Request, RotationSetup, WizardCmd};
use authwatch::store::Store;
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;

const CLIENT: &str = "cid-blocking";

/// The rotation task waits for a database another process holds locked (SQLite's busy wait: a blocking sleep).
/// Meanwhile the runtime, reduced to one worker, must go on running other tasks; once the lock goes, the
/// rotation step completes.
#[test]
fn a_rotation_waiting_for_a_locked_database_leaves_the_async_worker_free() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sim = rt.block_on(start_sim(&one_client_scenario(CLIENT, SENTINEL, "")));
    let secret_file = write_secret(dir.path(), "pkg.secret", SENTINEL);
    let config = load_config(
        dir.path(),
        &(sfmc_credential("pkg", &sim.base_url(), CLIENT, &secret_file)
            + &integration("crm-sync", "pkg", "")),
    );
    let db = dir.path().join("aw.db");
    drop(Store::open(&db).unwrap());
    // Another process writing: it holds the write lock until we say.
    let blocker = rusqlite::Connection::open(&db).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

    // The engine's rotation driver, as the console and the agent run it.
    let (tx, mut updates, _engine) = {
        let _in_runtime = rt.enter();
        let running = authwatch::engine::spawn(
            config.clone(),
            authwatch::engine::EngineOptions {
                rotation: Some(RotationSetup {
                    config: Arc::new(config),
                    db: db.clone(),
                    sim: None,
                }),
                ..Default::default()
            },
        )
        .unwrap();
        let (tx, rx) = running.handle.rotation_link(session::Actor::console());
        (tx, rx, running)
    };
    tx.send(Request {
        credential: "pkg".into(),
        cmd: WizardCmd::Stage(SecretString::from("the-new-secret-from-setup")),
    })
    .unwrap();

    // The store waits up to 2 s for the lock, then gives up. All that time, tasks must keep running: each one
    // within a small part of that wait.
    let first = loop {
        if let Ok(update) = updates.try_recv() {
            break update;
        }
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        rt.spawn(async move {
            let _ = done_tx.send(());
        });
        assert!(
            done_rx.recv_timeout(Duration::from_millis(500)).is_ok(),
            "a task did not run while the rotation waited for the database: the worker is blocked"
        );
    };
    // The step did wait for the lock (so the loop above ran during that wait), and says so.
    assert!(!first.ok);
    let text = format!("{:?}", first.lines);
    assert!(text.contains("locked"), "{text}");

    // Lock gone: the same step goes through.
    blocker.execute_batch("COMMIT").unwrap();
    tx.send(Request {
        credential: "pkg".into(),
        cmd: WizardCmd::Stage(SecretString::from("the-new-secret-from-setup")),
    })
    .unwrap();
    let update = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(20), updates.recv()).await })
        .expect("the rotation task answers")
        .expect("the rotation task runs");
    assert!(update.ok, "{:?}", update.lines);
    assert_eq!(update.rotation.map(|r| r.phase), Some(Phase::Staged));
    rt.block_on(sim.shutdown());
}
