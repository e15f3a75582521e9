//! Log ingestion: parsers (table tests), mapping to integrations, and the file follower on real files.

use authwatch::config::{self, Config, LogFormat, LogSourceConfig};
use authwatch::ingest::{
    FileIdentity, FollowOptions, FollowUpdate, Follower, Line, LineParser, Matcher, Offsets,
    SourceStatus, StartAt,
};
use authwatch::model::AuthEvent;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const TENANT_A: &str = "mcaaaaaaaaaaaaaaaaaaaaaaaaaa";
const TENANT_B: &str = "mcbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn test_config() -> Config {
    let text = format!(
        r#"
[[credential]]
id = "crm-pkg"
auth_url = "https://{TENANT_A}.auth.marketingcloudapis.com/"
client_id = "crmclient"
client_secret = {{ env = "AW_TEST_UNUSED_1" }}

[[credential]]
id = "shared-pkg"
auth_url = "https://{TENANT_B}.auth.marketingcloudapis.com/"
client_id = "sharedclient"
client_secret = {{ env = "AW_TEST_UNUSED_2" }}

[[credential]]
id = "core"
provider = "oauth2"
token_url = "https://login.example.com/services/oauth2/token"
client_id = "coreclient"
client_secret = {{ env = "AW_TEST_UNUSED_3" }}

[[integration]]
name = "crm-sync"
credential = "crm-pkg"
account_id = "100"

[[integration]]
name = "journey-a"
credential = "shared-pkg"
account_id = "200"

[[integration]]
name = "journey-b"
credential = "shared-pkg"
account_id = "300"

[[integration]]
name = "core-api"
credential = "core"
"#
    );
    config::parse(&text, Path::new("test.toml")).unwrap_or_else(|e| panic!("{e}"))
}

fn jsonl() -> LineParser {
    LineParser::new(&LogSourceConfig::new("t", "x", LogFormat::Jsonl))
}

fn combined() -> LineParser {
    LineParser::new(&LogSourceConfig::new("t", "x", LogFormat::Combined))
}

