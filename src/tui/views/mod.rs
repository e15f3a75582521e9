//! Pure rendering: `render(frame, app, now)` draws the whole screen from the state. No I/O, no clock.

mod big;
mod detail;
mod event;
mod expiry;
mod footer;
mod header;
mod help;
mod integrations;
mod log;
mod wall;
pub mod wizard;

use super::app::{App, Pane, View};
use super::text;
use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Wrap};

/// The smallest terminal the console draws its screens in.
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

/// Draw the whole screen.
pub fn render(frame: &mut Frame, app: &App, now: DateTime<Utc>) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(frame, area);
        return;
    }
    if app.is_wall() {
        wall::render(frame, area, app, now);
        return;
    }
    let [header_area, body, footer_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    header::render(frame.buffer_mut(), header_area, app, now);
    match app.view() {
        View::Main => main_panes(frame, body, app, now),
        View::Detail(name) => detail::render(frame, body, app, name, now),
        View::Event(ev) => event::render(frame, body, app, ev, now),
    }
    footer::render(frame, footer_area, app, now);
    if app.help_open() {
        help::render(frame, body, app);
    }
    if let Some(w) = app.wizard() {
        wizard::render(frame, body, w, &app.theme, &app.keymap, now);
    }
}

/// The header row alone (the clock), as [`render`] draws it on a screen of `screen`'s size, for a tick that
/// moved nothing else. None when that screen has no such header (the wall, a terminal too small): draw the
/// whole screen instead.
pub fn render_clock(
    screen: Rect,
    app: &App,
    now: DateTime<Utc>,
) -> Option<ratatui::buffer::Buffer> {
    if screen.width < MIN_WIDTH || screen.height < MIN_HEIGHT || app.is_wall() {
        return None;
    }
    let row = Rect {
        height: 1,
        ..screen
    };
    let mut buf = ratatui::buffer::Buffer::empty(row);
    header::render(&mut buf, row, app, now);
    Some(buf)
}

fn main_panes(frame: &mut Frame, body: Rect, app: &App, now: DateTime<Utc>) {
    // The bottom needs 11 rows for a 6-week calendar with borders; the integrations get what they need, up to the
    // rest (sized by the total count, not the filtered one, so filtering does not move the panes).
    let bottom_min = (body.height * 45 / 100).max(11).min(body.height);
    let top_max = body.height - bottom_min;
    let wanted = (app.snapshot().integrations.len() as u16).saturating_add(3);
    let top_h = wanted.clamp(8.min(top_max), top_max);
    let [top, bottom] =
        Layout::vertical([Constraint::Length(top_h), Constraint::Fill(1)]).areas(body);
    let expiry_w = (body.width * 45 / 100).clamp(44, 90);
    let [left, right] =
        Layout::horizontal([Constraint::Length(expiry_w), Constraint::Fill(1)]).areas(bottom);
    integrations::render(frame, top, app, now, app.focus() == Pane::Integrations);
    expiry::render(frame, left, app, now, app.focus() == Pane::Expiry);
    log::render(frame, right, app, now, app.focus() == Pane::Log);
}

/// A bordered pane block: exact title on the left, extra info on the right.
pub(super) fn pane_block<'a>(
    app: &App,
    title: &'a str,
    right: Line<'a>,
    focused: bool,
) -> Block<'a> {
    let theme = &app.theme;
    Block::bordered()
        .border_set(theme.border(focused))
        .border_style(theme.border_style(focused))
        .title(Line::styled(title, theme.title(focused)))
        .title_top(right.right_aligned())
}

fn too_small(frame: &mut Frame, area: Rect) {
    let msg = format!(
        "terminal too small: {}x{}, need {MIN_WIDTH}x{MIN_HEIGHT} (q quits)",
        area.width, area.height
    );
    let lines = text::wrap(&msg, area.width as usize);
    let h = (lines.len() as u16).min(area.height);
    let y = area.y + (area.height - h) / 2;
    let rect = Rect::new(area.x, y, area.width, h);
    let para = Paragraph::new(lines.into_iter().map(Line::from).collect::<Vec<_>>())
        .alignment(Alignment::Center)
        .wrap(Wrap { trim: true });
    frame.render_widget(para, rect);
}

/// The full text of the selected row on the bottom border (focused panes only), for when columns truncate it.
pub(super) fn bottom_note<'a>(
    block: Block<'a>,
    app: &App,
    area: Rect,
    note: Option<String>,
) -> Block<'a> {
    match note {
        Some(n) if area.width > 8 && !n.is_empty() => {
            let max = area.width as usize - 4;
            let t = format!(" {} ", text::truncate(&n, max - 2, app.theme.ellipsis()));
            block.title_bottom(Line::styled(t, app.theme.bold()))
        }
        _ => block,
    }
}

/// Intersect with the frame so no widget ever gets a Rect outside the buffer.
pub(super) fn clamp(r: Rect, within: Rect) -> Rect {
    r.intersection(within)
}
