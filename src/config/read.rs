//! Typed, span-aware reading of TOML tables. Every problem becomes a [`Diagnostic`] and reading goes on, so one
//! pass reports everything. Adding a section = a key list plus a function using a [`TableReader`].

use super::diag::{Diagnostic, Source};
use crate::secrets::{REFERENCE_KINDS, RefShapeError, SecretRef};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_spanned::Spanned;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;
use toml::de::{DeTable, DeValue};
use url::Url;

pub(crate) type Span = Range<usize>;

/// Collects diagnostics and warnings for one file.
pub(crate) struct Ctx<'a> {
    pub(crate) source: Source<'a>,
    pub(crate) path: &'a Path,
    pub(crate) diagnostics: Vec<Diagnostic>,
    pub(crate) warnings: Vec<(usize, String)>,
}

/// How an error line may be shown.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Excerpt {
    /// Show the source line if it cannot hold a secret.
    IfSafe,
    Never,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(text: &'a str, path: &'a Path) -> Self {
        Self {
            source: Source::new(text),
            path,
            diagnostics: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub(crate) fn line_of(&self, span: &Span) -> usize {
        self.source.position(span.start).0
    }

    pub(crate) fn error_with(
        &mut self,
        span: &Span,
        message: impl Into<String>,
        help: Option<String>,
        excerpt: Excerpt,
    ) {
        let (line, column) = self.source.position(span.start);
        let excerpt = match excerpt {
            Excerpt::IfSafe => self.source.safe_excerpt(line),
            Excerpt::Never => None,
        };
        // Messages quote names, keys and values from the file: never a raw control or bidi character.
        self.diagnostics.push(Diagnostic {
            line,
            column,
            message: crate::sanitize::owned(message.into()),
            help: help.map(crate::sanitize::owned),
            excerpt,
        });
    }

    pub(crate) fn error(
        &mut self,
        span: &Span,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.error_with(span, message, Some(help.into()), Excerpt::IfSafe);
    }

    pub(crate) fn warn(&mut self, span: &Span, message: impl std::fmt::Display) {
        let (line, column) = self.source.position(span.start);
        self.warnings.push((
            span.start,
            crate::sanitize::owned(format!(
                "{}:{line}:{column}: {message}",
                self.path.display()
            )),
        ));
    }
}

pub(crate) fn did_you_mean(input: &str, candidates: &[&str]) -> String {
    match crate::suggest::nearest(input, candidates.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!("valid keys: {}", list(candidates)),
    }
}

pub(crate) fn list(items: &[&str]) -> String {
    items
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Names, ids, paths and URLs are printed on terminals, in logs, metrics labels and notifications: a value with
/// a control character (newline, NUL, ESC, ...) or a bidi control (U+202E, ...) is refused, naming the character.
fn unsafe_characters(ctx: &mut Ctx<'_>, span: &Span, key: &str, label: &Label<'_>, value: &str) {
    let what = value
        .chars()
        .filter(|c| crate::sanitize::is_unsafe(*c))
        .map(|c| format!("U+{:04X}", c as u32))
        .fold(Vec::<String>::new(), |mut seen, c| {
            if !seen.contains(&c) {
                seen.push(c);
            }
            seen
        });
    ctx.error_with(
        span,
        format!(
            "`{key}` in {} contains control or bidi characters ({})",
            crate::sanitize::text(&label.to_string()),
            what.join(", ")
        ),
        Some(format!(
            "remove them: `{key}` may hold letters, digits, spaces and punctuation only"
        )),
        Excerpt::IfSafe,
    );
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date/time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

pub(crate) fn peek_str<'t>(table: &'t DeTable<'_>, key: &str) -> Option<&'t str> {
    table.get(key).and_then(|v| v.get_ref().as_str())
}

/// Names a table in messages: `[settings]`, `[[credential]] "crm-package"`, `[[integration]] #3`. Written out
/// only when a message is (a load of 10,000 tables formats none).
#[derive(Clone, Copy)]
pub(crate) enum Label<'a> {
    Section(&'static str),
    Entry {
        section: &'static str,
        name: Option<&'a str>,
        /// From 1, for an entry without a name.
        index: usize,
    },
}

pub(crate) fn entry_label<'a>(
    section: &'static str,
    name: Option<&'a str>,
    index: usize,
) -> Label<'a> {
    Label::Entry {
        section,
        name,
        index,
    }
}

impl std::fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Label::Section(section) => f.write_str(section),
            Label::Entry {
                section,
                name: Some(name),
                ..
            } if !name.trim().is_empty() => write!(f, "[[{section}]] {name:?}"),
            Label::Entry { section, index, .. } => write!(f, "[[{section}]] #{index}"),
        }
    }
}

