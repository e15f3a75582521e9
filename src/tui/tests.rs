//! Key handling and state rules: key -> action -> state, commands read back from a real handle's channel.

use super::app::{App, AppOptions, Pane, SortKey, View};
use super::fixture::{self, now};
use super::keymap::{BINDINGS, Context};
use crate::engine::{Command, EngineHandle, Snapshot};
use crate::model::Health;
use crate::model::{AuthEvent, Status};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

fn opts(read_only: bool) -> AppOptions {
    AppOptions {
        read_only,
        color: true,
        ascii: false,
        log_path: Some("/var/log/authwatch.log".into()),
        ..Default::default()
    }
}

fn app() -> App {
    App::new(Arc::new(fixture::snapshot()), opts(false))
}

/// An app wired to a real `EngineHandle` over plain channels; the receiver sees what the console sends.
fn wired(read_only: bool) -> (App, mpsc::Receiver<Command>, watch::Sender<Arc<Snapshot>>) {
    let snap = Arc::new(fixture::snapshot());
    let (wtx, wrx) = watch::channel(snap.clone());
    let (ctx, crx) = mpsc::channel(16);
    let handle = EngineHandle::from_channels(wrx, ctx);
    (
        App::new(snap, opts(read_only)).with_handle(handle),
        crx,
        wtx,
    )
}

fn key(app: &mut App, code: KeyCode) -> bool {
    app.handle_key(KeyEvent::new(code, KeyModifiers::NONE), now())
}

fn ch(app: &mut App, c: char) -> bool {
    key(app, KeyCode::Char(c))
}

fn typ(app: &mut App, s: &str) {
    for c in s.chars() {
        ch(app, c);
    }
}

fn names(app: &App) -> Vec<String> {
    app.visible_integrations().map(|i| i.name.clone()).collect()
}

fn selected(app: &App) -> String {
    app.selected_integration().unwrap().name.clone()
}

#[test]
fn failing_first_by_default() {
    let a = app();
    let statuses: Vec<Status> = a.visible_integrations().map(|i| i.health.status).collect();
    let mut sorted = statuses.clone();
    sorted.sort_by(|x, y| y.cmp(x));
    assert_eq!(statuses, sorted);
    assert_eq!(statuses[0], Status::Fail);
    // Most consecutive auth failures first among the failing.
    assert_eq!(selected(&a), "crm-sync");
}

#[test]
fn focus_cycles_with_tab_backtab_and_digits() {
    let mut a = app();
    assert_eq!(a.focus(), Pane::Integrations);
    key(&mut a, KeyCode::Tab);
    assert_eq!(a.focus(), Pane::Expiry);
    key(&mut a, KeyCode::Tab);
    assert_eq!(a.focus(), Pane::Log);
    key(&mut a, KeyCode::Tab);
    assert_eq!(a.focus(), Pane::Integrations);
    a.handle_key(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT), now());
    assert_eq!(a.focus(), Pane::Log);
    ch(&mut a, '2');
    assert_eq!(a.focus(), Pane::Expiry);
    ch(&mut a, '1');
    assert_eq!(a.focus(), Pane::Integrations);
    ch(&mut a, '3');
    assert_eq!(a.focus(), Pane::Log);
}

#[test]
fn movement_keys_move_the_selection_and_clamp() {
    let mut a = app();
    let all = names(&a);
    ch(&mut a, 'j');
    assert_eq!(selected(&a), all[1]);
    key(&mut a, KeyCode::Down);
    assert_eq!(selected(&a), all[2]);
    ch(&mut a, 'k');
    key(&mut a, KeyCode::Up);
    assert_eq!(selected(&a), all[0]);
    key(&mut a, KeyCode::Up);
    assert_eq!(selected(&a), all[0], "clamped at the top");
    ch(&mut a, 'G');
    assert_eq!(selected(&a), *all.last().unwrap());
    ch(&mut a, 'j');
    assert_eq!(selected(&a), *all.last().unwrap(), "clamped at the bottom");
    key(&mut a, KeyCode::Home);
    assert_eq!(selected(&a), all[0]);
    key(&mut a, KeyCode::End);
    assert_eq!(selected(&a), *all.last().unwrap());
    ch(&mut a, 'g');
    key(&mut a, KeyCode::PageDown);
    assert!(a.selected_integration().is_some());
    assert_ne!(selected(&a), all[0]);
    key(&mut a, KeyCode::PageUp);
    assert_eq!(selected(&a), all[0]);
}

#[test]
fn filter_typing_keeps_and_clears() {
    let mut a = app();
    ch(&mut a, '/');
    assert_eq!(a.editing_filter(), Some(Pane::Integrations));
    typ(&mut a, "CRM");
    // Case-insensitive substring on name, business unit, team, credential, reason.
    let got = names(&a);
    assert!(got.contains(&"crm-sync".to_string()));
    assert!(
        got.contains(&"audience-sync".to_string()),
        "team crm: {got:?}"
    );
    assert!(!got.contains(&"web-analytics".to_string()));
    // 'q' while typing is text, not quit.
    ch(&mut a, 'q');
    assert!(!a.should_quit());
    assert_eq!(a.filter(Pane::Integrations), "CRMq");
    key(&mut a, KeyCode::Backspace);
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.editing_filter(), None);
    assert_eq!(a.filter(Pane::Integrations), "CRM");
    let kept = names(&a);
    // Esc outside typing clears the kept filter.
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.filter(Pane::Integrations), "");
    assert!(names(&a).len() > kept.len());
    // Esc while typing clears too.
    ch(&mut a, '/');
    typ(&mut a, "eu");
    assert_eq!(names(&a).len(), 3, "{:?}", names(&a));
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.filter(Pane::Integrations), "");
    assert_eq!(a.editing_filter(), None);
}

