//! The one action registry: keys, names, descriptions, the mutating flag and the layer an action applies in.
//!
//! The key handler, the help overlay, the footer hints and the wizard's key line are all generated from
//! [`BINDINGS`], so a key can never work without being documented, and read-only mode removes mutating actions
//! from all of them at once. Like yazi's keymap, the table has layers: the panes and views of the console, and
//! the layers that sit on top of them (the filter prompt, the rotation wizard, its masked secret field and its
//! typed confirmation). In a text layer, a key the table does not bind is typed into the field.

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
    /// The next / previous row matching the pane's filter (wrapping).
    NextMatch,
    PrevMatch,
    /// Expand / collapse a group of the 401/403 log.
    Expand,
    // Text layers (filter prompt, secret field, typed confirmation).
    /// Keep what was typed (Enter).
    Accept,
    /// Leave the field, dropping what was typed.
    Cancel,
    /// Erase the whole field.
    Erase,
    /// Delete the last character.
    DeleteChar,
    // The rotation wizard.
    WizardGenerate,
    WizardEnterSecret,
    WizardVerify,
    WizardPromote,
    WizardConfirmUpdated,
    WizardAbort,
    WizardActivateInSim,
    WizardActivated,
}

impl Action {
    /// Moves a cursor or scrolls: up, down, top, bottom, page up, page down.
    pub fn is_movement(self) -> bool {
        matches!(
            self,
            Action::Up
                | Action::Down
                | Action::Top
                | Action::Bottom
                | Action::PageUp
                | Action::PageDown
        )
    }
}

/// Where the keyboard is: which pane, view or layer receives the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Integrations,
    Expiry,
    Log,
    Detail,
    Help,
    /// Typing a pane's filter.
    Filter,
    /// The rotation wizard's step keys.
    Wizard,
    /// The wizard's masked secret field.
    SecretInput,
    /// Typing the credential id to confirm activation.
    TypedConfirm,
}

impl Context {
    const fn bit(self) -> u16 {
        match self {
            Context::Integrations => 1,
            Context::Expiry => 2,
            Context::Log => 4,
            Context::Detail => 8,
            Context::Help => 16,
            Context::Filter => 32,
            Context::Wizard => 64,
            Context::SecretInput => 128,
            Context::TypedConfirm => 256,
        }
    }

    /// Layers where an unbound printable key is typed into a field.
    pub fn is_text(self) -> bool {
        matches!(
            self,
            Context::Filter | Context::SecretInput | Context::TypedConfirm
        )
    }
}

const INTEG: u16 = Context::Integrations.bit();
const EXPIRY: u16 = Context::Expiry.bit();
const LOG: u16 = Context::Log.bit();
const DETAIL: u16 = Context::Detail.bit();
const HELP: u16 = Context::Help.bit();
const FILTER: u16 = Context::Filter.bit();
const WIZARD: u16 = Context::Wizard.bit();
const SECRET: u16 = Context::SecretInput.bit();
const CONFIRM: u16 = Context::TypedConfirm.bit();
const PANES: u16 = INTEG | EXPIRY | LOG;
const MAIN: u16 = PANES | DETAIL;
/// The console layer: what the help overlay documents.
const CONSOLE: u16 = MAIN | HELP;
const WIZARD_LAYERS: u16 = WIZARD | SECRET | CONFIRM;
/// One key: a code plus the modifiers that must be held (Shift is ignored for characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
            KeyCode::Backspace => "Backspace".into(),
            KeyCode::Delete => "Delete".into(),
            KeyCode::Insert => "Insert".into(),
            KeyCode::F(n) => format!("F{n}"),
            other => format!("{other:?}"),
        };
        if self.mods.contains(KeyModifiers::CONTROL) {
            format!("Ctrl-{}", base.to_uppercase())
        } else {
            base
        }
    }
}

/// A registry entry. Written with named fields and `..Binding::NEW` for the defaults.
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
    /// The contexts (bits of [`Context`]) the binding applies in.
    pub contexts: u16,
}

