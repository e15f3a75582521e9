//! Detail of one integration: everything an on-call needs to act, scrollable at 80x24.

use super::super::app::App;
use super::super::text::{self, fit};
use super::integrations::latency;
use super::pane_block;
use crate::engine::IntegrationView;
use crate::model::Status;
use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

const LABEL_W: usize = 15;
/// What to do when a client secret is expiring (SFMC has no API for it: Setup > Installed Packages only).
const EXPIRY_RUNBOOK: &str = "Secret expiring or expired: in Setup > Installed Packages generate a new secret (staged), update \
every consumer (SFMC accepts both secrets after 5 minutes), then activate it; activation disables the old secret \
immediately and cannot be undone.";
/// Probes listed in the detail view.
const PROBES_SHOWN: usize = 10;

pub(super) fn render(frame: &mut Frame, area: Rect, app: &App, name: &str, now: DateTime<Utc>) {
    let theme = &app.theme;
    let iv = app.snapshot().integration(name).cloned();
    let right = match &iv {
        Some(i) => Line::from(Span::styled(
            format!(" {} ", theme.status_text(i.health.status)),
            theme.status(i.health.status),
        )),
        None => Line::default(),
    };
    let title = format!("Integration {name}");
    let block = pane_block(app, &title, right, true);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.width == 0 || inner.height == 0 {
        return;
    }
    let lines = match &iv {
        Some(i) => lines(app, i, now, inner.width as usize),
        None => vec![Line::styled(
            format!("{name} is no longer in the configuration (Esc goes back)"),
            theme.dim(),
        )],
    };
    let h = inner.height as usize;
    let top = app.detail_scroll.clamp(h, lines.len());
    let more_below = lines.len() > top + h;
    let visible: Vec<Line> = lines.into_iter().skip(top).take(h).collect();
    frame.render_widget(Paragraph::new(visible), inner);
    if more_below || top > 0 {
        let hint = match (top > 0, more_below) {
            (true, true) => " more: j/k ",
            (false, true) => " more below: j ",
            _ => " top: g ",
        };
        let w = hint.len() as u16;
        if area.width > w + 2 {
            let r = Rect::new(area.right() - w - 1, area.bottom() - 1, w, 1);
            frame.render_widget(Paragraph::new(Span::styled(hint, theme.bold())), r);
        }
    }
}

/// "Label          value", with the value wrapped under itself.
fn field<'a>(label: &str, value: Vec<Span<'a>>, width: usize) -> Vec<Line<'a>> {
    let mut first = vec![Span::styled(
        fit(label, LABEL_W, "~"),
        Style::new().add_modifier(Modifier::BOLD),
    )];
    let value_w = width.saturating_sub(LABEL_W).max(1);
    let plain: String = value.iter().map(|s| s.content.as_ref()).collect();
    if text::width(&plain) <= value_w || value.len() > 1 {
        first.extend(value);
        return vec![Line::from(first)];
    }
    let style = value.first().map(|s| s.style).unwrap_or_default();
    let mut out = Vec::new();
    for (n, chunk) in text::wrap(&plain, value_w).into_iter().enumerate() {
        if n == 0 {
            first.push(Span::styled(chunk, style));
            out.push(Line::from(std::mem::take(&mut first)));
        } else {
            out.push(Line::from(vec![
                Span::raw(" ".repeat(LABEL_W)),
                Span::styled(chunk, style),
            ]));
        }
    }
    out
}

fn raw<'a>(s: impl Into<String>) -> Vec<Span<'a>> {
    vec![Span::raw(s.into())]
}

