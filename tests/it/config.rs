//! Configuration loading, validation messages (file:line:column + help), discovery and secret references.

use authwatch::config::{
    self, ClientAuth, Config, ConfigError, DEFAULT_CHECK_PATH, DiscoverEnv, Provider, Settings,
    discover_with,
};
use authwatch::secrets::{SecretError, SecretRef};
use chrono::{TimeZone, Utc};
use secrecy::ExposeSecret;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SENTINEL: &str = "S3NTINEL-do-not-print-7f3a";

const SFMC_URL: &str = "https://mc123456789012345678901234567.auth.marketingcloudapis.com/";

/// A valid sfmc credential named `id`.
fn sfmc(id: &str) -> String {
    format!(
        "[[credential]]\nid = \"{id}\"\nauth_url = \"{SFMC_URL}\"\nclient_id = \"cid-{id}\"\nclient_secret = {{ env = \"SECRET_{id}\" }}\n\n"
    )
}

fn integration(name: &str, credential: &str) -> String {
    format!("[[integration]]\nname = \"{name}\"\ncredential = \"{credential}\"\n\n")
}

struct Loaded {
    _dir: tempfile::TempDir,
    path: PathBuf,
    result: Result<Config, ConfigError>,
}

/// Write `text` to `<tmp>/authwatch.toml` and load it.
fn load_text(text: &str) -> Loaded {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("authwatch.toml");
    std::fs::write(&path, text).unwrap();
    let result = config::load(&path);
    Loaded {
        _dir: dir,
        path,
        result,
    }
}

