//! The Integrations pane: one row per integration, worst first by default. Only visible rows are built.

use super::super::app::{App, Pane, reason};
use super::super::text::{self, fit};
use super::{bottom_note, pane_block};
use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table};

const STATUS_W: usize = 9; // "? UNKNOWN"
const LAST_W: usize = 4;
const LAT_W: usize = 5; // "999ms", "4.2s", "120s"

/// "312ms", "4.2s", "12s"
pub(super) fn latency(ms: Option<u64>) -> String {
    match ms {
        None => "-".into(),
        Some(ms) if ms < 1_000 => format!("{ms}ms"),
        Some(ms) if ms < 10_000 => format!("{:.1}s", ms as f64 / 1000.0),
        Some(ms) => format!("{}s", ms / 1000),
    }
}

/// Widths for name, business unit, credential, reason given the room left after the fixed columns.
fn flexible_widths(avail: usize, desired: [usize; 4]) -> [usize; 4] {
    const MIN: [usize; 4] = [10, 5, 6, 16];
    const CAP: [usize; 4] = [32, 24, 24, usize::MAX];
    let desired: Vec<usize> = (0..4).map(|i| desired[i].clamp(MIN[i], CAP[i])).collect();
    let mut w = MIN;
    let mut left = avail.saturating_sub(MIN.iter().sum());
    // The name first (it is what people search for), then round-robin: reason, credential, business unit.
    let name_cap = (avail * 2 / 5).clamp(14, 24);
    let grow = desired[0].min(name_cap).saturating_sub(w[0]).min(left);
    w[0] += grow;
    left -= grow;
    'outer: while left > 0 {
        let mut gave = false;
        for i in [3, 2, 1, 0] {
            if left == 0 {
                break 'outer;
            }
            if w[i] < desired[i] {
                w[i] += 1;
                left -= 1;
                gave = true;
            }
        }
        if !gave {
            break;
        }
    }
    w[3] += left; // whatever is left widens the reason
    w
}

pub(super) fn render(frame: &mut Frame, area: Rect, app: &App, now: DateTime<Utc>, focused: bool) {
    let theme = &app.theme;
    let snap = app.snapshot();
    let total = snap.integrations.len();
    let shown = app.integrations.rows.len();
    let filter = app.filter(Pane::Integrations);

    let mut right = Vec::new();
    right.push(Span::raw(format!(" sort: {} ", app.sort().label())));
    if !filter.is_empty() {
        right.push(Span::styled(format!(" /{filter} "), theme.bold()));
    }
    let pos = if shown == 0 {
        0
    } else {
        app.integrations.nav.selected + 1
    };
    let count = if shown == total {
        format!(" {pos}/{shown} ")
    } else {
        format!(" {pos}/{shown} of {total} ")
    };
    right.push(Span::raw(count));
    let block = pane_block(app, "Integrations", Line::from(right), focused);
    let note = app
        .selected_integration()
        .filter(|_| focused)
        .map(|i| format!("{}: {}", i.name, reason(i)));
    let block = bottom_note(block, app, area, note);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 || inner.width == 0 {
        return;
    }

    if shown == 0 {
        let msg = if total == 0 {
            "no integrations configured".to_string()
        } else {
            format!("no integration matches \"{filter}\" (Esc clears the filter)")
        };
        frame.render_widget(Paragraph::new(Span::styled(msg, theme.dim())), inner);
        return;
    }

    let body_h = inner.height.saturating_sub(1) as usize;
    let off = app.integrations.nav.window(body_h, shown);
    let visible = &app.integrations.rows[off..(off + body_h).min(shown)];

    // Column widths from all filtered rows (computed on refresh), so they do not jump while scrolling.
    let w = app.integrations.col_widths;
    let desired = [w[0].max(4), w[1].max(2), w[2].max(10), w[3].max(6)];
    let fixed = STATUS_W + LAST_W + LAT_W + 6; // six column gaps
    let avail = (inner.width as usize).saturating_sub(fixed);
    let [name_w, bu_w, cred_w, reason_w] = flexible_widths(avail, desired);
    let ell = theme.ellipsis();

    let header = Row::new(vec![
        "STATUS".to_string(),
        fit("NAME", name_w, ell),
        fit("BU", bu_w, ell),
        fit(
            if cred_w >= 10 { "CREDENTIAL" } else { "CRED" },
            cred_w,
            ell,
        ),
        "LAST".into(),
        "LAT".into(),
        "REASON".into(),
    ])
    .style(theme.header_row());

    let rows = visible.iter().enumerate().map(|(n, &idx)| {
        let i = &snap.integrations[idx];
        let status = i.health.status;
        let last = i.last_probe();
        let reason_text = reason(i);
        let reason_style = if i.history.is_empty() {
            theme.dim()
        } else {
            Style::new()
        };
        let row = Row::new(vec![
            Line::from(Span::styled(
                theme.status_text(status),
                theme.status(status),
            )),
            Line::from(text::truncate(&i.name, name_w, ell)),
            Line::from(text::truncate(
                i.business_unit.as_deref().unwrap_or("-"),
                bu_w,
                ell,
            )),
            Line::from(text::truncate(&i.credential, cred_w, ell)),
            Line::from(text::age(last.map(|p| p.at), now)),
            Line::from(latency(last.and_then(|p| p.latency_ms()))).right_aligned(),
            if i.acked.is_some() {
                // Acknowledged incidents say so in words: the marker survives no-colour and ASCII.
                Line::from(vec![
                    Span::styled("ACK ", theme.bold()),
                    Span::styled(
                        text::truncate(&reason_text, reason_w.saturating_sub(4), ell),
                        reason_style,
                    ),
                ])
            } else {
                Line::from(Span::styled(
                    text::truncate(&reason_text, reason_w, ell),
                    reason_style,
                ))
            },
        ]);
        if focused && off + n == app.integrations.nav.selected {
            row.style(theme.selected())
        } else {
            row
        }
    });
    let widths = [
        Constraint::Length(STATUS_W as u16),
        Constraint::Length(name_w as u16),
        Constraint::Length(bu_w as u16),
        Constraint::Length(cred_w as u16),
        Constraint::Length(LAST_W as u16),
        Constraint::Length(LAT_W as u16),
        Constraint::Fill(1),
    ];
    let table = Table::new(rows, widths).header(header).column_spacing(1);
    frame.render_widget(table, inner);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_fill_the_room_and_respect_minimums() {
        let w = flexible_widths(47, [16, 12, 12, 40]);
        assert_eq!(w.iter().sum::<usize>(), 47);
        assert!(w[0] >= 10 && w[3] >= 16);
        // Plenty of room: everything gets what it wants and the reason takes the rest.
        let w = flexible_widths(150, [16, 12, 12, 40]);
        assert_eq!(&w[..3], &[16, 12, 12]);
        assert_eq!(w[3], 150 - 40);
        // Less room than the minimums: never panic, return the minimums.
        assert_eq!(flexible_widths(3, [1, 1, 1, 1]), [10, 5, 6, 16]);
    }

    #[test]
    fn latency_is_compact() {
        assert_eq!(latency(Some(312)), "312ms");
        assert_eq!(latency(Some(4200)), "4.2s");
        assert_eq!(latency(Some(12_345)), "12s");
        assert_eq!(latency(None), "-");
    }
}