/// Reads the keys of one table, reporting unknown keys up front.
pub(crate) struct TableReader<'t, 'i> {
    table: &'t DeTable<'i>,
    /// Where to point for a missing key (the table header).
    span: Span,
    pub(crate) label: Label<'t>,
}

impl<'t, 'i> TableReader<'t, 'i> {
    pub(crate) fn new(
        ctx: &mut Ctx<'_>,
        table: &'t DeTable<'i>,
        span: Span,
        label: Label<'t>,
        known: &[&str],
    ) -> Self {
        for (key, _) in table.iter() {
            if !known.contains(&key.get_ref().as_ref()) {
                ctx.error_with(
                    &key.span(),
                    format!(
                        "unknown key `{}` in {label}",
                        crate::sanitize::text(key.get_ref())
                    ),
                    Some(did_you_mean(key.get_ref(), known)),
                    Excerpt::Never,
                );
            }
        }
        Self { table, span, label }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&'t Spanned<DeValue<'i>>> {
        self.table.get(key)
    }

    /// Report a missing required key at the table header.
    pub(crate) fn missing(&self, ctx: &mut Ctx<'_>, key: &str, help: impl Into<String>) {
        ctx.error(
            &self.span,
            format!("missing required key `{key}` in {}", self.label),
            help,
        );
    }

    fn wrong_type(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
        v: &Spanned<DeValue<'_>>,
        expected: &str,
        example: &str,
    ) {
        ctx.error(
            &v.span(),
            format!(
                "`{key}` in {} must be {expected}, found {}",
                self.label,
                type_name(v.get_ref())
            ),
            format!("e.g. {key} = {example}"),
        );
    }

    pub(crate) fn string(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
        example: &str,
    ) -> Option<Spanned<String>> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::String(s) if s.trim().is_empty() => {
                ctx.error(
                    &v.span(),
                    format!("`{key}` in {} is empty", self.label),
                    format!("give a value, e.g. {key} = {example}, or remove the line"),
                );
                None
            }
            DeValue::String(s) if s.chars().any(crate::sanitize::is_unsafe) => {
                unsafe_characters(ctx, &v.span(), key, &self.label, s);
                None
            }
            DeValue::String(s) => Some(Spanned::new(v.span(), s.to_string())),
            _ => {
                self.wrong_type(ctx, key, v, "a string", example);
                None
            }
        }
    }

    /// A string, or an integer stored as its decimal text (e.g. an MID).
    /// A string that must be there: a missing key is reported with `help`.
    pub(crate) fn required_string(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
        example: &str,
        help: impl Into<String>,
    ) -> Option<Spanned<String>> {
        if self.get(key).is_none() {
            self.missing(ctx, key, help);
        }
        self.string(ctx, key, example)
    }

    pub(crate) fn string_or_integer(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
        example: &str,
    ) -> Option<Spanned<String>> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::Integer(i) => match int_value(i) {
                Some(n) if n >= 0 => Some(Spanned::new(v.span(), n.to_string())),
                _ => {
                    ctx.error(
                        &v.span(),
                        format!("`{key}` in {} must be a non-negative number", self.label),
                        format!("e.g. {key} = {example}"),
                    );
                    None
                }
            },
            _ => self.string(ctx, key, example),
        }
    }

    pub(crate) fn string_list(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
        example: &str,
        what: &str,
    ) -> Option<Vec<Spanned<String>>> {
        let v = self.get(key)?;
        let Some(items) = v.get_ref().as_array() else {
            self.wrong_type(ctx, key, v, "an array of strings", example);
            return None;
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) if s.trim().is_empty() => ctx.error(
                    &item.span(),
                    format!("empty {what} in `{key}` in {}", self.label),
                    format!("remove the empty entry, e.g. {key} = {example}"),
                ),
                DeValue::String(s) if s.chars().any(crate::sanitize::is_unsafe) => {
                    unsafe_characters(ctx, &item.span(), key, &self.label, s)
                }
                DeValue::String(s) => out.push(Spanned::new(item.span(), s.to_string())),
                other => ctx.error(
                    &item.span(),
                    format!(
                        "`{key}` in {} must contain only strings, found {}",
                        self.label,
                        type_name(other)
                    ),
                    format!("e.g. {key} = {example}"),
                ),
            }
        }
        Some(out)
    }

    pub(crate) fn positive_integer(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
        example: &str,
    ) -> Option<Spanned<u64>> {
        let v = self.get(key)?;
        let Some(i) = v.get_ref().as_integer() else {
            self.wrong_type(ctx, key, v, "a whole number", example);
            return None;
        };
        match int_value(i) {
            Some(n) if n >= 1 && n <= u32::MAX as i64 => Some(Spanned::new(v.span(), n as u64)),
            Some(n) if n < 1 => {
                ctx.error(
                    &v.span(),
                    format!("`{key}` in {} must be at least 1, found {n}", self.label),
                    format!("e.g. {key} = {example}"),
                );
                None
            }
            _ => {
                ctx.error(
                    &v.span(),
                    format!("`{key}` in {} is too large", self.label),
                    format!("e.g. {key} = {example}"),
                );
                None
            }
        }
    }

    /// A human duration (`"30s"`); zero is rejected unless `allow_zero`.
    pub(crate) fn duration(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
        example: &str,
        allow_zero: bool,
    ) -> Option<Spanned<Duration>> {
        let v = self.get(key)?;
        let Some(s) = v.get_ref().as_str() else {
            self.wrong_type(ctx, key, v, "a duration string", &format!("\"{example}\""));
            return None;
        };
        match crate::duration::parse_duration(s) {
            Ok(d) if d.is_zero() && !allow_zero => {
                ctx.error(
                    &v.span(),
                    format!("`{key}` in {} must be longer than zero", self.label),
                    format!("e.g. {key} = \"{example}\""),
                );
                None
            }
            Ok(d) => Some(Spanned::new(v.span(), d)),
            Err(_) => {
                ctx.error(
                    &v.span(),
                    format!("bad duration for `{key}` in {}: {s:?}", self.label),
                    format!(
                        "write a number and a unit (ms, s, m, h or d), e.g. {key} = \"{example}\""
                    ),
                );
                None
            }
        }
    }

    /// A TOML date/datetime or a string holding one; a date means midnight UTC, a local datetime is taken as UTC.
    pub(crate) fn date(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<Spanned<DateTime<Utc>>> {
        let v = self.get(key)?;
        let help = format!(
            "write a date like {key} = 2027-03-01 (or a datetime like 2027-03-01T09:00:00Z)"
        );
        let parsed = match v.get_ref() {
            DeValue::Datetime(dt) => Ok(*dt),
            DeValue::String(s) => s.trim().parse::<toml::value::Datetime>().map_err(|_| ()),
            _ => {
                self.wrong_type(ctx, key, v, "a date", "2027-03-01");
                return None;
            }
        };
        match parsed.ok().and_then(|dt| datetime_to_utc(&dt)) {
            Some(t) => Some(Spanned::new(v.span(), t)),
            None => {
                ctx.error(
                    &v.span(),
                    format!("bad date for `{key}` in {}", self.label),
                    help,
                );
                None
            }
        }
    }

    /// An http(s) URL. `http://` to a non-loopback host is accepted with a warning.
    pub(crate) fn url(&self, ctx: &mut Ctx<'_>, key: &str, example: &str) -> Option<Spanned<Url>> {
        let v = self.get(key)?;
        let Some(s) = v.get_ref().as_str() else {
            self.wrong_type(ctx, key, v, "a URL string", &format!("\"{example}\""));
            return None;
        };
        let help = format!("write an absolute https URL, e.g. {key} = \"{example}\"");
        let url = match Url::parse(s.trim()) {
            Ok(u) => u,
            Err(e) => {
                ctx.error(
                    &v.span(),
                    format!("`{key}` in {} is not a valid URL: {e}", self.label),
                    help,
                );
                return None;
            }
        };
        if url.scheme() != "https" && url.scheme() != "http" {
            ctx.error(
                &v.span(),
                format!(
                    "`{key}` in {} must be an http or https URL, found scheme `{}`",
                    self.label,
                    url.scheme()
                ),
                help,
            );
            return None;
        }
        if url.host().is_none() {
            ctx.error(
                &v.span(),
                format!("`{key}` in {} has no host", self.label),
                help,
            );
            return None;
        }
        if !url.username().is_empty() || url.password().is_some() {
            ctx.error_with(
                &v.span(),
                format!("`{key}` in {} must not contain a user name or password", self.label),
                Some("remove the `user:password@` part; credentials belong in client_id/client_secret".into()),
                Excerpt::Never,
            );
            return None;
        }
        if url.scheme() == "http" && !crate::host::is_loopback(&url) {
            ctx.warn(
                &v.span(),
                format_args!(
                    "`{key}` in {} uses http:// to {}; secrets and tokens would cross the network unencrypted (use https)",
                    self.label,
                    url.host_str().unwrap_or("?")
                ),
            );
        }
        Some(Spanned::new(v.span(), url))
    }

    /// A secret reference; the value of a literal is never echoed.
    pub(crate) fn secret(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<Spanned<SecretRef>> {
        let v = self.get(key)?;
        match read_secret_ref(v) {
            Ok(r) => Some(Spanned::new(v.span(), r)),
            Err((span, e)) => {
                ctx.error_with(
                    &span,
                    e.message(&format!("`{key}` in {}", self.label)),
                    Some(e.help()),
                    Excerpt::Never,
                );
                None
            }
        }
    }
}

/// The value of a TOML integer (any radix, `_` separators), None when it does not fit an i64.
fn int_value(i: &toml::de::DeInteger<'_>) -> Option<i64> {
    let digits = i.as_str().replace('_', "");
    let radix = i.radix();
    let body = match radix {
        16 | 8 | 2 => digits.get(2..)?,
        _ => digits.as_str(),
    };
    i64::from_str_radix(body, radix).ok()
}

fn datetime_to_utc(dt: &toml::value::Datetime) -> Option<DateTime<Utc>> {
    let d = dt.date?;
    let date = NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into())?;
    let naive = match dt.time {
        None => date.and_hms_opt(0, 0, 0)?,
        Some(t) => date.and_hms_nano_opt(
            t.hour.into(),
            t.minute.into(),
            t.second.unwrap_or(0).into(),
            t.nanosecond.unwrap_or(0),
        )?,
    };
    let offset_minutes: i32 = match dt.offset {
        None | Some(toml::value::Offset::Z) => 0,
        Some(toml::value::Offset::Custom { minutes }) => minutes.into(),
    };
    let offset = chrono::FixedOffset::east_opt(offset_minutes * 60)?;
    offset
        .from_local_datetime(&naive)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// Validate the shape of a secret reference value; the error carries the span to point at.
fn read_secret_ref(v: &Spanned<DeValue<'_>>) -> Result<SecretRef, (Span, RefShapeError)> {
    let table = match v.get_ref() {
        DeValue::Table(t) => t,
        other => {
            let found = match other {
                DeValue::String(_) => "string",
                DeValue::Array(_) => "an array",
                DeValue::Boolean(_) => "a boolean",
                DeValue::Datetime(_) => "a date",
                _ => "a number",
            };
            return Err((v.span(), RefShapeError::Literal { found }));
        }
    };
    let mut entries = table.iter();
    let Some((key, value)) = entries.next() else {
        return Err((v.span(), RefShapeError::NoKind));
    };
    if let Some((second, _)) = entries.next() {
        return Err((second.span(), RefShapeError::SeveralKinds));
    }
    let string = |kind: &'static str| -> Result<String, (Span, RefShapeError)> {
        match value.get_ref() {
            DeValue::String(s) if s.trim().is_empty() => {
                Err((value.span(), RefShapeError::Empty { kind }))
            }
            DeValue::String(s) => Ok(s.to_string()),
            _ => Err((
                value.span(),
                RefShapeError::WrongType {
                    kind,
                    expected: "a string",
                },
            )),
        }
    };
    match key.get_ref().as_ref() {
        "env" => string("env").map(SecretRef::Env),
        "file" => string("file").map(|p| SecretRef::File(p.into())),
        "store" => string("store").map(SecretRef::Store),
        "command" => {
            let wrong = || {
                (
                    value.span(),
                    RefShapeError::WrongType {
                        kind: "command",
                        expected: "an array of strings",
                    },
                )
            };
            let items = value.get_ref().as_array().ok_or_else(wrong)?;
            let argv = items
                .iter()
                .map(|i| i.get_ref().as_str().map(str::to_string))
                .collect::<Option<Vec<String>>>()
                .ok_or_else(wrong)?;
            if argv.first().is_none_or(|p| p.trim().is_empty()) {
                return Err((value.span(), RefShapeError::Empty { kind: "command" }));
            }
            Ok(SecretRef::Command(argv))
        }
        other => Err((
            key.span(),
            RefShapeError::UnknownKind {
                kind: other.to_string(),
                suggestion: crate::suggest::nearest(other, REFERENCE_KINDS),
            },
        )),
    }
}

