//! The console: a live terminal UI over an engine handle.
//!
//! - [`App`] holds the state; keys and snapshots update it ([`App::handle_key`], [`App::apply_snapshot`]).
//! - [`render`] draws it, purely, for a given `now` (snapshot tests pass a fixed time).
//! - [`keymap::BINDINGS`] is the one action registry behind the key handler, the help overlay and the footer.
//! - [`run`] is the thin async loop: it draws only when something changed, wraps every frame in synchronized
//!   output, and exits on `q`, Ctrl-C, SIGTERM, SIGHUP, SIGINT, or when the terminal goes away.

pub mod app;
#[doc(hidden)]
// Test scaffolding: compiled for unit tests, and for tests/benches through the `test-support` feature that the
// crate's dev-dependency on itself turns on. Never in a release build.
#[cfg(any(test, feature = "test-support"))]
pub mod fixture;
pub mod keymap;
pub mod nocolor;
mod terminal;
pub mod text;
pub mod theme;
mod views;

pub use app::{App, AppOptions, Pane, SortKey, View};
use views::render_clock;
pub use views::{MIN_HEIGHT, MIN_WIDTH, render, wizard};

use crate::engine::EngineHandle;
use chrono::Utc;
use color_eyre::eyre::WrapErr;
use crossterm::event::Event;
use crossterm::terminal::{BeginSynchronizedUpdate, EndSynchronizedUpdate};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use std::io::{BufWriter, Stdout, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

pub struct TuiOptions {
    pub read_only: bool,
    /// `--wall`: the wall screen (implies read-only).
    pub wall: bool,
    /// `[keys]` of the configuration.
    pub keys: crate::config::KeyBindings,
    /// false for --no-color or NO_COLOR set.
    pub color: bool,
    /// ASCII borders and symbols.
    pub ascii: bool,
    /// Clock tick, default 1s.
    pub tick: Duration,
    /// Shown in help.
    pub log_path: Option<PathBuf>,
    /// Fired right after the first frame is drawn (the engine waits for it before any network I/O).
    pub first_frame: Option<tokio::sync::oneshot::Sender<()>>,
    /// Offer the rotation wizard (`r`): its steps go to the engine's rotation driver (a local engine, or the
    /// agent of a `--connect` console with an operator token).
    pub rotation: Option<RotationAccess>,
}

/// How the console rotates.
#[derive(Debug, Clone, Copy, Default)]
pub struct RotationAccess {
    /// The demo's simulator stands in for Setup ("generate/activate in simulator").
    pub demo: bool,
}

impl Default for TuiOptions {
    fn default() -> Self {
        Self {
            read_only: false,
            wall: false,
            keys: Default::default(),
            color: true,
            ascii: false,
            tick: Duration::from_secs(1),
            log_path: None,
            first_frame: None,
            rotation: None,
        }
    }
}

/// A buffered stdout whose `flush` can be held back, so a whole frame (synchronized-update markers included)
/// leaves in one write even though ratatui flushes inside `draw`.
struct FrameWriter {
    out: BufWriter<Stdout>,
    /// `--no-color`: colour sequences (resets included) are removed before they reach the terminal.
    strip: Option<nocolor::NoColor<Vec<u8>>>,
    hold: Arc<AtomicBool>,
    /// Set at the first failed write: the terminal went away (SSH dropped, pty closed).
    gone: Arc<AtomicBool>,
}

impl FrameWriter {
    /// After the terminal is gone, writes are discarded instead of failing, so that nothing on the way out
    /// (ratatui's Drop restoring the cursor, the terminal guard) reports an error to a stderr that is gone too.
    fn note<T>(&self, r: std::io::Result<T>, discarded: T) -> std::io::Result<T> {
        match r {
            Err(e) if is_terminal_gone(&e) => {
                tracing::info!("the terminal went away: {e}");
                self.gone.store(true, Ordering::Relaxed);
                Ok(discarded)
            }
            other => other,
        }
    }
}

/// The errors a vanished terminal gives: EIO on a closed pty, EPIPE/broken pipe, ENXIO.
fn is_terminal_gone(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::UnexpectedEof
    ) || matches!(e.raw_os_error(), Some(5) | Some(6)) // EIO, ENXIO
}

