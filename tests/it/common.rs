//! Shared test set-up: a real simulator on a loopback port, real config files, real secret files.
#![allow(dead_code)]

use authwatch::config::{self, Config};
use authwatch::sim::{self, Scenario, SimServer};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A secret no output may ever contain.
pub const SENTINEL: &str = "S3NTINEL-never-print-me-7f3a9c";

pub async fn start_sim(scenario_toml: &str) -> SimServer {
    let scenario = Scenario::from_toml(scenario_toml, "test.toml").expect("test scenario parses");
    sim::start(scenario, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("simulator starts")
}

pub fn write_secret(dir: &Path, name: &str, value: &str) -> PathBuf {
    use std::io::Write;
    let path = dir.join(name);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    writeln!(f, "{value}").unwrap();
    path
}

pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("authwatch.toml");
    std::fs::write(&path, text).unwrap();
    path
}

pub fn load_config(dir: &Path, text: &str) -> Config {
    let path = write_config(dir, text);
    config::load(&path).unwrap_or_else(|e| panic!("test config must load: {e}\n{text}"))
}

/// One `[[credential]]` block for an sfmc package reading its secret from `secret_file`.
pub fn sfmc_credential(id: &str, auth_url: &str, client_id: &str, secret_file: &Path) -> String {
    format!(
        "[[credential]]\nid = \"{id}\"\nprovider = \"sfmc\"\nauth_url = \"{auth_url}\"\nclient_id = \"{client_id}\"\nclient_secret = {{ file = \"{}\" }}\n\n",
        secret_file.display()
    )
}

/// One `[[integration]]` block; `extra` is appended verbatim (e.g. `account_id = "1"`).
pub fn integration(name: &str, credential: &str, extra: &str) -> String {
    format!("[[integration]]\nname = \"{name}\"\ncredential = \"{credential}\"\n{extra}\n\n")
}

/// A one-client scenario; `client_extra` is appended to the client table.
pub fn one_client_scenario(client_id: &str, secret: &str, client_extra: &str) -> String {
    format!(
        "[sim]\nexpires_in = 1079\nhang = \"5s\"\n\n[[client]]\nid = \"pkg\"\nclient_id = \"{client_id}\"\nsecret = \"{secret}\"\nscopes = [\"data_extensions_read\", \"email_read\"]\nmids = [\"5100001\", \"5100002\"]\n{client_extra}\n"
    )
}

/// Run `bin args` (environment and directory from `setup`) and return its output and its own peak RSS in KiB.
/// A small python3 parent measures it (getrusage of its children): `ru_maxrss` of a child spawned straight from
/// the test process would include the test process's own high-water mark, which the kernel carries across exec.
pub fn run_with_peak_rss(
    bin: &str,
    args: &[&str],
    setup: impl FnOnce(&mut std::process::Command),
) -> (std::process::Output, u64) {
    const MEASURE: &str = "import resource, subprocess, sys\n\
        r = subprocess.run(sys.argv[1:])\n\
        sys.stderr.write('\\npeak_rss_kib=%d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n\
        sys.exit(r.returncode if r.returncode >= 0 else 128 - r.returncode)\n";
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-c", MEASURE, bin]).args(args);
    setup(&mut cmd);
    let out = cmd.output().expect("python3 runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let kib = stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("peak_rss_kib="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS reported: {stderr}"));
    (out, kib)
}