fn ok(text: &str) -> Config {
    match load_text(text).result {
        Ok(c) => c,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

/// Load, expect failure; returns the Display text (checked for the sentinel) and the error.
fn err(text: &str) -> (String, ConfigError) {
    let loaded = load_text(text);
    let e = match loaded.result {
        Ok(c) => panic!("expected an error, got {c:#?}"),
        Err(e) => e,
    };
    let shown = e.to_string();
    let debug = format!("{e:?}");
    assert!(
        !shown.contains(SENTINEL),
        "secret leaked into Display:\n{shown}"
    );
    assert!(
        !debug.contains(SENTINEL),
        "secret leaked into Debug:\n{debug}"
    );
    assert_eq!(e.path(), loaded.path);
    (shown, e)
}

/// Assert that the error has a diagnostic at line:column whose message and help contain the given texts, and that
/// the rendered text names the file at that position.
fn expect(shown: &str, e: &ConfigError, line: usize, column: usize, message: &str, help: &str) {
    let d = e
        .diagnostics()
        .iter()
        .find(|d| d.line == line && d.column == column && d.message.contains(message))
        .unwrap_or_else(|| {
            panic!("no diagnostic at {line}:{column} containing {message:?} in:\n{shown}")
        });
    let h = d.help.as_deref().unwrap_or_default();
    assert!(h.contains(help), "help {h:?} lacks {help:?}");
    let at = format!("authwatch.toml:{line}:{column}: ");
    assert!(
        shown
            .lines()
            .any(|l| l.contains(&at) && l.contains(message)),
        "rendered error lacks {at}{message}:\n{shown}"
    );
    assert!(
        shown.contains(&format!("  help: {h}")),
        "rendered error lacks the help:\n{shown}"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Valid configurations

#[test]
fn example_config_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let c =
        config::load(&path).unwrap_or_else(|e| panic!("config.example.toml does not load:\n{e}"));
    assert_eq!(c.name, "acme-prod");
    assert_eq!(c.credentials.len(), 2);
    assert_eq!(c.integrations.len(), 2);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let s = &c.settings;
    assert_eq!(s.probe_interval, Duration::from_secs(300));
    assert_eq!(s.failure_threshold, 3);
    assert_eq!(s.critical_before, Duration::from_secs(7 * 86_400));
    let crm = c.credential("crm-package").unwrap();
    assert_eq!(crm.provider, Provider::Sfmc);
    assert_eq!(
        crm.client_secret,
        SecretRef::Env("CRM_PACKAGE_SECRET".into())
    );
    assert_eq!(
        crm.token_endpoint().as_str(),
        "https://mcxxxxxxxxxxxxxxxxxxxxxxxxxx.auth.marketingcloudapis.com/v2/token"
    );
    assert_eq!(
        crm.secret_expires,
        Some(Utc.with_ymd_and_hms(2027, 3, 1, 0, 0, 0).unwrap())
    );
    let sales = c.credential("sales-cloud").unwrap();
    assert_eq!(sales.provider, Provider::Oauth2);
    assert_eq!(sales.client_auth, ClientAuth::Basic);
    assert_eq!(
        sales.client_secret.to_string(),
        "file:/run/secrets/sales-cloud"
    );
    let sync = c.integration("crm-sync").unwrap();
    assert_eq!(sync.account_id.as_deref(), Some("5100001"));
    assert_eq!(
        sync.scopes,
        ["data_extensions_read", "data_extensions_write"]
    );
    assert_eq!(sync.processes, ["Welcome journey", "Nightly DE sync"]);
    assert!(
        c.integration("sales-cloud-sync")
            .unwrap()
            .check_url
            .is_some()
    );
}

#[test]
fn example_config_documents_every_key() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml"))
            .unwrap();
    for key in config::SETTINGS_KEYS
        .iter()
        .chain(config::CREDENTIAL_KEYS)
        .chain(config::INTEGRATION_KEYS)
        .chain(config::NOTIFY_KEYS)
    {
        assert!(
            text.contains(&format!("{key} = ")),
            "config.example.toml does not show `{key}`"
        );
    }
}

#[test]
fn minimal_config_gets_defaults_and_normalised_values() {
    let text = format!(
        "[[credential]]\nid = \"pkg\"\nauth_url = \"https://mc1.auth.marketingcloudapis.com\"\nclient_id = \"x\"\n\
         client_secret = {{ file = \"/run/secrets/pkg\" }}\nsecret_expires = \"2027-03-01\"\n\n\
         [[credential]]\nid = \"o\"\nprovider = \"oauth2\"\ntoken_url = \"http://127.0.0.1:8080/token\"\n\
         client_auth = \"body\"\nclient_id = \"y\"\nclient_secret = {{ command = [\"pass\", \"show\", \"o\"] }}\n\
         secret_expires = 2027-03-01T12:30:00+02:00\n\n\
         [[integration]]\nname = \"a\"\ncredential = \"pkg\"\naccount_id = 5100001\n\n{}",
        integration("b", "o")
    );
    let c = ok(&text);
    assert_eq!(c.name, "authwatch", "default name is the file stem");
    assert_eq!(c.settings, Settings::default());
    assert!(
        c.warnings.is_empty(),
        "loopback http is fine: {:?}",
        c.warnings
    );
    let pkg = c.credential("pkg").unwrap();
    assert_eq!(pkg.provider, Provider::Sfmc);
    assert_eq!(
        pkg.auth_url.as_ref().unwrap().as_str(),
        "https://mc1.auth.marketingcloudapis.com/"
    );
    assert_eq!(
        pkg.token_endpoint().as_str(),
        "https://mc1.auth.marketingcloudapis.com/v2/token"
    );
    assert_eq!(
        pkg.secret_expires,
        Some(Utc.with_ymd_and_hms(2027, 3, 1, 0, 0, 0).unwrap())
    );
    let o = c.credential("o").unwrap();
    assert_eq!(o.client_auth, ClientAuth::Body);
    assert_eq!(o.token_endpoint().as_str(), "http://127.0.0.1:8080/token");
    assert_eq!(
        o.secret_expires,
        Some(Utc.with_ymd_and_hms(2027, 3, 1, 10, 30, 0).unwrap())
    );
    assert_eq!(
        format!("{:?}", o.client_secret),
        "SecretRef(command:pass show o)"
    );
    let a = c.integration("a").unwrap();
    assert_eq!(a.account_id.as_deref(), Some("5100001"));
    assert_eq!(a.check_path, DEFAULT_CHECK_PATH);
    assert!(a.scopes.is_empty() && a.processes.is_empty() && a.check_url.is_none());
    assert_eq!(
        c.path.as_deref().unwrap().file_name().unwrap(),
        "authwatch.toml"
    );
}

#[test]
fn http_to_a_remote_host_is_a_warning() {
    let text = format!(
        "[[credential]]\nid = \"pkg\"\nauth_url = \"http://auth.example.com/\"\nclient_id = \"x\"\nclient_secret = {{ env = \"X\" }}\n\n\
         [[credential]]\nid = \"local\"\nauth_url = \"http://localhost:9000/\"\nclient_id = \"x\"\nclient_secret = {{ env = \"X\" }}\n\n\
         [[credential]]\nid = \"v6\"\nauth_url = \"http://[::1]:9000/\"\nclient_id = \"x\"\nclient_secret = {{ env = \"X\" }}\n\n{}{}{}",
        integration("a", "pkg"),
        integration("b", "local"),
        integration("c", "v6")
    );
    let c = ok(&text);
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    let w = &c.warnings[0];
    assert!(w.contains("authwatch.toml:3:12:"), "{w}");
    assert!(
        w.contains("http://") && w.contains("auth.example.com") && w.contains("use https"),
        "{w}"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Errors

#[test]
fn syntax_error_has_position_and_no_source_line() {
    let text = format!(
        "[settings]\ntimeout = \"10s\"\n\n[[credential]]\nclient_secret = \"{SENTINEL}\nid = \"x\"\n"
    );
    let (shown, e) = err(&text);
    let d = &e.diagnostics()[0];
    assert_eq!(d.line, 5, "{shown}");
    assert!(d.message.starts_with("TOML syntax error: "), "{shown}");
    assert!(d.excerpt.is_none());
    assert!(shown.contains("authwatch.toml:5:"), "{shown}");
    assert!(
        !shown.contains("client_secret ="),
        "must not print the source line:\n{shown}"
    );
    assert!(d.help.as_deref().unwrap().contains("TOML syntax"));

    let (shown, e) = err("[settings]\nprobe_interval = 5m\n");
    expect(&shown, &e, 2, 18, "TOML syntax error", "double quotes");
}

#[test]
fn unknown_keys_in_every_table_suggest_the_nearest() {
    let text = format!(
        "probe_interval = \"5m\"\n\
         [settings]\nprobe_intervl = \"5m\"\n\n\
         [[credential]]\nid = \"pkg\"\nauth_url = \"{SFMC_URL}\"\nclient_id = \"x\"\nclient_secret = {{ env = \"X\" }}\nownr = \"me\"\n\n\
         [[integration]]\nname = \"a\"\ncredential = \"pkg\"\nscope = [\"x\"]\n\n\
         [[credentials]]\nid = \"y\"\n"
    );
    let (shown, e) = err(&text);
    expect(
        &shown,
        &e,
        1,
        1,
        "unknown top-level key `probe_interval`",
        "belongs in the [settings] section",
    );
    expect(
        &shown,
        &e,
        3,
        1,
        "unknown key `probe_intervl` in [settings]",
        "did you mean `probe_interval`?",
    );
    expect(
        &shown,
        &e,
        10,
        1,
        "unknown key `ownr` in [[credential]] \"pkg\"",
        "did you mean `owner`?",
    );
    expect(
        &shown,
        &e,
        15,
        1,
        "unknown key `scope` in [[integration]] \"a\"",
        "did you mean `scopes`?",
    );
    expect(
        &shown,
        &e,
        17,
        3,
        "unknown top-level key `credentials`",
        "did you mean `credential`?",
    );
    assert_eq!(e.diagnostics().len(), 5, "{shown}");
    assert!(
        shown.ends_with(&format!("5 problems in {}", e.path().display())),
        "{shown}"
    );
}

#[test]
fn unknown_key_with_a_secret_value_is_not_echoed() {
    let text = format!(
        "{}client_secrte = \"{SENTINEL}\"\n\n{}",
        sfmc("pkg"),
        integration("a", "pkg")
    );
    let (shown, e) = err(&text);
    expect(
        &shown,
        &e,
        7,
        1,
        "unknown key `client_secrte`",
        "did you mean `client_secret`?",
    );
}

#[test]
fn duplicate_ids_and_names_point_at_the_second() {
    let text = format!(
        "{}{}{}{}",
        sfmc("pkg"),
        sfmc("pkg"),
        integration("a", "pkg"),
        integration("a", "pkg")
    );
    let (shown, e) = err(&text);
    expect(
        &shown,
        &e,
        8,
        6,
        "duplicate credential id `pkg` (first defined on line 2)",
        "unique id",
    );
    expect(
        &shown,
        &e,
        18,
        8,
        "duplicate integration name `a` (first defined on line 14)",
        "unique name",
    );
}

#[test]
fn unknown_credential_suggests_the_nearest_id() {
    let text = format!(
        "{}{}{}",
        sfmc("crm-package"),
        sfmc("other"),
        integration("a", "crm-pakage")
    );
    let (shown, e) = err(&text);
    expect(
        &shown,
        &e,
        15,
        14,
        "[[integration]] \"a\" names unknown credential `crm-pakage`",
        "did you mean `crm-package`?",
    );
}

#[test]
fn bad_urls() {
    let text = "[[credential]]\nid = \"a\"\nauth_url = \"not a url\"\nclient_id = \"x\"\nclient_secret = { env = \"X\" }\n\n\
                [[credential]]\nid = \"b\"\nauth_url = \"ftp://mc1.auth.marketingcloudapis.com/\"\nclient_id = \"x\"\nclient_secret = { env = \"X\" }\n\n\
                [[credential]]\nid = \"c\"\nauth_url = \"https://mc1.auth.marketingcloudapis.com/v2/token\"\nclient_id = \"x\"\nclient_secret = { env = \"X\" }\n\n\
                [[credential]]\nid = \"d\"\nprovider = \"oauth2\"\ntoken_url = \"https://u:pw@example.com/token\"\nclient_id = \"x\"\nclient_secret = { env = \"X\" }\n\n\
                [[integration]]\nname = \"i\"\ncredential = \"a\"\ncheck_path = \"/platform/v1/endpoints\"\n";
    let (shown, e) = err(text);
    expect(
        &shown,
        &e,
        3,
        12,
        "`auth_url` in [[credential]] \"a\" is not a valid URL",
        "absolute https URL",
    );
    expect(
        &shown,
        &e,
        9,
        12,
        "must be an http or https URL, found scheme `ftp`",
        "absolute https URL",
    );
    expect(
        &shown,
        &e,
        15,
        12,
        "is the token endpoint, not the base URL",
        "adds v2/token itself",
    );
    expect(
        &shown,
        &e,
        22,
        13,
        "must not contain a user name or password",
        "remove the `user:password@` part",
    );
    expect(
        &shown,
        &e,
        29,
        14,
        "`check_path` in [[integration]] \"i\" must be relative",
        "drop the leading `/`",
    );
    assert!(!shown.contains("pw@"), "{shown}");
}

#[test]
fn bad_values_in_settings() {
    let text = "[settings]\nprobe_interval = \"5 minutes\"\ntimeout = 10\nfailure_threshold = 0\n\
                max_concurrent_probes = 0\nwarn_before = \"7d\"\ncritical_before = \"30d\"\n";
    let (shown, e) = err(text);
    expect(
        &shown,
        &e,
        2,
        18,
        "bad duration for `probe_interval` in [settings]: \"5 minutes\"",
        "e.g. probe_interval = \"5m\"",
    );
    expect(
        &shown,
        &e,
        3,
        11,
        "`timeout` in [settings] must be a duration string, found an integer",
        "timeout = \"10s\"",
    );
    expect(
        &shown,
        &e,
        4,
        21,
        "`failure_threshold` in [settings] must be at least 1, found 0",
        "failure_threshold = 3",
    );
    expect(
        &shown,
        &e,
        5,
        25,
        "`max_concurrent_probes` in [settings] must be at least 1",
        "max_concurrent_probes = 16",
    );
    expect(
        &shown,
        &e,
        7,
        19,
        "`critical_before` (30d) is longer than `warn_before` (7d)",
        "shorter than warn_before",
    );
    assert_eq!(e.diagnostics().len(), 5, "{shown}");
    // Safe lines are shown with a caret.
    assert!(
        shown.contains(" 2 | probe_interval = \"5 minutes\"\n   |                  ^"),
        "{shown}"
    );
}

#[test]
fn critical_before_is_compared_with_the_default_warn_before() {
    let (shown, e) = err("[settings]\ncritical_before = \"60d\"\n");
    expect(
        &shown,
        &e,
        2,
        19,
        "`critical_before` (60d) is longer than `warn_before` (30d)",
        "shorter",
    );
}

#[test]
fn bad_dates_scopes_and_missing_keys() {
    let text = "[[credential]]\nid = \"pkg\"\nclient_secret = { env = \"X\" }\nsecret_expires = \"next march\"\n\n\
                [[credential]]\nid = \"o\"\nprovider = \"oauth2\"\nclient_id = \"y\"\n\n\
                [[integration]]\nname = \"a\"\ncredential = \"pkg\"\nscopes = [\"ok\", \"\", \"  \"]\n\n\
                [[integration]]\ncredential = \"pkg\"\n";
    let (shown, e) = err(text);
    expect(
        &shown,
        &e,
        1,
        1,
        "missing required key `auth_url` in [[credential]] \"pkg\"",
        "auth_url = \"https://",
    );
    expect(
        &shown,
        &e,
        1,
        1,
        "missing required key `client_id` in [[credential]] \"pkg\"",
        "Client Id",
    );
    expect(
        &shown,
        &e,
        4,
        18,
        "bad date for `secret_expires` in [[credential]] \"pkg\"",
        "secret_expires = 2027-03-01",
    );
    expect(
        &shown,
        &e,
        6,
        1,
        "missing required key `token_url` in [[credential]] \"o\"",
        "token_url = \"https://",
    );
    expect(
        &shown,
        &e,
        6,
        1,
        "missing required key `client_secret` in [[credential]] \"o\"",
        "{ env = \"VAR_NAME\" }",
    );
    expect(
        &shown,
        &e,
        14,
        17,
        "empty scope in `scopes` in [[integration]] \"a\"",
        "remove the empty entry",
    );
    expect(
        &shown,
        &e,
        14,
        21,
        "empty scope in `scopes`",
        "remove the empty entry",
    );
    expect(
        &shown,
        &e,
        16,
        1,
        "missing required key `name` in [[integration]] #2",
        "name = \"crm-sync\"",
    );
    assert_eq!(e.diagnostics().len(), 8, "{shown}");
}

#[test]
fn provider_specific_keys_are_checked() {
    let text = format!(
        "[[credential]]\nid = \"s\"\nauth_url = \"{SFMC_URL}\"\ntoken_url = \"https://x.example.com/t\"\nclient_auth = \"body\"\nclient_id = \"x\"\nclient_secret = {{ env = \"X\" }}\n\n\
         [[credential]]\nid = \"o\"\nprovider = \"oauth\"\nclient_id = \"x\"\nclient_secret = {{ env = \"X\" }}\n\n\
         {}[[integration]]\nname = \"b\"\ncredential = \"s\"\ncheck_url = \"https://x.example.com/c\"\n",
        integration("a", "o")
    );
    let (shown, e) = err(&text);
    expect(
        &shown,
        &e,
        4,
        13,
        "`token_url` is only for provider = \"oauth2\"",
        "remove token_url",
    );
    expect(
        &shown,
        &e,
        5,
        15,
        "`client_auth` is only for provider = \"oauth2\"",
        "JSON body",
    );
    expect(
        &shown,
        &e,
        11,
        12,
        "unknown provider `oauth`",
        "did you mean `oauth2`?",
    );
    expect(
        &shown,
        &e,
        22,
        13,
        "`check_url` in [[integration]] \"b\" only applies to oauth2",
        "check_path",
    );
}

#[test]
fn literal_secrets_are_rejected_without_echoing_them() {
    let text = format!(
        "[[credential]]\nid = \"pkg\"\nauth_url = \"{SFMC_URL}\"\nclient_id = \"x\"\nclient_secret = \"{SENTINEL}\"\n\n\
         [[credential]]\nid = \"num\"\nauth_url = \"{SFMC_URL}\"\nclient_id = \"x\"\nclient_secret = 918273645546372819\n\n\
         [[credential]]\nid = \"ml\"\nauth_url = \"{SFMC_URL}\"\nclient_id = \"x\"\nclient_secret = \"\"\"\n{SENTINEL}\n\"\"\"\n\n{}{}{}",
        integration("a", "pkg"),
        integration("b", "num"),
        integration("c", "ml"),
    );
    let (shown, e) = err(&text);
    expect(
        &shown,
        &e,
        5,
        17,
        "`client_secret` in [[credential]] \"pkg\" must be a secret reference, not the secret itself",
        "{ env = \"VAR_NAME\" }",
    );
    let d = e.diagnostics().iter().find(|d| d.line == 5).unwrap();
    let help = d.help.as_deref().unwrap();
    assert!(
        help.contains("{ file = ") && help.contains("{ command = ["),
        "{help}"
    );
    expect(
        &shown,
        &e,
        11,
        17,
        "must be a secret reference table, found a number",
        "{ env =",
    );
    assert!(!shown.contains("918273645546372819"), "{shown}");
    expect(&shown, &e, 17, 17, "must be a secret reference", "{ env =");
    assert!(
        e.diagnostics().iter().all(|d| d.excerpt.is_none()),
        "{shown}"
    );
}

#[test]
fn malformed_secret_references() {
    let text = format!(
        "[[credential]]\nid = \"a\"\nauth_url = \"{SFMC_URL}\"\nclient_id = \"x\"\nclient_secret = {{ env = \"\" }}\n\n\
         [[credential]]\nid = \"b\"\nauth_url = \"{SFMC_URL}\"\nclient_id = \"x\"\nclient_secret = {{ vault = \"{SENTINEL}\" }}\n\n\
         [[credential]]\nid = \"c\"\nauth_url = \"{SFMC_URL}\"\nclient_id = \"x\"\nclient_secret = {{ command = [] }}\n\n\
         [[credential]]\nid = \"d\"\nauth_url = \"{SFMC_URL}\"\nclient_id = \"x\"\nclient_secret = {{ envv = \"X\" }}\n\n\
         [[credential]]\nid = \"e\"\nauth_url = \"{SFMC_URL}\"\nclient_id = \"x\"\nclient_secret = {{ command = \"pass show e\" }}\n\n\
         [[credential]]\nid = \"f\"\nauth_url = \"{SFMC_URL}\"\nclient_id = \"x\"\nclient_secret = {{ env = \"X\", file = \"/y\" }}\n\n\
         {}{}{}{}{}{}",
        integration("ia", "a"),
        integration("ib", "b"),
        integration("ic", "c"),
        integration("id", "d"),
        integration("ie", "e"),
        integration("if", "f"),
    );
    let (shown, e) = err(&text);
    expect(
        &shown,
        &e,
        5,
        25,
        "empty `env` in `client_secret` in [[credential]] \"a\"",
        "{ env = \"CRM_PACKAGE_SECRET\" }",
    );
    expect(
        &shown,
        &e,
        11,
        19,
        "unknown secret reference kind `vault` in `client_secret`",
        "{ file = ",
    );
    expect(
        &shown,
        &e,
        17,
        29,
        "empty `command` in `client_secret`",
        "{ command = [\"pass\"",
    );
    expect(
        &shown,
        &e,
        23,
        19,
        "unknown secret reference kind `envv`",
        "did you mean `env`?",
    );
    expect(
        &shown,
        &e,
        29,
        29,
        "`command` in `client_secret` in [[credential]] \"e\" must be an array of strings",
        "each argument separately",
    );
    expect(
        &shown,
        &e,
        35,
        30,
        "has more than one of `env`, `file` and `command`",
        "{ env =",
    );
    assert_eq!(e.diagnostics().len(), 6, "{shown}");
}

#[test]
fn every_problem_is_reported_in_file_order() {
    let text = format!(
        "[settings]\ntimeout = \"soon\"\nfailure_threshold = 0\n\n{}client_secrt = \"{SENTINEL}\"\n\n{}",
        sfmc("pkg"),
        integration("a", "pk")
    );
    let (shown, e) = err(&text);
    let positions: Vec<(usize, usize)> =
        e.diagnostics().iter().map(|d| (d.line, d.column)).collect();
    assert_eq!(positions, [(2, 11), (3, 21), (11, 1), (15, 14)], "{shown}");
}

#[test]
fn io_errors_name_the_file() {
    let e = config::load(Path::new("/nonexistent/authwatch.toml")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot read configuration file /nonexistent/authwatch.toml: not found"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Discovery

fn touch(path: &Path) -> PathBuf {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, "").unwrap();
    path.to_path_buf()
}

#[test]
fn discover_order() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let cwd = root.join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let home = root.join("home");
    let xdg = root.join("xdg");
    let explicit = touch(&root.join("explicit.toml"));
    let from_env = touch(&root.join("env.toml"));
    let mut env = DiscoverEnv {
        authwatch_config: Some(from_env.clone().into()),
        xdg_config_home: Some(xdg.clone().into()),
        home: Some(home.clone().into()),
        cwd: cwd.clone(),
    };

    // Nothing found anywhere: every place is listed.
    let none = DiscoverEnv {
        authwatch_config: None,
        ..env.clone()
    };
    let e = discover_with(None, &none).unwrap_err();
    assert_eq!(e.searched.len(), 2);
    let shown = e.to_string();
    assert!(
        shown.contains(&cwd.join("authwatch.toml").display().to_string()),
        "{shown}"
    );
    assert!(
        shown.contains(&xdg.join("authwatch/config.toml").display().to_string()),
        "{shown}"
    );
    assert!(
        shown.contains("authwatch demo") && shown.contains("config.example.toml"),
        "{shown}"
    );

    // ~/.config is the fallback when XDG_CONFIG_HOME is unset (or relative).
    let home_cfg = touch(&home.join(".config/authwatch/config.toml"));
    for xdg_value in [None, Some("relative/dir".into())] {
        let e = DiscoverEnv {
            xdg_config_home: xdg_value,
            ..none.clone()
        };
        assert_eq!(discover_with(None, &e).unwrap(), home_cfg);
    }
    // XDG wins over ~/.config.
    let xdg_cfg = touch(&xdg.join("authwatch/config.toml"));
    assert_eq!(discover_with(None, &none).unwrap(), xdg_cfg);
    // ./authwatch.toml wins over XDG.
    let local = touch(&cwd.join("authwatch.toml"));
    assert_eq!(discover_with(None, &none).unwrap(), local);
    // $AUTHWATCH_CONFIG wins over ./authwatch.toml.
    assert_eq!(discover_with(None, &env).unwrap(), from_env);
    // --config wins over everything.
    assert_eq!(discover_with(Some(&explicit), &env).unwrap(), explicit);

    // Asked-for files must exist: no silent fallback.
    let missing = root.join("typo.toml");
    let e = discover_with(Some(&missing), &env).unwrap_err();
    assert_eq!(e.searched.len(), 1);
    assert!(
        e.to_string()
            .contains("typo.toml (from --config) does not exist"),
        "{e}"
    );
    env.authwatch_config = Some(missing.clone().into());
    let e = discover_with(None, &env).unwrap_err();
    assert!(
        e.to_string()
            .contains("(from $AUTHWATCH_CONFIG) does not exist"),
        "{e}"
    );
    // An empty $AUTHWATCH_CONFIG counts as unset.
    env.authwatch_config = Some("".into());
    assert_eq!(discover_with(None, &env).unwrap(), local);
}

// ---------------------------------------------------------------------------------------------------------------
// Secret references

const T: Duration = Duration::from_secs(5);

fn sh(script: &str) -> SecretRef {
    SecretRef::Command(vec!["sh".into(), "-c".into(), script.into()])
}

#[tokio::test]
async fn env_references() {
    let path = std::env::var("PATH").unwrap();
    let s = SecretRef::Env("PATH".into()).resolve(T).await.unwrap();
    assert_eq!(s.expose_secret(), path);
    let e = SecretRef::Env("AUTHWATCH_TEST_SURELY_UNSET_81723".into())
        .resolve(T)
        .await
        .unwrap_err();
    assert!(matches!(e, SecretError::EnvUnset { .. }));
    assert_eq!(
        e.to_string(),
        "environment variable AUTHWATCH_TEST_SURELY_UNSET_81723 is not set"
    );
}

#[tokio::test]
async fn file_references() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    std::fs::write(&path, format!("{SENTINEL}\n\n")).unwrap();
    let r = SecretRef::File(path.clone());
    assert_eq!(r.resolve(T).await.unwrap().expose_secret(), SENTINEL);
    assert_eq!(
        format!("{r:?}"),
        format!("SecretRef(file:{})", path.display())
    );

    std::fs::write(&path, " \n").unwrap();
    let e = r.resolve(T).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("secret file {} is empty", path.display())
    );

    let missing = SecretRef::File(dir.path().join("nope"));
    let e = missing.resolve(T).await.unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "cannot read secret file {}: not found",
            dir.path().join("nope").display()
        )
    );
}

