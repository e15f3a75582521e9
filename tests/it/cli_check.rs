//! `authwatch check` as users run it: the real binary, a real config, the simulator on loopback.

use crate::common::*;
use std::path::Path;

const CLIENT: &str = "5c9e1b7aa0d44f3e8a2b91c7";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn authwatch(args: &[&str], state: &Path) -> Run {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_authwatch"))
        .args(args)
        .env("XDG_STATE_HOME", state)
        .env("XDG_CONFIG_HOME", state)
        .env_remove("AUTHWATCH_CONFIG")
        .current_dir(state)
        .output()
        .await
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A config with one integration per (name, secret, extra) on the same package.
async fn setup(
    cases: &[(&str, &str, &str)],
    settings: &str,
) -> (authwatch::sim::SimServer, tempfile::TempDir, String) {
    setup_with(cases, settings, "").await
}

async fn setup_with(
    cases: &[(&str, &str, &str)],
    settings: &str,
    client_extra: &str,
) -> (authwatch::sim::SimServer, tempfile::TempDir, String) {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, client_extra)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut text = format!("[settings]\n{settings}\n\n");
    for (i, (name, secret, extra)) in cases.iter().enumerate() {
        let file = write_secret(dir.path(), &format!("secret-{i}"), secret);
        let cred = format!("cred-{i}");
        text += &sfmc_credential(&cred, &sim.base_url(), CLIENT, &file);
        text += &integration(name, &cred, extra);
    }
    let path = write_config(dir.path(), &text);
    (sim, dir, path.display().to_string())
}

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", run.stdout))
}

