//! `authwatch check` as users run it: the real binary, a real config, the simulator on loopback.

use crate::common::*;
use std::path::Path;

const CLIENT: &str = "5c9e1b7aa0d44f3e8a2b91c7";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn authwatch(args: &[&str], state: &Path) -> Run {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_authwatch"))
        .args(args)
        .env("XDG_STATE_HOME", state)
        .env("XDG_CONFIG_HOME", state)
        .env_remove("AUTHWATCH_CONFIG")
        .current_dir(state)
        .output()
        .await
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A config with one integration per (name, secret, extra) on the same package.
async fn setup(
    cases: &[(&str, &str, &str)],
    settings: &str,
) -> (authwatch::sim::SimServer, tempfile::TempDir, String) {
    setup_with(cases, settings, "").await
}

async fn setup_with(
    cases: &[(&str, &str, &str)],
    settings: &str,
    client_extra: &str,
) -> (authwatch::sim::SimServer, tempfile::TempDir, String) {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, client_extra)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut text = format!("[settings]\n{settings}\n\n");
    for (i, (name, secret, extra)) in cases.iter().enumerate() {
        let file = write_secret(dir.path(), &format!("secret-{i}"), secret);
        let cred = format!("cred-{i}");
        text += &sfmc_credential(&cred, &sim.base_url(), CLIENT, &file);
        text += &integration(name, &cred, extra);
    }
    let path = write_config(dir.path(), &text);
    (sim, dir, path.display().to_string())
}

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", run.stdout))
}

