//! Property tests for the parsers of outside input (issue 11): durations, Retry-After, token and error answers,
//! JSON lines and combined access-log lines, configuration values. Properties: no input panics; what can be
//! written back reads back the same; whatever is kept of outside text carries no raw control or bidi character.
//! Case counts are modest (64 per property) so the suite stays fast; `PROPTEST_CASES=10000` runs more.

use authwatch::config::{self, LogFormat, LogSourceConfig};
use authwatch::duration::{format_duration, parse_duration};
use authwatch::ingest::{Line, LineParser};
use authwatch::probe::classify::{
    self, MAX_RETRY_AFTER, MIN_RETRY_AFTER, parse_retry_after, parse_token_response,
};
use authwatch::sanitize::{self, is_unsafe};
use proptest::prelude::*;
use std::time::Duration;

fn cases() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(64),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Text an attacker would send: ordinary words mixed with escapes, C0/C1 controls, bidi controls, NUL,
/// quotes and backslashes, CJK and emoji.
fn hostile_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z0-9 _.:/-]{0,12}",
        Just("\u{1b}[2J".to_string()),
        Just("\u{1b}]0;title\u{7}".to_string()),
        Just("\u{202e}".to_string()),
        Just("\u{2066}\u{2069}\u{200f}".to_string()),
        Just("\u{0}\r\n\t".to_string()),
        Just("\u{9b}31m".to_string()),
        Just("\"\\{}[]".to_string()),
        Just("日本 🔑".to_string()),
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

fn no_unsafe(s: &str) -> bool {
    !s.chars().any(is_unsafe)
}

fn jsonl() -> LineParser {
    LineParser::new(&LogSourceConfig::new("app", "/dev/null", LogFormat::Jsonl))
}

