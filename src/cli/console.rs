//! The console, local (over an engine probing from this machine) or remote (`--connect`, over an agent).

use super::{ConsoleArgs, EXIT_USAGE};
use crate::agent::client;
use crate::config::{Config, Role};
use crate::engine::{self, Command};
use crate::{rotation, sim, store, tui};
use color_eyre::eyre::{Result, WrapErr};
use std::path::{Path, PathBuf};
use url::Url;

/// The console over a local engine probing `config` (history in `db`; `sim` when the demo's simulator runs).
pub async fn local(
    mut config: Config,
    args: &ConsoleArgs,
    db: Option<&Path>,
    log_path: Option<PathBuf>,
    sim: Option<sim::SimAdmin>,
) -> Result<i32> {
    // Opening runs migrations: SQLite work, off the async workers.
    let path = db.map(Path::to_path_buf);
    let opened =
        tokio::task::spawn_blocking(move || path.map(|p| store::Store::open(&p)).transpose());
    let store = match opened.await? {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    // Secrets rotated by authwatch expire when their rotation says, not when the file says.
    if let Some(store) = &store {
        rotation::apply_effective_expiries(&mut config, store);
    }
    // One config for the engine and the rotation driver: at 10,000 integrations a copy is a millisecond and
    // a megabyte before the first frame.
    let config = std::sync::Arc::new(config);
    let rotation = db.map(|db| rotation::session::RotationSetup {
        config: config.clone(),
        db: db.to_path_buf(),
        sim,
    });
    let access = rotation.as_ref().map(|r| tui::RotationAccess {
        demo: r.sim.is_some(),
    });
    let (gate_tx, gate_rx) = tokio::sync::oneshot::channel();
    let retention = config.settings.retention;
    let keys = config.keys.clone();
    let running = engine::spawn(
        config,
        engine::EngineOptions {
            start_gate: Some(gate_rx),
            store,
            retention,
            rotation: rotation.clone(),
        },
    )
    .wrap_err("cannot start the probe engine")?;
    let options = tui::TuiOptions {
        first_frame: Some(gate_tx),
        keys,
        rotation: access,
        ..options(args, log_path)
    };
    // A rotation step interrupted by a crash is found and set by the engine's rotation driver as it starts.
    let result = tui::run(running.handle.clone(), options).await;
    // Quitting (or a signal) during a rotation step: the step finishes and journals its result first.
    if rotation::safety::steps_in_flight() > 0 {
        eprintln!(
            "finishing the running rotation step first (up to {} s)",
            rotation::safety::SIGNAL_GRACE.as_secs()
        );
        rotation::safety::wait_for_steps(rotation::safety::SIGNAL_GRACE).await;
    }
    let _ = running.handle.send(Command::Shutdown).await;
    let _ = running.task.await;
    result
}

/// `authwatch --connect URL [--token-file PATH]`: the console on an agent's state. Exit code 3 when the agent
/// cannot be reached or refuses the token at start (later losses are shown as stale data and retried).
pub async fn remote(
    urls: Vec<Url>,
    token_file: Option<&Path>,
    ca_file: Option<&Path>,
    args: &ConsoleArgs,
    log_path: Option<PathBuf>,
) -> Result<i32> {
    let token_file = token_file.map(Path::to_path_buf);
    let read = tokio::task::spawn_blocking(move || {
        token_file
            .as_deref()
            .map(client::read_token_file)
            .transpose()
    });
    let token = match read.await? {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    let mut conns = Vec::new();
    for url in &urls {
        if token.is_some() && url.scheme() == "http" && !crate::host::is_loopback(url) {
            eprintln!(
                "warning: sending the token over plain http to {}; configure tls_cert/tls_key on the agent and use https",
                url.host_str().unwrap_or("?")
            );
        }
        match client::connect_with(url.clone(), token.clone(), ca_file).await {
            Ok(c) => conns.push(c),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(EXIT_USAGE);
            }
        }
    }
    // Several agents: one console over their merged state.
    let conn = if conns.len() == 1 {
        conns.remove(0)
    } else {
        crate::agent::merge::combine(crate::agent::merge::labels(&urls), conns)
    };
    let base = options(args, log_path);
    let options = tui::TuiOptions {
        // A viewer token can only read: the console hides the actions instead of failing them.
        read_only: base.read_only || conn.role == Role::Viewer,
        // An operator token rotates through the agent (secrets stay on its host); merged agents do not rotate.
        rotation: (conn.role != Role::Viewer && urls.len() == 1)
            .then_some(tui::RotationAccess { demo: false }),
        ..base
    };
    let result = tui::run(conn.handle.clone(), options).await;
    let _ = conn.handle.send(Command::Shutdown).await;
    conn.task.abort();
    result
}

/// The console options the flags ask for (no first-frame gate, no rotation).
fn options(args: &ConsoleArgs, log_path: Option<PathBuf>) -> tui::TuiOptions {
    tui::TuiOptions {
        read_only: args.read_only || args.wall,
        wall: args.wall,
        keys: Default::default(),
        color: !args.no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        ascii: args.ascii,
        tick: args
            .tick
            .map_or(std::time::Duration::from_secs(1), |t| t.as_std()),
        log_path,
        first_frame: None,
        rotation: None,
    }
}