fn lines<'a>(app: &App, i: &IntegrationView, now: DateTime<Utc>, width: usize) -> Vec<Line<'a>> {
    let theme = &app.theme;
    let snap = app.snapshot();
    let mut out: Vec<Line> = Vec::new();
    let status = i.health.status;

    // Verdict and reasons first: the answer to "what is wrong".
    out.extend(field(
        "Status",
        vec![Span::styled(
            theme.status_text(status),
            theme.status(status),
        )],
        width,
    ));
    if i.history.is_empty() {
        out.extend(field("Reason", raw("probing... (no result yet)"), width));
    }
    for (n, r) in i.health.reasons.iter().enumerate() {
        out.extend(field(
            if n == 0 { "Reason" } else { "" },
            raw(r.clone()),
            width,
        ));
    }
    // Runbook: what to do about the latest outcome, and about the secret when it is expiring.
    let cred = snap.credential(&i.credential);
    let mut runbook: Vec<String> = Vec::new();
    if let Some(p) = i.last_probe()
        && (!p.outcome.is_ok() || status == Status::Ok)
    {
        runbook.push(p.outcome.runbook().to_string());
    }
    if cred.is_some_and(|c| matches!(c.expiry_status, Status::Warn | Status::Fail)) {
        runbook.push(EXPIRY_RUNBOOK.to_string());
    }
    for (n, r) in runbook.into_iter().enumerate() {
        out.extend(field(
            if n == 0 { "Runbook" } else { "" },
            vec![Span::styled(r, theme.bold())],
            width,
        ));
    }

    // Identity.
    let cred_text = match cred {
        Some(c) => format!("{} (client id {})", c.id, c.client_id),
        None => i.credential.clone(),
    };
    out.extend(field("Credential", raw(cred_text), width));
    match i.secret_expires {
        Some(exp) => {
            let days = cred
                .and_then(|c| c.days_left)
                .or_else(|| Some((exp - now).num_days()));
            let st = cred.map(|c| c.expiry_status).unwrap_or(Status::Unknown);
            out.extend(field(
                "Secret expires",
                vec![
                    Span::raw(format!("{} ", exp.format("%Y-%m-%d"))),
                    Span::styled(
                        format!("{} {}", theme.symbol(st), text::expires_in(days)),
                        theme.status(st),
                    ),
                ],
                width,
            ));
        }
        None => out.extend(field(
            "Secret expires",
            raw("not set in the configuration"),
            width,
        )),
    }
    let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    out.extend(field("Business unit", raw(opt(&i.business_unit)), width));
    out.extend(field("MID", raw(opt(&i.account_id)), width));
    out.extend(field("Team", raw(opt(&i.team)), width));
    out.extend(field("Environment", raw(opt(&i.environment)), width));
    let procs = if i.processes.is_empty() {
        "-".to_string()
    } else {
        i.processes.join(", ")
    };
    out.extend(field("Processes", raw(procs), width));

    // Scopes: required vs granted, missing marked.
    let granted = i.granted_scopes();
    let latest_missing: &[String] = i
        .last_probe()
        .map(|p| p.missing_scopes.as_slice())
        .unwrap_or(&[]);
    let mut scope_spans: Vec<Span> = Vec::new();
    for s in &i.required_scopes {
        let missing = latest_missing.contains(s) || granted.is_some_and(|g| !g.contains(s));
        if !scope_spans.is_empty() {
            scope_spans.push(Span::raw(" "));
        }
        if missing {
            scope_spans.push(Span::styled(
                format!("{} {s} MISSING", theme.symbol(Status::Fail)),
                theme.status(Status::Fail),
            ));
        } else if granted.is_some() {
            scope_spans.push(Span::styled(
                format!("{} {s}", theme.symbol(Status::Ok)),
                theme.status(Status::Ok),
            ));
        } else {
            scope_spans.push(Span::raw(format!("? {s}")));
        }
    }
    if scope_spans.is_empty() {
        scope_spans.push(Span::raw("none required"));
    }
    // Wrap scope spans by hand (several styled spans).
    let mut line: Vec<Span> = vec![Span::styled(fit("Scopes", LABEL_W, "~"), theme.bold())];
    let mut line_w = LABEL_W;
    for s in scope_spans {
        let w = s.width();
        if line_w + w > width && line_w > LABEL_W {
            out.push(Line::from(std::mem::take(&mut line)));
            line.push(Span::raw(" ".repeat(LABEL_W)));
            line_w = LABEL_W;
            if s.content == " " {
                continue;
            }
        }
        line_w += w;
        line.push(s);
    }
    out.push(Line::from(line));
    let granted_text = match granted {
        Some([]) => "(none)".to_string(),
        Some(g) => g.join(" "),
        None => "unknown (no token granted yet)".to_string(),
    };
    out.extend(field("Granted", raw(granted_text), width));

    // Timeline.
    out.extend(field(
        "Auth failures",
        raw(format!("{} consecutive", i.consecutive_auth_failures)),
        width,
    ));
    let when =
        |t: Option<DateTime<Utc>>| t.map(|t| text::stamp(t, now)).unwrap_or_else(|| "-".into());
    out.extend(field("Failing since", raw(when(i.failing_since)), width));
    out.extend(field("Last success", raw(when(i.last_success)), width));
    let next = if i.paused {
        "paused (press p to probe now and resume)".to_string()
    } else if i.probing {
        "probing now...".to_string()
    } else {
        when(i.next_probe_at)
    };
    out.extend(field("Next probe", raw(next), width));
    if let Some(ack) = &i.acked {
        out.extend(field(
            "Acknowledged",
            vec![Span::styled(
                format!("ACK by {} {}", ack.actor, text::stamp(ack.at, now)),
                theme.bold(),
            )],
            width,
        ));
    }

    // History: uptime, latency trend, the week's incidents.
    let pct = |u: Option<f64>| u.map(|u| format!("{u:.2}%")).unwrap_or_else(|| "-".into());
    out.extend(field(
        "Uptime",
        raw(format!(
            "{} (24h)  {} (7d)",
            pct(i.uptime_24h),
            pct(i.uptime_7d)
        )),
        width,
    ));
    let latencies: Vec<u64> = i.history.iter().filter_map(|p| p.latency_ms()).collect();
    if !latencies.is_empty() {
        let room = width.saturating_sub(LABEL_W + 16).clamp(8, 60);
        let recent = &latencies[latencies.len().saturating_sub(room)..];
        let (lo, hi) = (
            recent.iter().min().copied().unwrap_or(0),
            recent.iter().max().copied().unwrap_or(0),
        );
        out.extend(field(
            "Latency",
            vec![
                Span::raw(sparkline(recent, theme.ascii)),
                Span::styled(
                    format!(" {}-{}", latency(Some(lo)), latency(Some(hi))),
                    theme.dim(),
                ),
            ],
            width,
        ));
    }
    if i.incidents.is_empty() {
        out.extend(field("Incidents", raw("none in the last 7 days"), width));
    }
    for (n, inc) in i.incidents.iter().enumerate() {
        let lasted = match inc.ended {
            Some(end) => crate::duration::format_age(end - inc.started),
            None => format!(
                "ongoing, {}",
                crate::duration::format_age(now - inc.started)
            ),
        };
        out.extend(field(
            if n == 0 { "Incidents (7d)" } else { "" },
            vec![
                Span::raw(format!("{} ", text::clock_or_date(inc.started, now))),
                Span::styled(format!("{:<5}", inc.worst.label()), theme.status(inc.worst)),
                Span::raw(format!(" {lasted}: ")),
                Span::raw(text::truncate(
                    &inc.reason,
                    width.saturating_sub(LABEL_W + 30).max(10),
                    theme.ellipsis(),
                )),
            ],
            width,
        ));
    }

    // Last probes, newest first.
    out.push(Line::default());
    out.push(Line::styled(
        format!("Last probes ({} kept)", i.history.len()),
        theme.bold(),
    ));
    let ell = theme.ellipsis();
    let head = format!(
        "{} {} {:>4} {:>7} {:>7} ",
        fit("time", 11, ell),
        fit("outcome", 14, ell),
        "HTTP",
        "token",
        "call"
    );
    let detail_w = width.saturating_sub(text::width(&head));
    out.push(Line::styled(
        format!("{head}{}", fit("error", detail_w, ell)),
        theme.header_row(),
    ));
    if i.history.is_empty() {
        out.push(Line::styled("probing...", theme.dim()));
    }
    for p in i.history.iter().rev().take(PROBES_SHOWN) {
        let st = if p.outcome.is_ok() {
            Status::Ok
        } else if p.outcome.is_auth_failure() {
            Status::Fail
        } else {
            Status::Warn
        };
        let err = match (&p.error, p.outcome.is_ok()) {
            (Some(e), _) => e.clone(),
            (None, true) => String::new(),
            (None, false) => p.summary(),
        };
        out.push(Line::from(vec![
            Span::raw(format!(
                "{} ",
                fit(&text::clock_or_date(p.at, now), 11, ell)
            )),
            Span::styled(
                format!("{} ", fit(p.outcome.as_str(), 14, ell)),
                theme.status(st),
            ),
            Span::raw(format!(
                "{:>4} {:>7} {:>7} ",
                p.http_status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into()),
                latency(p.token_ms),
                latency(p.call_ms)
            )),
            Span::raw(text::truncate(&err, detail_w, ell)),
        ]));
    }
    out
}

/// Latencies as a one-line chart, oldest left: block characters, or ASCII ramps with `--ascii`.
fn sparkline(values: &[u64], ascii: bool) -> String {
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    const RAMP: [char; 8] = ['_', '.', ',', '-', '=', '+', '*', '#'];
    let levels = if ascii { &RAMP } else { &BLOCKS };
    let lo = values.iter().min().copied().unwrap_or(0);
    let hi = values.iter().max().copied().unwrap_or(0);
    values
        .iter()
        .map(|v| {
            let step = if hi == lo {
                0
            } else {
                ((v - lo) * 7 / (hi - lo)) as usize
            };
            levels[step.min(7)]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::sparkline;

    #[test]
    fn sparkline_scales_between_min_and_max() {
        assert_eq!(sparkline(&[10, 20, 80], false), "▁▂█");
        assert_eq!(sparkline(&[10, 20, 80], true), "_.#");
        assert_eq!(sparkline(&[5, 5], false), "▁▁");
        assert_eq!(sparkline(&[], false), "");
    }
}