#[tokio::test]
async fn command_references() {
    let r = sh(&format!("printf '  {SENTINEL}\\n'"));
    assert_eq!(r.resolve(T).await.unwrap().expose_secret(), SENTINEL);
    assert!(!format!("{:?}", r.resolve(T).await.unwrap()).contains(SENTINEL));

    // Non-zero exit: status and the first stderr line, never stdout (the secret comes from a file, so it is not
    // in the command line either).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s");
    std::fs::write(&file, SENTINEL).unwrap();
    let r = SecretRef::Command(vec![
        "sh".into(),
        "-c".into(),
        "cat \"$0\"; echo 'vault: permission denied' >&2; echo second >&2; exit 3".into(),
        file.display().to_string(),
    ]);
    let e = r.resolve(T).await.unwrap_err().to_string();
    assert!(
        e.contains("failed (exit status 3): vault: permission denied"),
        "{e}"
    );
    let (_, after_command) = e.split_once("` failed (").unwrap();
    assert!(
        !after_command.contains("second") && !e.contains(SENTINEL),
        "{e}"
    );
    assert!(e.starts_with("secret command `sh -c "), "{e}");

    // Long stderr is truncated.
    let e = sh("printf '%0500d' 0 >&2; exit 1")
        .resolve(T)
        .await
        .unwrap_err()
        .to_string();
    let (_, stderr) = e.split_once("(exit status 1): ").unwrap();
    assert_eq!(stderr.chars().count(), 201, "{e}");
    assert!(stderr.ends_with("000…"), "{e}");

    // Empty output, missing program.
    let e = sh("true").resolve(T).await.unwrap_err().to_string();
    assert!(e.contains("printed nothing on stdout"), "{e}");
    let e = SecretRef::Command(vec!["authwatch-no-such-program-x".into()])
        .resolve(T)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "cannot run secret command `authwatch-no-such-program-x`: not found"
    );

    // No shell: metacharacters are plain arguments.
    let r = SecretRef::Command(vec!["printf".into(), "%s".into(), "a;b|c".into()]);
    assert_eq!(r.resolve(T).await.unwrap().expose_secret(), "a;b|c");
}

