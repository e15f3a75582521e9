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

/// The config of an agent on loopback `port` ("0": any) watching crm-sync through one package of the simulator.
fn one_integration_agent(
    dir: &std::path::Path,
    auth_url: &str,
    probe_interval: &str,
    port: &str,
) -> std::path::PathBuf {
    let secret = write_secret(dir, "secret", SENTINEL);
    write_config(
        dir,
        &format!(
            "[settings]\nprobe_interval = \"{probe_interval}\"\n\n[agent]\nlisten = \"127.0.0.1:{port}\"\n\n{}{}",
            sfmc_credential("pkg", auth_url, CLIENT, &secret),
            integration("crm-sync", "pkg", "")
        ),
    )
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

    // SIGTERM: a clean exit (143 = 128 + SIGTERM, systemd's SuccessExitStatus) with the history written.
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
    assert_eq!(status.code(), Some(143), "128 + SIGTERM");
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

/// Datagrams from the agent on a real NOTIFY_SOCKET, as systemd receives them (one message per datagram).
struct NotifySocket(std::os::unix::net::UnixDatagram);

impl NotifySocket {
    fn bind(path: &std::path::Path) -> Self {
        let s = std::os::unix::net::UnixDatagram::bind(path).unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        NotifySocket(s)
    }
    /// The next message (its lines); panics after DEADLINE without one.
    fn next(&self) -> Vec<String> {
        let mut buf = [0u8; 4096];
        let n = self
            .0
            .recv(&mut buf)
            .expect("a notify message before the deadline");
        String::from_utf8_lossy(&buf[..n])
            .lines()
            .map(String::from)
            .collect()
    }
    /// Skip messages until one has a line starting with `prefix`; returns that message.
    fn until(&self, prefix: &str, seen: &mut Vec<Vec<String>>) -> Vec<String> {
        loop {
            let m = self.next();
            seen.push(m.clone());
            if m.iter().any(|l| l.starts_with(prefix)) {
                return m;
            }
        }
    }
}

#[test]
fn systemd_notify_protocol_on_a_real_notify_socket() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(start_sim(&one_client_scenario(CLIENT, SENTINEL, "")));
    let dir = tempfile::tempdir().unwrap();
    let config = one_integration_agent(dir.path(), &sim.base_url(), "1h", "0");
    let socket_path = dir.path().join("notify.sock");
    let socket = NotifySocket::bind(&socket_path);
    let mut agent = Agent(
        Command::new(BIN)
            .args(["--config", config.to_str().unwrap()])
            .args([
                "--db",
                dir.path().join("agent.db").to_str().unwrap(),
                "agent",
            ])
            .env("NOTIFY_SOCKET", &socket_path)
            // WatchdogSec=1s: a ping every 500ms.
            .env("WATCHDOG_USEC", "1000000")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut seen = Vec::new();

    // READY=1 only after the first sweep: its STATUS= already counts the probed integration as OK.
    let ready = socket.until("READY=1", &mut seen);
    assert!(
        ready.contains(&"STATUS=1 integrations: 1 ok, 0 warn, 0 fail, 0 unknown".to_string()),
        "{ready:?}"
    );
    // Watchdog pings while the engine is alive.
    for _ in 0..2 {
        socket.until("WATCHDOG=1", &mut seen);
    }

    // SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1 again.
    agent.signal(libc::SIGHUP);
    let reloading = socket.until("RELOADING=1", &mut seen);
    let usec = reloading
        .iter()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("RELOADING=1 without MONOTONIC_USEC: {reloading:?}"));
    assert!(usec.parse::<u64>().is_ok_and(|u| u > 0), "{usec}");
    socket.until("READY=1", &mut seen);

    // SIGTERM: STOPPING=1, then a clean exit.
    agent.signal(libc::SIGTERM);
    socket.until("STOPPING=1", &mut seen);
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = agent.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the agent did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(143), "128 + SIGTERM");
    // Nothing carried the secret.
    assert!(!format!("{seen:?}").contains(SENTINEL));
    rt.block_on(sim.shutdown());
}

/// Ctrl-C in a terminal running the agent: it stops cleanly and exits 130 (128 + SIGINT).
#[test]
fn sigint_stops_the_agent_with_exit_130() {
    use std::io::BufRead;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(start_sim(&one_client_scenario(CLIENT, SENTINEL, "")));
    let dir = tempfile::tempdir().unwrap();
    let config = one_integration_agent(dir.path(), &sim.base_url(), "1h", "0");
    let mut agent = Agent(
        Command::new(BIN)
            .args(["--config", config.to_str().unwrap()])
            .args([
                "--db",
                dir.path().join("agent.db").to_str().unwrap(),
                "agent",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The first line says it listens: the signal handlers are in place by then.
    let mut line = String::new();
    std::io::BufReader::new(agent.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("listening on"), "{line}");
    agent.signal(libc::SIGINT);
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = agent.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the agent did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130), "128 + SIGINT");
    rt.block_on(sim.shutdown());
}

/// Rows in the `probes` table of the file at `db`, without creating it when missing (Store::open would).
fn probe_rows(db: &std::path::Path) -> Option<u64> {
    if !db.exists() {
        return None;
    }
    Store::open(db).ok()?.count("probes").ok()
}

/// The database file deleted, then replaced, while the agent runs: each time the agent notices, opens the file
/// at the path again and goes on saving history there (nothing reported as not saved).
#[test]
fn a_deleted_or_replaced_database_file_is_opened_again_and_history_goes_on() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(start_sim(&one_client_scenario(CLIENT, SENTINEL, "")));
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let config = one_integration_agent(dir.path(), &sim.base_url(), "1s", &port.to_string());
    let db = dir.path().join("agent.db");
    let _agent = Agent(
        Command::new(BIN)
            .args(["--config", config.to_str().unwrap()])
            .args(["--db", db.to_str().unwrap(), "agent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // "Within a minute": the agent checks every few seconds.
    let wait_rows = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while probe_rows(&db).is_none_or(|n| n == 0) {
            assert!(Instant::now() < deadline, "no probes saved {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_rows("at all");

    // Deleted (the main file only, as `rm agent.db` does while the agent keeps its journal open).
    std::fs::remove_file(&db).unwrap();
    wait_rows("after the file was deleted");

    // Replaced by another (empty) database, as a restore would.
    let other = dir.path().join("other.db");
    drop(Store::open(&other).unwrap());
    std::fs::rename(&other, &db).unwrap();
    wait_rows("after the file was replaced");

    let state = state(&rt, &base).expect("the agent answers");
    assert!(state["history_error"].is_null(), "{state}");
    rt.block_on(sim.shutdown());
}
