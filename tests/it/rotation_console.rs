//! The console's rotation wizard end to end: keys into the real console state, the real rotation task with its
//! SQLite store and file sink, the real engine, and the simulator standing in for Setup (as in `authwatch demo`).

use crate::common::*;
use authwatch::engine::{self, EngineOptions};
use authwatch::rotation::session::{self, RotationSetup, Update};
use authwatch::tui::fixture::render_text;
use authwatch::tui::{App, AppOptions};
use chrono::Utc;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

const CLIENT: &str = "cid-wizard";

struct Console {
    app: App,
    updates: UnboundedReceiver<Update>,
    /// Every screen drawn, to search for secrets.
    screens: Vec<String>,
}

impl Console {
    fn key(&mut self, code: KeyCode) {
        self.app
            .handle_key(KeyEvent::new(code, KeyModifiers::NONE), Utc::now());
    }
    fn typ(&mut self, s: &str) {
        for c in s.chars() {
            self.key(KeyCode::Char(c));
        }
    }
    fn screen(&mut self) -> String {
        let s = render_text(&self.app, 100, 30, Utc::now());
        self.screens.push(s.clone());
        s
    }
    /// Wait for the rotation task's answer, apply it, and return the screen.
    async fn answered(&mut self) -> String {
        let u = tokio::time::timeout(Duration::from_secs(20), self.updates.recv())
            .await
            .expect("the rotation task answers")
            .expect("the rotation task runs");
        self.app.apply_rotation_update(u, Utc::now());
        self.screen()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_rotation_from_the_wizard_in_the_demo_setting() {
    let sim = start_sim(&format!(
        "[sim]\nexpires_in = 1079\nstaging_delay = \"300ms\"\n\n[[client]]\nid = \"pkg\"\nclient_id = \"{CLIENT}\"\nsecret = \"{SENTINEL}\"\nscopes = [\"data_extensions_read\"]\nmids = [\"5100001\"]\n"
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let secret_file = write_secret(dir.path(), "pkg.secret", SENTINEL);
    let config = load_config(
        dir.path(),
        &format!(
            "[settings]\nstaging_delay = \"300ms\"\nprobe_interval = \"1h\"\n\n{}{}",
            sfmc_credential("pkg", &sim.base_url(), CLIENT, &secret_file)
                .replace("\n\n", "\nsecret_expires = 2026-12-05\n\n"),
            integration(
                "crm-sync",
                "pkg",
                "account_id = \"5100001\"\nscopes = [\"data_extensions_read\"]\nteam = \"crm-ops\""
            ) + &sfmc_credential("other", &sim.base_url(), CLIENT, &secret_file)
                + &integration("web-shop", "other", "team = \"web\""),
        ),
    );
    let db = dir.path().join("aw.db");
    let running = engine::spawn(
        config.clone(),
        EngineOptions {
            rotation: Some(RotationSetup {
                config: Arc::new(config),
                db: db.clone(),
                sim: Some(sim.admin()),
            }),
            ..Default::default()
        },
    )
    .unwrap();
    let handle = running.handle.clone();
    let (tx, updates) = handle.rotation_link(session::Actor::console());
    let app = App::new(handle.snapshot(), AppOptions::default())
        .with_handle(handle.clone())
        .with_rotation(tx.clone(), true);
    let mut c = Console {
        app,
        updates,
        screens: Vec::new(),
    };

    // The wizard for crm-sync's credential (the filter makes it the selected row).
    c.key(KeyCode::Char('/'));
    c.typ("crm-sync");
    c.key(KeyCode::Enter);
    c.key(KeyCode::Char('r'));
    let s = c.answered().await;
    assert!(s.contains("Rotate secret: pkg"), "{s}");
    assert!(s.contains("state: idle"), "{s}");
    assert!(s.contains("g generate in simulator"), "{s}");
    assert!(s.contains("crm-sync  team crm-ops"), "{s}");

    // "Generate in simulator" stands in for Setup and stages what it generated.
    c.key(KeyCode::Char('g'));
    let s = c.answered().await;
    assert!(s.contains("state: staged"), "{s}");
    assert!(s.contains("generated a new secret in the simulator"), "{s}");
    let accept_after = c.app.wizard().unwrap().rotation.accept_after.unwrap();
    // SFMC (the simulator) accepts the staged secret only after the staging delay: wait for that moment.
    if let Ok(wait) = (accept_after - Utc::now()).to_std() {
        tokio::time::sleep(wait + Duration::from_millis(50)).await;
    }

    // Another credential's wizard in between: the pending secret, in memory only (no master key), is kept.
    c.key(KeyCode::Esc);
    tx.send(session::Request {
        credential: "other".into(),
        cmd: session::WizardCmd::Open,
    })
    .unwrap();
    c.answered().await;
    c.key(KeyCode::Char('r'));
    let s = c.answered().await;
    assert!(s.contains("state: staged"), "{s}");

    c.key(KeyCode::Char('v'));
    let s = c.answered().await;
    assert!(s.contains("state: verified"), "{s}");
    assert!(s.contains("OK   crm-sync: token granted"), "{s}");

    c.key(KeyCode::Char('p'));
    let s = c.answered().await;
    assert!(s.contains("state: promoted"), "{s}");
    let new_secret = std::fs::read_to_string(&secret_file)
        .unwrap()
        .trim()
        .to_string();
    assert_ne!(new_secret, SENTINEL);
    let prev = dir.path().join("pkg.secret.prev");
    assert_eq!(
        std::fs::read_to_string(&prev).unwrap().trim(),
        SENTINEL,
        "previous kept until completion"
    );
    assert_eq!(
        std::fs::metadata(&secret_file)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // Activation: the point of no return needs the credential id typed.
    c.key(KeyCode::Char('A'));
    let s = c.screen();
    assert!(s.contains("Type `pkg` to confirm"), "{s}");
    c.typ("pkg");
    c.key(KeyCode::Enter);
    let s = c.answered().await;
    assert!(s.contains("state: completed"), "{s}");
    assert!(
        s.contains("OK   old secret refused (401 invalid_client)"),
        "{s}"
    );
    assert!(
        !prev.exists(),
        "the previous secret is dropped at completion"
    );

    // The engine uses the new expiry at once (calendar and rules): activation + 180 days.
    let mut snaps = handle.watch();
    let expires = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let e = snaps
                .borrow_and_update()
                .credentials
                .iter()
                .find(|c| c.id == "pkg")
                .and_then(|c| c.secret_expires);
            if let Some(e) = e.filter(|e| *e > Utc::now() + chrono::Duration::days(170)) {
                return e;
            }
            snaps.changed().await.unwrap();
        }
    })
    .await
    .expect("the engine takes the new expiry");
    assert!(expires <= Utc::now() + chrono::Duration::days(180));
    c.app.apply_snapshot(handle.snapshot());

    // The detail view shows the audit trail.
    c.key(KeyCode::Esc);
    c.key(KeyCode::Enter);
    let s = c.answered().await;
    assert!(s.contains("Rotation audit"), "{s}");
    assert!(s.contains("activate ok (promoted -> activated)"), "{s}");

    // Neither secret was ever on screen or in the database.
    for s in &c.screens {
        assert!(!s.contains(SENTINEL) && !s.contains(&new_secret), "{s}");
    }
    drop(c);
    drop(tx);
    let _ = handle.send(authwatch::engine::Command::Shutdown).await;
    let _ = running.task.await;
    // The rotation task closes its store once the console is gone (SQLite then folds its WAL back in).
    let wal = dir.path().join("aw.db-wal");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while wal.exists() {
        assert!(std::time::Instant::now() < deadline, "the store stays open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("aw.db")
        {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).to_string();
            assert!(
                !text.contains(SENTINEL) && !text.contains(&new_secret),
                "{}",
                path.display()
            );
        }
    }
}