impl Write for FrameWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.gone.load(Ordering::Relaxed) {
            return Ok(buf.len());
        }
        let r = match self.strip.as_mut() {
            Some(strip) => strip.write_all(buf).and_then(|()| {
                let plain = std::mem::take(strip.get_mut());
                self.out.write_all(&plain).map(|()| buf.len())
            }),
            None => self.out.write(buf),
        };
        self.note(r, buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.gone.load(Ordering::Relaxed) {
            // What is still buffered is dropped with the writer (BufWriter ignores errors when dropped).
            return Ok(());
        }
        if self.hold.load(Ordering::Relaxed) {
            Ok(())
        } else {
            let r = self.out.flush();
            self.note(r, ())
        }
    }
}

type Term = Terminal<CrosstermBackend<FrameWriter>>;

/// Clear the screen and make the next frame redraw everything. Not `Terminal::clear`, which first asks the
/// terminal for the cursor position and fails when no answer comes in time (a slow SSH link, a bare pty).
fn clear_screen(term: &mut Term) -> std::io::Result<()> {
    let size = term.size()?;
    term.resize(ratatui::layout::Rect::new(0, 0, size.width, size.height))
}

/// The screen as last drawn and until when its ages read the same, so a clock tick can redraw the header alone
/// (`cargo bench --bench render` measures both ways).
#[derive(Default)]
pub struct LastFrame {
    /// What the terminal shows, header included.
    buffer: ratatui::buffer::Buffer,
    /// Until then, only the clock moves on screen. Capped at the next minute, so text that changes with the
    /// minute or the day without going through an age is redrawn too.
    still_until: Option<chrono::DateTime<Utc>>,
    /// Header rows were written past ratatui's buffers since the last whole frame.
    header_written: bool,
}

impl LastFrame {
    /// Until when the screen last drawn reads the same but for the clock.
    pub fn still_until(&self) -> Option<chrono::DateTime<Utc>> {
        self.still_until
    }
}

/// Draw one frame inside a synchronized update (DEC 2026) so terminals never show half a frame; one flush.
fn draw(
    term: &mut Term,
    hold: &AtomicBool,
    app: &mut App,
    last: &mut LastFrame,
    clock_only: bool,
) -> std::io::Result<()> {
    let repaint = app.take_repaint();
    if repaint {
        clear_screen(term)?;
        *last = LastFrame::default();
    }
    let size = term.size()?;
    app.resize(size.width, size.height);
    hold.store(true, Ordering::Relaxed);
    crossterm::queue!(term.backend_mut(), BeginSynchronizedUpdate)?;
    let drawn = draw_frame(term, app, last, Utc::now(), clock_only);
    let end = crossterm::queue!(term.backend_mut(), EndSynchronizedUpdate);
    hold.store(false, Ordering::Relaxed);
    let flushed = term.backend_mut().flush();
    drawn.and(end).and(flushed)
}

/// Draw the screen at `now`. `clock_only`: nothing but the clock moved since the last frame, so when that
/// frame still reads the same (no age on it changed, the same size) only the header row is drawn again, and
/// only its changed cells are written. A resize arrives as an event, and an event draws the whole screen.
pub fn draw_frame<B: ratatui::backend::Backend>(
    term: &mut Terminal<B>,
    app: &App,
    last: &mut LastFrame,
    now: chrono::DateTime<Utc>,
    clock_only: bool,
) -> Result<(), B::Error> {
    let area = last.buffer.area;
    if clock_only
        && last.still_until.is_some_and(|until| now < until)
        && term.get_frame().area() == area
        && let Some(header) = render_clock(area, app, now)
    {
        // Past ratatui's own buffers (whose compare-all-cells is most of a frame's cost): compare one row here.
        let row = header.area;
        let updates: Vec<(u16, u16, &ratatui::buffer::Cell)> = (row.left()..row.right())
            .filter_map(|x| {
                let new = header.cell((x, row.y))?;
                (last.buffer.cell((x, row.y)) != Some(new)).then_some((x, row.y, new))
            })
            .collect();
        term.backend_mut().draw(updates.iter().copied())?;
        for &(x, y, new) in &updates {
            if let Some(old) = last.buffer.cell_mut((x, y)) {
                old.clone_from(new);
            }
        }
        last.header_written |= !updates.is_empty();
        return Ok(());
    }
    if std::mem::take(&mut last.header_written) {
        // ratatui's previous frame still holds an older header: make it what the terminal shows (rewriting at
        // most those few cells), so the next compare finds every cell that really changed.
        term.current_buffer_mut().clone_from(&last.buffer);
        term.apply_buffer()?;
    }
    let (drawn, age_change) = crate::duration::track_age_changes(|| {
        term.draw(|f| render(f, app, now))
            .map(|done| last.buffer.clone_from(done.buffer))
    });
    let next_minute = chrono::DateTime::<Utc>::from_timestamp((now.timestamp() / 60 + 1) * 60, 0);
    last.still_until = match (age_change, next_minute) {
        (Some(d), Some(m)) => Some((now + d).min(m)),
        (None, m) => m,
        (Some(_), None) => None,
    };
    drawn
}

