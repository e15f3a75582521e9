//! Line parsers: JSON lines and the nginx/Apache combined access log. Pure, and allocation-free for the
//! common case: strings without JSON escapes are borrowed from the line.
//!
//! Semantics of [`LineParser::parse`], which `scan` reproduces exactly at buffer level:
//! 0. A line of [`MAX_LINE`] bytes or more is [`Line::Malformed`], unread (the follower and `scan` never hold it).
//! 1. A blank line is [`Line::OtherStatus`].
//! 2. A line failing the cheap shape check is [`Line::Malformed`] (jsonl: first and last non-blank bytes are
//!    `{` and `}`; combined: has a `[` followed later by a `"`).
//! 3. A line that contains neither the bytes `401` nor `403` is [`Line::OtherStatus`] without further parsing
//!    (a 401 written as `401`, `"401"` or `" 401 "` always contains them; `4.01e2` or `"\u0034\u0030\u0031"`
//!    do not and are not recognised).
//! 4. Every other line is parsed fully: invalid JSON or an unparseable access-log line is `Malformed`; a line
//!    whose status field is missing or not 401/403 is `OtherStatus`; else [`Line::Event`].

use crate::config::{LogFormat, LogSourceConfig};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use memchr::memmem;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// What one log line says.
#[derive(Debug, Clone, PartialEq)]
pub enum Line<'a> {
    /// A 401 or 403.
    Event(RawEvent<'a>),
    /// Any other status, no status at all, or a blank line.
    OtherStatus,
    /// Not valid JSON / not an access-log line.
    Malformed,
}

/// A 401/403 found in a log line, before it is mapped to an integration.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEvent<'a> {
    /// None when the line has no (parseable) time: the follower then uses the time it read the line.
    pub at: Option<DateTime<Utc>>,
    /// 401 or 403.
    pub status: u16,
    pub keys: MatchKeys<'a>,
    /// jsonl: the error field (a string, a number, or from an object its `error`/`message`/`faultstring`/
    /// `error_description` member). combined: `METHOD /path` of the request, query string removed.
    pub error: Option<Cow<'a, str>>,
}

impl RawEvent<'_> {
    /// The same event, owning its strings.
    pub fn into_owned(self) -> RawEvent<'static> {
        RawEvent {
            at: self.at,
            status: self.status,
            keys: MatchKeys {
                integration: self.keys.integration.map(owned),
                client_id: self.keys.client_id.map(owned),
                account_id: self.keys.account_id.map(owned),
                host: self.keys.host.map(owned),
            },
            error: self.error.map(owned),
        }
    }
}

fn owned(c: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(c.into_owned())
}

/// Lines of this many bytes or more (not counting the `\n`) are malformed without being read: no log line of
/// an integration is that long, and `scan` and the follower skip them alike, with bounded memory.
pub const MAX_LINE: usize = 1 << 20;

/// The values a [`super::Matcher`] can map to an integration, in the order it tries them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MatchKeys<'a> {
    pub integration: Option<Cow<'a, str>>,
    pub client_id: Option<Cow<'a, str>>,
    pub account_id: Option<Cow<'a, str>>,
    /// Host of the request URL (no port, no userinfo; case as logged).
    pub host: Option<Cow<'a, str>>,
}

const STATUS: usize = 0;
const TIME: usize = 1;
const INTEGRATION: usize = 2;
const CLIENT_ID: usize = 3;
const ACCOUNT_ID: usize = 4;
const URL: usize = 5;
const ERROR: usize = 6;
const NFIELDS: usize = 7;

/// A compiled [`LogSourceConfig`]: parse lines of that source.
#[derive(Debug, Clone)]
pub struct LineParser {
    format: LogFormat,
    paths: [Box<[Box<str>]>; NFIELDS],
    f401: memmem::Finder<'static>,
    f403: memmem::Finder<'static>,
}

