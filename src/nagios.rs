//! Plain-text verdicts for operations tools: the Nagios/Icinga plugin output of `check --format nagios` and
//! the agent's `/api/v1/status.txt`. Pure functions over a snapshot.

use crate::engine::{IntegrationView, Snapshot};
use crate::model::Status;
use crate::rules::health::Thresholds;
use std::fmt::Write;

/// How many problems the first line names before "+N more" (the long text lists them all).
const FIRST_LINE_PROBLEMS: usize = 3;

/// The plugin API's service state word.
pub fn state_word(s: Status) -> &'static str {
    match s {
        Status::Ok => "OK",
        Status::Warn => "WARNING",
        Status::Fail => "CRITICAL",
        Status::Unknown => "UNKNOWN",
    }
}

/// Integrations that are not OK, worst first, then by name.
fn problems(s: &Snapshot) -> Vec<&IntegrationView> {
    let rank = |st: Status| match st {
        Status::Fail => 0,
        Status::Warn => 1,
        Status::Unknown => 2,
        Status::Ok => 3,
    };
    let mut out: Vec<&IntegrationView> = s
        .integrations
        .iter()
        .map(|i| i.as_ref())
        .filter(|i| i.health.status != Status::Ok)
        .collect();
    out.sort_by(|a, b| {
        rank(a.health.status)
            .cmp(&rank(b.health.status))
            .then_with(|| a.name.cmp(&b.name))
    });
    out
}

/// Output text may not contain the perfdata separator or line breaks (they would change the grammar).
fn text(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '|' => '/',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

/// `name reason since HH:MM`: the short form of one problem (the probe's own error word when there is one).
fn short_problem(i: &IntegrationView) -> String {
    let reason = i
        .last_probe()
        .filter(|p| !p.outcome.is_ok())
        .and_then(|p| p.error.clone())
        .or_else(|| i.health.reasons.first().cloned())
        .unwrap_or_else(|| i.health.status.as_str().to_string());
    let since = i
        .failing_since
        .filter(|_| i.health.status == Status::Fail)
        .map(|t| format!(" since {} UTC", t.format("%H:%M")))
        .unwrap_or_default();
    text(&format!("{} {reason}{since}", i.name))
}

/// One line per problem: `FAIL nightly-etl-loader: token request rejected: invalid_client (401)`.
pub fn problem_lines(s: &Snapshot) -> Vec<String> {
    problems(s)
        .into_iter()
        .map(|i| {
            let reasons = if i.health.reasons.is_empty() {
                i.health.status.as_str().to_string()
            } else {
                i.health.reasons.join("; ")
            };
            text(&format!(
                "{} {}: {reasons}",
                i.health.status.label(),
                i.name
            ))
        })
        .collect()
}

/// `2 fail, 1 warn, 0 unknown, 5 ok`.
pub fn summary_line(s: &Snapshot) -> String {
    let m = &s.summary;
    format!(
        "{} fail, {} warn, {} unknown, {} ok",
        m.fail, m.warn, m.unknown, m.ok
    )
}

/// `/api/v1/status.txt`: one line per non-OK integration, then the summary line.
pub fn status_text(s: &Snapshot) -> String {
    let mut out = String::new();
    for line in problem_lines(s) {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "{} {}", s.summary.worst().label(), summary_line(s));
    out
}

/// A perfdata label: quoted, `'` doubled, `=` (the grammar's separator) replaced.
fn label(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| match c {
            '=' => '_',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    format!("'{}'", clean.replace('\'', "''"))
}

/// The performance data items: token and call latency per integration (ms, warn = `latency_warn`) and days left
/// per credential with an expiry date (warn/crit as "alert below" ranges from `warn_before`/`critical_before`).
pub fn perfdata(s: &Snapshot, t: &Thresholds) -> Vec<String> {
    let warn_ms = t.latency_warn.as_millis();
    let mut out = Vec::new();
    for i in &s.integrations {
        let Some(p) = i.last_probe() else { continue };
        for (what, ms) in [("token", p.token_ms), ("call", p.call_ms)] {
            if let Some(ms) = ms {
                out.push(format!(
                    "{}={ms}ms;{warn_ms};;0;",
                    label(&format!("{} {what}", i.name))
                ));
            }
        }
    }
    let days = |d: std::time::Duration| d.as_secs() / 86_400;
    for c in &s.credentials {
        if let Some(left) = c.days_left {
            out.push(format!(
                "{}={left};{}:;{}:;;",
                label(&format!("{} days_left", c.id)),
                days(t.warn_before),
                days(t.critical_before)
            ));
        }
    }
    out
}

/// The whole plugin output: first line (`AUTHWATCH STATE - counts: problems | perfdata`), then the long text with
/// one line per non-OK integration. The exit code is `summary.worst().exit_code()`.
pub fn plugin_output(s: &Snapshot, t: &Thresholds) -> String {
    let worst = s.summary.worst();
    let problems = problems(s);
    let m = &s.summary;
    let mut counts = Vec::new();
    for (n, word) in [(m.fail, "fail"), (m.warn, "warn"), (m.unknown, "unknown")] {
        if n > 0 {
            counts.push(format!("{n} {word}"));
        }
    }
    let mut first = format!("AUTHWATCH {} - ", state_word(worst));
    if counts.is_empty() {
        let _ = write!(first, "{} ok", m.ok);
    } else {
        let named: Vec<String> = problems
            .iter()
            .take(FIRST_LINE_PROBLEMS)
            .map(|i| short_problem(i))
            .collect();
        let _ = write!(first, "{}: {}", counts.join(", "), named.join("; "));
        if problems.len() > FIRST_LINE_PROBLEMS {
            let _ = write!(first, "; +{} more", problems.len() - FIRST_LINE_PROBLEMS);
        }
    }
    let perf = perfdata(s, t);
    let mut out = first;
    if !perf.is_empty() {
        let _ = write!(out, " | {}", perf.join(" "));
    }
    out.push('\n');
    for line in problem_lines(s) {
        let _ = writeln!(out, "{line}");
    }
    out
}
