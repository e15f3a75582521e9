//! Human durations used across config and scenarios: "250ms", "30s", "5m", "2h", "14d"; the one
//! std -> chrono conversion and the one timestamp format.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A duration written the way operators write them in TOML ("30s", "5m", "14d").
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub const fn secs(s: u64) -> Self {
        Self(Duration::from_secs(s))
    }
    pub const fn millis(ms: u64) -> Self {
        Self(Duration::from_millis(ms))
    }
    pub fn as_std(self) -> Duration {
        self.0
    }
    pub fn as_chrono(self) -> chrono::Duration {
        chrono::Duration::from_std(self.0).unwrap_or(chrono::Duration::MAX)
    }
}

impl From<HumanDuration> for Duration {
    fn from(d: HumanDuration) -> Self {
        d.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {input:?}: {why}; write a number and a unit, e.g. \"250ms\", \"30s\", \"5m\", \"2h\", \"14d\""
)]
pub struct DurationError {
    input: String,
    why: &'static str,
}

pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let err = |why| DurationError {
        input: input.to_string(),
        why,
    };
    let s = input.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| err("missing unit"))?;
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return Err(err("missing number"));
    }
    let n: u64 = digits.parse().map_err(|_| err("number too large"))?;
    let unit_ms: u64 = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(err("unknown unit (use ms, s, m, h or d)")),
    };
    n.checked_mul(unit_ms)
        .map(Duration::from_millis)
        .ok_or_else(|| err("number too large"))
}

/// The longest span [`to_chrono`] gives: 100,000 years, so `now ± span` stays inside chrono's date range
/// (±262,000 years) and never panics, whatever a configuration asks for.
pub const CHRONO_SPAN_MAX: chrono::Duration = chrono::Duration::days(36_525_000);

/// A `std` duration as a chrono one, saturating at [`CHRONO_SPAN_MAX`].
pub fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d)
        .unwrap_or(CHRONO_SPAN_MAX)
        .min(CHRONO_SPAN_MAX)
}

/// The one way a moment is written out in full: "2026-03-11 14:03:22 UTC".
pub fn utc_stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Shortest exact rendering: 300s -> "5m", 90s -> "90s", 1500ms -> "1500ms".
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis() as u64;
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// Compact age for tables: "4s", "12m", "3h", "5d", for a time in the past that keeps growing.
pub fn format_age(d: chrono::Duration) -> String {
    let (text, unit) = age_text(d);
    note_age_change(d, unit, Direction::Growing);
    text
}

/// [`format_age`] for the time left until a moment ("in 4m"), which shrinks as the clock moves.
pub fn format_countdown(left: chrono::Duration) -> String {
    let (text, unit) = age_text(left);
    note_age_change(left, unit, Direction::Shrinking);
    text
}

/// [`format_age`] for a span between two fixed moments ("lasted 3h"), which the clock does not move.
pub fn format_span(d: chrono::Duration) -> String {
    age_text(d).0
}

/// The text and the step (seconds) it moves in.
fn age_text(d: chrono::Duration) -> (String, i64) {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => (format!("{s}s"), 1),
        60..3_600 => (format!("{}m", s / 60), 60),
        3_600..86_400 => (format!("{}h", s / 3_600), 3_600),
        _ => (format!("{}d", s / 86_400), 86_400),
    }
}

#[derive(Clone, Copy)]
enum Direction {
    Growing,
    Shrinking,
}

thread_local! {
    /// Inside [`track_age_changes`]: how soon the soonest age formatted so far reads differently.
    static AGE_CHANGE: std::cell::Cell<Option<chrono::Duration>> = const { std::cell::Cell::new(None) };
}

/// An age `d` shown in steps of `unit_secs` next reads differently when it reaches the next step up
/// (growing) or falls below the current one (shrinking).
fn note_age_change(d: chrono::Duration, unit_secs: i64, direction: Direction) {
    AGE_CHANGE.with(|slot| {
        if let Some(soonest) = slot.get() {
            let unit_ms = unit_secs.saturating_mul(1_000);
            let ms = d.num_milliseconds().max(0);
            let left = match direction {
                // A negative age reads "0s" until it turns positive: checked within the second, like a small one.
                _ if d < chrono::Duration::zero() => 1_000,
                Direction::Growing => unit_ms - ms % unit_ms,
                Direction::Shrinking => ms % unit_ms + 1,
            };
            slot.set(Some(soonest.min(chrono::Duration::milliseconds(left))));
        }
    });
}

/// Text a render shows that is not an age but reads differently within the second.
pub fn changes_within_a_second() {
    note_age_change(chrono::Duration::zero(), 1, Direction::Growing);
}