#[tokio::test]
async fn all_ok_exits_0_with_the_documented_json() {
    let (_sim, dir, config) =
        setup(&[("crm-sync", SENTINEL, "account_id = \"5100001\"")], "").await;
    let run = authwatch(
        &["check", "--config", &config, "--format", "json"],
        dir.path(),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = json(&run);
    assert_eq!(
        v["summary"],
        serde_json::json!({"ok": 1, "warn": 0, "fail": 0, "unknown": 0})
    );
    let i = &v["integrations"][0];
    assert_eq!(i["name"], "crm-sync");
    assert_eq!(i["credential"], "cred-0");
    assert_eq!(i["status"], "ok");
    assert_eq!(i["probe"]["outcome"], "ok");
    assert_eq!(i["probe"]["http_status"], 200);
    assert!(i["probe"]["token_ms"].is_u64() && i["probe"]["call_ms"].is_u64());
    assert_eq!(i["probe"]["missing_scopes"], serde_json::json!([]));
    assert!(v["generated_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn a_warning_exits_1_and_a_failure_exits_2_with_reasons() {
    let (_sim, dir, config) = setup_with(
        &[("healthy", SENTINEL, ""), ("slow-to-answer", SENTINEL, "")],
        "latency_warn = \"20ms\"",
        "latency = \"30ms\"",
    )
    .await;
    let run = authwatch(
        &[
            "check",
            "--config",
            &config,
            "--integration",
            "slow-to-answer",
        ],
        dir.path(),
    )
    .await;
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("WARN") && run.stdout.contains("slow-to-answer"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("healthy"),
        "filtered out: {}",
        run.stdout
    );

    let (sim, dir, config) = setup(
        &[
            ("healthy", SENTINEL, ""),
            ("crm-sync", "a-wrong-secret", ""),
        ],
        "failure_threshold = 3",
    )
    .await;
    let run = authwatch(
        &["check", "--config", &config, "--format", "json"],
        dir.path(),
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    let v = json(&run);
    let failing = v["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "crm-sync")
        .unwrap();
    assert_eq!(failing["status"], "fail");
    assert_eq!(failing["probe"]["outcome"], "auth_rejected");
    assert_eq!(failing["probe"]["error"], "invalid_client");
    assert_eq!(failing["probe"]["call_ms"], serde_json::Value::Null);
    assert!(
        failing["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("token request rejected: invalid_client (401)")
    );
    // The reason and the JSON carry error_description, not just the code (issue 14).
    assert_eq!(
        failing["probe"]["detail"],
        "Client authentication failed. Make sure that the client ID and client secret are valid and that the package is installed and enabled."
    );
    assert!(
        failing["reasons"][0]
            .as_str()
            .unwrap()
            .contains("(401): Client authentication failed."),
        "{failing}"
    );
    // Confirmed by immediate retries: 3 attempts for the failing one, 1 for the healthy one.
    assert_eq!(sim.token_requests(CLIENT), 4);
}

#[tokio::test]
async fn usage_and_config_errors_exit_3() {
    let (_sim, dir, config) = setup(&[("crm-sync", SENTINEL, "")], "").await;
    let run = authwatch(
        &["check", "--config", &config, "--integration", "crm-snyc"],
        dir.path(),
    )
    .await;
    assert_eq!(run.code, 3);
    assert!(
        run.stderr
            .contains("unknown integration `crm-snyc`: did you mean `crm-sync`?"),
        "{}",
        run.stderr
    );

    let run = authwatch(&["check", "--bogus-flag"], dir.path()).await;
    assert_eq!(run.code, 3, "usage errors are 'unknown' too");

    let empty = tempfile::tempdir().unwrap();
    let run = authwatch(&["check"], empty.path()).await;
    assert_eq!(run.code, 3, "no config found: {}", run.stderr);
}

#[tokio::test]
async fn the_secret_never_appears_in_any_output_or_log() {
    // One integration with the right secret, one with the sentinel as a WRONG secret (so it is sent, refused
    // and reported on), both probed; then every output and every file in the state directory is searched.
    let sim = start_sim(&one_client_scenario(CLIENT, "the-right-secret", "")).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_secret(dir.path(), "s", SENTINEL);
    let text = sfmc_credential("pkg", &sim.base_url(), CLIENT, &file)
        + &integration("crm-sync", "pkg", "")
        + &integration("cdp-feed", "pkg", "account_id = \"5100002\"");
    let config = write_config(dir.path(), &text);
    let config = config.display().to_string();
    let state = tempfile::tempdir().unwrap();
    for format in ["text", "json"] {
        let run = authwatch(
            &["check", "--config", &config, "--format", format],
            state.path(),
        )
        .await;
        assert_eq!(run.code, 2);
        assert!(!run.stdout.contains(SENTINEL) && !run.stderr.contains(SENTINEL));
    }
    let run = authwatch(&["config", "check", "--config", &config], state.path()).await;
    assert!(!run.stdout.contains(SENTINEL) && !run.stderr.contains(SENTINEL));
    let mut files = 0;
    for entry in walk(state.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(SENTINEL),
            "{} holds the secret",
            entry.display()
        );
        files += 1;
    }
    assert!(files > 0, "the log file exists");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Corporate networks: probes go through HTTP(S)_PROXY unless NO_PROXY names the host. The simulator plays the
/// proxy here: it answers the absolute-form requests the client sends it for a tenant host that does not resolve.
#[tokio::test]
async fn probes_honour_the_proxy_environment() {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_secret(dir.path(), "s", SENTINEL);
    let text = sfmc_credential("pkg", "http://mc-tenant.invalid/", CLIENT, &file)
        + &integration("crm-sync", "pkg", "check_path = \"platform/v1/endpoints\"");
    let config = write_config(dir.path(), &text).display().to_string();
    let proxy = sim.base_url();
    let run = |no_proxy: &'static str| {
        let config = config.clone();
        let proxy = proxy.clone();
        let state = dir.path().to_path_buf();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_authwatch"))
                .args(["check", "--config", &config, "--format", "json"])
                .env("XDG_STATE_HOME", &state)
                .env("HTTP_PROXY", &proxy)
                .env("http_proxy", &proxy)
                .env("NO_PROXY", no_proxy)
                .env("no_proxy", no_proxy)
                .output()
                .await
                .unwrap()
        }
    };
    let through = run("").await;
    let v: serde_json::Value = serde_json::from_slice(&through.stdout).unwrap();
    assert_eq!(v["integrations"][0]["probe"]["outcome"], "ok", "{v}");
    assert_eq!(
        sim.token_requests(CLIENT),
        1,
        "the token request went through the proxy"
    );

    let bypass = run("mc-tenant.invalid").await;
    let v: serde_json::Value = serde_json::from_slice(&bypass.stdout).unwrap();
    assert_eq!(v["integrations"][0]["probe"]["outcome"], "network", "{v}");
    assert_eq!(
        v["integrations"][0]["probe"]["error"],
        "no such host mc-tenant.invalid: check the subdomain",
        "{v}"
    );
    assert_eq!(sim.token_requests(CLIENT), 1, "NO_PROXY bypassed the proxy");
}
