//! Secret rotation end to end: the real CLI binary against the simulator (Setup = its admin functions).

mod common;

use common::{SENTINEL, integration, sfmc_credential, start_sim, write_config, write_secret};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
    secret_file: PathBuf,
    db: PathBuf,
    master_key: Option<&'static str>,
    /// Every stdout and stderr, to search for secrets.
    outputs: std::cell::RefCell<Vec<String>>,
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Env {
    fn new(base_url: &str, scopes: &str, master_key: Option<&'static str>) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let secret_file = write_secret(dir.path(), "pkg.secret", SENTINEL);
        let text = format!(
            "[settings]\nstaging_delay = \"1s\"\ntimeout = \"5s\"\nfailure_threshold = 1\n\n{}{}{}",
            sfmc_credential("pkg", base_url, "cid-rot", &secret_file)
                .replace("\n\n", "\nsecret_expires = 2026-01-01\n\n"),
            integration(
                "crm-sync",
                "pkg",
                &format!("account_id = \"5100001\"\nscopes = {scopes}\nteam = \"crm-ops\"")
            ),
            integration(
                "bu2-sync",
                "pkg",
                "account_id = \"5100002\"\nteam = \"bu2-team\""
            ),
        );
        let config = write_config(dir.path(), &text);
        let db = dir.path().join("aw.db");
        Env {
            dir,
            config,
            secret_file,
            db,
            master_key,
            outputs: Default::default(),
        }
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Out {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_authwatch"));
        cmd.arg("--config")
            .arg(&self.config)
            .arg("--db")
            .arg(&self.db)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("XDG_STATE_HOME", self.state_dir())
            .env("AUTHWATCH_VAULT", self.dir.path().join("secrets.vault"))
            .env("AUTHWATCH_LOG", "debug")
            .env("USER", "rotation-tester")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(k) = self.master_key {
            cmd.env("AUTHWATCH_MASTER_KEY", k);
        }
        let mut child = cmd.spawn().unwrap();
        {
            let mut pipe = child.stdin.take().unwrap();
            if let Some(s) = stdin {
                pipe.write_all(s.as_bytes()).unwrap();
                pipe.write_all(b"\n").unwrap();
            }
        }
        let out = child.wait_with_output().unwrap();
        let o = Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        self.outputs
            .borrow_mut()
            .push(format!("$ {args:?}\n{}\n{}", o.stdout, o.stderr));
        o
    }

    fn rotate(&self, action: &str, extra: &[&str], stdin: Option<&str>) -> Out {
        let mut args = vec!["rotate", "pkg", action];
        args.extend_from_slice(extra);
        self.run(&args, stdin)
    }

    fn state(&self) -> serde_json::Value {
        let out = self.rotate("status", &["--format", "json"], None);
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        serde_json::from_str(&out.stdout).unwrap()
    }

    /// No secret in any output, the log files, the database files or the vault file in clear.
    fn assert_never_leaked(&self, secrets: &[&str]) {
        let mut haystacks: Vec<(String, Vec<u8>)> = self
            .outputs
            .borrow()
            .iter()
            .map(|o| ("output".to_string(), o.clone().into_bytes()))
            .collect();
        let mut files = vec![];
        collect_files(&self.state_dir(), &mut files);
        for suffix in ["", "-wal", "-shm"] {
            files.push(PathBuf::from(format!("{}{suffix}", self.db.display())));
        }
        files.push(self.dir.path().join("secrets.vault"));
        for f in files {
            if let Ok(bytes) = std::fs::read(&f) {
                haystacks.push((f.display().to_string(), bytes));
            }
        }
        for secret in secrets {
            for (name, bytes) in &haystacks {
                let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
                assert!(
                    !found,
                    "a secret leaked into {name}:\n{}",
                    String::from_utf8_lossy(bytes)
                );
            }
        }
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                collect_files(&p, out);
            } else {
                out.push(p);
            }
        }
    }
}

