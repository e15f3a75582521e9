//! Against the real tools: Debian's `prometheus-alertmanager` receives the agent's direct alerts (and their
//! resolution), and `prometheus` scrapes the agent's `/metrics` (with and without a bearer token) and loads the
//! shipped alert rules.
//!
//! Each tool runs as a child process of the test on a free loopback port with its own temporary config and
//! storage, and is killed when the test ends. Without the tool the test is skipped loudly, unless
//! `AUTHWATCH_REQUIRE_TOOLS=1` (set by `.ci/run`), which makes a missing tool a failure.

use crate::common::*;
use authwatch::agent::{AgentOptions, RunningAgent};
use authwatch::engine::Command;
use serde_json::Value;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const CLIENT: &str = "5c9e1b7aa0d44f3e8a2b91c7";
const VIEWER: &str = "viewer-token-3e7d9a1c5b8f";
/// Bound of every wait for a tool or for something to show up in it.
const DEADLINE: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(100);

/// The tool's binary: the Debian path, else the first of `names` on PATH. Missing: `None` after a loud
/// notice, or a failure when `AUTHWATCH_REQUIRE_TOOLS=1`.
pub(crate) fn tool(debian_path: &str, names: &[&str], package: &str) -> Option<PathBuf> {
    let debian = Path::new(debian_path);
    if debian.is_file() {
        return Some(debian.to_path_buf());
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
            .find(|p| p.is_file())
    });
    if on_path.is_some() {
        return on_path;
    }
    let msg = format!(
        "{debian_path} not installed; run .ci/run or apt-get install {package} (Debian package)"
    );
    if std::env::var("AUTHWATCH_REQUIRE_TOOLS").as_deref() == Ok("1") {
        panic!("AUTHWATCH_REQUIRE_TOOLS=1 but {msg}");
    }
    eprintln!("\n************************************************************");
    eprintln!("SKIPPED: {msg}");
    eprintln!("************************************************************\n");
    None
}

/// A loopback port nobody listens on right now (the tool binds it a moment later; a lost race is retried).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// A tool running as a child process; killed (and reaped) on drop, then its directory removed.
struct ToolProcess {
    name: &'static str,
    child: Child,
    port: u16,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl Drop for ToolProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ToolProcess {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Start `bin` with `args(port, dir)` and wait until `GET /-/ready` answers 200.
    async fn start(
        name: &'static str,
        bin: &Path,
        dir: tempfile::TempDir,
        args: impl Fn(u16, &Path) -> Vec<String>,
    ) -> ToolProcess {
        let http = reqwest::Client::new();
        let mut dir = Some(dir);
        for attempt in 1..=3 {
            let port = free_port();
            let d = dir.take().expect("directory kept between attempts");
            let log = d.path().join(format!("{name}-{attempt}.log"));
            let out = File::create(&log).unwrap();
            let child = std::process::Command::new(bin)
                .args(args(port, d.path()))
                .current_dir(d.path())
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let mut p = ToolProcess {
                name,
                child,
                port,
                log,
                dir: d,
            };
            let until = Instant::now() + DEADLINE;
            loop {
                if let Some(status) = p.child.try_wait().unwrap() {
                    let text = p.log_text();
                    if text.contains("address already in use") && attempt < 3 {
                        break; // lost the port race: another port
                    }
                    panic!("{name} exited ({status}) before it was ready:\n{text}");
                }
                if let Ok(r) = http.get(p.url("/-/ready")).send().await
                    && r.status() == 200
                {
                    return p;
                }
                if Instant::now() > until {
                    panic!(
                        "{name} not ready on port {port} within {DEADLINE:?}:\n{}",
                        p.log_text()
                    );
                }
                tokio::time::sleep(POLL).await;
            }
            // Keep the directory (and its logs) for the next attempt; the failed child is reaped.
            let _ = p.child.wait();
            let tmp = tempfile::tempdir().unwrap();
            dir = Some(std::mem::replace(&mut p.dir, tmp));
        }
        unreachable!("three attempts either return or panic")
    }

    /// GET a JSON document from the tool.
    async fn get_json(&self, http: &reqwest::Client, path: &str, query: &[(&str, &str)]) -> Value {
        let r = http
            .get(self.url(path))
            .query(query)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{} {path}: {e}", self.name));
        assert!(
            r.status().is_success(),
            "{} {path} answered {}",
            self.name,
            r.status()
        );
        r.json()
            .await
            .unwrap_or_else(|e| panic!("{} {path}: not JSON: {e}", self.name))
    }
}

/// Poll `f` every [`POLL`] until it returns `Some`, for at most [`DEADLINE`]; on timeout the last value seen
/// (`f` also returns what it looked at) and the tool's log are shown.
async fn poll_until<T>(
    what: &str,
    tool: &ToolProcess,
    mut f: impl AsyncFnMut() -> Result<T, Value>,
) -> T {
    let until = Instant::now() + DEADLINE;
    loop {
        let last = match f().await {
            Ok(v) => return v,
            Err(last) => last,
        };
        if Instant::now() > until {
            panic!(
                "timed out after {DEADLINE:?} waiting for {what}; last seen:\n{}\n{} log:\n{}",
                serde_json::to_string_pretty(&last).unwrap_or_default(),
                tool.name,
                tool.log_text()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

fn label<'a>(v: &'a Value, name: &str) -> &'a str {
    v["labels"][name].as_str().unwrap_or("")
}

fn metric_label<'a>(v: &'a Value, name: &str) -> &'a str {
    v["metric"][name].as_str().unwrap_or("")
}

fn parse_time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("a time: {v}")))
        .unwrap_or_else(|e| panic!("{v}: {e}"))
        .with_timezone(&chrono::Utc)
}