impl Binding {
    /// The defaults every entry starts from: no hint, not mutating.
    pub const NEW: Binding = Binding {
        action: Action::Quit,
        keys: &[],
        hint: None,
        description: "",
        mutating: false,
        contexts: 0,
    };

    pub fn applies_in(&self, ctx: Context) -> bool {
        self.contexts & ctx.bit() != 0
    }
}

const UP: Key = Key::plain(KeyCode::Up);
const DOWN: Key = Key::plain(KeyCode::Down);
const PGUP: Key = Key::plain(KeyCode::PageUp);
const PGDN: Key = Key::plain(KeyCode::PageDown);
const ENTER: Key = Key::plain(KeyCode::Enter);
const ESC: Key = Key::plain(KeyCode::Esc);
const BACKSPACE: Key = Key::plain(KeyCode::Backspace);

/// Every action the console knows, in help order. Earlier entries win when two share a key in one context.
pub const BINDINGS: &[Binding] = &[
    // ---- the console layer: panes, detail, help ----
    Binding {
        action: Action::Quit,
        keys: &[Key::ch('q'), Key::ctrl('c')],
        hint: Some("quit"),
        description: "quit",
        contexts: CONSOLE,
        ..Binding::NEW
    },
    Binding {
        action: Action::Help,
        keys: &[Key::ch('?')],
        hint: Some("help"),
        description: "show / hide this help",
        contexts: CONSOLE,
        ..Binding::NEW
    },
    Binding {
        action: Action::Back,
        keys: &[ESC],
        hint: Some("back"),
        description: "back / clear filter",
        contexts: CONSOLE,
        ..Binding::NEW
    },
    Binding {
        action: Action::Open,
        keys: &[ENTER],
        hint: Some("detail"),
        description: "open detail / drill in",
        contexts: PANES,
        ..Binding::NEW
    },
    Binding {
        action: Action::FocusNext,
        keys: &[Key::plain(KeyCode::Tab)],
        description: "focus next pane",
        contexts: PANES,
        ..Binding::NEW
    },
    Binding {
        action: Action::FocusPrev,
        keys: &[Key::plain(KeyCode::BackTab)],
        description: "focus previous pane",
        contexts: PANES,
        ..Binding::NEW
    },
    Binding {
        action: Action::FocusIntegrations,
        keys: &[Key::ch('1')],
        description: "focus Integrations",
        contexts: MAIN,
        ..Binding::NEW
    },
    Binding {
        action: Action::FocusExpiry,
        keys: &[Key::ch('2')],
        description: "focus Secret expiry",
        contexts: MAIN,
        ..Binding::NEW
    },
    Binding {
        action: Action::FocusLog,
        keys: &[Key::ch('3')],
        description: "focus 401/403 log",
        contexts: MAIN,
        ..Binding::NEW
    },
    Binding {
        action: Action::Up,
        keys: &[Key::ch('k'), UP],
        description: "move up / scroll up",
        contexts: CONSOLE,
        ..Binding::NEW
    },
    Binding {
        action: Action::Down,
        keys: &[Key::ch('j'), DOWN],
        description: "move down / scroll down",
        contexts: CONSOLE,
        ..Binding::NEW
    },
    Binding {
        action: Action::Top,
        keys: &[Key::ch('g'), Key::plain(KeyCode::Home)],
        description: "first row / follow log",
        contexts: CONSOLE,
        ..Binding::NEW
    },
    Binding {
        action: Action::Bottom,
        keys: &[Key::ch('G'), Key::plain(KeyCode::End)],
        description: "last row",
        contexts: CONSOLE,
        ..Binding::NEW
    },
    Binding {
        action: Action::PageUp,
        keys: &[PGUP],
        description: "page up",
        contexts: CONSOLE,
        ..Binding::NEW
    },
    Binding {
        action: Action::PageDown,
        keys: &[PGDN],
        description: "page down",
        contexts: CONSOLE,
        ..Binding::NEW
    },
    Binding {
        action: Action::PrevMonth,
        keys: &[Key::ch('['), Key::ch('h'), Key::plain(KeyCode::Left)],
        hint: Some("month-"),
        description: "previous month",
        contexts: EXPIRY,
        ..Binding::NEW
    },
    Binding {
        action: Action::NextMonth,
        keys: &[Key::ch(']'), Key::ch('l'), Key::plain(KeyCode::Right)],
        hint: Some("month+"),
        description: "next month",
        contexts: EXPIRY,
        ..Binding::NEW
    },
    Binding {
        action: Action::Filter,
        keys: &[Key::ch('/')],
        hint: Some("filter"),
        description: "filter the list",
        contexts: PANES,
        ..Binding::NEW
    },
    Binding {
        action: Action::NextMatch,
        keys: &[Key::ch('n')],
        description: "next filter match",
        contexts: PANES,
        ..Binding::NEW
    },
    Binding {
        action: Action::PrevMatch,
        keys: &[Key::ch('N')],
        description: "previous filter match",
        contexts: PANES,
        ..Binding::NEW
    },
    Binding {
        action: Action::Expand,
        keys: &[Key::ch(' '), Key::ch('x')],
        hint: Some("expand"),
        description: "expand / collapse a 401/403 group",
        contexts: LOG,
        ..Binding::NEW
    },
    Binding {
        action: Action::Sort,
        keys: &[Key::ch('s')],
        hint: Some("sort"),
        description: "cycle sort order",
        contexts: INTEG,
        ..Binding::NEW
    },
    Binding {
        action: Action::ProbeSelected,
        keys: &[Key::ch('p')],
        hint: Some("probe"),
        description: "probe selected now",
        mutating: true,
        contexts: INTEG | DETAIL,
    },
    Binding {
        action: Action::ProbeAll,
        keys: &[Key::ch('P')],
        hint: Some("probe all"),
        description: "probe all now",
        mutating: true,
        contexts: MAIN,
    },
    Binding {
        action: Action::Acknowledge,
        keys: &[Key::ch('a')],
        hint: Some("ack"),
        description: "acknowledge the selected incident (again: take it back)",
        mutating: true,
        contexts: INTEG | DETAIL,
    },
    Binding {
        action: Action::Rotate,
        keys: &[Key::ch('r')],
        hint: Some("rotate"),
        description: "rotation wizard",
        mutating: true,
        contexts: INTEG | EXPIRY | DETAIL,
    },
    Binding {
        action: Action::Freeze,
        keys: &[Key::ch('f')],
        hint: Some("freeze"),
        description: "freeze / unfreeze",
        contexts: MAIN,
        ..Binding::NEW
    },
    Binding {
        action: Action::Repaint,
        keys: &[Key::ctrl('l')],
        description: "repaint the screen",
        contexts: CONSOLE,
        ..Binding::NEW
    },
    // ---- the filter prompt: other printable keys are typed ----
    Binding {
        action: Action::Accept,
        keys: &[ENTER],
        hint: Some("keep"),
        description: "keep the filter",
        contexts: FILTER,
        ..Binding::NEW
    },
    Binding {
        action: Action::Cancel,
        keys: &[ESC],
        hint: Some("clear"),
        description: "clear the filter",
        contexts: FILTER,
        ..Binding::NEW
    },
    Binding {
        action: Action::Erase,
        keys: &[Key::ctrl('u')],
        hint: Some("erase"),
        description: "erase what was typed",
        contexts: FILTER | SECRET,
        ..Binding::NEW
    },
    Binding {
        action: Action::Quit,
        keys: &[Key::ctrl('c')],
        description: "quit",
        contexts: FILTER,
        ..Binding::NEW
    },
    Binding {
        action: Action::DeleteChar,
        keys: &[BACKSPACE],
        description: "delete the last character",
        contexts: FILTER | SECRET | CONFIRM,
        ..Binding::NEW
    },
    Binding {
        action: Action::Up,
        keys: &[UP],
        description: "move up while filtering",
        contexts: FILTER,
        ..Binding::NEW
    },
    Binding {
        action: Action::Down,
        keys: &[DOWN],
        description: "move down while filtering",
        contexts: FILTER,
        ..Binding::NEW
    },
    Binding {
        action: Action::PageUp,
        keys: &[PGUP],
        description: "page up while filtering",
        contexts: FILTER,
        ..Binding::NEW
    },
    Binding {
        action: Action::PageDown,
        keys: &[PGDN],
        description: "page down while filtering",
        contexts: FILTER,
        ..Binding::NEW
    },
    // ---- the rotation wizard and its fields (the wizard lists which of its keys apply in each step) ----
    Binding {
        action: Action::Quit,
        keys: &[Key::ctrl('c')],
        hint: Some("quit"),
        description: "quit",
        contexts: WIZARD_LAYERS,
        ..Binding::NEW
    },
    Binding {
        action: Action::WizardGenerate,
        keys: &[Key::ch('g')],
        description: "generate a secret in the simulator (demo)",
        mutating: true,
        contexts: WIZARD,
        ..Binding::NEW
    },
    Binding {
        action: Action::WizardEnterSecret,
        keys: &[Key::ch('s')],
        description: "enter the new secret",
        mutating: true,
        contexts: WIZARD,
        ..Binding::NEW
    },
    Binding {
        action: Action::WizardVerify,
        keys: &[Key::ch('v')],
        description: "verify the staged secret with every consumer",
        mutating: true,
        contexts: WIZARD,
        ..Binding::NEW
    },
    Binding {
        action: Action::WizardPromote,
        keys: &[Key::ch('p')],
        description: "promote the verified secret",
        mutating: true,
        contexts: WIZARD,
        ..Binding::NEW
    },
    Binding {
        action: Action::WizardConfirmUpdated,
        keys: &[Key::ch('c')],
        description: "confirm every consumer was updated by hand",
        mutating: true,
        contexts: WIZARD,
        ..Binding::NEW
    },
    Binding {
        action: Action::WizardAbort,
        keys: &[Key::ch('x')],
        description: "abort the rotation",
        mutating: true,
        contexts: WIZARD,
        ..Binding::NEW
    },
    Binding {
        action: Action::WizardActivateInSim,
        keys: &[Key::ch('A')],
        description: "activate in the simulator (demo)",
        mutating: true,
        contexts: WIZARD,
        ..Binding::NEW
    },
    Binding {
        action: Action::WizardActivated,
        keys: &[Key::ch('a')],
        description: "the secret was activated in Setup",
        mutating: true,
        contexts: WIZARD,
        ..Binding::NEW
    },
    Binding {
        action: Action::Back,
        keys: &[ESC],
        description: "close the wizard",
        contexts: WIZARD,
        ..Binding::NEW
    },
    Binding {
        action: Action::Accept,
        keys: &[ENTER],
        description: "stage the typed secret / confirm activation",
        contexts: SECRET | CONFIRM,
        ..Binding::NEW
    },
    Binding {
        action: Action::Cancel,
        keys: &[ESC],
        description: "cancel",
        contexts: SECRET | CONFIRM,
        ..Binding::NEW
    },
];

