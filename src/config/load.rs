//! From TOML text to a validated [`Config`]: syntax, then each section read into raw (spanned) form, then the
//! cross-section checks. All problems are collected and reported together.

use super::diag::{ConfigError, Diagnostic};
use super::log_source::{LogFormat, LogSourceConfig};
use super::read::{Ctx, Label, Span, TableReader, array_of_tables, entry_label, list, peek_str};
use super::{ClientAuth, Config, Credential, DEFAULT_CHECK_PATH, Integration, Provider, Settings};
use crate::secrets::REFERENCE_FORMS_HELP;
use crate::suggest::nearest;
use serde_spanned::Spanned;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue};

/// Top-level sections. A new section = a name here plus a `read_*` function called from [`parse`].
pub const SECTIONS: &[&str] = &[
    "settings",
    "credential",
    "integration",
    "log_source",
    "agent",
    "notify",
    "maintenance",
    "keys",
];

pub const SETTINGS_KEYS: &[&str] = &[
    "name",
    "probe_interval",
    "token_refresh",
    "timeout",
    "failure_threshold",
    "confirm_retry",
    "warn_before",
    "critical_before",
    "latency_warn",
    "max_concurrent_probes",
    "ca_file",
    "secret_command_timeout",
    "secret_check_interval",
    "db",
    "retention",
    "sustained_window",
    "log_fail_threshold",
    "staging_delay",
];

pub const LOG_SOURCE_KEYS: &[&str] = &[
    "name",
    "path",
    "format",
    "status_field",
    "time_field",
    "integration_field",
    "client_id_field",
    "account_id_field",
    "url_field",
    "error_field",
];

pub const CREDENTIAL_KEYS: &[&str] = &[
    "id",
    "provider",
    "auth_url",
    "token_url",
    "client_auth",
    "client_id",
    "client_secret",
    "secret_expires",
    "owner",
    "client_secret_update",
];

pub const INTEGRATION_KEYS: &[&str] = &[
    "name",
    "credential",
    "account_id",
    "scopes",
    "check_path",
    "check_url",
    "business_unit",
    "team",
    "environment",
    "processes",
];

const SFMC_AUTH_URL_EXAMPLE: &str =
    "https://mcxxxxxxxxxxxxxxxxxxxxxxxxxx.auth.marketingcloudapis.com/";
const OAUTH2_TOKEN_URL_EXAMPLE: &str = "https://example.my.salesforce.com/services/oauth2/token";

