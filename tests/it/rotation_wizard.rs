//! Snapshots of the rotation wizard at 80x24.

use authwatch::rotation::fsm::{Phase, Rotation};
use authwatch::rotation::{Line, LineKind};
use authwatch::tui::fixture::{buffer_text, now};
use authwatch::tui::keymap::Keymap;
use authwatch::tui::theme::Theme;
use authwatch::tui::wizard::{self, Wizard};
use chrono::Duration;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn screen(w: &Wizard) -> String {
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let theme = Theme::new(false, false);
    term.draw(|f| wizard::render(f, f.area(), w, &theme, &Keymap::new(false), now()))
        .unwrap();
    buffer_text(term.backend().buffer())
}

fn wizard(phase: Phase) -> Wizard {
    let mut r = Rotation::idle("crm-package");
    r.phase = phase;
    r.staged_at = Some(now() - Duration::minutes(2));
    r.accept_after = Some(now() + Duration::minutes(3));
    let mut w = Wizard::new(r);
    w.owner = Some("Jane Doe <jane@acme.example>".into());
    w.consumers = vec![
        (
            "crm-sync".into(),
            Some("crm-ops".into()),
            Some("NA Retail".into()),
        ),
        ("journey-hub".into(), Some("lifecycle".into()), None),
    ];
    w
}

#[test]
fn wizard_entering_a_secret_80x24() {
    let mut w = wizard(Phase::Idle);
    w.secret_len = Some(24);
    let text = screen(&w);
    assert!(text.contains("************************"));
    insta::assert_snapshot!(text);
}

#[test]
fn wizard_verify_failed_80x24() {
    let mut w = wizard(Phase::Staged);
    w.checks = vec![
        Line {
            kind: LineKind::Note,
            text: "SFMC may not accept the staged secret yet (until about 12:03:00)".into(),
        },
        Line {
            kind: LineKind::Fail,
            text: "crm-sync: new secret lacks data_extensions_write: the package was edited?"
                .into(),
        },
        Line {
            kind: LineKind::Ok,
            text: "journey-hub: token granted, call ok, MID 5100002".into(),
        },
    ];
    insta::assert_snapshot!(screen(&w));
}

#[test]
fn wizard_confirm_activation_80x24() {
    let mut w = wizard(Phase::Promoted);
    w.confirm_typed = Some("crm-pa".into());
    w.demo = true;
    insta::assert_snapshot!(screen(&w));
}

#[test]
fn wizard_completed_80x24() {
    let mut w = wizard(Phase::Completed);
    w.rotation.new_expires = Some(now() + Duration::days(180));
    w.checks = vec![
        Line {
            kind: LineKind::Ok,
            text: "old secret refused (401 invalid_client)".into(),
        },
        Line {
            kind: LineKind::Ok,
            text: "crm-sync: token granted, scopes data_extensions_read, call ok, MID 5100001"
                .into(),
        },
    ];
    insta::assert_snapshot!(screen(&w));
}
