//! Outside text made safe where it enters the model: control characters and bidi overrides become visible
//! escapes (`\x1b`, `\u{202e}`), so no terminal, log, report, audit trail or notification ever carries them raw;
//! known secret values become `[redacted]`.

use std::borrow::Cow;

/// Characters that reorder text on screen (Trojan Source): shown, never obeyed.
fn is_bidi(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// Would `c` be unsafe to print raw? C0/C1 controls, DEL, bidi controls, line/paragraph separators.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || is_bidi(c) || matches!(c, '\u{2028}' | '\u{2029}')
}

/// One line of outside text, safe to print: every unsafe character replaced by a visible escape.
pub fn text(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !is_unsafe(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                _ => out.push_str(&format!("\\x{:02x}", c as u32)),
            }
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// Owned convenience for `Option<String>` fields.
pub fn owned(s: String) -> String {
    match text(&s) {
        Cow::Borrowed(_) => s,
        Cow::Owned(o) => o,
    }
}

/// `text` as an owned String, from a borrowed str.
pub fn owned_str(s: &str) -> String {
    text(s).into_owned()
}

/// Replace every occurrence of a known secret value by `[redacted]` (values shorter than 4 characters are
/// skipped: they would redact ordinary words).
pub fn redact(s: &str, secrets: &[&str]) -> String {
    let mut out = s.to_string();
    for secret in secrets.iter().filter(|v| v.len() >= 4) {
        if out.contains(secret) {
            out = out.replace(secret, "[redacted]");
        }
    }
    out
}

/// Values shorter than this are never redacted: they would redact ordinary words ("token", "secret").
pub const MIN_REDACTED_LEN: usize = 8;

/// Most values the process-wide set keeps (oldest forgotten first): rotations add values, nothing removes them.
const MAX_KNOWN: usize = 4096;

/// The known-secret values of this process: every value a secret reference resolves to (client secrets, agent
/// tokens, webhook URLs, routing keys; `secrets::SecretRef::resolve` adds them), and any the caller adds. Outside
/// strings pass through [`Redactor::clean`] where they enter the model, so an endpoint echoing a secret in its
/// `error_description`, a command printing one on stderr or a log line carrying one stores and shows `[redacted]`.
///
/// One set per process rather than per engine: every resolve path (probes, notifiers, agent tokens, rotation)
/// feeds it without plumbing, and two engines in one process (tests) only redact more, never less.
#[derive(Clone, Copy)]
pub struct Redactor(&'static std::sync::RwLock<Vec<zeroize::Zeroizing<String>>>);

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} values)", self.len())
    }
}

impl Redactor {
    /// The process's set.
    pub fn global() -> Self {
        static KNOWN: std::sync::RwLock<Vec<zeroize::Zeroizing<String>>> =
            std::sync::RwLock::new(Vec::new());
        Redactor(&KNOWN)
    }

    /// Remember a secret value (trimmed; shorter than [`MIN_REDACTED_LEN`] is ignored). Its percent-encoded form
    /// is remembered too, as form bodies and URLs carry it that way.
    pub fn add(&self, value: &str) {
        let value = value.trim();
        if value.chars().count() < MIN_REDACTED_LEN {
            return;
        }
        let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
        let mut known = self.0.write().unwrap_or_else(|p| p.into_inner());
        for v in [value, encoded.as_str()] {
            if !known.iter().any(|k| k.as_str() == v) {
                if known.len() >= MAX_KNOWN {
                    known.remove(0);
                }
                known.push(zeroize::Zeroizing::new(v.to_string()));
            }
        }
    }

    /// How many values are known.
    pub fn len(&self) -> usize {
        self.0.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every known secret value in `s` replaced by `[redacted]`.
    pub fn redact<'a>(&self, s: &'a str) -> Cow<'a, str> {
        if s.len() < MIN_REDACTED_LEN {
            return Cow::Borrowed(s);
        }
        let known = self.0.read().unwrap_or_else(|p| p.into_inner());
        // Longest first, so a secret containing another is redacted whole (the set is kept oldest first).
        let mut by_length: Vec<&str> = known.iter().map(|k| k.as_str()).collect();
        by_length.sort_by_key(|k| std::cmp::Reverse(k.len()));
        let mut out = Cow::Borrowed(s);
        for secret in by_length {
            if out.contains(secret) {
                out = Cow::Owned(out.replace(secret, "[redacted]"));
            }
        }
        out
    }

    /// The boundary for one outside string: known secrets redacted, then unsafe characters escaped.
    pub fn clean(&self, s: &str) -> String {
        let redacted = self.redact(s);
        let escaped = text(&redacted);
        // A secret that itself holds an escaped character would only match after escaping.
        match self.redact(&escaped) {
            Cow::Borrowed(b) => b.to_string(),
            Cow::Owned(o) => o,
        }
    }
}

