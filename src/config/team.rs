//! Team mode sections: `[agent]` (listen address, bearer tokens, TLS), `[[notify]]` (where alerts go) and
//! `[[maintenance]]` (windows that mute notifications). Read with the same span-aware reader as the rest.

use super::read::{Ctx, Excerpt, Label, Span, TableReader, entry_label, list, peek_str};
use crate::model::Status;
use crate::secrets::SecretRef;
use crate::suggest::nearest;
use chrono::{DateTime, Datelike, NaiveTime, Utc, Weekday};
use serde_spanned::Spanned;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use toml::de::{DeTable, DeValue};
use url::Url;

pub const AGENT_KEYS: &[&str] = &["listen", "token", "tls_cert", "tls_key"];
pub const AGENT_TOKEN_KEYS: &[&str] = &["name", "role", "token"];
pub const NOTIFY_KEYS: &[&str] = &[
    "name",
    "kind",
    "url",
    "teams",
    "min_severity",
    "routing_key",
    "expiry_reminders",
    "events",
];

/// PagerDuty's public Events API v2 endpoint (`url` overrides it, e.g. for a proxy or a test receiver).
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// Days before a secret's expiry at which a receiver gets a reminder, unless it sets `expiry_reminders`.
pub const DEFAULT_EXPIRY_REMINDERS: [i64; 4] = [30, 14, 7, 1];

/// What a receiver may be sent (`events = [...]`; default: all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyEvent {
    /// An integration turned FAIL.
    Fail,
    /// An integration turned WARN (only with `min_severity = "warn"`).
    Warn,
    /// OK again after a notified incident.
    Resolved,
    /// Secret-expiry reminders.
    Expiry,
}

impl NotifyEvent {
    pub const ALL: [NotifyEvent; 4] = [
        NotifyEvent::Fail,
        NotifyEvent::Warn,
        NotifyEvent::Resolved,
        NotifyEvent::Expiry,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::Fail => "fail",
            NotifyEvent::Warn => "warn",
            NotifyEvent::Resolved => "resolved",
            NotifyEvent::Expiry => "expiry",
        }
    }
}
pub const MAINTENANCE_KEYS: &[&str] = &[
    "name",
    "start",
    "weekly",
    "duration",
    "teams",
    "integrations",
];

/// The agent's default address: loopback only.
pub const DEFAULT_AGENT_LISTEN: &str = "127.0.0.1:9477";

/// `[agent]`: how `authwatch agent` serves its API.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentConfig {
    /// None: [`DEFAULT_AGENT_LISTEN`] (`--listen` overrides both).
    pub listen: Option<SocketAddr>,
    pub tokens: Vec<ApiToken>,
    pub tls: Option<TlsFiles>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// One `[[agent.token]]`: a bearer token (itself a secret reference) and what it may do.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiToken {
    pub name: String,
    pub role: Role,
    pub token: SecretRef,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read state, events and metrics.
    Viewer,
    /// Read, and act: probe, acknowledge, ingest.
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        }
    }
}

/// `[[notify]]`: one receiver of direct notifications.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyConfig {
    /// Shown in logs and recorded with every send (default: `<kind>-<n>`).
    pub name: String,
    pub kind: NotifyKind,
    pub url: UrlRef,
    /// Only integrations of these teams (empty: all).
    pub teams: Vec<String>,
    /// `warn` or `fail` (default); applies to expiry reminders too (their severity is the credential's
    /// expiry status: warn within `warn_before`, fail within `critical_before` or expired).
    pub min_severity: Status,
    /// PagerDuty: the integration's routing key (a secret reference).
    pub routing_key: Option<SecretRef>,
    /// Days before expiry at which reminders go out, largest first (default [`DEFAULT_EXPIRY_REMINDERS`]).
    pub expiry_reminders: Vec<i64>,
    /// What this receiver is sent (default: all).
    pub events: Vec<NotifyEvent>,
}

