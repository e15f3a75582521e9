//! Secret rotation end to end: the real CLI binary against the simulator (Setup = its admin functions).

use crate::common::{
    SENTINEL, integration, sfmc_credential, start_sim, write_config, write_secret,
};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub(crate) const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) config: PathBuf,
    pub(crate) secret_file: PathBuf,
    pub(crate) db: PathBuf,
    pub(crate) master_key: Option<&'static str>,
    /// Every stdout and stderr, to search for secrets.
    pub(crate) outputs: std::cell::RefCell<Vec<String>>,
    /// Extra environment variables of the authwatch process (e.g. an `{ env = .. }` secret).
    pub(crate) vars: std::cell::RefCell<Vec<(String, String)>>,
}

pub(crate) struct Out {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Out {
    /// stdout says `text` (the whole output is shown when it does not).
    pub(crate) fn has(&self, text: &str) {
        assert!(self.stdout.contains(text), "{}", self.stdout);
    }
}

impl Env {
    pub(crate) fn new(base_url: &str, scopes: &str, master_key: Option<&'static str>) -> Env {
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
            vars: Default::default(),
        }
    }

    pub(crate) fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The authwatch command with this environment's config, database, vault and variables.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
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
            .envs(self.vars.borrow().iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(k) = self.master_key {
            cmd.env("AUTHWATCH_MASTER_KEY", k);
        }
        cmd
    }