#[test]
fn reason_filter_matches() {
    let mut a = app();
    ch(&mut a, '/');
    typ(&mut a, "invalid_client");
    assert_eq!(names(&a), ["crm-sync"]);
}

#[test]
fn sort_cycles_through_four_orders() {
    let mut a = app();
    assert_eq!(a.sort(), SortKey::Status);
    ch(&mut a, 's');
    assert_eq!(a.sort(), SortKey::Name);
    let n = names(&a);
    let mut sorted = n.clone();
    sorted.sort();
    assert_eq!(n, sorted);
    assert_eq!(a.message_text(), Some("sorted by name"));
    ch(&mut a, 's');
    assert_eq!(a.sort(), SortKey::Expiry);
    // crm-prod expired first.
    assert_eq!(names(&a)[0], "crm-sync");
    ch(&mut a, 's');
    assert_eq!(a.sort(), SortKey::LastFailure);
    // Newest failure first: data-extract (12s ago).
    assert_eq!(names(&a)[0], "data-extract");
    ch(&mut a, 's');
    assert_eq!(a.sort(), SortKey::Status);
}

#[test]
fn sorting_keeps_the_selected_integration() {
    let mut a = app();
    ch(&mut a, 'j');
    ch(&mut a, 'j');
    let before = selected(&a);
    ch(&mut a, 's');
    assert_eq!(selected(&a), before);
}

#[test]
fn enter_opens_detail_and_esc_goes_back() {
    let mut a = app();
    ch(&mut a, 'j');
    let name = selected(&a);
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.view(), &View::Detail(name));
    assert_eq!(a.context(), Context::Detail);
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.view(), &View::Main);
}

#[test]
fn help_opens_and_closes() {
    let mut a = app();
    ch(&mut a, '?');
    assert!(a.help_open());
    ch(&mut a, 'j'); // scrolls help, does not move the list
    assert_eq!(selected(&a), "crm-sync");
    key(&mut a, KeyCode::Esc);
    assert!(!a.help_open());
    ch(&mut a, '?');
    ch(&mut a, '?');
    assert!(!a.help_open());
}

#[test]
fn quit_keys() {
    let mut a = app();
    ch(&mut a, 'q');
    assert!(a.should_quit());
    let mut a = app();
    a.handle_key(
        KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
        now(),
    );
    assert!(a.should_quit());
}

#[test]
fn ctrl_l_requests_a_repaint() {
    let mut a = app();
    assert!(!a.take_repaint());
    a.handle_key(
        KeyEvent::new(KeyCode::Char('l'), KeyModifiers::CONTROL),
        now(),
    );
    assert!(a.take_repaint());
    assert!(!a.take_repaint());
}

#[test]
fn p_probes_the_selected_row() {
    let (mut a, mut rx, _tx) = wired(false);
    ch(&mut a, 'j');
    ch(&mut a, 'j');
    let name = selected(&a);
    assert!(ch(&mut a, 'p'));
    match rx.try_recv() {
        Ok(Command::ProbeNow { integration }) => assert_eq!(integration, name),
        other => panic!("expected ProbeNow, got {other:?}"),
    }
    assert_eq!(
        a.message_text(),
        Some(format!("probe queued for {name}").as_str())
    );
    ch(&mut a, 'P');
    assert!(matches!(rx.try_recv(), Ok(Command::ProbeAll)));
    assert!(rx.try_recv().is_err());
}

#[test]
fn a_acknowledges_the_selected_incident_and_refuses_ok_ones() {
    let (mut a, mut rx, _tx) = wired(false);
    // Failing first: the top row is failing.
    let name = selected(&a);
    assert!(ch(&mut a, 'a'));
    match rx.try_recv() {
        Ok(Command::Ack { integration, actor }) => {
            assert_eq!(integration, name);
            assert_eq!(actor, crate::host::os_user());
        }
        other => panic!("expected Ack, got {other:?}"),
    }
    assert_eq!(
        a.message_text(),
        Some(format!("acknowledged {name}").as_str())
    );
    // An OK integration has nothing to acknowledge.
    ch(&mut a, 'G');
    let ok = selected(&a);
    ch(&mut a, 'a');
    assert!(rx.try_recv().is_err(), "no Ack for an OK integration");
    assert_eq!(
        a.message_text(),
        Some(format!("nothing to acknowledge: {ok} is OK").as_str())
    );
}

