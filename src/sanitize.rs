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

/// Escape text for Slack's mrkdwn: `&`, `<` and `>` (so `<!channel>` and `<url|text>` from outside are inert).
pub fn slack(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
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
    fn secrets_are_redacted_and_slack_markup_escaped() {
        assert_eq!(
            redact("bad secret S3cr3t-value given", &["S3cr3t-value", "", "ab"]),
            "bad secret [redacted] given"
        );
        assert_eq!(
            slack("<!channel> see <https://x|here> & more"),
            "&lt;!channel&gt; see &lt;https://x|here&gt; &amp; more"
        );
    }
}
