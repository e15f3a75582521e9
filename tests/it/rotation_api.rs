//! Rotation over the agent's API (operator role) and from a `--connect` console: the real agent binary with its
//! SQLite store and file/command sinks, the simulator standing in for Setup.

use crate::common::{SENTINEL, start_sim, write_secret};
use crate::rotation::{Env, KEY, command_sink, scenario, update_calls, wait_staging};
use authwatch::agent::client;
use authwatch::rotation::session::{Actor, Update};
use authwatch::tui::fixture::render_text;
use authwatch::tui::{App, AppOptions};
use chrono::Utc;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use secrecy::SecretString;
use serde_json::{Value, json};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const SCOPES: &str = "[\"data_extensions_read\", \"email_read\"]";
const VIEWER: &str = "viewer-token-rot-5f0c1e9a7b3d";
const OPERATOR: &str = "operator-token-rot-8d2a6c4e1f7b";
const OPERATOR2: &str = "operator-token-rot-2-77aa01c9";
const DEADLINE: Duration = Duration::from_secs(30);

/// The agent binary on `host` (a free port), with a viewer and two operator tokens.
struct Agent {
    child: Child,
    base: String,
}

impl Agent {
    fn start(env: &Env, host: &str) -> Agent {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = env.dir.path();
        let viewer = write_secret(dir, "viewer.token", VIEWER);
        let operator = write_secret(dir, "operator.token", OPERATOR);
        let operator2 = write_secret(dir, "operator2.token", OPERATOR2);
        let mut text = std::fs::read_to_string(&env.config).unwrap();
        text.push_str(&format!(
            "\n[agent]\nlisten = \"{host}:{port}\"\n\n\
             [[agent.token]]\nname = \"war-room\"\nrole = \"viewer\"\ntoken = {{ file = \"{}\" }}\n\n\
             [[agent.token]]\nname = \"oncall\"\nrole = \"operator\"\ntoken = {{ file = \"{}\" }}\n\n\
             [[agent.token]]\nname = \"second-op\"\nrole = \"operator\"\ntoken = {{ file = \"{}\" }}\n",
            viewer.display(),
            operator.display(),
            operator2.display()
        ));
        std::fs::write(&env.config, text).unwrap();
        let child = env
            .command(&["agent"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("agent.stderr")).unwrap())
            .spawn()
            .unwrap();
        let agent = Agent {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        // Up when it answers.
        let deadline = Instant::now() + DEADLINE;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the agent did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    /// SIGTERM and wait: its log and database are complete afterwards.
    fn stop(mut self) {
        // SAFETY: signalling the child we started.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client that keeps every answer it got (to search them for secrets).
struct Api {
    http: reqwest::Client,
    base: String,
    answers: Vec<String>,
}

impl Api {
    fn new(base: &str) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: base.to_string(),
            answers: Vec::new(),
        }
    }
    async fn get(&mut self, path: &str, token: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        let text = r.text().await.unwrap();
        self.answers.push(text.clone());
        (code, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
    async fn step(&mut self, token: &str, body: Value) -> (u16, Value) {
        let r = post_step(&self.http, &self.base, token, body).await;
        self.answers.push(r.1.to_string());
        r
    }
}

async fn post_step(http: &reqwest::Client, base: &str, token: &str, body: Value) -> (u16, Value) {
    let r = http
        .post(format!("{base}/api/v1/rotations/pkg"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn texts(answer: &Value) -> String {
    answer["checks"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|l| l["text"].as_str().unwrap_or("").to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_completes_a_rotation_over_the_api_and_a_viewer_is_refused() {
    let sim = start_sim(&scenario(SCOPES)).await;
    let env = Env::new(&sim.base_url(), "[\"data_extensions_read\"]", Some(KEY));
    let agent = Agent::start(&env, "127.0.0.1");
    let mut api = Api::new(&agent.base);

    // A viewer may neither read nor drive a rotation over this API; an unknown credential is a 404.
    assert_eq!(api.get("/api/v1/rotations/pkg", VIEWER).await.0, 403);
    assert_eq!(api.step(VIEWER, json!({"step": "verify"})).await.0, 403);
    let (code, body) = api.get("/api/v1/rotations/pkk", OPERATOR).await;
    assert_eq!(code, 404);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("did you mean `pkg`"),
        "{body}"
    );
    let (code, _) = api.get("/api/v1/rotations/pkg", OPERATOR).await;
    assert_eq!(code, 200);

    // stage: the secret Setup generated, carried in the body only.
    let new_secret = sim.generate_secret("pkg").unwrap();
    let (code, body) = api
        .step(OPERATOR, json!({"step": "stage", "secret": new_secret}))
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["ok"], true, "{body}");
    assert_eq!(body["state"], "staged");
    // A secret anywhere but stage is refused (and not used).
    let (code, _) = api
        .step(
            OPERATOR,
            json!({"step": "verify", "secret": "not-for-verify-x9"}),
        )
        .await;
    assert_eq!(code, 400);

    wait_staging();
    let (code, body) = api.step(OPERATOR, json!({"step": "verify"})).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["state"], "verified", "{body}");
    assert!(texts(&body).contains("crm-sync: token granted"), "{body}");

    let (code, body) = api.step(OPERATOR, json!({"step": "promote"})).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["state"], "promoted", "{body}");
    assert_eq!(env.secret_in_file(), new_secret);

    // Progress is in the snapshot (every role) and in GET (operators).
    let (_, view) = api.get("/api/v1/rotations/pkg", OPERATOR).await;
    assert_eq!(view["state"], "promoted", "{view}");
    let steps: Vec<&str> = view["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["stage", "verify", "promote"], "{view}");
    assert_eq!(view["last_step"]["actor"], "oncall");
    assert_eq!(view["last_step"]["origin"], "api");
    assert!(
        view["checks"].as_array().is_some_and(|c| !c.is_empty()),
        "{view}"
    );
    assert!(view["lease"].is_null(), "no step runs now: {view}");

    // activate: only with the credential id typed, after Setup activated the new secret.
    let (code, body) = api.step(OPERATOR, json!({"step": "activate"})).await;
    assert_eq!(code, 400, "{body}");
    sim.activate_secret("pkg").unwrap();
    let (code, body) = api
        .step(OPERATOR, json!({"step": "activate", "confirm": "pkg"}))
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["state"], "completed", "{body}");

    let (_, state) = api.get("/api/v1/state", VIEWER).await;
    let rotation = state["rotations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["credential"] == "pkg")
        .cloned()
        .unwrap();
    assert_eq!(rotation["state"], "completed", "{state}");

    agent.stop();
    // The audit names the token and where the steps came from.
    let (entries, _) = env.audit_steps();
    let promote = entries
        .iter()
        .find(|e| e["action"] == "promote")
        .expect("promote audited");
    assert_eq!(promote["actor"], "oncall", "{promote}");
    assert_eq!(promote["origin"], "api", "{promote}");
    let out = env.run(&["audit", "--credential", "pkg"], None);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains("oncall") && l.contains("api") && l.contains("activate")),
        "{}",
        out.stdout
    );

    // The secret is in no answer, no log, no database.
    env.outputs.borrow_mut().extend(api.answers.iter().cloned());
    env.outputs
        .borrow_mut()
        .push(std::fs::read_to_string(env.dir.path().join("agent.stderr")).unwrap_or_default());
    env.assert_never_leaked(&[SENTINEL, &new_secret]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_over_plain_http_beyond_loopback_is_refused() {
    let sim = start_sim(&scenario(SCOPES)).await;
    let env = Env::new(&sim.base_url(), "[\"data_extensions_read\"]", Some(KEY));
    let agent = Agent::start(&env, "0.0.0.0");
    let mut api = Api::new(&agent.base);
    let new_secret = sim.generate_secret("pkg").unwrap();
    let (code, body) = api
        .step(OPERATOR, json!({"step": "stage", "secret": new_secret}))
        .await;
    assert_eq!(code, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("tls_cert"),
        "{body}"
    );
    let (_, view) = api.get("/api/v1/rotations/pkg", OPERATOR).await;
    assert_eq!(view["state"], "idle", "nothing staged: {view}");
    agent.stop();
    env.outputs.borrow_mut().extend(api.answers.iter().cloned());
    env.assert_never_leaked(&[SENTINEL, &new_secret]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_promotes_over_the_api_at_once_one_is_refused_naming_the_holder() {
    let sim = start_sim(&scenario(SCOPES)).await;
    let env = Env::new(&sim.base_url(), "[\"data_extensions_read\"]", Some(KEY));
    // The update program waits for a file: the first promote is mid-step for as long as the test wants.
    let log = command_sink(&env);
    let go = env.dir.path().join("go");
    let script = env.dir.path().join("update-secret.sh");
    let text = std::fs::read_to_string(&script).unwrap();
    std::fs::write(
        &script,
        text.replace(
            "mv \"$target.new\"",
            &format!(
                "while [ ! -e '{}' ]; do sleep 0.05; done\nmv \"$target.new\"",
                go.display()
            ),
        ),
    )
    .unwrap();
    let agent = Agent::start(&env, "127.0.0.1");
    let mut api = Api::new(&agent.base);
    let new_secret = sim.generate_secret("pkg").unwrap();
    let (code, body) = api
        .step(OPERATOR, json!({"step": "stage", "secret": new_secret}))
        .await;
    assert_eq!(code, 200, "{body}");
    wait_staging();
    let (_, body) = api.step(OPERATOR, json!({"step": "verify"})).await;
    assert_eq!(body["state"], "verified", "{body}");

    let first = {
        let (http, base) = (api.http.clone(), api.base.clone());
        tokio::spawn(
            async move { post_step(&http, &base, OPERATOR, json!({"step": "promote"})).await },
        )
    };
    let deadline = Instant::now() + DEADLINE;
    while update_calls(&log).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the first promote's update command"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (code, body) = api.step(OPERATOR2, json!({"step": "promote"})).await;
    assert_eq!(code, 409, "{body}");
    assert!(texts(&body).contains("held by oncall via api"), "{body}");
    // Everyone sees the step running: what, who, from where.
    let view = loop {
        let (_, view) = api.get("/api/v1/rotations/pkg", OPERATOR2).await;
        if !view["running"].is_null() {
            break view;
        }
        assert!(
            Instant::now() < deadline,
            "the running step is published: {view}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(view["running"]["step"], "promote", "{view}");
    assert_eq!(view["running"]["actor"], "oncall", "{view}");
    assert_eq!(view["running"]["origin"], "api", "{view}");
    std::fs::write(&go, "").unwrap();
    let (code, body) = first.await.unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["state"], "promoted", "{body}");
    assert_eq!(update_calls(&log).len(), 1, "one update only");
    assert_eq!(env.secret_in_file(), new_secret);
    let (_, view) = api.get("/api/v1/rotations/pkg", OPERATOR).await;
    assert!(view["running"].is_null(), "{view}");
    assert_eq!(view["state"], "promoted", "{view}");
    agent.stop();
    sim.shutdown().await;
}

/// The console's state and keys with the real `--connect` client: the wizard's steps go to the agent.
struct Console {
    app: App,
    updates: tokio::sync::mpsc::UnboundedReceiver<Update>,
}

impl Console {
    fn key(&mut self, code: KeyCode) {
        self.app
            .handle_key(KeyEvent::new(code, KeyModifiers::NONE), Utc::now());
    }
    async fn answered(&mut self) -> String {
        let u = tokio::time::timeout(DEADLINE, self.updates.recv())
            .await
            .expect("the agent answers")
            .expect("the link runs");
        self.app.apply_rotation_update(u, Utc::now());
        render_text(&self.app, 100, 30, Utc::now())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_console_with_an_operator_token_runs_the_wizard_against_the_agent() {
    let sim = start_sim(&scenario(SCOPES)).await;
    let env = Env::new(&sim.base_url(), "[\"data_extensions_read\"]", Some(KEY));
    let agent = Agent::start(&env, "127.0.0.1");
    let mut api = Api::new(&agent.base);
    let new_secret = sim.generate_secret("pkg").unwrap();
    let (code, body) = api
        .step(OPERATOR, json!({"step": "stage", "secret": new_secret}))
        .await;
    assert_eq!(code, 200, "{body}");
    wait_staging();

    let conn = client::connect(
        agent.base.parse().unwrap(),
        Some(SecretString::from(OPERATOR)),
    )
    .await
    .unwrap();
    let handle = conn.handle.clone();
    // The first state from the agent.
    let mut snaps = handle.watch();
    tokio::time::timeout(DEADLINE, async {
        while snaps.borrow_and_update().integrations.is_empty() {
            snaps.changed().await.unwrap();
        }
    })
    .await
    .expect("the agent's state arrives");
    let (tx, updates) = handle.rotation_link(Actor::console());
    let app = App::new(handle.snapshot(), AppOptions::default())
        .with_handle(handle.clone())
        .with_rotation(tx, false);
    let mut c = Console { app, updates };
    c.key(KeyCode::Char('r'));
    let s = c.answered().await;
    assert!(s.contains("Rotate secret: pkg"), "{s}");
    assert!(s.contains("state: staged"), "{s}");

    // While this console's wizard is open, its session holds the rotation: another operator is refused.
    let (code, body) = api.step(OPERATOR2, json!({"step": "verify"})).await;
    assert_eq!(code, 409, "{body}");
    assert!(
        texts(&body).contains("held by oncall via console"),
        "{body}"
    );

    c.key(KeyCode::Char('v'));
    let s = c.answered().await;
    assert!(s.contains("state: verified"), "{s}");

    // Closing the wizard gives the rotation back.
    c.key(KeyCode::Esc);
    assert!(c.app.wizard().is_none(), "Esc closes the wizard");
    let deadline = Instant::now() + DEADLINE;
    let body = loop {
        let (code, body) = api.step(OPERATOR2, json!({"step": "open"})).await;
        if code == 200 {
            break body;
        }
        if Instant::now() > deadline {
            let log = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "cat $(find {} -name '*.log')",
                    env.state_dir().display()
                ))
                .output()
                .unwrap();
            panic!(
                "the console's session did not end: {body}\n{}",
                String::from_utf8_lossy(&log.stdout)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(body["state"], "verified", "{body}");

    // A viewer's console cannot rotate (read-only), and sees the progress in the agent's state.
    let viewer = client::connect(
        agent.base.parse().unwrap(),
        Some(SecretString::from(VIEWER)),
    )
    .await
    .unwrap();
    let mut snaps = viewer.handle.watch();
    tokio::time::timeout(DEADLINE, async {
        loop {
            let verified = snaps
                .borrow_and_update()
                .rotation("pkg")
                .is_some_and(|r| r.state == authwatch::rotation::fsm::Phase::Verified);
            if verified {
                break;
            }
            snaps.changed().await.unwrap();
        }
    })
    .await
    .expect("a viewer sees the rotation's progress");

    agent.stop();
    let (entries, _) = env.audit_steps();
    let verify = entries
        .iter()
        .find(|e| e["action"] == "verify" && e["result"] != "refused")
        .expect("verify audited");
    assert_eq!(verify["actor"], "oncall", "{verify}");
    let refused = entries
        .iter()
        .find(|e| e["result"] == "refused")
        .expect("the refusal is audited");
    assert_eq!(refused["actor"], "second-op", "{refused}");
    assert_eq!(refused["origin"], "api", "{refused}");
    assert_eq!(verify["origin"], "console", "{verify}");
    env.outputs.borrow_mut().extend(api.answers.iter().cloned());
    env.assert_never_leaked(&[SENTINEL, &new_secret]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_engine_publishes_the_progress_of_a_cli_rotation() {
    use authwatch::engine::{self, EngineOptions};
    use authwatch::rotation::fsm::Phase;
    use authwatch::rotation::session::RotationSetup;
    let sim = start_sim(&scenario(SCOPES)).await;
    let env = Env::new(&sim.base_url(), "[\"data_extensions_read\"]", Some(KEY));
    let config = authwatch::config::load(&env.config).unwrap();
    let running = engine::spawn(
        config.clone(),
        EngineOptions {
            store: Some(authwatch::store::Store::open(&env.db).unwrap()),
            rotation: Some(RotationSetup {
                config: std::sync::Arc::new(config),
                db: env.db.clone(),
                sim: None,
            }),
            ..Default::default()
        },
    )
    .unwrap();
    let mut watch = running.handle.watch();
    let wait_for = |phase: Phase| {
        let mut watch = watch.clone();
        async move {
            tokio::time::timeout(DEADLINE, async {
                while !watch
                    .borrow_and_update()
                    .rotation("pkg")
                    .is_some_and(|r| r.state == phase)
                {
                    watch.changed().await.unwrap();
                }
            })
            .await
            .unwrap_or_else(|_| panic!("the console shows {phase:?}"));
        }
    };
    wait_for(Phase::Idle).await;
    // Another process stages: nobody touches this engine, its snapshot follows.
    let new_secret = sim.generate_secret("pkg").unwrap();
    let out = env.rotate("stage", &[], Some(&new_secret));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    wait_for(Phase::Staged).await;
    let snap = watch.borrow_and_update().clone();
    let view = snap.rotation("pkg").unwrap();
    assert_eq!(view.steps.first().map(|s| s.step.as_str()), Some("stage"));
    assert!(
        view.lease.is_none(),
        "the CLI gave the lease back: {view:?}"
    );
    running.task.abort();
    sim.shutdown().await;
}
