//! Detail of one integration: everything an on-call needs to act, scrollable at 80x24.

use super::super::app::{App, secret_verified_at};
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
    let top = app.detail.scroll.clamp(h, lines.len());
    let more_below = lines.len() > top + h;
    let visible: Vec<Line> = lines.into_iter().skip(top).take(h).collect();
    frame.render_widget(Paragraph::new(visible), inner);
    // The wall cannot scroll: no hint to keys that do nothing there.
    if !app.is_wall() && (more_below || top > 0) {
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
    if i.history.is_empty() && i.health.reasons.is_empty() {
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

    out.extend(history(app, i, now, width));

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
    out.extend(field(
        "Owner",
        raw(opt(&cred.and_then(|c| c.owner.clone()))),
        width,
    ));
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
    // A probe that reuses a cached token checks the token, not the secret: say when the secret was checked, and
    // until when the token is reused (a revoked secret shows only once a new token is requested).
    let verified = match (secret_verified_at(i), i.last_probe()) {
        (_, None) => "-".to_string(),
        (Some(at), Some(p)) if p.verified_secret() => {
            format!("last verified {} by the last probe", text::stamp(at, now))
        }
        (Some(at), Some(p)) if p.fresh_token => format!(
            "last verified {}; the last token request failed",
            text::stamp(at, now)
        ),
        (Some(at), Some(_)) => format!(
            "last verified {}; the probes since reused the cached token",
            text::stamp(at, now)
        ),
        (None, Some(p)) if p.fresh_token => "not verified: the token requests failed".to_string(),
        (None, Some(_)) => "not verified yet: the probes so far reused a cached token".to_string(),
    };
    out.extend(field("Secret", raw(verified), width));
    if let Some(until) = i.token_reused_until {
        let reuse = if until > now {
            format!(
                "reused until {}, then a new one checks the secret",
                text::stamp(until, now)
            )
        } else {
            format!(
                "reused until {}: the next probe asks for a new one",
                text::stamp(until, now)
            )
        };
        out.extend(field("Token", raw(reuse), width));
    }
    let next = if i.paused {
        "paused (press p to probe now and resume)".to_string()
    } else if i.probing {
        "probing now...".to_string()
    } else {
        when(i.next_probe_at)
    };
    out.extend(field("Next probe", raw(next), width));

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

/// The incident's state and its history: who acknowledged it, uptime, latency trend, the week's incidents.
fn history<'a>(app: &App, i: &IntegrationView, now: DateTime<Utc>, width: usize) -> Vec<Line<'a>> {
    let theme = &app.theme;
    let mut out = Vec::new();
    if let Some(ack) = &i.acked {
        out.extend(field(
            "Acknowledged",
            vec![
                Span::styled("ACK", theme.bold()),
                Span::raw(format!(
                    " by {}, {} ({})",
                    ack.actor,
                    text::clock_or_date(ack.at, now),
                    text::relative(ack.at, now)
                )),
            ],
            width,
        ));
    }
    let pct = |u: Option<f64>| u.map(|u| format!("{u:.2}%")).unwrap_or_else(|| "-".into());
    // Probed for less than the window: the figures cover the time since the first probe, and say so.
    let since = i
        .uptime_since
        .map(|t| format!(", since {}", text::clock_or_date(t, now)))
        .unwrap_or_default();
    out.extend(field(
        "Uptime",
        raw(format!(
            "{} (24h)  {} (7d){since}",
            pct(i.uptime_24h),
            pct(i.uptime_7d)
        )),
        width,
    ));

    // Latency of the recent probes, oldest left; a probe without timings (no connection) is a failure mark.
    let room = width.saturating_sub(LABEL_W + 30).clamp(8, 60);
    let recent = &i.history[i.history.len().saturating_sub(room)..];
    let timed: Vec<u64> = recent.iter().filter_map(|p| p.latency_ms()).collect();
    if let (Some(lo), Some(hi)) = (timed.iter().min(), timed.iter().max()) {
        let values: Vec<Option<u64>> = recent.iter().map(|p| p.latency_ms()).collect();
        out.extend(field(
            "Latency",
            vec![
                Span::raw(sparkline(&values, theme.ascii, theme.symbol(Status::Fail))),
                Span::styled(
                    match recent.len() {
                        1 => format!(" {}, 1 probe", latency(Some(*hi))),
                        n => format!(
                            " {}-{}, last {n} probes",
                            latency(Some(*lo)),
                            latency(Some(*hi))
                        ),
                    },
                    theme.dim(),
                ),
            ],
            width,
        ));
    }

    if i.incidents.is_empty() {
        out.extend(field("Incidents (7d)", raw("none"), width));
    }
    for (n, inc) in i.incidents.iter().enumerate() {
        let lasted = match inc.ended {
            Some(end) => format!("lasted {}", crate::duration::format_span(end - inc.started)),
            None => format!(
                "ongoing, {}",
                crate::duration::format_age(now - inc.started)
            ),
        };
        // One date format for all, so the column lines up.
        let head = format!("{} ", inc.started.format("%m-%d %H:%M"));
        let status = format!("{:<6} ", theme.status_text(inc.worst));
        let lasted = format!("{lasted}: ");
        let used = LABEL_W + head.len() + text::width(&status) + lasted.len();
        out.extend(field(
            if n == 0 { "Incidents (7d)" } else { "" },
            vec![
                Span::raw(head),
                Span::styled(status, theme.status(inc.worst)),
                Span::raw(lasted),
                Span::raw(text::truncate(
                    &inc.reason,
                    width.saturating_sub(used).max(10),
                    theme.ellipsis(),
                )),
            ],
            width,
        ));
    }
    out.extend(rotation_audit(app, i, width));
    out
}

/// Audit entries of the credential's rotations kept in the detail.
const AUDIT_SHOWN: usize = 6;

/// The credential's rotation audit trail, newest first (who did which step, with what result).
fn rotation_audit<'a>(app: &App, i: &IntegrationView, width: usize) -> Vec<Line<'a>> {
    let theme = &app.theme;
    let Some(entries) = app
        .rotation
        .audit
        .get(&i.credential)
        .filter(|e| !e.is_empty())
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (n, e) in entries.iter().rev().take(AUDIT_SHOWN).enumerate() {
        let head = format!("{} {} {} ", e.at.format("%m-%d %H:%M"), e.actor, e.action);
        let result_style = match e.result.as_str() {
            "ok" => theme.status(Status::Ok),
            "failed" | "refused" => theme.status(Status::Fail),
            _ => theme.dim(),
        };
        let result = format!("{} ", e.result);
        let states = if e.from == e.to {
            format!("({}) ", e.to)
        } else {
            format!("({} -> {}) ", e.from, e.to)
        };
        let used = LABEL_W + text::width(&head) + result.len() + states.len();
        out.extend(field(
            if n == 0 { "Rotation audit" } else { "" },
            vec![
                Span::raw(head),
                Span::styled(result, result_style),
                Span::styled(states, theme.dim()),
                Span::raw(text::truncate(
                    &e.details,
                    width.saturating_sub(used).max(10),
                    theme.ellipsis(),
                )),
            ],
            width,
        ));
    }
    out
}

/// Latencies as a one-line chart, oldest left, scaled from zero like ratatui's `Sparkline` (block characters,
/// or an ASCII ramp with `--ascii`); `missing` marks a probe without timings.
fn sparkline(values: &[Option<u64>], ascii: bool, missing: &str) -> String {
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    const RAMP: [char; 8] = ['_', '.', ',', '-', '=', '+', '*', '#'];
    let levels = if ascii { &RAMP } else { &BLOCKS };
    let hi = values.iter().flatten().max().copied().unwrap_or(0);
    values
        .iter()
        .map(|v| match v {
            None => missing.to_string(),
            Some(_) if hi == 0 => levels[0].to_string(),
            // Rounded up, so the smallest non-zero latency still shows a bar.
            Some(v) => levels[((v * 8).div_ceil(hi)).clamp(1, 8) as usize - 1].to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::sparkline;

    #[test]
    fn sparkline_scales_from_zero_and_marks_untimed_probes() {
        let v = |l: &[u64]| l.iter().map(|&x| Some(x)).collect::<Vec<_>>();
        assert_eq!(sparkline(&v(&[10, 20, 80]), false, "✖"), "▁▂█");
        assert_eq!(sparkline(&v(&[10, 20, 80]), true, "x"), "_.#");
        assert_eq!(sparkline(&v(&[5, 5]), false, "✖"), "██");
        assert_eq!(sparkline(&v(&[0, 0]), true, "x"), "__");
        assert_eq!(sparkline(&[], false, "✖"), "");
        // Scaled from zero: jitter around 200ms is not drawn as a cliff.
        assert_eq!(sparkline(&v(&[210, 275]), false, "✖"), "▇█");
        // A probe without timings (no connection) is marked, in order.
        assert_eq!(sparkline(&[Some(100), None, Some(50)], true, "x"), "#x-");
    }
}