    pub(crate) fn run(&self, args: &[&str], stdin: Option<&str>) -> Out {
        let mut child = self.command(args).spawn().unwrap();
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

    pub(crate) fn rotate(&self, action: &str, extra: &[&str], stdin: Option<&str>) -> Out {
        let mut args = vec!["rotate", "pkg", action];
        args.extend_from_slice(extra);
        self.run(&args, stdin)
    }

    pub(crate) fn state(&self) -> serde_json::Value {
        let out = self.rotate("status", &["--format", "json"], None);
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        serde_json::from_str(&out.stdout).unwrap()
    }

    /// No secret in any output, the log files, the database files or the vault file in clear.
    pub(crate) fn assert_never_leaked(&self, secrets: &[&str]) {
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

pub(crate) fn scenario(scopes: &str) -> String {
    format!(
        "[sim]\nexpires_in = 1079\nhang = \"5s\"\nstaging_delay = \"1s\"\n\n[[client]]\nid = \"pkg\"\nclient_id = \"cid-rot\"\nsecret = \"{SENTINEL}\"\nscopes = {scopes}\nmids = [\"5100001\", \"5100002\"]\n"
    )
}

pub(crate) fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

pub(crate) fn wait_staging() {
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
        out.has("REFUSED");
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
    out.has("idle -> staged");
    out.has("SFMC accepts");
    out.has("kept encrypted");
    wait_staging();
    let out = env.rotate("verify", &[], None);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    out.has("crm-sync: token request refused (401 invalid_client)");
    out.has("bu2-sync: token request refused");
    assert_eq!(env.state()["state"], "staged");

    // Promote before a passing verify is refused.
    let out = env.rotate("promote", &[], None);
    assert_eq!(out.code, 1);
    out.has("not verified");

    // The right one (the pending secret is kept encrypted between these processes).
    let out = env.rotate("stage", &[], Some(&new_secret));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    out.has("replaces the pending one");
    let out = env.rotate("verify", &[], None);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    out.has("staged -> verified");
    out.has(
        "crm-sync: token granted, scopes data_extensions_read email_read, call ok, MID 5100001",
    );
    out.has("bu2-sync: token granted, call ok, MID 5100002");

    // Promote: file sink written atomically, 0600, previous kept as .prev.
    let out = env.rotate("promote", &[], None);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    out.has("verified -> promoted");
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
    out.has("--confirm pkg");
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
    out.has("OLD secret is still accepted");
    assert_eq!(env.state()["state"], "activated");
    // After activation there is no rollback.
    let out = env.rotate("abort", &[], None);
    assert_eq!(out.code, 1);
    out.has("no rollback");

    // Setup: activate. Now the old secret is refused and the new one works everywhere.
    sim.activate_secret("pkg").unwrap();
    let out = env.rotate("activate", &[], None);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    out.has("activated -> completed");
    out.has("old secret refused (401 invalid_client)");
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
    let (entries, steps) = env.audit_steps();
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
                "origin",
                "result",
                "to"
            ]
        );
        assert_eq!(e["actor"], "rotation-tester");
        assert_eq!(e["origin"], "cli");
        assert_eq!(e["credential"], "pkg");
    }
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
            "write-sink verified->verified ok",
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
    // 2 failed + 2 passed verifications, old still works at promote + 2 re-probes, (old + 2 new) x 2 activation
    // checks.
    assert_eq!(checks, 2 + 2 + 1 + 2 + 3 + 3, "{:#?}", entries);
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
    out.has("crm-sync: new secret lacks email_read: the package was edited?");
    // The consumer that does not need it passes.
    out.has("OK    bu2-sync: token granted");
    let state = env.state();
    assert_eq!(state["state"], "staged");
    let out = env.rotate("status", &[], None);
    out.has("lacks email_read");
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
    out.has("promoted -> aborted");
    out.has("restored");
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
    let vault = authwatch::secrets::vault::Vault::new(
        env.dir.path().join("secrets.vault"),
        &authwatch::secrets::vault::MasterKey::parse(KEY).unwrap(),
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
    out.has("NOT kept");
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

// ---- Command and env sinks -------------------------------------------------------------------------------------

impl Env {
    /// Replace the credential's `client_secret = { file = .. }` line by `lines` (another reference form).
    pub(crate) fn set_secret_reference(&self, lines: &str) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let old = format!(
            "client_secret = {{ file = \"{}\" }}",
            self.secret_file.display()
        );
        assert!(text.contains(&old), "{text}");
        std::fs::write(&self.config, text.replace(&old, lines)).unwrap();
    }

    /// Set an environment variable of every following authwatch process.
    pub(crate) fn set_var(&self, name: &str, value: &str) {
        let mut vars = self.vars.borrow_mut();
        vars.retain(|(k, _)| k != name);
        vars.push((name.to_string(), value.to_string()));
    }

    pub(crate) fn unset_var(&self, name: &str) {
        self.vars.borrow_mut().retain(|(k, _)| k != name);
    }

    pub(crate) fn secret_in_file(&self) -> String {
        std::fs::read_to_string(&self.secret_file)
            .unwrap()
            .trim_end()
            .to_string()
    }

    /// The audit trail as JSON, and its non-check entries as "action from->to result".
    pub(crate) fn audit_steps(&self) -> (Vec<serde_json::Value>, Vec<String>) {
        let out = self.run(&["audit", "--credential", "pkg", "--format", "json"], None);
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        let entries: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
        let steps = entries
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
        (entries, steps)
    }

    pub(crate) fn vault_names(&self) -> Vec<String> {
        let vault = authwatch::secrets::vault::Vault::new(
            self.dir.path().join("secrets.vault"),
            &authwatch::secrets::vault::MasterKey::parse(KEY).unwrap(),
        );
        vault.names().unwrap()
    }
}

/// Turn `env` into a command sink: `client_secret` runs `sh -c "cat <secret file>"`, and `client_secret_update`
/// runs a script that records its argv and environment in the returned log (one `--- call` block per run), then
/// writes stdin to the secret file (temp file + rename).
pub(crate) fn command_sink(env: &Env) -> PathBuf {
    let dir = env.dir.path();
    let log = dir.join("update-calls.log");
    let script = dir.join("update-secret.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nset -e\nlog='{}'\ntarget=\"$2\"\necho \"--- call argv: $0 $*\" >> \"$log\"\nenv >> \"$log\"\numask 077\ncat > \"$target.new\"\nmv \"$target.new\" \"$target\"\n",
            log.display()
        ),
    )
    .unwrap();
    let secret = env.secret_file.display();
    env.set_secret_reference(&format!(
        "client_secret = {{ command = [\"sh\", \"-c\", \"cat {secret}\"] }}\nclient_secret_update = {{ command = [\"sh\", \"{}\", \"--target\", \"{secret}\"] }}",
        script.display()
    ));
    log
}

