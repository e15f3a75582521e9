//! The console in a bare pseudo-terminal where nothing answers terminal queries (like a slow SSH link that
//! never replies in time): it must still draw, quit cleanly on `q`, and end by itself when the pty goes away.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

const TITLES: [&str; 3] = ["Integrations", "Secret expiry", "401/403 log"];

/// `authwatch demo` under util-linux `script`, which gives it a pty of its own; we are the pty's only reader and
/// never answer a query. Returns the child and a channel of everything it writes.
fn demo_in_bare_pty(state: &Path, tmp: &Path) -> (Child, Receiver<Vec<u8>>) {
    let bin = env!("CARGO_BIN_EXE_authwatch");
    let mut child = Command::new("script")
        .args([
            "-qfec",
            &format!("stty cols 100 rows 30; exec {bin} demo"),
            "/dev/null",
        ])
        .env("XDG_STATE_HOME", state)
        .env("TMPDIR", tmp)
        .env("TERM", "xterm-256color")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("util-linux `script` is installed");
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Read until the three pane titles have been drawn; returns what was read.
fn wait_for_panes(rx: &Receiver<Vec<u8>>) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut screen = Vec::new();
    while !TITLES
        .iter()
        .all(|t| String::from_utf8_lossy(&screen).contains(t))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => screen.extend(chunk),
            Err(_) => panic!(
                "no frame within 20 s:\n{}",
                String::from_utf8_lossy(&screen)
            ),
        }
    }
    String::from_utf8_lossy(&screen).into_owned()
}

#[test]
fn draws_and_quits_in_a_pty_that_answers_no_queries() {
    let (state, tmp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut child, rx) = demo_in_bare_pty(state.path(), tmp.path());
    let screen = wait_for_panes(&rx);
    assert!(
        !screen.contains("cursor position could not be read"),
        "{screen}"
    );
    child.stdin.as_mut().unwrap().write_all(b"q").unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(child.wait());
    });
    let status = done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("quits on q")
        .unwrap();
    assert!(status.success(), "exit status {status}");
}

/// The SSH session drops: the pty's other end closes. The console must end by itself, cleanly (the demo's
/// temporary directory is removed on the way out, which an abort or a spin would skip).
#[test]
fn a_vanished_terminal_ends_the_console_cleanly() {
    let (state, tmp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut child, rx) = demo_in_bare_pty(state.path(), tmp.path());
    wait_for_panes(&rx);
    let demo_dirs = || std::fs::read_dir(tmp.path()).unwrap().count();
    assert_eq!(
        demo_dirs(),
        1,
        "the demo's temporary directory exists while it runs"
    );
    // Kill the terminal side: the pty master closes, as when sshd goes away.
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while demo_dirs() > 0 {
        assert!(
            Instant::now() < deadline,
            "the console did not clean up and exit after its terminal went away"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `ssh host authwatch demo` (no -t): a plain sentence and exit 3, not a developer error.
#[test]
fn console_without_a_terminal_says_so_and_exits_3() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_authwatch"))
        .arg("demo")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "authwatch needs a terminal (use `ssh -t`, or `authwatch check` for one sweep)"
    );
}
