//! The grouped 401/403 log: one row per (integration, status, error, source) with count and first/last time,
//! a key to expand a group, Enter on an event for its detail, plain words for unreadable log sources.

use authwatch::engine::Snapshot;
use authwatch::model::AuthEvent;
use authwatch::tui::fixture::{self, now};
use authwatch::tui::{App, AppOptions, View};
use chrono::Duration;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::sync::Arc;

fn press(a: &mut App, c: KeyCode) {
    a.handle_key(KeyEvent::new(c, KeyModifiers::NONE), now());
}

/// The fixture plus a burst of 28 identical 401s from a log source (02:00:14 to 02:05:40 on the fixture's day).
fn burst() -> Snapshot {
    let mut s = fixture::snapshot();
    let day = now().date_naive().and_hms_opt(2, 0, 14).unwrap().and_utc();
    let mut log: Vec<AuthEvent> = (0..28)
        .map(|k| AuthEvent {
            at: day + Duration::seconds(k * 12 + if k == 27 { 2 } else { 0 }),
            integration: Some("nightly-etl-loader".into()),
            http_status: 401,
            error: "invalid_client".into(),
            source: "demo-middleware".into(),
            origin: authwatch::model::EventOrigin {
                location: Some(format!("/var/log/mw/etl.jsonl line {}", 4000 + k)),
                client_id: Some("9d2e7f1a0c3b".into()),
                mid: Some("510001234".into()),
                url_host: Some("mcx1k2.auth.marketingcloudapis.com".into()),
            },
        })
        .collect();
    log.reverse();
    let mut all: Vec<AuthEvent> = s.auth_log.iter().cloned().collect();
    all.extend(log);
    all.sort_by_key(|e| std::cmp::Reverse(e.at));
    s.auth_log = Arc::new(all);
    s
}

fn app(snap: Snapshot) -> App {
    let mut a = App::new(Arc::new(snap), AppOptions::default());
    press(&mut a, KeyCode::Char('3'));
    a
}

#[test]
fn a_burst_is_one_line_with_count_and_first_last_seconds() {
    let a = app(burst());
    let wide = fixture::render_text(&a, 200, 50, now());
    let row = wide
        .lines()
        .find(|l| l.contains("nightly-etl-loader"))
        .unwrap_or_else(|| panic!("{wide}"));
    for part in [
        "nightly-etl-loader 401 invalid_client",
        "×28 02:00:14–02:05:40 demo-middleware",
    ] {
        assert!(row.contains(part), "{part:?} not in {row:?}");
    }
    assert_eq!(
        wide.matches("nightly-etl-loader").count(),
        1,
        "one line for the burst:\n{wide}"
    );
    // crm-sync from probes and from the worker log are separate groups; names are never cut to look alike.
    assert!(wide.contains("crm-sync") && wide.contains("crm-worker.log"));
}

#[test]
fn log_grouped_80x24() {
    let screen = fixture::render_text(&app(burst()), 80, 24, now());
    assert!(screen.contains("crm-sync 401 ×3"), "{screen}");
    assert!(screen.contains("10:20:00–10:29:20 probe"), "{screen}");
    assert!(screen.contains("1 unreadable"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn log_grouped_120x40_with_a_group_expanded() {
    let mut a = app(burst());
    // The burst is the oldest group but one: walk to it and expand it.
    while a.selected_log().unwrap().integration.as_deref() != Some("nightly-etl-loader") {
        press(&mut a, KeyCode::Char('j'));
    }
    press(&mut a, KeyCode::Char(' '));
    let screen = fixture::render_text(&a, 120, 40, now());
    assert!(screen.contains("▾ nightly-etl-loader"), "{screen}");
    assert!(
        screen.contains("    02:05:40"),
        "its events listed: {screen}"
    );
    insta::assert_snapshot!(screen);
    // Space again collapses.
    press(&mut a, KeyCode::Char(' '));
    let screen = fixture::render_text(&a, 120, 40, now());
    assert!(screen.contains("▸ nightly-etl-loader"), "{screen}");
}

#[test]
fn enter_on_an_event_opens_the_event_detail_80x24() {
    let mut a = app(burst());
    while a.selected_log().unwrap().integration.as_deref() != Some("nightly-etl-loader") {
        press(&mut a, KeyCode::Char('j'));
    }
    press(&mut a, KeyCode::Char(' '));
    press(&mut a, KeyCode::Char('j'));
    press(&mut a, KeyCode::Enter);
    assert!(matches!(a.view(), View::Event(_)), "{:?}", a.view());
    let screen = fixture::render_text(&a, 80, 24, now());
    for part in [
        "401/403 event: nightly-etl-loader",
        "Source",
        "log source demo-middleware",
        "First seen",
        "02:00:14",
        "Last seen",
        "02:05:40",
        "×28",
        "invalid_client",
    ] {
        assert!(screen.contains(part), "{part:?} not in\n{screen}");
    }
    insta::assert_snapshot!(screen);
    // A probe's event names the probe as its source, and the configured client id and MID.
    press(&mut a, KeyCode::Esc);
    press(&mut a, KeyCode::Char('g'));
    press(&mut a, KeyCode::Enter);
    let screen = fixture::render_text(&a, 80, 24, now());
    assert!(screen.contains("probe (authwatch's own"), "{screen}");
    assert!(
        screen.contains("Client id") && screen.contains("(configured)"),
        "{screen}"
    );
}

#[test]
fn unreadable_log_sources_are_named_in_plain_words() {
    let screen = fixture::render_text(&app(fixture::snapshot()), 200, 50, now());
    assert!(
        screen.contains("1 log source unreadable: journeys.jsonl"),
        "{screen}"
    );
    assert!(!screen.contains("src unread"), "{screen}");
}
