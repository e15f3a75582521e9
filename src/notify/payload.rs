//! How each kind of receiver wants a [`Message`].

use super::plan::{EventKind, Message};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// Generic webhook: the message as JSON, plus a one-line `text`.
pub fn webhook(m: &Message) -> Value {
    let mut v = serde_json::to_value(m).unwrap_or_else(|_| json!({}));
    if let Some(obj) = v.as_object_mut() {
        obj.insert("text".into(), Value::String(text(m)));
        obj.insert("source".into(), Value::String("authwatch".into()));
    }
    v
}

/// One line for humans: "FAIL crm-sync (crm-ops, prod): token request rejected: invalid_client (401)".
pub fn text(m: &Message) -> String {
    let mut ctx: Vec<&str> = Vec::new();
    if let Some(t) = &m.team {
        ctx.push(t);
    }
    if let Some(e) = &m.environment {
        ctx.push(e);
    }
    let ctx = if ctx.is_empty() {
        String::new()
    } else {
        format!(" ({})", ctx.join(", "))
    };
    match m.event {
        EventKind::Fail | EventKind::Refresh => {
            format!("{} {}{ctx}: {}", m.status.label(), m.subject, m.reason)
        }
        EventKind::Resolved => {
            let took = m
                .started
                .map(|s| format!(" after {}", human(m.at - s)))
                .unwrap_or_default();
            format!("RESOLVED {}{ctx}: OK again{took}", m.subject)
        }
        EventKind::Expiry => format!("SECRET EXPIRY {}{ctx}: {}", m.subject, m.reason),
    }
}

fn human(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    if s < 120 {
        format!("{s}s")
    } else if s < 7200 {
        format!("{}m", s / 60)
    } else if s < 172_800 {
        format!("{}h {}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}d", s / 86_400)
    }
}

/// Slack incoming webhook.
pub fn slack(m: &Message) -> Value {
    let icon = match m.event {
        EventKind::Fail | EventKind::Refresh => ":red_circle:",
        EventKind::Resolved => ":large_green_circle:",
        EventKind::Expiry => ":hourglass:",
    };
    json!({ "text": format!("{icon} {}", text(m)) })
}

fn alertname(m: &Message) -> &'static str {
    match m.event {
        EventKind::Expiry => "AuthwatchSecretExpiring",
        _ => "AuthwatchIntegrationFailing",
    }
}

/// Alertmanager `POST /api/v2/alerts` body: one alert. A resolution is the same labels with `endsAt` now.
pub fn alertmanager(m: &Message, now: DateTime<Utc>) -> Value {
    let mut labels = serde_json::Map::new();
    labels.insert("alertname".into(), alertname(m).into());
    // Fixed per alert name: a resolution must carry exactly the labels of the alert it ends.
    labels.insert(
        "severity".into(),
        match m.event {
            EventKind::Expiry => "warning",
            _ => "critical",
        }
        .into(),
    );
    labels.insert("credential".into(), m.credential.clone().into());
    if let Some(i) = &m.integration {
        labels.insert("integration".into(), i.clone().into());
    }
    for (k, v) in [
        ("team", &m.team),
        ("business_unit", &m.business_unit),
        ("environment", &m.environment),
    ] {
        if let Some(v) = v {
            labels.insert(k.into(), v.clone().into());
        }
    }
    if m.event == EventKind::Expiry {
        labels.insert(
            "threshold".into(),
            m.incident_key.rsplit(':').next().unwrap_or("").into(),
        );
    }
    let starts = m.started.unwrap_or(m.at);
    let ends = match m.event {
        EventKind::Resolved => now,
        EventKind::Expiry => now + chrono::Duration::days(1),
        _ => now + crate::duration::to_chrono(super::ALERT_VALIDITY),
    };
    json!([{
        "labels": labels,
        "annotations": {
            "summary": text(m),
            "description": m.reason,
        },
        "startsAt": starts.to_rfc3339(),
        "endsAt": ends.to_rfc3339(),
    }])
}
