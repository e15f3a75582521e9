//! The 401/403 log pane: newest first; follows new entries unless scrolled away, then counts them ("3 new").

use super::super::app::{App, Pane};
use super::super::text::{self, fit};
use super::{bottom_note, pane_block};
use crate::model::Status;
use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub(super) fn render(frame: &mut Frame, area: Rect, app: &App, now: DateTime<Utc>, focused: bool) {
    let theme = &app.theme;
    let snap = app.snapshot();
    let filter = app.filter(Pane::Log);
    let shown = app.log.logs.len();

    let mut right = Vec::new();
    if app.log.new > 0 {
        right.push(Span::styled(
            format!(" {} new (g) ", app.log.new),
            theme.flag(),
        ));
    }
    if !filter.is_empty() {
        right.push(Span::styled(format!(" /{filter} "), theme.bold()));
    }
    let pos = if shown == 0 {
        0
    } else {
        app.log.nav.selected + 1
    };
    right.push(Span::raw(format!(" {pos}/{shown} ")));
    // A log source that cannot be read is a blind spot: say so where the log is, as much of it as the title
    // has room for (the help overlay has every source's status and counts).
    let unread: Vec<_> = snap.log_sources.iter().filter(|s| !s.ok).collect();
    let used: usize = right.iter().map(Span::width).sum();
    let room = (area.width as usize).saturating_sub(2 + text::width("401/403 log") + 1 + used + 2);
    if !unread.is_empty() {
        let n = unread.len();
        let full = match unread.as_slice() {
            [one] => format!("! {}: {}", one.name, one.status),
            _ => format!("! {n} log sources unread"),
        };
        let candidates = [
            format!("! {n} log source{} unread", if n == 1 { "" } else { "s" }),
            format!("! {n} src unread"),
            format!("! {n} unread"),
        ];
        let flag = if text::width(&full) <= room || room >= 24 {
            text::truncate(&full, room, theme.ellipsis())
        } else {
            candidates
                .into_iter()
                .find(|c| text::width(c) <= room)
                .unwrap_or_else(|| "!".to_string())
        };
        right.insert(0, Span::styled(format!(" {flag} "), theme.flag()));
    }
    let block = pane_block(app, "401/403 log", Line::from(right), focused);
    let note = app.selected_log().filter(|_| focused).map(|e| {
        format!(
            "{} {} {} ({})",
            e.integration.as_deref().unwrap_or("unmatched"),
            e.http_status,
            e.error,
            e.source
        )
    });
    let block = bottom_note(block, app, area, note);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.width == 0 || inner.height == 0 {
        return;
    }
    if shown == 0 {
        let msg = if snap.auth_log.is_empty() {
            "no 401/403 seen".to_string()
        } else {
            format!("no entry matches \"{filter}\"")
        };
        frame.render_widget(Paragraph::new(Span::styled(msg, theme.dim())), inner);
        return;
    }

    let w = inner.width as usize;
    let wide = w >= 72;
    let ell = theme.ellipsis();
    // time | integration | status | error | source
    let time_w = if wide { 11 } else { 5 };
    let longest = app
        .log
        .logs
        .iter()
        .take(200)
        .map(|&i| {
            snap.auth_log[i]
                .integration
                .as_deref()
                .map_or(9, text::width)
        })
        .max()
        .unwrap_or(9);
    // The integration column as long as the names, but the error keeps at least 14 cells ("invalid_client").
    // The source always shows: its name when there is room, else "prb" or "log" (the full name is in the note).
    let source_w = if w >= 100 {
        16
    } else if wide {
        12
    } else {
        3
    };
    let room = w.saturating_sub(time_w + 1 + 1 + 3 + 1 + 14 + source_w + 1);
    let integ_w = longest.min(28).min(room).max(9);
    let fixed = time_w + 1 + integ_w + 1 + 3 + 1 + source_w + 1;
    let err_w = w.saturating_sub(fixed);

    let h = inner.height as usize;
    let off = app.log.nav.window(h, shown);
    let mut lines = Vec::with_capacity(h);
    for (n, &ei) in app.log.logs.iter().enumerate().skip(off).take(h) {
        let e = &snap.auth_log[ei];
        let time = if wide {
            text::clock_or_date(e.at, now)
        } else if e.at.date_naive() == now.date_naive() {
            e.at.format("%H:%M").to_string()
        } else {
            e.at.format("%m-%d").to_string()
        };
        let (integ, integ_style) = match &e.integration {
            Some(name) => (name.as_str(), Style::new()),
            None => ("unmatched", theme.dim()),
        };
        let status_style = if e.http_status == 401 {
            theme.status(Status::Fail)
        } else {
            theme.status(Status::Warn)
        };
        let mut spans = vec![
            Span::raw(format!("{} ", fit(&time, time_w, ell))),
            Span::styled(format!("{} ", fit(integ, integ_w, ell)), integ_style),
            Span::styled(format!("{:<3} ", e.http_status), status_style),
            Span::raw(fit(&e.error, err_w, ell)),
        ];
        let source = if wide {
            fit(&e.source, source_w, ell)
        } else if e.source == crate::model::PROBE_SOURCE {
            "prb".to_string()
        } else {
            "log".to_string()
        };
        spans.push(Span::styled(format!(" {source}"), theme.dim()));
        let mut line = Line::from(spans);
        if focused && n == app.log.nav.selected {
            line = line.style(theme.selected());
        }
        lines.push(line);
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