/// Read and validate a configuration file. Never resolves secret references.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Validate configuration text; `path` is used for messages and `Config.path` only.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let mut ctx = Ctx::new(text, path);
    let cuts = super::parts::cut_points(text, super::parts::parts_for(text.len()));
    let padded = super::parts::padded_parts(text, &cuts);
    let (doc, syntax) = match super::parts::parse(text, &cuts, &padded) {
        Some(doc) => (doc, Vec::new()),
        None => DeTable::parse_recoverable(text),
    };
    if !syntax.is_empty() {
        // The recovered tree is unreliable; report only the syntax errors (toml's message, our position; never
        // toml's Display, which quotes the source line).
        for e in syntax {
            let span = e.span().unwrap_or(0..0);
            ctx.error_with(
                &span,
                format!("TOML syntax error: {}", e.message().trim()),
                Some(
                    "fix the TOML syntax here; strings need double quotes, e.g. key = \"value\""
                        .into(),
                ),
                super::read::Excerpt::Never,
            );
        }
        return Err(finish_err(ctx));
    }

    let mut settings = Settings::default();
    let mut settings_spans = SettingsSpans::default();
    let mut credentials = Vec::new();
    let mut integrations = Vec::new();
    let mut log_sources: Vec<LogSourceConfig> = Vec::new();
    let mut agent = super::AgentConfig::default();
    let mut notify: Vec<super::NotifyConfig> = Vec::new();
    let mut maintenance: Vec<super::Maintenance> = Vec::new();
    let mut keys = super::KeyBindings::default();
    for (key, value) in doc.get_ref().iter() {
        match key.get_ref().as_ref() {
            "settings" => match value.get_ref() {
                DeValue::Table(t) => {
                    (settings, settings_spans) = read_settings(&mut ctx, t, value.span())
                }
                _ => ctx.error(
                    &key.span(),
                    "`settings` must be a table",
                    "write it as a [settings] section",
                ),
            },
            "credential" => {
                for (i, (t, span)) in array_of_tables(&mut ctx, key, value)
                    .into_iter()
                    .enumerate()
                {
                    credentials.push(read_credential(&mut ctx, t, span, i + 1));
                }
            }
            "integration" => {
                let tables = array_of_tables(&mut ctx, key, value);
                integrations = read_integrations(&mut ctx, &tables);
            }
            "log_source" => {
                for (i, (t, span)) in array_of_tables(&mut ctx, key, value)
                    .into_iter()
                    .enumerate()
                {
                    if let Some(source) = read_log_source(&mut ctx, t, span, i + 1, &log_sources) {
                        log_sources.push(source);
                    }
                }
            }
            "agent" => match value.get_ref() {
                DeValue::Table(t) => agent = super::team::read_agent(&mut ctx, t, value.span()),
                _ => ctx.error(
                    &key.span(),
                    "`agent` must be a table",
                    "write it as an [agent] section",
                ),
            },
            "notify" => {
                for (i, (t, span)) in array_of_tables(&mut ctx, key, value)
                    .into_iter()
                    .enumerate()
                {
                    if let Some(n) = super::team::read_notify(&mut ctx, t, span, i + 1, &notify) {
                        notify.push(n);
                    }
                }
            }
            "maintenance" => {
                for (i, (t, span)) in array_of_tables(&mut ctx, key, value)
                    .into_iter()
                    .enumerate()
                {
                    if let Some(m) = super::team::read_maintenance(&mut ctx, t, span, i + 1) {
                        maintenance.push(m);
                    }
                }
            }
            "keys" => match value.get_ref() {
                DeValue::Table(t) => keys = super::keys::read_keys(&mut ctx, t),
                _ => ctx.error(
                    &key.span(),
                    "`keys` must be a table",
                    "write it as a [keys] section, e.g. probe = \"o\"",
                ),
            },
            other => unknown_section(&mut ctx, key.span(), other),
        }
    }

    check_settings(&mut ctx, &settings, &settings_spans);
    let integrations = check_references(&mut ctx, &credentials, integrations);

    if !ctx.diagnostics.is_empty() {
        return Err(finish_err(ctx));
    }
    let mut warnings = std::mem::take(&mut ctx.warnings);
    warnings.sort_by_key(|(offset, _)| *offset);
    let name = settings.name.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "authwatch".to_string())
    });
    let config = Config {
        path: Some(path.to_path_buf()),
        name,
        settings,
        credentials: credentials.into_iter().filter_map(|c| c.built).collect(),
        integrations,
        log_sources,
        warnings: warnings.into_iter().map(|(_, w)| w).collect(),
        agent,
        notify,
        maintenance,
        keys,
    };
    crate::secrets::scrub_from_children(config.secret_env_names());
    Ok(config)
}

fn finish_err(mut ctx: Ctx<'_>) -> ConfigError {
    let mut diagnostics: Vec<Diagnostic> = std::mem::take(&mut ctx.diagnostics);
    diagnostics.sort_by_key(|d| (d.line, d.column));
    ConfigError::Invalid {
        path: PathBuf::from(ctx.path),
        diagnostics,
    }
}

fn unknown_section(ctx: &mut Ctx<'_>, span: Span, name: &str) {
    let help = if SETTINGS_KEYS.contains(&name) {
        format!("`{name}` belongs in the [settings] section; move it below a [settings] line")
    } else if CREDENTIAL_KEYS.contains(&name) || INTEGRATION_KEYS.contains(&name) {
        format!("`{name}` belongs inside a [[credential]] or [[integration]] section")
    } else {
        match nearest(name, SECTIONS.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("valid sections: {}", list(SECTIONS)),
        }
    };
    ctx.error_with(
        &span,
        format!("unknown top-level key `{name}`"),
        Some(help),
        super::read::Excerpt::Never,
    );
}

// ---------------------------------------------------------------------------------------------------------------
// [settings]

#[derive(Default)]
struct SettingsSpans {
    header: Option<Span>,
    warn_before: Option<Span>,
    critical_before: Option<Span>,
}