#[tokio::test]
async fn all_ok_exits_0_with_the_documented_json() {
    let (_sim, dir, config) =
        setup(&[("crm-sync", SENTINEL, "account_id = \"5100001\"")], "").await;
    let run = authwatch(
        &["check", "--config", &config, "--format", "json"],
        dir.path(),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = json(&run);
    assert_eq!(
        v["summary"],
        serde_json::json!({"ok": 1, "warn": 0, "fail": 0, "unknown": 0})
    );
    let i = &v["integrations"][0];
    assert_eq!(i["name"], "crm-sync");
    assert_eq!(i["credential"], "cred-0");
    assert_eq!(i["status"], "ok");
    assert_eq!(i["probe"]["outcome"], "ok");
    assert_eq!(i["probe"]["http_status"], 200);
    assert!(i["probe"]["token_ms"].is_u64() && i["probe"]["call_ms"].is_u64());
    assert_eq!(i["probe"]["missing_scopes"], serde_json::json!([]));
    assert!(v["generated_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn a_warning_exits_1_and_a_failure_exits_2_with_reasons() {
    let (_sim, dir, config) = setup_with(
        &[("healthy", SENTINEL, ""), ("slow-to-answer", SENTINEL, "")],
        "latency_warn = \"20ms\"",
        "latency = \"30ms\"",
    )
    .await;
    let run = authwatch(
        &[
            "check",
            "--config",
            &config,
            "--integration",
            "slow-to-answer",
        ],
        dir.path(),
    )
    .await;
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("WARN") && run.stdout.contains("slow-to-answer"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("healthy"),
        "filtered out: {}",
        run.stdout
    );

    let (sim, dir, config) = setup(
        &[
            ("healthy", SENTINEL, ""),
            ("crm-sync", "a-wrong-secret", ""),
        ],
        "failure_threshold = 3",
    )
    .await;
    let run = authwatch(
        &["check", "--config", &config, "--format", "json"],
        dir.path(),
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    let v = json(&run);
    let failing = v["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "crm-sync")
        .unwrap();
    assert_eq!(failing["status"], "fail");
    assert_eq!(failing["probe"]["outcome"], "auth_rejected");
    assert_eq!(failing["probe"]["error"], "invalid_client");
    assert_eq!(failing["probe"]["call_ms"], serde_json::Value::Null);
    assert!(
        failing["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("token request rejected: invalid_client (401)")
    );
    // The reason and the JSON carry error_description, not just the code (issue 14).
    assert_eq!(
        failing["probe"]["detail"],
        "Client authentication failed. Make sure that the client ID and client secret are valid and that the package is installed and enabled."
    );
    assert!(
        failing["reasons"][0]
            .as_str()
            .unwrap()
            .ends_with("consecutive failures. Client authentication failed. Make sure that the client ID and client secret are valid and that the package is installed and enabled."),
        "{failing}"
    );
    // Confirmed by immediate retries: 3 attempts for the failing one, 1 for the healthy one.
    assert_eq!(sim.token_requests(CLIENT), 4);
}

#[tokio::test]
async fn usage_and_config_errors_exit_3() {
    let (_sim, dir, config) = setup(&[("crm-sync", SENTINEL, "")], "").await;
    let run = authwatch(
        &["check", "--config", &config, "--integration", "crm-snyc"],
        dir.path(),
    )
    .await;
    assert_eq!(run.code, 3);
    assert!(
        run.stderr
            .contains("unknown integration `crm-snyc`: did you mean `crm-sync`?"),
        "{}",
        run.stderr
    );

    let run = authwatch(&["check", "--bogus-flag"], dir.path()).await;
    assert_eq!(run.code, 3, "usage errors are 'unknown' too");

    let empty = tempfile::tempdir().unwrap();
    let run = authwatch(&["check"], empty.path()).await;
    assert_eq!(run.code, 3, "no config found: {}", run.stderr);
}

#[tokio::test]
async fn the_secret_never_appears_in_any_output_or_log() {
    // One integration with the right secret, one with the sentinel as a WRONG secret (so it is sent, refused
    // and reported on), both probed; then every output and every file in the state directory is searched.
    let sim = start_sim(&one_client_scenario(CLIENT, "the-right-secret", "")).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_secret(dir.path(), "s", SENTINEL);
    let text = sfmc_credential("pkg", &sim.base_url(), CLIENT, &file)
        + &integration("crm-sync", "pkg", "")
        + &integration("cdp-feed", "pkg", "account_id = \"5100002\"");
    let config = write_config(dir.path(), &text);
    let config = config.display().to_string();
    let state = tempfile::tempdir().unwrap();
    for format in ["text", "json"] {
        let run = authwatch(
            &["check", "--config", &config, "--format", format],
            state.path(),
        )
        .await;
        assert_eq!(run.code, 2);
        assert!(!run.stdout.contains(SENTINEL) && !run.stderr.contains(SENTINEL));
    }
    let run = authwatch(&["config", "check", "--config", &config], state.path()).await;
    assert!(!run.stdout.contains(SENTINEL) && !run.stderr.contains(SENTINEL));
    let mut files = 0;
    for entry in walk(state.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(SENTINEL),
            "{} holds the secret",
            entry.display()
        );
        files += 1;
    }
    assert!(files > 0, "the log file exists");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Corporate networks: probes go through HTTP(S)_PROXY unless NO_PROXY names the host. The simulator plays the
/// proxy here: it answers the absolute-form requests the client sends it for a tenant host that does not resolve.
#[tokio::test]
async fn probes_honour_the_proxy_environment() {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_secret(dir.path(), "s", SENTINEL);
    let text = sfmc_credential("pkg", "http://mc-tenant.invalid/", CLIENT, &file)
        + &integration("crm-sync", "pkg", "check_path = \"platform/v1/endpoints\"");
    let config = write_config(dir.path(), &text).display().to_string();
    let proxy = sim.base_url();
    let run = |no_proxy: &'static str| {
        let config = config.clone();
        let proxy = proxy.clone();
        let state = dir.path().to_path_buf();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_authwatch"))
                .args(["check", "--config", &config, "--format", "json"])
                .env("XDG_STATE_HOME", &state)
                .env("HTTP_PROXY", &proxy)
                .env("http_proxy", &proxy)
                .env("NO_PROXY", no_proxy)
                .env("no_proxy", no_proxy)
                .output()
                .await
                .unwrap()
        }
    };
    let through = run("").await;
    let v: serde_json::Value = serde_json::from_slice(&through.stdout).unwrap();
    assert_eq!(v["integrations"][0]["probe"]["outcome"], "ok", "{v}");
    assert_eq!(
        sim.token_requests(CLIENT),
        1,
        "the token request went through the proxy"
    );

    let bypass = run("mc-tenant.invalid").await;
    let v: serde_json::Value = serde_json::from_slice(&bypass.stdout).unwrap();
    assert_eq!(v["integrations"][0]["probe"]["outcome"], "network", "{v}");
    assert_eq!(
        v["integrations"][0]["probe"]["error"],
        "no such host mc-tenant.invalid: check the subdomain",
        "{v}"
    );
    assert_eq!(sim.token_requests(CLIENT), 1, "NO_PROXY bypassed the proxy");
}

/// One performance-data item of the plugin API: `'label'=value[UOM];[warn];[crit];[min];[max]`.
#[derive(Debug)]
struct Perf {
    label: String,
    value: f64,
    uom: String,
    warn: String,
    crit: String,
    min: String,
}

/// The plugin API's grammar: first line `TEXT[ | PERFDATA]`, long text lines after it (perfdata may continue after
/// a `|` in the long text). Panics with the offending part on anything outside the grammar.
fn parse_plugin_output(out: &str) -> (String, Vec<String>, Vec<Perf>) {
    let mut lines = out.lines();
    let first = lines.next().expect("a first line");
    let mut perf_text = String::new();
    let (text, rest) = first.split_once('|').unwrap_or((first, ""));
    perf_text.push_str(rest);
    let mut long = Vec::new();
    let mut in_perf = false;
    for line in lines {
        if in_perf {
            perf_text.push(' ');
            perf_text.push_str(line);
            continue;
        }
        match line.split_once('|') {
            Some((t, p)) => {
                long.push(t.trim_end().to_string());
                perf_text.push(' ');
                perf_text.push_str(p);
                in_perf = true;
            }
            None => long.push(line.to_string()),
        }
    }
    (
        text.trim_end().to_string(),
        long,
        parse_perfdata(&perf_text),
    )
}

fn parse_perfdata(s: &str) -> Vec<Perf> {
    let mut items = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        // label: quoted ('' escapes a quote) or bare up to '='
        let (label, after) = if let Some(q) = rest.strip_prefix('\'') {
            let mut label = String::new();
            let mut chars = q.char_indices();
            let end = loop {
                let (i, c) = chars
                    .next()
                    .unwrap_or_else(|| panic!("unclosed label: {rest}"));
                if c == '\'' {
                    if q[i + 1..].starts_with('\'') {
                        label.push('\'');
                        chars.next();
                    } else {
                        break i + 1;
                    }
                } else {
                    label.push(c);
                }
            };
            (label, &q[end..])
        } else {
            let eq = rest.find('=').unwrap_or_else(|| panic!("no '=': {rest}"));
            (rest[..eq].to_string(), &rest[eq..])
        };
        assert!(!label.is_empty() && !label.contains('='), "label {label:?}");
        let after = after
            .strip_prefix('=')
            .unwrap_or_else(|| panic!("no '=' after label: {after}"));
        let end = after.find(' ').unwrap_or(after.len());
        let item = &after[..end];
        rest = after[end..].trim_start();
        let fields: Vec<&str> = item.split(';').collect();
        assert!((1..=5).contains(&fields.len()), "fields in {item}");
        let num_end = fields[0]
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
            .unwrap_or(fields[0].len());
        let value: f64 = fields[0][..num_end]
            .parse()
            .unwrap_or_else(|_| panic!("value in {item}"));
        let uom = fields[0][num_end..].to_string();
        assert!(
            ["", "s", "ms", "us", "%", "B", "KB", "MB", "TB", "c"].contains(&uom.as_str()),
            "unit of measure {uom:?} in {item}"
        );
        let range_ok = |r: &str| {
            let r = r.strip_prefix('@').unwrap_or(r);
            let (start, end) = r.split_once(':').unwrap_or(("", r));
            (start.is_empty() || start == "~" || start.parse::<f64>().is_ok())
                && (end.is_empty() || end.parse::<f64>().is_ok())
        };
        let field = |n: usize| fields.get(n).copied().unwrap_or("").to_string();
        for n in [1, 2] {
            assert!(
                range_ok(&field(n)),
                "threshold range {:?} in {item}",
                field(n)
            );
        }
        for n in [3, 4] {
            let f = field(n);
            assert!(
                f.is_empty() || f.parse::<f64>().is_ok(),
                "min/max {f:?} in {item}"
            );
        }
        items.push(Perf {
            label,
            value,
            uom,
            warn: field(1),
            crit: field(2),
            min: field(3),
        });
    }
    items
}

#[tokio::test]
async fn nagios_format_follows_the_plugin_api() {
    let (_sim, dir, config) = setup(
        &[
            ("healthy", SENTINEL, "account_id = \"5100001\""),
            ("nightly-etl-loader", "a-wrong-secret", ""),
        ],
        "failure_threshold = 2\nlatency_warn = \"1500ms\"\nwarn_before = \"30d\"\ncritical_before = \"7d\"",
    )
    .await;
    // An expiry date, so the credential's days-left series is there too.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[[credential]]\nid = \"cred-0\"",
        "[[credential]]\nid = \"cred-0\"\nsecret_expires = \"2099-01-01\"",
    );
    assert!(text.contains("2099-01-01"), "{text}");
    std::fs::write(&config, text).unwrap();
    let run = authwatch(
        &["check", "--config", &config, "--format", "nagios"],
        dir.path(),
    )
    .await;
    assert_eq!(
        run.code, 2,
        "CRITICAL exits 2: {}{}",
        run.stdout, run.stderr
    );
    let (text, long, perf) = parse_plugin_output(&run.stdout);
    assert!(
        text.starts_with("AUTHWATCH CRITICAL - 1 fail: nightly-etl-loader invalid_client since "),
        "{text}"
    );
    assert!(text.ends_with(" UTC"), "{text}");
    assert_eq!(long.len(), 1, "one long-text line per problem: {long:?}");
    assert!(
        long[0]
            .starts_with("FAIL nightly-etl-loader: token request rejected: invalid_client (401)"),
        "{long:?}"
    );
    let find = |l: &str| {
        perf.iter()
            .find(|p| p.label == l)
            .unwrap_or_else(|| panic!("no {l} in {perf:?}"))
    };
    let token = find("healthy token");
    assert_eq!(
        (token.uom.as_str(), token.warn.as_str(), token.min.as_str()),
        ("ms", "1500", "0")
    );
    assert!(token.value >= 0.0);
    assert_eq!(find("healthy call").uom, "ms");
    assert_eq!(find("nightly-etl-loader token").uom, "ms");
    assert!(
        perf.iter().all(|p| p.label != "nightly-etl-loader call"),
        "no call was made after the refusal: {perf:?}"
    );
    let days = find("cred-0 days_left");
    assert_eq!(
        (days.uom.as_str(), days.warn.as_str(), days.crit.as_str()),
        ("", "30:", "7:")
    );
    assert!(days.value > 365.0, "{days:?}");

    // All OK: exit 0, `AUTHWATCH OK - N ok`, no long text.
    let (_sim, dir, config) = setup(&[("crm-sync", SENTINEL, "")], "").await;
    let run = authwatch(
        &["check", "--config", &config, "--format", "nagios"],
        dir.path(),
    )
    .await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let (text, long, perf) = parse_plugin_output(&run.stdout);
    assert_eq!(text, "AUTHWATCH OK - 1 ok");
    assert!(long.is_empty(), "{long:?}");
    assert_eq!(perf.len(), 2, "{perf:?}");

    // Unknown integration: UNKNOWN on stdout (what Nagios shows), exit 3.
    let run = authwatch(
        &[
            "check",
            "--config",
            &config,
            "--format",
            "nagios",
            "--integration",
            "nope",
        ],
        dir.path(),
    )
    .await;
    assert_eq!(run.code, 3);
    let (text, _, _) = parse_plugin_output(&run.stdout);
    assert!(
        text.starts_with("AUTHWATCH UNKNOWN - unknown integration `nope`"),
        "{text}"
    );
}

/// The text output answers "what is broken" first: fail, warn, unknown, ok; the expiry table soonest first;
/// and `--integration X` shows X's credential only, with a summary that matches.
#[tokio::test]
async fn check_text_is_sorted_by_severity_and_integration_filters_credentials() {
    let (_sim, dir, config) = setup(
        &[
            ("alpha-ok", SENTINEL, "account_id = \"5100001\""),
            ("bravo-fail", "a-wrong-secret", ""),
            ("charlie-ok", SENTINEL, ""),
        ],
        "failure_threshold = 1",
    )
    .await;
    let mut text = std::fs::read_to_string(&config).unwrap();
    for (cred, date) in [
        ("cred-0", "2099-01-01"),
        ("cred-1", "2098-01-01"),
        ("cred-2", "2097-01-01"),
    ] {
        text = text.replace(
            &format!("[[credential]]\nid = \"{cred}\""),
            &format!("[[credential]]\nid = \"{cred}\"\nsecret_expires = \"{date}\""),
        );
    }
    std::fs::write(&config, text).unwrap();
    let run = authwatch(&["check", "--config", &config], dir.path()).await;
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    let pos = |s: &str| {
        run.stdout
            .find(s)
            .unwrap_or_else(|| panic!("{s} missing: {}", run.stdout))
    };
    assert!(pos("bravo-fail") < pos("alpha-ok"), "{}", run.stdout);
    assert!(pos("alpha-ok") < pos("charlie-ok"), "{}", run.stdout);
    let expiry = &run.stdout[pos("EXPIRY")..];
    let at = |s: &str| expiry.find(s).unwrap();
    assert!(at("2097-01-01") < at("2098-01-01"), "{expiry}");
    assert!(at("2098-01-01") < at("2099-01-01"), "{expiry}");

    let run = authwatch(
        &["check", "--config", &config, "--integration", "charlie-ok"],
        dir.path(),
    )
    .await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("cred-2"), "{}", run.stdout);
    for other in ["cred-0", "cred-1", "alpha-ok", "bravo-fail"] {
        assert!(
            !run.stdout.contains(other),
            "{other} listed: {}",
            run.stdout
        );
    }
    assert!(
        run.stdout.contains("1 ok, 0 warn, 0 fail, 0 unknown"),
        "{}",
        run.stdout
    );
}

/// A 65,536-byte integration name panicked `check` ("Formatting argument out of range"); CJK and emoji names
/// misaligned the columns (widths counted in bytes). Columns are terminal cells now, long names cut with `…`.
#[tokio::test]
async fn long_and_wide_names_keep_the_columns_aligned_without_panicking() {
    let huge = "n".repeat(65_536);
    let (_sim, dir, config) = setup(
        &[
            (huge.as_str(), SENTINEL, ""),
            ("日本の連携", SENTINEL, ""),
            ("crm-🔑-sync", SENTINEL, ""),
            ("plain", SENTINEL, ""),
        ],
        "",
    )
    .await;
    let run = authwatch(&["check", "--config", &config], dir.path()).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let rows: Vec<&str> = run.stdout.lines().take_while(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 5, "{}", run.stdout);
    // Every row's CREDENTIAL column starts at the same terminal column as the heading's.
    let cell = |row: &str, word: &str| {
        let at = row.find(word).unwrap_or_else(|| panic!("{word} in {row}"));
        authwatch::sanitize::display_width(&row[..at])
    };
    let credential_col = cell(rows[0], "CREDENTIAL");
    for (row, cred) in rows[1..]
        .iter()
        .zip(["cred-0", "cred-1", "cred-2", "cred-3"])
    {
        assert_eq!(cell(row, cred), credential_col, "{}", run.stdout);
    }
    // The name column is cut at 40 cells with an ellipsis.
    assert!(
        run.stdout.contains(&format!("{}…", "n".repeat(39))),
        "{}",
        run.stdout
    );
    assert!(run.stdout.len() < 4_000, "{}", run.stdout.len());
}
