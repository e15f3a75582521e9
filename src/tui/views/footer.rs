//! Footer: the filter being typed, or the transient message, then key hints for the focused context (from the
//! action registry, so read-only mode never shows a mutating key).

use super::super::app::App;
use super::super::text;
use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub(super) fn render(frame: &mut Frame, area: Rect, app: &App, now: DateTime<Utc>) {
    let theme = &app.theme;
    let width = area.width as usize;
    let mut spans: Vec<Span> = Vec::new();
    let mut used = 0usize;

    if let Some(pane) = app.editing_filter() {
        let cursor = if app.theme.ascii { "_" } else { "█" };
        let text = format!(" filter {}: /{}{cursor} ", pane.title(), app.filter(pane));
        used += text::width(&text);
        spans.push(Span::styled(text, theme.bold()));
        for (k, label) in app.keymap.hints(app.context()) {
            let w = text::width(&k) + label.len() + 3;
            if used + w > width {
                break;
            }
            used += w;
            spans.push(Span::raw(" "));
            spans.push(Span::styled(k, theme.selected()));
            spans.push(Span::raw(format!(" {label} ")));
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), area);
        return;
    }

    if let Some(m) = app.message.as_ref().filter(|m| m.until > now) {
        let text = format!(
            " {} ",
            text::truncate(&m.text, width.saturating_sub(2), theme.ellipsis())
        );
        used += text::width(&text);
        spans.push(Span::styled(text, theme.message(m.error)));
        spans.push(Span::raw(" "));
        used += 1;
    }

    // In the wizard's layers only its quit key is hinted (the wizard lists its own keys).
    for (key, label) in app.keymap.hints(app.context()) {
        let w = text::width(&key) + label.len() + 3;
        if used + w > width {
            break;
        }
        used += w;
        spans.push(Span::raw(" "));
        spans.push(Span::styled(key, theme.selected()));
        spans.push(Span::raw(format!(" {label} ")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