impl LineParser {
    pub fn new(source: &LogSourceConfig) -> Self {
        let split = |s: &str| -> Box<[Box<str>]> { s.split('.').map(Box::from).collect() };
        Self {
            format: source.format,
            paths: [
                split(&source.status_field),
                split(&source.time_field),
                split(&source.integration_field),
                split(&source.client_id_field),
                split(&source.account_id_field),
                split(&source.url_field),
                split(&source.error_field),
            ],
            f401: memmem::Finder::new(b"401"),
            f403: memmem::Finder::new(b"403"),
        }
    }

    pub fn format(&self) -> LogFormat {
        self.format
    }

    /// Parse one line (with or without its trailing `\n`).
    pub fn parse<'a>(&self, line: &'a [u8]) -> Line<'a> {
        let line = strip_newline(line);
        if line.len() >= MAX_LINE {
            return Line::Malformed;
        }
        let line = strip_eol(line);
        match self.shape(line) {
            Shape::Blank => Line::OtherStatus,
            Shape::Bad => Line::Malformed,
            Shape::Ok => {
                if self.f401.find(line).is_none() && self.f403.find(line).is_none() {
                    Line::OtherStatus
                } else {
                    self.parse_candidate(line)
                }
            }
        }
    }

    pub(crate) fn finders(&self) -> (&memmem::Finder<'static>, &memmem::Finder<'static>) {
        (&self.f401, &self.f403)
    }

    /// Step 2 of the module doc. `line` has no trailing newline.
    #[inline]
    pub(crate) fn shape(&self, line: &[u8]) -> Shape {
        let Some(first) = line.iter().position(|b| !b.is_ascii_whitespace()) else {
            return Shape::Blank;
        };
        match self.format {
            LogFormat::Jsonl => {
                let last = line
                    .iter()
                    .rposition(|b| !b.is_ascii_whitespace())
                    .unwrap_or(first);
                if line[first] == b'{' && line[last] == b'}' {
                    Shape::Ok
                } else {
                    Shape::Bad
                }
            }
            LogFormat::Combined => match memchr::memchr(b'[', line) {
                Some(i) if memchr::memchr(b'"', &line[i..]).is_some() => Shape::Ok,
                _ => Shape::Bad,
            },
        }
    }

    /// Step 4 of the module doc: the full parse of a line that passed the shape check and the byte pre-filter.
    pub(crate) fn parse_candidate<'a>(&self, line: &'a [u8]) -> Line<'a> {
        match self.format {
            LogFormat::Jsonl => self.parse_json(line),
            LogFormat::Combined => parse_combined(line),
        }
    }

    /// A line that is not valid UTF-8 (one stray byte from a truncated write or a legacy encoding) is read again
    /// with the bad bytes replaced by U+FFFD, so its status still counts.
    fn parse_json<'a>(&self, line: &'a [u8]) -> Line<'a> {
        match self.parse_json_utf8(line) {
            Line::Malformed if std::str::from_utf8(line).is_err() => {
                let fixed = String::from_utf8_lossy(line).into_owned();
                match self.parse_json_utf8(fixed.as_bytes()) {
                    Line::Event(ev) => Line::Event(ev.into_owned()),
                    Line::OtherStatus => Line::OtherStatus,
                    Line::Malformed => Line::Malformed,
                }
            }
            parsed => parsed,
        }
    }

    fn parse_json_utf8<'a>(&self, line: &'a [u8]) -> Line<'a> {
        let mut slots = Slots::default();
        let mut de = serde_json::Deserializer::from_slice(line);
        let top = MapSeed {
            paths: &self.paths,
            depth: 0,
            alive: (1u8 << NFIELDS) - 1,
            exact: (1u8 << NFIELDS) - 1,
            summary: false,
            slots: &mut slots,
        };
        if de::Deserializer::deserialize_map(&mut de, top).is_err() || de.end().is_err() {
            return Line::Malformed;
        }
        let mut v = slots.vals;
        let Some(status) = v[STATUS].take().and_then(|(v, _)| v.as_status()) else {
            return Line::OtherStatus;
        };
        if status != 401 && status != 403 {
            return Line::OtherStatus;
        }
        let text = |v: Option<(Val<'a>, bool)>| v.and_then(|(v, _)| v.into_text());
        let host = text(v[URL].take()).and_then(|u| match u {
            Cow::Borrowed(s) => host_of(s).map(Cow::Borrowed),
            Cow::Owned(s) => host_of(&s).map(|h| Cow::Owned(h.to_owned())),
        });
        Line::Event(RawEvent {
            at: v[TIME].take().and_then(|(v, _)| v.as_time()),
            status,
            keys: MatchKeys {
                integration: safe(text(v[INTEGRATION].take())),
                client_id: safe(text(v[CLIENT_ID].take())),
                account_id: safe(text(v[ACCOUNT_ID].take())),
                host: safe(host),
            },
            error: safe_error(text(v[ERROR].take())),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Blank,
    Bad,
    Ok,
}

/// Without its trailing `\n` (a `\r` before it stays).
#[inline]
pub(crate) fn strip_newline(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

#[inline]
pub(crate) fn strip_eol(mut line: &[u8]) -> &[u8] {
    if let [rest @ .., b'\n'] = line {
        line = rest;
    }
    if let [rest @ .., b'\r'] = line {
        line = rest;
    }
    line
}

// ---------------------------------------------------------------------------------------------------------
// JSON: a single pass over the object that keeps only the configured fields (borrowed when unescaped).

#[derive(Debug, Clone)]
enum Val<'a> {
    Str(Cow<'a, str>),
    U(u64),
    I(i64),
    F(f64),
    /// An object; for the error field its summary string.
    Obj(Option<Cow<'a, str>>),
    Other,
}

impl<'a> Val<'a> {
    fn as_status(&self) -> Option<u16> {
        match self {
            Val::U(n) => u16::try_from(*n).ok(),
            Val::I(n) => u16::try_from(*n).ok(),
            Val::F(f) if f.fract() == 0.0 && (0.0..65536.0).contains(f) => Some(*f as u16),
            Val::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    fn as_time(&self) -> Option<DateTime<Utc>> {
        match self {
            Val::U(n) => epoch(*n as f64),
            Val::I(n) => epoch(*n as f64),
            Val::F(f) => epoch(*f),
            Val::Str(s) => parse_time_str(s),
            _ => None,
        }
    }

    fn into_text(self) -> Option<Cow<'a, str>> {
        let t = match self {
            Val::Str(s) => s,
            Val::Obj(Some(s)) => s,
            Val::U(n) => Cow::Owned(n.to_string()),
            Val::I(n) => Cow::Owned(n.to_string()),
            Val::F(f) if f.fract() == 0.0 && f.abs() < 1e15 => Cow::Owned(format!("{}", f as i64)),
            _ => return None,
        };
        match t {
            Cow::Borrowed(s) if s.trim().is_empty() => None,
            Cow::Borrowed(s) => Some(Cow::Borrowed(s.trim())),
            Cow::Owned(s) if s.trim().is_empty() => None,
            Cow::Owned(s) => Some(Cow::Owned(s.trim().to_owned())),
        }
    }
}

/// Member names whose string value summarises an error object, best first.
const SUMMARY_KEYS: [&str; 4] = ["error", "message", "faultstring", "error_description"];

#[derive(Default)]
struct Slots<'a> {
    /// Value and whether every path segment matched exactly (exact beats case-insensitive).
    vals: [Option<(Val<'a>, bool)>; NFIELDS],
    summary: [Option<Cow<'a, str>>; SUMMARY_KEYS.len()],
}

impl<'a> Slots<'a> {
    fn store(&mut self, mask: u8, exact: u8, v: &Val<'a>) {
        for f in 0..NFIELDS {
            let bit = 1u8 << f;
            if mask & bit == 0 {
                continue;
            }
            let is_exact = exact & bit != 0;
            match &self.vals[f] {
                Some((_, true)) => {}
                Some((_, false)) if !is_exact => {}
                _ => self.vals[f] = Some((v.clone(), is_exact)),
            }
        }
    }
}

/// Which fields a key selects: (ends here, continues below, matched exactly, summary index + 1).
struct KeySeed<'p> {
    paths: &'p [Box<[Box<str>]>; NFIELDS],
    depth: usize,
    alive: u8,
    summary: bool,
}

struct KeyHit {
    ends: u8,
    cont: u8,
    exact: u8,
    summary: Option<usize>,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = KeyHit;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<KeyHit, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = KeyHit;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<KeyHit, E> {
        let mut hit = KeyHit {
            ends: 0,
            cont: 0,
            exact: 0,
            summary: None,
        };
        for (f, path) in self.paths.iter().enumerate() {
            let bit = 1u8 << f;
            if self.alive & bit == 0 {
                continue;
            }
            let Some(seg) = path.get(self.depth) else {
                continue;
            };
            let exact = **seg == *key;
            if exact || seg.eq_ignore_ascii_case(key) {
                if path.len() == self.depth + 1 {
                    hit.ends |= bit;
                } else {
                    hit.cont |= bit;
                }
                if exact {
                    hit.exact |= bit;
                }
            }
        }
        if self.summary {
            hit.summary = SUMMARY_KEYS
                .iter()
                .position(|k| k.eq_ignore_ascii_case(key));
        }
        Ok(hit)
    }
}

/// Visits an object, routing members to the fields whose path goes through them.
struct MapSeed<'p, 's, 'a> {
    paths: &'p [Box<[Box<str>]>; NFIELDS],
    depth: usize,
    /// Fields whose path leads into this object.
    alive: u8,
    /// Of those, the ones matched exactly so far.
    exact: u8,
    /// Collect the error summary members of this object.
    summary: bool,
    slots: &'s mut Slots<'a>,
}

impl<'a> DeserializeSeed<'a> for MapSeed<'_, '_, 'a> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'a>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'a> Visitor<'a> for MapSeed<'_, '_, 'a> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<M: MapAccess<'a>>(self, mut map: M) -> Result<(), M::Error> {
        let MapSeed {
            paths,
            depth,
            alive,
            exact,
            summary,
            slots,
        } = self;
        while let Some(hit) = map.next_key_seed(KeySeed {
            paths,
            depth,
            alive,
            summary,
        })? {
            if hit.ends | hit.cont == 0 && hit.summary.is_none() {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            map.next_value_seed(ValueSeed {
                paths,
                depth: depth + 1,
                ends: hit.ends,
                cont: hit.cont,
                exact: exact & hit.exact,
                summary: hit.summary,
                slots: &mut *slots,
            })?;
        }
        Ok(())
    }
}

/// Visits one member value: stores it for the fields ending here, descends for the fields continuing.
struct ValueSeed<'p, 's, 'a> {
    paths: &'p [Box<[Box<str>]>; NFIELDS],
    depth: usize,
    ends: u8,
    cont: u8,
    exact: u8,
    summary: Option<usize>,
    slots: &'s mut Slots<'a>,
}

impl<'a> ValueSeed<'_, '_, 'a> {
    fn put(self, v: Val<'a>) {
        if let (Some(i), Val::Str(s)) = (self.summary, &v)
            && self.slots.summary[i].is_none()
        {
            self.slots.summary[i] = Some(s.clone());
        }
        self.slots.store(self.ends, self.exact, &v);
    }
}

impl<'a> DeserializeSeed<'a> for ValueSeed<'_, '_, 'a> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'a>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> Visitor<'a> for ValueSeed<'_, '_, 'a> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'a str) -> Result<(), E> {
        self.put(Val::Str(Cow::Borrowed(v)));
        Ok(())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.put(Val::Str(Cow::Owned(v.to_owned())));
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.put(Val::U(v));
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.put(Val::I(v));
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.put(Val::F(v));
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.put(Val::Other);
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.put(Val::Other);
        Ok(())
    }
    fn visit_seq<S: SeqAccess<'a>>(self, mut seq: S) -> Result<(), S::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.put(Val::Other);
        Ok(())
    }
    fn visit_map<M: MapAccess<'a>>(self, map: M) -> Result<(), M::Error> {
        let wants_summary = self.ends & (1 << ERROR) != 0;
        let saved = if wants_summary {
            std::mem::take(&mut self.slots.summary)
        } else {
            Default::default()
        };
        MapSeed {
            paths: self.paths,
            depth: self.depth,
            alive: self.cont,
            exact: self.exact,
            summary: wants_summary,
            slots: &mut *self.slots,
        }
        .visit_map(map)?;
        let found = if wants_summary {
            let found = std::mem::replace(&mut self.slots.summary, saved);
            found.into_iter().flatten().next()
        } else {
            None
        };
        let ends = self.ends;
        let exact = self.exact;
        if ends & (1 << ERROR) != 0 {
            self.slots.store(1 << ERROR, exact, &Val::Obj(found));
        }
        self.slots
            .store(ends & !(1 << ERROR), exact, &Val::Obj(None));
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------------------
// Times

/// Epoch seconds, or milliseconds/microseconds/nanoseconds by magnitude (seconds stop at year 5138).
pub fn epoch(v: f64) -> Option<DateTime<Utc>> {
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    let ms = if v >= 1e17 {
        v / 1e6
    } else if v >= 1e14 {
        v / 1e3
    } else if v >= 1e11 {
        v
    } else {
        v * 1e3
    };
    Utc.timestamp_millis_opt(ms.round() as i64).single()
}

/// RFC 3339 (`T` or space, `Z` or offset), a naive `YYYY-MM-DD[T ]HH:MM:SS[.f]` taken as UTC,
/// the access-log form `10/Oct/2026:13:55:36 +0000`, or a number of epoch seconds/millis.
pub fn parse_time_str(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return s.parse::<f64>().ok().and_then(epoch);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if s.len() > 10 && s.as_bytes()[10] == b' ' {
        let mut t = s.to_owned();
        t.replace_range(10..11, "T");
        if let Ok(t) = DateTime::parse_from_rfc3339(&t) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc());
        }
    }
    parse_clf_time(s.as_bytes())
}