impl NotifyConfig {
    pub fn wants(&self, e: NotifyEvent) -> bool {
        self.events.contains(&e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyKind {
    /// Generic JSON POST.
    Webhook,
    /// Slack incoming webhook (`{"text": ...}`).
    Slack,
    /// Alertmanager: POST `{url}/api/v2/alerts`.
    Alertmanager,
    /// PagerDuty Events API v2: trigger, acknowledge, resolve with one dedup_key per incident.
    PagerDuty,
    /// Microsoft Teams Workflows webhook ("When a Teams webhook request is received"): an Adaptive Card.
    Teams,
}

impl NotifyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyKind::Webhook => "webhook",
            NotifyKind::Slack => "slack",
            NotifyKind::Alertmanager => "alertmanager",
            NotifyKind::PagerDuty => "pagerduty",
            NotifyKind::Teams => "teams",
        }
    }
}

/// A URL written in the file, or a secret reference holding one (webhook URLs are credentials).
#[derive(Clone, PartialEq)]
pub enum UrlRef {
    Plain(Url),
    Secret(SecretRef),
}

impl std::fmt::Debug for UrlRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Path and query of a webhook URL are often the credential: show the host only.
            UrlRef::Plain(u) => write!(f, "Url({})", u.host_str().unwrap_or("?")),
            UrlRef::Secret(r) => write!(f, "{r:?}"),
        }
    }
}

/// `[[maintenance]]`: while a window is open, notifications for the matching integrations are muted.
#[derive(Debug, Clone, PartialEq)]
pub struct Maintenance {
    pub name: String,
    pub schedule: Schedule,
    pub duration: Duration,
    /// Only these teams / integrations (both empty: everything).
    pub teams: Vec<String>,
    pub integrations: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    Once(DateTime<Utc>),
    /// Every week on these days at this time (UTC).
    Weekly {
        days: Vec<Weekday>,
        at: NaiveTime,
    },
}

impl Maintenance {
    /// Whether the window is open at `now`.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        let dur = crate::duration::to_chrono(self.duration);
        match &self.schedule {
            Schedule::Once(start) => *start <= now && now < *start + dur,
            Schedule::Weekly { days, at } => {
                // A window may have started on any of the last 7 days (plus however long it lasts).
                let span_days = (self.duration.as_secs() / 86_400) as i64 + 1;
                (0..=span_days.min(7)).any(|back| {
                    let day = now.date_naive() - chrono::Duration::days(back);
                    days.contains(&day.weekday()) && {
                        let start = day.and_time(*at).and_utc();
                        start <= now && now < start + dur
                    }
                })
            }
        }
    }

    /// Whether the window concerns an integration of `team`.
    pub fn applies_to(&self, integration: &str, team: Option<&str>) -> bool {
        if self.teams.is_empty() && self.integrations.is_empty() {
            return true;
        }
        self.integrations.iter().any(|i| i == integration)
            || team.is_some_and(|t| self.teams.iter().any(|x| x == t))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Readers

pub(super) fn read_agent(ctx: &mut Ctx<'_>, table: &DeTable<'_>, span: Span) -> AgentConfig {
    let r = TableReader::new(ctx, table, span, Label::Section("[agent]"), AGENT_KEYS);
    let mut agent = AgentConfig::default();
    if let Some(listen) = r.string(ctx, "listen", "\"127.0.0.1:9477\"") {
        match listen.get_ref().trim().parse::<SocketAddr>() {
            Ok(a) => agent.listen = Some(a),
            Err(_) => ctx.error(
                &listen.span(),
                format!("`listen` in [agent] is not an address and port: {:?}", listen.get_ref()),
                "write an IP address and a port, e.g. listen = \"127.0.0.1:9477\" (or \"0.0.0.0:9477\" with tokens)",
            ),
        }
    }
    let cert = r.string(ctx, "tls_cert", "\"/etc/authwatch/tls/cert.pem\"");
    let key = r.string(ctx, "tls_key", "\"/etc/authwatch/tls/key.pem\"");
    match (cert, key) {
        (Some(c), Some(k)) => {
            agent.tls = Some(TlsFiles {
                cert: c.into_inner().into(),
                key: k.into_inner().into(),
            })
        }
        (Some(c), None) => ctx.error(
            &c.span(),
            "`tls_cert` in [agent] needs `tls_key` too",
            "add tls_key = \"/etc/authwatch/tls/key.pem\" (the PEM private key of the certificate)",
        ),
        (None, Some(k)) => ctx.error(
            &k.span(),
            "`tls_key` in [agent] needs `tls_cert` too",
            "add tls_cert = \"/etc/authwatch/tls/cert.pem\" (the PEM certificate chain)",
        ),
        (None, None) => {}
    }
    if let Some(v) = r.get("token") {
        match v.get_ref() {
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    match item.get_ref() {
                        DeValue::Table(t) => {
                            if let Some(tok) = read_token(ctx, t, item.span(), i + 1, &agent.tokens)
                            {
                                agent.tokens.push(tok);
                            }
                        }
                        _ => ctx.error(
                            &item.span(),
                            "each `agent.token` entry must be a table",
                            "write each token as an [[agent.token]] section",
                        ),
                    }
                }
            }
            _ => ctx.error(
                &v.span(),
                "`token` in [agent] must be written [[agent.token]] (an array of tables)",
                "use [[agent.token]] with double brackets, once per token",
            ),
        }
    }
    agent
}

