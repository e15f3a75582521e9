//! The rotation wizard's screen, pure: `render(frame, area, &Wizard, &Theme, &Keymap, now)`.
//!
//! The steps with the current one highlighted, when SFMC accepts the staged secret, every check with its result,
//! the consumers with their teams (the people to tell), and the keys for the next step (from the key registry's
//! wizard layers). A secret being typed is
//! shown as one `*` per character: the wizard never holds it (the caller keeps it in a `SecretString`).

use crate::rotation::fsm::{Phase, Rotation};
use crate::rotation::{Line as CheckLine, LineKind};
use crate::tui::keymap::{Action, Context, Keymap};
use crate::tui::theme::Theme;
use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

/// Width of the result tag before each check ("OK   ", "FAIL ").
const TAG_W: usize = 5;

/// What the wizard shows. Holds no secret.
#[derive(Debug, Clone)]
pub struct Wizard {
    pub rotation: Rotation,
    /// (integration, team, business unit)
    pub consumers: Vec<(String, Option<String>, Option<String>)>,
    /// The credential's owner (the first person to tell).
    pub owner: Option<String>,
    /// Results of the last step.
    pub checks: Vec<CheckLine>,
    /// Characters typed into the masked secret field (None: not entering a secret).
    pub secret_len: Option<usize>,
    /// Characters typed of the credential id when confirming activation.
    pub confirm_typed: Option<String>,
    /// The demo: "generate in simulator" stands in for Setup.
    pub demo: bool,
    /// A step is running.
    pub busy: bool,
    /// authwatch cannot write the secret (env, command without update): what the operator updates by hand.
    pub manual_sink: Option<String>,
}

impl Wizard {
    pub fn new(rotation: Rotation) -> Wizard {
        Wizard {
            rotation,
            consumers: Vec::new(),
            owner: None,
            checks: Vec::new(),
            secret_len: None,
            confirm_typed: None,
            demo: false,
            busy: false,
            manual_sink: None,
        }
    }

    /// The key layer the wizard is in: its step keys, the masked secret field or the typed confirmation.
    pub fn context(&self) -> Context {
        if self.secret_len.is_some() {
            Context::SecretInput
        } else if self.confirm_typed.is_some() {
            Context::TypedConfirm
        } else {
            Context::Wizard
        }
    }

    /// The actions offered in this state, with what each does here (the keys come from the registry).
    pub fn offered(&self) -> Vec<(Action, &'static str)> {
        if self.secret_len.is_some() {
            return vec![(Action::Accept, "stage"), (Action::Cancel, "cancel")];
        }
        if self.confirm_typed.is_some() {
            return vec![
                (Action::Accept, "confirm activation"),
                (Action::Cancel, "cancel"),
            ];
        }
        let mut keys = Vec::new();
        match self.rotation.phase {
            Phase::Idle | Phase::Aborted | Phase::Completed => {
                if self.demo {
                    keys.push((Action::WizardGenerate, "generate in simulator"));
                }
                keys.push((Action::WizardEnterSecret, "enter new secret"));
            }
            Phase::Staged => {
                keys.push((Action::WizardVerify, "verify"));
                keys.push((Action::WizardEnterSecret, "replace secret"));
                keys.push((Action::WizardAbort, "abort"));
            }
            Phase::Verified if self.manual_sink.is_some() => {
                keys.push((Action::WizardPromote, "what to update"));
                keys.push((Action::WizardConfirmUpdated, "confirm all updated"));
                keys.push((Action::WizardAbort, "abort"));
            }
            Phase::Verified => {
                keys.push((Action::WizardPromote, "promote"));
                keys.push((Action::WizardVerify, "verify again"));
                keys.push((Action::WizardAbort, "abort"));
            }
            Phase::Promoted => {
                if self.demo {
                    keys.push((Action::WizardActivateInSim, "activate in simulator"));
                }
                keys.push((Action::WizardActivated, "activated in Setup"));
                keys.push((Action::WizardAbort, "abort"));
            }
            Phase::Activated => keys.push((Action::WizardActivated, "re-run checks")),
        }
        keys.push((Action::Back, "close"));
        keys
    }
}

fn step_label(p: Phase) -> &'static str {
    match p {
        Phase::Staged => "1 stage",
        Phase::Verified => "2 verify",
        Phase::Promoted => "3 promote",
        Phase::Activated => "4 activate",
        Phase::Completed => "5 done",
        _ => "",
    }
}

fn short_time(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let d = t - now;
    // Counts down until the moment itself (rounded up): "in 0s" would invite a verify SFMC still refuses.
    if d > chrono::Duration::zero() {
        let left = chrono::Duration::milliseconds(d.num_milliseconds() + 999);
        format!(
            "{} (in {})",
            t.format("%H:%M:%S"),
            crate::duration::format_countdown(left)
        )
    } else {
        t.format("%Y-%m-%d %H:%M").to_string()
    }
}