/// `10/Oct/2026:13:55:36 +0000` (month name in any case).
pub fn parse_clf_time(b: &[u8]) -> Option<DateTime<Utc>> {
    // dd/Mon/yyyy:HH:MM:SS +zzzz
    if b.len() < 20 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let mut n = 0u32;
        for &c in b.get(r)? {
            if !c.is_ascii_digit() {
                return None;
            }
            n = n * 10 + (c - b'0') as u32;
        }
        Some(n)
    };
    let month = match [
        b[3].to_ascii_lowercase(),
        b[4].to_ascii_lowercase(),
        b[5].to_ascii_lowercase(),
    ] {
        [b'j', b'a', b'n'] => 1,
        [b'f', b'e', b'b'] => 2,
        [b'm', b'a', b'r'] => 3,
        [b'a', b'p', b'r'] => 4,
        [b'm', b'a', b'y'] => 5,
        [b'j', b'u', b'n'] => 6,
        [b'j', b'u', b'l'] => 7,
        [b'a', b'u', b'g'] => 8,
        [b's', b'e', b'p'] => 9,
        [b'o', b'c', b't'] => 10,
        [b'n', b'o', b'v'] => 11,
        [b'd', b'e', b'c'] => 12,
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(num(7..11)? as i32, month, num(0..2)?)?;
    if b[14] != b':' || b[17] != b':' {
        return None;
    }
    let t = date.and_hms_opt(num(12..14)?, num(15..17)?, num(18..20)?)?;
    let mut offset_secs = 0i64;
    let rest = &b[20..];
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    if rest.len() >= 5 && (rest[0] == b'+' || rest[0] == b'-') {
        let d =
            |i: usize| -> Option<i64> { rest[i].is_ascii_digit().then(|| (rest[i] - b'0') as i64) };
        let mins = (d(1)? * 10 + d(2)?) * 60 + d(3)? * 10 + d(4)?;
        offset_secs = if rest[0] == b'-' {
            -mins * 60
        } else {
            mins * 60
        };
    }
    Some(t.and_utc() - chrono::Duration::seconds(offset_secs))
}