fn read_token(
    ctx: &mut Ctx<'_>,
    table: &DeTable<'_>,
    span: Span,
    index: usize,
    earlier: &[ApiToken],
) -> Option<ApiToken> {
    let label = entry_label("agent.token", peek_str(table, "name"), index);
    let r = TableReader::new(ctx, table, span, label, AGENT_TOKEN_KEYS);
    let errors_before = ctx.diagnostics.len();
    let name = r.required_string(
        ctx,
        "name",
        "\"war-room\"",
        "name the token (it is shown as the actor of acknowledgements), e.g. name = \"war-room\"",
    );
    if let Some(n) = &name
        && earlier.iter().any(|t| &t.name == n.get_ref())
    {
        ctx.error(
            &n.span(),
            format!("duplicate token name `{}` in [agent]", n.get_ref()),
            "give each [[agent.token]] a unique name",
        );
    }
    let role = match r.string(ctx, "role", "\"viewer\"") {
        None => {
            if r.get("role").is_none() {
                r.missing(
                    ctx,
                    "role",
                    "say what the token may do: role = \"viewer\" (read) or role = \"operator\" (read and act)",
                );
            }
            None
        }
        Some(s) => match s.get_ref().as_str() {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            other => {
                let help = match nearest(&other.to_ascii_lowercase(), ["viewer", "operator"]) {
                    Some(s) => format!(
                        "did you mean `{s}`? Use \"viewer\" (read) or \"operator\" (read and act)"
                    ),
                    None => "use \"viewer\" (read) or \"operator\" (read and act)".into(),
                };
                ctx.error(
                    &s.span(),
                    format!("unknown role `{other}` in {}", r.label),
                    help,
                );
                None
            }
        },
    };
    let token = r.secret(ctx, "token");
    if r.get("token").is_none() {
        r.missing(
            ctx,
            "token",
            "the bearer token is a secret reference, e.g. token = { env = \"AUTHWATCH_VIEWER_TOKEN\" } or token = { file = \"/etc/authwatch/viewer.token\" }",
        );
    }
    if ctx.diagnostics.len() != errors_before {
        return None;
    }
    Some(ApiToken {
        name: name?.into_inner(),
        role: role?,
        token: token?.into_inner(),
    })
}