#[tokio::test]
async fn command_timeout() {
    let start = Instant::now();
    let e = sh("sleep 5")
        .resolve(Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(matches!(e, SecretError::CommandTimeout { .. }));
    assert_eq!(
        e.to_string(),
        "secret command `sh -c 'sleep 5'` did not finish within 200ms"
    );
}

#[tokio::test]
async fn check_report_shows_references_and_status_only() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("pkg");
    std::fs::write(&secret_file, SENTINEL).unwrap();
    let text = format!(
        "[settings]\nname = \"acme\"\nsecret_command_timeout = \"300ms\"\n\n\
         [[credential]]\nid = \"pkg\"\nauth_url = \"{SFMC_URL}\"\nclient_id = \"x\"\nclient_secret = {{ file = \"{}\" }}\n\n\
         [[credential]]\nid = \"slow\"\nauth_url = \"http://auth.example.com/\"\nclient_id = \"x\"\nclient_secret = {{ command = [\"sleep\", \"5\"] }}\n\n\
         [[credential]]\nid = \"env\"\nauth_url = \"{SFMC_URL}\"\nclient_id = \"x\"\nclient_secret = {{ env = \"AUTHWATCH_TEST_SURELY_UNSET_81723\" }}\n\n{}{}{}",
        secret_file.display(),
        integration("a", "pkg"),
        integration("b", "slow"),
        integration("c", "env"),
    );
    let c = ok(&text);
    let (report, all_ok) = config::check_report(&c).await;
    assert!(!all_ok);
    assert!(!report.contains(SENTINEL), "{report}");
    assert!(report.contains("authwatch.toml (acme)"), "{report}");
    assert!(report.contains("3 credentials, 3 integrations"), "{report}");
    assert!(
        report.contains("warnings:\n  - ") && report.contains("auth.example.com"),
        "{report}"
    );
    assert!(
        report.contains(&format!("client_secret file:{}: ok", secret_file.display())),
        "{report}"
    );
    assert!(report.contains("client_secret command:sleep 5: FAILED: secret command `sleep 5` did not finish within 300ms"), "{report}");
    assert!(
        report.contains(
            "client_secret env:AUTHWATCH_TEST_SURELY_UNSET_81723: FAILED: environment variable"
        ),
        "{report}"
    );
    assert!(
        report.contains("2 of 3 secret references FAILED"),
        "{report}"
    );

    let text = format!(
        "{}{}",
        sfmc("only").replace("{ env = \"SECRET_only\" }", "{ env = \"PATH\" }"),
        integration("a", "only")
    );
    let (report, all_ok) = config::check_report(&ok(&text)).await;
    assert!(all_ok, "{report}");
    assert!(
        report.contains("all 1 secret references resolved"),
        "{report}"
    );
}

