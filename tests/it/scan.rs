//! `authwatch scan`: counts on generated files must equal what `grep -c` finds on the same files.

use authwatch::config::{self, Config, LogFormat, LogSourceConfig};
use authwatch::ingest::{
    Line, LineParser, Matcher, ScanReport, guess_format, scan_bytes, scan_files, scan_reader,
    source_for_file,
};
use std::path::{Path, PathBuf};
use std::process::Command;

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
"#
    );
    config::parse(&text, Path::new("test.toml")).unwrap_or_else(|e| panic!("{e}"))
}

/// Deterministic xorshift.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const ERRORS: [&str; 6] = [
    "invalid_client",
    "unsupported_grant_type",
    "Token Expired",
    "Login failed",
    "Insufficient privileges to complete this action.",
    "Unable to validate App Keys(ClientID/ClientSecret) provided",
];

/// A realistic middleware JSON line (~250 bytes). About 2% are 401/403; numbers elsewhere often contain "401".
fn jsonl_line(r: &mut Rng, out: &mut String) {
    let (cid, acc) = match r.below(5) {
        0 => ("crmclient", "100"),
        1 => ("sharedclient", "200"),
        2 => ("sharedclient", "300"),
        3 => ("sharedclient", "999"),
        _ => ("strangerclient", "555"),
    };
    let roll = r.below(1000);
    let status = match roll {
        0..=11 => "401",
        12..=19 => "403",
        20..=59 => "500",
        60..=99 => "429",
        _ => "200",
    };
    // status sometimes as a string
    let status_json = if r.below(10) == 0 {
        format!("\"{status}\"")
    } else {
        status.to_owned()
    };
    let err = if status == "200" {
        "null".to_owned()
    } else {
        format!("\"{}\"", ERRORS[r.below(ERRORS.len() as u64) as usize])
    };
    let host = match cid {
        "crmclient" => TENANT_A,
        "sharedclient" => TENANT_B,
        _ => "mczzzzzzzzzzzzzzzzzzzzzzzzzz",
    };
    use std::fmt::Write;
    let _ = writeln!(
        out,
        r#"{{"time":"2026-10-{:02}T{:02}:{:02}:{:02}.{:03}Z","level":"info","service":"crm-middleware","request_id":"{:016x}","method":"POST","url":"https://{host}.rest.marketingcloudapis.com/data/v1/async/dataextensions/key:Contacts/rows","status":{status_json},"duration_ms":{},"bytes":{},"client_id":"{cid}","account_id":"{acc}","error":{err}}}"#,
        1 + r.below(28),
        r.below(24),
        r.below(60),
        r.below(60),
        r.below(1000),
        r.next(),
        r.below(5000),
        r.below(100_000),
    );
}

/// A combined access-log line; the HTTP Basic user is the client_id.
fn combined_line(r: &mut Rng, out: &mut String) {
    let user = match r.below(3) {
        0 => "crmclient",
        1 => "sharedclient",
        _ => "-",
    };
    let status = match r.below(1000) {
        0..=11 => 401,
        12..=19 => 403,
        20..=99 => 404,
        _ => 200,
    };
    use std::fmt::Write;
    let _ = writeln!(
        out,
        r#"10.{}.{}.{} - {user} [{:02}/Oct/2026:13:{:02}:{:02} +0000] "POST /v2/token?attempt={} HTTP/1.1" {status} {} "-" "FuelSDK-Java/1.{}""#,
        r.below(256),
        r.below(256),
        r.below(256),
        1 + r.below(28),
        r.below(60),
        r.below(60),
        r.below(1000),
        r.below(9000),
        r.below(1000),
    );
}

fn grep_c(args: &[&str], files: &[PathBuf]) -> u64 {
    let out = Command::new("grep")
        .env("LC_ALL", "C")
        .arg("-c")
        .arg("-h")
        .args(args)
        .args(files)
        .output()
        .expect("grep runs");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse::<u64>().unwrap())
        .sum()
}

fn row<'a>(r: &'a ScanReport, name: &str) -> &'a authwatch::ingest::IntegrationCounts {
    r.integrations.iter().find(|i| i.name == name).unwrap()
}

