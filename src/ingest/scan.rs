//! `authwatch scan FILE...`: a one-shot count of 401/403 lines per integration.
//!
//! Fast path: files are read in 4 MiB chunks; lines are counted and shape-checked with `memchr`, and only
//! the lines around a `401`/`403` byte match (found with `memmem` over the whole chunk) are parsed. The
//! result is exactly what [`LineParser::parse`] says line by line.

use super::IngestError;
use super::matcher::Matcher;
use super::parse::{Line, LineParser, MAX_LINE, Shape, strip_eol};
use crate::config::LogSourceConfig;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};

const CHUNK: usize = 4 << 20;

pub use crate::model::StatusCounts;

/// One row of [`ScanReport::integrations`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrationCounts {
    pub name: String,
    #[serde(rename = "401")]
    pub unauthorized: u64,
    #[serde(rename = "403")]
    pub forbidden: u64,
}

/// The result of a scan. JSON:
/// `{"lines":120000,"malformed":3,"unmatched":{"401":2,"403":0},"integrations":[{"name":"crm-sync","401":17,"403":4}]}`.
/// `integrations` lists every configured integration in config order, zeros included.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanReport {
    /// Lines read (a last line without `\n` counts, like `grep -c`).
    pub lines: u64,
    pub malformed: u64,
    pub unmatched: StatusCounts,
    pub integrations: Vec<IntegrationCounts>,
}

impl ScanReport {
    /// An empty report with a zero row per integration of the matcher.
    pub fn new(matcher: &Matcher) -> Self {
        Self {
            integrations: matcher
                .names()
                .iter()
                .map(|n| IntegrationCounts {
                    name: n.clone(),
                    unauthorized: 0,
                    forbidden: 0,
                })
                .collect(),
            ..Self::default()
        }
    }

    /// All 401/403 lines, matched or not.
    pub fn total(&self) -> StatusCounts {
        let mut t = self.unmatched;
        for i in &self.integrations {
            t.unauthorized += i.unauthorized;
            t.forbidden += i.forbidden;
        }
        t
    }

    /// Add another report's counts (rows by name; new names are appended).
    pub fn merge(&mut self, other: &ScanReport) {
        self.lines += other.lines;
        self.malformed += other.malformed;
        self.unmatched.unauthorized += other.unmatched.unauthorized;
        self.unmatched.forbidden += other.unmatched.forbidden;
        for row in &other.integrations {
            match self.integrations.iter_mut().find(|r| r.name == row.name) {
                Some(r) => {
                    r.unauthorized += row.unauthorized;
                    r.forbidden += row.forbidden;
                }
                None => self.integrations.push(row.clone()),
            }
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("plain data serializes")
    }

    /// A table for terminals:
    /// ```text
    /// INTEGRATION      401   403
    /// crm-sync          17     4
    /// (unmatched)        2     0
    /// 120000 lines, 23 auth failures, 3 malformed lines skipped
    /// ```
    pub fn to_text(&self) -> String {
        use crate::sanitize::{column_width, fit};
        // Terminal cells, not bytes; long names cut with `…`.
        let width = column_width(self.integrations.iter().map(|r| r.name.as_str()), 11, 40);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}  {:>8}  {:>8}",
            fit("INTEGRATION", width),
            "401",
            "403"
        );
        for r in &self.integrations {
            let _ = writeln!(
                out,
                "{}  {:>8}  {:>8}",
                fit(&r.name, width),
                r.unauthorized,
                r.forbidden
            );
        }
        let _ = writeln!(
            out,
            "{}  {:>8}  {:>8}",
            fit("(unmatched)", width),
            self.unmatched.unauthorized,
            self.unmatched.forbidden
        );
        let total = self.total().total();
        let _ = write!(
            out,
            "{} line{}, {} auth failure{} (401/403)",
            self.lines,
            plural(self.lines),
            total,
            plural(total)
        );
        if self.malformed > 0 {
            let _ = write!(
                out,
                ", {} malformed line{} skipped",
                self.malformed,
                plural(self.malformed)
            );
        }
        out.push('\n');
        out
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Count 401/403 lines per integration in `paths`, all read as `source` says.
/// `-` reads standard input.
pub fn scan_files(
    paths: &[PathBuf],
    source: &LogSourceConfig,
    matcher: &Matcher,
) -> Result<ScanReport, IngestError> {
    let parser = LineParser::new(source);
    let mut scanner = Scanner::new(&parser, matcher);
    for path in paths {
        if path == Path::new("-") {
            scanner.read_all(std::io::stdin().lock(), path)?;
        } else {
            let file = std::fs::File::open(path).map_err(|e| IngestError::io(path, e))?;
            scanner.read_all(file, path)?;
        }
    }
    Ok(scanner.report)
}

/// [`scan_files`] on any reader.
pub fn scan_reader<R: Read>(
    reader: R,
    source: &LogSourceConfig,
    matcher: &Matcher,
) -> Result<ScanReport, IngestError> {
    let parser = LineParser::new(source);
    let mut scanner = Scanner::new(&parser, matcher);
    scanner.read_all(reader, Path::new("-"))?;
    Ok(scanner.report)
}

/// Count one in-memory buffer of lines (the last may lack its `\n`).
pub fn scan_bytes(data: &[u8], source: &LogSourceConfig, matcher: &Matcher) -> ScanReport {
    let parser = LineParser::new(source);
    let mut scanner = Scanner::new(&parser, matcher);
    scanner.chunk(data);
    scanner.report
}

struct Scanner<'p> {
    parser: &'p LineParser,
    matcher: &'p Matcher,
    report: ScanReport,
    buf: Vec<u8>,
    /// Inside a line longer than the buffer: its bytes are dropped as they come; counted when it ends.
    skipping: bool,
}

