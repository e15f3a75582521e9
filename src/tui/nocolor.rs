//! `--no-color` / `NO_COLOR` on the wire: a writer that removes every colour from the SGR sequences passing
//! through it, resets included.
//!
//! With colour off the theme never sets a colour, but ratatui's crossterm backend still ends every frame with
//! `ESC[39m ESC[49m ESC[59m` (default foreground, background, underline colour). The console promises no colour
//! sequences at all, so its terminal writer strips them: foreground/background/underline colours (30-39, 40-49,
//! 58, 59, 90-97, 100-107, and the 38/48/58 extended forms) go; bold, reverse, underline and the like stay. An SGR
//! left with nothing is dropped whole. Sequences may arrive split over several writes (crossterm formats them
//! piecewise), so the writer keeps an unfinished escape sequence until its final byte.

use std::io::{self, Write};

/// Longest escape sequence held back; anything longer is passed on as it is.
const MAX_PENDING: usize = 64;
const ESC: u8 = 0x1b;

/// Wraps a writer and removes colour from the SGR sequences written through it.
#[derive(Debug)]
pub struct NoColor<W: Write> {
    inner: W,
    /// An escape sequence seen in part (starting with ESC).
    pending: Vec<u8>,
}

impl<W: Write> NoColor<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            pending: Vec::new(),
        }
    }

    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    pub fn into_inner(self) -> W {
        self.inner
    }

    /// Feed bytes; complete output is appended to `out`.
    fn feed(&mut self, buf: &[u8], out: &mut Vec<u8>) {
        for &b in buf {
            if self.pending.is_empty() {
                if b == ESC {
                    self.pending.push(b);
                } else {
                    out.push(b);
                }
                continue;
            }
            self.pending.push(b);
            if self.pending.len() == 2 {
                if b != b'[' {
                    // Not a CSI sequence: nothing to filter.
                    out.append(&mut self.pending);
                }
                continue;
            }
            if (0x40..=0x7e).contains(&b) {
                let seq = std::mem::take(&mut self.pending);
                if b == b'm' {
                    if let Some(kept) = strip_sgr(&seq[2..seq.len() - 1]) {
                        out.extend_from_slice(b"\x1b[");
                        out.extend_from_slice(&kept);
                        out.push(b'm');
                    }
                } else {
                    out.extend_from_slice(&seq);
                }
            } else if self.pending.len() >= MAX_PENDING {
                out.append(&mut self.pending);
            }
        }
    }
}

/// The parameters of an SGR sequence without its colours; `None` when nothing is left to send.
fn strip_sgr(params: &[u8]) -> Option<Vec<u8>> {
    if params.is_empty() {
        // ESC[m: reset all attributes (not a colour).
        return Some(Vec::new());
    }
    let parts: Vec<&[u8]> = params.split(|&c| c == b';').collect();
    let mut kept: Vec<&[u8]> = Vec::new();
    let mut i = 0;
    while i < parts.len() {
        let p = parts[i];
        i += 1;
        // Sub-parameter form (38:5:196, 4:3) stays one part.
        let head = p.split(|&c| c == b':').next().unwrap_or_default();
        let n: Option<u16> = std::str::from_utf8(head).ok().and_then(|s| s.parse().ok());
        match n {
            Some(38 | 48 | 58) if !p.contains(&b':') => {
                // ESC[38;5;n or ESC[38;2;r;g;b
                let skip = match parts.get(i).copied() {
                    Some(b"5") => 2,
                    Some(b"2") => 4,
                    _ => 0,
                };
                i += skip;
            }
            Some(30..=39 | 40..=49 | 58 | 59 | 90..=97 | 100..=107) => {}
            _ => kept.push(p),
        }
    }
    if kept.is_empty() {
        None
    } else {
        Some(kept.join(&b';'))
    }
}

impl<W: Write> Write for NoColor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut out = Vec::with_capacity(buf.len());
        self.feed(buf, &mut out);
        self.inner.write_all(&out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Does this output contain a colour SGR (any foreground, background or underline colour, resets included)?
/// For tests and checks on raw terminal bytes.
pub fn has_colour_sequence(bytes: &[u8]) -> bool {
    let mut f = NoColor::new(Vec::new());
    let mut out = Vec::new();
    f.feed(bytes, &mut out);
    out.append(&mut f.pending);
    out != bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(input: &[u8]) -> Vec<u8> {
        let mut w = NoColor::new(Vec::new());
        w.write_all(input).unwrap();
        w.into_inner()
    }

    #[test]
    fn colours_and_their_resets_go_attributes_stay() {
        assert_eq!(strip(b"a\x1b[39m\x1b[49m\x1b[59m\x1b[0mb"), b"a\x1b[0mb");
        assert_eq!(strip(b"\x1b[1;31mX"), b"\x1b[1mX");
        assert_eq!(strip(b"\x1b[38;5;196;1mX"), b"\x1b[1mX");
        assert_eq!(strip(b"\x1b[48;2;1;2;3mX"), b"X");
        assert_eq!(strip(b"\x1b[38:5:196mX\x1b[7m"), b"X\x1b[7m");
        assert_eq!(strip(b"\x1b[m\x1b[2J\x1b[5;7H"), b"\x1b[m\x1b[2J\x1b[5;7H");
        assert_eq!(strip("✔ ok".as_bytes()), "✔ ok".as_bytes());
    }

    #[test]
    fn a_sequence_split_over_writes_is_still_filtered() {
        let mut w = NoColor::new(Vec::new());
        for part in [&b"x\x1b"[..], b"[", b"39", b"m", b"\x1b[4", b"9m", b"y"] {
            w.write_all(part).unwrap();
        }
        assert_eq!(w.into_inner(), b"xy");
    }

    #[test]
    fn detects_colour_in_raw_bytes() {
        assert!(has_colour_sequence(b"\x1b[39m"));
        assert!(has_colour_sequence(b"a\x1b[1;32mb"));
        assert!(!has_colour_sequence(b"a\x1b[1mb\x1b[0m\x1b[?2026h"));
    }
}