/// `a` on an acknowledged integration asks first; a second `a` takes the acknowledgement back, any other key keeps it.
#[test]
fn a_again_takes_the_acknowledgement_back_after_a_confirmation() {
    let (mut a, mut rx, _tx) = wired(false);
    ch(&mut a, '/');
    typ(&mut a, "journey-events");
    key(&mut a, KeyCode::Enter);
    assert_eq!(selected(&a), "journey-events");
    assert!(a.selected_integration().unwrap().acked.is_some());
    ch(&mut a, 'a');
    assert!(
        rx.try_recv().is_err(),
        "nothing sent before the confirmation"
    );
    let asked = a.message_text().unwrap().to_string();
    assert!(
        asked.starts_with("journey-events is acknowledged by ")
            && asked.contains("press a again to take it back, any other key keeps it"),
        "{asked}"
    );
    // Another key in between: the question is gone, `a` asks again.
    ch(&mut a, 's');
    ch(&mut a, 'a');
    assert!(rx.try_recv().is_err(), "a key in between keeps the ack");
    ch(&mut a, 'a');
    match rx.try_recv() {
        Ok(Command::Unack { integration, actor }) => {
            assert_eq!(integration, "journey-events");
            assert_eq!(actor, crate::host::os_user());
        }
        other => panic!("expected Unack, got {other:?}"),
    }
    assert_eq!(
        a.message_text(),
        Some("acknowledgement of journey-events taken back")
    );
    assert!(rx.try_recv().is_err(), "exactly one command");
}

#[test]
fn a_in_detail_acknowledges_that_integration() {
    let (mut a, mut rx, _tx) = wired(false);
    ch(&mut a, '/');
    typ(&mut a, "crm-sync");
    key(&mut a, KeyCode::Enter);
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.view, View::Detail("crm-sync".into()));
    assert!(ch(&mut a, 'a'));
    match rx.try_recv() {
        Ok(Command::Ack { integration, actor }) => {
            assert_eq!(integration, "crm-sync");
            assert_eq!(actor, crate::host::os_user());
        }
        other => panic!("expected Ack, got {other:?}"),
    }
    assert_eq!(a.message_text(), Some("acknowledged crm-sync"));
    assert!(rx.try_recv().is_err(), "exactly one command");
}

#[test]
fn a_on_an_ok_detail_sends_nothing_and_says_why() {
    let (mut a, mut rx, _tx) = wired(false);
    ch(&mut a, 'G');
    let ok = selected(&a);
    key(&mut a, KeyCode::Enter);
    ch(&mut a, 'a');
    assert!(rx.try_recv().is_err());
    assert_eq!(
        a.message_text(),
        Some(format!("nothing to acknowledge: {ok} is OK").as_str())
    );
}

#[test]
fn read_only_refuses_acknowledgements() {
    let (mut a, mut rx, _tx) = wired(true);
    ch(&mut a, 'a');
    // Nor from the detail view, nor in the footer's hints; the footer says why instead.
    key(&mut a, KeyCode::Enter);
    ch(&mut a, 'a');
    assert!(rx.try_recv().is_err());
    assert_eq!(a.message_text(), Some("read-only: a is not available"));
    a.expire_message(now() + chrono::Duration::seconds(60));
    let footer = fixture::render_text(&a, 200, 50, now());
    assert!(!footer.lines().last().unwrap().contains(" a "), "{footer}");
    let help: Vec<_> = a.keymap.available().map(|b| b.description).collect();
    assert!(help.iter().all(|d| !d.contains("acknowledge")), "{help:?}");
}

#[test]
fn acknowledged_rows_say_ack_and_the_log_names_its_sources() {
    let a = app();
    let screen = fixture::render_text(&a, 200, 50, now());
    let row = screen
        .lines()
        .find(|l| l.contains("journey-events"))
        .unwrap();
    assert!(row.contains("ACK"), "{row}");
    assert!(
        screen.contains("crm-worker.log"),
        "log source named in the 401/403 log: {screen}"
    );
    assert!(
        screen.contains("1 log source unreadable: journeys.jsonl (waiting for"),
        "a waiting source is flagged in plain words: {screen}"
    );
    let narrow = fixture::render_text(&a, 80, 24, now());
    // Narrow: full names and sources, on two lines per group.
    assert!(
        narrow.contains("crm-worker.log") && narrow.contains("probe"),
        "{narrow}"
    );
    assert!(
        narrow.contains("401/403 log") && narrow.contains("1 unreadable"),
        "title kept, flag in words: {narrow}"
    );
}

#[test]
fn p_in_detail_probes_that_integration() {
    let (mut a, mut rx, _tx) = wired(false);
    ch(&mut a, 'G');
    let name = selected(&a);
    key(&mut a, KeyCode::Enter);
    ch(&mut a, 'p');
    match rx.try_recv() {
        Ok(Command::ProbeNow { integration }) => assert_eq!(integration, name),
        other => panic!("expected ProbeNow, got {other:?}"),
    }
}

#[test]
fn read_only_refuses_probes_everywhere() {
    let (mut a, mut rx, _tx) = wired(true);
    ch(&mut a, 'p');
    ch(&mut a, 'P');
    key(&mut a, KeyCode::Enter);
    ch(&mut a, 'p');
    assert!(rx.try_recv().is_err(), "no command in read-only mode");
    assert_eq!(a.message_text(), Some("read-only: p is not available"));
    a.expire_message(now() + chrono::Duration::seconds(60));
    // Absent from help and footer.
    key(&mut a, KeyCode::Esc);
    let help_keys: Vec<_> = a.keymap.available().map(|b| b.description).collect();
    assert!(
        help_keys.iter().all(|d| !d.contains("probe")),
        "{help_keys:?}"
    );
    ch(&mut a, '?');
    let screen = fixture::render_text(&a, 100, 40, now());
    assert!(!screen.contains("probe selected"), "{screen}");
    assert!(screen.contains("read-only"));
    key(&mut a, KeyCode::Esc);
    let screen = fixture::render_text(&a, 200, 50, now());
    let footer = screen.lines().nth(49).unwrap();
    assert!(!footer.contains("probe"), "{footer}");
    assert!(footer.contains("freeze"), "{footer}");
    assert!(screen.lines().next().unwrap().contains("READ-ONLY"));
}