fn read_settings(ctx: &mut Ctx<'_>, table: &DeTable<'_>, span: Span) -> (Settings, SettingsSpans) {
    let r = TableReader::new(
        ctx,
        table,
        span.clone(),
        Label::Section("[settings]"),
        SETTINGS_KEYS,
    );
    let mut s = Settings::default();
    let mut spans = SettingsSpans {
        header: Some(span),
        ..Default::default()
    };
    s.name = r
        .string(ctx, "name", "\"acme-prod\"")
        .map(Spanned::into_inner);
    let durations: [(&str, &mut std::time::Duration, &str, bool); 12] = [
        ("staging_delay", &mut s.staging_delay, "5m", false),
        ("retention", &mut s.retention, "30d", false),
        ("sustained_window", &mut s.sustained_window, "10m", false),
        ("probe_interval", &mut s.probe_interval, "5m", false),
        ("token_refresh", &mut s.token_refresh, "15m", false),
        ("timeout", &mut s.timeout, "10s", false),
        ("confirm_retry", &mut s.confirm_retry, "30s", true),
        ("warn_before", &mut s.warn_before, "30d", true),
        ("critical_before", &mut s.critical_before, "7d", true),
        ("latency_warn", &mut s.latency_warn, "2s", false),
        (
            "secret_command_timeout",
            &mut s.secret_command_timeout,
            "10s",
            false,
        ),
        (
            "secret_check_interval",
            &mut s.secret_check_interval,
            "1m",
            true,
        ),
    ];
    for (key, slot, example, allow_zero) in durations {
        if let Some(d) = r.duration(ctx, key, example, allow_zero) {
            match key {
                "warn_before" => spans.warn_before = Some(d.span()),
                "critical_before" => spans.critical_before = Some(d.span()),
                _ => {}
            }
            *slot = d.into_inner();
        }
    }
    if let Some(n) = r.positive_integer(ctx, "failure_threshold", "3") {
        s.failure_threshold = n.into_inner() as u32;
    }
    if let Some(n) = r.positive_integer(ctx, "max_concurrent_probes", "16") {
        s.max_concurrent_probes = n.into_inner() as usize;
    }
    s.ca_file = r
        .string(ctx, "ca_file", "\"/etc/ssl/corp-ca.pem\"")
        .map(|p| PathBuf::from(p.into_inner()));
    s.db = r
        .string(ctx, "db", "\"/var/lib/authwatch/authwatch.db\"")
        .map(|p| PathBuf::from(p.into_inner()));
    if let Some(n) = r.positive_integer(ctx, "log_fail_threshold", "10") {
        s.log_fail_threshold = n.into_inner() as u32;
    }
    (s, spans)
}

fn check_settings(ctx: &mut Ctx<'_>, s: &Settings, spans: &SettingsSpans) {
    if s.critical_before > s.warn_before {
        let span = spans
            .critical_before
            .clone()
            .or_else(|| spans.warn_before.clone())
            .or_else(|| spans.header.clone())
            .unwrap_or(0..0);
        ctx.error(
            &span,
            format!(
                "`critical_before` ({}) is longer than `warn_before` ({}) in [settings]",
                crate::duration::format_duration(s.critical_before),
                crate::duration::format_duration(s.warn_before)
            ),
            "critical is the later, more urgent stage: make critical_before shorter than warn_before, e.g. warn_before = \"30d\", critical_before = \"7d\"",
        );
    }
}

// ---------------------------------------------------------------------------------------------------------------
// [[credential]]

struct RawCredential {
    id: Option<Spanned<String>>,
    provider: Option<Provider>,
    /// Present when the entry is fully valid.
    built: Option<Credential>,
}