/// [`Redactor::clean`] with the process's set: the one call for a string from outside.
pub fn clean(s: &str) -> String {
    Redactor::global().clean(s)
}

/// [`clean`] for an optional field.
pub fn clean_opt(s: Option<String>) -> Option<String> {
    s.map(|s| clean(&s))
}

/// Terminal columns `s` takes (CJK and most emoji take two).
pub fn display_width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

/// `s` in exactly `width` terminal columns: cut with `…` when wider, padded with spaces when narrower. Columns of
/// text tables use it instead of `{:<w$}`, which counts bytes (misaligning CJK and emoji) and panics beyond
/// 65,535 ("Formatting argument out of range").
pub fn fit(s: &str, width: usize) -> String {
    let mut out = String::with_capacity(width.min(s.len()) + 4);
    let mut used = 0;
    if display_width(s) <= width {
        out.push_str(s);
        used = display_width(s);
    } else if width > 0 {
        for c in s.chars() {
            let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
            if used + w > width - 1 {
                break;
            }
            out.push(c);
            used += w;
        }
        out.push('…');
        used += 1;
    }
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(used)));
    out
}

/// The width of a text-table column: the widest value, at least `min` (the heading), at most `max`.
pub fn column_width<'a>(values: impl Iterator<Item = &'a str>, min: usize, max: usize) -> usize {
    values
        .map(display_width)
        .max()
        .unwrap_or(0)
        .clamp(min, max.max(min))
}

/// Escape text for Slack's mrkdwn: `&`, `<` and `>` (so `<!channel>` and `<url|text>` from outside are inert).
pub fn slack(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Make outside text inert in a Teams Adaptive Card TextBlock, which renders a Markdown subset: a link written as
/// `[text](url)` is broken apart (`[text] (url)`), so an endpoint cannot put a disguised link into the card.
pub fn teams(s: &str) -> String {
    s.replace("](", "] (")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_become_visible_escapes() {
        assert_eq!(
            text("\u{1b}[2J\u{1b}[31mPWNED\u{1b}]0;title\u{7}"),
            "\\x1b[2J\\x1b[31mPWNED\\x1b]0;title\\x07"
        );
        assert_eq!(text("a\nb\r\0"), "a\\nb\\r\\x00");
        assert_eq!(text("evil\u{202e}cod.exe"), "evil\\u{202e}cod.exe");
        assert_eq!(text("\u{9b}31m"), "\\u{9b}31m");
        assert!(matches!(
            text("invalid_client — ok ✓ 日本"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn the_known_set_redacts_plain_and_form_encoded_values_and_ignores_short_ones() {
        let r = Redactor::global();
        r.add("  unit-test-secret/with+plus=  \n");
        r.add("short");
        assert_eq!(
            r.clean(
                "echo unit-test-secret/with+plus= and unit-test-secret%2Fwith%2Bplus%3D\u{1b}[2J"
            ),
            "echo [redacted] and [redacted]\\x1b[2J"
        );
        assert_eq!(r.clean("a short word"), "a short word");
    }

    #[test]
    fn the_known_set_forgets_the_oldest_values_first_and_redacts_the_longest_first() {
        let r = Redactor(Box::leak(Box::new(std::sync::RwLock::new(Vec::new()))));
        r.add("abcdefgh-inner");
        r.add("xx-abcdefgh-inner-xx");
        assert_eq!(r.redact("a xx-abcdefgh-inner-xx b"), "a [redacted] b");
        for i in 0..MAX_KNOWN {
            r.add(&format!("filler-value-{i:05}"));
        }
        assert_eq!(r.len(), MAX_KNOWN);
        assert_eq!(r.redact("abcdefgh-inner"), "abcdefgh-inner");
        assert_eq!(r.redact("filler-value-04095"), "[redacted]");
    }

    #[test]
    fn fit_pads_and_cuts_by_display_width() {
        assert_eq!(fit("abc", 5), "abc  ");
        assert_eq!(fit("日本語", 7), "日本語 ");
        assert_eq!(fit("日本語", 4), "日… ");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(display_width(&fit(&"x".repeat(65_536), 40)), 40);
        assert_eq!(fit("abc", 0), "");
    }

    #[test]
    fn secrets_are_redacted_and_slack_markup_escaped() {
        assert_eq!(
            redact("bad secret S3cr3t-value given", &["S3cr3t-value", "", "ab"]),
            "bad secret [redacted] given"
        );
        assert_eq!(
            slack("<!channel> see <https://x|here> & more"),
            "&lt;!channel&gt; see &lt;https://x|here&gt; &amp; more"
        );
        assert_eq!(teams("see [here](https://x)"), "see [here] (https://x)");
    }
}