pub(super) fn read_notify(
    ctx: &mut Ctx<'_>,
    table: &DeTable<'_>,
    span: Span,
    index: usize,
    earlier: &[NotifyConfig],
) -> Option<NotifyConfig> {
    let label = entry_label("notify", peek_str(table, "name"), index);
    let r = TableReader::new(ctx, table, span, label, NOTIFY_KEYS);
    let errors_before = ctx.diagnostics.len();
    const KINDS: [&str; 5] = ["webhook", "slack", "alertmanager", "pagerduty", "teams"];
    let kind = match r.string(ctx, "kind", "\"webhook\"") {
        None => {
            if r.get("kind").is_none() {
                r.missing(
                    ctx,
                    "kind",
                    "say what receives the notifications: kind = \"webhook\" (generic JSON), \"slack\" (incoming webhook), \"alertmanager\", \"pagerduty\" (Events API v2) or \"teams\" (Workflows webhook)",
                );
            }
            None
        }
        Some(k) => match k.get_ref().as_str() {
            "webhook" => Some(NotifyKind::Webhook),
            "slack" => Some(NotifyKind::Slack),
            "alertmanager" => Some(NotifyKind::Alertmanager),
            "pagerduty" => Some(NotifyKind::PagerDuty),
            "teams" => Some(NotifyKind::Teams),
            other => {
                let help = match nearest(&other.to_ascii_lowercase(), KINDS) {
                    Some(s) => format!("did you mean `{s}`? Valid kinds: {}", list(&KINDS)),
                    None => format!("valid kinds: {}", list(&KINDS)),
                };
                ctx.error(
                    &k.span(),
                    format!("unknown notify kind `{other}` in {}", r.label),
                    help,
                );
                None
            }
        },
    };
    let url = match r.get("url") {
        // PagerDuty has one public endpoint; the routing key says where events go.
        None if kind == Some(NotifyKind::PagerDuty) => Some(UrlRef::Plain(
            Url::parse(PAGERDUTY_EVENTS_URL).expect("a valid constant URL"),
        )),
        None => {
            r.missing(
                ctx,
                "url",
                "give the receiver's URL, e.g. url = \"http://alertmanager:9093\", or a secret reference such as url = { env = \"CRM_OPS_WEBHOOK\" } for webhook URLs that carry a key",
            );
            None
        }
        Some(v) if matches!(v.get_ref(), DeValue::Table(_)) => {
            r.secret(ctx, "url").map(|s| UrlRef::Secret(s.into_inner()))
        }
        Some(_) => r
            .url(ctx, "url", "https://hooks.example.com/authwatch")
            .map(|u| UrlRef::Plain(u.into_inner())),
    };
    let teams = r
        .string_list(ctx, "teams", "[\"crm-ops\"]", "team")
        .unwrap_or_default()
        .into_iter()
        .map(Spanned::into_inner)
        .collect();
    let min_severity = match r.string(ctx, "min_severity", "\"fail\"") {
        None => Status::Fail,
        Some(s) => match s.get_ref().as_str() {
            "warn" => Status::Warn,
            "fail" => Status::Fail,
            other => {
                ctx.error(
                    &s.span(),
                    format!("unknown min_severity `{other}` in {}", r.label),
                    "use \"fail\" (the default: only failures) or \"warn\" (warnings too)",
                );
                Status::Fail
            }
        },
    };
    let routing_key = r.secret(ctx, "routing_key").map(Spanned::into_inner);
    match (kind, &routing_key) {
        (Some(NotifyKind::PagerDuty), None) if r.get("routing_key").is_none() => r.missing(
            ctx,
            "routing_key",
            "give the PagerDuty integration key as a secret reference, e.g. routing_key = { env = \"PAGERDUTY_ROUTING_KEY\" }",
        ),
        (Some(k), Some(_)) if k != NotifyKind::PagerDuty => ctx.error(
            &r.get("routing_key")
                .map(|v| v.span())
                .unwrap_or_else(|| header_span(table)),
            format!("`routing_key` in {} is only for kind = \"pagerduty\"", r.label),
            "remove it (other kinds carry their key in the URL)",
        ),
        _ => {}
    }
    let expiry_reminders = read_reminders(ctx, &r);
    let events = read_events(ctx, &r);
    let name = r.string(ctx, "name", "\"crm-ops-slack\"");
    let name = match (&name, kind) {
        (Some(n), _) => n.get_ref().clone(),
        (None, Some(k)) => format!("{}-{index}", k.as_str()),
        (None, None) => format!("notify-{index}"),
    };
    if let Some(first) = earlier.iter().find(|n| n.name == name) {
        ctx.error(
            &r.get("name")
                .map(|v| v.span())
                .unwrap_or_else(|| header_span(table)),
            format!(
                "duplicate notify name `{}` (also used by a {} receiver)",
                name,
                first.kind.as_str()
            ),
            "give each [[notify]] a unique name (it is recorded with every send)",
        );
    }
    if ctx.diagnostics.len() != errors_before {
        return None;
    }
    Some(NotifyConfig {
        name,
        kind: kind?,
        url: url?,
        teams,
        min_severity,
        routing_key,
        expiry_reminders,
        events,
    })
}