impl<'p> Scanner<'p> {
    fn new(parser: &'p LineParser, matcher: &'p Matcher) -> Self {
        Self {
            parser,
            matcher,
            report: ScanReport::new(matcher),
            buf: Vec::new(),
            skipping: false,
        }
    }

    fn read_all<R: Read>(&mut self, mut r: R, path: &Path) -> Result<(), IngestError> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(CHUNK, 0);
        let mut filled = 0;
        loop {
            if filled == buf.len() {
                // A whole buffer without a newline: one line far over MAX_LINE. Drop its bytes (memory stays at
                // one buffer) and count it once its end comes, as the follower does.
                self.skipping = true;
                filled = 0;
            }
            let n = match r.read(&mut buf[filled..]) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(IngestError::io(path, e)),
            };
            if n == 0 {
                let mut start = 0;
                if self.skipping {
                    start = memchr::memchr(b'\n', &buf[..filled]).map_or(filled, |i| i + 1);
                    self.skipped_line();
                }
                if start < filled {
                    self.chunk(&buf[start..filled]);
                }
                break;
            }
            filled += n;
            if filled < buf.len() / 2 {
                continue; // fill at least half the buffer before a pass
            }
            let Some(last_nl) = memchr::memrchr(b'\n', &buf[..filled]) else {
                continue;
            };
            let mut start = 0;
            if self.skipping {
                start = memchr::memchr(b'\n', &buf[..filled]).map_or(0, |i| i + 1);
                self.skipped_line();
            }
            if start <= last_nl {
                self.chunk(&buf[start..=last_nl]);
            }
            buf.copy_within(last_nl + 1..filled, 0);
            filled -= last_nl + 1;
        }
        self.buf = buf;
        Ok(())
    }

    /// The end of a line that was too long to hold: one line, malformed.
    fn skipped_line(&mut self) {
        self.skipping = false;
        self.report.lines += 1;
        self.report.malformed += 1;
    }

    /// Lines of `data`: all end in `\n` except possibly the last.
    fn chunk(&mut self, data: &[u8]) {
        let parser = self.parser;
        // Pass 1: count lines, shape-check every line.
        let mut start = 0;
        let mut lines = 0u64;
        let mut malformed = 0u64;
        let bad =
            |line: &[u8]| line.len() >= MAX_LINE || parser.shape(strip_eol(line)) == Shape::Bad;
        for nl in memchr::memchr_iter(b'\n', data) {
            lines += 1;
            if bad(&data[start..nl]) {
                malformed += 1;
            }
            start = nl + 1;
        }
        if start < data.len() {
            lines += 1;
            if bad(&data[start..]) {
                malformed += 1;
            }
        }
        self.report.lines += lines;
        self.report.malformed += malformed;

        // Pass 2: parse only the lines holding a 401/403 byte sequence.
        let (f401, f403) = parser.finders();
        let mut a = f401.find_iter(data).peekable();
        let mut b = f403.find_iter(data).peekable();
        let mut next_line = 0usize;
        loop {
            let pos = match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some(&x), None) => {
                    a.next();
                    x
                }
                (None, Some(&y)) => {
                    b.next();
                    y
                }
                (Some(&x), Some(&y)) => {
                    if x <= y {
                        a.next();
                        x
                    } else {
                        b.next();
                        y
                    }
                }
            };
            if pos < next_line {
                continue;
            }
            let ls = memchr::memrchr(b'\n', &data[..pos]).map_or(0, |i| i + 1);
            let le = memchr::memchr(b'\n', &data[pos..]).map_or(data.len(), |i| pos + i);
            next_line = le + 1;
            if le - ls >= MAX_LINE {
                continue; // counted as malformed in pass 1
            }
            let line = strip_eol(&data[ls..le]);
            if parser.shape(line) != Shape::Ok {
                continue; // already counted (or blank)
            }
            match parser.parse_candidate(line) {
                Line::Event(ev) => match self.matcher.resolve(&ev.keys) {
                    Some(i) => {
                        let row = &mut self.report.integrations[i];
                        if ev.status == 401 {
                            row.unauthorized += 1;
                        } else {
                            row.forbidden += 1;
                        }
                    }
                    None => self.report.unmatched.add(ev.status),
                },
                Line::OtherStatus => {}
                Line::Malformed => self.report.malformed += 1,
            }
        }
    }
}