fn read_log_source(
    ctx: &mut Ctx<'_>,
    table: &DeTable<'_>,
    span: Span,
    index: usize,
    earlier: &[LogSourceConfig],
) -> Option<LogSourceConfig> {
    let label = entry_label("log_source", peek_str(table, "name"), index);
    let r = TableReader::new(ctx, table, span.clone(), label, LOG_SOURCE_KEYS);
    let errors_before = ctx.diagnostics.len();
    let name = r.string(ctx, "name", "\"crm-middleware\"");
    if name.is_none() && r.get("name").is_none() {
        r.missing(
            ctx,
            "name",
            "name the source, e.g. name = \"crm-middleware\": it is shown in the 401/403 log",
        );
    }
    let path = r.string(ctx, "path", "\"/var/log/middleware/sfmc-*.jsonl\"");
    if path.is_none() && r.get("path").is_none() {
        r.missing(
            ctx,
            "path",
            "give the file or a glob, e.g. path = \"/var/log/middleware/sfmc-*.jsonl\"",
        );
    }
    let format = match r.string(ctx, "format", "\"jsonl\"") {
        None => LogFormat::Jsonl,
        Some(f) => match f.get_ref().parse::<LogFormat>() {
            Ok(format) => format,
            Err(_) => {
                ctx.error(&f.span(), format!("unknown log format `{}`", f.get_ref()), "use \"jsonl\" (one JSON object per line) or \"combined\" (nginx/Apache access log)");
                LogFormat::Jsonl
            }
        },
    };
    let (name, path) = (name?, path?);
    if let Some(first) = earlier.iter().position(|s| s.name == *name.get_ref()) {
        ctx.error(
            &name.span(),
            format!(
                "duplicate log_source name `{}` (log source {} has it too)",
                name.get_ref(),
                first + 1
            ),
            "give every [[log_source]] its own name",
        );
    }
    let mut source = LogSourceConfig::new(name.into_inner(), path.get_ref().clone(), format);
    let fields: [(&str, &mut String); 7] = [
        ("status_field", &mut source.status_field),
        ("time_field", &mut source.time_field),
        ("integration_field", &mut source.integration_field),
        ("client_id_field", &mut source.client_id_field),
        ("account_id_field", &mut source.account_id_field),
        ("url_field", &mut source.url_field),
        ("error_field", &mut source.error_field),
    ];
    for (key, slot) in fields {
        if let Some(v) = r.string(ctx, key, "\"response.status\"") {
            *slot = v.into_inner();
        }
    }
    if let Err(why) = source.validate() {
        ctx.error(
            &path.span(),
            why,
            "fix the glob: * ? [..] and ** are supported",
        );
    }
    (ctx.diagnostics.len() == errors_before).then_some(source)
}

