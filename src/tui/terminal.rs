//! Terminal setup and teardown. Restoring is idempotent and happens on normal exit, on error (Drop), and on
//! panic (a hook that restores, then chains to the previous hook).

use crossterm::cursor::{Hide, Show};
use crossterm::event::DisableMouseCapture;
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use std::io::{self, Write};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

/// True while the terminal is in raw mode + alternate screen because of us.
static ACTIVE: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();

/// Put the terminal back. Safe to call any number of times, from any thread, after any failure.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let mut out = io::stdout();
        // Errors are ignored on purpose: the terminal may already be gone (SSH dropped).
        let _ = execute!(out, LeaveAlternateScreen, Show);
        let _ = disable_raw_mode();
        let _ = out.flush();
    }
}

fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if process_ends(std::thread::current().name(), ACTIVE.load(Ordering::SeqCst)) {
                restore();
                previous(info);
            } else {
                // A background task panicked and is caught (supervised, or by tokio): the console keeps drawing,
                // so the terminal stays as it is and the report goes to the log, not over the screen.
                tracing::error!("panic in a background task: {info}");
            }
        }));
    });
}

/// Does this panic end the console? The console runs on the main thread (`block_on`); panics elsewhere are on
/// runtime workers, where they are caught and the console goes on. Outside the console (no terminal taken)
/// every panic reports the usual way.
fn process_ends(thread: Option<&str>, terminal_taken: bool) -> bool {
    !terminal_taken || thread == Some("main")
}

/// Owns the terminal mode; restores it when dropped.
pub struct TerminalGuard(());

impl TerminalGuard {
    pub fn enter() -> io::Result<Self> {
        install_panic_hook();
        enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        // From here on, Drop restores even if the next step fails.
        let guard = TerminalGuard(());
        execute!(
            io::stdout(),
            EnterAlternateScreen,
            DisableMouseCapture,
            Hide
        )?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_panic_of_the_console_thread_restores_the_terminal() {
        assert!(super::process_ends(Some("main"), true));
        assert!(!super::process_ends(Some("tokio-runtime-worker"), true));
        assert!(!super::process_ends(None, true));
        assert!(super::process_ends(Some("tokio-runtime-worker"), false));
    }
}