/// A value that must be an array of tables (`[[credential]]`); yields each table with its span.
pub(crate) fn array_of_tables<'t, 'i>(
    ctx: &mut Ctx<'_>,
    key: &Spanned<toml::de::DeString<'i>>,
    value: &'t Spanned<DeValue<'i>>,
) -> Vec<(&'t DeTable<'i>, Span)> {
    let name = key.get_ref();
    match value.get_ref() {
        DeValue::Array(items) => {
            let mut out = Vec::new();
            for item in items.iter() {
                match item.get_ref() {
                    DeValue::Table(t) => out.push((t, item.span())),
                    _ => ctx.error(
                        &item.span(),
                        format!("each `{name}` entry must be a table"),
                        format!("write each entry as a [[{name}]] section"),
                    ),
                }
            }
            out
        }
        DeValue::Table(_) => {
            ctx.error(
                &key.span(),
                format!("`{name}` must be written [[{name}]] (an array of tables), not [{name}]"),
                format!("use [[{name}]] with double brackets, once per entry"),
            );
            Vec::new()
        }
        _ => {
            ctx.error(
                &key.span(),
                format!("`{name}` must be a list of [[{name}]] sections"),
                format!("use [[{name}]] with double brackets, once per entry"),
            );
            Vec::new()
        }
    }
}
