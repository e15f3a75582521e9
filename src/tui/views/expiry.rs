//! The Secret expiry pane: month calendar(s) with expiry days marked by severity, a list of credentials by days
//! left, and a summary line for the selected credential.

use super::super::app::{App, Pane};
use super::super::text::{self, fit};
use super::pane_block;
use crate::engine::CredentialView;
use crate::model::Status;
use chrono::{DateTime, Datelike, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::widgets::calendar::{DateStyler, Monthly};
use std::collections::HashMap;

const CAL_W: u16 = 21;
/// Month header + weekday header + at most 6 weeks.
const CAL_H: u16 = 8;
/// The list needs at least this much room beside the calendar, or the calendar is left out.
const LIST_MIN: u16 = 18;

/// Expiry days styled by the worst credential expiring that day; today marked too.
struct ExpiryDays {
    days: HashMap<time::Date, Style>,
}

impl DateStyler for &ExpiryDays {
    fn get_style(&self, date: time::Date) -> Style {
        self.days.get(&date).copied().unwrap_or_default()
    }
}

fn to_date(y: i32, m: u32, d: u32) -> Option<time::Date> {
    let month = time::Month::try_from(u8::try_from(m).ok()?).ok()?;
    time::Date::from_calendar_date(y, month, u8::try_from(d).ok()?).ok()
}

fn month_add((y, m): (i32, u32), n: i32) -> (i32, u32) {
    let idx = y * 12 + m as i32 - 1 + n;
    (idx.div_euclid(12), idx.rem_euclid(12) as u32 + 1)
}

fn day_styles(app: &App, now: DateTime<Utc>) -> ExpiryDays {
    let theme = &app.theme;
    let mut worst: HashMap<time::Date, Status> = HashMap::new();
    for c in &app.snapshot().credentials {
        if let Some(exp) = c.secret_expires
            && let Some(d) = to_date(exp.year(), exp.month(), exp.day())
        {
            let e = worst.entry(d).or_insert(c.expiry_status);
            *e = (*e).max(c.expiry_status);
        }
    }
    let mut days: HashMap<time::Date, Style> = worst
        .into_iter()
        .map(|(d, s)| (d, theme.expiry_day(s)))
        .collect();
    if let Some(today) = to_date(now.year(), now.month(), now.day()) {
        days.entry(today).or_insert_with(|| theme.today());
    }
    ExpiryDays { days }
}

/// Short days-left for the narrow list: "3d ago", "today", "5d", "-".
fn days_short(days: Option<i64>) -> String {
    match days {
        None => "-".into(),
        Some(d) if d < 0 => format!("{}d ago", -d),
        Some(0) => "today".into(),
        Some(d) => format!("{d}d"),
    }
}

pub(super) fn render(frame: &mut Frame, area: Rect, app: &App, now: DateTime<Utc>, focused: bool) {
    let theme = &app.theme;
    let snap = app.snapshot();
    let filter = app.filter(Pane::Expiry);
    let (y, m) = app.calendar_month(now);
    let mut right = vec![Span::raw(format!(" {y}-{m:02} "))];
    if !filter.is_empty() {
        right.push(Span::styled(format!(" /{filter} "), theme.bold()));
    }
    let shown = app.expiry.creds.len();
    let pos = if shown == 0 {
        0
    } else {
        app.expiry.nav.selected + 1
    };
    right.push(Span::raw(format!(" {pos}/{shown} ")));
    let block = pane_block(app, "Secret expiry", Line::from(right), focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.width == 0 || inner.height == 0 {
        return;
    }

    // Bottom summary line for the selected credential when there is a row to spare.
    let (main, summary) = if inner.height > CAL_H {
        (
            Rect {
                height: inner.height - 1,
                ..inner
            },
            Some(Rect {
                y: inner.y + inner.height - 1,
                height: 1,
                ..inner
            }),
        )
    } else {
        (inner, None)
    };

    // Calendar grid: as many months as fit beside a list of at least LIST_MIN (wider lists when there is room).
    let list_min = if main.width >= 70 { 44 } else { LIST_MIN };
    let cal_fits = main.height >= CAL_H && main.width >= CAL_W + 1 + list_min;
    let (cal_cols, cal_rows) = if cal_fits {
        let cols = ((main.width - list_min) / (CAL_W + 1)).clamp(1, 3);
        let rows = ((main.height + 1) / (CAL_H + 1)).clamp(1, 2);
        (cols, rows)
    } else {
        (0, 0)
    };
    let cal_block_w = cal_cols * (CAL_W + 1);
    if cal_cols > 0 {
        let styles = day_styles(app, now);
        let mut n = 0;
        for row in 0..cal_rows {
            for col in 0..cal_cols {
                let (yy, mm) = month_add((y, m), n);
                n += 1;
                let Some(date) = to_date(yy, mm, 1) else {
                    continue;
                };
                let cal = Monthly::new(date, &styles)
                    .show_month_header(theme.bold())
                    .show_weekdays_header(theme.dim());
                let rect = Rect {
                    x: main.x + col * (CAL_W + 1),
                    y: main.y + row * (CAL_H + 1),
                    width: CAL_W,
                    height: cal.height(),
                };
                // Monthly writes one line per week without clipping to its area: only draw it where it fits.
                if rect.bottom() <= main.bottom() && rect.right() <= main.right() {
                    frame.render_widget(cal, rect);
                }
            }
        }
        // Legend under the calendars when a row is free: the marks are modifiers, so it reads without colour.
        let used_h = cal_rows * (CAL_H + 1);
        if main.height > used_h {
            let legend = Line::from(vec![
                Span::raw("days: "),
                Span::styled("fail", theme.expiry_day(Status::Fail)),
                Span::raw(" "),
                Span::styled("warn", theme.expiry_day(Status::Warn)),
                Span::raw(" "),
                Span::styled("ok", theme.expiry_day(Status::Ok)),
            ]);
            let r = Rect {
                x: main.x,
                y: main.y + used_h,
                width: cal_block_w.saturating_sub(1).min(main.width),
                height: 1,
            };
            frame.render_widget(Paragraph::new(legend), r);
        }
    }

    let list = Rect {
        x: main.x + cal_block_w,
        width: main.width.saturating_sub(cal_block_w),
        ..main
    };
    render_list(frame, list, app, focused);

    if let Some(r) = summary {
        let line = match app.selected_credential() {
            Some(c) => summary_line(app, c),
            None if snap.credentials.is_empty() => {
                Line::styled("no credentials configured", theme.dim())
            }
            None => Line::styled(format!("no credential matches \"{filter}\""), theme.dim()),
        };
        frame.render_widget(Paragraph::new(line), r);
    }
}

fn summary_line<'a>(app: &App, c: &CredentialView) -> Line<'a> {
    let theme = &app.theme;
    let mut spans = vec![
        Span::styled(
            format!("{} ", theme.symbol(c.expiry_status)),
            theme.status(c.expiry_status),
        ),
        Span::styled(c.id.clone(), theme.bold()),
    ];
    match c.secret_expires {
        Some(exp) => {
            spans.push(Span::raw(format!(" {}", exp.format("%Y-%m-%d"))));
            spans.push(Span::styled(
                format!(" ({})", text::expires_in(c.days_left)),
                theme.status(c.expiry_status),
            ));
        }
        None => spans.push(Span::raw(" no expiry set")),
    }
    let n = c.integrations.len();
    spans.push(Span::raw(format!(
        ", {n} integration{}",
        if n == 1 { "" } else { "s" }
    )));
    if let Some(owner) = &c.owner {
        spans.push(Span::raw(format!(", {owner}")));
    }
    if c.paused {
        spans.push(Span::raw(", paused"));
    }
    Line::from(spans)
}

fn render_list(frame: &mut Frame, area: Rect, app: &App, focused: bool) {
    let theme = &app.theme;
    let snap = app.snapshot();
    if area.width == 0 || area.height == 0 {
        return;
    }
    let w = area.width as usize;
    let h = area.height as usize;
    let off = app.expiry.nav.window(h, app.expiry.creds.len());
    let ell = theme.ellipsis();
    let wide = w >= 44;
    let mut lines = Vec::with_capacity(h);
    for (n, &ci) in app.expiry.creds.iter().enumerate().skip(off).take(h) {
        let c = &snap.credentials[ci];
        let status_style = theme.status(c.expiry_status);
        let mut spans = vec![Span::styled(
            format!("{} ", theme.symbol(c.expiry_status)),
            status_style,
        )];
        if wide {
            // "✖ crm-prod          2026-03-11  expired 3d ago  owner"
            let date = c
                .secret_expires
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| "-".repeat(10));
            let days = text::days_left(c.days_left);
            let id_w = (w.saturating_sub(2 + 1 + 10 + 2 + 14)).clamp(8, 24);
            spans.push(Span::raw(fit(&c.id, id_w, ell)));
            spans.push(Span::raw(format!(" {date}  ")));
            spans.push(Span::styled(format!("{days:<14}"), status_style));
            let used = 2 + id_w + 1 + 10 + 2 + 14;
            if let Some(owner) = &c.owner
                && w > used + 2
            {
                spans.push(Span::raw(format!(
                    " {}",
                    text::truncate(owner, w - used - 1, ell)
                )));
            }
        } else {
            // "✖ crm-prod   3d ago"
            let days = days_short(c.days_left);
            let id_w = w.saturating_sub(2 + 1 + 6);
            spans.push(Span::raw(fit(&c.id, id_w, ell)));
            spans.push(Span::styled(format!(" {days:>6}"), status_style));
        }
        let mut line = Line::from(spans);
        if focused && n == app.expiry.nav.selected {
            line = line.style(theme.selected());
        }
        lines.push(line);
    }
    if lines.is_empty() {
        let msg = if snap.credentials.is_empty() {
            "no credentials"
        } else {
            "no match"
        };
        lines.push(Line::styled(msg, theme.dim()));
    }
    frame.render_widget(Paragraph::new(lines), area);
}