#[test]
fn footer_hints_come_from_the_registry() {
    let a = app();
    let screen = fixture::render_text(&a, 200, 50, now());
    let footer = screen.lines().nth(49).unwrap();
    for (k, label) in a.keymap.hints(Context::Integrations) {
        assert!(
            footer.contains(&format!("{k} {label}")),
            "{k} {label} missing: {footer}"
        );
    }
    assert!(footer.contains("p probe"));
    assert!(BINDINGS.iter().any(|b| b.hint == Some("probe")));
}

#[test]
fn freeze_holds_updates_and_counts_them() {
    let mut a = app();
    ch(&mut a, 'f');
    assert!(a.is_frozen());
    let mut changed = fixture::snapshot();
    changed.config_name = "changed".into();
    a.apply_snapshot(Arc::new(changed.clone()));
    a.apply_snapshot(Arc::new(changed));
    assert_eq!(a.snapshot().config_name, "acme-sfmc");
    let header = fixture::render_text(&a, 120, 30, now());
    assert!(
        header.lines().next().unwrap().contains("FROZEN +2"),
        "{header}"
    );
    ch(&mut a, 'f');
    assert!(!a.is_frozen());
    assert_eq!(a.snapshot().config_name, "changed");
}

/// The same snapshot with one integration's status changed (reorders rows under the status sort).
fn with_status(base: &Snapshot, name: &str, status: Status) -> Snapshot {
    let mut s = base.clone();
    s.version += 1;
    s.integrations = s
        .integrations
        .iter()
        .map(|i| {
            if i.name == name {
                let mut j = (**i).clone();
                j.health = Health {
                    status,
                    reasons: vec!["changed".into()],
                };
                Arc::new(j)
            } else {
                i.clone()
            }
        })
        .collect();
    s
}

#[test]
fn selection_survives_a_reordering_update() {
    let mut a = app();
    // Select an OK row near the bottom.
    while selected(&a) != "tx-messages" {
        assert!(ch(&mut a, 'j'), "tx-messages not found");
    }
    let before_index = names(&a).iter().position(|n| n == "tx-messages").unwrap();
    // It starts failing: it moves to the top, and the selection moves with it.
    let snap = with_status(a.snapshot(), "tx-messages", Status::Fail);
    a.apply_snapshot(Arc::new(snap));
    let after_index = names(&a).iter().position(|n| n == "tx-messages").unwrap();
    assert!(after_index < before_index);
    assert_eq!(selected(&a), "tx-messages");
    // Another row jumps above it: still selected.
    let snap = with_status(a.snapshot(), "audience-sync", Status::Fail);
    a.apply_snapshot(Arc::new(snap));
    assert_eq!(selected(&a), "tx-messages");
}

#[test]
fn selection_falls_back_when_the_row_disappears() {
    let mut a = app();
    ch(&mut a, 'j');
    let mut snap = (**a.snapshot()).clone();
    let gone = selected(&a);
    snap.integrations.retain(|i| i.name != gone);
    a.apply_snapshot(Arc::new(snap));
    assert!(a.selected_integration().is_some());
    assert_ne!(selected(&a), gone);
}

fn with_new_events(base: &Snapshot, n: usize) -> Snapshot {
    let mut s = base.clone();
    let mut log: Vec<AuthEvent> = (0..n)
        .map(|k| AuthEvent {
            at: now() + chrono::Duration::seconds(k as i64 + 1),
            integration: Some("crm-sync".into()),
            http_status: 401,
            error: format!("invalid_client #{k}"),
            source: "probe".into(),
            origin: Default::default(),
        })
        .rev()
        .collect();
    log.extend(s.auth_log.iter().cloned());
    s.auth_log = Arc::new(log);
    s
}

#[test]
fn log_follows_new_entries_at_the_top() {
    let mut a = app();
    ch(&mut a, '3');
    a.apply_snapshot(Arc::new(with_new_events(a.snapshot(), 2)));
    assert_eq!(a.selected_log().unwrap().error, "invalid_client #1");
    assert_eq!(a.log_new(), 0);
}

#[test]
fn log_scrolled_away_keeps_its_place_and_counts_new_entries() {
    let mut a = app();
    ch(&mut a, '3');
    ch(&mut a, 'j');
    ch(&mut a, 'j');
    let before = a.selected_log().unwrap().clone();
    a.apply_snapshot(Arc::new(with_new_events(a.snapshot(), 2)));
    assert_eq!(a.selected_log().unwrap(), &before);
    assert_eq!(a.log_new(), 2);
    let screen = fixture::render_text(&a, 80, 24, now());
    assert!(screen.contains("2 new"), "{screen}");
    a.apply_snapshot(Arc::new(with_new_events(a.snapshot(), 1)));
    assert_eq!(a.log_new(), 3);
    // Back to the top: following again, counter reset.
    ch(&mut a, 'g');
    assert_eq!(a.log_new(), 0);
    assert!(!fixture::render_text(&a, 80, 24, now()).contains(" new"));
}

