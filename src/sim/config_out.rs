//! Writing an authwatch config (and 0600 secret files) that points at a running simulator.

use super::SimError;
use super::scenario::Scenario;
use crate::duration::{HumanDuration, format_duration};
use chrono::{DateTime, Utc};
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[{}]", inner.join(", "))
}

fn dur(d: Option<HumanDuration>, default: &str) -> String {
    q(&d.map(|d| format_duration(d.as_std()))
        .unwrap_or_else(|| default.to_string()))
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> SimError + '_ {
    move |source| SimError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// Create (or replace) a file that is 0600 from its first byte.
fn write_private(path: &Path, contents: &[u8]) -> Result<(), SimError> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(write_err(path)(e)),
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(write_err(path))?;
    f.write_all(contents).map_err(write_err(path))?;
    f.sync_all().map_err(write_err(path))
}

/// The config text; `secrets_dir` must be absolute.
pub(super) fn render(
    scenario: &Scenario,
    base_url: &str,
    ca_file: Option<&Path>,
    secrets_dir: &Path,
    now: DateTime<Utc>,
) -> String {
    let a = &scenario.authwatch;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# Written by the authwatch SFMC simulator (scenario {:?}) at {}.",
        scenario.name,
        now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let _ = writeln!(t, "# The simulator listens on {base_url}\n");
    let _ = writeln!(t, "[settings]");
    let _ = writeln!(
        t,
        "name = {}",
        q(a.name.as_deref().unwrap_or(&scenario.name))
    );
    let _ = writeln!(t, "probe_interval = {}", dur(a.probe_interval, "30s"));
    let _ = writeln!(t, "token_refresh = {}", dur(a.token_refresh, "15m"));
    let _ = writeln!(t, "timeout = {}", dur(a.timeout, "5s"));
    let _ = writeln!(
        t,
        "failure_threshold = {}",
        a.failure_threshold.unwrap_or(3)
    );
    let _ = writeln!(t, "confirm_retry = {}", dur(a.confirm_retry, "5s"));
    let _ = writeln!(t, "warn_before = {}", dur(a.warn_before, "30d"));
    let _ = writeln!(t, "critical_before = {}", dur(a.critical_before, "7d"));
    let _ = writeln!(t, "latency_warn = {}", dur(a.latency_warn, "2s"));
    if let Some(ca) = ca_file {
        // The simulator's throwaway CA (--tls): trusted for probes, nothing else.
        let _ = writeln!(t, "ca_file = {}", q(&ca.to_string_lossy()));
    }
    let _ = writeln!(
        t,
        "max_concurrent_probes = {}",
        a.max_concurrent_probes.unwrap_or(16)
    );
    // The rotation wizard tells when SFMC accepts a staged secret: the simulator's own delay.
    let _ = writeln!(
        t,
        "staging_delay = \"{}\"",
        crate::duration::format_duration(scenario.staging_delay)
    );

    for c in &scenario.clients {
        let expires = (now + chrono::Duration::days(c.secret_expires_in_days)).date_naive();
        let secret_path = secrets_dir.join(&c.id);
        let _ = writeln!(t, "\n[[credential]]");
        let _ = writeln!(t, "id = {}", q(&c.id));
        let _ = writeln!(t, "provider = \"sfmc\"");
        let _ = writeln!(t, "auth_url = {}", q(base_url));
        let _ = writeln!(t, "client_id = {}", q(&c.client_id));
        let _ = writeln!(
            t,
            "client_secret = {{ file = {} }}",
            q(&secret_path.to_string_lossy())
        );
        let _ = writeln!(t, "secret_expires = {}", expires.format("%Y-%m-%d"));
        if let Some(owner) = &c.owner {
            let _ = writeln!(t, "owner = {}", q(owner));
        }
    }

    for i in &scenario.integrations {
        let _ = writeln!(t, "\n[[integration]]");
        let _ = writeln!(t, "name = {}", q(&i.name));
        let _ = writeln!(t, "credential = {}", q(&i.client));
        if let Some(v) = &i.account_id {
            let _ = writeln!(t, "account_id = {}", q(v));
        }
        let _ = writeln!(t, "scopes = {}", list(&i.scopes));
        if let Some(v) = &i.check_path {
            let _ = writeln!(t, "check_path = {}", q(v));
        }
        for (key, v) in [
            ("business_unit", &i.business_unit),
            ("team", &i.team),
            ("environment", &i.environment),
        ] {
            if let Some(v) = v {
                let _ = writeln!(t, "{key} = {}", q(v));
            }
        }
        if !i.processes.is_empty() {
            let _ = writeln!(t, "processes = {}", list(&i.processes));
        }
    }
    t
}

/// Write `dir/authwatch.toml` and `dir/secrets/<id>` (0600; the directory 0700), and `dir/ca.pem` when the
/// simulator serves TLS. `secrets` = (client id, secret).
pub(super) fn write(
    scenario: &Scenario,
    secrets: &[(String, String)],
    base_url: &str,
    ca_pem: Option<&str>,
    dir: &Path,
    now: DateTime<Utc>,
) -> Result<PathBuf, SimError> {
    fs::create_dir_all(dir).map_err(write_err(dir))?;
    let dir = fs::canonicalize(dir).map_err(write_err(dir))?;
    let secrets_dir = dir.join("secrets");
    match fs::DirBuilder::new().mode(0o700).create(&secrets_dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(write_err(&secrets_dir)(e)),
    }
    for (id, secret) in secrets {
        write_private(&secrets_dir.join(id), secret.as_bytes())?;
    }
    let ca_file = match ca_pem {
        Some(pem) => {
            let ca = dir.join("ca.pem");
            write_private(&ca, pem.as_bytes())?;
            Some(ca)
        }
        None => None,
    };
    let path = dir.join("authwatch.toml");
    write_private(
        &path,
        render(scenario, base_url, ca_file.as_deref(), &secrets_dir, now).as_bytes(),
    )?;
    Ok(path)
}