#[test]
fn config_debug_never_shows_a_value() {
    let c = ok(&format!("{}{}", sfmc("pkg"), integration("a", "pkg")));
    let debug = format!("{c:?}");
    assert!(debug.contains("SecretRef(env:SECRET_pkg)"), "{debug}");
}

#[test]
fn pagerduty_teams_events_and_reminders_are_checked() {
    let base = format!("{}{}", sfmc("pkg"), integration("a", "pkg"));
    let c = ok(&format!(
        "{base}[[notify]]\nkind = \"pagerduty\"\nrouting_key = {{ env = \"PD_KEY\" }}\n\
         events = [\"fail\", \"resolved\"]\nexpiry_reminders = [\"7d\", \"60d\"]\n\n\
         [[notify]]\nkind = \"teams\"\nurl = {{ env = \"TEAMS_URL\" }}\n"
    ));
    let pd = &c.notify[0];
    assert_eq!(pd.kind, config::NotifyKind::PagerDuty);
    assert_eq!(
        pd.url,
        config::UrlRef::Plain(url::Url::parse(config::PAGERDUTY_EVENTS_URL).unwrap()),
        "the public endpoint by default"
    );
    assert!(pd.routing_key.is_some());
    assert_eq!(
        pd.events,
        [config::NotifyEvent::Fail, config::NotifyEvent::Resolved]
    );
    assert_eq!(pd.expiry_reminders, [60, 7], "largest first");
    let teams = &c.notify[1];
    assert_eq!(teams.kind, config::NotifyKind::Teams);
    assert_eq!(teams.events, config::NotifyEvent::ALL);
    assert_eq!(teams.expiry_reminders, config::DEFAULT_EXPIRY_REMINDERS);

    let lines_before = base.lines().count();
    let (shown, e) = err(&format!(
        "{base}[[notify]]\nname = \"pd\"\nkind = \"pagerduty\"\n\n\
         [[notify]]\nname = \"chat\"\nkind = \"slack\"\nurl = \"https://hooks.example.com/x\"\n\
         routing_key = {{ env = \"K\" }}\nevents = [\"fial\"]\nexpiry_reminders = [\"36h\"]\n"
    ));
    let l = |n: usize| lines_before + n;
    expect(
        &shown,
        &e,
        l(1),
        1,
        "missing required key `routing_key` in [[notify]] \"pd\"",
        "routing_key = { env",
    );
    expect(
        &shown,
        &e,
        l(9),
        15,
        "`routing_key` in [[notify]] \"chat\" is only for kind = \"pagerduty\"",
        "remove it",
    );
    expect(
        &shown,
        &e,
        l(10),
        11,
        "unknown event `fial` in [[notify]] \"chat\"",
        "did you mean `fail`?",
    );
    expect(
        &shown,
        &e,
        l(11),
        21,
        "expiry reminder `36h` in [[notify]] \"chat\" is not a whole number of days",
        "\"7d\"",
    );
}