#[test]
fn enter_on_a_log_entry_opens_the_event() {
    let mut a = app();
    ch(&mut a, '3');
    key(&mut a, KeyCode::Enter);
    let View::Event(ev) = a.view().clone() else {
        panic!("{:?}", a.view())
    };
    assert_eq!(ev.integration.as_deref(), Some("crm-sync"));
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.view(), &View::Main);
    // An unmatched entry opens too, and says it matched nothing.
    while a.selected_log().unwrap().integration.is_some() {
        ch(&mut a, 'j');
    }
    key(&mut a, KeyCode::Enter);
    let screen = fixture::render_text(&a, 80, 24, now());
    assert!(screen.contains("unmatched"), "{screen}");
}

#[test]
fn credentials_sorted_by_days_left_and_calendar_follows_selection() {
    let mut a = app();
    ch(&mut a, '2');
    assert_eq!(a.selected_credential().unwrap().id, "crm-prod");
    assert_eq!(a.calendar_month(now()), (2026, 3));
    // Walk down to "journeys" (August).
    while a.selected_credential().unwrap().id != "journeys" {
        assert!(ch(&mut a, 'j'));
    }
    assert_eq!(a.calendar_month(now()), (2026, 8));
    ch(&mut a, ']');
    assert_eq!(a.calendar_month(now()), (2026, 9));
    ch(&mut a, 'h');
    ch(&mut a, 'h');
    key(&mut a, KeyCode::Left);
    assert_eq!(a.calendar_month(now()), (2026, 6));
    let screen = fixture::render_text(&a, 80, 24, now());
    assert!(screen.contains("June 2026"), "{screen}");
}

#[test]
fn month_navigation_crosses_years() {
    let mut a = app();
    ch(&mut a, '2');
    for _ in 0..3 {
        ch(&mut a, '[');
    }
    assert_eq!(a.calendar_month(now()), (2025, 12));
    for _ in 0..13 {
        ch(&mut a, ']');
    }
    assert_eq!(a.calendar_month(now()), (2027, 1));
}

#[test]
fn enter_on_a_credential_filters_its_integrations() {
    let mut a = app();
    ch(&mut a, '2');
    while a.selected_credential().unwrap().id != "shared-ro" {
        ch(&mut a, 'j');
    }
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.focus(), Pane::Integrations);
    let mut got = names(&a);
    got.sort();
    assert_eq!(got, ["audience-sync", "preference-center", "tx-messages"]);
}

#[test]
fn messages_expire() {
    let mut a = app();
    ch(&mut a, 's');
    assert!(a.message_text().is_some());
    assert!(!a.expire_message(now()));
    assert!(a.expire_message(now() + chrono::Duration::seconds(5)));
    assert!(a.message_text().is_none());
}

#[test]
fn unbound_keys_do_not_redraw() {
    let mut a = app();
    assert!(!ch(&mut a, 'z'));
    assert!(!key(&mut a, KeyCode::F(5)));
}

#[test]
fn never_panics_at_any_size() {
    let mut apps = vec![app(), App::new(Arc::new(Snapshot::empty("x")), opts(true))];
    let mut detail = app();
    key(&mut detail, KeyCode::Enter);
    apps.push(detail);
    let mut help = app();
    ch(&mut help, '?');
    apps.push(help);
    let mut filt = app();
    ch(&mut filt, '/');
    typ(&mut filt, "zzz");
    apps.push(filt);
    for a in &apps {
        for (w, h) in [
            (1, 1),
            (0, 0),
            (1, 0),
            (0, 1),
            (79, 24),
            (80, 23),
            (80, 24),
            (81, 25),
            (300, 100),
        ] {
            let _ = fixture::render_buffer(a, w, h, now());
        }
        for w in (0..=130).step_by(7) {
            for h in (0..=60).step_by(5) {
                let _ = fixture::render_buffer(a, w, h, now());
            }
        }
    }
}

#[test]
fn too_small_says_so() {
    let a = app();
    let s = fixture::render_text(&a, 79, 24, now());
    assert!(s.contains("terminal too small: 79x24, need 80x24"), "{s}");
    let s = fixture::render_text(&a, 80, 23, now());
    assert!(s.contains("80x23"), "{s}");
    let s = fixture::render_text(&a, 80, 24, now());
    assert!(!s.contains("too small"));
}

#[test]
fn untouched_selection_stays_on_the_worst_row_as_results_arrive() {
    // Startup: everything "probing...", sorted by name; then the first results reorder the list.
    let mut a = App::new(Arc::new(fixture::startup_snapshot()), opts(false));
    assert_eq!(selected(&a), "audience-sync");
    a.apply_snapshot(Arc::new(fixture::snapshot()));
    assert_eq!(
        selected(&a),
        "crm-sync",
        "top row follows the worst until the user moves"
    );
    // Once the user has moved, the selection follows the name instead.
    ch(&mut a, 'j');
    ch(&mut a, 'k');
    let snap = with_status(a.snapshot(), "tx-messages", Status::Fail);
    let snap = Snapshot {
        integrations: snap
            .integrations
            .iter()
            .map(|i| {
                let mut j = (**i).clone();
                if j.name == "tx-messages" {
                    j.consecutive_auth_failures = 99;
                }
                Arc::new(j)
            })
            .collect(),
        ..snap
    };
    a.apply_snapshot(Arc::new(snap));
    assert_eq!(names(&a)[0], "tx-messages");
    assert_eq!(selected(&a), "crm-sync");
}

