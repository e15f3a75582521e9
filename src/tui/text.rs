//! Small text helpers: display width, truncation with an ellipsis, word wrap, times.

use crate::duration::format_age;
use chrono::{DateTime, Utc};
use ratatui::text::Span;

/// Display width in terminal cells.
pub fn width(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        Span::raw(s).width()
    }
}

fn char_width(c: char) -> usize {
    if c.is_ascii() {
        1
    } else {
        let mut buf = [0u8; 4];
        Span::raw(&*c.encode_utf8(&mut buf)).width()
    }
}

/// Cut `s` to at most `max` cells, ending with `ellipsis` when cut.
pub fn truncate(s: &str, max: usize, ellipsis: &str) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    let ew = width(ellipsis);
    if max <= ew {
        return s.chars().take(max).collect();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = char_width(c);
        if w + cw > max - ew {
            break;
        }
        out.push(c);
        w += cw;
    }
    out.push_str(ellipsis);
    out
}

/// Pad or cut to exactly `w` cells (left-aligned).
pub fn fit(s: &str, w: usize, ellipsis: &str) -> String {
    let mut t = truncate(s, w, ellipsis);
    let tw = width(&t);
    if tw < w {
        t.push_str(&" ".repeat(w - tw));
    }
    t
}

/// Greedy word wrap into lines of at most `w` cells; long words are hard-split. Always at least one line.
pub fn wrap(s: &str, w: usize) -> Vec<String> {
    let w = w.max(1);
    let mut lines = Vec::new();
    let mut cur = String::new();
    let mut cur_w = 0;
    for word in s.split_whitespace() {
        let mut word = word.to_string();
        loop {
            let ww = width(&word);
            let need = if cur.is_empty() { ww } else { cur_w + 1 + ww };
            if need <= w {
                if !cur.is_empty() {
                    cur.push(' ');
                    cur_w += 1;
                }
                cur.push_str(&word);
                cur_w += ww;
                break;
            }
            if !cur.is_empty() {
                lines.push(std::mem::take(&mut cur));
                cur_w = 0;
                continue;
            }
            // A word longer than the line: split it.
            let head: String = word.chars().take(w).collect();
            let rest: String = word.chars().skip(w).collect();
            lines.push(head);
            word = rest;
            if word.is_empty() {
                break;
            }
        }
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

/// "12m" for a past time, "-" for none.
pub fn age(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match at {
        Some(t) => format_age(now - t),
        None => "-".to_string(),
    }
}

/// "in 4m" / "4m ago" / "now".
pub fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let d = at - now;
    if d.num_seconds() == 0 {
        // Reads "in 1s" or "1s ago" within the second.
        crate::duration::changes_within_a_second();
        "now".to_string()
    } else if d.num_seconds() > 0 {
        format!("in {}", crate::duration::format_countdown(d))
    } else {
        format!("{} ago", format_age(-d))
    }
}

/// "14:03:22" today, "03-11 14:03" otherwise (UTC).
pub fn clock_or_date(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if at.date_naive() == now.date_naive() {
        at.format("%H:%M:%S").to_string()
    } else {
        at.format("%m-%d %H:%M").to_string()
    }
}

/// "2026-03-11 14:03 UTC (3h ago)"
pub fn stamp(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    format!("{} ({})", crate::duration::utc_stamp(at), relative(at, now))
}

/// Expiry wording used in the list and detail: "expired 3d ago", "expires today", "5d".
pub fn days_left(days: Option<i64>) -> String {
    match days {
        None => "no expiry set".to_string(),
        Some(d) if d < 0 => format!("expired {}d ago", -d),
        Some(0) => "expires today".to_string(),
        Some(d) => format!("{d}d"),
    }
}

/// Expiry wording for sentences: "expired 3d ago", "expires today", "expires in 5d".
pub fn expires_in(days: Option<i64>) -> String {
    match days {
        Some(d) if d > 0 => format!("expires in {d}d"),
        other => days_left(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_with_ellipsis() {
        assert_eq!(truncate("invalid_client", 8, "…"), "invalid…");
        assert_eq!(truncate("ok", 8, "…"), "ok");
        assert_eq!(truncate("abcdef", 1, "…"), "a");
        assert_eq!(truncate("abcdef", 0, "…"), "");
        assert_eq!(fit("ab", 4, "~"), "ab  ");
    }

    #[test]
    fn wraps_words_and_splits_long_ones() {
        assert_eq!(wrap("aaa bbb ccc", 7), ["aaa bbb", "ccc"]);
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 4), [""]);
        assert_eq!(wrap("a b", 0), ["a", "b"]);
    }

    #[test]
    fn expiry_words() {
        assert_eq!(days_left(Some(-3)), "expired 3d ago");
        assert_eq!(days_left(Some(0)), "expires today");
        assert_eq!(days_left(Some(20)), "20d");
        assert_eq!(days_left(None), "no expiry set");
    }
}
