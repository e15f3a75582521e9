//! The CLI's edges as users hit them: the real binary on a real config and a real database file.

use crate::common::*;
use std::path::Path;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn authwatch(args: &[&str], dir: &Path) -> Run {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_authwatch"))
        .args(args)
        .env("XDG_STATE_HOME", dir)
        .env("XDG_CONFIG_HOME", dir)
        .env_remove("AUTHWATCH_CONFIG")
        .env_remove("NO_COLOR")
        .current_dir(dir)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A config with credential `crm-package` and one integration on it, and an (empty) database next to it.
fn config_and_db() -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", SENTINEL);
    let text = sfmc_credential("crm-package", "http://127.0.0.1:9/", "abc", &secret)
        + &integration("crm-sync", "crm-package", "");
    let config = write_config(dir.path(), &text).display().to_string();
    let db = dir.path().join("authwatch.db");
    authwatch::store::Store::open(&db).unwrap();
    (dir, config, db.display().to_string())
}

#[test]
fn audit_refuses_an_unknown_credential_and_suggests_the_near_one() {
    let (dir, config, db) = config_and_db();
    let run = authwatch(
        &[
            "audit",
            "--config",
            &config,
            "--db",
            &db,
            "--credential",
            "crm-pakage",
        ],
        dir.path(),
    );
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("unknown credential \"crm-pakage\""),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("did you mean \"crm-package\""),
        "{}",
        run.stderr
    );
    let run = authwatch(
        &[
            "audit",
            "--config",
            &config,
            "--db",
            &db,
            "--credential",
            "nope",
        ],
        dir.path(),
    );
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("unknown credential \"nope\""),
        "{}",
        run.stderr
    );
    // A known credential with no entries is fine.
    let run = authwatch(
        &[
            "audit",
            "--config",
            &config,
            "--db",
            &db,
            "--credential",
            "crm-package",
        ],
        dir.path(),
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}

#[test]
fn audit_table_has_a_header() {
    let (dir, config, db) = config_and_db();
    let mut store = authwatch::store::Store::open(Path::new(&db)).unwrap();
    store
        .append_audit(&authwatch::store::AuditEntry {
            at: chrono::Utc::now(),
            actor: "alice".into(),
            credential: "crm-package".into(),
            action: "stage".into(),
            from: "idle".into(),
            to: "staged".into(),
            result: "ok".into(),
            details: String::new(),
        })
        .unwrap();
    drop(store);
    let run = authwatch(&["audit", "--config", &config, "--db", &db], dir.path());
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let first = run.stdout.lines().next().unwrap_or("");
    assert!(
        run.stdout.lines().nth(1).unwrap_or("").contains("alice"),
        "{}",
        run.stdout
    );
    for column in [
        "TIME",
        "ACTOR",
        "CREDENTIAL",
        "ACTION",
        "FROM",
        "TO",
        "RESULT",
        "DETAILS",
    ] {
        assert!(
            first.contains(column),
            "header lacks {column}: {}",
            run.stdout
        );
    }
}

#[test]
fn report_since_takes_any_duration() {
    let (dir, config, db) = config_and_db();
    for since in ["12h", "90m", "3d", "24h"] {
        let run = authwatch(
            &["report", "--config", &config, "--db", &db, "--since", since],
            dir.path(),
        );
        assert_eq!(run.code, 0, "--since {since}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains("crm-sync"),
            "--since {since}: {}",
            run.stdout
        );
    }
    let run = authwatch(
        &[
            "report", "--config", &config, "--db", &db, "--since", "soon",
        ],
        dir.path(),
    );
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("invalid duration"), "{}", run.stderr);
}