// ---- the rotation wizard ----

use crate::rotation::LineKind;
use crate::rotation::fsm::{Phase, Rotation};
use crate::rotation::session::{Request, Update, WizardCmd};
use secrecy::ExposeSecret;

/// An app whose rotation requests arrive in the returned receiver (standing in for the rotation task).
fn with_rotation(read_only: bool) -> (App, mpsc::UnboundedReceiver<Request>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        App::new(Arc::new(fixture::snapshot()), opts(read_only)).with_rotation(tx, false),
        rx,
    )
}

/// The rotation task's answer putting the credential in `phase`.
fn answer(app: &mut App, credential: &str, phase: Phase, lines: &[(LineKind, &str)]) {
    let mut r = Rotation::idle(credential);
    r.phase = phase;
    if phase != Phase::Idle {
        r.staged_at = Some(now() - chrono::Duration::minutes(7));
        r.accept_after = Some(now() - chrono::Duration::minutes(2));
    }
    app.apply_rotation_update(
        Update {
            credential: credential.into(),
            rotation: Some(r),
            lines: lines
                .iter()
                .map(|(kind, text)| crate::rotation::Line {
                    kind: *kind,
                    text: text.to_string(),
                })
                .collect(),
            ok: true,
            next: String::new(),
            manual_sink: None,
            audit: Vec::new(),
        },
        now(),
    );
}

fn cmd_name(r: &Request) -> String {
    format!("{}:{:?}", r.credential, r.cmd)
}

#[test]
fn r_opens_the_wizard_for_the_selected_credential() {
    let (mut a, mut rx) = with_rotation(false);
    // crm-sync is on top (worst first); its credential is crm-prod.
    ch(&mut a, 'r');
    let w = a.wizard().expect("wizard open");
    assert_eq!(w.rotation.credential, "crm-prod");
    assert!(w.busy, "waits for the rotation's state");
    assert_eq!(cmd_name(&rx.try_recv().unwrap()), "crm-prod:Open");
    // The consumers (people to tell) come from the snapshot.
    assert!(w.consumers.iter().any(|(n, _, _)| n == "crm-sync"));
    key(&mut a, KeyCode::Esc);
    assert!(a.wizard().is_none());
    // Closing the wizard ends its session: the credential's rotation lease is given back.
    assert_eq!(cmd_name(&rx.try_recv().unwrap()), "crm-prod:Close");

    // From the expiry pane, the selected credential.
    ch(&mut a, '2');
    let cred = a.selected_credential().unwrap().id.clone();
    ch(&mut a, 'r');
    assert_eq!(a.wizard().unwrap().rotation.credential, cred);
    assert_eq!(cmd_name(&rx.try_recv().unwrap()), format!("{cred}:Open"));
}

#[test]
fn a_read_only_console_shows_the_rotations_progress_from_the_snapshot() {
    use crate::rotation::session::{LastStep, Origin, RotationView, RunningStep};
    let mut snap = fixture::snapshot();
    snap.rotations = Arc::new(vec![RotationView {
        credential: "crm-prod".into(),
        state: Phase::Verified,
        steps: Vec::new(),
        checks: Vec::new(),
        last_step: Some(LastStep {
            step: "verify".into(),
            actor: "oncall".into(),
            origin: Origin::Api,
            at: now(),
            ok: true,
        }),
        running: Some(RunningStep {
            step: "promote".into(),
            actor: "oncall".into(),
            origin: Origin::Console,
            since: now(),
        }),
        next: String::new(),
        failures: Vec::new(),
        lease: None,
        accept_after: None,
        new_expires: None,
    }]);
    let mut a = App::new(Arc::new(snap), opts(true));
    ch(&mut a, 'r');
    assert!(a.wizard().is_none());
    assert_eq!(
        a.message_text().unwrap(),
        "read-only: rotation of crm-prod is verified, last: verify ok by oncall via api, running: promote by oncall via console"
    );
}

#[test]
fn read_only_and_remote_consoles_do_not_rotate() {
    let (mut a, mut rx) = with_rotation(true);
    ch(&mut a, 'r');
    assert!(a.wizard().is_none());
    assert!(rx.try_recv().is_err());
    let screen = fixture::render_text(&a, 120, 30, now());
    assert!(!screen.contains("rotate"), "{screen}");

    // No rotation task (a console on an agent): says where rotation runs.
    let mut a = app();
    ch(&mut a, 'r');
    assert!(a.wizard().is_none());
    assert!(a.message_text().unwrap().contains("authwatch rotate"));
}