impl Action {
    /// The name `[keys]` in the configuration uses for a console action (None: not remappable).
    pub fn config_name(self) -> Option<&'static str> {
        Some(match self {
            Action::Quit => "quit",
            Action::Help => "help",
            Action::Back => "back",
            Action::Open => "open",
            Action::FocusNext => "focus_next",
            Action::FocusPrev => "focus_prev",
            Action::FocusIntegrations => "focus_integrations",
            Action::FocusExpiry => "focus_expiry",
            Action::FocusLog => "focus_log",
            Action::Up => "up",
            Action::Down => "down",
            Action::Top => "top",
            Action::Bottom => "bottom",
            Action::PageUp => "page_up",
            Action::PageDown => "page_down",
            Action::PrevMonth => "prev_month",
            Action::NextMonth => "next_month",
            Action::Filter => "filter",
            Action::NextMatch => "next_match",
            Action::PrevMatch => "prev_match",
            Action::Expand => "expand",
            Action::Sort => "sort",
            Action::ProbeSelected => "probe",
            Action::ProbeAll => "probe_all",
            Action::Acknowledge => "acknowledge",
            Action::Rotate => "rotate",
            Action::Freeze => "freeze",
            Action::Repaint => "repaint",
            _ => return None,
        })
    }
}

/// The registry as seen in one mode: read-only drops the mutating entries everywhere; `[keys]` in the
/// configuration replaces the keys of console actions (a remapped key is taken away from whatever console
/// action had it, so no key means two things).
#[derive(Debug, Clone, Default)]
pub struct Keymap {
    pub read_only: bool,
    remap: Vec<(Action, Vec<Key>)>,
}

