//! The wall screen (`--wall`): for a screen across the room. Big counts, the failing integrations with status,
//! "since", team and owner in big letters (as big as the room allows), the next 30 days of secret expiries as a
//! strip, and the failing integrations' details in turn (the cycle is driven by `App::tick`). No cursor, no key
//! but quit; status is always words and symbols, colour only adds to them. Times are shown to the minute: the
//! wall redraws when the minute turns, the cycle moves on or the state changes.

use super::super::app::{App, WALL_CYCLE_SECS, reason, status_since};
use super::super::text;
use super::big::{self, Size};
use super::detail;
use crate::engine::IntegrationView;
use crate::model::Status;
use chrono::{DateTime, Datelike, Duration, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use std::sync::Arc;

/// Days in the expiry strip.
const STRIP_DAYS: i64 = 30;

pub(super) fn render(frame: &mut Frame, area: Rect, app: &App, now: DateTime<Utc>) {
    let failing = app.wall_failing();
    let strip_h = 4 + expiring(app, now).len().clamp(1, 4) as u16;
    let [header, counts, middle, strip, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(Size::HEIGHT + 2),
        Constraint::Fill(1),
        Constraint::Length(strip_h),
        Constraint::Length(1),
    ])
    .areas(area);
    header_line(frame, header, app, now);
    counts_row(frame, counts, app);
    if failing.is_empty() {
        all_ok(frame, middle, app, now);
    } else {
        let detail_w = if middle.width >= 160 {
            (middle.width * 40 / 100).clamp(70, 120)
        } else {
            0
        };
        let [list, cycle] =
            Layout::horizontal([Constraint::Fill(1), Constraint::Length(detail_w)]).areas(middle);
        failing_list(frame, list, app, &failing, now);
        if detail_w > 0 {
            cycle_detail(frame, cycle, app, now);
        }
    }
    expiry_strip(frame, strip, app, now);
    footer_line(frame, footer, app, failing.len());
}

/// "34m", "2h 05m", "3d 4h", "<1m": ages to the minute (the wall redraws once a minute).
fn age(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let m = (now - at).num_minutes().max(0);
    match m {
        0 => "<1m".into(),
        1..=59 => format!("{m}m"),
        60..=1439 => format!("{}h {:02}m", m / 60, m % 60),
        _ => format!("{}d {}h", m / 1440, m % 1440 / 60),
    }
}

fn header_line(frame: &mut Frame, area: Rect, app: &App, now: DateTime<Utc>) {
    let theme = &app.theme;
    let snap = app.snapshot();
    let worst = snap.summary.worst();
    let mut left = vec![
        Span::styled(
            format!(" authwatch {} ", theme.status_text(worst)),
            theme.badge(worst),
        ),
        Span::styled(format!(" {}", snap.config_name), theme.bold()),
    ];
    if !snap.environments.is_empty() {
        left.push(Span::raw(format!(" [{}]", snap.environments.join(","))));
    }
    left.push(Span::raw("  WALL (read-only)"));
    if let Some(c) = &snap.connection {
        left.push(Span::styled(format!("  {c}"), theme.message(true)));
    }
    if let Some(e) = &snap.history_error {
        left.push(Span::styled(
            format!("  history not saved: {e}"),
            theme.message(true),
        ));
    }
    let clock = format!("{} UTC ", now.format("%Y-%m-%d %H:%M"));
    let used: usize = left.iter().map(Span::width).sum();
    let pad = (area.width as usize).saturating_sub(used + clock.len());
    left.push(Span::raw(" ".repeat(pad)));
    left.push(Span::styled(clock, theme.bold()));
    frame.render_widget(Paragraph::new(Line::from(left)), area);
}

