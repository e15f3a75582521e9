//! End to end: the real binary (`authwatch demo`) in a real terminal (tmux), driven by keys and signals.
//!
//! Each test runs its own tmux server (`-L` socket name), so tests never collide with each other or with a
//! developer's tmux. tmux is required: CI installs it; locally the tests fail with a clear message without it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_authwatch");
const PROMPT: &str = "aw-shell$";

struct Tmux {
    socket: String,
    dir: tempfile::TempDir,
}

impl Tmux {
    fn new(test: &str) -> Tmux {
        match Command::new("tmux").arg("-V").output() {
            Ok(o) if o.status.success() => {}
            _ => panic!(
                "tmux is required for the console end-to-end tests (apt-get install tmux / brew install tmux)"
            ),
        }
        Tmux {
            socket: format!("authwatch-e2e-{}-{test}", std::process::id()),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn cmd(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("running tmux")
    }

    fn ok(&self, args: &[&str]) {
        let out = self.cmd(args);
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A detached 100x30 session running `command` with a predictable, isolated environment.
    fn start(&self, command: &str) {
        let home = self.dir.path().display().to_string();
        let env = [
            format!("AW_BIN={BIN}"),
            format!("AW_OUT={}", self.out_file().display()),
            format!("HOME={home}"),
            format!("XDG_CONFIG_HOME={home}/config"),
            format!("XDG_STATE_HOME={home}/state"),
            format!("XDG_DATA_HOME={home}/data"),
            "TERM=xterm-256color".to_string(),
        ];
        let mut args: Vec<&str> = vec!["new-session", "-d", "-s", "aw", "-x", "100", "-y", "30"];
        for e in &env {
            args.push("-e");
            args.push(e);
        }
        args.push(command);
        self.ok(&args);
        self.ok(&["set-option", "-g", "remain-on-exit", "on"]);
    }

    fn out_file(&self) -> PathBuf {
        self.dir.path().join("exit-code")
    }

    fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "aw"];
        args.extend_from_slice(keys);
        self.ok(&args);
    }

    fn capture(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "aw"]).stdout).into_owned()
    }

    fn display(&self, format: &str) -> String {
        let out = self.cmd(&["display-message", "-p", "-t", "aw", format]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Poll the screen until `pred` holds; on timeout fail with what the screen showed.
    fn wait_screen(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.capture();
            if pred(&screen) {
                return screen;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; the screen shows:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

fn wait_file(path: &Path, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(s) = std::fs::read_to_string(path)
            && s.ends_with('\n')
        {
            return Some(s.trim().to_string());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

fn has_panes(s: &str) -> bool {
    s.contains("Integrations") && s.contains("Secret expiry") && s.contains("401/403 log")
}

/// Is `pid` still running (a zombie counts as ended)?
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // "pid (comm) S ..." -- the state follows the last ')'.
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

#[test]
fn demo_shows_the_panes_help_and_quits_cleanly() {
    let t = Tmux::new("quit");
    t.start("sh");
    t.wait_screen("a shell", Duration::from_secs(10), |s| !s.trim().is_empty());
    // Shells pick their own default prompt (root's is "# "): set a recognisable one.
    t.send(&[&format!("PS1='{PROMPT} '"), "Enter"]);
    t.wait_screen("the shell prompt", Duration::from_secs(10), |s| {
        s.contains(PROMPT)
    });
    t.send(&[r#""$AW_BIN" demo; echo "exit=$?" > "$AW_OUT""#, "Enter"]);

    let screen = t.wait_screen("the three panes", Duration::from_secs(30), has_panes);
    assert!(screen.contains("authwatch"), "{screen}");

    t.send(&["?"]);
    // tmux may capture between two reads of one frame: wait for the whole overlay, its last line included.
    let screen = t.wait_screen("the help overlay", Duration::from_secs(10), |s| {
        s.contains("Help") && s.contains("show / hide this help") && s.contains("Log file")
    });
    assert!(screen.contains("quit"), "{screen}");
    t.send(&["Escape"]);
    t.wait_screen("help to close", Duration::from_secs(10), |s| {
        !s.contains("show / hide this help") && has_panes(s)
    });

    t.send(&["q"]);
    let code = wait_file(&t.out_file(), Duration::from_secs(15));
    assert_eq!(
        code.as_deref(),
        Some("exit=0"),
        "authwatch did not exit 0 after q; the screen shows:\n{}",
        t.capture()
    );

    // The terminal is restored: the primary screen with the shell is back, and the tty is in cooked mode again
    // (in raw mode the shell would never see the Enter that ends this line).
    t.send(&["echo restored-$((20+22))", "Enter"]);
    let screen = t.wait_screen("the shell to run a command", Duration::from_secs(10), |s| {
        s.contains("restored-42")
    });
    assert!(
        !has_panes(&screen),
        "the alternate screen is still showing:\n{screen}"
    );
    assert!(screen.contains(PROMPT), "{screen}");
}

/// `a` on the top row once it is failing: the engine records the acknowledgement and the row says ACK.
#[test]
fn demo_acknowledges_a_failing_integration() {
    let t = Tmux::new("ack");
    t.start(r#"exec "$AW_BIN" demo"#);
    t.wait_screen("the three panes", Duration::from_secs(30), has_panes);
    // Failing first: wait until the first row (under the header row) is a FAIL.
    let first_row = |s: &str| {
        s.lines()
            .skip_while(|l| !l.contains("STATUS"))
            .nth(1)
            .unwrap_or("")
            .to_string()
    };
    let screen = t.wait_screen(
        "a failing integration on top",
        Duration::from_secs(60),
        |s| first_row(s).contains("FAIL"),
    );
    let row = first_row(&screen);
    let name = row
        .split_whitespace()
        .nth(2)
        .expect("a name after the status")
        .trim_end_matches('…')
        .to_string();
    assert!(!row.contains(" ACK "), "acknowledged before a: {row}");
    t.send(&["a"]);
    // Rows move as statuses change: find the acknowledged one by name.
    t.wait_screen("the acknowledgement", Duration::from_secs(15), |s| {
        s.lines()
            .any(|l| l.contains(&format!(" {name}")) && l.contains(" ACK "))
    });
    t.send(&["q"]);
}

/// The whole rotation from the wizard in the demo, the simulator standing in for Setup: r, generate, wait for
/// the staging delay, verify, promote, activate (typing the credential id).
#[test]
fn demo_rotates_a_secret_from_the_wizard() {
    let t = Tmux::new("rotate");
    t.start(r#"exec "$AW_BIN" demo"#);
    t.wait_screen("the three panes", Duration::from_secs(30), has_panes);
    t.send(&["2", "r"]);
    // "secret read from" comes with the rotation's state (before it, the wizard is still loading).
    let screen = t.wait_screen("the wizard", Duration::from_secs(15), |s| {
        s.contains("state: idle") && s.contains("secret read from")
    });
    let credential = screen
        .split("Rotate secret: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the credential in the title")
        .to_string();
    t.send(&["g"]);
    t.wait_screen("the staged secret", Duration::from_secs(15), |s| {
        s.contains("state: staged") && s.contains("SFMC accepts it from")
    });
    // The demo's staging delay is 20s; the line stops counting down once SFMC accepts the secret.
    t.wait_screen(
        "the end of the staging delay",
        Duration::from_secs(60),
        |s| {
            s.lines()
                .any(|l| l.contains("state: staged") && !l.contains("(in "))
        },
    );
    t.send(&["v"]);
    t.wait_screen("verified", Duration::from_secs(30), |s| {
        s.contains("state: verified")
    });
    t.send(&["p"]);
    t.wait_screen("promoted", Duration::from_secs(30), |s| {
        s.contains("state: promoted")
    });
    t.send(&["A"]);
    t.wait_screen("the confirmation prompt", Duration::from_secs(15), |s| {
        s.contains("to confirm")
    });
    t.ok(&["send-keys", "-t", "aw", "-l", &credential]);
    t.send(&["Enter"]);
    let screen = t.wait_screen("completed", Duration::from_secs(30), |s| {
        s.contains("state: completed")
    });
    assert!(screen.contains("old secret refused"), "{screen}");
    t.send(&["Escape", "q"]);
}

#[test]
fn demo_exits_on_sighup_and_when_the_terminal_goes_away() {
    // 1. SIGHUP to the process: it exits (and does not hang or panic).
    let t = Tmux::new("hup");
    t.start(r#"exec "$AW_BIN" demo"#);
    t.wait_screen("the three panes", Duration::from_secs(30), has_panes);
    let pid: u32 = t.display("#{pane_pid}").parse().expect("pane pid");
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !alive(pid),
        "authwatch (pid {pid}) still running 10s after SIGHUP"
    );
    // remain-on-exit keeps the pane so we can read how it ended: a clean exit, or death by the signal itself,
    // but never a panic (101).
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut dead = t.display("#{pane_dead} #{pane_dead_status} #{pane_dead_signal}");
    while !dead.starts_with('1') && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        dead = t.display("#{pane_dead} #{pane_dead_status} #{pane_dead_signal}");
    }
    assert!(dead.starts_with('1'), "pane not dead: {dead}");
    assert!(
        !dead.contains(" 101"),
        "authwatch panicked on SIGHUP: {dead}"
    );
    drop(t);

    // 2. The terminal goes away (what a dropped SSH session looks like): kill the whole session.
    let t = Tmux::new("gone");
    t.start(r#"exec "$AW_BIN" demo"#);
    t.wait_screen("the three panes", Duration::from_secs(30), has_panes);
    let pid: u32 = t.display("#{pane_pid}").parse().expect("pane pid");
    t.ok(&["kill-server"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !alive(pid),
        "authwatch (pid {pid}) kept running after its terminal went away"
    );
}

/// The console ends on SIGINT, SIGTERM and SIGHUP with 128 + the signal (130, 143, 129), as a shell reports a
/// command a signal ended: scripts and supervisors can tell a signal from a quit (0).
#[test]
fn console_exits_130_143_129_after_sigint_sigterm_sighup() {
    for (signal, want) in [("INT", 130), ("TERM", 143), ("HUP", 129)] {
        let t = Tmux::new(&format!("sig{signal}"));
        // The shell records the exit status: tmux's own #{pane_dead_status} is empty in some versions (3.3a).
        t.start(r#"sh -c '"$AW_BIN" demo; echo "exit=$?" > "$AW_OUT"'"#);
        t.wait_screen("the three panes", Duration::from_secs(30), has_panes);
        let shell: u32 = t.display("#{pane_pid}").parse().expect("pane pid");
        let console = children_of(shell);
        assert_eq!(
            console.len(),
            1,
            "one console process under the pane's shell"
        );
        let console = console[0].to_string();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &console])
            .status()
            .unwrap();
        assert!(status.success());
        let code = wait_file(&t.out_file(), Duration::from_secs(15));
        assert_eq!(
            code.as_deref(),
            Some(format!("exit={want}").as_str()),
            "after SIG{signal}; the screen shows:\n{}",
            t.capture()
        );
    }
}

/// The pids whose parent is `parent` (from /proc: no procps needed).
fn children_of(parent: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces, so read after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) {
            pids.push(pid);
        }
    }
    pids
}

/// A child process killed when the test ends, however it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str]) -> Child {
    Child(
        Command::new(BIN)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("authwatch starts"),
    )
}

/// Wait until something accepts connections on `port`.
fn wait_listening(port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The war-room set-up in a real terminal: the simulator, an agent with a viewer token, and
/// `authwatch --connect` on it. The viewer token makes the console read-only by itself; stopping the agent marks
/// the data stale (kept on screen), and the console reconnects when the agent is back.
#[test]
fn connect_console_follows_an_agent_goes_stale_and_reconnects() {
    let t = Tmux::new("connect");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let _sim = spawn(&[
        "simulate",
        "--listen",
        "127.0.0.1:0",
        "--print-config",
        d.to_str().unwrap(),
    ]);
    let config = d.join("authwatch.toml");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !config.exists() {
        assert!(Instant::now() < deadline, "the simulator wrote no config");
        std::thread::sleep(Duration::from_millis(50));
    }
    let token = d.join("viewer.token");
    std::fs::write(&token, "wall-screen-token-0123456789\n").unwrap();
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[[agent.token]]\nname = \"wall\"\nrole = \"viewer\"\ntoken = {{ file = \"{}\" }}\n",
        token.display()
    ));
    std::fs::write(&config, text).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let db = d.join("agent.db");
    let agent_args = [
        "--config",
        config.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "agent",
        "--listen",
        &listen,
    ];
    let agent = spawn(&agent_args);
    wait_listening(port, Duration::from_secs(20));

    t.start(&format!(
        r#"exec "$AW_BIN" --connect http://{listen} --token-file {}"#,
        token.display()
    ));
    let screen = t.wait_screen("the agent's state", Duration::from_secs(30), |s| {
        has_panes(s) && s.contains("READ-ONLY") && s.contains("OK")
    });
    assert!(!screen.contains("p probe"), "a viewer cannot act: {screen}");

    drop(agent);
    let screen = t.wait_screen("the stale notice", Duration::from_secs(30), |s| {
        s.contains("NO AGENT since")
    });
    assert!(
        has_panes(&screen),
        "the last state stays on screen: {screen}"
    );

    let _agent = spawn(&agent_args);
    t.wait_screen("the reconnection", Duration::from_secs(60), |s| {
        has_panes(s) && !s.contains("NO AGENT")
    });
    t.send(&["q"]);
}

/// `authwatch demo --wall --no-color` in a real terminal: the wall's counts, what is not OK and the expiry strip
/// are on screen, the raw bytes the program wrote to the pty (tmux pipe-pane) hold no colour sequence at all
/// (not even the resets), and q quits with 0.
#[test]
fn demo_wall_in_a_real_terminal_without_colour() {
    let t = Tmux::new("wall");
    t.start("sh");
    t.wait_screen("a shell", Duration::from_secs(10), |s| !s.trim().is_empty());
    t.send(&[&format!("PS1='{PROMPT} '"), "Enter"]);
    t.wait_screen("the shell prompt", Duration::from_secs(10), |s| {
        s.contains(PROMPT)
    });
    let raw = t.dir.path().join("raw-output");
    t.ok(&[
        "pipe-pane",
        "-o",
        "-t",
        "aw",
        &format!("cat >> '{}'", raw.display()),
    ]);
    t.send(&[
        r#"unset NO_COLOR; "$AW_BIN" demo --wall --no-color; echo "exit=$?" > "$AW_OUT""#,
        "Enter",
    ]);
    let screen = t.wait_screen(
        "the wall with a failing integration",
        Duration::from_secs(60),
        |s| {
            s.contains("WALL (read-only)")
                && s.contains("Secret expiry: next 30 days")
                && s.contains("✖ FAIL")
                && s.lines()
                    .any(|l| l.contains("Not OK:") && !l.contains("Not OK: 0"))
        },
    );
    // Status reads as words and symbols; no cursor row: keys other than q change nothing.
    assert!(screen.contains("q  quit"), "{screen}");
    t.send(&["j"]);
    t.send(&["q"]);
    let code = wait_file(&t.out_file(), Duration::from_secs(15));
    assert_eq!(
        code.as_deref(),
        Some("exit=0"),
        "the wall did not exit 0 after q; the screen shows:\n{}",
        t.capture()
    );
    // pipe-pane copies asynchronously: wait until the shell's line after the wall has come through too.
    let deadline = Instant::now() + Duration::from_secs(10);
    let bytes = loop {
        let bytes = std::fs::read(&raw).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        if text.contains("WALL") && text.contains("(read-only)") && text.contains("Not OK:") {
            break bytes;
        }
        assert!(
            Instant::now() < deadline,
            "the pipe saw no frame: {:?}",
            text.chars().take(2000).collect::<String>()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        !authwatch::tui::nocolor::has_colour_sequence(&bytes),
        "colour sequences on the wire with --no-color"
    );
}

/// A fake agent whose event stream sends one event that never ends. The console (`--connect`, the real binary
/// in a real terminal) refuses the event at its size limit, says so in its log, shows the agent as lost and
/// connects again; its memory stays bounded (peak RSS from /proc) however long the event goes on.
#[test]
fn connect_console_drops_an_endless_event_and_reconnects_with_bounded_memory() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let streams = Arc::new(AtomicUsize::new(0));
    let counted = streams.clone();
    let addr = rt.block_on(async move {
        let app = axum::Router::new()
            .route(
                "/api/v1/whoami",
                axum::routing::get(|| async {
                    axum::Json(serde_json::json!({"name": "viewer", "role": "viewer"}))
                }),
            )
            .route(
                "/api/v1/events",
                axum::routing::get(move || {
                    counted.fetch_add(1, Ordering::SeqCst);
                    async {
                        use futures::StreamExt;
                        let head = futures::stream::once(async {
                            axum::body::Bytes::from_static(b"event: snapshot\ndata: {\"pad\":\"")
                        });
                        let endless =
                            futures::stream::repeat(axum::body::Bytes::from(vec![b'x'; 64 * 1024]));
                        let body = axum::body::Body::from_stream(
                            head.chain(endless).map(Ok::<_, std::convert::Infallible>),
                        );
                        ([("content-type", "text/event-stream")], body)
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    });
    let t = Tmux::new("endless-event");
    t.start(&format!(r#"exec "$AW_BIN" --connect http://{addr}"#));
    let pid: u32 = t.display("#{pane_pid}").parse().expect("pane pid");
    // Three streams: the first, and two reconnections after refused events.
    let deadline = Instant::now() + Duration::from_secs(60);
    while streams.load(Ordering::SeqCst) < 3 {
        assert!(
            Instant::now() < deadline,
            "{} event streams opened; the screen shows:\n{}",
            streams.load(Ordering::SeqCst),
            t.capture()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    t.wait_screen("the agent shown as lost", Duration::from_secs(15), |s| {
        s.contains("NO AGENT since")
    });
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("console running");
    let peak_kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .expect("VmHWM");
    assert!(
        peak_kib < 80 * 1024,
        "console peaked at {} MiB on an endless event",
        peak_kib / 1024
    );
    let logs = t.dir.path().join("state/authwatch");
    let text: String = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect();
    assert!(
        text.contains("an event from the agent is larger than 8 MiB; reconnecting"),
        "{text}"
    );
    t.send(&["q"]);
}
