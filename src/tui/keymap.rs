//! The one action registry: keys, names, descriptions, the mutating flag and where an action applies.
//!
//! The key handler, the help overlay and the footer hints are all generated from [`BINDINGS`], so a key can never
//! work without being documented, and read-only mode removes mutating actions from all three at once.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What a key asks the console to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Quit,
    Help,
    FocusNext,
    FocusPrev,
    FocusIntegrations,
    FocusExpiry,
    FocusLog,
    Up,
    Down,
    Top,
    Bottom,
    PageUp,
    PageDown,
    PrevMonth,
    NextMonth,
    Open,
    Back,
    Filter,
    Sort,
    ProbeSelected,
    ProbeAll,
    Acknowledge,
    Rotate,
    Freeze,
    Repaint,
}

/// Where the keyboard is: which pane or view receives the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Integrations,
    Expiry,
    Log,
    Detail,
    Help,
}

impl Context {
    const fn bit(self) -> u8 {
        match self {
            Context::Integrations => 1,
            Context::Expiry => 2,
            Context::Log => 4,
            Context::Detail => 8,
            Context::Help => 16,
        }
    }
}

const INTEG: u8 = Context::Integrations.bit();
const EXPIRY: u8 = Context::Expiry.bit();
const LOG: u8 = Context::Log.bit();
const DETAIL: u8 = Context::Detail.bit();
const HELP: u8 = Context::Help.bit();
const PANES: u8 = INTEG | EXPIRY | LOG;
const MAIN: u8 = PANES | DETAIL;
const ALL: u8 = MAIN | HELP;

/// One key: a code plus the modifiers that must be held (Shift is ignored for characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

impl Key {
    pub const fn plain(code: KeyCode) -> Self {
        Self {
            code,
            mods: KeyModifiers::NONE,
        }
    }
    pub const fn ch(c: char) -> Self {
        Self::plain(KeyCode::Char(c))
    }
    pub const fn ctrl(c: char) -> Self {
        Self {
            code: KeyCode::Char(c),
            mods: KeyModifiers::CONTROL,
        }
    }

    /// Does a terminal key event mean this key?
    pub fn matches(&self, ev: &KeyEvent) -> bool {
        // Shift is implied by the character itself ('P', '?', 'G') and by BackTab; terminals disagree on reporting it.
        let ignore = KeyModifiers::SHIFT;
        let want = self.mods - ignore;
        let got = ev.modifiers - ignore;
        let code_eq = match (self.code, ev.code) {
            (KeyCode::Char(a), KeyCode::Char(b)) => {
                a == b || (want.contains(KeyModifiers::CONTROL) && a.eq_ignore_ascii_case(&b))
            }
            (a, b) => a == b,
        };
        code_eq && want == got
    }

    /// How the key is written in help and hints.
    pub fn label(&self) -> String {
        let base = match self.code {
            KeyCode::Char(' ') => "Space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Enter => "Enter".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::BackTab => "Shift-Tab".into(),
            KeyCode::Up => "Up".into(),
            KeyCode::Down => "Down".into(),
            KeyCode::Left => "Left".into(),
            KeyCode::Right => "Right".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            other => format!("{other:?}"),
        };
        if self.mods.contains(KeyModifiers::CONTROL) {
            format!("Ctrl-{}", base.to_uppercase())
        } else {
            base
        }
    }
}

/// A registry entry.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub action: Action,
    pub keys: &'static [Key],
    /// Short label for the footer; `None` keeps the action out of the footer (still in help).
    pub hint: Option<&'static str>,
    /// One line for the help overlay.
    pub description: &'static str,
    /// Changes something outside the console (sends a command to the engine): removed in read-only mode.
    pub mutating: bool,
    contexts: u8,
}

impl Binding {
    pub fn applies_in(&self, ctx: Context) -> bool {
        self.contexts & ctx.bit() != 0
    }
    /// "j/Down" for help, first key only for hints.
    pub fn keys_label(&self) -> String {
        self.keys
            .iter()
            .map(Key::label)
            .collect::<Vec<_>>()
            .join("/")
    }
}

