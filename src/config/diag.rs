//! Configuration errors: every problem found in one pass, each at file:line:column with a hint how to fix it.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem at one place in the file. Lines and columns are 1-based (columns count characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub help: Option<String>,
    /// The source line, only for lines that cannot hold a secret (never for syntax errors, unknown keys or any
    /// line mentioning a secret, token, password or URL).
    pub excerpt: Option<String>,
}

/// Loading a configuration failed.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file was read but is invalid; every problem found, in file order.
    Invalid {
        path: PathBuf,
        diagnostics: Vec<Diagnostic>,
    },
}

impl ConfigError {
    pub fn path(&self) -> &Path {
        match self {
            Self::Io { path, .. } | Self::Invalid { path, .. } => path,
        }
    }

    /// The problems found (empty for an I/O error).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            Self::Io { .. } => &[],
            Self::Invalid { diagnostics, .. } => diagnostics,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => write!(
                f,
                "cannot read configuration file {}: {}",
                path.display(),
                io_kind_text(source.kind())
            ),
            Self::Invalid { path, diagnostics } => {
                for (i, d) in diagnostics.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(
                        f,
                        "{}:{}:{}: {}",
                        path.display(),
                        d.line,
                        d.column,
                        d.message
                    )?;
                    if let Some(excerpt) = &d.excerpt {
                        let gutter = d.line.to_string();
                        write!(f, "\n {gutter} | {excerpt}")?;
                        let pad: String = excerpt
                            .chars()
                            .take(d.column.saturating_sub(1))
                            .map(|c| if c == '\t' { '\t' } else { ' ' })
                            .collect();
                        write!(f, "\n {} | {pad}^", " ".repeat(gutter.len()))?;
                    }
                    if let Some(help) = &d.help {
                        write!(f, "\n  help: {help}")?;
                    }
                }
                if diagnostics.len() > 1 {
                    write!(f, "\n{} problems in {}", diagnostics.len(), path.display())?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Invalid { .. } => None,
        }
    }
}

pub(crate) fn io_kind_text(kind: std::io::ErrorKind) -> String {
    match kind {
        std::io::ErrorKind::NotFound => "not found".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        other => other.to_string(),
    }
}

/// Maps byte offsets to 1-based line/column and decides whether a line may be shown.
pub(crate) struct Source<'a> {
    text: &'a str,
    /// Byte offset where each line starts (computed once, at the first position asked for: a position is a
    /// binary search, not a count of every newline before it, which made loading 10,000 integrations quadratic).
    line_starts: std::cell::OnceCell<Vec<usize>>,
}

const UNSAFE_WORDS: [&str; 8] = [
    "secret", "token", "password", "passwd", "auth", "key", "://", "@",
];

impl<'a> Source<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Self {
            text,
            line_starts: std::cell::OnceCell::new(),
        }
    }

    pub(crate) fn text(&self) -> &'a str {
        self.text
    }

    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line_starts = self.line_starts.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        });
        // The last line starting at or before the offset.
        let line = line_starts.partition_point(|s| *s <= offset);
        let line_start = line_starts[line - 1];
        let column = self.text[line_start..offset].chars().count() + 1;
        (line, column)
    }

    /// The line's text when it cannot contain a secret; None otherwise.
    pub(crate) fn safe_excerpt(&self, line: usize) -> Option<String> {
        let text = self.text.lines().nth(line.checked_sub(1)?)?;
        let lower = text.to_lowercase();
        if UNSAFE_WORDS.iter().any(|w| lower.contains(w))
            || text.contains("\"\"\"")
            || text.contains("'''")
            || text.chars().count() > 160
        {
            return None;
        }
        // A bidi control or other unsafe character typed raw into the file is shown as a visible escape.
        Some(crate::sanitize::owned_str(text.trim_end()))
    }
}

#[cfg(test)]
mod tests {
    use super::Source;

    /// Line/column the slow way: count every newline before the offset.
    fn counted(text: &str, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (
            before.matches('\n').count() + 1,
            before[line_start..].chars().count() + 1,
        )
    }

    #[test]
    fn positions_from_the_line_table_match_counting_newlines() {
        let texts = [
            "",
            "a",
            "\n",
            "name = \"x\"\n[[integration]]\r\nname = \"é–ü\"\n\n  id = 1",
            "trailing\n",
        ];
        for text in texts {
            let source = Source::new(text);
            for offset in 0..=text.len() + 2 {
                assert_eq!(
                    source.position(offset),
                    counted(text, offset),
                    "{text:?} at {offset}"
                );
            }
        }
    }
}
