//! Third-party clients keep fidelity from drifting (issue 14): npm `sfmc-sdk` 2.1.2 (the client behind Accenture's
//! sfmc-devtools) against `authwatch simulate --tls` with tenant-shaped host names, and npm `oauth2-mock-server`
//! 9.x as the token endpoint for authwatch's `provider = "oauth2"`.
//!
//! The packages are pinned by `tests/node/package.json` + `package-lock.json` and installed with `npm ci` into
//! `tests/node/node_modules` (ignored by git; the npm cache lives under target/) when the installed tree differs
//! from the lockfile. Host names resolve to loopback inside the node process only (`tests/node/preload.cjs`).
//! Without node/npm the tests are skipped loudly, unless `AUTHWATCH_REQUIRE_TOOLS=1` (set by `.ci/run`).

use crate::common::*;
use crate::probe::probe_once;
use authwatch::model::{Outcome, Phase};
use authwatch::sim::{self, Scenario, SimOptions};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

const NODE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node");
/// A 28-character subdomain starting with `mc`, as SFMC's (and sfmc-sdk's auth_url check) has it.
const SUBDOMAIN: &str = "mc563885gzs27c5t9-63k636ttgm";
/// RFC 6749 §2.3.1 needs encoding for every one of these characters.
const SPECIAL_ID: &str = "special:client+1";
const SPECIAL_SECRET: &str = "Ab+Cd/Ef=Gh%41:z";

