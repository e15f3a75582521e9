//! The Integrations pane: one row per integration, worst first by default. Only visible rows are built.
//!
//! At 80 columns: STATUS NAME SINCE REASON, the reason taking what is left (at least 40 cells). Wider screens add
//! team, owner, business unit, credential and latency, in that order, while the reason keeps its 40. FAIL/WARN
//! rows scrolled out of the window are counted in the title; the selected row's bottom line says who to call.

use super::super::app::{App, Pane, reason, status_since};
use super::super::text::{self, fit};
use super::{bottom_note, pane_block};
use crate::engine::IntegrationView;
use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table};

const STATUS_W: usize = 9; // "? UNKNOWN"
const SINCE_W: usize = 5;
const LAT_W: usize = 5; // "999ms", "4.2s", "120s"
/// The reason keeps at least this much room: it is the answer to "why".
pub(super) const REASON_MIN: usize = 40;
const NAME_MIN: usize = 8;
const NAME_CAP: usize = 24;
const EXTRA_CAP: usize = 22;

/// "312ms", "4.2s", "12s"
pub(super) fn latency(ms: Option<u64>) -> String {
    match ms {
        None => "-".into(),
        Some(ms) if ms < 1_000 => format!("{ms}ms"),
        Some(ms) if ms < 10_000 => format!("{:.1}s", ms as f64 / 1000.0),
        Some(ms) => format!("{}s", ms / 1000),
    }
}

/// A column wider screens add after STATUS NAME SINCE, before REASON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Extra {
    Team,
    Owner,
    BusinessUnit,
    Credential,
    Latency,
}

impl Extra {
    /// The order in which wider screens add columns (documented in the README).
    pub(super) const ORDER: [Extra; 5] = [
        Extra::Team,
        Extra::Owner,
        Extra::BusinessUnit,
        Extra::Credential,
        Extra::Latency,
    ];
    fn header(self) -> &'static str {
        match self {
            Extra::Team => "TEAM",
            Extra::Owner => "OWNER",
            Extra::BusinessUnit => "BU",
            Extra::Credential => "CREDENTIAL",
            Extra::Latency => "LAT",
        }
    }
}

/// Column widths: the name, the extra columns that fit, and the reason (all that is left).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Columns {
    pub name: usize,
    pub extras: Vec<(Extra, usize)>,
    pub reason: usize,
}

/// Lay out the columns in `width` cells. `widest` gives the widest value of the name and of each extra column
/// (in [`Extra::ORDER`]). The reason never gets less than [`REASON_MIN`] while the name has room to give; extra
/// columns are added in order while the reason keeps its minimum.
pub(super) fn columns(width: usize, widest_name: usize, widest: [usize; 5]) -> Columns {
    let fixed = STATUS_W + SINCE_W + 3; // three gaps
    let room = width.saturating_sub(fixed);
    let name = widest_name
        .clamp(NAME_MIN, NAME_CAP)
        .min(room.saturating_sub(REASON_MIN))
        .max(NAME_MIN);
    let mut left = room.saturating_sub(name);
    let mut extras = Vec::new();
    for (n, col) in Extra::ORDER.into_iter().enumerate() {
        let w = match col {
            Extra::Latency => LAT_W,
            _ => widest[n].clamp(col.header().len(), EXTRA_CAP),
        };
        if left < w + 1 + REASON_MIN {
            break;
        }
        left -= w + 1;
        extras.push((col, w));
    }
    Columns {
        name,
        extras,
        reason: left,
    }
}

/// FAIL and WARN rows `from..to` of the list, outside the window: "▲ 2 FAIL above", "▼ 1 FAIL 1 WARN below".
fn off_screen(app: &App, from: usize, to: usize, arrow: &str, where_: &str) -> Option<String> {
    let before = &app.integrations.flagged_before;
    let (Some(a), Some(b)) = (before.get(from), before.get(to)) else {
        return None;
    };
    let parts: Vec<String> = [(0, "FAIL"), (1, "WARN")]
        .into_iter()
        .map(|(k, w)| (b[k].saturating_sub(a[k]), w))
        .filter(|(n, _)| *n > 0)
        .map(|(n, w)| format!("{n} {w}"))
        .collect();
    (!parts.is_empty()).then(|| format!("{arrow} {} {where_}", parts.join(" ")))
}

/// The selected row's bottom line: who to call and what to do.
fn who_and_what(app: &App, i: &IntegrationView) -> String {
    let owner = app
        .snapshot()
        .credential(&i.credential)
        .and_then(|c| c.owner.clone())
        .unwrap_or_else(|| "-".into());
    let team = i.team.as_deref().unwrap_or("-");
    let mut s = format!("{}: owner {owner} | team {team}", i.name);
    if let Some(p) = i.last_probe().filter(|p| !p.outcome.is_ok()) {
        s.push_str(&format!(" | {}", p.outcome.runbook()));
    }
    s
}