#[test]
fn jsonl_scan_equals_grep() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut files = Vec::new();
    for f in 0..3 {
        let mut text = String::new();
        for i in 0..4000 {
            jsonl_line(&mut rng, &mut text);
            if i % 997 == 0 {
                // a truncated write and a stack-trace line: malformed
                text.push_str(
                    "{\"time\":\"2026-10-10T13:55:36Z\",\"status\":401,\"client_id\":\"crmcl\n",
                );
                text.push_str(
                    "\tat com.exacttarget.fuelsdk.ETClient.requestToken(ETClient.java:403)\n",
                );
            }
        }
        if f == 2 {
            text.pop(); // last line without a newline: counted, like grep does
        }
        let path = dir.path().join(format!("sfmc-{f}.jsonl"));
        std::fs::write(&path, text).unwrap();
        files.push(path);
    }
    let cfg = test_config();
    let m = Matcher::from_config(&cfg);
    let src = LogSourceConfig::new(
        "mw",
        dir.path().join("*.jsonl").to_string_lossy(),
        LogFormat::Jsonl,
    );
    let r = scan_files(&files, &src, &m).unwrap();

    // well-formed lines only: the truncated ones hold "status":401 too, and are malformed
    let s401 = r#"^\{.*"status":"?401"?,"#;
    let s403 = r#"^\{.*"status":"?403"?,"#;
    assert_eq!(r.lines, grep_c(&[""], &files));
    assert_eq!(r.malformed, grep_c(&["-v", "-E", r"^\{.*\}$"], &files));
    let total = r.total();
    assert_eq!(
        total.unauthorized,
        grep_c(&["-E", "-e", &format!("{s401}.*\\}}$")], &files)
    );
    assert_eq!(
        total.forbidden,
        grep_c(&["-E", "-e", &format!("{s403}.*\\}}$")], &files)
    );
    assert!(total.unauthorized > 100 && total.forbidden > 50, "{r:?}");

    let per = |status: &str, tail: &str| {
        grep_c(&["-E", "-e", &format!("{status}.*{tail}.*\\}}$")], &files)
    };
    let crm = row(&r, "crm-sync");
    assert_eq!(crm.unauthorized, per(s401, r#""client_id":"crmclient""#));
    assert_eq!(crm.forbidden, per(s403, r#""client_id":"crmclient""#));
    // shared client: account 300 -> journey-b, 200 and unknown 999 -> journey-a (the credential's first)
    let b = row(&r, "journey-b");
    assert_eq!(
        b.unauthorized,
        per(s401, r#""client_id":"sharedclient","account_id":"300""#)
    );
    assert_eq!(
        b.forbidden,
        per(s403, r#""client_id":"sharedclient","account_id":"300""#)
    );
    let a = row(&r, "journey-a");
    assert_eq!(
        a.unauthorized,
        per(
            s401,
            r#""client_id":"sharedclient","account_id":"(200|999)""#
        )
    );
    assert_eq!(
        r.unmatched.unauthorized,
        per(s401, r#""client_id":"strangerclient""#)
    );
    assert_eq!(
        r.unmatched.forbidden,
        per(s403, r#""client_id":"strangerclient""#)
    );
}

#[test]
fn combined_scan_equals_grep() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(42);
    let mut text = String::new();
    for _ in 0..6000 {
        combined_line(&mut rng, &mut text);
    }
    text.push_str("garbage line without brackets 401\n");
    let path = dir.path().join("access.log");
    std::fs::write(&path, text).unwrap();
    let files = vec![path.clone()];
    assert_eq!(guess_format(&path).unwrap(), LogFormat::Combined);
    let src = source_for_file(&path, &[]).unwrap();
    assert_eq!(src.format, LogFormat::Combined);
    let m = Matcher::from_config(&test_config());
    let r = scan_files(&files, &src, &m).unwrap();
    assert_eq!(r.lines, 6001);
    assert_eq!(r.malformed, 1);
    assert_eq!(r.total().unauthorized, grep_c(&["-F", "\" 401 "], &files));
    assert_eq!(r.total().forbidden, grep_c(&["-F", "\" 403 "], &files));
    assert_eq!(
        row(&r, "crm-sync").unauthorized,
        grep_c(&["-E", "-e", "- crmclient .*\" 401 "], &files)
    );
    assert_eq!(
        row(&r, "journey-a").forbidden,
        grep_c(&["-E", "-e", "- sharedclient .*\" 403 "], &files)
    );
    assert_eq!(
        r.unmatched.unauthorized,
        grep_c(&["-E", "-e", "- - .*\" 401 "], &files)
    );
}

/// The buffer-level fast path says exactly what the line parser says, whatever the read sizes.
#[test]
fn fast_path_equals_line_by_line_parse() {
    let mut rng = Rng(7);
    let mut text = String::new();
    for i in 0..3000 {
        jsonl_line(&mut rng, &mut text);
        match i % 101 {
            0 => text.push_str("\n  \n"),
            1 => text.push_str("{\"status\":401,\"x\":}\n"),
            2 => text.push_str("{\"status\":200,\"note\":\"401 and 403\"}\n"),
            3 => text.push_str("401403401\n"),
            4 => text.push_str("{\"status\":403}\r\n"),
            _ => {}
        }
    }
    text.push_str("{\"status\":401}"); // no final newline
    let src = LogSourceConfig::new("t", "x", LogFormat::Jsonl);
    let m = Matcher::from_config(&test_config());

    let parser = LineParser::new(&src);
    let mut want = ScanReport::new(&m);
    for line in text.as_bytes().split(|b| *b == b'\n') {
        want.lines += 1;
        match parser.parse(line) {
            Line::Event(e) => match m.match_name(&e.keys) {
                Some(name) => {
                    let r = want
                        .integrations
                        .iter_mut()
                        .find(|r| r.name == name)
                        .unwrap();
                    if e.status == 401 {
                        r.unauthorized += 1
                    } else {
                        r.forbidden += 1
                    }
                }
                None if e.status == 401 => want.unmatched.unauthorized += 1,
                None => want.unmatched.forbidden += 1,
            },
            Line::Malformed => want.malformed += 1,
            Line::OtherStatus => {}
        }
    }
    assert_eq!(scan_bytes(text.as_bytes(), &src, &m), want);

    /// A reader returning a few bytes at a time.
    struct Trickle<'a>(&'a [u8], usize);
    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(self.0.len()).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            self.1 = self.1 % 13 + 1;
            Ok(n)
        }
    }
    assert_eq!(
        scan_reader(Trickle(text.as_bytes(), 1), &src, &m).unwrap(),
        want
    );
}

/// A line longer than the read buffer (and than MAX_LINE) is one malformed line, never held or parsed, as the
/// follower skips it; a line just under MAX_LINE still counts. Same through the reader and in memory.
#[test]
fn lines_longer_than_the_buffer_are_skipped_as_malformed() {
    use authwatch::ingest::parse::MAX_LINE;
    let mut text = String::from("{\"status\":401,\"integration\":\"crm-sync\",\"pad\":\"");
    text.push_str(&"x".repeat(9 << 20));
    text.push_str("\"}\n{\"status\":403,\"integration\":\"crm-sync\"}\n");
    let head = "{\"status\":401,\"integration\":\"crm-sync\",\"pad\":\"";
    text.push_str(head);
    text.push_str(&"y".repeat(MAX_LINE - head.len() - 3));
    text.push_str("\"}\n");
    let m = Matcher::from_config(&test_config());
    let src = LogSourceConfig::new("t", "x", LogFormat::Jsonl);
    for r in [
        scan_reader(text.as_bytes(), &src, &m).unwrap(),
        scan_bytes(text.as_bytes(), &src, &m),
    ] {
        assert_eq!((r.lines, r.malformed), (3, 1));
        assert_eq!(
            (
                row(&r, "crm-sync").unauthorized,
                row(&r, "crm-sync").forbidden
            ),
            (1, 1)
        );
    }
}

#[test]
fn report_json_and_text() {
    let m = Matcher::from_config(&test_config());
    let src = LogSourceConfig::new("t", "x", LogFormat::Jsonl);
    let data = "{\"status\":401,\"integration\":\"crm-sync\"}\n{\"status\":403,\"client_id\":\"x\"}\nnope\n";
    let r = scan_bytes(data.as_bytes(), &src, &m);
    assert_eq!(
        r.to_json(),
        r#"{"lines":3,"malformed":1,"unmatched":{"401":0,"403":1},"integrations":[{"name":"crm-sync","401":1,"403":0},{"name":"journey-a","401":0,"403":0},{"name":"journey-b","401":0,"403":0}]}"#
    );
    let back: ScanReport = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(back, r);
    let text = r.to_text();
    assert!(text.starts_with("INTEGRATION"), "{text}");
    assert!(text.contains("crm-sync            1         0"), "{text}");
    assert!(text.contains("(unmatched)         0         1"), "{text}");
    assert!(
        text.ends_with("3 lines, 2 auth failures (401/403), 1 malformed line skipped\n"),
        "{text}"
    );

    let mut merged = r.clone();
    merged.merge(&r);
    assert_eq!(
        (
            merged.lines,
            merged.malformed,
            merged.integrations[0].unauthorized
        ),
        (6, 2, 2)
    );
}

#[test]
fn scan_source_choice() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("a.jsonl");
    std::fs::write(&json, "\n{\"status\":401}\n").unwrap();
    let other = dir.path().join("b.log");
    std::fs::write(&other, "{\"code\":401}\n").unwrap();
    let mut configured = LogSourceConfig::new(
        "mw",
        dir.path().join("*.log").to_string_lossy(),
        LogFormat::Jsonl,
    );
    configured.status_field = "code".into();
    let sources = vec![configured.clone()];
    assert_eq!(source_for_file(&other, &sources).unwrap(), configured);
    let guessed = source_for_file(&json, &sources).unwrap();
    assert_eq!(
        (guessed.name.as_str(), guessed.format),
        ("a.jsonl", LogFormat::Jsonl)
    );
    let m = Matcher::empty();
    assert_eq!(
        scan_files(&[other], &configured, &m)
            .unwrap()
            .unmatched
            .unauthorized,
        1
    );
    let missing = scan_files(&[dir.path().join("nope")], &guessed, &m).unwrap_err();
    assert!(missing.to_string().contains("nope"), "{missing}");
}