fn scenario(scopes: &str) -> String {
    format!(
        "[sim]\nexpires_in = 1079\nhang = \"5s\"\nstaging_delay = \"1s\"\n\n[[client]]\nid = \"pkg\"\nclient_id = \"cid-rot\"\nsecret = \"{SENTINEL}\"\nscopes = {scopes}\nmids = [\"5100001\", \"5100002\"]\n"
    )
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn wait_staging() {
    std::thread::sleep(std::time::Duration::from_millis(1300));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_rotation_through_the_cli_with_the_encrypted_store() {
    let sim = start_sim(&scenario("[\"data_extensions_read\", \"email_read\"]")).await;
    let env = Env::new(
        &sim.base_url(),
        "[\"data_extensions_read\", \"email_read\"]",
        Some(KEY),
    );
    let prev = PathBuf::from(format!("{}.prev", env.secret_file.display()));

    // Nothing in progress: verify, promote, activate and abort are refused with what to do.
    for action in ["verify", "promote", "abort"] {
        let out = env.rotate(action, &[], None);
        assert_eq!(out.code, 1, "{action}: {}{}", out.stdout, out.stderr);
        assert!(out.stdout.contains("REFUSED"), "{}", out.stdout);
        assert!(
            out.stdout.contains("rotate pkg stage") || out.stdout.contains("nothing to abort"),
            "{}",
            out.stdout
        );
    }

    // Setup: generate (staged).
    let new_secret = sim.generate_secret("pkg").unwrap();

    // A wrong secret fails verify with reasons, and the state stays staged.
    let out = env.rotate("stage", &[], Some("WRONG-secret-typo-123"));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("idle -> staged"), "{}", out.stdout);
    assert!(out.stdout.contains("SFMC accepts"), "{}", out.stdout);
    assert!(out.stdout.contains("kept encrypted"), "{}", out.stdout);
    wait_staging();
    let out = env.rotate("verify", &[], None);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("crm-sync: token request refused (401 invalid_client)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("bu2-sync: token request refused"),
        "{}",
        out.stdout
    );
    assert_eq!(env.state()["state"], "staged");

    // Promote before a passing verify is refused.
    let out = env.rotate("promote", &[], None);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("not verified"), "{}", out.stdout);

    // The right one (the pending secret is kept encrypted between these processes).
    let out = env.rotate("stage", &[], Some(&new_secret));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("replaces the pending one"),
        "{}",
        out.stdout
    );
    let out = env.rotate("verify", &[], None);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("staged -> verified"), "{}", out.stdout);
    assert!(
        out.stdout.contains(
            "crm-sync: token granted, scopes data_extensions_read email_read, call ok, MID 5100001"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("bu2-sync: token granted, call ok, MID 5100002"),
        "{}",
        out.stdout
    );

    // Promote: file sink written atomically, 0600, previous kept as .prev.
    let out = env.rotate("promote", &[], None);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("verified -> promoted"),
        "{}",
        out.stdout
    );
    assert_eq!(
        std::fs::read_to_string(&env.secret_file)
            .unwrap()
            .trim_end(),
        new_secret
    );
    assert_eq!(mode(&env.secret_file), 0o600);
    assert_eq!(std::fs::read_to_string(&prev).unwrap().trim_end(), SENTINEL);
    assert_eq!(mode(&prev), 0o600);

    // Activate needs the typed id; a wrong id does nothing.
    let out = env.rotate("activate", &[], None);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("--confirm pkg"), "{}", out.stdout);
    let out = env.rotate("activate", &["--confirm", "pgk"], None);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("is not the credential id"),
        "{}",
        out.stderr
    );
    assert_eq!(env.state()["state"], "promoted");

    // Confirmed before it was really activated in Setup: the old secret still works -> not completed.
    let out = env.rotate("activate", &["--confirm", "pkg"], None);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("OLD secret is still accepted"),
        "{}",
        out.stdout
    );
    assert_eq!(env.state()["state"], "activated");
    // After activation there is no rollback.
    let out = env.rotate("abort", &[], None);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("no rollback"), "{}", out.stdout);

    // Setup: activate. Now the old secret is refused and the new one works everywhere.
    sim.activate_secret("pkg").unwrap();
    let out = env.rotate("activate", &[], None);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("activated -> completed"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("old secret refused (401 invalid_client)"),
        "{}",
        out.stdout
    );
    assert!(!prev.exists(), ".prev is removed on completion");
    let state = env.state();
    assert_eq!(state["state"], "completed");
    let expires: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(state["new_expires"].clone()).unwrap();
    let days = (expires - chrono::Utc::now()).num_days();
    assert!((179..=180).contains(&days), "{days}");

    // check uses the recorded expiry (the config still says 2026-01-01).
    let out = env.run(&["check", "--format", "json"], None);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let cred = &report["credentials"][0];
    assert_eq!(cred["id"], "pkg");
    assert_eq!(
        cred["secret_expires"],
        expires.format("%Y-%m-%d").to_string()
    );

    // The audit trail: every step and every check, with who/when/from/to/result.
    let out = env.run(&["audit", "--credential", "pkg", "--format", "json"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let entries: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    for e in &entries {
        let keys: Vec<&String> = e.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "action",
                "actor",
                "at",
                "credential",
                "details",
                "from",
                "result",
                "to"
            ]
        );
        assert_eq!(e["actor"], "rotation-tester");
        assert_eq!(e["credential"], "pkg");
    }
    let steps: Vec<String> = entries
        .iter()
        .filter(|e| e["action"] != "check")
        .map(|e| {
            format!(
                "{} {}->{} {}",
                e["action"].as_str().unwrap(),
                e["from"].as_str().unwrap(),
                e["to"].as_str().unwrap(),
                e["result"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            "verify idle->idle refused",
            "promote idle->idle refused",
            "abort idle->idle refused",
            "stage idle->staged ok",
            "verify staged->staged requested",
            "verify-result staged->staged failed",
            "promote staged->staged refused",
            "stage staged->staged ok",
            "verify staged->staged requested",
            "verify-result staged->verified ok",
            "promote verified->verified requested",
            "promote-result verified->promoted ok",
            "activate promoted->promoted refused",
            "activate promoted->activated ok",
            "activate-result activated->activated failed",
            "abort activated->activated refused",
            "activate activated->activated requested",
            "activate-result activated->completed ok",
        ]
    );
    let checks = entries.iter().filter(|e| e["action"] == "check").count();
    // 2 failed + 2 passed verifications, 2 re-probes, (old + 2 new) x 2 activation checks.
    assert_eq!(checks, 2 + 2 + 2 + 3 + 3, "{:#?}", entries);
    let text = env.run(&["audit"], None);
    assert!(text.stdout.contains("rotation-tester"), "{}", text.stdout);

    env.assert_never_leaked(&[SENTINEL, &new_secret, "WRONG-secret-typo-123"]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_secret_missing_a_scope_fails_verify_naming_it() {
    // The package lacks email_read (someone edited it): both secrets get tokens without it.
    let sim = start_sim(&scenario("[\"data_extensions_read\"]")).await;
    let env = Env::new(
        &sim.base_url(),
        "[\"data_extensions_read\", \"email_read\"]",
        Some(KEY),
    );
    let new_secret = sim.generate_secret("pkg").unwrap();
    let out = env.rotate("stage", &[], Some(&new_secret));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    wait_staging();
    let out = env.rotate("verify", &[], None);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("crm-sync: new secret lacks email_read: the package was edited?"),
        "{}",
        out.stdout
    );
    // The consumer that does not need it passes.
    assert!(
        out.stdout.contains("OK    bu2-sync: token granted"),
        "{}",
        out.stdout
    );
    let state = env.state();
    assert_eq!(state["state"], "staged");
    let out = env.rotate("status", &[], None);
    assert!(out.stdout.contains("lacks email_read"), "{}", out.stdout);
    env.assert_never_leaked(&[SENTINEL, &new_secret]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_after_promote_restores_the_previous_secret() {
    let sim = start_sim(&scenario("[\"data_extensions_read\", \"email_read\"]")).await;
    let env = Env::new(&sim.base_url(), "[\"data_extensions_read\"]", Some(KEY));
    let prev = PathBuf::from(format!("{}.prev", env.secret_file.display()));
    let new_secret = sim.generate_secret("pkg").unwrap();
    assert_eq!(env.rotate("stage", &[], Some(&new_secret)).code, 0);
    wait_staging();
    assert_eq!(env.rotate("verify", &[], None).code, 0);
    assert_eq!(env.rotate("promote", &[], None).code, 0);
    assert_eq!(
        std::fs::read_to_string(&env.secret_file)
            .unwrap()
            .trim_end(),
        new_secret
    );
    let out = env.rotate("abort", &[], None);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("promoted -> aborted"), "{}", out.stdout);
    assert!(out.stdout.contains("restored"), "{}", out.stdout);
    assert_eq!(
        std::fs::read_to_string(&env.secret_file)
            .unwrap()
            .trim_end(),
        SENTINEL
    );
    assert_eq!(mode(&env.secret_file), 0o600);
    assert!(!prev.exists());
    assert_eq!(env.state()["state"], "aborted");
    // The pending secret is gone from the encrypted store.
    let vault = authwatch::vault::Vault::new(
        env.dir.path().join("secrets.vault"),
        &authwatch::vault::MasterKey::parse(KEY).unwrap(),
    );
    assert_eq!(vault.names().unwrap(), Vec::<String>::new());
    env.assert_never_leaked(&[SENTINEL, &new_secret]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_master_key_the_pending_secret_is_entered_again() {
    let sim = start_sim(&scenario("[\"data_extensions_read\", \"email_read\"]")).await;
    let env = Env::new(&sim.base_url(), "[\"data_extensions_read\"]", None);
    let new_secret = sim.generate_secret("pkg").unwrap();
    let out = env.rotate("stage", &[], Some(&new_secret));
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("NOT kept"), "{}", out.stdout);
    wait_staging();
    // Nothing on stdin: it asks and fails as a usage error.
    let out = env.rotate("verify", &[], None);
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("enter it again"), "{}", out.stderr);
    let out = env.rotate("verify", &[], Some(&new_secret));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(!env.dir.path().join("secrets.vault").exists());
    env.assert_never_leaked(&[SENTINEL, &new_secret]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_credential_and_bad_master_key_are_usage_errors() {
    let sim = start_sim(&scenario("[\"data_extensions_read\"]")).await;
    let env = Env::new(
        &sim.base_url(),
        "[\"data_extensions_read\"]",
        Some("not-hex"),
    );
    let out = env.run(&["rotate", "pgk", "status"], None);
    assert_eq!(out.code, 3);
    assert!(
        out.stderr.contains("AUTHWATCH_MASTER_KEY is malformed"),
        "{}",
        out.stderr
    );
    let env = Env::new(&sim.base_url(), "[\"data_extensions_read\"]", Some(KEY));
    let out = env.run(&["rotate", "pgk", "status"], None);
    assert_eq!(out.code, 3);
    assert!(out.stderr.contains("did you mean `pkg`"), "{}", out.stderr);
    sim.shutdown().await;
}