/// The value of one sample of the Alertmanager's own metrics, e.g.
/// `alertmanager_alerts_received_total{status="resolved",version="v2"}`.
async fn tool_metric(http: &reqwest::Client, tool: &ToolProcess, series: &str) -> f64 {
    let text = http
        .get(tool.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn alertmanager_receives_the_fail_alert_and_its_resolution() {
    let Some(bin) = tool(
        "/usr/bin/prometheus-alertmanager",
        &["prometheus-alertmanager", "alertmanager"],
        "prometheus-alertmanager",
    ) else {
        return;
    };
    let am_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        am_dir.path().join("alertmanager.yml"),
        "route:\n  receiver: \"null\"\n  group_wait: 1s\nreceivers:\n  - name: \"null\"\n",
    )
    .unwrap();
    let am = ToolProcess::start("alertmanager", &bin, am_dir, |port, dir| {
        vec![
            format!("--config.file={}", dir.join("alertmanager.yml").display()),
            format!("--storage.path={}", dir.join("data").display()),
            "--cluster.listen-address=".into(),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ]
    })
    .await;

    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", "wrong-secret");
    let cfg = load_config(
        dir.path(),
        &format!(
            "[settings]\nprobe_interval = \"1h\"\nconfirm_retry = \"20ms\"\nfailure_threshold = 2\n\n\
             [[notify]]\nname = \"team-alertmanager\"\nkind = \"alertmanager\"\nurl = \"http://127.0.0.1:{}\"\n\n{}{}",
            am.port,
            sfmc_credential("pkg", &sim.base_url(), CLIENT, &secret),
            integration(
                "crm-sync",
                "pkg",
                "team = \"crm-ops\"\nenvironment = \"prod\"\nbusiness_unit = \"NA Retail\""
            ),
        ),
    );
    let agent = RunningAgent::start(
        cfg,
        AgentOptions {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            db: None,
            ..Default::default()
        },
    )
    .await
    .expect("agent starts");
    let http = reqwest::Client::new();

    // The failure arrives as one active alert with the integration's labels.
    let alert = poll_until("the alert in Alertmanager", &am, async || {
        let alerts = am.get_json(&http, "/api/v2/alerts", &[]).await;
        let found = alerts.as_array().and_then(|a| {
            a.iter()
                .find(|x| label(x, "integration") == "crm-sync")
                .cloned()
        });
        match found {
            Some(x) if x["status"]["state"] == "active" => Ok(x),
            _ => Err(alerts),
        }
    })
    .await;
    let labels = alert["labels"].as_object().unwrap();
    let expected = [
        ("alertname", "AuthwatchIntegrationFailing"),
        ("severity", "critical"),
        ("integration", "crm-sync"),
        ("credential", "pkg"),
        ("team", "crm-ops"),
        ("environment", "prod"),
        ("business_unit", "NA Retail"),
    ];
    for (k, v) in expected {
        assert_eq!(label(&alert, k), v, "label {k} of {alert:#}");
    }
    assert_eq!(labels.len(), expected.len(), "unexpected labels: {alert:#}");
    let summary = alert["annotations"]["summary"].as_str().unwrap_or("");
    assert!(
        summary.starts_with("FAIL crm-sync (crm-ops, prod): "),
        "{alert:#}"
    );
    assert!(
        alert["annotations"]["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{alert:#}"
    );
    let now = chrono::Utc::now();
    assert!(parse_time(&alert["startsAt"]) <= now, "{alert:#}");
    assert!(
        parse_time(&alert["endsAt"]) > now + chrono::Duration::minutes(30),
        "a firing alert must stay valid until the next refresh: {alert:#}"
    );
    assert_eq!(alert["receivers"][0]["name"], "null", "{alert:#}");
    let fingerprint = alert["fingerprint"].clone();
    // Nothing secret went to Alertmanager.
    assert!(!alert.to_string().contains(SENTINEL));
    assert!(!alert.to_string().contains("wrong-secret"));

    // Fixed: the same alert (same labels, so the same fingerprint) is resolved. Alertmanager drops resolved
    // alerts from /api/v2/alerts (active=true is the default; resolved ones are not listed by any filter).
    write_secret(dir.path(), "secret", SENTINEL);
    agent.engine.send(Command::ProbeAll).await.unwrap();
    poll_until("the alert to be resolved", &am, async || {
        let alerts = am
            .get_json(&http, "/api/v2/alerts", &[("active", "true")])
            .await;
        let still = alerts
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["fingerprint"] == fingerprint));
        if still { Err(alerts) } else { Ok(()) }
    })
    .await;
    // Alertmanager counted exactly one firing and one resolved alert: the resolution carried the labels of the
    // alert it ends (otherwise the firing one would still be listed above), and nothing was sent per probe.
    let firing = tool_metric(
        &http,
        &am,
        "alertmanager_alerts_received_total{status=\"firing\",version=\"v2\"}",
    )
    .await;
    let resolved = tool_metric(
        &http,
        &am,
        "alertmanager_alerts_received_total{status=\"resolved\",version=\"v2\"}",
    )
    .await;
    assert_eq!((firing, resolved), (1.0, 1.0), "{}", am.log_text());
    let alerts = am.get_json(&http, "/api/v2/alerts", &[]).await;
    assert_eq!(alerts, serde_json::json!([]));
    agent.stop().await;
}

