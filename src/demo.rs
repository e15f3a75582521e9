//! `authwatch demo`: the simulator in-process, a temporary config pointing at it, and a synthetic middleware
//! that calls the simulator with each integration's credentials and writes an access log the demo ingests, so
//! the 401/403 log shows both sources.

use crate::config::{self, Config, Provider};
use crate::sim::{self, Scenario, SimServer};
use chrono::Utc;
use secrecy::ExposeSecret;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Name of the demo's log source, shown in the 401/403 log.
pub const MIDDLEWARE_SOURCE: &str = "demo-middleware";
/// How often the synthetic middleware calls SFMC for each integration.
const MIDDLEWARE_EVERY: Duration = Duration::from_secs(4);

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot create a temporary directory for the demo: {0}")]
    TempDir(std::io::Error),
    #[error("cannot start the simulator: {0}")]
    Sim(#[from] sim::SimError),
    #[error("cannot write the demo config: {0}")]
    Write(std::io::Error),
    #[error("the demo config does not load: {0}")]
    Config(#[from] config::ConfigError),
}

pub struct Demo {
    pub server: SimServer,
    pub config: Config,
    pub dir: tempfile::TempDir,
    middleware: Option<tokio::task::JoinHandle<()>>,
}

impl Demo {
    /// Start the simulator and write the config; with `middleware`, also the synthetic middleware and its log
    /// source.
    pub async fn start(middleware: bool) -> Result<Demo, DemoError> {
        let dir = tempfile::Builder::new()
            .prefix("authwatch-demo-")
            .tempdir()
            .map_err(DemoError::TempDir)?;
        let server = sim::start(Scenario::demo(), ([127, 0, 0, 1], 0).into()).await?;
        let path = server.write_config(dir.path(), Utc::now())?;
        let log = dir.path().join("logs").join("middleware.jsonl");
        if middleware {
            std::fs::create_dir_all(log.parent().expect("has a parent"))
                .map_err(DemoError::Write)?;
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(DemoError::Write)?;
            writeln!(
                file,
                "\n[[log_source]]\nname = \"{MIDDLEWARE_SOURCE}\"\npath = \"{}\"\nformat = \"jsonl\"",
                log.display()
            )
            .map_err(DemoError::Write)?;
        }
        let config = config::load(&path)?;
        let middleware = middleware.then(|| tokio::spawn(run_middleware(config.clone(), log)));
        Ok(Demo {
            server,
            config,
            dir,
            middleware,
        })
    }

    pub async fn stop(self) {
        if let Some(m) = self.middleware {
            m.abort();
        }
        self.server.shutdown().await;
    }
}

/// Calls the simulator like a real middleware would (token, then a data call) and logs every answer as a JSON
/// line. It asks for a new token every time on purpose: so a revoked secret shows up in its log at once.
async fn run_middleware(config: Config, log: PathBuf) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a plain HTTP client builds");
    let mut tick = tokio::time::interval(MIDDLEWARE_EVERY);
    loop {
        tick.tick().await;
        let mut lines = Vec::new();
        for integration in &config.integrations {
            let Some(cred) = config.credential(&integration.credential) else {
                continue;
            };
            if cred.provider != Provider::Sfmc {
                continue;
            }
            if let Some(line) = middleware_call(&http, &config, integration, cred).await {
                lines.push(line);
            }
        }
        if let Err(e) = append(&log, &lines) {
            tracing::warn!("demo middleware cannot write its log: {e}");
        }
    }
}

async fn middleware_call(
    http: &reqwest::Client,
    config: &Config,
    integration: &config::Integration,
    cred: &config::Credential,
) -> Option<String> {
    let secret = cred
        .client_secret
        .resolve(config.settings.secret_command_timeout)
        .await
        .ok()?;
    let token_url = cred.token_endpoint();
    let mut body = serde_json::json!({
        "grant_type": "client_credentials",
        "client_id": cred.client_id,
        "client_secret": secret.expose_secret(),
    });
    if let Some(mid) = &integration.account_id {
        body["account_id"] = mid.clone().into();
    }
    let line = |method: &str, url: &str, status: u16, error: Option<String>| {
        serde_json::json!({
            "time": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "integration": integration.name,
            "client_id": cred.client_id,
            "method": method,
            "url": url,
            "status": status,
            "error": error,
        })
        .to_string()
    };
    let answer = http.post(token_url.clone()).json(&body).send().await.ok()?;
    let status = answer.status().as_u16();
    let value: serde_json::Value = answer.json().await.unwrap_or_default();
    if status != 200 {
        let error = value["error"]
            .as_str()
            .or(value["message"].as_str())
            .map(str::to_string);
        return Some(line("POST", token_url.as_str(), status, error));
    }
    let token = value["access_token"].as_str()?;
    let rest = value["rest_instance_url"].as_str()?;
    // Writers post rows; readers read the check path.
    let (method, url) = if integration
        .scopes
        .iter()
        .any(|s| s == "data_extensions_write")
    {
        (
            "POST",
            format!("{rest}hub/v1/dataevents/key:{}/rowset", integration.name),
        )
    } else {
        ("GET", format!("{rest}{}", integration.check_path))
    };
    let request = match method {
        "POST" => http
            .post(&url)
            .json(&serde_json::json!([{"keys": {"id": 1}, "values": {"ok": true}}])),
        _ => http.get(&url),
    };
    let answer = request.bearer_auth(token).send().await.ok()?;
    let status = answer.status().as_u16();
    let value: serde_json::Value = answer.json().await.unwrap_or_default();
    let error = (status >= 400)
        .then(|| {
            value["message"]
                .as_str()
                .or(value["error"].as_str())
                .map(str::to_string)
        })
        .flatten();
    Some(line(method, &url, status, error))
}

fn append(path: &Path, lines: &[String]) -> std::io::Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut text = lines.join("\n");
    text.push('\n');
    file.write_all(text.as_bytes())
}