// ---------------------------------------------------------------------------------------------------------
// URLs

/// The host of an absolute URL (`https://user@Host:443/path` -> `Host`), of `host/path`, or of a bare host.
/// A relative path (`/v2/token`) has none.
pub fn host_of(url: &str) -> Option<&str> {
    let url = url.trim();
    let rest = match url.find("://") {
        Some(i) => &url[i + 3..],
        None if url.starts_with('/') => return None,
        None => url,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let mut host = &rest[..end];
    if let Some(at) = host.rfind('@') {
        host = &host[at + 1..];
    }
    if let Some(stripped) = host.strip_prefix('[') {
        host = stripped.split(']').next().unwrap_or("");
    } else if let Some(colon) = host.find(':') {
        host = &host[..colon];
    }
    if host.is_empty() || host.contains(char::is_whitespace) {
        None
    } else {
        Some(host)
    }
}

fn looks_like_host(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().any(|b| b.is_ascii_alphabetic())
        && (s.contains('.') || s.eq_ignore_ascii_case("localhost"))
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
}

// ---------------------------------------------------------------------------------------------------------
// Combined access log

/// `remote ident user [time] "request" status bytes ["referer" "agent" [extra...]]`.
///
/// Mapping keys: `user` (HTTP Basic user, i.e. the client_id of a token request with Basic client auth)
/// is the client_id when not `-`; the host is the request target's host when the target is absolute
/// (forward proxies log `POST https://host/v2/token`), else the first field after the user agent that looks
/// like a host name (nginx formats that append `$host`/`"$http_host"`). No integration or account key.
pub fn parse_combined(line: &[u8]) -> Line<'_> {
    match combined_fields(line) {
        Some(Some(ev)) => Line::Event(ev),
        Some(None) => Line::OtherStatus,
        None => Line::Malformed,
    }
}