/// Four big numbers with their status word under each: FAIL, WARN, UNKNOWN, OK.
fn counts_row(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let s = app.snapshot().summary;
    let items = [
        (Status::Fail, s.fail),
        (Status::Warn, s.warn),
        (Status::Unknown, s.unknown),
        (Status::Ok, s.ok),
    ];
    let cols = Layout::horizontal([Constraint::Ratio(1, 4); 4]).split(area);
    for ((status, n), col) in items.into_iter().zip(cols.iter()) {
        let digits = n.to_string();
        let size = if Size::Half.width(&digits) + 2 <= col.width {
            Size::Half
        } else {
            Size::Quarter
        };
        let w = size.width(&digits).min(col.width);
        let x = col.x + (col.width - w) / 2;
        // Zero stays plain so the eye goes to what is not zero.
        let style = if n > 0 {
            theme.status(status)
        } else {
            theme.dim()
        };
        let big_area = Rect::new(x, col.y + 1, w, Size::HEIGHT).intersection(*col);
        big::draw(
            frame.buffer_mut(),
            big_area,
            &digits,
            size,
            style,
            theme.ascii,
        );
        let label = format!("{} {}", theme.symbol(status), status.label());
        let lw = text::width(&label) as u16;
        if col.height > Size::HEIGHT + 1 {
            let r = Rect::new(
                col.x + col.width.saturating_sub(lw) / 2,
                col.y + Size::HEIGHT + 1,
                lw.min(col.width),
                1,
            );
            let lstyle = if n > 0 {
                theme.status(status).add_modifier(Modifier::BOLD)
            } else {
                theme.dim()
            };
            frame.render_widget(Paragraph::new(Span::styled(label, lstyle)), r);
        }
    }
}

fn all_ok(frame: &mut Frame, area: Rect, app: &App, now: DateTime<Utc>) {
    let theme = &app.theme;
    let n = app.snapshot().integrations.len();
    let text = if n == 0 {
        "no integrations".to_string()
    } else {
        "all OK".to_string()
    };
    let w = Size::Half.width(&text).min(area.width);
    if area.height >= Size::HEIGHT + 2 {
        let r = Rect::new(area.x + (area.width - w) / 2, area.y + 1, w, Size::HEIGHT);
        let style = if n == 0 {
            theme.dim()
        } else {
            theme.status(Status::Ok)
        };
        big::draw(frame.buffer_mut(), r, &text, Size::Half, style, theme.ascii);
    }
    let line = format!(
        "{} all {n} integrations OK at {} UTC",
        theme.symbol(Status::Ok),
        now.format("%H:%M")
    );
    if area.height >= Size::HEIGHT + 4 {
        let r = Rect::new(area.x, area.y + Size::HEIGHT + 2, area.width, 1);
        frame.render_widget(Paragraph::new(line).centered().style(theme.bold()), r);
    }
}

/// The one-line form of a failing integration: "✖ FAIL nightly-etl-loader since 02:00 (34m) team data-eng
/// owner ops@example.com: reason".
fn line_of<'a>(app: &App, i: &IntegrationView, now: DateTime<Utc>) -> Line<'a> {
    let theme = &app.theme;
    let status = i.health.status;
    let mut spans = vec![
        Span::styled(
            format!("{} ", theme.status_text(status)),
            theme.status(status),
        ),
        Span::styled(i.name.clone(), theme.bold()),
    ];
    spans.push(Span::raw(format!("  {}", since_text(i, now))));
    if let Some(t) = &i.team {
        spans.push(Span::raw(format!("  team {t}")));
    }
    if let Some(o) = owner(app, i) {
        spans.push(Span::raw(format!("  owner {o}")));
    }
    if i.acked.is_some() {
        spans.push(Span::styled("  ACK", theme.bold()));
    }
    spans.push(Span::styled(format!("  {}", reason(i, now)), theme.dim()));
    Line::from(spans)
}

fn since_text(i: &IntegrationView, now: DateTime<Utc>) -> String {
    match status_since(i) {
        Some(t) if t.date_naive() == now.date_naive() => {
            format!("since {} ({})", t.format("%H:%M"), age(t, now))
        }
        Some(t) => format!("since {} ({})", t.format("%m-%d %H:%M"), age(t, now)),
        None => "since -".into(),
    }
}

fn owner(app: &App, i: &IntegrationView) -> Option<String> {
    app.snapshot()
        .credential(&i.credential)
        .and_then(|c| c.owner.clone())
}

