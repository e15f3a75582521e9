//! Whole-screen snapshots of the console on a test backend, from a hand-built fixture and a fixed clock.

use authwatch::engine::Snapshot;
use authwatch::tui::fixture::{self, now};
use authwatch::tui::{App, AppOptions};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::Color;
use std::sync::Arc;

fn opts(read_only: bool, color: bool, ascii: bool) -> AppOptions {
    AppOptions {
        read_only,
        color,
        ascii,
        log_path: Some("/var/log/authwatch/console.log".into()),
    }
}

fn app() -> App {
    App::new(Arc::new(fixture::snapshot()), opts(false, true, false))
}

fn keys(app: &mut App, keys: &[KeyCode]) {
    for &k in keys {
        app.handle_key(KeyEvent::new(k, KeyModifiers::NONE), now());
    }
}

fn chars(app: &mut App, s: &str) {
    for c in s.chars() {
        keys(app, &[KeyCode::Char(c)]);
    }
}

#[test]
fn main_80x24() {
    insta::assert_snapshot!(fixture::render_text(&app(), 80, 24, now()));
}

#[test]
fn main_200x50() {
    insta::assert_snapshot!(fixture::render_text(&app(), 200, 50, now()));
}

#[test]
fn main_120x30_expiry_focused() {
    let mut a = app();
    chars(&mut a, "2j");
    insta::assert_snapshot!(fixture::render_text(&a, 120, 30, now()));
}

#[test]
fn startup_placeholders_80x24() {
    let a = App::new(
        Arc::new(fixture::startup_snapshot()),
        opts(false, true, false),
    );
    let screen = fixture::render_text(&a, 80, 24, now());
    assert!(screen.contains("probing..."));
    insta::assert_snapshot!(screen);
}

#[test]
fn empty_config_80x24() {
    let a = App::new(Arc::new(Snapshot::empty("empty")), opts(false, true, false));
    insta::assert_snapshot!(fixture::render_text(&a, 80, 24, now()));
}

#[test]
fn detail_80x24() {
    let mut a = app();
    keys(&mut a, &[KeyCode::Enter]);
    insta::assert_snapshot!(fixture::render_text(&a, 80, 24, now()));
}

#[test]
fn detail_80x24_scrolled_to_the_end() {
    let mut a = app();
    keys(&mut a, &[KeyCode::Enter, KeyCode::End]);
    insta::assert_snapshot!(fixture::render_text(&a, 80, 24, now()));
}

/// An acknowledged, failing integration with a longer history: ACK, uptime, incidents and the latency sparkline
/// all on the first screen at 80x24.
#[test]
fn detail_acknowledged_80x24() {
    let mut a = app();
    keys(&mut a, &[KeyCode::Char('/')]);
    chars(&mut a, "journey-events");
    keys(&mut a, &[KeyCode::Enter, KeyCode::Enter]);
    let screen = fixture::render_text(&a, 80, 24, now());
    for want in [
        "ACK by jane",
        "(24h)",
        "(7d)",
        "Latency",
        "ongoing, 1m",
        "Incidents (7d)",
    ] {
        assert!(screen.contains(want), "{want:?} missing:\n{screen}");
    }
    insta::assert_snapshot!(screen);
}

#[test]
fn detail_acknowledged_ascii_80x24() {
    let mut a = App::new(Arc::new(fixture::snapshot()), opts(false, false, true));
    keys(&mut a, &[KeyCode::Char('/')]);
    chars(&mut a, "journey-events");
    keys(&mut a, &[KeyCode::Enter, KeyCode::Enter]);
    let screen = fixture::render_text(&a, 80, 24, now());
    assert!(screen.is_ascii(), "ASCII mode drew non-ASCII:\n{screen}");
    let spark = screen.lines().find(|l| l.contains("Latency")).unwrap();
    assert!(spark.contains('#') && spark.contains('x'), "{spark}");
    insta::assert_snapshot!(screen);
}

