//! `authwatch agent`: the engine without a terminal, behind an HTTP API (see [`api`]) that consoles
//! (`authwatch --connect URL`), Prometheus and middleware talk to; direct notifications go out from here too.
//!
//! - One prober for the whole team: consoles follow the agent's state instead of probing SFMC themselves.
//! - Access with bearer tokens (`[[agent.token]]`, role viewer or operator); listening beyond loopback without
//!   tokens is refused at start-up.
//! - SIGTERM/SIGINT stop cleanly (history written, pending notifications given a moment); SIGHUP reloads the
//!   configuration, and a bad new configuration is reported and the old one kept.

pub mod api;
pub mod auth;
pub mod client;
pub mod guard;
pub mod merge;
pub mod readiness;
pub mod stream;
pub mod systemd;

use crate::config::{self, Config, DEFAULT_AGENT_LISTEN};
use crate::engine::{self, Command, EngineHandle};
use crate::ingest::Matcher;
use crate::metrics::{self, Metrics};
use crate::notify::{self, Notifier};
use crate::store::Store;
use api::{AppState, Current};
use auth::Tokens;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a stopping agent waits for open requests and pending notifications.
const STOP_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Default, Clone)]
pub struct AgentOptions {
    /// Overrides `[agent] listen`.
    pub listen: Option<SocketAddr>,
    /// History database (None: in memory only; notifications then are not recorded either).
    pub db: Option<PathBuf>,
    /// Connection limit and timeouts (defaults in [`guard`]).
    pub limits: guard::Limits,
}

/// A running agent: its address, the engine, and what reload and stop need.
pub struct RunningAgent {
    pub addr: SocketAddr,
    pub tls: bool,
    pub engine: EngineHandle,
    state: AppState,
    notifier: Notifier,
    listen: SocketAddr,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    engine_task: JoinHandle<()>,
}

impl RunningAgent {
    /// Resolve tokens, bind, start the engine, the notifier and the HTTP server.
    pub async fn start(config: Config, options: AgentOptions) -> Result<RunningAgent, String> {
        let listen = match options.listen.or(config.agent.listen) {
            Some(a) => a,
            None => DEFAULT_AGENT_LISTEN.parse().expect("valid default"),
        };
        let tokens = Tokens::resolve(&config.agent.tokens, config.settings.secret_command_timeout)
            .await
            .map_err(|e| format!("cannot resolve agent tokens: {e}"))?;
        auth::check_exposure(listen, &tokens)?;
        let tls_config = match &config.agent.tls {
            Some(files) => Some(crate::tls::server_config(&files.cert, &files.key)?),
            None => None,
        };
        let tcp = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let addr = tcp.local_addr().map_err(|e| e.to_string())?;

        // Opening runs migrations: SQLite work, off the async workers.
        let store = match options.db.clone() {
            Some(path) => Some(
                tokio::task::spawn_blocking(move || Store::open(&path))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?,
            ),
            None => None,
        };
        // An interrupted rotation step (a crash mid-promote) is found and set by the engine's rotation driver
        // as it starts.
        let metrics = Arc::new(Metrics::new());
        let notifier = Notifier::spawn(notify::NotifierOptions {
            receivers: config.notify.clone(),
            maintenance: config.maintenance.clone(),
            db: options.db.clone(),
            secret_timeout: config.settings.secret_command_timeout,
            metrics: Some(metrics.clone()),
        });
        let retention = config.settings.retention;
        let matcher = Arc::new(Matcher::from_config(&config));
        let config = Arc::new(config);
        let started_at = chrono::Utc::now();
        let running = engine::spawn(
            (*config).clone(),
            engine::EngineOptions {
                start_gate: None,
                store,
                retention,
                // The API's rotation steps run on the engine's driver (the history database holds their state).
                rotation: options
                    .db
                    .clone()
                    .map(|db| crate::rotation::session::RotationSetup {
                        config: config.clone(),
                        db,
                        sim: None,
                    }),
            },
        )
        .map_err(|e| format!("cannot start the probe engine: {e}"))?;
        let handle = running.handle.clone();
        notifier.follow(handle.watch());
        metrics::follow(metrics.clone(), handle.watch());
        let hub = stream::Hub::spawn(handle.watch());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let state = AppState {
            engine: handle.clone(),
            current: Arc::new(RwLock::new(Current {
                config,
                tokens: Arc::new(tokens),
                matcher,
            })),
            metrics,
            hub,
            shutdown: shutdown_rx.clone(),
            started_at,
            db_configured: options.db.is_some(),
            secrets_safe: tls_config.is_some() || listen.ip().is_loopback(),
        };
        let app = api::router(state.clone());
        let mut stop = shutdown_rx;
        let graceful = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        let tls = tls_config.is_some();
        let server = match tls_config {
            None => tokio::spawn(async move {
                if let Err(e) = axum::serve(guard::Guarded::new(tcp, options.limits), app)
                    .with_graceful_shutdown(graceful)
                    .await
                {
                    tracing::error!("agent API stopped: {e}");
                }
            }),
            Some(cfg) => {
                let listener = crate::tls::TlsListener::new(tcp, cfg).map_err(|e| e.to_string())?;
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(guard::Guarded::new(listener, options.limits), app)
                        .with_graceful_shutdown(graceful)
                        .await
                    {
                        tracing::error!("agent API stopped: {e}");
                    }
                })
            }
        };
        Ok(RunningAgent {
            addr,
            tls,
            engine: handle,
            state,
            notifier,
            listen,
            shutdown,
            server,
            engine_task: running.task,
        })
    }

    /// The base URL clients use.
    pub fn url(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.addr
        )
    }

    /// Replace the configuration: tokens, notify receivers, maintenance windows and the engine's config.
    /// On any error nothing changes. (The listen address and TLS files take effect at the next start.)
    pub async fn reload(&self, config: Config) -> Result<(), String> {
        let tokens = Tokens::resolve(&config.agent.tokens, config.settings.secret_command_timeout)
            .await
            .map_err(|e| format!("cannot resolve agent tokens: {e}"))?;
        auth::check_exposure(self.listen, &tokens)?;
        self.notifier
            .reload(config.notify.clone(), config.maintenance.clone());
        {
            let mut cur = self.state.current.write().expect("agent state lock");
            cur.tokens = Arc::new(tokens);
            cur.matcher = Arc::new(Matcher::from_config(&config));
            cur.config = Arc::new(config.clone());
        }
        self.engine
            .send(Command::Reload(Box::new(config)))
            .await
            .map_err(|e| e.to_string())
    }

    /// systemd: READY=1 once ready (then STATUS= whenever the counts change) and, when systemd asks for a
    /// watchdog, WATCHDOG=1 at half its interval while the engine answers and is live.
    fn supervise(&self) -> Vec<JoinHandle<()>> {
        let mut tasks = Vec::new();
        let state = self.state.clone();
        let mut rx = self.engine.watch();
        tasks.push(tokio::spawn(async move {
            while !state.readiness().ready {
                if rx.changed().await.is_err() {
                    return;
                }
            }
            let snap = rx.borrow_and_update().clone();
            systemd::ready(&snap);
            tracing::info!("ready: {}", systemd::status_line(&snap));
            let mut last = systemd::status_line(&snap);
            while rx.changed().await.is_ok() {
                let line = systemd::status_line(&rx.borrow_and_update());
                if line != last {
                    systemd::notify(&[sd_notify::NotifyState::Status(&line)]);
                    last = line;
                }
            }
        }));
        if let Some(interval) = systemd::watchdog_interval() {
            let state = self.state.clone();
            tasks.push(tokio::spawn(systemd::watchdog(
                self.engine.clone(),
                move || state.readiness().live,
                interval / 2,
                || systemd::notify(&[sd_notify::NotifyState::Watchdog]),
            )));
        }
        tasks
    }

    /// Stop: no new requests, live streams closed, the engine stopped with its history written, pending
    /// notifications given [`STOP_GRACE`].
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = tokio::time::timeout(STOP_GRACE, self.server).await;
        let _ = self.engine.send(Command::Shutdown).await;
        let _ = self.engine_task.await;
        self.notifier.stop(STOP_GRACE).await;
    }
}