fn lossy(b: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// None: malformed; Some(None): not a 401/403.
fn combined_fields(line: &[u8]) -> Option<Option<RawEvent<'_>>> {
    let mut p = Cursor { b: line, i: 0 };
    p.skip_ws();
    p.token()?; // remote host
    p.skip_ws();
    p.token()?; // ident
    p.skip_ws();
    let user = if p.peek()? == b'"' {
        p.quoted()?
    } else {
        p.token()?
    };
    p.skip_ws();
    if p.peek()? != b'[' {
        return None;
    }
    p.i += 1;
    let close = memchr::memchr(b']', &line[p.i..])? + p.i;
    let time = &line[p.i..close];
    p.i = close + 1;
    p.skip_ws();
    if p.peek()? != b'"' {
        return None;
    }
    let request = p.quoted()?;
    p.skip_ws();
    let status = p.token()?;
    if status.len() != 3 || !status.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let status = status.iter().fold(0u16, |n, d| n * 10 + (d - b'0') as u16);
    if status != 401 && status != 403 {
        return Some(None);
    }
    // request target and error text
    let mut parts = request.split(|b| *b == b' ').filter(|s| !s.is_empty());
    let method = parts.next();
    let target = parts.next();
    let mut host = None;
    let mut error = None;
    if let (Some(method), Some(target)) = (method, target) {
        let target_s = lossy(target);
        let (h, path) = match &target_s {
            Cow::Borrowed(t) if t.contains("://") => (
                host_of(t).map(Cow::Borrowed),
                &t[t.find("://").map(|i| i + 3).unwrap_or(0)..],
            ),
            _ => (None, ""),
        };
        host = h;
        let path_part: Cow<'_, str> = if host.is_some() {
            Cow::Borrowed(path.find('/').map(|i| &path[i..]).unwrap_or("/"))
        } else {
            target_s.clone()
        };
        let path_only = path_part.split(['?', '#']).next().unwrap_or("");
        error = Some(Cow::Owned(format!("{} {}", lossy(method), path_only)));
    }
    // bytes, then optional "referer" "agent" and extra fields
    p.skip_ws();
    let _ = p.token();
    let mut quoted_seen = 0;
    while host.is_none() {
        p.skip_ws();
        let Some(c) = p.peek() else { break };
        let field = if c == b'"' {
            quoted_seen += 1;
            p.quoted()?
        } else {
            p.token()?
        };
        if quoted_seen > 2 || (c != b'"' && quoted_seen >= 2) {
            let f = lossy(field);
            let f = f.trim();
            let f = f.split(':').next().unwrap_or("");
            if looks_like_host(f) {
                host = Some(Cow::Owned(f.to_owned()));
            }
        }
    }
    let user = match user {
        b"-" | b"" => None,
        u => Some(lossy(u)),
    };
    Some(Some(RawEvent {
        at: parse_clf_time(time),
        status,
        keys: MatchKeys {
            integration: None,
            client_id: safe(user),
            account_id: None,
            host: safe(host),
        },
        error: safe_error(error),
    }))
}