fn read_credential(
    ctx: &mut Ctx<'_>,
    table: &DeTable<'_>,
    span: Span,
    index: usize,
) -> RawCredential {
    let label = entry_label("credential", peek_str(table, "id"), index);
    let r = TableReader::new(ctx, table, span, label, CREDENTIAL_KEYS);
    let errors_before = ctx.diagnostics.len();

    let id = r.string(ctx, "id", "\"crm-package\"");
    if id.is_none() && r.get("id").is_none() {
        r.missing(ctx, "id", "give the credential a unique id, e.g. id = \"crm-package\", and refer to it from [[integration]] credential = \"crm-package\"");
    }

    let provider = match r.string(ctx, "provider", "\"sfmc\"") {
        None if r.get("provider").is_some() => None,
        None => Some(Provider::Sfmc),
        Some(p) => match p.get_ref().as_str() {
            "sfmc" => Some(Provider::Sfmc),
            "oauth2" => Some(Provider::Oauth2),
            other => {
                let help = match nearest(&other.to_ascii_lowercase(), ["sfmc", "oauth2"]) {
                    Some(s) => format!("did you mean `{s}`? Use \"sfmc\" (Marketing Cloud /v2/token) or \"oauth2\" (RFC 6749 client credentials)"),
                    None => "use \"sfmc\" (Marketing Cloud /v2/token) or \"oauth2\" (RFC 6749 client credentials)".into(),
                };
                ctx.error(
                    &p.span(),
                    format!("unknown provider `{other}` in {}", r.label),
                    help,
                );
                None
            }
        },
    };

    let mut auth_url = r.url(ctx, "auth_url", SFMC_AUTH_URL_EXAMPLE);
    let token_url = r.url(ctx, "token_url", OAUTH2_TOKEN_URL_EXAMPLE);
    let client_auth = match r.string(ctx, "client_auth", "\"basic\"") {
        None => ClientAuth::Basic,
        Some(a) => match a.get_ref().as_str() {
            "basic" => ClientAuth::Basic,
            "body" => ClientAuth::Body,
            other => {
                ctx.error(
                    &a.span(),
                    format!("unknown client_auth `{other}` in {}", r.label),
                    "use \"basic\" (HTTP Basic, the default) or \"body\" (client_id/client_secret in the form body)",
                );
                ClientAuth::Basic
            }
        },
    };

    match provider {
        Some(Provider::Sfmc) => {
            if r.get("auth_url").is_none() {
                r.missing(
                    ctx,
                    "auth_url",
                    format!("sfmc credentials need the tenant's auth base URL (Setup > Installed Packages > API Integration), e.g. auth_url = \"{SFMC_AUTH_URL_EXAMPLE}\""),
                );
            }
            if let Some(v) = r.get("token_url") {
                ctx.error(
                    &v.span(),
                    format!("`token_url` is only for provider = \"oauth2\" ({})", r.label),
                    "sfmc credentials use auth_url (the token endpoint is {auth_url}v2/token): remove token_url, or set provider = \"oauth2\"",
                );
            }
            if let Some(v) = r.get("client_auth") {
                ctx.error(
                    &v.span(),
                    format!("`client_auth` is only for provider = \"oauth2\" ({})", r.label),
                    "sfmc always sends client_id and client_secret in the JSON body: remove client_auth",
                );
            }
            if let Some(u) = auth_url.as_mut() {
                normalise_auth_url(ctx, u, &r.label);
            }
        }
        Some(Provider::Oauth2) => {
            if r.get("token_url").is_none() {
                r.missing(
                    ctx,
                    "token_url",
                    format!("oauth2 credentials need the full token endpoint, e.g. token_url = \"{OAUTH2_TOKEN_URL_EXAMPLE}\""),
                );
            }
            if let Some(v) = r.get("auth_url") {
                ctx.error(
                    &v.span(),
                    format!("`auth_url` is only for provider = \"sfmc\" ({})", r.label),
                    "oauth2 credentials use token_url (the full token endpoint): rename auth_url to token_url, or set provider = \"sfmc\"",
                );
            }
        }
        None => {}
    }

    let client_id = r.required_string(ctx, "client_id", "\"abcdefghijklmnopqrstuvwx\"", "copy the Client Id of the package's API Integration component, e.g. client_id = \"abcdefghijklmnopqrstuvwx\"");
    let client_secret = r.secret(ctx, "client_secret");
    if r.get("client_secret").is_none() {
        r.missing(ctx, "client_secret", REFERENCE_FORMS_HELP);
    }
    let secret_expires = r.date(ctx, "secret_expires");
    let owner = r.string(ctx, "owner", "\"Jane Doe\"");
    let client_secret_update = match r.secret(ctx, "client_secret_update") {
        Some(s) => match s.get_ref() {
            crate::secrets::SecretRef::Command(argv) => Some(argv.clone()),
            _ => {
                ctx.error(
                    &s.span(),
                    format!("`client_secret_update` in {} must be a command", r.label),
                    "e.g. client_secret_update = { command = [\"pass\", \"insert\", \"-m\", \"-f\", \"sfmc/crm\"] }: it gets the new secret on stdin",
                );
                None
            }
        },
        None => None,
    };

    let built = if ctx.diagnostics.len() == errors_before {
        match (&id, provider, client_id, client_secret) {
            (Some(id), Some(provider), Some(client_id), Some(client_secret)) => Some(Credential {
                id: id.get_ref().clone(),
                provider,
                auth_url: auth_url.map(Spanned::into_inner),
                token_url: token_url.map(Spanned::into_inner),
                client_auth,
                client_id: client_id.into_inner(),
                client_secret: client_secret.into_inner(),
                secret_expires: secret_expires.map(Spanned::into_inner),
                owner: owner.map(Spanned::into_inner),
                client_secret_update,
            }),
            _ => None,
        }
    } else {
        None
    };
    RawCredential {
        id,
        provider,
        built,
    }
}

