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
        ..Default::default()
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

// ---- issue 13: triage at a glance ----

/// The text of one screen row (0-based).
fn row(screen: &str, n: usize) -> String {
    screen.lines().nth(n).unwrap_or_default().to_string()
}

#[test]
fn list_80x24_answers_what_why_since_and_who() {
    let screen = fixture::render_text(&app(), 80, 24, now());
    let header = row(&screen, 2);
    for col in ["STATUS", "NAME", "SINCE", "REASON"] {
        assert!(header.contains(col), "{header}");
    }
    for stub in ["BU", "CRED", "LAST"] {
        assert!(!header.contains(stub), "{header}");
    }
    // The reason column starts where REASON does and runs to the border: at least 40 cells.
    let start = header.find("REASON").unwrap();
    let reason_cells = header[start..].chars().count() - 1;
    assert!(reason_cells >= 40, "{reason_cells}: {header}");
    // "Since when": crm-sync has been failing for 15 minutes.
    assert!(
        row(&screen, 3).contains("crm-sync          15m"),
        "{screen}"
    );
    // Who to call: the selected row's bottom line has owner and team.
    assert!(
        row(&screen, 11).contains("owner crm-team@acme.example | team crm"),
        "{screen}"
    );
}

#[test]
fn main_100x30() {
    insta::assert_snapshot!(fixture::render_text(&app(), 100, 30, now()));
}

#[test]
fn main_120x40() {
    insta::assert_snapshot!(fixture::render_text(&app(), 120, 40, now()));
}

#[test]
fn main_320x90() {
    insta::assert_snapshot!(fixture::render_text(&app(), 320, 90, now()));
}

#[test]
fn an_ok_over_a_reused_token_says_when_the_secret_was_verified() {
    let screen = fixture::render_text(&app(), 120, 40, now());
    let line = screen
        .lines()
        .find(|l| l.contains("preference-center"))
        .unwrap();
    assert!(line.contains("ok, secret verified 12m ago"), "{line}");
    // The detail view says when, and that the probes since reused the token.
    let mut a = app();
    chars(&mut a, "/preference");
    keys(&mut a, &[KeyCode::Enter, KeyCode::Enter]);
    let detail = fixture::render_text(&a, 120, 60, now());
    assert!(
        detail.contains("Secret         last verified 2026-03-14 10:17:55 UTC (12m ago); the probes since reused the cached token"),
        "{detail}"
    );
    assert!(
        detail.contains("Owner          platform@acme.example"),
        "{detail}"
    );
}

#[test]
fn a_probe_that_cannot_run_says_why_in_the_row_at_once() {
    let mut snap = fixture::startup_snapshot();
    let n = snap
        .integrations
        .iter()
        .position(|i| i.name == "crm-sync")
        .unwrap();
    let i = Arc::make_mut(&mut snap.integrations[n]);
    i.health.status = authwatch::model::Status::Unknown;
    i.health.reasons =
        vec!["secret not available: environment variable CRM_SECRET is not set".into()];
    let name = i.name.clone();
    let mut a = App::new(Arc::new(snap), opts(false, true, false));
    let screen = fixture::render_text(&a, 80, 24, now());
    let line = screen.lines().find(|l| l.contains(&name)).unwrap();
    assert!(
        line.contains("secret not available: environment variable"),
        "{line}"
    );
    assert!(!line.contains("probing"), "{line}");
    chars(&mut a, &format!("/{name}"));
    keys(&mut a, &[KeyCode::Enter, KeyCode::Enter]);
    let detail = fixture::render_text(&a, 80, 24, now());
    assert!(!detail.contains("probing... (no result yet)"), "{detail}");
    assert!(detail.contains("secret not available"), "{detail}");
}

#[test]
fn failures_scrolled_out_of_sight_are_counted_80x24() {
    let mut a = app();
    chars(&mut a, "G");
    let screen = fixture::render_text(&a, 80, 24, now());
    assert!(row(&screen, 1).contains("▲ 3 FAIL above"), "{screen}");
    insta::assert_snapshot!(screen);
    // Back at the top nothing is above; the OK rows below are not worth a flag.
    chars(&mut a, "g");
    let screen = fixture::render_text(&a, 80, 24, now());
    assert!(!row(&screen, 1).contains("above"), "{screen}");
}

/// A clock tick while nothing else changed redraws the header alone (the body's cells are not written again)
/// for as long as every age on screen reads the same, and the screen it leaves is what a whole render shows;
/// when an age turns, the whole screen is drawn again. On the main screen (ages count up) and in the detail
/// (countdowns to the next probe count down).
#[test]
fn a_clock_tick_redraws_the_header_alone_until_an_age_turns() {
    // Three minutes on, every age on the fixture's screens reads in minutes.
    let t0 = now() + chrono::Duration::minutes(3);
    header_alone_until_an_age_turns(&app(), t0);
    let mut detail = app();
    keys(&mut detail, &[KeyCode::Char('j'), KeyCode::Enter]);
    // 1m 5s before its next probe: "in 1m" for 5 s more, then "in 59s".
    let t0 = now() + chrono::Duration::seconds(175);
    let shown = fixture::render_text(&detail, 120, 60, t0);
    assert!(shown.contains("(in 1m)"), "{shown}");
    header_alone_until_an_age_turns(&detail, t0);
}

fn header_alone_until_an_age_turns(app: &App, t0: chrono::DateTime<chrono::Utc>) {
    use authwatch::tui::{LastFrame, draw_frame};
    use ratatui::{Terminal, backend::Backend, backend::TestBackend, buffer::Cell};
    // Tall enough for the whole detail, its countdown to the next probe included.
    let (w, h) = (120, 60);
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    let mut last = LastFrame::default();
    draw_frame(&mut term, app, &mut last, t0, false).unwrap();
    let still = last.still_until().expect("the fixture shows ages");
    assert!(
        still - t0 >= chrono::Duration::seconds(5),
        "{t0} -> {still}"
    );

    // A cell the console does not draw: only a write of the whole body would replace it.
    let (mx, my) = (w - 1, h / 2);
    let marker = Cell::new("#");
    term.backend_mut()
        .draw([(mx, my, &marker)].into_iter())
        .unwrap();
    let screen_except_marker = |term: &Terminal<TestBackend>| {
        let mut buf = term.backend().buffer().clone();
        buf[(mx, my)] = Cell::new(" ");
        buf
    };
    let whole_except_marker = |t| {
        let mut whole = fixture::render_buffer(app, w, h, t);
        whole[(mx, my)] = Cell::new(" ");
        whole
    };
    let mut t = t0 + chrono::Duration::seconds(1);
    while t < still {
        draw_frame(&mut term, app, &mut last, t, true).unwrap();
        assert_eq!(
            term.backend().buffer()[(mx, my)].symbol(),
            "#",
            "body redrawn at {t}"
        );
        assert_eq!(
            screen_except_marker(&term),
            whole_except_marker(t),
            "at {t}"
        );
        t += chrono::Duration::seconds(1);
    }

    // An age turned: the tick draws the whole screen again (and works out the next such moment).
    draw_frame(&mut term, app, &mut last, still, true).unwrap();
    assert_eq!(screen_except_marker(&term), whole_except_marker(still));
    assert!(last.still_until().is_some_and(|next| next > still));
}