impl Keymap {
    pub fn new(read_only: bool) -> Self {
        Self {
            read_only,
            remap: Vec::new(),
        }
    }

    /// With the configuration's `[keys]` (validated there: known actions, valid keys, no key twice).
    pub fn with_remap(mut self, keys: &crate::config::KeyBindings) -> Self {
        self.remap = keys
            .remap
            .iter()
            .filter_map(|(name, specs)| {
                let action = BINDINGS
                    .iter()
                    .map(|b| b.action)
                    .find(|a| a.config_name() == Some(name.as_str()))?;
                let keys = specs
                    .iter()
                    .map(|k| Key {
                        code: k.code,
                        mods: if k.ctrl {
                            KeyModifiers::CONTROL
                        } else {
                            KeyModifiers::NONE
                        },
                    })
                    .collect();
                Some((action, keys))
            })
            .collect();
        self
    }

    /// The keys of a binding in this keymap: its own, or the remapped ones for a console action.
    pub fn keys(&self, b: &Binding) -> Vec<Key> {
        if b.contexts & CONSOLE == 0 {
            return b.keys.to_vec();
        }
        if let Some((_, keys)) = self.remap.iter().find(|(a, _)| *a == b.action) {
            return keys.clone();
        }
        b.keys
            .iter()
            .filter(|k| !self.remap.iter().any(|(_, ks)| ks.contains(k)))
            .copied()
            .collect()
    }

