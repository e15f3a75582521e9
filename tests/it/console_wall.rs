//! The wall screen (`--wall`) on a test backend, its cycle driven by `App::tick` with a fixed clock, and
//! `--no-color` checked on the bytes the real crossterm backend writes.

use authwatch::tui::app::WALL_CYCLE_SECS;
use authwatch::tui::fixture::{self, now};
use authwatch::tui::nocolor::{NoColor, has_colour_sequence};
use authwatch::tui::{App, AppOptions, render};
use chrono::Duration;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use std::io::Write;
use std::sync::{Arc, Mutex};

fn wall(color: bool) -> App {
    let mut a = App::new(
        Arc::new(fixture::snapshot()),
        AppOptions {
            color,
            wall: true,
            ..Default::default()
        },
    );
    a.tick(now());
    a
}

fn press(a: &mut App, c: KeyCode) -> bool {
    a.handle_key(KeyEvent::new(c, KeyModifiers::NONE), now())
}

#[test]
fn wall_200x50() {
    let screen = fixture::render_text(&wall(true), 200, 50, now());
    // Words and symbols, not colour alone; since, team and owner of what fails; the strip of 30 days.
    assert!(
        screen.contains("✖ FAIL") && screen.contains("▲ WARN"),
        "{screen}"
    );
    assert!(screen.contains("Not OK:"), "{screen}");
    assert!(screen.contains("Secret expiry: next 30 days"), "{screen}");
    assert!(screen.contains("WALL (read-only)"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn wall_320x90() {
    insta::assert_snapshot!(fixture::render_text(&wall(true), 320, 90, now()));
}

#[test]
fn wall_80x24_still_says_what_fails() {
    let screen = fixture::render_text(&wall(false), 80, 24, now());
    assert!(screen.contains("FAIL"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn wall_has_no_cursor_and_only_quit_works() {
    let mut a = wall(true);
    assert!(a.read_only(), "the wall implies read-only");
    for k in [
        KeyCode::Down,
        KeyCode::Enter,
        KeyCode::Char('p'),
        KeyCode::Char('a'),
        KeyCode::Char('?'),
        KeyCode::Tab,
    ] {
        assert!(!press(&mut a, k), "{k:?} changed the wall");
    }
    let buf = fixture::render_buffer(&a, 200, 50, now());
    // No selected (reversed) row in the list of what is not OK: nothing has a cursor.
    let text = fixture::buffer_text(&buf);
    let names: Vec<String> = a.wall_failing().iter().map(|i| i.name.clone()).collect();
    let mut list_rows = 0;
    for (y, line) in text.lines().enumerate() {
        let left: String = line.chars().take(100).collect();
        if !names.iter().any(|n| left.contains(&format!(" {n} "))) {
            continue;
        }
        list_rows += 1;
        for x in 0..100 {
            assert!(
                !buf[(x, y as u16)]
                    .modifier
                    .contains(ratatui::style::Modifier::REVERSED),
                "row {y} is highlighted: {line}"
            );
        }
    }
    assert!(list_rows >= names.len(), "{text}");
    assert!(press(&mut a, KeyCode::Char('q')));
    assert!(a.should_quit());
}

/// The cycle moves on after WALL_CYCLE_SECS of the clock passed to `tick` (no sleeping), and a tick that
/// changes nothing on screen asks for no redraw.
#[test]
fn wall_cycles_through_the_failing_details_on_ticks() {
    let mut a = wall(true);
    let failing: Vec<String> = a.wall_failing().iter().map(|i| i.name.clone()).collect();
    assert!(failing.len() >= 2, "{failing:?}");
    let shown = |a: &App| a.wall_shown().map(|(i, pos, n)| (i.name.clone(), pos, n));
    assert_eq!(shown(&a), Some((failing[0].clone(), 1, failing.len())));
    let screen = fixture::render_text(&a, 200, 50, now());
    assert!(
        screen.contains(&format!("Integration {}", failing[0])),
        "{screen}"
    );

    // Same minute, before the cycle is due: nothing to redraw.
    assert!(!a.tick(now() + Duration::seconds(WALL_CYCLE_SECS - 1)));
    assert_eq!(shown(&a).unwrap().0, failing[0]);
    // Due: the next one, and a redraw.
    let t = now() + Duration::seconds(WALL_CYCLE_SECS);
    assert!(a.tick(t));
    assert_eq!(shown(&a), Some((failing[1].clone(), 2, failing.len())));
    let screen = fixture::render_text(&a, 200, 50, t);
    assert!(
        screen.contains(&format!("Integration {}", failing[1])),
        "{screen}"
    );
    // All the way round, back to the first.
    let mut t = t;
    for _ in 1..failing.len() {
        t += Duration::seconds(WALL_CYCLE_SECS);
        a.tick(t);
    }
    assert_eq!(shown(&a).unwrap().0, failing[0]);
    // The minute turning is a redraw (ages and the clock are shown to the minute).
    let next_minute = now() + Duration::seconds(60 * 10);
    let mut b = wall(true);
    assert!(!b.tick(now() + Duration::seconds(1)));
    assert!(b.tick(next_minute));

    // The console (not the wall) redraws on every tick: its clock shows seconds.
    let mut c = App::new(Arc::new(fixture::snapshot()), AppOptions::default());
    assert!(c.tick(now()) && c.tick(now()));
}

#[test]
fn wall_without_colour_reads_by_words_and_symbols() {
    let a = wall(false);
    let buf = fixture::render_buffer(&a, 200, 50, now());
    for cell in buf.content() {
        assert_eq!(cell.fg, ratatui::style::Color::Reset, "{:?}", cell.symbol());
        assert_eq!(cell.bg, ratatui::style::Color::Reset, "{:?}", cell.symbol());
    }
    let text = fixture::buffer_text(&buf);
    assert!(text.contains("✖ FAIL") && text.contains("✔ OK"), "{text}");
}

/// A writer whose bytes the test can read after the backend took it.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Bytes the real crossterm backend writes for one frame of `app` (through the `--no-color` writer or not).
fn frame_bytes(app: &App, w: u16, h: u16, strip: bool) -> Vec<u8> {
    let out = Shared::default();
    let opts = || ratatui::TerminalOptions {
        viewport: ratatui::Viewport::Fixed(ratatui::layout::Rect::new(0, 0, w, h)),
    };
    if strip {
        let mut term =
            Terminal::with_options(CrosstermBackend::new(NoColor::new(out.clone())), opts())
                .unwrap();
        term.draw(|f| render(f, app, now())).unwrap();
    } else {
        let mut term = Terminal::with_options(CrosstermBackend::new(out.clone()), opts()).unwrap();
        term.draw(|f| render(f, app, now())).unwrap();
    }
    out.0.lock().unwrap().clone()
}

/// `--no-color`: not one colour sequence in what reaches the terminal, not even the resets ratatui's backend
/// writes after every frame (`ESC[39m ESC[49m ESC[59m`).
#[test]
fn no_color_frames_carry_no_colour_sequence_on_the_wire() {
    let console = App::new(
        Arc::new(fixture::snapshot()),
        AppOptions {
            color: false,
            ..Default::default()
        },
    );
    // The backend alone writes the resets even though no cell has a colour: what the writer must remove.
    let raw = frame_bytes(&console, 80, 24, false);
    assert!(
        raw.windows(5).any(|w| w == b"\x1b[39m"),
        "expected the backend's resets"
    );
    assert!(has_colour_sequence(&raw));
    for (app, w, h) in [(&console, 80, 24), (&wall(false), 200, 50)] {
        let bytes = frame_bytes(app, w, h, true);
        assert!(
            !has_colour_sequence(&bytes),
            "colour at {w}x{h}: {:?}",
            String::from_utf8_lossy(&bytes)
        );
        assert!(String::from_utf8_lossy(&bytes).contains("FAIL"));
        // Attributes stay (bold FAIL, reversed key hints).
        assert!(bytes.windows(4).any(|w| w == b"\x1b[1m"));
    }
}
