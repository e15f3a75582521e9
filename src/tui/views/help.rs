//! Help overlay: every available action (from the registry; read-only hides mutating ones), the status
//! legend and the log file path. Two columns when wide enough, scrollable when not.

use super::super::app::App;
use super::super::text::{self, fit};
use super::clamp;
use crate::model::Status;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

const KEY_W: usize = 12;

fn entry_lines<'a>(app: &App, col_w: usize) -> Vec<Vec<Line<'a>>> {
    let theme = &app.theme;
    let desc_w = col_w.saturating_sub(KEY_W + 1).max(8);
    app.keymap
        .available()
        .map(|b| {
            let keys = app.keymap.keys_label(b);
            let mut lines = Vec::new();
            let desc = text::wrap(b.description, desc_w);
            for (n, d) in desc.into_iter().enumerate() {
                let k = if n == 0 {
                    fit(&keys, KEY_W, theme.ellipsis())
                } else {
                    " ".repeat(KEY_W)
                };
                lines.push(Line::from(vec![
                    Span::styled(k, theme.bold()),
                    Span::raw(" "),
                    Span::raw(d),
                ]));
            }
            lines
        })
        .collect()
}

pub(super) fn render(frame: &mut Frame, body: Rect, app: &App) {
    let theme = &app.theme;
    let w = body.width.saturating_sub(4).min(110);
    let h = body.height.saturating_sub(2);
    if w < 10 || h < 3 {
        return;
    }
    let inner_w = (w - 2) as usize;
    let two_cols = inner_w >= 2 * 36 + 2;
    let col_w = if two_cols { (inner_w - 2) / 2 } else { inner_w };
    let entries = entry_lines(app, col_w);

    let mut lines: Vec<Line> = Vec::new();
    let mode = if app.read_only() {
        "read-only: keys that change anything are hidden"
    } else {
        "Esc or ? closes"
    };
    lines.push(Line::from(vec![
        Span::styled("Keys", theme.bold()),
        Span::raw(format!(" ({mode})")),
    ]));
    if two_cols {
        let total: usize = entries.iter().map(Vec::len).sum();
        let mut left: Vec<Line> = Vec::new();
        let mut right: Vec<Line> = Vec::new();
        for e in entries {
            if left.len() < total.div_ceil(2) {
                left.extend(e);
            } else {
                right.extend(e);
            }
        }
        let rows = left.len().max(right.len());
        let mut l = left.into_iter();
        let mut r = right.into_iter();
        for _ in 0..rows {
            let mut spans: Vec<Span> = Vec::new();
            let a = l.next().unwrap_or_default();
            let aw = a.width();
            spans.extend(a.spans);
            spans.push(Span::raw(" ".repeat(col_w.saturating_sub(aw) + 2)));
            if let Some(b) = r.next() {
                spans.extend(b.spans);
            }
            lines.push(Line::from(spans));
        }
    } else {
        lines.extend(entries.into_iter().flatten());
    }
    lines.push(Line::default());
    let mut legend = vec![Span::styled("Status ", theme.bold())];
    for s in [Status::Ok, Status::Warn, Status::Fail, Status::Unknown] {
        legend.push(Span::styled(theme.status_text(s), theme.status(s)));
        legend.push(Span::raw("  "));
    }
    lines.push(Line::from(legend));
    if let Some(err) = &app.snapshot().history_error {
        for chunk in text::wrap(&format!("History is not being saved: {err}"), inner_w) {
            lines.push(Line::styled(chunk, theme.message(true)));
        }
    }
    let log = match &app.opts.log_path {
        Some(p) => p.display().to_string(),
        None => "(not logging to a file)".to_string(),
    };
    for (n, chunk) in text::wrap(&format!("Log file {log}"), inner_w)
        .into_iter()
        .enumerate()
    {
        if n == 0 {
            lines.push(Line::styled(chunk, theme.bold()));
        } else {
            lines.push(Line::raw(chunk));
        }
    }

    for source in &app.snapshot().log_sources {
        let text = format!(
            "Log source {}: {}; {} unmatched, {} malformed lines",
            source.name, source.status, source.unmatched, source.malformed
        );
        for chunk in text::wrap(&text, inner_w) {
            lines.push(Line::styled(chunk, theme.message(!source.ok)));
        }
    }

    // Notes only when they fit without scrolling.
    let mut notes = Vec::new();
    for note in [
        "Enter on a credential lists its integrations; on a 401/403 entry, opens its integration.",
        "Sort: status (worst first), name, expiry, last failure. Filter matches name, BU, team, credential, reason.",
    ] {
        notes.extend(text::wrap(note, inner_w).into_iter().map(Line::raw));
    }
    if lines.len() + notes.len() + 2 <= h as usize {
        lines.extend(notes);
    }
    let needed = lines.len() as u16 + 2;
    let ph = needed.min(h);
    let rect = clamp(
        Rect::new(
            body.x + (body.width - w) / 2,
            body.y + (body.height - ph) / 2,
            w,
            ph,
        ),
        body,
    );
    let inner_h = ph.saturating_sub(2) as usize;
    let top = app.help.scroll.clamp(inner_h, lines.len());
    let more = lines.len() > top + inner_h;
    let block = Block::bordered()
        .border_set(theme.border(true))
        .border_style(theme.border_style(true))
        .title(Line::styled("Help", theme.title(true)))
        .title_bottom(if more {
            Line::from(" more: j ").right_aligned()
        } else {
            Line::default()
        });
    let visible: Vec<Line> = lines.into_iter().skip(top).take(inner_h).collect();
    frame.render_widget(Clear, rect);
    frame.render_widget(Paragraph::new(visible).block(block), rect);
}