/// node, after the pinned packages are installed; None (after a loud notice) when node or npm is missing.
fn node() -> Option<PathBuf> {
    let node = crate::real_tools::tool("/usr/bin/node", &["node", "nodejs"], "nodejs")?;
    let npm = crate::real_tools::tool("/usr/bin/npm", &["npm"], "npm")?;
    static INSTALL: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut installed = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    if !*installed {
        if !installed_tree_matches_lockfile() {
            let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("npm-cache");
            let out = std::process::Command::new(&npm)
                .args([
                    "ci",
                    "--no-audit",
                    "--no-fund",
                    "--ignore-scripts",
                    "--prefer-offline",
                ])
                .args(["--loglevel=error", "--cache"])
                .arg(&cache)
                .current_dir(NODE_DIR)
                .output()
                .expect("npm runs");
            assert!(
                out.status.success(),
                "npm ci in tests/node failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        *installed = true;
    }
    Some(node)
}

/// npm's hidden lockfile (node_modules/.package-lock.json) lists what is installed: same packages, no reinstall.
fn installed_tree_matches_lockfile() -> bool {
    let read = |p: &str| -> Option<Value> {
        serde_json::from_slice(&std::fs::read(Path::new(NODE_DIR).join(p)).ok()?).ok()
    };
    let (Some(lock), Some(hidden)) = (
        read("package-lock.json"),
        read("node_modules/.package-lock.json"),
    ) else {
        return false;
    };
    let mut want = lock["packages"].as_object().cloned().unwrap_or_default();
    want.remove("");
    let have = hidden["packages"].as_object().cloned().unwrap_or_default();
    !want.is_empty()
        && want.len() == have.len()
        && want
            .iter()
            .all(|(k, v)| have.get(k).map(|h| h["version"] == v["version"]) == Some(true))
}

fn node_command(node: &Path, script: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(node);
    cmd.arg("--require")
        .arg(Path::new(NODE_DIR).join("preload.cjs"))
        .arg(Path::new(NODE_DIR).join(script))
        .current_dir(NODE_DIR)
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .kill_on_drop(true);
    cmd
}

#[tokio::test]
async fn sfmc_sdk_cannot_tell_the_tls_simulator_from_sfmc() {
    let Some(node) = node() else { return };
    let scenario = Scenario::from_toml(
        r#"
[[client]]
id = "crm"
client_id = "crm-id-5c9e1b7aa0d44f3e8a2b9"
secret = "crm-secret"
scopes = ["data_extensions_read", "email_read"]
mids = ["5100001", "5100002"]
enterprise_id = "5100000"

[[client]]
id = "no-scope"
client_id = "no-scope-id"
secret = "no-scope-secret"
scopes = []
mids = ["5100003"]

[[client]]
id = "limited"
client_id = "limited-id"
secret = "limited-secret"
mids = ["5100004"]
fault = "rate_limited"
retry_after = 7
"#,
        "sdk.toml",
    )
    .unwrap();
    let template = format!("https://{SUBDOMAIN}.{{kind}}.marketingcloudapis.com/");
    let sim = sim::start_with(
        scenario,
        "127.0.0.1:0".parse().unwrap(),
        SimOptions {
            tls: true,
            public_url: Some(template.clone()),
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, sim.ca_pem().unwrap()).unwrap();
    let url = |kind: &str| template.replace("{kind}", kind);
    let hosts = ["auth", "rest", "soap"]
        .map(|k| format!("{SUBDOMAIN}.{k}.marketingcloudapis.com"))
        .join(",");
    let input = json!({
        "auth_url": url("auth"),
        "good": {"client_id": "crm-id-5c9e1b7aa0d44f3e8a2b9", "client_secret": "crm-secret", "account_id": "5100002"},
        "wrong_secret": "not-the-secret",
        "no_scope": {"client_id": "no-scope-id", "client_secret": "no-scope-secret", "account_id": 5100003},
        "limited": {"client_id": "limited-id", "client_secret": "limited-secret", "account_id": 5100004},
    });
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        node_command(&node, "sfmc_sdk.mjs")
            .env("NODE_EXTRA_CA_CERTS", &ca)
            .env("AUTHWATCH_SIM_HOSTS", &hosts)
            .env("AUTHWATCH_SIM_PORT", sim.addr().port().to_string())
            .env("AUTHWATCH_SDK_INPUT", input.to_string())
            .output(),
    )
    .await
    .expect("sfmc-sdk finishes within a minute")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "node failed:\n{stdout}\n{stderr}");
    let cases: HashMap<String, Value> = stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .map(|v| (v["case"].as_str().unwrap().to_string(), v))
        .collect();
    let case = |name: &str| {
        cases
            .get(name)
            .unwrap_or_else(|| panic!("no case {name}: {stdout}\n{stderr}"))
    };
    let ok = |name: &str| {
        let c = case(name);
        assert_eq!(c["ok"], true, "{name}: {c}");
        c["value"].clone()
    };
    let refused = |name: &str| {
        let c = case(name);
        assert_eq!(c["ok"], false, "{name}: {c}");
        (
            c["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            c["error"]["code"].clone(),
        )
    };

    let token = ok("token_ok");
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["expires_in"], 1079);
    assert_eq!(token["rest_instance_url"], url("rest"));
    assert_eq!(token["soap_instance_url"], url("soap"));
    assert_eq!(token["scope"], "data_extensions_read email_read");
    let context = ok("token_context");
    assert_eq!(context["organization"]["id"], 5100002, "{context}");
    assert_eq!(context["enterprise"]["id"], 5100000, "{context}");
    let soap = ok("soap_retrieve");
    assert_eq!(soap["status"], "OK", "{soap}");
    assert_eq!(soap["results"][0]["ID"], 5100002, "{soap}");

    assert_eq!(
        refused("wrong_secret"),
        (
            "Client authentication failed. Make sure that the client ID and client secret are valid and that the package is installed and enabled.".to_string(),
            json!("invalid_client")
        )
    );
    assert_eq!(
        refused("missing_scope"),
        (
            "Insufficient privileges to complete this action.".to_string(),
            json!(20002)
        )
    );
    assert_eq!(
        refused("rate_limited"),
        ("Rate limit exceeded".to_string(), json!(50100))
    );
    // Every request went to the simulator over TLS under the tenant's names.
    let paths: Vec<String> = sim.requests().iter().map(|r| r.path.clone()).collect();
    for p in ["/v2/token", "/platform/v1/tokenContext", "/Service.asmx"] {
        assert!(paths.iter().any(|x| x == p), "{p} not in {paths:?}");
    }
    sim.shutdown().await;
}

/// oauth2-mock-server on a loopback port, killed when dropped.
struct MockServer {
    _child: tokio::process::Child,
    port: u16,
}

async fn oauth2_mock_server(node: &Path) -> MockServer {
    let mut child = node_command(node, "oauth2_mock.mjs")
        .env("AUTHWATCH_EXPECT_ID", SPECIAL_ID)
        .env("AUTHWATCH_EXPECT_SECRET", SPECIAL_SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("oauth2-mock-server listens within 30s")
        .unwrap()
        .expect("oauth2-mock-server prints its port");
    let port = serde_json::from_str::<Value>(&first).unwrap()["port"]
        .as_u64()
        .unwrap() as u16;
    MockServer {
        _child: child,
        port,
    }
}

async fn probe_oauth2(
    mock: &MockServer,
    mode: &str,
    auth: &str,
    secret: &str,
) -> authwatch::model::ProbeResult {
    let dir = tempfile::tempdir().unwrap();
    let file = write_secret(dir.path(), "secret", secret);
    let text = format!(
        "[settings]\ntimeout = \"1s\"\n\n[[credential]]\nid = \"idp\"\nprovider = \"oauth2\"\ntoken_url = \"http://127.0.0.1:{}/{mode}token\"\nclient_auth = \"{auth}\"\nclient_id = \"{SPECIAL_ID}\"\nclient_secret = {{ file = \"{}\" }}\n\n{}",
        mock.port,
        file.display(),
        integration("core", "idp", "scopes = [\"read\"]")
    );
    probe_once(&load_config(dir.path(), &text)).await
}

#[tokio::test]
async fn oauth2_provider_against_oauth2_mock_server() {
    let Some(node) = node() else { return };
    let mock = oauth2_mock_server(&node).await;

    // RFC 6749 §2.3.1: Basic and body both authenticate with characters that need encoding.
    for auth in ["basic", "body"] {
        let r = probe_oauth2(&mock, "", auth, SPECIAL_SECRET).await;
        assert_eq!(r.outcome, Outcome::Ok, "{auth}: {r:?}");
        let r = probe_oauth2(&mock, "", auth, "Ab+Cd/Ef=Gh%41:y").await;
        assert_eq!(r.outcome, Outcome::AuthRejected, "{auth}: {r:?}");
    }

    // The hooks' refusals, each in the words a user needs.
    let cases: [(&str, Outcome, Option<u16>, &str); 5] = [
        (
            "invalid_client/",
            Outcome::AuthRejected,
            Some(401),
            "token request rejected: invalid_client (401). Client authentication failed.",
        ),
        (
            "invalid_scope/",
            Outcome::AuthRejected,
            Some(400),
            "token request rejected: invalid_scope (400). The requested scope is invalid, unknown, or malformed.",
        ),
        (
            "server_error/",
            Outcome::ServerError,
            Some(500),
            "server error (500): server_error. The authorization server encountered an unexpected condition.",
        ),
        ("slow/", Outcome::Timeout, None, "timed out"),
        (
            "html/",
            Outcome::BadResponse,
            Some(200),
            "bad response (200): token response is not valid JSON",
        ),
    ];
    for (mode, outcome, status, words) in cases {
        let r = probe_oauth2(&mock, mode, "basic", SPECIAL_SECRET).await;
        assert_eq!(r.outcome, outcome, "{mode}: {r:?}");
        assert_eq!(r.phase, Phase::Token, "{mode}");
        assert_eq!(r.http_status, status, "{mode}: {r:?}");
        assert_eq!(r.explained(), words, "{mode}");
    }
}