// ---------------------------------------------------------------------------------------------------------
// The boundary: text of a 401/403 line made safe before it enters the model (only events pay for it).

/// Control and bidi characters as visible escapes (borrowed when there are none).
fn safe(s: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
    s.map(|s| match crate::sanitize::text(&s) {
        Cow::Borrowed(_) => s,
        Cow::Owned(o) => Cow::Owned(o),
    })
}

/// [`safe`], and every known secret value redacted (a log line may quote a request body).
fn safe_error(s: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
    s.map(|s| {
        let cleaned = crate::sanitize::clean(&s);
        if cleaned == *s {
            s
        } else {
            Cow::Owned(cleaned)
        }
    })
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn skip_ws(&mut self) {
        while self.i < self.b.len() && (self.b[self.i] == b' ' || self.b[self.i] == b'\t') {
            self.i += 1;
        }
    }
    /// Up to the next blank; None when empty.
    fn token(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        let end =
            memchr::memchr2(b' ', b'\t', &self.b[start..]).map_or(self.b.len(), |j| start + j);
        self.i = end;
        (end > start).then(|| &self.b[start..end])
    }
    /// A `"..."` field (backslash escapes skipped); returns the inside.
    fn quoted(&mut self) -> Option<&'a [u8]> {
        debug_assert_eq!(self.peek(), Some(b'"'));
        let start = self.i + 1;
        let mut j = start;
        loop {
            let k = memchr::memchr2(b'"', b'\\', &self.b[j..])? + j;
            if self.b[k] == b'\\' {
                j = k + 2;
                if j > self.b.len() {
                    return None;
                }
            } else {
                self.i = k + 1;
                return Some(&self.b[start..k]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clf_time() {
        let t = parse_clf_time(b"10/Oct/2026:13:55:36 +0200").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-10-10T11:55:36+00:00");
        assert!(parse_clf_time(b"10/Foo/2026:13:55:36 +0000").is_none());
    }

    #[test]
    fn hosts() {
        assert_eq!(
            host_of("https://u:p@Mc1.auth.x.com:443/v2/token?a=1"),
            Some("Mc1.auth.x.com")
        );
        assert_eq!(host_of("mc1.rest.x.com/asset"), Some("mc1.rest.x.com"));
        assert_eq!(host_of("/v2/token"), None);
        assert_eq!(host_of("http://[::1]:8080/x"), Some("::1"));
    }
}