pub(super) fn render(frame: &mut Frame, area: Rect, app: &App, now: DateTime<Utc>, focused: bool) {
    let theme = &app.theme;
    let snap = app.snapshot();
    let total = snap.integrations.len();
    let rows = &app.integrations.rows;
    let shown = rows.len();
    let filter = app.filter(Pane::Integrations);

    // The window first: the title says what lies outside it.
    let body_h = area.height.saturating_sub(3) as usize;
    let off = app.integrations.nav.window(body_h, shown);
    let end = (off + body_h).min(shown);
    let (up, down) = if theme.ascii {
        ("^", "v")
    } else {
        ("▲", "▼")
    };

    let mut right = Vec::new();
    for note in [
        off_screen(app, 0, off, up, "above"),
        off_screen(app, end, shown, down, "below"),
    ]
    .into_iter()
    .flatten()
    {
        right.push(Span::styled(format!(" {note} "), theme.flag()));
    }
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
        .map(|i| who_and_what(app, i));
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

    let visible = &rows[off..end];
    // Column widths from all filtered rows (computed on refresh), so they do not jump while scrolling.
    let w = app.integrations.col_widths;
    let cols = columns(
        inner.width as usize,
        w[0].max(4),
        [w[1], w[2], w[3], w[4], LAT_W],
    );
    let ell = theme.ellipsis();

    let mut header = vec![
        "STATUS".to_string(),
        fit("NAME", cols.name, ell),
        "SINCE".into(),
    ];
    header.extend(cols.extras.iter().map(|(c, w)| fit(c.header(), *w, ell)));
    header.push("REASON".into());
    let header = Row::new(header).style(theme.header_row());

    let table_rows = visible.iter().enumerate().map(|(n, &idx)| {
        let i = &snap.integrations[idx];
        let status = i.health.status;
        let last = i.last_probe();
        let reason_text = reason(i, now);
        let reason_style = if i.history.is_empty() && i.health.reasons.is_empty() {
            theme.dim()
        } else {
            Style::new()
        };
        let mut cells = vec![
            Line::from(Span::styled(
                theme.status_text(status),
                theme.status(status),
            )),
            Line::from(text::truncate(&i.name, cols.name, ell)),
            Line::from(text::age(status_since(i), now)),
        ];
        for (col, w) in &cols.extras {
            let value = match col {
                Extra::Team => i.team.clone().unwrap_or_else(|| "-".into()),
                Extra::Owner => snap
                    .credential(&i.credential)
                    .and_then(|c| c.owner.clone())
                    .unwrap_or_else(|| "-".into()),
                Extra::BusinessUnit => i.business_unit.clone().unwrap_or_else(|| "-".into()),
                Extra::Credential => i.credential.clone(),
                Extra::Latency => {
                    cells.push(
                        Line::from(latency(last.and_then(|p| p.latency_ms()))).right_aligned(),
                    );
                    continue;
                }
            };
            cells.push(Line::from(text::truncate(&value, *w, ell)));
        }
        cells.push(if i.acked.is_some() {
            // Acknowledged incidents say so in words: the marker survives no-colour and ASCII.
            Line::from(vec![
                Span::styled("ACK ", theme.bold()),
                Span::styled(
                    text::truncate(&reason_text, cols.reason.saturating_sub(4), ell),
                    reason_style,
                ),
            ])
        } else {
            Line::from(Span::styled(
                text::truncate(&reason_text, cols.reason, ell),
                reason_style,
            ))
        });
        let row = Row::new(cells);
        if focused && off + n == app.integrations.nav.selected {
            row.style(theme.selected())
        } else {
            row
        }
    });
    let mut widths = vec![
        Constraint::Length(STATUS_W as u16),
        Constraint::Length(cols.name as u16),
        Constraint::Length(SINCE_W as u16),
    ];
    widths.extend(
        cols.extras
            .iter()
            .map(|(_, w)| Constraint::Length(*w as u16)),
    );
    widths.push(Constraint::Fill(1));
    let table = Table::new(table_rows, widths)
        .header(header)
        .column_spacing(1);
    frame.render_widget(table, inner);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_80_columns_the_reason_gets_at_least_40_and_wider_screens_add_columns_in_order() {
        // 78 inner cells (80 minus the borders): STATUS NAME SINCE REASON only.
        let c = columns(78, 18, [10, 22, 8, 9, 5]);
        assert!(c.extras.is_empty());
        assert!(c.reason >= REASON_MIN, "{c:?}");
        assert_eq!(9 + 1 + c.name + 1 + 5 + 1 + c.reason, 78);
        // A long name gives way to the reason.
        let c = columns(78, 60, [0; 5]);
        assert!(c.reason >= REASON_MIN && c.name >= NAME_MIN, "{c:?}");
        // Wider: team first, then owner, business unit, credential, latency.
        let order = |w: usize| -> Vec<Extra> {
            columns(w, 18, [10, 22, 8, 9, 5])
                .extras
                .into_iter()
                .map(|(e, _)| e)
                .collect()
        };
        assert_eq!(order(98), vec![Extra::Team]);
        assert_eq!(
            order(118),
            vec![Extra::Team, Extra::Owner, Extra::BusinessUnit]
        );
        assert_eq!(order(318), Extra::ORDER.to_vec());
        for w in [78, 98, 118, 198, 318] {
            assert!(columns(w, 18, [10, 22, 8, 9, 5]).reason >= REASON_MIN);
        }
        // Narrower than the minimums: no panic.
        let _ = columns(3, 1, [1; 5]);
    }

    #[test]
    fn latency_is_compact() {
        assert_eq!(latency(Some(312)), "312ms");
        assert_eq!(latency(Some(4200)), "4.2s");
        assert_eq!(latency(Some(12_345)), "12s");
        assert_eq!(latency(None), "-");
    }
}