/// The failing integrations, as big as they all fit: two big lines each (status and name; since, team and
/// owner), else one big line and one plain line, else one plain line each.
fn failing_list(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    failing: &[&Arc<IntegrationView>],
    now: DateTime<Utc>,
) {
    let theme = &app.theme;
    let title = format!(" Not OK: {} ", failing.len());
    let block = Block::bordered()
        .border_set(theme.border(false))
        .title(Line::styled(title, theme.title(false)));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.width < 4 || inner.height == 0 {
        return;
    }
    // The first entries (the worst) as big as the rows allow while every later one still gets its own line:
    // two big lines + a plain line + a gap, else one big line + plain line + gap, else one plain line.
    let big2 = 2 * Size::HEIGHT + 2;
    let big1 = Size::HEIGHT + 2;
    let mut y = inner.y;
    for (k, i) in failing.iter().enumerate() {
        let left = inner.bottom().saturating_sub(y);
        let rest = failing.len() - k;
        let after = (rest - 1) as u16;
        let per = if left >= big2 + after {
            big2
        } else if left >= big1 + after {
            big1
        } else {
            1
        };
        if left == 0 || (per == 1 && left == 1 && rest > 1) {
            if left >= 1 {
                let more = format!("+{rest} more not OK (see the counts above)");
                let r = Rect::new(inner.x, y, inner.width, 1);
                frame.render_widget(Paragraph::new(Span::styled(more, theme.bold())), r);
            }
            break;
        }
        let status = i.health.status;
        if per > 1 {
            let head = format!("{} {}", status.label(), i.name);
            let r = Rect::new(inner.x, y, inner.width, Size::HEIGHT);
            let size = if Size::Half.width(&head) <= inner.width && per == big2 {
                Size::Half
            } else {
                Size::Quarter
            };
            let head = big::fit(&head, inner.width, size);
            big::draw(
                frame.buffer_mut(),
                r,
                &head,
                size,
                theme.status(status),
                theme.ascii,
            );
            y += Size::HEIGHT;
            if per == big2 {
                let mut second = match status_since(i) {
                    Some(t) => age(t, now),
                    None => "-".into(),
                };
                for part in [i.team.clone(), owner(app, i)].into_iter().flatten() {
                    second.push_str("  ");
                    second.push_str(&part);
                }
                let second = big::fit(&second, inner.width, Size::Quarter);
                let r = Rect::new(inner.x, y, inner.width, Size::HEIGHT);
                big::draw(
                    frame.buffer_mut(),
                    r,
                    &second,
                    Size::Quarter,
                    theme.bold(),
                    theme.ascii,
                );
                y += Size::HEIGHT;
            }
        }
        let r = Rect::new(inner.x, y, inner.width, 1);
        frame.render_widget(Paragraph::new(line_of(app, i, now)), r);
        y += if per > 1 { 2 } else { 1 };
    }
}

/// The detail of the failing integration whose turn it is.
fn cycle_detail(frame: &mut Frame, area: Rect, app: &App, now: DateTime<Utc>) {
    let Some((i, pos, n)) = app.wall_shown() else {
        return;
    };
    detail::render(frame, area, app, &i.name, now);
    let note = format!(" {pos}/{n}, next every {WALL_CYCLE_SECS} s ");
    let w = note.len() as u16;
    if area.width > w + 4 && area.height > 2 {
        let r = Rect::new(area.x + 2, area.bottom() - 1, w, 1);
        frame.render_widget(Paragraph::new(Span::styled(note, app.theme.bold())), r);
    }
}

/// Credentials expired or expiring within the strip, soonest first.
fn expiring(app: &App, now: DateTime<Utc>) -> Vec<(i64, String, Option<String>, Status)> {
    let mut v: Vec<_> = app
        .snapshot()
        .credentials
        .iter()
        .filter_map(|c| {
            let exp = c.secret_expires?;
            let days = (exp.date_naive() - now.date_naive()).num_days();
            (days < STRIP_DAYS).then(|| (days, c.id.clone(), c.owner.clone(), c.expiry_status))
        })
        .collect();
    v.sort();
    v
}