#[test]
fn the_new_secret_is_typed_masked_and_goes_only_to_the_rotation_task() {
    let (mut a, mut rx) = with_rotation(false);
    ch(&mut a, 'r');
    rx.try_recv().unwrap();
    answer(&mut a, "crm-prod", Phase::Idle, &[]);
    ch(&mut a, 's');
    let secret = "Qz7-S3NT1NEL-new-secret";
    typ(&mut a, secret);
    // Keys meant for the console are part of the secret while typing.
    typ(&mut a, "q?");
    key(&mut a, KeyCode::Backspace);
    key(&mut a, KeyCode::Backspace);
    assert!(!a.should_quit());
    let screen = fixture::render_text(&a, 80, 24, now());
    assert!(!screen.contains("S3NT1NEL"), "{screen}");
    assert!(screen.contains(&"*".repeat(secret.len())), "{screen}");
    assert!(!format!("{:?}", a.wizard.as_ref().unwrap()).contains("S3NT1NEL"));
    key(&mut a, KeyCode::Enter);
    let req = rx.try_recv().unwrap();
    match req.cmd {
        WizardCmd::Stage(s) => assert_eq!(s.expose_secret(), secret),
        other => panic!("expected Stage, got {other:?}"),
    }
    let w = a.wizard().unwrap();
    assert_eq!(w.secret_len, None);
    assert!(w.busy);
    let screen = fixture::render_text(&a, 80, 24, now());
    assert!(!screen.contains("S3NT1NEL") && !screen.contains("*****"));

    // Esc while typing discards what was typed.
    answer(&mut a, "crm-prod", Phase::Staged, &[]);
    ch(&mut a, 's');
    typ(&mut a, "half");
    key(&mut a, KeyCode::Esc);
    assert!(a.wizard().unwrap().secret_len.is_none());
    assert!(rx.try_recv().is_err());
}

#[test]
fn only_the_offered_keys_act_and_never_while_a_step_runs() {
    let (mut a, mut rx) = with_rotation(false);
    ch(&mut a, 'r');
    rx.try_recv().unwrap();
    // Busy until the state arrives: v does nothing.
    ch(&mut a, 'v');
    assert!(rx.try_recv().is_err());
    answer(&mut a, "crm-prod", Phase::Staged, &[]);
    // Promote is not offered before verification; p is not "probe" either inside the wizard.
    ch(&mut a, 'p');
    assert!(rx.try_recv().is_err());
    ch(&mut a, 'v');
    assert_eq!(cmd_name(&rx.try_recv().unwrap()), "crm-prod:Verify");
    ch(&mut a, 'x');
    assert!(rx.try_recv().is_err(), "busy with verify");
    answer(
        &mut a,
        "crm-prod",
        Phase::Staged,
        &[(
            LineKind::Fail,
            "crm-sync: new secret lacks data_extensions_write: the package was edited?",
        )],
    );
    let screen = fixture::render_text(&a, 80, 24, now());
    assert!(
        screen.contains("FAIL crm-sync: new secret lacks"),
        "{screen}"
    );
    ch(&mut a, 'x');
    assert_eq!(cmd_name(&rx.try_recv().unwrap()), "crm-prod:Abort");
}

#[test]
fn activation_needs_the_credential_id_typed() {
    let (mut a, mut rx) = with_rotation(false);
    ch(&mut a, 'r');
    rx.try_recv().unwrap();
    answer(&mut a, "crm-prod", Phase::Promoted, &[]);
    ch(&mut a, 'a');
    typ(&mut a, "crm-pro");
    key(&mut a, KeyCode::Enter);
    assert!(rx.try_recv().is_err(), "a wrong id activates nothing");
    assert!(a.message_text().unwrap().contains("does not match"));
    ch(&mut a, 'a');
    let screen = fixture::render_text(&a, 80, 24, now());
    assert!(screen.contains("no rollback"), "{screen}");
    typ(&mut a, "crm-prod");
    key(&mut a, KeyCode::Enter);
    assert_eq!(cmd_name(&rx.try_recv().unwrap()), "crm-prod:Activate");
}

#[test]
fn audit_entries_show_in_the_detail_view() {
    let (mut a, mut rx) = with_rotation(false);
    key(&mut a, KeyCode::Enter);
    assert_eq!(cmd_name(&rx.try_recv().unwrap()), "crm-prod:Audit");
    let entry = |action: &str, from: &str, to: &str, result: &str, details: &str| {
        crate::store::AuditEntry {
            at: now() - chrono::Duration::minutes(3),
            actor: "alice".into(),
            origin: "cli".into(),
            credential: "crm-prod".into(),
            action: action.into(),
            from: from.into(),
            to: to.into(),
            result: result.into(),
            details: details.into(),
        }
    };
    a.apply_rotation_update(
        Update {
            credential: "crm-prod".into(),
            rotation: None,
            lines: Vec::new(),
            ok: true,
            next: String::new(),
            manual_sink: None,
            audit: vec![
                entry("stage", "idle", "staged", "ok", "new secret staged"),
                entry(
                    "verify-result",
                    "staged",
                    "staged",
                    "failed",
                    "crm-sync: new secret lacks data_extensions_write",
                ),
            ],
        },
        now(),
    );
    let screen = fixture::render_text(&a, 100, 40, now());
    assert!(screen.contains("Rotation audit"), "{screen}");
    let newest = screen.find("verify-result failed").expect("newest entry");
    let oldest = screen
        .find("stage ok (idle -> staged)")
        .expect("oldest entry");
    assert!(newest < oldest, "newest first\n{screen}");
}

