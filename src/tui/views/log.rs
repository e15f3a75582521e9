//! The 401/403 log pane: one row per (integration, status, error, source) with its count and first/last time,
//! newest group first; a group expands to its events. Follows new entries unless scrolled away, then counts them.

use super::super::app::{App, LogGroup, LogRow, Pane};
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
    let shown = app.log.rows.len();

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
    // A log source that cannot be read is a blind spot: say so in plain words where the log is, as much of it
    // as the title has room for (the help overlay has every source's status and counts).
    let unread: Vec<_> = snap.log_sources.iter().filter(|s| !s.ok).collect();
    let used: usize = right.iter().map(Span::width).sum();
    let room = (area.width as usize).saturating_sub(2 + text::width("401/403 log") + 1 + used + 2);
    if !unread.is_empty() {
        let n = unread.len();
        let full = match unread.as_slice() {
            [one] => format!("1 log source unreadable: {} ({})", one.name, one.status),
            _ => format!(
                "{n} log sources unreadable: {}",
                unread
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let short = format!("{n} unreadable");
        let flag = if room >= text::width(&short) + 8 {
            text::truncate(&full, room, theme.ellipsis())
        } else {
            short
        };
        right.insert(0, Span::styled(format!(" {flag} "), theme.flag()));
    }
    let block = pane_block(app, "401/403 log", Line::from(right), focused);
    let note = app
        .log
        .selected_group()
        .filter(|_| focused)
        .map(|g| group_text(g, theme.ascii, now));
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
    // Wide: one line per group. Narrow: two (names in full on the first, error, times and source on the second).
    let wide = w >= 72;
    let ell = theme.ellipsis();
    let (open, closed) = if theme.ascii {
        ("v", ">")
    } else {
        ("▾", "▸")
    };
    let groups = &app.log.groups;
    let integ_w = groups
        .iter()
        .take(200)
        .map(|g| g.key.0.as_deref().map_or(9, text::width))
        .max()
        .unwrap_or(9)
        .min(w / 3)
        .max(9);
    let count_w = groups
        .iter()
        .map(|g| g.events.len().to_string().len() + 1)
        .max()
        .unwrap_or(2);
    let source_w = groups
        .iter()
        .map(|g| text::width(&g.key.3))
        .max()
        .unwrap_or(5)
        .min(18);

    let h = inner.height as usize;
    let per_group = if wide { 1 } else { 2 };
    let off = app
        .log
        .nav
        .window((h / per_group).max(1), app.log.rows.len());
    let mut lines: Vec<Line> = Vec::with_capacity(h);
    for (n, row) in app.log.rows.iter().enumerate().skip(off) {
        if lines.len() >= h {
            break;
        }
        let selected = focused && n == app.log.nav.selected;
        let mut row_lines: Vec<Line> = Vec::new();
        match *row {
            LogRow::Group(gi) => {
                let g = &groups[gi];
                let (integration, status, error, source) = &g.key;
                let marker = if app.log.expanded.contains(&g.key) {
                    open
                } else {
                    closed
                };
                let (integ, integ_style) = match integration {
                    Some(name) => (name.as_str(), Style::new()),
                    None => ("unmatched", theme.dim()),
                };
                let status_style = if *status == 401 {
                    theme.status(Status::Fail)
                } else {
                    theme.status(Status::Warn)
                };
                let count = format!("{}{}", if theme.ascii { "x" } else { "×" }, g.events.len());
                let times = span_text(g.first, g.last, now, theme.ascii);
                if wide {
                    let fixed =
                        2 + integ_w + 1 + 4 + count_w + 1 + text::width(&times) + 1 + source_w + 1;
                    let err_w = w.saturating_sub(fixed).max(1);
                    row_lines.push(Line::from(vec![
                        Span::raw(format!("{marker} ")),
                        Span::styled(format!("{} ", fit(integ, integ_w, ell)), integ_style),
                        Span::styled(format!("{status:<3} "), status_style),
                        Span::raw(format!("{} ", fit(error, err_w, ell))),
                        Span::styled(format!("{count:>count_w$} "), theme.bold()),
                        Span::raw(format!("{times} ")),
                        Span::styled(fit(source, source_w, ell), theme.dim()),
                    ]));
                } else {
                    let head_w = w.saturating_sub(2 + 1 + 3 + 1 + count.len());
                    row_lines.push(Line::from(vec![
                        Span::raw(format!("{marker} ")),
                        Span::styled(text::truncate(integ, head_w, ell), integ_style),
                        Span::styled(format!(" {status}"), status_style),
                        Span::styled(format!(" {count}"), theme.bold()),
                    ]));
                    let second = format!("  {times} {source} {error}");
                    row_lines.push(Line::styled(text::truncate(&second, w, ell), theme.dim()));
                }
            }
            LogRow::Event(_, ei) => {
                let e = &snap.auth_log[ei];
                let t = if e.at.date_naive() == now.date_naive() {
                    e.at.format("%H:%M:%S").to_string()
                } else {
                    e.at.format("%m-%d %H:%M:%S").to_string()
                };
                row_lines.push(Line::from(vec![
                    Span::raw("    "),
                    Span::raw(t),
                    Span::styled(
                        format!(" ({} ago)", text::age(Some(e.at), now)),
                        theme.dim(),
                    ),
                ]));
            }
        }
        for mut l in row_lines {
            if selected {
                l = l.style(theme.selected());
            }
            lines.push(l);
        }
    }
    lines.truncate(h);
    frame.render_widget(Paragraph::new(lines), inner);
}

/// "02:00:14–02:05:40" (seconds; the date too when not today); one time when first and last are the same.
fn span_text(first: DateTime<Utc>, last: DateTime<Utc>, now: DateTime<Utc>, ascii: bool) -> String {
    let t = |at: DateTime<Utc>| {
        if at.date_naive() == now.date_naive() {
            at.format("%H:%M:%S").to_string()
        } else {
            at.format("%m-%d %H:%M:%S").to_string()
        }
    };
    if first == last {
        t(last)
    } else {
        format!("{}{}{}", t(first), if ascii { "-" } else { "–" }, t(last))
    }
}

/// The whole group in one line: `nightly-etl-loader 401 invalid_client ×28 02:00:14–02:05:40 demo-middleware`.
pub(super) fn group_text(g: &LogGroup, ascii: bool, now: DateTime<Utc>) -> String {
    let (integration, status, error, source) = &g.key;
    format!(
        "{} {status} {error} {}{} {} {source}",
        integration.as_deref().unwrap_or("unmatched"),
        if ascii { "x" } else { "×" },
        g.events.len(),
        span_text(g.first, g.last, now, ascii)
    )
}