/// A minimal authwatch config for one integration; `agent` is appended verbatim (e.g. tokens).
fn scrape_target_config(
    dir: &Path,
    auth_url: &str,
    secret: &Path,
    integration_name: &str,
    agent: &str,
) -> authwatch::config::Config {
    load_config(
        dir,
        &format!(
            "[settings]\nprobe_interval = \"1h\"\nconfirm_retry = \"20ms\"\nfailure_threshold = 1\n\n{agent}{}{}",
            sfmc_credential("pkg", auth_url, CLIENT, secret),
            integration(
                integration_name,
                "pkg",
                "team = \"crm-ops\"\nenvironment = \"prod\""
            ),
        ),
    )
}

#[tokio::test]
async fn prometheus_scrapes_the_agent_and_loads_the_shipped_rules() {
    let Some(bin) = tool("/usr/bin/prometheus", &["prometheus"], "prometheus") else {
        return;
    };
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;

    // Agent "authwatch": no tokens, its integration fails (wrong secret).
    let open_dir = tempfile::tempdir().unwrap();
    let wrong = write_secret(open_dir.path(), "secret", "wrong-secret");
    let open = RunningAgent::start(
        scrape_target_config(open_dir.path(), &sim.base_url(), &wrong, "crm-sync", ""),
        AgentOptions {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            db: None,
            ..Default::default()
        },
    )
    .await
    .expect("agent without tokens starts");

    // Agent "authwatch-token": a viewer token is required, its integration is ok.
    let token_dir = tempfile::tempdir().unwrap();
    let right = write_secret(token_dir.path(), "secret", SENTINEL);
    let token_file = write_secret(token_dir.path(), "viewer.token", VIEWER);
    let tokens = format!(
        "[agent]\nlisten = \"127.0.0.1:0\"\n\n[[agent.token]]\nname = \"prometheus\"\nrole = \"viewer\"\ntoken = {{ file = \"{}\" }}\n\n",
        token_file.display()
    );
    let guarded = RunningAgent::start(
        scrape_target_config(
            token_dir.path(),
            &sim.base_url(),
            &right,
            "web-shop",
            &tokens,
        ),
        AgentOptions {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            db: None,
            ..Default::default()
        },
    )
    .await
    .expect("agent with tokens starts");

    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/prometheus/alerts.yml");
    let prom_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        prom_dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - \"{}\"\n\
             scrape_configs:\n\
             \x20 - job_name: authwatch\n\
             \x20   scrape_interval: 1s\n\
             \x20   static_configs: [{{ targets: [\"{}\"] }}]\n\
             \x20 - job_name: authwatch-token\n\
             \x20   scrape_interval: 1s\n\
             \x20   authorization: {{ credentials_file: \"{}\" }}\n\
             \x20   static_configs: [{{ targets: [\"{}\"] }}]\n",
            rules.display(),
            open.addr,
            token_file.display(),
            guarded.addr,
        ),
    )
    .unwrap();
    let prom = ToolProcess::start("prometheus", &bin, prom_dir, |port, dir| {
        vec![
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ]
    })
    .await;
    let http = reqwest::Client::new();
    let query = async |q: &str| -> Value {
        let v = prom.get_json(&http, "/api/v1/query", &[("query", q)]).await;
        assert_eq!(v["status"], "success", "{q}: {v:#}");
        v
    };

    // Both targets are up (the token one only with its token).
    poll_until("both targets up", &prom, async || {
        let v = query("up").await;
        let up = |job: &str| {
            v["data"]["result"].as_array().is_some_and(|r| {
                r.iter()
                    .any(|s| metric_label(s, "job") == job && s["value"][1] == "1")
            })
        };
        if up("authwatch") && up("authwatch-token") {
            Ok(())
        } else {
            Err(v)
        }
    })
    .await;

    // The status gauges with the integration's labels: 2 = fail, 0 = ok.
    let samples = poll_until("the status of both integrations", &prom, async || {
        let v = query("authwatch_integration_status").await;
        let result = v["data"]["result"].as_array().cloned().unwrap_or_default();
        let value = |name: &str| {
            result
                .iter()
                .find(|s| metric_label(s, "integration") == name)
                .and_then(|s| s["value"][1].as_str())
                .map(str::to_string)
        };
        if value("crm-sync").as_deref() == Some("2") && value("web-shop").as_deref() == Some("0") {
            Ok(result)
        } else {
            Err(v)
        }
    })
    .await;
    let failing = samples
        .iter()
        .find(|s| metric_label(s, "integration") == "crm-sync")
        .unwrap();
    assert_eq!(metric_label(failing, "job"), "authwatch", "{failing:#}");
    assert_eq!(metric_label(failing, "credential"), "pkg", "{failing:#}");
    assert_eq!(metric_label(failing, "team"), "crm-ops", "{failing:#}");
    assert_eq!(metric_label(failing, "environment"), "prod", "{failing:#}");
    let ok = samples
        .iter()
        .find(|s| metric_label(s, "integration") == "web-shop")
        .unwrap();
    assert_eq!(metric_label(ok, "job"), "authwatch-token", "{ok:#}");
    let probes = query("sum by (job) (authwatch_probes_total)").await;
    assert_eq!(
        probes["data"]["result"].as_array().map(Vec::len),
        Some(2),
        "probe counters from both agents: {probes:#}"
    );

    // The shipped rules are loaded and evaluate without error; the failing integration is pending
    // (`for: 5m`) in AuthwatchIntegrationFailing, and the agent is not reported down.
    let group = poll_until("the shipped rules evaluated", &prom, async || {
        let v = prom.get_json(&http, "/api/v1/rules", &[]).await;
        let group = v["data"]["groups"]
            .as_array()
            .and_then(|g| g.iter().find(|g| g["name"] == "authwatch"))
            .cloned();
        let Some(group) = group else { return Err(v) };
        let rules = group["rules"].as_array().cloned().unwrap_or_default();
        let evaluated = !rules.is_empty() && rules.iter().all(|r| r["health"] != "unknown");
        let pending = rules.iter().any(|r| {
            r["name"] == "AuthwatchIntegrationFailing"
                && r["state"] == "pending"
                && r["alerts"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| label(x, "integration") == "crm-sync"))
        });
        if evaluated && pending {
            Ok(group)
        } else {
            Err(v)
        }
    })
    .await;
    assert_eq!(group["file"], rules.display().to_string(), "{group:#}");
    let rules = group["rules"].as_array().unwrap();
    let names: Vec<&str> = rules.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "AuthwatchIntegrationFailing",
            "AuthwatchSecretExpiresIn14Days",
            "AuthwatchSecretExpiresIn7Days",
            "AuthwatchAgentDown",
        ]
    );
    for r in rules {
        assert_eq!(r["type"], "alerting", "{r:#}");
        assert_eq!(r["health"], "ok", "rule evaluation error: {r:#}");
        assert_eq!(r["lastError"].as_str().unwrap_or(""), "", "{r:#}");
    }
    let failing_rule = &rules[0];
    let alerts = failing_rule["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "only crm-sync fails: {failing_rule:#}");
    assert_eq!(label(&alerts[0], "severity"), "critical");
    assert_eq!(label(&alerts[0], "team"), "crm-ops");
    assert_eq!(rules[3]["state"], "inactive", "agent up: {:#}", rules[3]);

    drop(prom);
    open.stop().await;
    guarded.stop().await;
}

/// What the Alertmanagers' webhook receiver got: (status, alertnames) per notification.
type Notifications = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<String>)>>>;

