//! Logs go to a file under the state directory, never to the console's terminal.

use std::path::PathBuf;
use tracing_appender::non_blocking::WorkerGuard;

/// `$XDG_STATE_HOME/authwatch`, else `~/.local/state/authwatch`.
pub fn state_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(base.join("authwatch"))
}

/// Start logging to `authwatch.log` in the state directory. Returns the guard that flushes on drop and the
/// path (shown in the console's help). Level from `AUTHWATCH_LOG` (default `info`).
pub fn init() -> Option<(WorkerGuard, PathBuf)> {
    let dir = state_dir()?;
    std::fs::create_dir_all(&dir).ok()?;
    let path = dir.join("authwatch.log");
    // Create it private before the appender opens it for appending.
    {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .ok()?;
    }
    let appender = tracing_appender::rolling::never(&dir, "authwatch.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = tracing_subscriber::EnvFilter::try_from_env("AUTHWATCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init()
        .ok()?;
    Some((guard, path))
}