#[test]
fn detail_scope_missing_120x40() {
    let mut a = app();
    keys(&mut a, &[KeyCode::Char('/')]);
    chars(&mut a, "email-sends");
    keys(&mut a, &[KeyCode::Enter, KeyCode::Enter]);
    insta::assert_snapshot!(fixture::render_text(&a, 120, 40, now()));
}

#[test]
fn help_80x24() {
    let mut a = app();
    chars(&mut a, "?");
    let screen = fixture::render_text(&a, 80, 24, now());
    assert!(screen.contains("acknowledge"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn help_read_only_80x24() {
    let mut a = App::new(Arc::new(fixture::snapshot()), opts(true, true, false));
    chars(&mut a, "?");
    let screen = fixture::render_text(&a, 80, 24, now());
    assert!(!screen.contains("probe selected"));
    assert!(!screen.contains("probe all"));
    assert!(!screen.contains("acknowledge") && !screen.contains(" a ack"));
    insta::assert_snapshot!(screen);
}

#[test]
fn filter_active_80x24() {
    let mut a = app();
    chars(&mut a, "/acme eu");
    insta::assert_snapshot!(fixture::render_text(&a, 80, 24, now()));
}

#[test]
fn too_small_60x20() {
    insta::assert_snapshot!(fixture::render_text(&app(), 60, 20, now()));
}

#[test]
fn frozen_read_only_ascii_80x24() {
    let mut a = App::new(Arc::new(fixture::snapshot()), opts(true, false, true));
    chars(&mut a, "f");
    a.apply_snapshot(Arc::new(fixture::snapshot()));
    let screen = fixture::render_text(&a, 80, 24, now());
    assert!(screen.is_ascii(), "ASCII mode drew non-ASCII:\n{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn no_color_means_no_colour_escape_at_all() {
    let screens = {
        let mut v = Vec::new();
        let mut a = App::new(Arc::new(fixture::snapshot()), opts(false, false, false));
        v.push(fixture::render_buffer(&a, 80, 24, now()));
        v.push(fixture::render_buffer(&a, 200, 50, now()));
        chars(&mut a, "?");
        v.push(fixture::render_buffer(&a, 80, 24, now()));
        keys(&mut a, &[KeyCode::Esc, KeyCode::Enter]);
        v.push(fixture::render_buffer(&a, 80, 24, now()));
        v
    };
    for buf in &screens {
        for cell in buf.content() {
            assert_eq!(cell.fg, Color::Reset, "fg colour on {:?}", cell.symbol());
            assert_eq!(cell.bg, Color::Reset, "bg colour on {:?}", cell.symbol());
        }
    }
    // Status still reads without colour.
    let text = fixture::buffer_text(&screens[0]);
    let fail_row = text.lines().find(|l| l.contains("crm-sync")).unwrap();
    assert!(fail_row.contains("FAIL"), "{fail_row}");
    assert!(text.contains("✖ FAIL") && text.contains("▲ WARN") && text.contains("✔ 3 OK"));
}

#[test]
fn colour_mode_uses_only_the_16_ansi_colours() {
    let a = app();
    let buf = fixture::render_buffer(&a, 200, 50, now());
    for cell in buf.content() {
        for c in [cell.fg, cell.bg] {
            assert!(
                !matches!(c, Color::Rgb(..) | Color::Indexed(_)),
                "non-ANSI colour {c:?} on {:?}",
                cell.symbol()
            );
        }
    }
    // And colour is actually used (FAIL in red).
    assert!(buf.content().iter().any(|c| c.fg == Color::Red));
}

/// The wall screen on an agent (`--connect URL --read-only`) after the agent went away: the last state stays,
/// marked stale with the time of the last update, and nothing to act with.
#[test]
fn connect_wall_screen_agent_lost_80x24() {
    let mut snap = fixture::snapshot();
    snap.connection = Some("NO AGENT since 10:29:12Z".into());
    let a = App::new(Arc::new(snap), opts(true, true, false));
    let screen = fixture::render_text(&a, 80, 24, now());
    assert!(screen.contains("NO AGENT since 10:29:12Z"), "{screen}");
    assert!(screen.contains("READ-ONLY"), "{screen}");
    insta::assert_snapshot!(screen);
}