/// `expiry_reminders = ["30d", "14d", "7d", "1d"]`: whole days, largest first, no duplicates.
fn read_reminders(ctx: &mut Ctx<'_>, r: &TableReader<'_, '_>) -> Vec<i64> {
    let Some(items) = r.string_list(ctx, "expiry_reminders", "[\"30d\", \"7d\"]", "reminder")
    else {
        return DEFAULT_EXPIRY_REMINDERS.to_vec();
    };
    let mut days = Vec::new();
    for item in items {
        match crate::duration::parse_duration(item.get_ref()) {
            Ok(d) if d.as_secs() % 86_400 == 0 && d.as_secs() > 0 => {
                days.push(i64::try_from(d.as_secs() / 86_400).unwrap_or(i64::MAX));
            }
            Ok(_) => ctx.error(
                &item.span(),
                format!(
                    "expiry reminder `{}` in {} is not a whole number of days",
                    item.get_ref(),
                    r.label
                ),
                "write days, e.g. \"30d\", \"7d\", \"1d\"",
            ),
            Err(e) => ctx.error(&item.span(), format!("{e}"), "write days, e.g. \"30d\""),
        }
    }
    days.sort_unstable_by(|a, b| b.cmp(a));
    days.dedup();
    days
}

/// `events = ["fail", "warn", "resolved", "expiry"]` (default: all).
fn read_events(ctx: &mut Ctx<'_>, r: &TableReader<'_, '_>) -> Vec<NotifyEvent> {
    let Some(items) = r.string_list(ctx, "events", "[\"fail\", \"resolved\"]", "event") else {
        return NotifyEvent::ALL.to_vec();
    };
    const NAMES: [&str; 4] = ["fail", "warn", "resolved", "expiry"];
    let mut out = Vec::new();
    for item in items {
        match NotifyEvent::ALL
            .iter()
            .find(|e| e.as_str() == item.get_ref())
        {
            Some(e) if !out.contains(e) => out.push(*e),
            Some(_) => {}
            None => {
                let help = match nearest(&item.get_ref().to_ascii_lowercase(), NAMES) {
                    Some(s) => format!("did you mean `{s}`? Valid events: {}", list(&NAMES)),
                    None => format!("valid events: {}", list(&NAMES)),
                };
                ctx.error(
                    &item.span(),
                    format!("unknown event `{}` in {}", item.get_ref(), r.label),
                    help,
                );
            }
        }
    }
    out
}

fn header_span(table: &DeTable<'_>) -> Span {
    table.iter().next().map(|(k, _)| k.span()).unwrap_or(0..0)
}

