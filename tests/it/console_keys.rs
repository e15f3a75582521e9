//! `[keys]`: remapped console keys, validated like every setting, and working in the console (keys, help, footer).

use authwatch::config::{self, ConfigError};
use authwatch::tui::fixture::{self, now};
use authwatch::tui::{App, AppOptions, Pane, View};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::path::Path;
use std::sync::Arc;

const BASE: &str = "[[credential]]\nid = \"c\"\nauth_url = \"https://mc123456789012345678901234567.auth.marketingcloudapis.com/\"\nclient_id = \"cid\"\nclient_secret = { env = \"X\" }\n\n[[integration]]\nname = \"i\"\ncredential = \"c\"\n\n";

fn load(extra: &str) -> (tempfile::TempDir, Result<config::Config, ConfigError>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("authwatch.toml");
    std::fs::write(&path, format!("{BASE}{extra}")).unwrap();
    let r = config::load(&path);
    (dir, r)
}

#[test]
fn keys_table_errors_point_at_the_place_and_suggest() {
    // Line 11 is the first line of `extra` (BASE has 10 lines).
    let (_d, r) = load(
        "[keys]\nprobe = \"Entr\"\nacknowlege = \"A\"\nfilter = \"o\"\nsort = \"o\"\nhelp = 5\n",
    );
    let e = r.expect_err("bad [keys] must not load");
    let shown = e.to_string();
    let has = |line: usize, col: usize, msg: &str, help: &str| {
        assert!(
            e.diagnostics().iter().any(|d| d.line == line
                && d.column == col
                && d.message.contains(msg)
                && d.help.as_deref().unwrap_or("").contains(help)),
            "no {line}:{col} {msg:?} / {help:?} in:\n{shown}"
        );
    };
    has(
        12,
        9,
        "unknown key `Entr` for `probe` in [keys]",
        "did you mean `Enter`?",
    );
    has(
        13,
        1,
        "unknown console action `acknowlege` in [keys]",
        "did you mean `acknowledge`?",
    );
    has(
        15,
        8,
        "key `o` in [keys] is given to both `filter` and `sort`",
        "its own key",
    );
    has(16, 8, "`help` in [keys] must be a key name", "help = \"o\"");
    assert!(
        shown.contains("authwatch.toml:12:9: unknown key `Entr`"),
        "{shown}"
    );
}

#[test]
fn keys_table_loads() {
    let (_d, r) =
        load("[keys]\nprobe = \"o\"\nacknowledge = [\"A\", \"Ctrl-A\"]\nquit = \"F10\"\n");
    let c = r.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.keys.remap.len(), 3);
    let ack = c
        .keys
        .remap
        .iter()
        .find(|(a, _)| a == "acknowledge")
        .unwrap();
    assert_eq!(ack.1.len(), 2);
}

/// Every action `[keys]` accepts is a console action, and every console action can be remapped.
#[test]
fn every_console_action_has_a_config_name() {
    let km = authwatch::tui::keymap::Keymap::new(false);
    let names: Vec<&str> = km
        .available()
        .filter_map(|b| b.action.config_name())
        .collect();
    for b in km.available() {
        assert!(
            b.action.config_name().is_some(),
            "{:?} has no [keys] name",
            b.action
        );
    }
    for n in config::KEY_ACTIONS {
        assert!(
            names.contains(n),
            "[keys] accepts `{n}` but no console action has that name"
        );
    }
}

/// A remapped key works, the old key no longer does, and help and footer show the key actually bound.
#[test]
fn a_remapped_key_works_and_help_and_footer_show_it() {
    let (_d, r) = load("[keys]\nfilter = \"o\"\nfocus_log = \"F3\"\nsort = \"Ctrl-S\"\n");
    let c = r.unwrap_or_else(|e| panic!("{e}"));
    let mut a = App::new(
        Arc::new(fixture::snapshot()),
        AppOptions {
            keys: c.keys.clone(),
            ..Default::default()
        },
    );
    let press = |a: &mut App, code: KeyCode, mods: KeyModifiers| {
        a.handle_key(KeyEvent::new(code, mods), now())
    };
    // The old key does nothing now; the new one opens the filter prompt.
    press(&mut a, KeyCode::Char('/'), KeyModifiers::NONE);
    assert_eq!(a.editing_filter(), None);
    press(&mut a, KeyCode::Char('o'), KeyModifiers::NONE);
    assert_eq!(a.editing_filter(), Some(Pane::Integrations));
    press(&mut a, KeyCode::Esc, KeyModifiers::NONE);
    // The footer hints the new key.
    let screen = fixture::render_text(&a, 120, 30, now());
    let footer = screen.lines().last().unwrap();
    assert!(footer.contains("o filter"), "{footer}");
    assert!(footer.contains("Ctrl-S sort"), "{footer}");
    assert!(!footer.contains("/ filter"), "{footer}");
    // F3 focuses the log; '3' does not any more.
    press(&mut a, KeyCode::Char('3'), KeyModifiers::NONE);
    assert_eq!(a.focus(), Pane::Integrations);
    press(&mut a, KeyCode::F(3), KeyModifiers::NONE);
    assert_eq!(a.focus(), Pane::Log);
    // Help lists the keys actually bound.
    press(&mut a, KeyCode::Char('?'), KeyModifiers::NONE);
    let help = fixture::render_text(&a, 120, 40, now());
    let line = |what: &str| {
        help.lines()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("{what} not in help:\n{help}"))
            .to_string()
    };
    assert!(line("filter the list").contains("o "), "{help}");
    assert!(line("focus 401/403 log").contains("F3"), "{help}");
    assert!(line("cycle sort order").contains("Ctrl-S"), "{help}");
    press(&mut a, KeyCode::Esc, KeyModifiers::NONE);
    assert_eq!(a.view(), &View::Main);
}

#[test]
fn example_config_shows_the_keys_table() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("[keys]"), "config.example.toml has no [keys]");
    config::load(&path).unwrap_or_else(|e| panic!("{e}"));
}
