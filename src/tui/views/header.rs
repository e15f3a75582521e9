//! One header line: badge, config, environments, counts, flags, data age and clock. When the line is too narrow,
//! segments first take a compact form, then drop by rank; flags (READ-ONLY, FROZEN, ...) and counts never drop,
//! they only take their short form last.

use super::super::app::App;
use super::super::text;
use crate::model::Status;
use chrono::{DateTime, Utc};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

/// A piece of the header and how willing we are to drop it (higher = dropped first; 0 = never).
struct Seg {
    drop_rank: u8,
    spans: Vec<Span<'static>>,
    /// A shorter form tried before the segment is dropped.
    compact: Option<Vec<Span<'static>>>,
}

impl Seg {
    fn new(drop_rank: u8, spans: Vec<Span<'static>>) -> Self {
        Self {
            drop_rank,
            spans,
            compact: None,
        }
    }
    fn width(&self) -> usize {
        self.spans.iter().map(|s| s.width()).sum()
    }
}

fn width(segs: &[Seg]) -> usize {
    segs.iter().map(Seg::width).sum()
}

pub(super) fn render(buf: &mut Buffer, area: Rect, app: &App, now: DateTime<Utc>) {
    let theme = &app.theme;
    let snap = app.snapshot();
    let worst = snap.summary.worst();

    let mut segs = vec![Seg::new(
        0,
        vec![Span::styled(" authwatch", theme.badge(worst))],
    )];
    if !snap.config_name.is_empty() {
        segs.push(Seg::new(
            3,
            vec![Span::styled(format!(" {}", snap.config_name), theme.bold())],
        ));
    }
    if !snap.environments.is_empty() {
        segs.push(Seg::new(
            4,
            vec![Span::raw(format!(" [{}]", snap.environments.join(",")))],
        ));
    }
    let s = &snap.summary;
    let mut counts = vec![Span::raw(" ")];
    let mut compact_counts = vec![Span::raw(" ")];
    for (status, n) in [
        (Status::Fail, s.fail),
        (Status::Warn, s.warn),
        (Status::Unknown, s.unknown),
        (Status::Ok, s.ok),
    ] {
        let style = if n > 0 {
            theme.status(status)
        } else {
            theme.dim()
        };
        counts.push(Span::styled(
            format!(" {} {n} {}", theme.symbol(status), status.label()),
            style,
        ));
        compact_counts.push(Span::styled(format!(" {}{n}", theme.symbol(status)), style));
    }
    segs.push(Seg {
        drop_rank: 0,
        spans: counts,
        compact: Some(compact_counts),
    });
    let left_len = segs.len();

    if app.engine_stopped {
        segs.push(Seg::new(
            0,
            vec![
                Span::raw(" "),
                Span::styled(" ENGINE STOPPED ", theme.message(true)),
            ],
        ));
    }
    if let Some(conn) = &snap.connection {
        // A remote console that lost its agent: the data is stale; the notice says since when.
        let style = theme.message(true).add_modifier(Modifier::REVERSED);
        segs.push(Seg {
            drop_rank: 0,
            spans: vec![Span::raw(" "), Span::styled(format!(" {conn} "), style)],
            compact: Some(vec![
                Span::raw(" "),
                Span::styled(format!(" {} ", conn.replace(" since ", " ")), style),
            ]),
        });
    }
    if snap.history_error.is_some() {
        segs.push(Seg::new(
            0,
            vec![
                Span::raw(" "),
                Span::styled(
                    " HISTORY NOT SAVED ",
                    theme.message(true).add_modifier(Modifier::REVERSED),
                ),
            ],
        ));
    }
    if app.read_only() {
        segs.push(Seg::new(
            0,
            vec![Span::raw(" "), Span::styled(" READ-ONLY ", theme.flag())],
        ));
    }
    if app.is_frozen() {
        segs.push(Seg::new(
            0,
            vec![
                Span::raw(" "),
                Span::styled(
                    format!(" FROZEN +{} ", app.freeze.pending_updates),
                    theme.flag(),
                ),
            ],
        ));
    }
    let (data, data_short) = match snap.newest_data_at {
        Some(t) => {
            let a = text::age(Some(t), now);
            (format!("  data {a} ago"), format!(" {a} ago"))
        }
        None => ("  no data yet".to_string(), " no data".to_string()),
    };
    segs.push(Seg {
        drop_rank: 1,
        spans: vec![Span::raw(data)],
        compact: Some(vec![Span::raw(data_short)]),
    });
    segs.push(Seg {
        drop_rank: 2,
        spans: vec![Span::raw(format!("  {} UTC", now.format("%H:%M:%S")))],
        compact: Some(vec![Span::raw(format!(" {}Z", now.format("%H:%M:%S")))]),
    });

    // First compact, then drop, highest rank first, until everything fits.
    let avail = area.width as usize;
    let mut left_len = left_len;
    let mut ranked: Vec<usize> = (0..segs.len()).filter(|&i| segs[i].drop_rank > 0).collect();
    ranked.sort_by_key(|&i| std::cmp::Reverse(segs[i].drop_rank));
    for &i in &ranked {
        if width(&segs) <= avail {
            break;
        }
        if let Some(c) = segs[i].compact.take() {
            segs[i].spans = c;
        }
    }
    let mut dropped = vec![false; segs.len()];
    for &i in &ranked {
        if width(&segs) <= avail {
            break;
        }
        segs[i].spans.clear();
        dropped[i] = true;
    }
    // Still too wide (a narrow wall screen with flags on): the segments that never drop take their short form.
    for i in 0..segs.len() {
        if width(&segs) <= avail {
            break;
        }
        if segs[i].drop_rank == 0
            && let Some(c) = segs[i].compact.take()
        {
            segs[i].spans = c;
        }
    }
    left_len -= dropped[..left_len].iter().filter(|d| **d).count();
    let mut n = 0;
    segs.retain(|_| {
        n += 1;
        !dropped[n - 1]
    });
    let right = segs.split_off(left_len);
    let gap = avail.saturating_sub(width(&segs) + width(&right));
    let mut spans: Vec<Span> = segs.into_iter().flat_map(|s| s.spans).collect();
    spans.push(Span::raw(" ".repeat(gap)));
    spans.extend(right.into_iter().flat_map(|s| s.spans));
    Paragraph::new(Line::from(spans)).render(area, buf);
}
