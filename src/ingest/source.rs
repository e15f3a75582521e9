//! Which `[[log_source]]` a file belongs to, and a file's format when no source names it.

use crate::config::{LogFormat, LogSourceConfig};
use std::io::Read;
use std::path::Path;

/// Guess a file's format from its first non-blank line: `{` starts JSON lines, anything else is an access log.
/// An empty file is `jsonl`. Reads at most 64 KiB.
pub fn guess_format(path: &Path) -> std::io::Result<LogFormat> {
    let mut buf = Vec::with_capacity(8192);
    std::fs::File::open(path)?
        .take(64 * 1024)
        .read_to_end(&mut buf)?;
    Ok(guess_format_bytes(&buf))
}

/// [`guess_format`] on bytes already read.
pub fn guess_format_bytes(head: &[u8]) -> LogFormat {
    match head.iter().find(|b| !b.is_ascii_whitespace()) {
        None | Some(b'{') => LogFormat::Jsonl,
        Some(_) => LogFormat::Combined,
    }
}

/// The log source `authwatch scan FILE` uses: the first configured source whose glob matches the file,
/// else a source named after the file with default field names and the format from [`guess_format`].
pub fn source_for_file(
    file: &Path,
    sources: &[LogSourceConfig],
) -> std::io::Result<LogSourceConfig> {
    if let Some(s) = sources.iter().find(|s| s.matches(file)) {
        return Ok(s.clone());
    }
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "scan".into());
    Ok(LogSourceConfig::new(
        name,
        file.to_string_lossy(),
        guess_format(file)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guesses_format() {
        assert_eq!(guess_format_bytes(b"\n  {\"a\":1}\n"), LogFormat::Jsonl);
        assert_eq!(guess_format_bytes(b""), LogFormat::Jsonl);
        assert_eq!(
            guess_format_bytes(
                b"127.0.0.1 - - [10/Oct/2026:13:55:36 +0000] \"GET / HTTP/1.1\" 200 1"
            ),
            LogFormat::Combined
        );
    }
}