#[test]
fn wizard_over_the_console_80x24() {
    let (mut a, mut rx) = with_rotation(false);
    ch(&mut a, 'r');
    rx.try_recv().unwrap();
    answer(
        &mut a,
        "crm-prod",
        Phase::Verified,
        &[
            (
                LineKind::Ok,
                "crm-sync: token granted, scopes data_extensions_write automations_execute, call ok, MID 5100001",
            ),
            (LineKind::Note, "every consumer passed with the new secret"),
        ],
    );
    insta::assert_snapshot!(fixture::render_text(&a, 80, 24, now()));
}

// ---- issue 13: keys ----

#[test]
fn while_too_small_only_q_works() {
    let mut a = app();
    a.resize(60, 20);
    assert!(!ch(&mut a, '?'));
    assert!(
        !a.help_open(),
        "help must not open behind the too-small screen"
    );
    ch(&mut a, '2');
    assert_eq!(a.focus(), Pane::Integrations);
    ch(&mut a, '/');
    assert_eq!(a.editing_filter(), None);
    ch(&mut a, 'q');
    assert!(a.should_quit());
    // Big enough again: keys work.
    let mut a = app();
    a.resize(60, 20);
    a.resize(80, 24);
    ch(&mut a, '?');
    assert!(a.help_open());
}

#[test]
fn read_only_says_a_mutating_key_is_not_available() {
    let (mut a, mut rx, _w) = wired(true);
    for (c, label) in [('p', "p"), ('P', "P"), ('a', "a"), ('r', "r")] {
        assert!(ch(&mut a, c), "{c} redraws to show the notice");
        assert_eq!(
            a.message_text(),
            Some(format!("read-only: {label} is not available").as_str())
        );
    }
    assert!(rx.try_recv().is_err(), "nothing was sent");
    // A key that means nothing anywhere stays silent.
    let (mut a, _rx, _w) = wired(true);
    assert!(!ch(&mut a, 'z'));
    assert_eq!(a.message_text(), None);
}

#[test]
fn n_and_shift_n_step_through_the_filter_matches_and_wrap() {
    let mut a = app();
    ch(&mut a, 'n');
    assert!(a.message_text().unwrap().starts_with("no filter"));
    typ(&mut a, "/crm");
    key(&mut a, KeyCode::Enter);
    let matches = names(&a);
    assert!(matches.len() >= 2, "{matches:?}");
    let first = selected(&a);
    assert_eq!(first, matches[0]);
    ch(&mut a, 'n');
    assert_eq!(selected(&a), matches[1]);
    ch(&mut a, 'N');
    assert_eq!(selected(&a), matches[0]);
    ch(&mut a, 'N');
    assert_eq!(selected(&a), *matches.last().unwrap(), "wraps to the last");
    ch(&mut a, 'n');
    assert_eq!(selected(&a), matches[0], "wraps to the first");
}

/// A snapshot that changes a few integrations re-places only those rows: under every sort key and with a filter,
/// the order is the one a full sort of the new snapshot gives (also for equal names, kept in index order).
#[test]
fn rows_kept_in_place_across_snapshots_equal_a_full_sort() {
    let mut snap = fixture::big_snapshot(200);
    // Two integrations with one name (merged agents can show that).
    let mut twin = (*snap.integrations[7]).clone();
    twin.name = snap.integrations[3].name.clone();
    snap.integrations[7] = Arc::new(twin);
    let statuses = [Status::Ok, Status::Warn, Status::Fail, Status::Unknown];
    for sort_presses in 0..4 {
        for filter in ["", "crm"] {
            let mut app = App::new(Arc::new(snap.clone()), opts(false));
            for _ in 0..sort_presses {
                ch(&mut app, 's');
            }
            if !filter.is_empty() {
                ch(&mut app, '/');
                typ(&mut app, filter);
                key(&mut app, KeyCode::Enter);
            }
            let mut current = snap.clone();
            for round in 0..12usize {
                let mut next = current.clone();
                for k in 0..(1 + round % 5) {
                    let idx = (round * 37 + k * 53) % next.integrations.len();
                    let mut i = (*next.integrations[idx]).clone();
                    i.health = Health {
                        status: statuses[(round + k) % 4],
                        reasons: vec![format!("changed in round {round}")],
                    };
                    i.consecutive_auth_failures = ((round + k) % 3) as u32;
                    i.secret_expires = i
                        .secret_expires
                        .map(|e| e + chrono::Duration::days((round * 3 + k) as i64 - 15));
                    next.integrations[idx] = Arc::new(i);
                }
                app.apply_snapshot(Arc::new(next.clone()));
                let mut fresh = App::new(Arc::new(next.clone()), opts(false));
                for _ in 0..sort_presses {
                    ch(&mut fresh, 's');
                }
                if !filter.is_empty() {
                    ch(&mut fresh, '/');
                    typ(&mut fresh, filter);
                    key(&mut fresh, KeyCode::Enter);
                }
                let order = |a: &App| -> Vec<*const crate::engine::IntegrationView> {
                    a.visible_integrations().map(Arc::as_ptr).collect()
                };
                assert_eq!(
                    order(&app),
                    order(&fresh),
                    "sort {sort_presses}, filter {filter:?}, round {round}"
                );
                current = next;
            }
        }
    }
}
