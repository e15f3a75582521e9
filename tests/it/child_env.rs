//! Child processes (secret commands) as users run them: `authwatch config check` resolves a `{ command = .. }`
//! reference; the command must not see other secrets' variables nor the master key, and a timeout kills its
//! whole process group.

use crate::common::*;
use std::path::Path;
use std::time::{Duration, Instant};

const MASTER: &str = "m4ster-KEY-never-in-a-child-0b1d";

fn credential(id: &str, secret: &str) -> String {
    format!(
        "[[credential]]\nid = \"{id}\"\nprovider = \"sfmc\"\nauth_url = \"https://mc123.auth.marketingcloudapis.com/\"\nclient_id = \"{id}-client\"\nclient_secret = {secret}\n\n"
    )
}

async fn config_check(config: &Path, dir: &Path) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_authwatch"))
        .args(["config", "check", "--config"])
        .arg(config)
        .env("XDG_STATE_HOME", dir)
        .env("XDG_CONFIG_HOME", dir)
        .env_remove("AUTHWATCH_CONFIG")
        .env("OTHER_SECRET", SENTINEL)
        .env("AUTHWATCH_MASTER_KEY", MASTER)
        .current_dir(dir)
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_secret_command_sees_neither_other_secrets_variables_nor_the_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("env.txt");
    let script = format!("env > '{}'; echo secret", dump.display());
    let text = format!(
        "{}{}",
        credential(
            "by-command",
            &format!("{{ command = [\"sh\", \"-c\", \"{script}\"] }}")
        ),
        credential("by-env", "{ env = \"OTHER_SECRET\" }"),
    );
    let config = write_config(dir.path(), &text);
    let out = config_check(&config, dir.path()).await;
    let env = std::fs::read_to_string(&dump).unwrap_or_else(|e| {
        panic!(
            "the command ran and dumped its environment ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(env.contains("PATH="), "the dump is the environment: {env}");
    for leak in ["OTHER_SECRET", SENTINEL, "AUTHWATCH_MASTER_KEY", MASTER] {
        assert!(!env.contains(leak), "the child saw {leak}");
    }
}

fn alive(pid: i32) -> bool {
    // kill(pid, 0) probes existence; a zombie still counts, so look at /proc state too.
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat.rsplit(')').next().unwrap_or("").trim_start();
    !state.starts_with('Z')
}

#[tokio::test]
async fn a_secret_command_that_times_out_is_killed_with_its_grandchildren() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild.pid");
    let script = format!("sleep 300 & echo $! > '{}'; sleep 300", pidfile.display());
    let text = format!(
        "[settings]\nsecret_command_timeout = \"1s\"\n\n{}",
        credential(
            "slow",
            &format!("{{ command = [\"sh\", \"-c\", \"{script}\"] }}")
        ),
    );
    let config = write_config(dir.path(), &text);
    let out = config_check(&config, dir.path()).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("did not finish")
            || stdout.contains("timed out")
            || stdout.contains("FAILED"),
        "the reference failed on timeout: {stdout}"
    );
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .expect("the grandchild was started")
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let survived = alive(pid);
    if survived {
        // Do not leave it behind for the rest of the run.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
    assert!(
        !survived,
        "grandchild {pid} outlived the timed-out secret command"
    );
}