/// Runs `f` (a render) and says how long every age it formatted keeps reading the same: a screen whose only
/// moving parts are ages need not be drawn again before then. `None` when `f` formatted no age.
pub fn track_age_changes<R>(f: impl FnOnce() -> R) -> (R, Option<chrono::Duration>) {
    let never = chrono::Duration::MAX;
    let outer = AGE_CHANGE.with(|slot| slot.replace(Some(never)));
    let out = f();
    // A tracked call inside another one also counts for the outer one.
    let soonest = AGE_CHANGE.with(|slot| {
        let inner = slot.get();
        slot.set(outer.zip(inner).map(|(o, i)| o.min(i)));
        inner
    });
    (out, soonest.filter(|d| *d != never))
}

impl fmt::Debug for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", format_duration(self.0))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", format_duration(self.0))
    }
}

impl std::str::FromStr for HumanDuration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s).map(HumanDuration)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(HumanDuration)
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tracked_ages_say_when_they_next_read_differently() {
        let ms = chrono::Duration::milliseconds;
        let next = |ages: &[i64]| {
            super::track_age_changes(|| {
                for &a in ages {
                    super::format_age(ms(a));
                }
            })
            .1
        };
        assert_eq!(next(&[]), None);
        // 59.7 s reads "59s" and turns "1m" 0.3 s later; 61 s reads "1m" until 120 s.
        assert_eq!(next(&[59_700]), Some(ms(300)));
        assert_eq!(next(&[61_000]), Some(ms(59_000)));
        assert_eq!(next(&[7_200_000 + 5_000]), Some(ms(3_600_000 - 5_000)));
        // The soonest wins; a future time (negative age) reads "0s" and is checked within the second.
        assert_eq!(next(&[61_000, 3_500]), Some(ms(500)));
        assert_eq!(next(&[-90_000]), Some(ms(1_000)));
        // A countdown of 4m 20s reads "4m" until it falls below 4m, 20 s (and a millisecond) later; a fixed
        // span is never tracked.
        let (_, countdown) = super::track_age_changes(|| super::format_countdown(ms(260_000)));
        assert_eq!(countdown, Some(ms(20_001)));
        let (_, span) = super::track_age_changes(|| super::format_span(ms(260_000)));
        assert_eq!(span, None);
        // Untracked formatting records nothing, and a nested tracker's ages count for the outer one too.
        super::format_age(ms(10));
        let (inner, outer) = super::track_age_changes(|| {
            super::format_age(ms(61_000));
            super::track_age_changes(|| super::format_age(ms(1_200))).1
        });
        assert_eq!((inner, outer), (Some(ms(800)), Some(ms(800))));
    }

    use super::*;

    #[test]
    fn to_chrono_is_exact_then_saturates_where_date_arithmetic_stays_safe() {
        assert_eq!(
            to_chrono(Duration::from_millis(1500)),
            chrono::Duration::milliseconds(1500)
        );
        // A configuration may say "99999999999d": the span saturates, and adding it to now does not panic.
        let huge = parse_duration("99999999999d").unwrap();
        assert_eq!(to_chrono(huge), CHRONO_SPAN_MAX);
        assert_eq!(to_chrono(Duration::MAX), CHRONO_SPAN_MAX);
        let now = chrono::Utc::now();
        assert!(now.checked_add_signed(to_chrono(huge)).is_some());
        assert!(now.checked_sub_signed(to_chrono(huge)).is_some());
    }

    #[test]
    fn one_stamp_format() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-03-11T14:03:22.9Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(utc_stamp(t), "2026-03-11 14:03:22 UTC");
    }

    #[test]
    fn parses_every_unit() {
        let cases = [
            ("250ms", 250),
            ("30s", 30_000),
            ("5m", 300_000),
            ("2h", 7_200_000),
            ("14d", 1_209_600_000),
            (" 7d ", 604_800_000),
        ];
        for (input, ms) in cases {
            assert_eq!(
                parse_duration(input).unwrap(),
                Duration::from_millis(ms),
                "{input}"
            );
        }
    }

    #[test]
    fn rejects_bad_input_with_a_hint() {
        for bad in [
            "",
            "5",
            "m",
            "5 minutes",
            "-5m",
            "1.5h",
            "99999999999999999999s",
        ] {
            let e = parse_duration(bad).unwrap_err().to_string();
            assert!(e.contains("e.g. \"250ms\""), "{bad}: {e}");
        }
    }

    #[test]
    fn formats_shortest_exact_unit() {
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(86_400 * 14)), "14d");
        assert_eq!(format_age(chrono::Duration::seconds(125)), "2m");
    }
}