    /// "j/Down" for help.
    pub fn keys_label(&self, b: &Binding) -> String {
        let keys = self.keys(b);
        if keys.is_empty() {
            return "(no key)".into();
        }
        keys.iter().map(Key::label).collect::<Vec<_>>().join("/")
    }

    /// Every console binding available in this mode (help lists these; the layers document themselves where
    /// they are open).
    pub fn available(&self) -> impl Iterator<Item = &'static Binding> + '_ {
        BINDINGS
            .iter()
            .filter(|b| b.contexts & CONSOLE != 0)
            .filter(move |b| !(self.read_only && b.mutating))
    }

    /// The bindings that apply in a context.
    pub fn in_context(&self, ctx: Context) -> impl Iterator<Item = &'static Binding> + '_ {
        BINDINGS
            .iter()
            .filter(move |b| !(self.read_only && b.mutating))
            .filter(move |b| b.applies_in(ctx))
    }

    /// Which action a key press means in a context; `None` when unbound (or removed by read-only mode).
    pub fn action_for(&self, ctx: Context, ev: &KeyEvent) -> Option<Action> {
        if ev.kind == KeyEventKind::Release {
            return None;
        }
        self.in_context(ctx)
            .find(|b| self.keys(b).iter().any(|k| k.matches(ev)))
            .map(|b| b.action)
    }

