//! Detail of one 401/403 event (Enter in the 401/403 log): where it came from, who it is about, and its group's
//! first and last sighting.

use super::super::app::{App, group_key};
use super::super::text;
use super::pane_block;
use crate::model::{AuthEvent, PROBE_SOURCE, Status};
use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

const LABEL_W: usize = 13;

pub(super) fn render(frame: &mut Frame, area: Rect, app: &App, e: &AuthEvent, now: DateTime<Utc>) {
    let theme = &app.theme;
    let snap = app.snapshot();
    let status = if e.http_status == 401 {
        Status::Fail
    } else {
        Status::Warn
    };
    let right = Line::from(Span::styled(
        format!(" {} {} ", theme.symbol(status), e.http_status),
        theme.status(status),
    ));
    let title = format!(
        "401/403 event: {}",
        e.integration.as_deref().unwrap_or("unmatched")
    );
    let block = pane_block(app, &title, right, true);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.width == 0 || inner.height == 0 {
        return;
    }
    let key = group_key(e);
    let group = app.log.groups.iter().find(|g| g.key == key);
    let integ = e.integration.as_deref().and_then(|n| snap.integration(n));
    let cred = integ.and_then(|i| snap.credential(&i.credential));

    let source = if e.source == PROBE_SOURCE {
        "probe (authwatch's own token request or API call)".to_string()
    } else {
        match snap.log_sources.iter().find(|s| s.name == e.source) {
            Some(s) if s.ok => format!("log source {} (reading)", s.name),
            Some(s) => format!("log source {} ({})", s.name, s.status),
            None => format!("log source {}", e.source),
        }
    };
    let mut fields: Vec<(&str, String)> = vec![
        (
            "Integration",
            e.integration
                .clone()
                .unwrap_or_else(|| "unmatched (no configured integration matched the line)".into()),
        ),
        (
            "Status",
            format!("{} {}", e.http_status, status_word(e.http_status)),
        ),
        (
            "Error",
            if e.error.is_empty() {
                "(none given)".into()
            } else {
                e.error.clone()
            },
        ),
        ("Source", source),
    ];
    if let Some(location) = &e.origin.location {
        fields.push(("Where", location.clone()));
    }
    // What the line (or the probe) said; else the configuration's value, marked as such.
    let said = if e.source == PROBE_SOURCE {
        "used by the probe"
    } else {
        "in the line"
    };
    fields.push((
        "Client id",
        match (&e.origin.client_id, cred) {
            (Some(id), _) => format!("{id} ({said})"),
            (None, Some(c)) => format!("{} (configured)", c.client_id),
            (None, None) => "-".into(),
        },
    ));
    fields.push((
        "MID",
        match (&e.origin.mid, integ.and_then(|i| i.account_id.as_ref())) {
            (Some(m), _) => format!("{m} ({said})"),
            (None, Some(m)) => format!("{m} (configured)"),
            (None, None) => "-".into(),
        },
    ));
    fields.push((
        "URL host",
        e.origin.url_host.clone().unwrap_or_else(|| "-".into()),
    ));
    fields.extend([("Seen at", text::stamp(e.at, now))]);
    if let Some(g) = group {
        fields.push((
            "Group",
            format!(
                "×{} with this integration, status, error and source",
                g.events.len()
            ),
        ));
        fields.push(("First seen", text::stamp(g.first, now)));
        fields.push(("Last seen", text::stamp(g.last, now)));
    }
    if let Some(i) = integ {
        fields.push((
            "Integration",
            format!(
                "{} now, team {}",
                theme.status_text(i.health.status),
                i.team.as_deref().unwrap_or("-")
            ),
        ));
    }
    let w = inner.width as usize;
    let value_w = w.saturating_sub(LABEL_W).max(1);
    let mut lines: Vec<Line> = Vec::new();
    for (label, value) in fields {
        for (n, chunk) in text::wrap(&value, value_w).into_iter().enumerate() {
            let l = if n == 0 { label } else { "" };
            lines.push(Line::from(vec![
                Span::styled(
                    text::fit(l, LABEL_W, "~"),
                    Style::new().add_modifier(Modifier::BOLD),
                ),
                Span::raw(chunk),
            ]));
        }
    }
    let h = inner.height as usize;
    let top = app.detail.scroll.clamp(h, lines.len());
    let visible: Vec<Line> = lines.into_iter().skip(top).take(h).collect();
    frame.render_widget(Paragraph::new(visible), inner);
}

fn status_word(status: u16) -> &'static str {
    match status {
        401 => "Unauthorized: credentials or token rejected",
        403 => "Forbidden: authenticated, but not allowed (scope, MID or permission)",
        _ => "",
    }
}