/// sfmc: the base URL must end with `/`; a pasted token endpoint or a query is a mistake.
fn normalise_auth_url(ctx: &mut Ctx<'_>, u: &mut Spanned<url::Url>, label: &Label<'_>) {
    let span = u.span();
    let url = u.get_mut();
    if url.query().is_some() || url.fragment().is_some() {
        ctx.error(
            &span,
            format!("`auth_url` in {label} must not have a query or fragment"),
            format!("use the base URL only, e.g. auth_url = \"{SFMC_AUTH_URL_EXAMPLE}\""),
        );
        return;
    }
    let path = url.path().trim_end_matches('/');
    if path.ends_with("/v2/token") || path.ends_with("/v1/requestToken") {
        ctx.error(
            &span,
            format!("`auth_url` in {label} is the token endpoint, not the base URL"),
            format!("remove the token path from the end (authwatch adds v2/token itself), e.g. auth_url = \"{SFMC_AUTH_URL_EXAMPLE}\""),
        );
        return;
    }
    if !url.path().ends_with('/') {
        let with_slash = format!("{}/", url.path());
        url.set_path(&with_slash);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// [[integration]]

struct RawIntegration {
    name: Option<Spanned<String>>,
    credential: Option<Spanned<String>>,
    check_path_span: Option<Span>,
    check_url_span: Option<Span>,
    /// Present when the entry itself is valid (references not yet checked).
    built: Option<Integration>,
}

/// Below this many, one thread reads them sooner than it can start another.
const PARALLEL_READ_FROM: usize = 2000;

/// Every `[[integration]]`, in halves on two threads when there are many (they are most of a large file). Each
/// half collects its own problems into its own context; all end up in `ctx`, sorted by position when reported.
fn read_integrations(ctx: &mut Ctx<'_>, tables: &[(&DeTable<'_>, Span)]) -> Vec<RawIntegration> {
    let (text, path) = (ctx.source.text(), ctx.path);
    let (raw, halves) = crate::halves::map_halves(
        tables,
        PARALLEL_READ_FROM,
        || Ctx::new(text, path),
        |own, i, (table, span)| read_integration(own, table, span.clone(), i + 1),
    );
    for half in halves {
        ctx.diagnostics.extend(half.diagnostics);
        ctx.warnings.extend(half.warnings);
    }
    raw
}