/// The update command's runs, from its log.
pub(crate) fn update_calls(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.split("--- call ")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn assert_not_in(haystack: &str, secrets: &[&str], what: &str) {
    for s in secrets {
        assert!(
            !haystack.contains(s),
            "a secret leaked into {what}:\n{haystack}"
        );
    }
}

/// stage (with the sim's generated secret) -> wait out the staging delay -> verify; returns the new secret.
pub(crate) fn stage_and_verify(sim: &authwatch::sim::SimServer, env: &Env) -> String {
    let new_secret = sim.generate_secret("pkg").unwrap();
    let out = env.rotate("stage", &[], Some(&new_secret));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    wait_staging();
    let out = env.rotate("verify", &[], None);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    out.has("staged -> verified");
    new_secret
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_sink_full_rotation_passes_the_secret_on_stdin_only() {
    let sim = start_sim(&scenario("[\"data_extensions_read\", \"email_read\"]")).await;
    let env = Env::new(&sim.base_url(), "[\"data_extensions_read\"]", Some(KEY));
    let log = command_sink(&env);

    let out = env.rotate("status", &[], None);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    out.has("new secret goes to update command `sh ");

    let new_secret = stage_and_verify(&sim, &env);
    assert!(update_calls(&log).is_empty(), "verify must not write");
    assert_eq!(env.secret_in_file(), SENTINEL);

    // Promote: the update command runs once, gets the new secret on stdin; consumers re-probed through the
    // `cat` command now read it.
    let out = env.rotate("promote", &[], None);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    out.has("verified -> promoted");
    out.has("passed the new secret on stdin: update command `sh ");
    out.has("OK    crm-sync: token granted, scopes data_extensions_read, call ok, MID 5100001");
    out.has("OK    bu2-sync: token granted, call ok, MID 5100002");
    assert_eq!(env.secret_in_file(), new_secret);
    assert_eq!(
        std::fs::read_to_string(&env.secret_file).unwrap(),
        format!("{new_secret}\n"),
        "exactly the secret and a newline on stdin"
    );
    assert_eq!(mode(&env.secret_file), 0o600);
    let calls = update_calls(&log);
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(
        calls[0].starts_with(&format!(
            "argv: {} --target {}",
            env.dir.path().join("update-secret.sh").display(),
            env.secret_file.display()
        )),
        "{}",
        calls[0]
    );
    // The environment was dumped (so the check below means something) and holds neither secret.
    assert!(calls[0].contains("USER=rotation-tester"), "{}", calls[0]);
    assert_not_in(
        &calls[0],
        &[SENTINEL, &new_secret],
        "the update command's argv/environment",
    );
    // Not a file sink: no `.prev` next to the file the command reads.
    assert!(!PathBuf::from(format!("{}.prev", env.secret_file.display())).exists());
    assert_eq!(env.state()["state"], "promoted");

    // Setup: activate; then the old secret (kept encrypted at promote) must be refused, the new one work.
    sim.activate_secret("pkg").unwrap();
    let out = env.rotate("activate", &["--confirm", "pkg"], None);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    out.has("old secret refused (401 invalid_client)");
    out.has("promoted -> completed");
    assert_eq!(env.state()["state"], "completed");
    assert_eq!(update_calls(&log).len(), 1, "activate does not write");
    assert_eq!(env.secret_in_file(), new_secret);
    // Pending and previous secrets are gone from the encrypted store.
    assert_eq!(env.vault_names(), Vec::<String>::new());

    let (entries, steps) = env.audit_steps();
    assert_eq!(
        steps,
        [
            "stage idle->staged ok",
            "verify staged->staged requested",
            "verify-result staged->verified ok",
            "promote verified->verified requested",
            "write-sink verified->verified ok",
            "promote-result verified->promoted ok",
            "activate promoted->activated ok",
            "activate-result activated->completed ok",
        ]
    );
    let checks: Vec<&serde_json::Value> =
        entries.iter().filter(|e| e["action"] == "check").collect();
    // 2 verifications, old still works at promote + 2 re-probes, old refused + 2 new.
    assert_eq!(checks.len(), 2 + 1 + 2 + 3, "{entries:#?}");
    assert!(checks.iter().all(|e| e["result"] == "ok"), "{entries:#?}");

    let calls = std::fs::read_to_string(&log).unwrap();
    assert_not_in(&calls, &[SENTINEL, &new_secret], "the update command's log");
    env.assert_never_leaked(&[SENTINEL, &new_secret]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_sink_abort_after_promote_passes_the_previous_secret_back() {
    let sim = start_sim(&scenario("[\"data_extensions_read\", \"email_read\"]")).await;
    let env = Env::new(&sim.base_url(), "[\"data_extensions_read\"]", Some(KEY));
    let log = command_sink(&env);
    let new_secret = stage_and_verify(&sim, &env);
    let out = env.rotate("promote", &[], None);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(env.secret_in_file(), new_secret);
    // The current secret was kept (encrypted) for the restore, next to the pending one.
    let mut names = env.vault_names();
    names.sort();
    assert_eq!(names, ["rotation:pkg:pending", "rotation:pkg:previous"]);

    // Abort (another process): the update command runs again, with the previous secret on stdin.
    let out = env.rotate("abort", &[], None);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    out.has("promoted -> aborted");
    out.has("passed the previous secret back: update command `sh ");
    out.has("pending secret discarded");
    assert_eq!(
        std::fs::read_to_string(&env.secret_file).unwrap(),
        format!("{SENTINEL}\n")
    );
    assert_eq!(mode(&env.secret_file), 0o600);
    let calls = update_calls(&log);
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(
        calls[0].lines().next(),
        calls[1].lines().next(),
        "same argv"
    );
    for c in &calls {
        assert_not_in(
            c,
            &[SENTINEL, &new_secret],
            "the update command's argv/environment",
        );
    }
    assert_eq!(env.state()["state"], "aborted");
    assert_eq!(env.vault_names(), Vec::<String>::new());

    // The restored secret works again as consumers read it (through the `cat` command). (`check` itself fails:
    // the configured secret_expires is in the past.)
    let out = env.run(&["check", "--format", "json"], None);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let integrations = report["integrations"].as_array().unwrap();
    assert_eq!(integrations.len(), 2, "{report}");
    for i in integrations {
        assert_eq!(i["probe"]["outcome"], "ok", "{report}");
    }

    let (_, steps) = env.audit_steps();
    assert_eq!(
        steps,
        [
            "stage idle->staged ok",
            "verify staged->staged requested",
            "verify-result staged->verified ok",
            "promote verified->verified requested",
            "write-sink verified->verified ok",
            "promote-result verified->promoted ok",
            "abort promoted->promoted requested",
            "update-command promoted->promoted ok",
            "abort-result promoted->aborted ok",
        ]
    );
    env.assert_never_leaked(&[SENTINEL, &new_secret]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_sink_promote_needs_a_manual_confirmation_then_completes() {
    let sim = start_sim(&scenario("[\"data_extensions_read\", \"email_read\"]")).await;
    let env = Env::new(&sim.base_url(), "[\"data_extensions_read\"]", Some(KEY));
    env.set_secret_reference("client_secret = { env = \"PKG_SFMC_SECRET\" }");
    env.set_var("PKG_SFMC_SECRET", SENTINEL);
    // The file is not used any more: an unrelated value shows it is neither read nor written.
    std::fs::write(&env.secret_file, "unused\n").unwrap();

    let out = env.rotate("status", &[], None);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    out.has("secret read from env:PKG_SFMC_SECRET");
    out.has("new secret goes to by hand: environment variable PKG_SFMC_SECRET");

    let new_secret = stage_and_verify(&sim, &env);

    // Without --confirm-manual: refused, with what must be updated and who uses it.
    let out = env.rotate("promote", &[], None);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    out.has("REFUSED");
    out.has("authwatch cannot write where pkg's secret is read from");
    out.has("update environment variable PKG_SFMC_SECRET of every process that uses pkg (and of authwatch itself)");
    out.has("consumer crm-sync, team crm-ops, MID 5100001");
    out.has("consumer bu2-sync, team bu2-team, MID 5100002");
    out.has("`authwatch rotate pkg promote --confirm-manual`");
    assert_eq!(env.state()["state"], "verified");

    // The operator updated the variable everywhere (authwatch's own too) and confirms: the consumers are
    // re-probed with the pending secret.
    env.set_var("PKG_SFMC_SECRET", &new_secret);
    let out = env.rotate("promote", &["--confirm-manual"], None);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    out.has("verified -> promoted");
    out.has("OK    crm-sync: token granted, scopes data_extensions_read, call ok, MID 5100001");
    out.has("OK    bu2-sync: token granted, call ok, MID 5100002");
    assert_eq!(env.state()["state"], "promoted");
    assert_eq!(env.secret_in_file(), "unused");

    sim.activate_secret("pkg").unwrap();
    let out = env.rotate("activate", &["--confirm", "pkg"], None);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    out.has("promoted -> completed");
    let state = env.state();
    assert_eq!(state["state"], "completed");
    assert!(state["new_expires"].is_string(), "{state}");
    assert_eq!(env.vault_names(), Vec::<String>::new());

    let (entries, steps) = env.audit_steps();
    assert_eq!(
        steps,
        [
            "stage idle->staged ok",
            "verify staged->staged requested",
            "verify-result staged->verified ok",
            "promote verified->verified refused",
            "promote verified->verified requested",
            "promote-result verified->promoted ok",
            "activate promoted->activated ok",
            "activate-result activated->completed ok",
        ]
    );
    let confirmation = entries
        .iter()
        .find(|e| e["action"] == "promote" && e["result"] == "requested")
        .unwrap();
    assert_eq!(
        confirmation["details"], "operator confirmed the manual update",
        "{confirmation}"
    );
    assert_eq!(confirmation["actor"], "rotation-tester");
    // Every consumer was checked at verify (staged), after the manual update (verified) and after activation.
    for phase in ["staged", "verified", "activated"] {
        for consumer in ["crm-sync", "bu2-sync"] {
            assert!(
                entries.iter().any(|e| e["action"] == "check"
                    && e["to"] == phase
                    && e["result"] == "ok"
                    && e["details"]
                        .as_str()
                        .unwrap()
                        .starts_with(&format!("{consumer}: token granted"))),
                "{consumer} not checked in {phase}: {entries:#?}"
            );
        }
    }
    env.assert_never_leaked(&[SENTINEL, &new_secret]);
    sim.shutdown().await;
}

/// Command sink, no master key: stage, verify and promote (the pending secret entered again each time).
fn promote_command_sink_without_a_master_key(sim: &authwatch::sim::SimServer, env: &Env) -> String {
    let new_secret = sim.generate_secret("pkg").unwrap();
    let out = env.rotate("stage", &[], Some(&new_secret));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    out.has("NOT kept");
    wait_staging();
    let out = env.rotate("verify", &[], Some(&new_secret));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    // The previous secret cannot be kept durably: only an explicit --no-rollback goes ahead.
    let out = env.rotate("promote", &["--no-rollback"], Some(&new_secret));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    out.has("verified -> promoted");
    assert_eq!(env.secret_in_file(), new_secret);
    new_secret
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_sink_without_a_master_key_abort_says_to_restore_by_hand() {
    let sim = start_sim(&scenario("[\"data_extensions_read\", \"email_read\"]")).await;
    let env = Env::new(&sim.base_url(), "[\"data_extensions_read\"]", None);
    let log = command_sink(&env);
    let new_secret = promote_command_sink_without_a_master_key(&sim, &env);
    // The previous secret lived only in the promoting process: a later abort cannot pass it back.
    let out = env.rotate("abort", &[], None);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    out.has(&format!(
            "FAIL  the previous secret was not kept (no AUTHWATCH_MASTER_KEY): put it back with `sh {} --target {}` by hand",
            env.dir.path().join("update-secret.sh").display(),
            env.secret_file.display()
        ));
    assert_eq!(
        update_calls(&log).len(),
        1,
        "the update command is not run again"
    );
    assert_eq!(env.secret_in_file(), new_secret, "left as it was");
    assert!(!env.dir.path().join("secrets.vault").exists());
    let calls = std::fs::read_to_string(&log).unwrap();
    assert_not_in(&calls, &[SENTINEL, &new_secret], "the update command's log");
    env.assert_never_leaked(&[SENTINEL, &new_secret]);
    sim.shutdown().await;
}

// ---- Found by these tests and fixed: abort without restore, env-sink activation, the master key in children ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_that_could_not_restore_is_not_audited_as_restored() {
    let sim = start_sim(&scenario("[\"data_extensions_read\", \"email_read\"]")).await;
    let env = Env::new(&sim.base_url(), "[\"data_extensions_read\"]", None);
    command_sink(&env);
    let new_secret = promote_command_sink_without_a_master_key(&sim, &env);
    let out = env.rotate("abort", &[], None);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let (entries, _) = env.audit_steps();
    let abort = entries
        .iter()
        .rfind(|e| e["action"] == "abort-result")
        .unwrap();
    assert_eq!(abort["result"], "failed", "{abort}");
    // Not aborted: the new secret is still in the sink, so the rotation stays promoted (and says so).
    assert_eq!(env.state()["state"], "promoted");
    assert!(
        !abort["details"]
            .as_str()
            .unwrap()
            .contains("previous secret restored"),
        "{abort}"
    );
    env.assert_never_leaked(&[SENTINEL, &new_secret]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_sink_activate_before_activating_in_setup_does_not_complete() {
    let sim = start_sim(&scenario("[\"data_extensions_read\", \"email_read\"]")).await;
    let env = Env::new(&sim.base_url(), "[\"data_extensions_read\"]", Some(KEY));
    env.set_secret_reference("client_secret = { env = \"PKG_SFMC_SECRET\" }");
    env.set_var("PKG_SFMC_SECRET", SENTINEL);
    let new_secret = stage_and_verify(&sim, &env);
    env.set_var("PKG_SFMC_SECRET", &new_secret);
    let out = env.rotate("promote", &["--confirm-manual"], None);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    // Confirmed, but NOT activated in Setup: SFMC still accepts the old secret.
    let out = env.rotate("activate", &["--confirm", "pkg"], None);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    out.has("OLD secret is still accepted");
    assert_eq!(env.state()["state"], "activated");
    sim.activate_secret("pkg").unwrap();
    let out = env.rotate("activate", &[], None);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    out.has("old secret refused (401 invalid_client)");
    env.assert_never_leaked(&[SENTINEL, &new_secret]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_update_command_does_not_get_the_master_key() {
    let sim = start_sim(&scenario("[\"data_extensions_read\", \"email_read\"]")).await;
    let env = Env::new(&sim.base_url(), "[\"data_extensions_read\"]", Some(KEY));
    let log = command_sink(&env);
    stage_and_verify(&sim, &env);
    let out = env.rotate("promote", &[], None);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let calls = update_calls(&log);
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_not_in(&calls[0], &[KEY], "the update command's environment");
    sim.shutdown().await;
}
