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
        EventKind::Acknowledged => format!("ACKNOWLEDGED {}{ctx}: {}", m.subject, m.reason),
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
        EventKind::Acknowledged => ":eyes:",
    };
    // Endpoint text may carry `<!channel>` or `<url|text>`: escaped, Slack shows it as typed.
    json!({ "text": format!("{icon} {}", crate::sanitize::slack(&text(m))) })
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

/// PagerDuty Events API v2 (`POST /v2/enqueue`): trigger at fail (and for expiry notices), acknowledge,
/// resolve; the incident key is the dedup_key, so one authwatch incident is one PagerDuty incident.
pub fn pagerduty(m: &Message, routing_key: &str) -> Value {
    let action = match m.event {
        EventKind::Resolved => "resolve",
        EventKind::Acknowledged => "acknowledge",
        EventKind::Fail | EventKind::Refresh | EventKind::Expiry => "trigger",
    };
    let mut v = json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": m.incident_key,
        "client": "authwatch",
    });
    if action == "trigger" {
        let severity = match m.status {
            crate::model::Status::Fail => "critical",
            crate::model::Status::Warn => "warning",
            _ => "info",
        };
        let mut details = serde_json::Map::new();
        details.insert("reason".into(), m.reason.clone().into());
        details.insert("credential".into(), m.credential.clone().into());
        for (k, val) in [
            ("integration", &m.integration),
            ("team", &m.team),
            ("owner", &m.owner),
            ("mid", &m.account_id),
            ("business_unit", &m.business_unit),
            ("environment", &m.environment),
            ("runbook", &m.runbook),
        ] {
            if let Some(val) = val {
                details.insert(k.into(), val.clone().into());
            }
        }
        if let Some(d) = m.days_left {
            details.insert("days_left".into(), d.into());
        }
        // PagerDuty truncates at 1024 characters; cut on a character boundary ourselves.
        let summary: String = text(m).chars().take(1024).collect();
        v["payload"] = json!({
            "summary": summary,
            "source": format!("authwatch:{}", m.credential),
            "severity": severity,
            "timestamp": m.started.unwrap_or(m.at).to_rfc3339(),
            "component": m.integration.as_deref().unwrap_or(&m.credential),
            "group": m.team,
            "class": alertname(m),
            "custom_details": details,
        });
    }
    v
}

/// A Microsoft Teams Workflows webhook ("When a Teams webhook request is received" + "Post card in a chat or
/// channel"): a message with one Adaptive Card attachment.
pub fn teams(m: &Message) -> Value {
    let (title, color) = match m.event {
        EventKind::Fail | EventKind::Refresh => {
            (format!("{} {}", m.status.label(), m.subject), "Attention")
        }
        EventKind::Resolved => (format!("RESOLVED {}", m.subject), "Good"),
        EventKind::Expiry => (format!("SECRET EXPIRY {}", m.subject), "Warning"),
        EventKind::Acknowledged => (format!("ACKNOWLEDGED {}", m.subject), "Accent"),
    };
    let mut facts = vec![json!({"title": "Credential", "value": m.credential})];
    for (t, val) in [
        ("Team", &m.team),
        ("Owner", &m.owner),
        ("MID", &m.account_id),
        ("Environment", &m.environment),
    ] {
        if let Some(val) = val {
            facts.push(json!({"title": t, "value": val}));
        }
    }
    let mut body = vec![
        // TextBlocks render Markdown: endpoint text may not make links.
        json!({"type": "TextBlock", "text": crate::sanitize::teams(&title), "weight": "Bolder", "size": "Medium", "color": color, "wrap": true}),
        json!({"type": "TextBlock", "text": crate::sanitize::teams(&text(m)), "wrap": true}),
        json!({"type": "FactSet", "facts": facts}),
    ];
    if let Some(rb) = &m.runbook {
        body.push(json!({"type": "TextBlock", "text": rb, "wrap": true, "isSubtle": true}));
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
            }
        }]
    })
}