    /// The binding read-only mode removed for this key, if any (to say so instead of doing nothing).
    pub fn stripped(&self, ctx: Context, ev: &KeyEvent) -> Option<&'static Binding> {
        if !self.read_only {
            return None;
        }
        let all = Keymap {
            read_only: false,
            remap: self.remap.clone(),
        };
        let b = all
            .in_context(ctx)
            .find(|b| all.keys(b).iter().any(|k| k.matches(ev)))?;
        b.mutating.then_some(b)
    }

    /// How the key of an action is written in a context (its first key), for lines that list keys.
    pub fn key_label(&self, ctx: Context, action: Action) -> Option<String> {
        self.in_context(ctx)
            .find(|b| b.action == action)
            .and_then(|b| self.keys(b).first().map(Key::label))
    }

    /// Footer hints for a context: (key, label), in registry order. "Esc back" only shows where there is a "back".
    pub fn hints(&self, ctx: Context) -> Vec<(String, &'static str)> {
        let has_back = matches!(ctx, Context::Detail | Context::Help);
        self.in_context(ctx)
            .filter(|b| b.action != Action::Back || has_back)
            .filter_map(|b| {
                let key = self.keys(b).first()?.label();
                b.hint.map(|h| (key, h))
            })
            .collect()
    }
}

/// A printable character typed into a text layer (no Ctrl or Alt held).
pub fn typed_char(ev: &KeyEvent) -> Option<char> {
    match ev.code {
        KeyCode::Char(c)
            if !ev
                .modifiers
                .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
        {
            Some(c)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_CONTEXTS: [Context; 9] = [
        Context::Integrations,
        Context::Expiry,
        Context::Log,
        Context::Detail,
        Context::Help,
        Context::Filter,
        Context::Wizard,
        Context::SecretInput,
        Context::TypedConfirm,
    ];

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
        assert_eq!(km.action_for(Context::Wizard, &p), None);
        // ... but the key is known, so the console can say why nothing happens.
        assert_eq!(
            km.stripped(Context::Integrations, &p).map(|b| b.action),
            Some(Action::ProbeSelected)
        );
        let j = key(KeyCode::Char('j'), KeyModifiers::NONE);
        assert!(km.stripped(Context::Integrations, &j).is_none());
        assert!(
            Keymap::new(false)
                .stripped(Context::Integrations, &p)
                .is_none()
        );
    }

    #[test]
    fn text_layers_type_letters_and_keep_their_own_keys() {
        let km = Keymap::new(false);
        for ctx in [Context::Filter, Context::SecretInput, Context::TypedConfirm] {
            assert!(ctx.is_text());
            // 'q', 'p', 'j' are typed, not quit / probe / move.
            for c in ['q', 'p', 'j', '/', '?'] {
                let ev = key(KeyCode::Char(c), KeyModifiers::NONE);
                assert_eq!(km.action_for(ctx, &ev), None, "{ctx:?} {c}");
                assert_eq!(typed_char(&ev), Some(c));
            }
            let ctrl_c = key(KeyCode::Char('c'), KeyModifiers::CONTROL);
            assert_eq!(km.action_for(ctx, &ctrl_c), Some(Action::Quit));
            assert_eq!(typed_char(&ctrl_c), None);
        }
        assert_eq!(
            km.hints(Context::Filter),
            vec![
                ("Enter".to_string(), "keep"),
                ("Esc".to_string(), "clear"),
                ("Ctrl-U".to_string(), "erase")
            ]
        );
        assert_eq!(
            km.hints(Context::Wizard),
            vec![("Ctrl-C".to_string(), "quit")]
        );
    }

    #[test]
    fn help_lists_the_console_layer_only() {
        let km = Keymap::new(false);
        assert!(km.available().all(|b| b.contexts & CONSOLE != 0));
        assert!(!km.available().any(|b| b.action == Action::WizardVerify));
    }

    #[test]
    fn no_key_is_bound_twice_in_one_context() {
        for ctx in ALL_CONTEXTS {
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