pub(super) fn read_maintenance(
    ctx: &mut Ctx<'_>,
    table: &DeTable<'_>,
    span: Span,
    index: usize,
) -> Option<Maintenance> {
    let label = entry_label("maintenance", peek_str(table, "name"), index);
    let r = TableReader::new(ctx, table, span, label, MAINTENANCE_KEYS);
    let errors_before = ctx.diagnostics.len();
    let name = r
        .string(ctx, "name", "\"SFMC release window\"")
        .map(Spanned::into_inner)
        .unwrap_or_else(|| format!("maintenance-{index}"));
    let start = r.date(ctx, "start");
    let weekly = r.string(ctx, "weekly", "\"sat 22:00\"");
    let schedule = match (start, weekly) {
        (Some(s), None) => Some(Schedule::Once(s.into_inner())),
        (None, Some(w)) => match parse_weekly(w.get_ref()) {
            Some((days, at)) => Some(Schedule::Weekly { days, at }),
            None => {
                ctx.error(
                    &w.span(),
                    format!("bad `weekly` in {}: {:?}", r.label, w.get_ref()),
                    "write the days and a UTC time, e.g. weekly = \"sat 22:00\" or weekly = \"mon,wed,fri 06:30\"",
                );
                None
            }
        },
        (Some(s), Some(_)) => {
            ctx.error_with(
                &s.span(),
                format!("{} has both `start` and `weekly`", r.label),
                Some(
                    "use `start` for a one-off window or `weekly` for a recurring one, not both"
                        .into(),
                ),
                Excerpt::IfSafe,
            );
            None
        }
        (None, None) => {
            if r.get("start").is_none() && r.get("weekly").is_none() {
                r.missing(
                    ctx,
                    "start",
                    "say when the window opens: start = 2026-03-14T22:00:00Z (once) or weekly = \"sat 22:00\" (every week, UTC)",
                );
            }
            None
        }
    };
    let duration = r.duration(ctx, "duration", "4h", false);
    if r.get("duration").is_none() {
        r.missing(
            ctx,
            "duration",
            "say how long the window lasts, e.g. duration = \"4h\"",
        );
    }
    let teams = r
        .string_list(ctx, "teams", "[\"crm-ops\"]", "team")
        .unwrap_or_default()
        .into_iter()
        .map(Spanned::into_inner)
        .collect();
    let integrations = r
        .string_list(ctx, "integrations", "[\"crm-sync\"]", "integration")
        .unwrap_or_default()
        .into_iter()
        .map(Spanned::into_inner)
        .collect();
    if ctx.diagnostics.len() != errors_before {
        return None;
    }
    Some(Maintenance {
        name,
        schedule: schedule?,
        duration: duration?.into_inner(),
        teams,
        integrations,
    })
}

/// `"sat 22:00"`, `"mon,wed,fri 06:30"`, `"daily 02:00"`.
pub fn parse_weekly(s: &str) -> Option<(Vec<Weekday>, NaiveTime)> {
    let (days, time) = s.trim().rsplit_once(char::is_whitespace)?;
    let at = NaiveTime::parse_from_str(time.trim(), "%H:%M").ok()?;
    let days = days.trim();
    let list: Vec<Weekday> = if days.eq_ignore_ascii_case("daily") {
        vec![
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
            Weekday::Sat,
            Weekday::Sun,
        ]
    } else {
        days.split(',')
            .map(|d| d.trim().parse::<Weekday>().ok())
            .collect::<Option<Vec<_>>>()?
    };
    (!list.is_empty()).then_some((list, at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn window(schedule: Schedule, hours: u64) -> Maintenance {
        Maintenance {
            name: "w".into(),
            schedule,
            duration: Duration::from_secs(hours * 3600),
            teams: vec![],
            integrations: vec![],
        }
    }

    #[test]
    fn weekly_windows_open_on_their_days_and_across_midnight() {
        let (days, at) = parse_weekly("sat 22:00").unwrap();
        let w = window(Schedule::Weekly { days, at }, 4);
        // 2026-03-14 is a Saturday.
        let t = |d, h, m| Utc.with_ymd_and_hms(2026, 3, d, h, m, 0).unwrap();
        assert!(!w.is_open(t(14, 21, 59)));
        assert!(w.is_open(t(14, 22, 0)));
        assert!(w.is_open(t(15, 1, 59)));
        assert!(!w.is_open(t(15, 2, 0)));
        assert!(!w.is_open(t(21, 12, 0)));
        assert!(w.is_open(t(21, 23, 0)));
    }

    #[test]
    fn one_off_windows_and_filters() {
        let start = Utc.with_ymd_and_hms(2026, 3, 14, 22, 0, 0).unwrap();
        let mut w = window(Schedule::Once(start), 1);
        assert!(w.is_open(start));
        assert!(!w.is_open(start + chrono::Duration::hours(1)));
        assert!(w.applies_to("x", None));
        w.teams = vec!["crm-ops".into()];
        assert!(w.applies_to("x", Some("crm-ops")));
        assert!(!w.applies_to("x", Some("web")));
        assert!(parse_weekly("mon,wed 06:30").is_some());
        assert!(parse_weekly("funday 06:30").is_none());
        assert!(parse_weekly("daily 25:00").is_none());
    }
}