/// (status, time rfc3339, integration, client_id, account_id, host, error) of an event line.
type Summary = (
    u16,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn summary(line: Line<'_>) -> Option<Summary> {
    match line {
        Line::Event(e) => Some((
            e.status,
            e.at.map(|t| t.to_rfc3339()),
            e.keys.integration.map(|s| s.into_owned()),
            e.keys.client_id.map(|s| s.into_owned()),
            e.keys.account_id.map(|s| s.into_owned()),
            e.keys.host.map(|s| s.into_owned()),
            e.error.map(|s| s.into_owned()),
        )),
        _ => None,
    }
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

#[test]
fn jsonl_lines_parse() {
    let p = jsonl();
    let t = s("2026-10-10T13:55:36+00:00");
    #[rustfmt::skip]
    let cases: Vec<(&str, Summary)> = vec![
        (r#"{"time":"2026-10-10T13:55:36Z","status":401,"client_id":"crmclient","error":"invalid_client"}"#,
            (401, t.clone(), None, s("crmclient"), None, None, s("invalid_client"))),
        // status as a string, padded
        (r#"{"status":" 403 ","integration":"crm-sync"}"#, (403, None, s("crm-sync"), None, None, None, None)),
        // weird casing of keys; numbers as account ids
        (r#"{"Time":"2026-10-10T15:55:36+02:00","STATUS":"401","Account_ID":100}"#,
            (401, t.clone(), None, None, s("100"), None, None)),
        // an exact key wins over a case-insensitive one, whatever the order
        (r#"{"Status":200,"status":401}"#, (401, None, None, None, None, None, None)),
        (r#"{"status":401,"Status":200}"#, (401, None, None, None, None, None, None)),
        // epoch seconds, milliseconds, float seconds, numeric string
        (r#"{"time":1791640536,"status":401}"#, (401, t.clone(), None, None, None, None, None)),
        (r#"{"time":1791640536000,"status":401}"#, (401, t.clone(), None, None, None, None, None)),
        (r#"{"time":1791640536.0,"status":401}"#, (401, t.clone(), None, None, None, None, None)),
        (r#"{"time":"1791640536","status":401}"#, (401, t.clone(), None, None, None, None, None)),
        (r#"{"time":"2026-10-10 13:55:36","status":401}"#, (401, t.clone(), None, None, None, None, None)),
        (r#"{"time":"yesterday","status":401}"#, (401, None, None, None, None, None, None)),
        // URL host, including PHP-style escaped slashes; error from an SFMC body object
        (r#"{"status":401,"url":"https:\/\/mcX.rest.marketingcloudapis.com\/asset\/v1","error":{"errorcode":0,"message":"Not Authorized"}}"#,
            (401, None, None, None, None, s("mcX.rest.marketingcloudapis.com"), s("Not Authorized"))),
        (r#"{"status":401,"error":{"error_description":"Client authentication failed.","error":"invalid_client"}}"#,
            (401, None, None, None, None, None, s("invalid_client"))),
        (r#"{"status":500,"error":{"faultstring":"Login failed"},"x":{"status":401}}"#, (0, None, None, None, None, None, None)),
        (r#"{"status":401,"error":40002}"#, (401, None, None, None, None, None, s("40002"))),
        // escaped string values are unescaped
        (r#"{"status":401,"client_id":"crm\u0063lient"}"#, (401, None, None, s("crmclient"), None, None, None)),
        // CRLF line ending
        ("{\"status\":403}\r\n", (403, None, None, None, None, None, None)),
    ];
    for (line, want) in cases {
        let got = summary(p.parse(line.as_bytes()));
        if want.0 == 0 {
            assert_eq!(got, None, "{line}");
        } else {
            assert_eq!(got, Some(want), "{line}");
        }
    }
}

#[test]
fn jsonl_dotted_paths() {
    let mut src = LogSourceConfig::new("t", "x", LogFormat::Jsonl);
    src.status_field = "response.status".into();
    src.error_field = "response.body.error".into();
    src.client_id_field = "request.auth.client".into();
    src.time_field = "@timestamp".into();
    let p = LineParser::new(&src);
    let line = r#"{"@timestamp":"2026-10-10T13:55:36Z","request":{"method":"POST","auth":{"client":"crmclient"}},"response":{"status":401,"body":{"error":"invalid_client"}},"status":200}"#;
    assert_eq!(
        summary(p.parse(line.as_bytes())),
        Some((
            401,
            s("2026-10-10T13:55:36+00:00"),
            None,
            s("crmclient"),
            None,
            None,
            s("invalid_client")
        ))
    );
    // the top-level "status" is not the configured field
    let line = r#"{"status":401,"response":{"status":200}}"#;
    assert_eq!(p.parse(line.as_bytes()), Line::OtherStatus);
    // the path leads through a non-object
    let line = r#"{"response":"401"}"#;
    assert_eq!(p.parse(line.as_bytes()), Line::OtherStatus);
}

#[test]
fn jsonl_other_and_malformed() {
    let p = jsonl();
    for line in [
        "",
        "   ",
        r#"{"status":200,"duration_ms":401}"#,
        r#"{"msg":"token refreshed","ttl":1079}"#,
        r#"{"status":"four-oh-one 401"}"#,
        r#"{"status":[401]}"#,
        r#"{"status":null,"x":403}"#,
    ] {
        assert_eq!(p.parse(line.as_bytes()), Line::OtherStatus, "{line:?}");
    }
    for line in [
        r#"{"status":401,"error":"inval"#,
        r#"{"status":401,}"#,
        r#"{"status":401}}"#,
        r#"{"status":401} trailing"#,
        "[401]",
        "401 Unauthorized: Unable to validate App Keys(ClientID/ClientSecret) provided",
        "\tat com.exacttarget.fuelsdk.ETClient.requestToken(ETClient.java:403)",
        r#"{"status":200,"#,
    ] {
        assert_eq!(p.parse(line.as_bytes()), Line::Malformed, "{line:?}");
    }
}

#[test]
fn combined_lines_parse() {
    let p = combined();
    let t = s("2026-10-10T13:55:36+00:00");
    #[rustfmt::skip]
    let cases: Vec<(&str, Summary)> = vec![
        (r#"127.0.0.1 - - [10/Oct/2026:13:55:36 +0000] "POST /v2/token HTTP/1.1" 401 123 "-" "FuelSDK-Java/1.6""#,
            (401, t.clone(), None, None, None, None, s("POST /v2/token"))),
        // forward proxy: absolute target gives the host; the query string never reaches the error text
        (r#"10.1.2.3 - - [10/oct/2026:15:55:36 +0200] "GET https://mcX.rest.marketingcloudapis.com/asset/v1/content?access_token=SECRET HTTP/1.1" 403 88 "-" "curl/8""#,
            (403, t.clone(), None, None, None, s("mcX.rest.marketingcloudapis.com"), s("GET /asset/v1/content"))),
        // HTTP Basic user is the client_id (RFC 6749 clients)
        (r#"10.0.0.9 - coreclient [10/Oct/2026:13:55:36 +0000] "POST /services/oauth2/token HTTP/2.0" 401 70 "-" "python-requests/2.31""#,
            (401, t.clone(), None, s("coreclient"), None, None, s("POST /services/oauth2/token"))),
        // nginx with "$host" appended after the user agent; an escaped quote inside the agent
        (r#"10.0.0.9 - - [10/Oct/2026:13:55:36 +0000] "post /v2/token HTTP/1.1" 401 70 "-" "agent \"x\" 1.0" 0.012 "mcA.auth.marketingcloudapis.com""#,
            (401, t.clone(), None, None, None, s("mcA.auth.marketingcloudapis.com"), s("post /v2/token"))),
        // common log format (no referer/agent)
        (r#"10.0.0.9 - - [10/Oct/2026:13:55:36 +0000] "POST /v2/token HTTP/1.1" 403 -"#,
            (403, t.clone(), None, None, None, None, s("POST /v2/token"))),
    ];
    for (line, want) in cases {
        assert_eq!(summary(p.parse(line.as_bytes())), Some(want), "{line}");
    }
    for line in [
        r#"127.0.0.1 - - [10/Oct/2026:13:55:36 +0000] "GET /401 HTTP/1.1" 200 401 "-" "ua""#,
        r#"127.0.0.1 - - [10/Oct/2026:13:55:36 +0000] "GET / HTTP/1.1" 404 12 "-" "ua""#,
        "",
    ] {
        assert_eq!(p.parse(line.as_bytes()), Line::OtherStatus, "{line}");
    }
    for line in [
        "garbage 401",
        r#"127.0.0.1 - - [10/Oct/2026:13:55:36 +0000] "POST /v2/token HTTP/1.1" 4O1 401"#,
        r#"127.0.0.1 - - [10/Oct/2026:13:55:36 +0000] "POST /v2/token HTTP/1.1 401 1"#,
        r#"127.0.0.1 - - [10/Oct/2026:13:55:36 +0000 "POST /v2/token HTTP/1.1" 401"#,
    ] {
        assert_eq!(p.parse(line.as_bytes()), Line::Malformed, "{line}");
    }
}

fn keys_line(fields: &str) -> String {
    format!("{{\"status\":401,{fields}}}")
}

#[test]
fn mapping_by_each_key() {
    let cfg = test_config();
    let m = Matcher::from_config(&cfg);
    let p = jsonl();
    let map = |fields: &str| -> Option<String> {
        let line = keys_line(fields);
        match p.parse(line.as_bytes()) {
            Line::Event(e) => m.match_name(&e.keys).map(str::to_owned),
            other => panic!("{line}: {other:?}"),
        }
    };
    let a_host = format!("https://{TENANT_A}.auth.marketingcloudapis.com/v2/token");
    let a_rest = format!(
        "https://{}.rest.marketingcloudapis.com/asset/v1",
        TENANT_A.to_uppercase()
    );
    let b_host = format!("https://{TENANT_B}.auth.marketingcloudapis.com/v2/token");
    #[rustfmt::skip]
    let cases: Vec<(String, Option<&str>)> = vec![
        // 1. integration name (exact, then case-insensitive)
        (r#""integration":"journey-b""#.into(), Some("journey-b")),
        (r#""integration":"CRM-Sync""#.into(), Some("crm-sync")),
        // an unknown name falls through to the next key
        (r#""integration":"nope","client_id":"crmclient""#.into(), Some("crm-sync")),
        // 2. client_id: one integration
        (r#""client_id":"crmclient""#.into(), Some("crm-sync")),
        (r#""client_id":"coreclient""#.into(), Some("core-api")),
        // client_id shared by two integrations: account_id decides, else the credential's first integration
        (r#""client_id":"sharedclient","account_id":"300""#.into(), Some("journey-b")),
        (r#""client_id":"sharedclient","account_id":300"#.into(), Some("journey-b")),
        (r#""client_id":"sharedclient","account_id":"999""#.into(), Some("journey-a")),
        (r#""client_id":"sharedclient""#.into(), Some("journey-a")),
        // client_id wins over account_id
        (r#""client_id":"crmclient","account_id":"300""#.into(), Some("crm-sync")),
        // 3. account_id alone
        (r#""account_id":"200""#.into(), Some("journey-a")),
        (r#""client_id":"unknown","account_id":"100""#.into(), Some("crm-sync")),
        // 4. URL host: auth host, REST host of the same tenant (any case), oauth2 token_url host
        (format!(r#""url":"{a_host}""#), Some("crm-sync")),
        (format!(r#""url":"{a_rest}""#), Some("crm-sync")),
        (format!(r#""url":"{b_host}""#), Some("journey-a")),
        (format!(r#""url":"{b_host}","account_id":"999""#), Some("journey-a")),
        (r#""url":"https://LOGIN.example.com/services/oauth2/token""#.into(), Some("core-api")),
        // nothing maps
        (r#""url":"https://elsewhere.example.org/x","client_id":"zzz""#.into(), None),
        (r#""url":"/v2/token""#.into(), None),
        (r#""x":1"#.into(), None),
    ];
    for (fields, want) in cases {
        assert_eq!(map(&fields).as_deref(), want, "{fields}");
    }
    // account_id given with the host picks among the tenant's integrations
    assert_eq!(
        map(&format!(r#""url":"{b_host}","account_id":"300""#)).as_deref(),
        Some("journey-b")
    );
    assert_eq!(Matcher::empty().match_name(&Default::default()), None);
}

#[test]
fn custom_field_names_map() {
    let cfg = test_config();
    let m = Matcher::from_config(&cfg);
    let mut src = LogSourceConfig::new("t", "x", LogFormat::Jsonl);
    src.client_id_field = "ctx.clientId".into();
    src.status_field = "code".into();
    let p = LineParser::new(&src);
    let line = br#"{"code":403,"ctx":{"clientId":"sharedclient"},"account_id":"300"}"#;
    let Line::Event(e) = p.parse(line) else {
        panic!()
    };
    assert_eq!(m.match_name(&e.keys), Some("journey-b"));
}

#[test]
fn file_identity_round_trips_as_text() {
    for id in [
        FileIdentity {
            dev: 2049,
            ino: 131_074,
            head: Some(u64::MAX),
        },
        FileIdentity {
            dev: 0,
            ino: 1,
            head: None,
        },
    ] {
        assert_eq!(id.to_string().parse::<FileIdentity>(), Ok(id));
    }
    assert!("1:2".parse::<FileIdentity>().is_err());
    assert!("1:2:zz".parse::<FileIdentity>().is_err());
}

// ------------------------------------------------------------------------------------------------------------
// Follower

const WAIT: Duration = Duration::from_secs(10);

fn opts() -> FollowOptions {
    FollowOptions {
        poll_interval: Duration::from_millis(50),
        ..FollowOptions::default()
    }
}

fn ev_line(n: usize) -> String {
    format!(
        "{{\"time\":\"2026-10-10T13:55:36Z\",\"status\":401,\"client_id\":\"crmclient\",\"error\":\"e{n}\"}}\n"
    )
}

fn ok_line(n: usize) -> String {
    format!("{{\"time\":\"2026-10-10T13:55:36Z\",\"status\":200,\"n\":{n}}}\n")
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Receives updates; remembers the newest offset per path and every status.
struct Rx {
    rx: mpsc::Receiver<FollowUpdate>,
    offsets: Vec<Offsets>,
    statuses: Vec<SourceStatus>,
    malformed: u64,
    lines: u64,
}

impl Rx {
    fn new(rx: mpsc::Receiver<FollowUpdate>) -> Self {
        Self {
            rx,
            offsets: Vec::new(),
            statuses: Vec::new(),
            malformed: 0,
            lines: 0,
        }
    }

    async fn next_update(&mut self) -> FollowUpdate {
        let u = tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("follower update within the timeout")
            .expect("follower alive");
        match &u {
            FollowUpdate::Batch(b) => {
                self.malformed += b.malformed;
                self.lines += b.lines;
                if let Some(o) = &b.offset {
                    self.offsets.retain(|x| x.path != o.path);
                    self.offsets.push(o.clone());
                }
            }
            FollowUpdate::Status { status, .. } => self.statuses.push(status.clone()),
        }
        u
    }

    /// The next `n` events.
    async fn events(&mut self, n: usize) -> Vec<AuthEvent> {
        let mut out = Vec::new();
        while out.len() < n {
            if let FollowUpdate::Batch(b) = self.next_update().await {
                out.extend(b.events);
            }
        }
        assert_eq!(out.len(), n, "more events than expected: {out:?}");
        out
    }

    async fn status(&mut self, want: SourceStatus) {
        if self.statuses.last() == Some(&want) {
            return;
        }
        loop {
            if let FollowUpdate::Status { status, .. } = self.next_update().await
                && status == want
            {
                return;
            }
        }
    }
}

fn errors(evs: &[AuthEvent]) -> Vec<String> {
    evs.iter().map(|e| e.error.clone()).collect()
}

fn expect(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|n| format!("e{n}")).collect()
}

fn source(dir: &Path, pattern: &str) -> LogSourceConfig {
    LogSourceConfig::new("mw", dir.join(pattern).to_string_lossy(), LogFormat::Jsonl)
}

fn start(src: LogSourceConfig, offsets: Vec<Offsets>) -> (authwatch::ingest::FollowerHandle, Rx) {
    let (tx, rx) = mpsc::channel(64);
    let h = Follower::new(src, Arc::new(Matcher::from_config(&test_config())))
        .with_offsets(offsets)
        .with_options(opts())
        .spawn(tx);
    (h, Rx::new(rx))
}

#[tokio::test]
async fn appended_lines_arrive_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("sfmc-1.jsonl");
    append(&log, &(ok_line(0) + &ev_line(0)));
    let (h, mut rx) = start(source(dir.path(), "sfmc-*.jsonl"), vec![]);
    let first = rx.events(1).await;
    assert_eq!(first[0].integration.as_deref(), Some("crm-sync"));
    assert_eq!(first[0].source, "mw");
    assert_eq!(first[0].http_status, 401);
    assert_eq!(first[0].at.to_rfc3339(), "2026-10-10T13:55:36+00:00");
    rx.status(SourceStatus::Ok).await;
    assert_eq!(h.status(), SourceStatus::Ok);

    for n in 1..4 {
        let t0 = Instant::now();
        append(&log, &(ok_line(n) + &ev_line(n)));
        let got = rx.events(1).await;
        assert_eq!(errors(&got), [format!("e{n}")]);
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "took {:?}",
            t0.elapsed()
        );
    }
    // a second file matching the glob is followed too
    append(&dir.path().join("sfmc-2.jsonl"), &ev_line(9));
    assert_eq!(errors(&rx.events(1).await), ["e9"]);
    assert_eq!(rx.malformed, 0);
    h.join();
}

/// Everything the follower threads log (a global subscriber: they run on their own threads).
fn captured_logs() -> &'static std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    static LOGS: std::sync::OnceLock<std::sync::Arc<std::sync::Mutex<Vec<u8>>>> =
        std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        struct W(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl Write for W {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = logs.clone();
        let _ = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || W(sink.clone()))
            .try_init();
        logs
    })
}

#[tokio::test]
async fn partial_last_line_waits_and_malformed_lines_are_skipped() {
    let logs = captured_logs();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.jsonl");
    let full = ev_line(1);
    let (head, tail) = full.split_at(30);
    append(
        &log,
        &(ev_line(0) + "{\"status\":401,\"client_secret\":\"hunter2\"\n" + head),
    );
    let (h, mut rx) = start(source(dir.path(), "app.jsonl"), vec![]);
    assert_eq!(errors(&rx.events(1).await), ["e0"]);
    assert_eq!(rx.malformed, 1);
    let consumed = rx.offsets[0].offset;
    assert_eq!(
        consumed as usize,
        std::fs::metadata(&log).unwrap().len() as usize - head.len()
    );
    append(&log, tail);
    let got = rx.events(1).await;
    assert_eq!(errors(&got), ["e1"]);
    assert_eq!(got[0].integration.as_deref(), Some("crm-sync"));
    assert_eq!(rx.malformed, 1);
    assert_eq!(rx.offsets[0].offset, std::fs::metadata(&log).unwrap().len());
    h.join();
    // One sample of the malformed line: where and how long, never its content.
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(
        logs.contains("skipping malformed log line (line 2, 39 bytes)"),
        "{logs}"
    );
    assert!(!logs.contains("hunter2"), "{logs}");
}

#[tokio::test]
async fn rotation_by_rename_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.jsonl");
    append(&log, &ev_line(0));
    let (h, mut rx) = start(source(dir.path(), "app.jsonl"), vec![]);
    assert_eq!(errors(&rx.events(1).await), ["e0"]);

    // The writer still holds the old file open while logrotate renames it.
    let mut writer = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    writer.write_all(ev_line(1).as_bytes()).unwrap();
    std::fs::rename(&log, dir.path().join("app.jsonl.1")).unwrap();
    writer.write_all(ev_line(2).as_bytes()).unwrap(); // late write to the rotated file
    append(&log, &ev_line(3)); // the new file
    writer.write_all(ev_line(4).as_bytes()).unwrap();
    drop(writer);
    append(&log, &ev_line(5));

    let mut got = errors(&rx.events(6 - 1).await);
    got.sort();
    assert_eq!(got, expect(1..6));
    // no duplicates: the next event is the sentinel
    append(&log, &ev_line(6));
    assert_eq!(errors(&rx.events(1).await), ["e6"]);
    h.join();
}

#[tokio::test]
async fn copy_truncate_restarts_at_zero() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.jsonl");
    append(&log, &(ev_line(0) + &ev_line(1) + &ok_line(2)));
    let (h, mut rx) = start(source(dir.path(), "app.jsonl"), vec![]);
    assert_eq!(errors(&rx.events(2).await), expect(0..2));
    let ino = rx.offsets[0].identity.ino;

    std::fs::copy(&log, dir.path().join("app.jsonl.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .unwrap();
    append(&log, &ev_line(2));
    assert_eq!(errors(&rx.events(1).await), ["e2"]);
    assert_eq!(rx.offsets[0].identity.ino, ino, "same inode, restarted");

    // Truncated and then written past the old offset before a poll: the changed first line gives it away.
    let big = (3..8).map(ev_line).collect::<String>();
    std::fs::write(&log, ok_line(99) + &big).unwrap();
    assert_eq!(errors(&rx.events(5).await), expect(3..8));
    append(&log, &ev_line(8));
    assert_eq!(errors(&rx.events(1).await), ["e8"]);
    h.join();
}

#[tokio::test]
async fn restart_from_stored_offsets_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.jsonl");
    append(&log, &(ev_line(0) + &ev_line(1)));
    let (h, mut rx) = start(source(dir.path(), "app.jsonl"), vec![]);
    assert_eq!(errors(&rx.events(2).await), expect(0..2));
    let stored = rx.offsets.clone();
    h.join();
    drop(rx);

    // Stored offsets survive as text (the store keeps identity as TEXT).
    let stored: Vec<Offsets> = stored
        .into_iter()
        .map(|o| Offsets {
            identity: o.identity.to_string().parse().unwrap(),
            ..o
        })
        .collect();

    // While down: more lines, then a rotation, then lines in the new file.
    append(&log, &(ev_line(2) + &ev_line(3)));
    std::fs::rename(&log, dir.path().join("app.jsonl.1")).unwrap();
    append(&log, &(ev_line(4) + &ok_line(5)));

    let (h, mut rx) = start(source(dir.path(), "app.jsonl"), stored);
    let mut got = errors(&rx.events(3).await);
    got.sort();
    assert_eq!(got, expect(2..5));
    append(&log, &ev_line(5));
    assert_eq!(errors(&rx.events(1).await), ["e5"]);
    let stored = rx.offsets.clone();
    h.join();
    drop(rx);

    // Plain restart, nothing new: nothing is delivered again; then a new line arrives exactly once.
    let (h, mut rx) = start(source(dir.path(), "app.jsonl"), stored);
    rx.status(SourceStatus::Ok).await;
    append(&log, &ev_line(6));
    assert_eq!(errors(&rx.events(1).await), ["e6"]);
    h.join();
}

#[tokio::test]
async fn start_at_end_skips_existing_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.jsonl");
    append(&log, &(ev_line(0) + &ev_line(1)));
    let (tx, rx) = mpsc::channel(64);
    let h = Follower::new(source(dir.path(), "app.jsonl"), Arc::new(Matcher::empty()))
        .with_options(FollowOptions {
            start_at: StartAt::End,
            ..opts()
        })
        .spawn(tx);
    let mut rx = Rx::new(rx);
    rx.status(SourceStatus::Ok).await;
    append(&log, &ev_line(2));
    let got = rx.events(1).await;
    assert_eq!(errors(&got), ["e2"]);
    assert_eq!(got[0].integration, None, "empty matcher: unmatched");
    let stored = rx.offsets.clone();
    h.join();
    drop(rx);

    // Rotated while down: the rotated file's tail and the whole new file are read, even "from the end".
    append(&log, &ev_line(3));
    std::fs::rename(&log, dir.path().join("app.jsonl.1")).unwrap();
    append(&log, &ev_line(4));
    let (tx, rx) = mpsc::channel(64);
    let h = Follower::new(source(dir.path(), "app.jsonl"), Arc::new(Matcher::empty()))
        .with_offsets(stored)
        .with_options(FollowOptions {
            start_at: StartAt::End,
            ..opts()
        })
        .spawn(tx);
    let mut rx = Rx::new(rx);
    let mut got = errors(&rx.events(2).await);
    got.sort();
    assert_eq!(got, expect(3..5));
    append(&log, &ev_line(5));
    assert_eq!(errors(&rx.events(1).await), ["e5"]);
    h.join();
}

#[tokio::test]
async fn missing_file_is_a_waiting_state_that_clears() {
    let dir = tempfile::tempdir().unwrap();
    let logs: PathBuf = dir.path().join("not-yet").join("logs");
    let (h, mut rx) = start(source(&logs, "sfmc-*.jsonl"), vec![]);
    rx.status(SourceStatus::WaitingForFile).await;
    assert_eq!(h.status(), SourceStatus::WaitingForFile);
    std::fs::create_dir_all(&logs).unwrap();
    append(&logs.join("sfmc-a.jsonl"), &ev_line(0));
    assert_eq!(errors(&rx.events(1).await), ["e0"]);
    rx.status(SourceStatus::Ok).await;
    // the file goes away: waiting again
    std::fs::remove_file(logs.join("sfmc-a.jsonl")).unwrap();
    rx.status(SourceStatus::WaitingForFile).await;
    h.join();
}

#[tokio::test]
async fn unreadable_file_is_an_error_state() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.jsonl");
    append(&log, &ev_line(0));
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::File::open(&log).is_ok() {
        return; // running as root: permissions are not enforced
    }
    let (h, mut rx) = start(source(dir.path(), "app.jsonl"), vec![]);
    loop {
        if let FollowUpdate::Status {
            status: SourceStatus::Error(m),
            ..
        } = rx.next_update().await
        {
            assert!(m.contains("app.jsonl"), "{m}");
            break;
        }
    }
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(errors(&rx.events(1).await), ["e0"]);
    rx.status(SourceStatus::Ok).await;
    h.join();
}

/// A log with a 200 MB line (itself a valid 401 object), a line with one invalid UTF-8 byte, a line that is not
/// JSON, and two plain 401s.
fn hostile_log(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(ev_line(0).as_bytes()).unwrap();
    f.write_all(b"{\"status\":401,\"client_id\":\"crmclient\",\"error\":\"big\",\"pad\":\"")
        .unwrap();
    let pad = vec![b'x'; 1 << 20];
    for _ in 0..200 {
        f.write_all(&pad).unwrap();
    }
    f.write_all(b"\"}\n").unwrap();
    f.write_all(
        b"{\"time\":\"2026-10-10T13:55:36Z\",\"status\":401,\"client_id\":\"crmclient\",\"error\":\"e2 caf\xe9\"}\n",
    )
    .unwrap();
    f.write_all(b"not json at all 401\n").unwrap();
    f.write_all(ev_line(3).as_bytes()).unwrap();
}

/// `authwatch scan` and the follower agree on the same file: the 200 MB line is one malformed line to both (never
/// held: scan's peak RSS stays far below it), and the line with a bad byte still yields its 401.
#[tokio::test]
async fn scan_and_follower_agree_on_a_200_mb_line_and_a_bad_utf8_byte() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.jsonl");
    hostile_log(&log);

    // The real binary, without a configuration (every 401 unmatched), and its own peak RSS.
    let path = log.display().to_string();
    let cwd = dir.path().to_path_buf();
    let (out, max_rss_kib) = tokio::task::spawn_blocking(move || {
        crate::common::run_with_peak_rss(
            env!("CARGO_BIN_EXE_authwatch"),
            &["scan", "--format", "json", &path],
            |c| {
                c.env("XDG_CONFIG_HOME", &cwd)
                    .env("XDG_STATE_HOME", &cwd)
                    .env_remove("AUTHWATCH_CONFIG")
                    .current_dir(&cwd);
            },
        )
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    eprintln!("scan of a file with a 200 MB line: peak RSS {max_rss_kib} KiB");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let scan: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(scan["lines"], 5, "{scan}");
    assert_eq!(scan["malformed"], 2, "{scan}");
    assert_eq!(scan["unmatched"]["401"], 3, "{scan}");
    assert!(
        max_rss_kib < 64 * 1024,
        "scan peaked at {} MiB on a 200 MB line",
        max_rss_kib / 1024
    );

    // The follower on the same file: the same lines, malformed lines and 401s.
    let (h, mut rx) = start(source(dir.path(), "app.jsonl"), vec![]);
    let events = rx.events(3).await;
    assert_eq!(errors(&events), ["e0", "e2 caf\u{fffd}", "e3"]);
    assert!(events.iter().all(|e| e.http_status == 401));
    let size = std::fs::metadata(&log).unwrap().len();
    while rx.offsets.first().is_none_or(|o| o.offset < size) {
        rx.next_update().await;
    }
    assert_eq!((rx.lines, rx.malformed), (5, 2));
    h.join();
}