/// Why `authwatch agent` could not run.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The configuration or the environment does not allow starting (bad listen address, tokens, TLS files...).
    #[error("{0}")]
    Start(String),
    #[error("cannot install signal handlers: {0}")]
    Signals(#[from] std::io::Error),
}

/// `authwatch agent`: run until SIGTERM/SIGINT; SIGHUP reloads `config_path`. Returns the exit code, 128 + the
/// signal that ended it (143 after SIGTERM, 130 after SIGINT), as shells and systemd's `SuccessExitStatus` read it.
pub async fn run(
    config_path: Option<PathBuf>,
    config: Config,
    options: AgentOptions,
) -> Result<i32, AgentError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let agent = RunningAgent::start(config, options)
        .await
        .map_err(AgentError::Start)?;
    {
        // Not println!: a closed stdout (no journal, `| head`) must not panic the agent.
        use std::io::Write;
        let _ = writeln!(
            std::io::stdout(),
            "authwatch agent listening on {}",
            agent.url()
        );
    }
    tracing::info!("agent listening on {}", agent.url());
    let supervision = agent.supervise();
    let code = loop {
        tokio::select! {
            _ = sigterm.recv() => break 128 + libc::SIGTERM,
            _ = sigint.recv() => break 128 + libc::SIGINT,
            _ = sighup.recv() => {
                let Some(path) = config_path.as_deref() else {
                    eprintln!("SIGHUP: no configuration file to reload");
                    continue;
                };
                systemd::reloading();
                let loaded = config::load(path).map_err(|e| e.to_string());
                let result = match loaded {
                    Ok(c) => {
                        for w in &c.warnings {
                            eprintln!("warning: {w}");
                        }
                        agent.reload(c).await
                    }
                    Err(e) => Err(e),
                };
                // Reloaded or not, the agent goes on serving.
                systemd::ready(&agent.engine.snapshot());
                match result {
                    Ok(()) => {
                        eprintln!("reloaded {}", path.display());
                        tracing::info!("configuration reloaded from {}", path.display());
                    }
                    Err(e) => {
                        eprintln!("reload failed, keeping the running configuration:\n{e}");
                        tracing::error!("reload failed, keeping the running configuration: {e}");
                    }
                }
            }
        }
    };
    eprintln!("stopping");
    systemd::stopping();
    // A rotation step running for the API finishes and journals its result first.
    if crate::rotation::safety::steps_in_flight() > 0 {
        eprintln!(
            "finishing the running rotation step first (up to {} s)",
            crate::rotation::safety::SIGNAL_GRACE.as_secs()
        );
        crate::rotation::safety::wait_for_steps(crate::rotation::safety::SIGNAL_GRACE).await;
    }
    for task in supervision {
        task.abort();
    }
    agent.stop().await;
    Ok(code)
}
