//! `[keys]`: the console's keys, remapped. Each line names a console action and the key (or keys) for it:
//!
//! ```toml
//! [keys]
//! probe = "o"
//! acknowledge = ["A", "Ctrl-A"]
//! ```
//!
//! Unknown actions and key names are reported at file:line:col with the nearest valid name, like every setting.

use super::read::{Ctx, Excerpt, Span, did_you_mean};
use crossterm::event::KeyCode;
use toml::de::{DeTable, DeValue};

/// The console actions `[keys]` can remap (the names the console's help lists them under).
pub const KEY_ACTIONS: &[&str] = &[
    "quit",
    "help",
    "back",
    "open",
    "focus_next",
    "focus_prev",
    "focus_integrations",
    "focus_expiry",
    "focus_log",
    "up",
    "down",
    "top",
    "bottom",
    "page_up",
    "page_down",
    "prev_month",
    "next_month",
    "filter",
    "next_match",
    "prev_match",
    "expand",
    "sort",
    "probe",
    "probe_all",
    "acknowledge",
    "rotate",
    "freeze",
    "repaint",
];

/// Named keys (case does not matter); any single character stands for itself, `Ctrl-` in front adds Control.
pub const KEY_NAMES: &[&str] = &[
    "Enter",
    "Esc",
    "Tab",
    "Shift-Tab",
    "Space",
    "Backspace",
    "Delete",
    "Insert",
    "Up",
    "Down",
    "Left",
    "Right",
    "Home",
    "End",
    "PgUp",
    "PgDn",
    "F1",
    "F2",
    "F3",
    "F4",
    "F5",
    "F6",
    "F7",
    "F8",
    "F9",
    "F10",
    "F11",
    "F12",
];

/// One key of a remapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeySpec {
    pub code: KeyCode,
    pub ctrl: bool,
}

/// The validated `[keys]` table: action name (one of [`KEY_ACTIONS`]) and its keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyBindings {
    pub remap: Vec<(String, Vec<KeySpec>)>,
}

/// Parse a key name: `"o"`, `"?"`, `"Enter"`, `"F5"`, `"Ctrl-R"`.
pub fn parse_key(s: &str) -> Option<KeySpec> {
    let (ctrl, rest) = match s.get(..5) {
        Some(p) if p.eq_ignore_ascii_case("ctrl-") && s.len() > 5 => (true, &s[5..]),
        _ => (false, s),
    };
    let mut chars = rest.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        if c.is_control() {
            return None;
        }
        let c = if ctrl { c.to_ascii_lowercase() } else { c };
        return Some(KeySpec {
            code: KeyCode::Char(c),
            ctrl,
        });
    }
    let code = match rest.to_ascii_lowercase().as_str() {
        "enter" => KeyCode::Enter,
        "esc" => KeyCode::Esc,
        "tab" => KeyCode::Tab,
        "shift-tab" => KeyCode::BackTab,
        "space" => KeyCode::Char(' '),
        "backspace" => KeyCode::Backspace,
        "delete" => KeyCode::Delete,
        "insert" => KeyCode::Insert,
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "home" => KeyCode::Home,
        "end" => KeyCode::End,
        "pgup" => KeyCode::PageUp,
        "pgdn" => KeyCode::PageDown,
        f if f.starts_with('f') => match f[1..].parse::<u8>() {
            Ok(n @ 1..=12) => KeyCode::F(n),
            _ => return None,
        },
        _ => return None,
    };
    Some(KeySpec { code, ctrl })
}

pub(super) fn read_keys(ctx: &mut Ctx<'_>, table: &DeTable<'_>) -> KeyBindings {
    let mut out = KeyBindings::default();
    // Which action each key went to, to refuse one key for two actions.
    let mut taken: Vec<(KeySpec, String)> = Vec::new();
    for (key, value) in table.iter() {
        let action = key.get_ref().to_string();
        if !KEY_ACTIONS.contains(&action.as_str()) {
            ctx.error_with(
                &key.span(),
                format!("unknown console action `{action}` in [keys]"),
                Some(did_you_mean(&action, KEY_ACTIONS)),
                Excerpt::Never,
            );
            continue;
        }
        let items: Vec<(String, Span)> = match value.get_ref() {
            DeValue::String(s) => vec![(s.to_string(), value.span())],
            DeValue::Array(a) => {
                let mut v = Vec::new();
                for item in a.iter() {
                    match item.get_ref() {
                        DeValue::String(s) => v.push((s.to_string(), item.span())),
                        _ => ctx.error(
                            &item.span(),
                            format!("`{action}` in [keys] must list keys as strings"),
                            format!("e.g. {action} = [\"o\", \"F5\"]"),
                        ),
                    }
                }
                v
            }
            _ => {
                ctx.error(
                    &value.span(),
                    format!("`{action}` in [keys] must be a key name or a list of key names"),
                    format!("e.g. {action} = \"o\" or {action} = [\"o\", \"F5\"]"),
                );
                continue;
            }
        };
        if items.is_empty() {
            ctx.error(
                &value.span(),
                format!("`{action}` in [keys] has no key"),
                format!("give at least one key, e.g. {action} = \"o\", or remove the line"),
            );
            continue;
        }
        let mut keys = Vec::new();
        for (name, span) in items {
            match parse_key(&name) {
                Some(k) => {
                    if let Some((_, other)) = taken.iter().find(|(t, _)| *t == k) {
                        if *other == action {
                            continue;
                        }
                        ctx.error(
                            &span,
                            format!(
                                "key `{name}` in [keys] is given to both `{other}` and `{action}`"
                            ),
                            "give each action its own key",
                        );
                        continue;
                    }
                    taken.push((k, action.clone()));
                    keys.push(k);
                }
                None => {
                    let bare = name.get(5..).filter(|_| {
                        name.get(..5)
                            .is_some_and(|p| p.eq_ignore_ascii_case("ctrl-"))
                    });
                    let hint = match crate::suggest::nearest(
                        bare.unwrap_or(&name),
                        KEY_NAMES.iter().copied(),
                    ) {
                        Some(s) if bare.is_some() => format!("did you mean `Ctrl-{s}`?"),
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!(
                            "a key is one character (\"o\", \"?\"), a name ({}), or Ctrl- with either",
                            KEY_NAMES[..16].join(", ")
                        ),
                    };
                    ctx.error(
                        &span,
                        format!("unknown key `{name}` for `{action}` in [keys]"),
                        hint,
                    );
                }
            }
        }
        out.remap.push((action, keys));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names() {
        assert_eq!(
            parse_key("o"),
            Some(KeySpec {
                code: KeyCode::Char('o'),
                ctrl: false
            })
        );
        assert_eq!(
            parse_key("Ctrl-R"),
            Some(KeySpec {
                code: KeyCode::Char('r'),
                ctrl: true
            })
        );
        assert_eq!(parse_key("f5").map(|k| k.code), Some(KeyCode::F(5)));
        assert_eq!(parse_key("PgDn").map(|k| k.code), Some(KeyCode::PageDown));
        assert_eq!(parse_key("Space").map(|k| k.code), Some(KeyCode::Char(' ')));
        assert_eq!(parse_key("Entr"), None);
        assert_eq!(parse_key("F13"), None);
        assert_eq!(parse_key(""), None);
    }
}