async fn start_webhook_receiver() -> (u16, Notifications) {
    let got: Notifications = Default::default();
    let app = axum::Router::new()
        .route(
            "/alerts",
            axum::routing::post(
                |axum::extract::State(st): axum::extract::State<Notifications>,
                 axum::Json(body): axum::Json<Value>| async move {
                    let names = body["alerts"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .map(|x| label(x, "alertname").to_string())
                                .collect()
                        })
                        .unwrap_or_default();
                    st.lock()
                        .unwrap()
                        .push((body["status"].as_str().unwrap_or("").to_string(), names));
                    axum::http::StatusCode::OK
                },
            ),
        )
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, got)
}

/// Alerting at scale without a protocol of ours: two agents with the same configuration push to both members of
/// an Alertmanager cluster, and the cluster's gossiped notification log makes the receiver hear of the incident
/// once, and of its resolution once.
#[tokio::test]
async fn two_agents_and_a_clustered_alertmanager_notify_once() {
    let Some(bin) = tool(
        "/usr/bin/prometheus-alertmanager",
        &["prometheus-alertmanager", "alertmanager"],
        "prometheus-alertmanager",
    ) else {
        return;
    };
    let (hook_port, got) = start_webhook_receiver().await;
    // Short timings so the test is quick: on each flush (every group_interval) the second member waits
    // peer_timeout, then reads the gossiped notification log to see whether the first one already notified.
    let am_config = format!(
        "route:\n  receiver: hook\n  group_by: [alertname, integration]\n  group_wait: 1s\n  group_interval: 3s\n  repeat_interval: 1h\n\
         receivers:\n  - name: hook\n    webhook_configs:\n      - url: http://127.0.0.1:{hook_port}/alerts\n        send_resolved: true\n"
    );
    let cluster = [free_port(), free_port()];
    let mut members = Vec::new();
    for me in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("alertmanager.yml"), &am_config).unwrap();
        let (mine, peer) = (cluster[me], cluster[1 - me]);
        members.push(
            ToolProcess::start(
                if me == 0 {
                    "alertmanager-1"
                } else {
                    "alertmanager-2"
                },
                &bin,
                dir,
                move |port, dir| {
                    vec![
                        format!("--config.file={}", dir.join("alertmanager.yml").display()),
                        format!("--storage.path={}", dir.join("data").display()),
                        format!("--web.listen-address=127.0.0.1:{port}"),
                        format!("--cluster.listen-address=127.0.0.1:{mine}"),
                        format!("--cluster.advertise-address=127.0.0.1:{mine}"),
                        format!("--cluster.peer=127.0.0.1:{peer}"),
                        "--cluster.gossip-interval=50ms".into(),
                        "--cluster.pushpull-interval=1s".into(),
                        "--cluster.peer-timeout=500ms".into(),
                        "--cluster.settle-timeout=10s".into(),
                    ]
                },
            )
            .await,
        );
    }
    let http = reqwest::Client::new();
    // Both members see each other and have settled.
    for am in &members {
        poll_until("a settled two-member cluster", am, async || {
            let status = am.get_json(&http, "/api/v2/status", &[]).await;
            let peers = status["cluster"]["peers"].as_array().map_or(0, Vec::len);
            if peers == 2 && status["cluster"]["status"] == "ready" {
                Ok(())
            } else {
                Err(status)
            }
        })
        .await;
    }

    // Two agents, one configuration: the same failing integration, pushed to both members.
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", "wrong-secret");
    let text = format!(
        "[settings]\nprobe_interval = \"1h\"\nconfirm_retry = \"20ms\"\nfailure_threshold = 2\n\n\
         [[notify]]\nname = \"am-1\"\nkind = \"alertmanager\"\nurl = \"{}\"\n\n\
         [[notify]]\nname = \"am-2\"\nkind = \"alertmanager\"\nurl = \"{}\"\n\n{}{}",
        members[0].url(""),
        members[1].url(""),
        sfmc_credential("pkg", &sim.base_url(), CLIENT, &secret),
        integration(
            "crm-sync",
            "pkg",
            "team = \"crm-ops\"\nenvironment = \"prod\""
        ),
    );
    let mut agents = Vec::new();
    for _ in 0..2 {
        agents.push(
            RunningAgent::start(
                load_config(dir.path(), &text),
                AgentOptions {
                    listen: Some("127.0.0.1:0".parse().unwrap()),
                    db: None,
                    ..Default::default()
                },
            )
            .await
            .expect("agent starts"),
        );
    }
    // Each member received the alert from both agents (4 posts in all), and the receiver heard once.
    for am in &members {
        poll_until("both agents' alerts in each member", am, async || {
            let firing = tool_metric(
                &http,
                am,
                "alertmanager_alerts_received_total{status=\"firing\",version=\"v2\"}",
            )
            .await;
            if firing >= 2.0 {
                Ok(())
            } else {
                Err(Value::from(firing))
            }
        })
        .await;
    }
    poll_until("the firing notification", &members[0], async || {
        let n = got.lock().unwrap().len();
        if n >= 1 { Ok(()) } else { Err(Value::from(n)) }
    })
    .await;

    // A resolution that reaches the second member between one of its flushes and the log check peer_timeout
    // later makes it announce the (stale) firing state again: Alertmanager's design, rare in production where
    // incidents outlast the flush cycle. Resolve right after both members' log checks, far from the next flush.
    let queries =
        async |am: &ToolProcess| tool_metric(&http, am, "alertmanager_nflog_queries_total").await;
    let before = [queries(&members[0]).await, queries(&members[1]).await];
    for (am, b) in members.iter().zip(before) {
        poll_until("a notification-log check", am, async || {
            let q = queries(am).await;
            if q > b { Ok(()) } else { Err(Value::from(q)) }
        })
        .await;
    }
    let baseline = [queries(&members[0]).await, queries(&members[1]).await];

    // Fixed: both agents resolve; the receiver hears of it once.
    write_secret(dir.path(), "secret", SENTINEL);
    for a in &agents {
        a.engine.send(Command::ProbeAll).await.unwrap();
    }
    poll_until("the resolved notification", &members[0], async || {
        let g = got.lock().unwrap().clone();
        if g.iter().any(|(s, _)| s == "resolved") {
            Ok(())
        } else {
            Err(serde_json::json!(g))
        }
    })
    .await;
    // Both members have checked the log for the resolution (the second one peer_timeout after the first sent):
    // a duplicate would be on its way to the receiver now; give it a moment to arrive.
    for (am, b) in members.iter().zip(baseline) {
        poll_until("each member's check of the resolution", am, async || {
            let q = queries(am).await;
            if q > b { Ok(()) } else { Err(Value::from(q)) }
        })
        .await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let g = got.lock().unwrap().clone();
    let crm = vec!["AuthwatchIntegrationFailing".to_string()];
    assert_eq!(
        g,
        [
            ("firing".to_string(), crm.clone()),
            ("resolved".to_string(), crm)
        ],
        "exactly one notification for the incident and one for its resolution:\n{}\n{}",
        members[0].log_text(),
        members[1].log_text()
    );
    for a in agents {
        a.stop().await;
    }
}
