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
    let audit = |credential: &str| {
        authwatch(
            &[
                "audit",
                "--config",
                &config,
                "--db",
                &db,
                "--credential",
                credential,
            ],
            dir.path(),
        )
    };
    let run = audit("crm-pakage");
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
    let run = audit("nope");
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("unknown credential \"nope\""),
        "{}",
        run.stderr
    );
    // A known credential with no entries is fine.
    let run = audit("crm-package");
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
            origin: "cli".into(),
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
        "VIA",
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

/// The README promises the demo touches nothing outside its temporary directory: not even its log.
#[test]
fn demo_keeps_its_log_out_of_the_shared_state_directory() {
    let dir = tempfile::tempdir().unwrap();
    // No terminal here, so the console refuses after the demo started; the log would have been opened by then.
    let run = authwatch(&["demo"], dir.path());
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "demo left {left:?} in the state directory");
}

/// `--no-color` and `NO_COLOR` mean no escape sequence at all, in errors too (asserted on the raw bytes).
#[test]
fn no_color_means_no_escape_sequences_in_cli_output() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml").display().to_string();
    for no_color_env in [false, true] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_authwatch"));
        cmd.args(["simulate", "--scenario", &missing])
            .env("XDG_STATE_HOME", dir.path())
            .env_remove("NO_COLOR");
        if no_color_env {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.arg("--no-color");
        }
        let out = cmd.output().unwrap();
        assert_ne!(out.status.code(), Some(0));
        assert!(!out.stderr.is_empty());
        for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            assert!(
                !bytes.windows(2).any(|w| w == b"\x1b["),
                "{name} has escapes (NO_COLOR env: {no_color_env}): {:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}

/// Every option, argument and subcommand says what it is for in `--help`.
#[test]
fn every_option_and_subcommand_has_help_text() {
    use clap::CommandFactory;
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id != "help" && id != "version" && arg.get_help().is_none() {
                missing.push(format!("{path} {id}"));
            }
        }
        for sub in cmd.get_subcommands() {
            let sub_path = format!("{path} {}", sub.get_name());
            if sub.get_about().is_none() && sub.get_name() != "help" {
                missing.push(sub_path.clone());
            }
            walk(sub, &sub_path, missing);
        }
    }
    let mut missing = Vec::new();
    walk(&authwatch::cli::Cli::command(), "authwatch", &mut missing);
    assert!(missing.is_empty(), "no help text: {missing:?}");
}

/// Run with stdout a pipe whose reading end is already closed (`| true`, `| head` after it stopped reading):
/// every write fails with EPIPE. Returns the exit code and stderr.
fn with_closed_stdout(args: &[&str], dir: &Path) -> (Option<i32>, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_authwatch"))
        .args(args)
        .env("XDG_STATE_HOME", dir)
        .env("XDG_CONFIG_HOME", dir)
        .env_remove("AUTHWATCH_CONFIG")
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The only reader goes away before the first write.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `authwatch check --demo | true`: no panic (101), the Nagios exit code of the sweep survives.
#[test]
fn a_closed_stdout_ends_check_quietly_with_its_own_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    for format in ["text", "json", "nagios"] {
        let args = ["check", "--demo", "--format", format];
        let normal = authwatch(&args, dir.path());
        assert!(
            [0, 1, 2].contains(&normal.code),
            "{}{}",
            normal.stdout,
            normal.stderr
        );
        let (code, stderr) = with_closed_stdout(&args, dir.path());
        assert!(!stderr.contains("panicked"), "{format}: {stderr}");
        assert_eq!(code, Some(normal.code), "{format}: {stderr}");
    }
}

/// `authwatch report --format json | head -c 800`, and the text report and the audit table likewise.
#[test]
fn a_closed_stdout_ends_report_and_audit_quietly() {
    let (dir, config, db) = config_and_db();
    for args in [
        vec![
            "report", "--config", &config, "--db", &db, "--format", "json",
        ],
        vec!["report", "--config", &config, "--db", &db],
        vec!["audit", "--config", &config, "--db", &db],
    ] {
        let (code, stderr) = with_closed_stdout(&args, dir.path());
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
    }
}
