//! Rotation that cannot lose a secret: the real binary killed (SIGKILL) at each effect boundary of promote,
//! activate and abort (fault points compiled into debug builds only), SIGTERM during a slow update command, two
//! promotes at once, and the facts recorded (expiry from generation, the old secret's state at promote).

use crate::common::{SENTINEL, start_sim};
use crate::rotation::{
    Env, KEY, Out, command_sink, scenario, stage_and_verify, update_calls, wait_staging,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SCOPES: &str = "[\"data_extensions_read\", \"email_read\"]";

fn prev(env: &Env) -> PathBuf {
    PathBuf::from(format!("{}.prev", env.secret_file.display()))
}

fn read_trimmed(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .trim_end()
        .to_string()
}

/// Run `rotate pkg <action>` with a fault point armed: the process must die by SIGKILL there.
fn killed_at(env: &Env, point: &str, action: &str, extra: &[&str]) {
    env.set_var("AUTHWATCH_FAULT", &format!("after:{point}"));
    let out = env.rotate(action, extra, None);
    env.unset_var("AUTHWATCH_FAULT");
    assert_eq!(
        out.code, -1,
        "{action} must be killed at {point}:\n{}{}",
        out.stdout, out.stderr
    );
}

fn ok(out: &Out) {
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
}

/// Poll until `cond` holds (a deadline, not a timed assertion: the condition is what is awaited).
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn audit_actions(env: &Env) -> Vec<String> {
    env.audit_steps().1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_killed_after_the_file_write_is_reconciled_and_a_second_promote_keeps_the_old_secret()
 {
    let sim = start_sim(&scenario(SCOPES)).await;
    let env = Env::new(&sim.base_url(), "[\"data_extensions_read\"]", Some(KEY));
    let new_secret = stage_and_verify(&sim, &env);

    killed_at(&env, "promote-sink-write", "promote", &[]);
    assert_eq!(env.secret_in_file(), new_secret);
    assert_eq!(read_trimmed(&prev(&env)), SENTINEL);

    // The next start finds out what is true and says so.
    let out = env.rotate("status", &[], None);
    ok(&out);
    out.has("took over the rotation lease of rotation-tester");
    out.has("promote was interrupted");
    out.has("the sink holds the NEW secret");
    out.has("or abort to restore the old one");
    out.has("where consumers read it: the NEW secret");
    assert_eq!(env.state()["state"], "verified");
    assert!(
        audit_actions(&env)
            .iter()
            .any(|s| s.starts_with("reconcile verified->verified ok")),
        "{:?}",
        audit_actions(&env)
    );

    // Promote again: finishes, and `.prev` still holds the OLD secret (never the new one).
    let out = env.rotate("promote", &[], None);
    ok(&out);
    out.has("verified -> promoted");
    assert_eq!(read_trimmed(&prev(&env)), SENTINEL);

    // Abort restores exactly the old secret, read back through the reference.
    let out = env.rotate("abort", &[], None);
    ok(&out);
    out.has("promoted -> aborted");
    out.has("read back: the old secret is in place");
    assert_eq!(env.secret_in_file(), SENTINEL);
    env.assert_never_leaked(&[SENTINEL, &new_secret]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_after_a_promote_killed_at_any_boundary_restores_the_old_secret() {
    for point in ["promote-keep-previous", "promote-sink-write"] {
        let sim = start_sim(&scenario(SCOPES)).await;
        let env = Env::new(&sim.base_url(), "[\"data_extensions_read\"]", Some(KEY));
        let new_secret = stage_and_verify(&sim, &env);
        killed_at(&env, point, "promote", &[]);
        // Abort straight away (no status first): it reconciles, then restores if the new secret is there.
        let out = env.rotate("abort", &[], None);
        ok(&out);
        out.has("promote was interrupted");
        out.has("verified -> aborted");
        assert_eq!(env.secret_in_file(), SENTINEL, "{point}");
        assert_eq!(env.state()["state"], "aborted", "{point}");
        // A new rotation can start from here.
        let again = sim.generate_secret("pkg").unwrap();
        ok(&env.rotate("stage", &[], Some(&again)));
        env.assert_never_leaked(&[SENTINEL, &new_secret, &again]);
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_killed_after_restoring_is_finished_by_the_next_abort() {
    let sim = start_sim(&scenario(SCOPES)).await;
    let env = Env::new(&sim.base_url(), "[\"data_extensions_read\"]", Some(KEY));
    let new_secret = stage_and_verify(&sim, &env);
    ok(&env.rotate("promote", &[], None));
    killed_at(&env, "abort-restore", "abort", &[]);
    assert_eq!(env.secret_in_file(), SENTINEL);
    let out = env.rotate("status", &[], None);
    ok(&out);
    out.has("abort was interrupted");
    out.has("the sink holds the OLD secret");
    assert_eq!(env.state()["state"], "promoted");
    let out = env.rotate("abort", &[], None);
    ok(&out);
    out.has("promoted -> aborted");
    assert_eq!(env.secret_in_file(), SENTINEL);
    env.assert_never_leaked(&[SENTINEL, &new_secret]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activate_killed_at_each_boundary_is_finished_by_running_it_again() {
    for point in ["activate-checks", "activate-record-expiry", "drop-previous"] {
        let sim = start_sim(&scenario(SCOPES)).await;
        let env = Env::new(&sim.base_url(), "[\"data_extensions_read\"]", Some(KEY));
        let new_secret = stage_and_verify(&sim, &env);
        ok(&env.rotate("promote", &[], None));
        sim.activate_secret("pkg").unwrap();
        killed_at(&env, point, "activate", &["--confirm", "pkg"]);
        // The new secret stays where consumers read it; nothing claims completion.
        assert_eq!(env.secret_in_file(), new_secret, "{point}");
        assert_ne!(env.state()["state"], "completed", "{point}");
        let out = env.rotate("activate", &["--confirm", "pkg"], None);
        ok(&out);
        out.has("-> completed");
        assert_eq!(env.state()["state"], "completed", "{point}");
        assert!(env.state()["new_expires"].is_string(), "{point}");
        assert!(!prev(&env).exists(), "{point}");
        assert_eq!(env.vault_names(), Vec::<String>::new(), "{point}");
        env.assert_never_leaked(&[SENTINEL, &new_secret]);
        sim.shutdown().await;
    }
}

/// A command sink whose update program takes a while (so a signal or a second promote arrives mid-step).
fn slow_command_sink(env: &Env, seconds: u32) -> PathBuf {
    let log = command_sink(env);
    let script = env.dir.path().join("update-secret.sh");
    let text = std::fs::read_to_string(&script).unwrap();
    std::fs::write(
        &script,
        text.replace(
            "mv \"$target.new\"",
            &format!("sleep {seconds}\nmv \"$target.new\""),
        ),
    )
    .unwrap();
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_slow_update_command_waits_for_the_step_to_finish() {
    let sim = start_sim(&scenario(SCOPES)).await;
    let env = Env::new(&sim.base_url(), "[\"data_extensions_read\"]", Some(KEY));
    let log = slow_command_sink(&env, 2);
    let new_secret = stage_and_verify(&sim, &env);
    let child = env.command(&["rotate", "pkg", "promote"]).spawn().unwrap();
    wait_for("the update command to start", || {
        !update_calls(&log).is_empty()
    });
    // SAFETY: signalling the child we started.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stdout}{stderr}");
    assert!(
        stderr.contains("SIGTERM: finishing the running step first"),
        "{stderr}"
    );
    assert!(stdout.contains("verified -> promoted"), "{stdout}");
    // The update program was not orphaned half-way: the new secret is written and the state says so.
    assert_eq!(env.secret_in_file(), new_secret);
    assert_eq!(env.state()["state"], "promoted");
    let steps = audit_actions(&env);
    assert!(
        steps
            .iter()
            .any(|s| s == "promote-result verified->promoted ok"),
        "{steps:?}"
    );
    assert!(
        steps
            .iter()
            .any(|s| s.starts_with("write-sink verified->verified ok")),
        "{steps:?}"
    );
    // Abort passes the old secret back through the update command.
    let out = env.rotate("abort", &[], None);
    ok(&out);
    assert_eq!(env.secret_in_file(), SENTINEL);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_promotes_at_once_one_is_refused_naming_the_holder() {
    let sim = start_sim(&scenario(SCOPES)).await;
    let env = Env::new(&sim.base_url(), "[\"data_extensions_read\"]", Some(KEY));
    let log = slow_command_sink(&env, 2);
    let new_secret = stage_and_verify(&sim, &env);
    let first = env.command(&["rotate", "pkg", "promote"]).spawn().unwrap();
    wait_for("the first promote's update command", || {
        !update_calls(&log).is_empty()
    });
    let second = env.rotate("promote", &[], None);
    assert_eq!(second.code, 1, "{}{}", second.stdout, second.stderr);
    second.has("REFUSED");
    second.has(&format!("held by rotation-tester (pid {} on ", first.id()));
    let out = first.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(update_calls(&log).len(), 1, "one update only");
    let steps = audit_actions(&env);
    let results = steps
        .iter()
        .filter(|s| s.starts_with("promote-result"))
        .count();
    assert_eq!(results, 1, "{steps:?}");
    assert!(
        steps
            .iter()
            .any(|s| s == "promote verified->verified refused"),
        "{steps:?}"
    );
    assert_eq!(env.secret_in_file(), new_secret);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_command_that_hangs_is_killed_with_its_process_group() {
    let sim = start_sim(&scenario(SCOPES)).await;
    let env = Env::new(&sim.base_url(), "[\"data_extensions_read\"]", Some(KEY));
    let log = command_sink(&env);
    let script = env.dir.path().join("update-secret.sh");
    let pidfile = env.dir.path().join("grandchild.pid");
    let text = std::fs::read_to_string(&script).unwrap();
    // A grandchild that would write long after authwatch gave up, and a parent that never ends.
    std::fs::write(
        &script,
        text.replace(
            "mv \"$target.new\"",
            &format!(
                "sleep 60 &\necho $! > '{}'\necho 'oops: stuck' >&2\nwait\nmv \"$target.new\"",
                pidfile.display()
            ),
        ),
    )
    .unwrap();
    let config = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(
        &env.config,
        config.replace(
            "[settings]\n",
            "[settings]\nsecret_command_timeout = \"1s\"\n",
        ),
    )
    .unwrap();
    let new_secret = stage_and_verify(&sim, &env);
    let out = env.rotate("promote", &[], None);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    out.has("did not finish in 1s: killed with its process group");
    // The write, then the restore after the failed promote (it hangs the same way).
    assert_eq!(update_calls(&log).len(), 2);
    let pid: i32 = read_trimmed(&pidfile).parse().unwrap();
    wait_for("the update command's child to be gone", || {
        // SAFETY: signal 0 only checks existence.
        unsafe { libc::kill(pid, 0) != 0 }
    });
    assert_eq!(env.secret_in_file(), SENTINEL);
    assert_eq!(env.state()["state"], "verified");
    let (entries, _) = env.audit_steps();
    assert!(
        entries.iter().any(|e| e["action"] == "write-sink"
            && e["result"] == "failed"
            && e["details"]
                .as_str()
                .unwrap()
                .contains("killed with its process group")),
        "{entries:#?}"
    );
    env.assert_never_leaked(&[SENTINEL, &new_secret]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_sink_without_a_master_key_promotes_only_with_no_rollback() {
    let sim = start_sim(&scenario(SCOPES)).await;
    let env = Env::new(&sim.base_url(), "[\"data_extensions_read\"]", None);
    let log = command_sink(&env);
    let new_secret = sim.generate_secret("pkg").unwrap();
    ok(&env.rotate("stage", &[], Some(&new_secret)));
    wait_staging();
    ok(&env.rotate("verify", &[], Some(&new_secret)));
    let out = env.rotate("promote", &[], Some(&new_secret));
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    out.has("REFUSED");
    out.has("AUTHWATCH_MASTER_KEY");
    out.has("--no-rollback");
    assert!(update_calls(&log).is_empty());
    let out = env.rotate("promote", &["--no-rollback"], Some(&new_secret));
    ok(&out);
    out.has("verified -> promoted");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_counts_from_generation_and_only_once_activation_checks_pass() {
    let sim = start_sim(&scenario(SCOPES)).await;
    let env = Env::new(&sim.base_url(), "[\"data_extensions_read\"]", Some(KEY));
    let new_secret = sim.generate_secret("pkg").unwrap();
    let generated = chrono::Utc::now() - chrono::Duration::hours(1);
    let at = generated.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    ok(&env.rotate("stage", &["--generated-at", &at], Some(&new_secret)));
    wait_staging();
    ok(&env.rotate("verify", &[], None));
    ok(&env.rotate("promote", &[], None));
    // Not activated in Setup yet: activation's checks fail and no expiry is recorded.
    let out = env.rotate("activate", &["--confirm", "pkg"], None);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(env.state()["new_expires"].is_null());
    sim.activate_secret("pkg").unwrap();
    let out = env.rotate("activate", &["--confirm", "pkg"], None);
    ok(&out);
    let expected = (generated + chrono::Duration::days(180))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    assert_eq!(env.state()["new_expires"], expected.as_str());
    env.assert_never_leaked(&[SENTINEL, &new_secret]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_secret_already_refused_before_activation_proves_nothing() {
    let sim =
        start_sim(&scenario(SCOPES).replace("scopes =", "secret_valid = false\nscopes =")).await;
    let env = Env::new(&sim.base_url(), "[\"data_extensions_read\"]", Some(KEY));
    let new_secret = stage_and_verify(&sim, &env);
    let out = env.rotate("promote", &[], None);
    ok(&out);
    out.has("old secret ALREADY refused before activation");
    sim.activate_secret("pkg").unwrap();
    let out = env.rotate("activate", &["--confirm", "pkg"], None);
    ok(&out);
    out.has("old secret refused, but that proves nothing: it was already refused at promote");
    assert!(
        !out.stdout.contains("OK    old secret refused"),
        "{}",
        out.stdout
    );
    env.assert_never_leaked(&[SENTINEL, &new_secret]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_console_sees_a_cli_rotation_complete_and_its_paused_consumers_recover() {
    use authwatch::engine::{self, EngineOptions};
    use authwatch::model::Status;
    // The secret expired: every consumer is refused and paused (not probed again until someone acts).
    let sim =
        start_sim(&scenario(SCOPES).replace("scopes =", "secret_valid = false\nscopes =")).await;
    let env = Env::new(&sim.base_url(), "[\"data_extensions_read\"]", Some(KEY));
    let config = authwatch::config::load(&env.config).unwrap();
    let running = engine::spawn(
        config,
        EngineOptions {
            store: Some(authwatch::store::Store::open(&env.db).unwrap()),
            ..Default::default()
        },
    )
    .unwrap();
    let mut watch = running.handle.watch();
    let all = |s: &authwatch::engine::Snapshot,
               f: &dyn Fn(&authwatch::engine::IntegrationView) -> bool| {
        ["crm-sync", "bu2-sync"]
            .iter()
            .all(|n| s.integration(n).is_some_and(|i| f(i)))
    };
    tokio::time::timeout(Duration::from_secs(30), async {
        while !all(&watch.borrow_and_update(), &|i| i.paused) {
            watch.changed().await.unwrap();
        }
    })
    .await
    .expect("the consumers pause on the refused secret");

    // The whole rotation in other processes (the CLI); nobody touches the console.
    let new_secret = stage_and_verify(&sim, &env);
    ok(&env.rotate("promote", &[], None));
    sim.activate_secret("pkg").unwrap();
    ok(&env.rotate("activate", &["--confirm", "pkg"], None));
    assert_eq!(env.state()["state"], "completed");

    tokio::time::timeout(Duration::from_secs(30), async {
        while !all(&watch.borrow_and_update(), &|i| {
            !i.paused && i.health.status == Status::Ok
        }) {
            watch.changed().await.unwrap();
        }
    })
    .await
    .expect("the consumers recover on their own once the rotation completed");
    let _ = running
        .handle
        .send(authwatch::engine::Command::Shutdown)
        .await;
    let _ = running.task.await;
    env.assert_never_leaked(&[SENTINEL, &new_secret]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_or_agent_start_reconciles_an_interrupted_promote() {
    let sim = start_sim(&scenario(SCOPES)).await;
    let env = Env::new(&sim.base_url(), "[\"data_extensions_read\"]", Some(KEY));
    let new_secret = stage_and_verify(&sim, &env);
    killed_at(&env, "promote-sink-write", "promote", &[]);
    // What the console and the agent run at start (without the master key here: reading a file sink needs none).
    let config = std::sync::Arc::new(authwatch::config::load(&env.config).unwrap());
    let said = authwatch::rotation::reconcile_interrupted(config.clone(), env.db.clone()).await;
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].starts_with("pkg: promote was interrupted"),
        "{said:?}"
    );
    assert!(
        said[0].contains("the sink holds the NEW secret"),
        "{said:?}"
    );
    // Reconciled once: the next start has nothing to say, and the state tells the truth.
    assert!(
        authwatch::rotation::reconcile_interrupted(config, env.db.clone())
            .await
            .is_empty()
    );
    let out = env.rotate("status", &[], None);
    ok(&out);
    out.has("where consumers read it: the NEW secret");
    env.assert_never_leaked(&[SENTINEL, &new_secret]);
    sim.shutdown().await;
}