/// Names and ids reach terminals, logs, metrics labels and notifications: control characters (ESC, newline, NUL)
/// and bidi controls (U+202E, U+2066, U+200F) are refused at file:line:col, the message naming each character,
/// and neither the message nor the excerpt carries one raw.
#[test]
fn names_and_ids_with_control_or_bidi_characters_are_refused() {
    // (TOML text of the value, the characters the message names)
    let cases = [
        (r#""crm\u001b[2Jsync""#, "U+001B"),
        (r#""crm\nsync""#, "U+000A"),
        (r#""crm\u0000sync""#, "U+0000"),
        ("\"crm\u{202e}cnys\"", "U+202E"),
        (r#""crm\u2066sync\u2069""#, "U+2066, U+2069"),
        (r#""crm\u200Fsync""#, "U+200F"),
        (r#""crm\tsync""#, "U+0009"),
    ];
    for (value, named) in cases {
        // The integration name, the credential id (and the reference to it), team and business unit.
        let text = format!(
            "[[credential]]\nid = {value}\nauth_url = \"{SFMC_URL}\"\nclient_id = \"cid\"\nclient_secret = {{ env = \"S\" }}\n\n\
             [[integration]]\nname = {value}\ncredential = \"pkg\"\nteam = {value}\nbusiness_unit = {value}\n"
        );
        let (shown, e) = err(&text);
        let help = "may hold letters, digits, spaces and punctuation only";
        expect(&shown, &e, 2, 6, "`id` in [[credential]]", help);
        for (line, key) in [(8, "name"), (10, "team"), (11, "business_unit")] {
            let d = e
                .diagnostics()
                .iter()
                .find(|d| d.line == line && d.message.starts_with(&format!("`{key}`")))
                .unwrap_or_else(|| {
                    panic!("no diagnostic for {key} = {value} at line {line}:\n{shown}")
                });
            assert!(
                d.message
                    .contains(&format!("contains control or bidi characters ({named})")),
                "{}",
                d.message
            );
            let col = key.len() + 4;
            assert_eq!(d.column, col, "{key}: {shown}");
            assert!(
                shown.contains(&format!("authwatch.toml:{line}:{col}: `{key}`")),
                "{shown}"
            );
        }
        assert!(
            !shown
                .chars()
                .any(|c| authwatch::sanitize::is_unsafe(c) && c != '\n'),
            "raw control character in:\n{shown:?}"
        );
    }
    // Quoted keys carry them too: the unknown-key message shows them escaped.
    let (shown, _) = err(&format!("{}\"na\\u001bme\" = 1\n", sfmc("pkg")));
    assert!(shown.contains("unknown key `na\\x1bme`"), "{shown}");
    // Ordinary Unicode is fine.
    ok(&format!(
        "{}{}",
        sfmc("pkg"),
        integration("crm-sync ✓ 日本 — ünïcødé", "pkg")
    ));
}

// ---------------------------------------------------------------------------------------------------------------
// Large files (parsed in parts and read on two threads where the machine has the cores)

/// `n` integrations over 20 credentials, each entry padded with comment lines so the file is large enough to be
/// parsed in parts; returns the text and the line of each integration's `name`.
fn large_config(n: usize) -> (String, Vec<usize>) {
    let mut text = String::from("[settings]\nname = \"large\"\n\n");
    for c in 0..20 {
        text += &sfmc(&format!("pkg-{c}"));
    }
    let mut name_lines = Vec::new();
    for i in 0..n {
        text +=
            "# an integration of the large config, with some words to make the file big enough\n";
        name_lines.push(text.lines().count() + 2);
        text += &integration(&format!("int-{i}"), &format!("pkg-{}", i % 20));
    }
    (text, name_lines)
}

#[test]
fn a_large_file_loads_every_integration_in_order() {
    let (text, _) = large_config(4000);
    assert!(text.len() > 300_000, "{} bytes", text.len());
    let config = ok(&text);
    assert_eq!(config.integrations.len(), 4000);
    for (i, integration) in config.integrations.iter().enumerate() {
        assert_eq!(integration.name, format!("int-{i}"));
        assert_eq!(integration.credential, format!("pkg-{}", i % 20));
    }
}

#[test]
fn problems_in_both_halves_of_a_large_file_are_reported_at_their_lines() {
    let (text, name_lines) = large_config(4000);
    // An unknown key near the start, a bad credential reference and an unnamed entry near the end.
    let text = text
        .replacen(
            "name = \"int-7\"\n",
            "name = \"int-7\"\nscope = [\"a\"]\n",
            1,
        )
        .replacen(
            "credential = \"pkg-15\"\n\n# an",
            "credential = \"pkg-155\"\n\n# an",
            1,
        )
        .replacen("name = \"int-3990\"\n", "", 1);
    let (shown, e) = err(&text);
    expect(
        &shown,
        &e,
        name_lines[7] + 1,
        1,
        "unknown key `scope` in [[integration]] \"int-7\"",
        "did you mean `scopes`?",
    );
    // At the entry's header, one line further down for the line added above it.
    expect(
        &shown,
        &e,
        name_lines[3990],
        1,
        "missing required key `name` in [[integration]] #3991",
        "unique name",
    );
    expect(
        &shown,
        &e,
        name_lines[15] + 2, // below the added line
        14,
        "[[integration]] \"int-15\" names unknown credential `pkg-155`",
        "did you mean `pkg-15`?",
    );
    assert_eq!(e.diagnostics().len(), 3, "{shown}");
}