/// Draw the wizard as an overlay centred in `area`.
pub fn render(
    frame: &mut Frame,
    area: Rect,
    w: &Wizard,
    theme: &Theme,
    keymap: &Keymap,
    now: DateTime<Utc>,
) {
    let width = area.width.saturating_sub(4).min(76);
    let height = area.height.saturating_sub(2).min(22);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, popup);
    let r = &w.rotation;
    let block = Block::default()
        .borders(Borders::ALL)
        .border_set(theme.border(true))
        .border_style(theme.border_style(true))
        .title(Span::styled(
            format!(" Rotate secret: {} ", r.credential),
            theme.title(true),
        ));
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    if inner.height < 4 || inner.width < 20 {
        return;
    }
    let [steps_area, body, keys_area] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(inner);

    // Steps, the current one highlighted (and marked, so it reads without colour).
    let current = match r.phase {
        Phase::Idle | Phase::Aborted => None,
        p => Some(p),
    };
    let mut spans = Vec::new();
    for (i, p) in Phase::STEPS.iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" > ", theme.dim()));
        }
        let done = current.is_some_and(|c| Phase::STEPS.iter().position(|x| *x == c) >= Some(i));
        let label = step_label(*p);
        if Some(*p) == current {
            spans.push(Span::styled(
                format!("[{label}]"),
                theme.style(Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED)),
            ));
        } else if done {
            spans.push(Span::styled(format!("{label} ✓"), theme.fg(Color::Green)));
        } else {
            spans.push(Span::styled(label.to_string(), theme.dim()));
        }
    }
    let state_line = Line::from(vec![
        Span::styled("state: ", theme.dim()),
        Span::styled(r.phase.as_str(), theme.bold()),
        Span::raw(match r.phase {
            Phase::Idle => "  generate a new secret in Setup > Installed Packages".to_string(),
            Phase::Aborted => "  aborted: previous secret in place".to_string(),
            Phase::Staged => r
                .accept_after
                .map(|t| format!("  SFMC accepts it from {}", short_time(t, now)))
                .unwrap_or_default(),
            Phase::Verified => "  every consumer works with the new secret".to_string(),
            Phase::Promoted => "  now activate it in Setup (old secret dies)".to_string(),
            Phase::Activated => "  no rollback from here".to_string(),
            Phase::Completed => r
                .new_expires
                .map(|t| format!("  new expiry {}", t.format("%Y-%m-%d")))
                .unwrap_or_default(),
        }),
    ]);
    frame.render_widget(
        Paragraph::new(vec![Line::from(spans), state_line]),
        steps_area,
    );

    // Body: the input field (if any), the checks, the consumers.
    let mut lines: Vec<Line> = Vec::new();
    if let Some(n) = w.secret_len {
        lines.push(Line::from(vec![
            Span::styled("New secret: ", theme.bold()),
            Span::raw("*".repeat(n.min(40))),
            Span::styled("_", theme.dim()),
        ]));
        lines.push(Line::styled(
            "  typed characters are not shown; paste works",
            theme.dim(),
        ));
    }
    if let Some(typed) = &w.confirm_typed {
        lines.push(Line::styled(
            "Activating kills the old secret at once: there is no rollback.",
            theme.fg(Color::Red),
        ));
        lines.push(Line::from(vec![
            Span::styled(
                format!("Type `{}` to confirm: ", r.credential),
                theme.bold(),
            ),
            Span::raw(typed.clone()),
            Span::styled("_", theme.dim()),
        ]));
    }
    if w.busy {
        lines.push(Line::styled("working…", theme.dim()));
    }
    // The last step's results; otherwise the failures the rotation remembers (e.g. after a restart).
    let remembered: Vec<CheckLine> = r
        .failures
        .iter()
        .map(|f| CheckLine {
            kind: LineKind::Fail,
            text: f.clone(),
        })
        .collect();
    let shown = if w.checks.is_empty() {
        &remembered
    } else {
        &w.checks
    };
    // Wrapped under their own text, so the result tags stay a column of their own.
    let text_w = (body.width as usize).saturating_sub(TAG_W).max(10);
    for c in shown {
        let (tag, style) = match c.kind {
            LineKind::Ok => ("OK   ", theme.fg(Color::Green)),
            LineKind::Fail => ("FAIL ", theme.fg(Color::Red)),
            LineKind::Refused => ("NO   ", theme.fg(Color::Yellow)),
            LineKind::Note => ("     ", theme.dim()),
        };
        for (n, part) in crate::tui::text::wrap(&c.text, text_w)
            .into_iter()
            .enumerate()
        {
            let tag = if n == 0 { tag } else { "     " };
            lines.push(Line::from(vec![Span::styled(tag, style), Span::raw(part)]));
        }
    }
    if let Some(owner) = &w.owner {
        lines.push(Line::from(vec![
            Span::styled("Owner (who to tell): ", theme.bold()),
            Span::raw(owner.clone()),
        ]));
    }
    if !w.consumers.is_empty() {
        lines.push(Line::styled("Consumers (who to tell):", theme.bold()));
        for (name, team, bu) in &w.consumers {
            let mut s = format!("  {name}");
            if let Some(t) = team {
                s.push_str(&format!("  team {t}"));
            }
            if let Some(b) = bu {
                s.push_str(&format!("  BU {b}"));
            }
            lines.push(Line::raw(s));
        }
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), body);

    let mut keys = Vec::new();
    let ctx = w.context();
    let offered = w
        .offered()
        .into_iter()
        .filter_map(|(a, d)| keymap.key_label(ctx, a).map(|k| (k, d)));
    for (i, (k, d)) in offered.enumerate() {
        if i > 0 {
            keys.push(Span::raw("  "));
        }
        keys.push(Span::styled(k, theme.bold()));
        keys.push(Span::raw(format!(" {d}")));
    }
    frame.render_widget(Paragraph::new(Line::from(keys)), keys_area);
}
