//! `authwatch report` figures against hand-computed fixtures in a real SQLite file.

use authwatch::history_report;
use authwatch::model::{AuthEvent, Outcome, Phase, ProbeResult, Status};
use authwatch::store::{Record, Store, Transition};
use chrono::{DateTime, Duration, TimeZone, Utc};

fn t(min: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap() + Duration::minutes(min)
}

fn probe(name: &str, min: i64, outcome: Outcome) -> Record {
    Record::Probe {
        integration: name.into(),
        result: ProbeResult::new(t(min), outcome, Phase::Token),
    }
}

fn transition(name: &str, min: i64, from: Status, to: Status) -> Record {
    Record::Transition(Transition {
        integration: name.into(),
        at: t(min),
        from,
        to,
        reason: format!("{to} at {min}"),
    })
}

fn event(name: Option<&str>, min: i64, status: u16, source: &str) -> Record {
    Record::AuthEvent(AuthEvent {
        at: t(min),
        integration: name.map(str::to_string),
        http_status: status,
        error: "invalid_client".into(),
        source: source.into(),
        origin: Default::default(),
    })
}

fn fixture() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("h.db")).unwrap();
    use Outcome::*;
    use Status::{Fail, Ok as Up, Unknown};
    store
        .write(&[
            // crm-sync, window 60..180: ok 60-100, failing 100-130, ok 130-180 -> uptime 120/120 covered... see below
            probe("crm-sync", 60, Ok),
            probe("crm-sync", 100, AuthRejected),
            probe("crm-sync", 110, AuthRejected),
            probe("crm-sync", 130, Ok),
            probe("crm-sync", 160, Ok),
            transition("crm-sync", 60, Unknown, Up),
            transition("crm-sync", 110, Up, Fail),
            transition("crm-sync", 130, Fail, Up),
            transition("crm-sync", 150, Up, Fail),
            transition("crm-sync", 170, Fail, Up),
            event(Some("crm-sync"), 100, 401, "probe"),
            event(Some("crm-sync"), 110, 401, "probe"),
            event(Some("crm-sync"), 112, 401, "crm-middleware"),
            event(Some("crm-sync"), 140, 403, "crm-middleware"),
            event(None, 141, 401, "crm-middleware"),
            // Outside the window: must not count.
            event(Some("crm-sync"), 10, 401, "probe"),
            // etl: failing since before the window and never recovered.
            probe("etl", 0, Ok),
            probe("etl", 30, AuthRejected),
            transition("etl", 30, Up, Fail),
        ])
        .unwrap();
    (dir, store)
}

#[test]
fn figures_match_the_hand_computed_fixture() {
    let (_dir, store) = fixture();
    let names = vec![
        "crm-sync".to_string(),
        "etl".to_string(),
        "never-probed".to_string(),
    ];
    let report = history_report::build(&store, &names, t(60), t(180)).unwrap();
    let crm = &report.integrations[0];
    // ok 60-100 (40) + failing 100-130 (30) + ok 130-180 (50): 90 of 120 minutes.
    assert_eq!(crm.uptime_pct, Some(75.0));
    // Two incidents: 110-130 (20 min) and 150-170 (20 min).
    assert_eq!(crm.incidents, 2);
    assert_eq!(crm.mttr_seconds, Some(1200));
    assert_eq!(crm.longest_outage_seconds, Some(1200));
    assert_eq!(crm.last_success, Some(t(160)));
    assert_eq!(
        (crm.auth_events.unauthorized, crm.auth_events.forbidden),
        (3, 1)
    );
    let probe = crm.auth_events_by_source["probe"];
    let logs = crm.auth_events_by_source["crm-middleware"];
    assert_eq!((probe.unauthorized, probe.forbidden), (2, 0));
    assert_eq!((logs.unauthorized, logs.forbidden), (1, 1));

    let etl = &report.integrations[1];
    // Failing through the whole window (its last result, at 30, holds): 0%.
    assert_eq!(etl.uptime_pct, None, "no probe inside the window");
    // The incident opened before the window counts from the window's start and is still open.
    assert_eq!(etl.incidents, 1);
    assert_eq!(etl.mttr_seconds, None);
    assert_eq!(etl.longest_outage_seconds, Some(7200));
    assert_eq!(etl.last_success, Some(t(0)));

    let never = &report.integrations[2];
    assert_eq!(
        (never.uptime_pct, never.incidents, never.last_success),
        (None, 0, None)
    );
}

#[test]
fn json_uses_the_documented_field_names() {
    let (_dir, store) = fixture();
    let report = history_report::build(&store, &["crm-sync".to_string()], t(60), t(180)).unwrap();
    let v = serde_json::to_value(&report).unwrap();
    let i = &v["integrations"][0];
    assert_eq!(v["since"], "2026-11-22T01:00:00Z");
    assert_eq!(i["name"], "crm-sync");
    assert_eq!(i["uptime_pct"], 75.0);
    assert_eq!(i["incidents"], 2);
    assert_eq!(i["mttr_seconds"], 1200);
    assert_eq!(i["longest_outage_seconds"], 1200);
    assert_eq!(i["last_success"], "2026-11-22T02:40:00Z");
    assert_eq!(i["auth_events"], serde_json::json!({"401": 3, "403": 1}));
    let text = report.to_text();
    assert!(
        text.contains("crm-sync") && text.contains("75.00%"),
        "{text}"
    );
}

/// The report's text table: a 65,536-byte name does not panic and is cut with `…`; a CJK name aligns by display
/// width (its UPTIME column starts where the heading's does).
#[test]
fn text_table_cuts_long_names_and_aligns_wide_ones() {
    let (_dir, store) = fixture();
    let huge = "n".repeat(65_536);
    let names = [
        huge.clone(),
        "日本の連携".to_string(),
        "crm-sync".to_string(),
    ];
    let report = history_report::build(&store, &names, t(60), t(180)).unwrap();
    let text = report.to_text();
    assert!(text.contains(&format!("{}…", "n".repeat(39))), "{text}");
    assert!(text.len() < 2_000, "{}", text.len());
    let lines: Vec<&str> = text.lines().skip(1).collect();
    let col = |row: &str, word: &str| {
        let at = row.find(word).unwrap_or_else(|| panic!("{word} in {row}"));
        authwatch::sanitize::display_width(&row[..at])
    };
    // The UPTIME heading ends where every figure of the column ends (right-aligned, width 8).
    let end = col(lines[0], "UPTIME") + "UPTIME".len();
    for row in &lines[1..] {
        let figure = row
            .split_whitespace()
            .find(|w| w.ends_with('%') || *w == "-")
            .unwrap_or_else(|| panic!("a figure in {row}"));
        assert_eq!(col(row, figure) + figure.len(), end, "{text}");
    }
}