const fn b(
    action: Action,
    keys: &'static [Key],
    hint: Option<&'static str>,
    description: &'static str,
    mutating: bool,
    contexts: u8,
) -> Binding {
    Binding {
        action,
        keys,
        hint,
        description,
        mutating,
        contexts,
    }
}

/// Every action the console knows, in help order. Earlier entries win when two share a key in one context.
pub const BINDINGS: &[Binding] = &[
    b(
        Action::Quit,
        &[Key::ch('q'), Key::ctrl('c')],
        Some("quit"),
        "quit",
        false,
        ALL,
    ),
    b(
        Action::Help,
        &[Key::ch('?')],
        Some("help"),
        "show / hide this help",
        false,
        ALL,
    ),
    b(
        Action::Back,
        &[Key::plain(KeyCode::Esc)],
        Some("back"),
        "back / clear filter",
        false,
        ALL,
    ),
    b(
        Action::Open,
        &[Key::plain(KeyCode::Enter)],
        Some("detail"),
        "open detail / drill in",
        false,
        PANES,
    ),
    b(
        Action::FocusNext,
        &[Key::plain(KeyCode::Tab)],
        None,
        "focus next pane",
        false,
        PANES,
    ),
    b(
        Action::FocusPrev,
        &[Key::plain(KeyCode::BackTab)],
        None,
        "focus previous pane",
        false,
        PANES,
    ),
    b(
        Action::FocusIntegrations,
        &[Key::ch('1')],
        None,
        "focus Integrations",
        false,
        MAIN,
    ),
    b(
        Action::FocusExpiry,
        &[Key::ch('2')],
        None,
        "focus Secret expiry",
        false,
        MAIN,
    ),
    b(
        Action::FocusLog,
        &[Key::ch('3')],
        None,
        "focus 401/403 log",
        false,
        MAIN,
    ),
    b(
        Action::Up,
        &[Key::ch('k'), Key::plain(KeyCode::Up)],
        None,
        "move up / scroll up",
        false,
        ALL,
    ),
    b(
        Action::Down,
        &[Key::ch('j'), Key::plain(KeyCode::Down)],
        None,
        "move down / scroll down",
        false,
        ALL,
    ),
    b(
        Action::Top,
        &[Key::ch('g'), Key::plain(KeyCode::Home)],
        None,
        "first row / follow log",
        false,
        ALL,
    ),
    b(
        Action::Bottom,
        &[Key::ch('G'), Key::plain(KeyCode::End)],
        None,
        "last row",
        false,
        ALL,
    ),
    b(
        Action::PageUp,
        &[Key::plain(KeyCode::PageUp)],
        None,
        "page up",
        false,
        ALL,
    ),
    b(
        Action::PageDown,
        &[Key::plain(KeyCode::PageDown)],
        None,
        "page down",
        false,
        ALL,
    ),
    b(
        Action::PrevMonth,
        &[Key::ch('['), Key::ch('h'), Key::plain(KeyCode::Left)],
        Some("month-"),
        "previous month",
        false,
        EXPIRY,
    ),
    b(
        Action::NextMonth,
        &[Key::ch(']'), Key::ch('l'), Key::plain(KeyCode::Right)],
        Some("month+"),
        "next month",
        false,
        EXPIRY,
    ),
    b(
        Action::Filter,
        &[Key::ch('/')],
        Some("filter"),
        "filter the list",
        false,
        PANES,
    ),
    b(
        Action::Sort,
        &[Key::ch('s')],
        Some("sort"),
        "cycle sort order",
        false,
        INTEG,
    ),
    b(
        Action::ProbeSelected,
        &[Key::ch('p')],
        Some("probe"),
        "probe selected now",
        true,
        INTEG | DETAIL,
    ),
    b(
        Action::ProbeAll,
        &[Key::ch('P')],
        Some("probe all"),
        "probe all now",
        true,
        MAIN,
    ),
    b(
        Action::Acknowledge,
        &[Key::ch('a')],
        Some("ack"),
        "acknowledge the selected incident",
        true,
        INTEG | DETAIL,
    ),
    b(
        Action::Rotate,
        &[Key::ch('r')],
        Some("rotate"),
        "rotation wizard",
        true,
        INTEG | EXPIRY | DETAIL,
    ),
    b(
        Action::Freeze,
        &[Key::ch('f')],
        Some("freeze"),
        "freeze / unfreeze",
        false,
        MAIN,
    ),
    b(
        Action::Repaint,
        &[Key::ctrl('l')],
        None,
        "repaint the screen",
        false,
        ALL,
    ),
];

