//! `authwatch agent` as a process, as systemd runs it: SIGHUP reloads the configuration (a bad file is reported
//! and the running one kept), SIGTERM stops cleanly with the history written.

use crate::common::*;
use authwatch::store::Store;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_authwatch");
const CLIENT: &str = "cid-agent-process";
const DEADLINE: Duration = Duration::from_secs(20);

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Agent {
    fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child, by pid.
        let r = unsafe { libc::kill(self.0.id() as i32, sig) };
        assert_eq!(r, 0, "kill({sig})");
    }
}

fn state(rt: &tokio::runtime::Runtime, base: &str) -> Option<serde_json::Value> {
    rt.block_on(async {
        let body = reqwest::get(format!("{base}/api/v1/state"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        serde_json::from_str(&body).ok()
    })
}

fn names(state: &serde_json::Value) -> Vec<String> {
    state["integrations"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| i["name"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Poll the agent's state until `pred` holds.
fn wait_state(
    rt: &tokio::runtime::Runtime,
    base: &str,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(s) = state(rt, base)
            && pred(&s)
        {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sighup_reloads_keeps_a_good_config_over_a_bad_one_and_sigterm_stops_cleanly() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(start_sim(&one_client_scenario(CLIENT, SENTINEL, "")));
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", SENTINEL);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let head = format!(
        "[settings]\nprobe_interval = \"1h\"\n\n[agent]\nlisten = \"127.0.0.1:{port}\"\n\n{}",
        sfmc_credential("pkg", &sim.base_url(), CLIENT, &secret)
    );
    let one = head.clone() + &integration("crm-sync", "pkg", "");
    let config = write_config(dir.path(), &one);
    let db = dir.path().join("agent.db");
    let stderr_path = dir.path().join("stderr.txt");
    let agent = Agent(
        Command::new(BIN)
            .args(["--config", config.to_str().unwrap()])
            .args(["--db", db.to_str().unwrap(), "agent"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_state(&rt, &base, "crm-sync probed OK", |s| {
        s["integrations"][0]["status"] == "ok" || s["integrations"][0]["health"]["status"] == "ok"
    });

    // A second integration: SIGHUP picks it up.
    std::fs::write(
        &config,
        one.clone() + &integration("web-shop", "pkg", "team = \"web\""),
    )
    .unwrap();
    agent.signal(libc::SIGHUP);
    wait_state(&rt, &base, "the reloaded configuration", |s| {
        names(s) == ["crm-sync", "web-shop"]
    });

    // A broken file: reported with its place and the fix, the running configuration kept.
    std::fs::write(&config, one.replace("probe_interval", "probe_intervall")).unwrap();
    agent.signal(libc::SIGHUP);
    let deadline = Instant::now() + DEADLINE;
    let report = loop {
        let text = std::fs::read_to_string(&stderr_path).unwrap();
        if text.contains("reload failed") {
            break text;
        }
        assert!(Instant::now() < deadline, "no reload report in:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        report.contains("keeping the running configuration"),
        "{report}"
    );
    assert!(report.contains("probe_intervall"), "{report}");
    assert!(
        report.contains("probe_interval"),
        "the fix is suggested: {report}"
    );
    assert!(
        report.contains("authwatch.toml:2:"),
        "file:line:column: {report}"
    );
    assert_eq!(names(&state(&rt, &base).unwrap()), ["crm-sync", "web-shop"]);

    // SIGTERM: a clean exit (0) with the history written.
    let mut agent = agent;
    agent.signal(libc::SIGTERM);
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = agent.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the agent did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    let mut stderr = String::new();
    std::fs::File::open(&stderr_path)
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("stopping"), "{stderr}");
    assert!(!stderr.contains(SENTINEL));
    let store = Store::open(&db).unwrap();
    assert!(store.count("probes").unwrap() >= 2, "probes recorded");
    rt.block_on(sim.shutdown());
}