/// The next 30 days, one cell per day: the day of the month, then a mark where a secret expires
/// (✖ within the critical window, ▲ within the warning window, the count when several), then the list.
fn expiry_strip(frame: &mut Frame, area: Rect, app: &App, now: DateTime<Utc>) {
    let theme = &app.theme;
    let items = expiring(app, now);
    let block = Block::bordered()
        .border_set(theme.border(false))
        .title(Line::styled(
            " Secret expiry: next 30 days ",
            theme.title(false),
        ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.width < 30 || inner.height < 2 {
        return;
    }
    let cell = (inner.width / STRIP_DAYS as u16).max(1);
    let mut days = Vec::new();
    let mut marks = Vec::new();
    for d in 0..STRIP_DAYS {
        let day = now + Duration::days(d);
        let label = if d == 0 {
            "today".to_string()
        } else if day.day() == 1 || d == 1 {
            day.format("%b %-d").to_string()
        } else {
            day.day().to_string()
        };
        let label = if cell < 3 && d % 7 != 0 {
            // Two cells a day: the numbers would run together; one a week.
            String::new()
        } else if text::width(&label) < cell as usize {
            label
        } else {
            day.day().to_string()
        };
        let day_style = if d == 0 { theme.today() } else { Style::new() };
        days.push(Span::styled(
            text::fit(&label, cell as usize, ""),
            day_style,
        ));
        let here: Vec<_> = items.iter().filter(|(dl, ..)| *dl == d).collect();
        let mark = match here.as_slice() {
            [] => (if theme.ascii { "." } else { "·" }).to_string(),
            [(_, _, _, s)] => theme.symbol(*s).to_string(),
            many => {
                let worst = many.iter().map(|x| x.3).max().unwrap_or(Status::Warn);
                format!("{}{}", theme.symbol(worst), many.len())
            }
        };
        let worst = here.iter().map(|x| x.3).max();
        let mark_style = match worst {
            Some(s) => theme.expiry_day(s),
            None => theme.dim(),
        };
        marks.push(Span::styled(
            text::fit(&mark, cell as usize, ""),
            mark_style,
        ));
    }
    let mut lines = vec![Line::from(days), Line::from(marks)];
    let expired: Vec<_> = items.iter().filter(|(d, ..)| *d < 0).collect();
    if !expired.is_empty() && lines.len() < inner.height as usize {
        // Expired secrets are before the strip: never left out.
        lines.push(Line::styled(
            format!(
                "{} expired: {}",
                theme.symbol(Status::Fail),
                expired
                    .iter()
                    .map(|(d, id, o, _)| entry(id, o, &format!("{}d ago", -d)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            theme.status(Status::Fail),
        ));
    }
    for (d, id, o, s) in items.iter().filter(|(d, ..)| *d >= 0) {
        if lines.len() >= inner.height as usize {
            break;
        }
        let when = (now + Duration::days(*d)).format("%a %b %-d");
        let left = if *d == 0 {
            "today".to_string()
        } else {
            format!("in {d}d")
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", theme.status_text(*s)), theme.status(*s)),
            Span::raw(entry(id, o, &format!("{left} ({when})"))),
        ]));
    }
    if items.is_empty() && lines.len() < inner.height as usize {
        lines.push(Line::styled(
            "no secret expires in the next 30 days",
            theme.dim(),
        ));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

fn entry(id: &str, owner: &Option<String>, when: &str) -> String {
    match owner {
        Some(o) => format!("{id} {when}, owner {o}"),
        None => format!("{id} {when}"),
    }
}

fn footer_line(frame: &mut Frame, area: Rect, app: &App, failing: usize) {
    let theme = &app.theme;
    let cycling = if failing > 1 {
        format!("details of each integration not OK in turn, every {WALL_CYCLE_SECS} s")
    } else {
        String::new()
    };
    let quit = app
        .keymap
        .key_label(
            crate::tui::keymap::Context::Integrations,
            crate::tui::keymap::Action::Quit,
        )
        .unwrap_or_else(|| "q".into());
    let line = Line::from(vec![
        Span::styled(format!(" {quit} "), theme.selected()),
        Span::raw(" quit   "),
        Span::styled(cycling, theme.dim()),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}