fn read_integration(
    ctx: &mut Ctx<'_>,
    table: &DeTable<'_>,
    span: Span,
    index: usize,
) -> RawIntegration {
    let label = entry_label("integration", peek_str(table, "name"), index);
    let r = TableReader::new(ctx, table, span, label, INTEGRATION_KEYS);
    let errors_before = ctx.diagnostics.len();

    let name = r.required_string(
        ctx,
        "name",
        "\"crm-sync\"",
        "give the integration a unique name, e.g. name = \"crm-sync\"",
    );
    let credential = r.required_string(ctx, "credential", "\"crm-package\"", "name the [[credential]] id this integration authenticates with, e.g. credential = \"crm-package\"");
    let account_id = r.string_or_integer(ctx, "account_id", "\"5100001\"");
    let scopes = r
        .string_list(
            ctx,
            "scopes",
            "[\"data_extensions_read\", \"data_extensions_write\"]",
            "scope",
        )
        .unwrap_or_default();
    for scope in &scopes {
        if scope.get_ref().trim().contains(char::is_whitespace) {
            ctx.error(
                &scope.span(),
                format!("scope {:?} in {} contains whitespace", scope.get_ref(), r.label),
                "list each scope as its own string, e.g. scopes = [\"data_extensions_read\", \"data_extensions_write\"]",
            );
        }
    }
    let check_path = r.string(ctx, "check_path", "\"platform/v1/tokenContext\"");
    if let Some(p) = &check_path {
        let text = p.get_ref();
        if text.starts_with('/') || text.contains("://") {
            ctx.error(
                &p.span(),
                format!("`check_path` in {} must be relative to the REST instance URL", r.label),
                format!("drop the leading `/` (and any scheme and host), e.g. check_path = \"{DEFAULT_CHECK_PATH}\""),
            );
        }
    }
    let check_url = r.url(
        ctx,
        "check_url",
        "https://example.my.salesforce.com/services/oauth2/userinfo",
    );
    let business_unit = r.string(ctx, "business_unit", "\"NA Retail\"");
    let team = r.string(ctx, "team", "\"crm-ops\"");
    let environment = r.string(ctx, "environment", "\"prod\"");
    let processes = r
        .string_list(
            ctx,
            "processes",
            "[\"Welcome journey\", \"Nightly DE sync\"]",
            "process",
        )
        .unwrap_or_default();

    let check_path_span = check_path.as_ref().map(Spanned::span);
    let check_url_span = r.get("check_url").map(Spanned::span);
    let built = match (&name, &credential) {
        (Some(n), Some(c)) if ctx.diagnostics.len() == errors_before => Some(Integration {
            name: n.get_ref().clone(),
            credential: c.get_ref().clone(),
            account_id: account_id.map(Spanned::into_inner),
            scopes: scopes
                .into_iter()
                .map(|s| s.into_inner().trim().to_string())
                .collect(),
            check_path: check_path
                .map_or_else(|| DEFAULT_CHECK_PATH.to_string(), Spanned::into_inner),
            check_url: check_url.map(Spanned::into_inner),
            business_unit: business_unit.map(Spanned::into_inner),
            team: team.map(Spanned::into_inner),
            environment: environment.map(Spanned::into_inner),
            processes: processes.into_iter().map(Spanned::into_inner).collect(),
        }),
        _ => None,
    };
    RawIntegration {
        name,
        credential,
        check_path_span,
        check_url_span,
        built,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Cross-section checks

fn check_references(
    ctx: &mut Ctx<'_>,
    credentials: &[RawCredential],
    integrations: Vec<RawIntegration>,
) -> Vec<Integration> {
    // Duplicate credential ids (point at the second, mention the first's line; lines are counted only then).
    let mut ids: HashMap<&str, (Span, Option<Provider>)> = HashMap::new();
    for c in credentials {
        let Some(id) = &c.id else { continue };
        if let Some((first, _)) = ids.get(id.get_ref().as_str()) {
            let first = ctx.line_of(first);
            ctx.error(
                &id.span(),
                format!(
                    "duplicate credential id `{}` (first defined on line {first})",
                    id.get_ref()
                ),
                "give each [[credential]] a unique id",
            );
        } else {
            ids.insert(id.get_ref(), (id.span(), c.provider));
        }
    }

    let mut names: HashMap<&str, Span> = HashMap::new();
    let mut used: std::collections::HashSet<&str> = Default::default();
    for i in &integrations {
        if let Some(name) = &i.name {
            if let Some(first) = names.get(name.get_ref().as_str()) {
                let first = ctx.line_of(first);
                ctx.error(
                    &name.span(),
                    format!(
                        "duplicate integration name `{}` (first defined on line {first})",
                        name.get_ref()
                    ),
                    "give each [[integration]] a unique name",
                );
            } else {
                names.insert(name.get_ref(), name.span());
            }
        }
        let Some(cred) = &i.credential else { continue };
        used.insert(cred.get_ref());
        let label = entry_label(
            "integration",
            i.name.as_ref().map(|n| n.get_ref().as_str()),
            0,
        );
        match ids.get(cred.get_ref().as_str()) {
            None => {
                let known: Vec<&str> = {
                    let mut k: Vec<&str> = ids.keys().copied().collect();
                    k.sort_unstable();
                    k
                };
                let help = match nearest(cred.get_ref(), known.iter().copied()) {
                    Some(s) => format!(
                        "did you mean `{s}`? Defined credential ids: {}",
                        list(&known)
                    ),
                    None if known.is_empty() => format!(
                        "add a [[credential]] section with id = {:?}",
                        cred.get_ref()
                    ),
                    None => format!(
                        "defined credential ids: {}; or add a [[credential]] with id = {:?}",
                        list(&known),
                        cred.get_ref()
                    ),
                };
                ctx.error(
                    &cred.span(),
                    format!("{label} names unknown credential `{}`", cred.get_ref()),
                    help,
                );
            }
            Some((_, Some(Provider::Oauth2))) => {
                if let Some(span) = &i.check_path_span {
                    ctx.error(
                        span,
                        format!("`check_path` in {label} only applies to sfmc credentials (`{}` is oauth2)", cred.get_ref()),
                        "remove check_path; for oauth2 use check_url = \"https://...\" (an absolute URL), or none to probe the token request alone",
                    );
                }
            }
            Some((_, Some(Provider::Sfmc))) => {
                if let Some(span) = &i.check_url_span {
                    ctx.error(
                        span,
                        format!("`check_url` in {label} only applies to oauth2 credentials (`{}` is sfmc)", cred.get_ref()),
                        "for sfmc use check_path, relative to the REST instance URL, e.g. check_path = \"platform/v1/tokenContext\"",
                    );
                }
            }
            Some((_, None)) => {}
        }
    }

    for c in credentials {
        if let Some(id) = &c.id
            && !used.contains(id.get_ref().as_str())
        {
            ctx.warn(
                &id.span(),
                format_args!(
                    "credential `{}` is not used by any [[integration]]",
                    id.get_ref()
                ),
            );
        }
    }
    if integrations.is_empty() && ctx.diagnostics.is_empty() {
        ctx.warnings.push((
            usize::MAX,
            format!(
                "{}: no [[integration]] sections: nothing to watch",
                ctx.path.display()
            ),
        ));
    }
    integrations.into_iter().filter_map(|i| i.built).collect()
}