proptest! {
    #![proptest_config(cases())]

    // ── durations ──

    #[test]
    fn durations_never_panic(s in "\\PC{0,24}") {
        let _ = parse_duration(&s);
    }

    #[test]
    fn durations_round_trip(ms in 0u64..=u64::MAX / 86_400_000) {
        let d = Duration::from_millis(ms);
        prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
    }

    #[test]
    fn written_durations_read_back(n in 0u64..1_000_000, unit in prop::sample::select(vec!["ms", "s", "m", "h", "d"])) {
        let d = parse_duration(&format!("{n}{unit}")).unwrap();
        prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
    }

    // ── Retry-After ──

    #[test]
    fn retry_after_is_always_clamped(s in "\\PC{0,30}|[0-9]{1,60}") {
        if let Some(r) = parse_retry_after(Some(&s)) {
            prop_assert!(r.wait >= MIN_RETRY_AFTER && r.wait <= MAX_RETRY_AFTER, "{s:?} -> {:?}", r.wait);
        }
    }

    #[test]
    fn retry_after_in_range_is_taken_as_sent(secs in 1u64..=86_400) {
        let r = parse_retry_after(Some(&secs.to_string())).unwrap();
        prop_assert_eq!(r.wait, Duration::from_secs(secs));
        prop_assert_eq!(r.clamped_from, None);
    }

    // ── token endpoint answers ──

    #[test]
    fn error_answers_never_panic_and_keep_no_raw_control_character(
        status in 100u16..600,
        error in hostile_text(),
        description in hostile_text(),
        retry in prop_oneof![any::<i64>().prop_map(|n| n.to_string()), Just("1e300".into()), Just("\"9\"".into())],
        token in any::<bool>(),
    ) {
        let body = format!(
            r#"{{"error":{},"error_description":{},"message":{},"errorcode":{retry},"retryAfter":{retry}}}"#,
            serde_json::Value::from(error.clone()),
            serde_json::Value::from(description),
            serde_json::Value::from(error),
        );
        let f = classify::classify_error_status(status, body.as_bytes(), None, token);
        for text in [&f.error, &f.detail].into_iter().flatten() {
            prop_assert!(no_unsafe(text), "{text:?}");
        }
        if let Some(r) = f.retry_after {
            prop_assert!(r >= MIN_RETRY_AFTER && r <= MAX_RETRY_AFTER);
        }
    }

    #[test]
    fn arbitrary_bytes_as_an_answer_never_panic(body in prop::collection::vec(any::<u8>(), 0..200), status in 0u16..1000) {
        let _ = classify::classify_error_status(status, &body, None, true);
        let _ = parse_token_response(&body);
        let _ = classify::token_context_mid(&body);
    }

    #[test]
    fn token_responses_parse_leniently_and_keep_safe_scopes(
        token in "[A-Za-z0-9._-]{1,40}",
        expires in prop_oneof![any::<i64>().prop_map(serde_json::Value::from), "[0-9]{1,25}".prop_map(serde_json::Value::from)],
        scope in hostile_text(),
        host in "[a-z]{1,10}(\\.[a-z]{1,10}){0,3}",
    ) {
        let body = serde_json::json!({
            "access_token": token,
            "expires_in": expires,
            "scope": scope,
            "rest_instance_url": format!("https://{host}/"),
        });
        let t = parse_token_response(body.to_string().as_bytes()).unwrap();
        prop_assert_eq!(t.access_token.as_str(), token.as_str());
        let url = t.rest_instance_url.unwrap();
        prop_assert_eq!(url.host_str(), Some(host.as_str()));
        for s in t.scope.unwrap_or_default() {
            prop_assert!(no_unsafe(&s), "{s:?}");
        }
    }

    // ── log lines ──

    #[test]
    fn jsonl_lines_never_panic(line in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = jsonl().parse(&line);
    }

    #[test]
    fn jsonl_events_keep_their_status_and_carry_no_raw_control_character(
        status in prop::sample::select(vec![401u16, 403]),
        quoted in any::<bool>(),
        integration in hostile_text(),
        client_id in hostile_text(),
        error in hostile_text(),
        host in hostile_text(),
    ) {
        let status_v = if quoted { serde_json::Value::from(status.to_string()) } else { status.into() };
        let line = serde_json::json!({
            "time": "2026-03-11T14:03:22Z",
            "status": status_v,
            "integration": integration,
            "client_id": client_id,
            "url": format!("https://{host}/v2/token"),
            "error": {"message": error},
        })
        .to_string();
        match jsonl().parse(line.as_bytes()) {
            Line::Event(ev) => {
                prop_assert_eq!(ev.status, status);
                prop_assert!(ev.at.is_some());
                let keys = &ev.keys;
                for text in [&keys.integration, &keys.client_id, &keys.account_id, &keys.host, &ev.error]
                    .into_iter()
                    .flatten()
                {
                    prop_assert!(no_unsafe(text), "{text:?} from {line}");
                }
            }
            other => prop_assert!(false, "{line} -> {other:?}"),
        }
    }

    #[test]
    fn combined_lines_never_panic(line in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = authwatch::ingest::parse::parse_combined(&line);
    }

    #[test]
    fn combined_events_keep_their_status_and_carry_no_raw_control_character(
        status in prop::sample::select(vec![401u16, 403]),
        user in "[A-Za-z0-9\u{1b}\u{7}\u{202e}._-]{1,20}",
        path in "[A-Za-z0-9/\u{1b}\u{202e}._-]{0,30}",
        host in "[a-z\u{1b}]{1,10}\\.example",
    ) {
        let line = format!(
            "10.0.0.1 - {user} [10/Oct/2026:13:55:36 +0000] \"POST https://{host}/{path} HTTP/1.1\" {status} 120 \"-\" \"curl/8\""
        );
        match authwatch::ingest::parse::parse_combined(line.as_bytes()) {
            Line::Event(ev) => {
                prop_assert_eq!(ev.status, status);
                for text in [&ev.keys.client_id, &ev.keys.host, &ev.error].into_iter().flatten() {
                    prop_assert!(no_unsafe(text), "{text:?} from {line:?}");
                }
            }
            other => prop_assert!(false, "{line:?} -> {other:?}"),
        }
    }

    #[test]
    fn time_strings_never_panic(s in "\\PC{0,40}") {
        let _ = authwatch::ingest::parse::parse_time_str(&s);
        let _ = authwatch::ingest::parse::host_of(&s);
    }

    // ── the sanitizer itself ──

    #[test]
    fn sanitized_text_has_no_unsafe_character_and_keeps_safe_text_as_is(s in hostile_text()) {
        let shown = sanitize::text(&s);
        prop_assert!(no_unsafe(&shown));
        if no_unsafe(&s) {
            prop_assert_eq!(shown.as_ref(), s.as_str());
        }
        // Escaping is idempotent: escaped text has nothing left to escape.
        let again = sanitize::text(&shown).into_owned();
        prop_assert_eq!(again.as_str(), shown.as_ref());
    }

    #[test]
    fn fit_is_exactly_the_width(s in hostile_text(), width in 0usize..60) {
        let safe = sanitize::text(&s);
        prop_assert_eq!(sanitize::display_width(&sanitize::fit(&safe, width)), width);
    }

    // ── configuration values ──

    #[test]
    fn config_names_load_only_when_safe(name in hostile_text(), team in hostile_text()) {
        let text = format!(
            "[[credential]]\nid = \"pkg\"\nauth_url = \"https://mc123456789012345678901234567.auth.marketingcloudapis.com/\"\nclient_id = \"cid\"\nclient_secret = {{ env = \"S\" }}\n\n\
             [[integration]]\nname = {}\ncredential = \"pkg\"\nteam = {}\n",
            toml_string(&name),
            toml_string(&team),
        );
        match config::parse(&text, std::path::Path::new("authwatch.toml")) {
            Ok(c) => {
                let i = &c.integrations[0];
                prop_assert!(no_unsafe(&i.name), "{:?}", i.name);
                prop_assert!(i.team.as_deref().is_none_or(no_unsafe));
                prop_assert_eq!(&i.name, &name);
            }
            Err(e) => {
                let shown = e.to_string();
                prop_assert!(shown.chars().all(|c| c == '\n' || !is_unsafe(c)), "{shown:?}");
                if !no_unsafe(&name) && !name.trim().is_empty() {
                    prop_assert!(shown.contains("`name` in [[integration]]"), "{shown}");
                }
            }
        }
    }

    #[test]
    fn config_values_of_any_type_never_panic(value in prop_oneof![
        "\\PC{0,20}".prop_map(|s| toml_string(&s)),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        Just("[1, \"a\", {x = 1}]".to_string()),
        Just("2026-13-45".to_string()),
    ], key in prop::sample::select(vec!["probe_interval", "timeout", "failure_threshold", "retention", "name", "db", "max_concurrent_probes"])) {
        let text = format!("[settings]\n{key} = {value}\n");
        let _ = config::parse(&text, std::path::Path::new("authwatch.toml"));
    }
}

/// A TOML basic string holding `s` exactly (every control character as a `\uXXXX` escape).
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