/// The registry as seen in one mode: read-only drops the mutating entries everywhere.
#[derive(Debug, Clone, Copy)]
pub struct Keymap {
    pub read_only: bool,
}

impl Keymap {
    pub fn new(read_only: bool) -> Self {
        Self { read_only }
    }

    /// Every binding available in this mode (help lists these).
    pub fn available(&self) -> impl Iterator<Item = &'static Binding> + '_ {
        BINDINGS
            .iter()
            .filter(move |b| !(self.read_only && b.mutating))
    }

    /// The bindings that apply in a context.
    pub fn in_context(&self, ctx: Context) -> impl Iterator<Item = &'static Binding> + '_ {
        self.available().filter(move |b| b.applies_in(ctx))
    }

    /// Which action a key press means in a context; `None` when unbound (or removed by read-only mode).
    pub fn action_for(&self, ctx: Context, ev: &KeyEvent) -> Option<Action> {
        if ev.kind == KeyEventKind::Release {
            return None;
        }
        self.in_context(ctx)
            .find(|b| b.keys.iter().any(|k| k.matches(ev)))
            .map(|b| b.action)
    }

    /// Footer hints for a context: (key, label), in registry order. "Esc back" only shows where there is a "back".
    pub fn hints(&self, ctx: Context) -> Vec<(String, &'static str)> {
        let has_back = matches!(ctx, Context::Detail | Context::Help);
        self.in_context(ctx)
            .filter(|b| b.action != Action::Back || has_back)
            .filter_map(|b| b.hint.map(|h| (b.keys[0].label(), h)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    #[test]
    fn every_binding_has_a_key_and_description() {
        for b in BINDINGS {
            assert!(!b.keys.is_empty(), "{:?}", b.action);
            assert!(!b.description.is_empty(), "{:?}", b.action);
            assert!(b.contexts != 0, "{:?}", b.action);
        }
    }

    #[test]
    fn shift_is_ignored_for_characters_and_backtab() {
        let km = Keymap::new(false);
        let ctx = Context::Integrations;
        assert_eq!(
            km.action_for(ctx, &key(KeyCode::Char('P'), KeyModifiers::SHIFT)),
            Some(Action::ProbeAll)
        );
        assert_eq!(
            km.action_for(ctx, &key(KeyCode::Char('?'), KeyModifiers::SHIFT)),
            Some(Action::Help)
        );
        assert_eq!(
            km.action_for(ctx, &key(KeyCode::BackTab, KeyModifiers::SHIFT)),
            Some(Action::FocusPrev)
        );
        assert_eq!(
            km.action_for(ctx, &key(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(
            km.action_for(ctx, &key(KeyCode::Char('l'), KeyModifiers::CONTROL)),
            Some(Action::Repaint)
        );
        // Plain 'l' is not Ctrl-L and means nothing in the integrations pane.
        assert_eq!(
            km.action_for(ctx, &key(KeyCode::Char('l'), KeyModifiers::NONE)),
            None
        );
    }

    #[test]
    fn read_only_removes_mutating_actions() {
        let km = Keymap::new(true);
        let p = key(KeyCode::Char('p'), KeyModifiers::NONE);
        assert_eq!(km.action_for(Context::Integrations, &p), None);
        assert!(km.available().all(|b| !b.mutating));
        assert!(
            km.hints(Context::Integrations)
                .iter()
                .all(|(_, h)| !h.starts_with("probe"))
        );
    }

    #[test]
    fn no_key_is_bound_twice_in_one_context() {
        for ctx in [
            Context::Integrations,
            Context::Expiry,
            Context::Log,
            Context::Detail,
            Context::Help,
        ] {
            let mut seen: Vec<Key> = Vec::new();
            for b in Keymap::new(false).in_context(ctx) {
                for k in b.keys {
                    assert!(!seen.contains(k), "{ctx:?}: {:?} bound twice", k.label());
                    seen.push(*k);
                }
            }
        }
    }
}