/// Run the console until the user quits, a signal arrives or the terminal goes away.
/// The console was started without a terminal (e.g. `ssh` without `-t`, or input from /dev/null).
#[derive(Debug, thiserror::Error)]
#[error("authwatch needs a terminal (use `ssh -t`, or `authwatch check` for one sweep)")]
pub struct NeedsTerminal;

/// Returns the exit code: 0 when the user quit (or the terminal went away), 128 + the signal's number after
/// SIGINT, SIGTERM or SIGHUP (130, 143, 129), as shells report a command a signal ended.
pub async fn run(handle: EngineHandle, mut opts: TuiOptions) -> color_eyre::Result<i32> {
    let mut snapshots = handle.watch();
    let first = snapshots.borrow_and_update().clone();
    let mut app = App::new(
        first,
        AppOptions {
            read_only: opts.read_only,
            color: opts.color,
            ascii: opts.ascii,
            log_path: opts.log_path.clone(),
            wall: opts.wall,
            keys: opts.keys.clone(),
        },
    )
    .with_handle(handle.clone());
    // Rotation requests are only sent on keys, so no network I/O happens before the first frame.
    let mut rotation_updates = match opts.rotation.take() {
        Some(access) if !opts.read_only && !opts.wall => {
            let (tx, rx) = handle.rotation_link(crate::rotation::session::Actor::console());
            app = app.with_rotation(tx, access.demo);
            Some(rx)
        }
        _ => None,
    };

    {
        use std::io::IsTerminal;
        if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
            return Err(NeedsTerminal.into());
        }
    }
    let mut sigterm = signal(SignalKind::terminate()).wrap_err("installing SIGTERM handler")?;
    let mut sighup = signal(SignalKind::hangup()).wrap_err("installing SIGHUP handler")?;
    let mut sigint = signal(SignalKind::interrupt()).wrap_err("installing SIGINT handler")?;

    let _guard = terminal::TerminalGuard::enter().wrap_err("entering raw mode")?;
    let hold = Arc::new(AtomicBool::new(false));
    let gone = Arc::new(AtomicBool::new(false));
    let backend = CrosstermBackend::new(FrameWriter {
        out: BufWriter::with_capacity(64 * 1024, std::io::stdout()),
        strip: (!opts.color).then(|| nocolor::NoColor::new(Vec::new())),
        hold: hold.clone(),
        gone: gone.clone(),
    });
    let mut term = Terminal::new(backend).wrap_err("opening the terminal")?;
    clear_screen(&mut term)?;

    // First frame right away (placeholders), then let the engine start probing.
    app.tick(Utc::now());
    let mut last = LastFrame::default();
    draw(&mut term, &hold, &mut app, &mut last, false)?;
    if let Some(tx) = opts.first_frame.take() {
        let _ = tx.send(());
    }

    let mut events = spawn_input_reader();
    let tick = opts.tick.max(Duration::from_millis(100));
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    ticker.tick().await; // the first tick completes immediately
    let mut engine_alive = true;

    let result: color_eyre::Result<i32> = loop {
        let mut dirty = false;
        // Set by the clock tick: the time on screen moved (and, on the wall, maybe the cycle).
        let mut ticked = false;
        // Sleep until the footer message expires (if any), else effectively forever.
        let msg_wait = app
            .message_deadline()
            .and_then(|d| (d - Utc::now()).to_std().ok())
            .unwrap_or(Duration::from_secs(3600));

        tokio::select! {
            ev = events.recv() => match ev {
                // An I/O error on the terminal: the session is gone (e.g. SSH dropped). Leave.
                None | Some(Err(_)) => break Ok(0),
                Some(Ok(ev)) => dirty |= handle_event(&mut app, ev),
            },
            changed = snapshots.changed(), if engine_alive => match changed {
                Ok(()) => {
                    app.apply_snapshot(snapshots.borrow_and_update().clone());
                    dirty = true;
                }
                Err(_) => {
                    engine_alive = false;
                    app.engine_gone();
                    dirty = true;
                }
            },
            _ = ticker.tick() => {
                // The clock and the ages are on screen. Also the moment to notice a hung-up terminal, which
                // neither a read error nor SIGHUP reliably reports.
                if terminal_hung_up() {
                    break Ok(0);
                }
                ticked = app.tick(Utc::now());
            }
            update = next_rotation_update(&mut rotation_updates) => match update {
                Some(u) => dirty |= app.apply_rotation_update(u, Utc::now()),
                None => rotation_updates = None,
            },
            _ = tokio::time::sleep(msg_wait) => dirty |= app.expire_message(Utc::now()),
            _ = sigterm.recv() => break Ok(128 + libc::SIGTERM),
            _ = sighup.recv() => break Ok(128 + libc::SIGHUP),
            _ = sigint.recv() => break Ok(128 + libc::SIGINT),
        }

        // Coalesce bursts: take every key already waiting and only the newest snapshot, then draw once.
        for _ in 0..256 {
            match events.try_recv() {
                Ok(Ok(ev)) => dirty |= handle_event(&mut app, ev),
                Ok(Err(_)) | Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                    app.perform(keymap::Action::Quit, Utc::now());
                    break;
                }
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
            }
        }
        if engine_alive && snapshots.has_changed().unwrap_or(false) {
            app.apply_snapshot(snapshots.borrow_and_update().clone());
            dirty = true;
        }
        if app.should_quit() {
            break Ok(0);
        }
        // The wall's tick says whether its screen changed; the console's tick moves its clock.
        let clock_only = !dirty && ticked && !app.is_wall();
        dirty |= ticked;
        if dirty && let Err(e) = draw(&mut term, &hold, &mut app, &mut last, clock_only) {
            break Err(e).wrap_err("drawing to the terminal");
        }
        if gone.load(Ordering::Relaxed) {
            break Ok(0);
        }
    };
    drop(term);
    terminal::restore();
    result
}

