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

/// How many daily log files are kept (older ones are deleted by the appender).
pub const LOG_FILES_KEPT: usize = 7;

/// Lines waiting for the log writer thread; beyond it lines are dropped (never the caller blocked).
const LOG_QUEUE_LINES: usize = 16_384;

/// Start logging to `authwatch.YYYY-MM-DD.log` in the state directory, a new file each day (UTC) and the last
/// [`LOG_FILES_KEPT`] kept: no logrotate needed. Returns the guard that flushes on drop and today's path (shown
/// in the console's help). Level from `AUTHWATCH_LOG` (default `info`).
pub fn init() -> Option<(WorkerGuard, PathBuf)> {
    init_in(&state_dir()?)
}

/// [`init`] into `dir`: the demo logs into its own temporary directory, touching nothing else.
pub fn init_in(dir: &std::path::Path) -> Option<(WorkerGuard, PathBuf)> {
    use std::os::unix::fs::PermissionsExt;
    let dir = dir.to_path_buf();
    std::fs::create_dir_all(&dir).ok()?;
    // The appender creates each day's file itself: a private directory keeps them private.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).ok()?;
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("authwatch")
        .filename_suffix("log")
        .max_log_files(LOG_FILES_KEPT)
        .build(&dir)
        .ok()?;
    let path = dir.join(format!(
        "authwatch.{}.log",
        chrono::Utc::now().format("%Y-%m-%d")
    ));
    // The default queue holds 128,000 lines, set up front: 4 MB touched (1.7 ms) before the first frame. A
    // burst of one line per integration at 10,000 still fits this one while the writer drains it.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .finish(appender);
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