/// The rotation task's next answer; pending forever when there is no rotation task.
async fn next_rotation_update(
    rx: &mut Option<tokio::sync::mpsc::UnboundedReceiver<crate::rotation::session::Update>>,
) -> Option<crate::rotation::session::Update> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Keys and resizes, read on a thread of their own. crossterm 0.29 loops forever inside its reader when the
/// terminal hangs up (it retries a read that returns EOF or EIO), so the event loop must never wait in it:
/// here the loop waits on a channel, and a spinning reader dies with the process once the loop has noticed.
fn spawn_input_reader() -> tokio::sync::mpsc::Receiver<std::io::Result<Event>> {
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    let spawned = std::thread::Builder::new()
        .name("authwatch-input".into())
        .spawn(move || {
            loop {
                let event = crossterm::event::read();
                let failed = event.is_err();
                if tx.blocking_send(event).is_err() || failed {
                    break;
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the key reader: {e}");
    }
    rx
}

/// The terminal is gone when stdin reports a hang-up (the pty's other side closed: a dropped SSH session).
fn terminal_hung_up() -> bool {
    let mut fds = libc::pollfd {
        fd: libc::STDIN_FILENO,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout; poll only writes `revents`.
    let n = unsafe { libc::poll(&mut fds, 1, 0) };
    n > 0 && fds.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
}

fn handle_event(app: &mut App, ev: Event) -> bool {
    match ev {
        Event::Key(key) => app.handle_key(key, Utc::now()),
        Event::Resize(w, h) => {
            app.resize(w, h);
            true
        }
        Event::FocusGained | Event::FocusLost | Event::Mouse(_) | Event::Paste(_) => false,
    }
}

#[cfg(test)]
mod tests;
