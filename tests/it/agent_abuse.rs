//! The agent under abuse: large unauthenticated bodies, floods of idle connections, slow headers. Memory is read
//! from the agent child's /proc/PID/status; `/healthz` must keep answering.

use crate::common::*;
use authwatch::agent::guard::Limits;
use authwatch::agent::{AgentOptions, RunningAgent};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_authwatch");
const CLIENT: &str = "cid-agent-abuse";
const OPERATOR: &str = "operator-token-abuse-4c1d9e";
const DEADLINE: Duration = Duration::from_secs(20);

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Agent {
    /// A field of /proc/PID/status in KiB (VmRSS, VmHWM).
    fn kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).unwrap();
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{field} in {status}"))
    }
}

/// `authwatch agent` as a child with at most `nofile` descriptors, answering /healthz.
fn start_agent(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    nofile: u64,
) -> (Agent, String) {
    let sim = rt.block_on(start_sim(&one_client_scenario(CLIENT, SENTINEL, "")));
    let secret = write_secret(dir, "secret", SENTINEL);
    let operator = write_secret(dir, "operator.token", OPERATOR);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = format!(
        "[settings]\nprobe_interval = \"1h\"\n\n[agent]\nlisten = \"127.0.0.1:{port}\"\n\n\
         [[agent.token]]\nname = \"oncall\"\nrole = \"operator\"\ntoken = {{ file = \"{}\" }}\n\n{}{}",
        operator.display(),
        sfmc_credential("pkg", &sim.base_url(), CLIENT, &secret),
        integration("crm-sync", "pkg", "")
    );
    let config = write_config(dir, &text);
    let mut cmd = Command::new(BIN);
    // Its own state directory: a database another authwatch build migrated must not stop it.
    cmd.args(["--config", config.to_str().unwrap(), "agent"])
        .env("XDG_STATE_HOME", dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only setrlimit, async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: nofile,
                rlim_max: nofile,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            Ok(())
        });
    }
    let agent = Agent(cmd.spawn().unwrap());
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + DEADLINE;
    while healthz_status(rt, &base) != Some(200) {
        assert!(Instant::now() < deadline, "agent did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::mem::forget(sim); // kept running for the test's lifetime
    (agent, base)
}

fn healthz_status(rt: &tokio::runtime::Runtime, base: &str) -> Option<u16> {
    rt.block_on(async {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16())
    })
}

#[test]
fn unauthenticated_large_bodies_are_refused_unread_and_memory_stays_bounded() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (agent, base) = start_agent(&rt, dir.path(), 4096);
    let before = agent.kib("VmRSS:");
    let body = axum::body::Bytes::from(vec![b'x'; 8 * 1024 * 1024]);
    let statuses: Vec<Option<u16>> = rt.block_on(async {
        let http = reqwest::Client::new();
        let sends = (0..32).map(|_| {
            http.post(format!("{base}/api/v1/ingest"))
                .body(body.clone())
                .send()
        });
        futures::future::join_all(sends)
            .await
            .into_iter()
            .map(|r| r.ok().map(|r| r.status().as_u16()))
            .collect()
    });
    // Refused (401), or cut off while still sending: never accepted.
    assert!(
        statuses.iter().all(|s| s.is_none_or(|s| s == 401)),
        "{statuses:?}"
    );
    let peak = agent.kib("VmHWM:");
    assert!(
        peak.saturating_sub(before) < 64 * 1024,
        "peak RSS grew by {} MiB for bodies nobody may send",
        peak.saturating_sub(before) / 1024
    );
    assert_eq!(healthz_status(&rt, &base), Some(200));
}

#[test]
fn two_thousand_idle_connections_do_not_keep_healthz_out_or_exhaust_descriptors() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Fewer descriptors than idle connections: without a limit, accept() fails and nothing answers.
    let (agent, base) = start_agent(&rt, dir.path(), 1024);
    let before = agent.kib("VmRSS:");
    let idle: Vec<TcpStream> = (0..2000)
        .filter_map(|_| {
            let addr = base.trim_start_matches("http://").parse().unwrap();
            TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()
        })
        .collect();
    assert!(idle.len() >= 1900, "only {} connections opened", idle.len());
    std::thread::sleep(Duration::from_millis(500)); // let the agent accept what it will
    assert_eq!(
        healthz_status(&rt, &base),
        Some(200),
        "/healthz behind 2,000 idle connections"
    );
    let grown = agent.kib("VmRSS:").saturating_sub(before);
    assert!(grown < 64 * 1024, "RSS grew by {} MiB", grown / 1024);
    drop(idle);
}

/// In-process with short limits: idle connections and trickled headers are closed; at the limit the oldest
/// unanswered connection makes room, so /healthz still answers.
#[tokio::test]
async fn idle_and_slow_header_connections_are_closed_and_the_limit_makes_room() {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", SENTINEL);
    let text = "[settings]\nprobe_interval = \"1h\"\n\n[agent]\nlisten = \"127.0.0.1:0\"\n\n"
        .to_string()
        + &sfmc_credential("pkg", &sim.base_url(), CLIENT, &secret)
        + &integration("crm-sync", "pkg", "");
    let agent = RunningAgent::start(
        load_config(dir.path(), &text),
        AgentOptions {
            limits: Limits {
                max_connections: 8,
                header_timeout: Duration::from_millis(800),
                idle_timeout: Duration::from_secs(2),
            },
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let addr = agent.addr;
    let closed_within = |mut s: TcpStream, trickle: bool| {
        std::thread::spawn(move || {
            let started = Instant::now();
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let mut buf = [0u8; 64];
            loop {
                if trickle {
                    // One header byte at a time: progress, but never a whole request head.
                    if s.write_all(b"X").is_err() {
                        return started.elapsed();
                    }
                }
                match s.read(&mut buf) {
                    Ok(0) => return started.elapsed(),
                    Err(e)
                        if e.kind() != std::io::ErrorKind::WouldBlock
                            && e.kind() != std::io::ErrorKind::TimedOut =>
                    {
                        return started.elapsed();
                    }
                    _ => {}
                }
                if started.elapsed() > Duration::from_secs(15) {
                    return started.elapsed();
                }
            }
        })
    };
    let idle = closed_within(TcpStream::connect(addr).unwrap(), false);
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let slow = closed_within(slow, true);
    let idle = tokio::task::spawn_blocking(move || idle.join().unwrap())
        .await
        .unwrap();
    let slow = tokio::task::spawn_blocking(move || slow.join().unwrap())
        .await
        .unwrap();
    assert!(
        idle < Duration::from_secs(10),
        "idle connection open for {idle:?}"
    );
    assert!(
        slow < Duration::from_secs(10),
        "trickling connection open for {slow:?}"
    );

    // At the limit: eight silent connections, and /healthz still answers.
    let _silent: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let r = http
        .get(format!("{}/healthz", agent.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    agent.stop().await;
}

/// A TCP connection to `addr` whose receive buffer is a few KiB, so a peer that writes and is never read
/// blocks quickly (as a viewer on a slow or stuck link does).
fn small_window_connect(addr: std::net::SocketAddr) -> TcpStream {
    use std::os::fd::FromRawFd;
    let std::net::SocketAddr::V4(v4) = addr else {
        panic!("IPv4 loopback expected: {addr}")
    };
    // SAFETY: plain socket calls on a descriptor we own; on success it is handed to TcpStream, which closes it.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let size: libc::c_int = 4096;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*v4.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let r = libc::connect(
            fd,
            (&sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(r, 0, "connect: {}", std::io::Error::last_os_error());
        TcpStream::from_raw_fd(fd)
    }
}

/// A viewer of `/api/v1/events` (engine events included) that sends its request and never reads.
fn stalled_viewer(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = small_window_connect(addr);
    s.write_all(
        format!(
            "GET /api/v1/events?probes=true HTTP/1.1\r\nHost: agent\r\nAuthorization: Bearer {OPERATOR}\r\nAccept: text/event-stream\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    s
}

/// Connections the agent holds on its port (ESTABLISHED, or CLOSE_WAIT: the peer left, the agent has not closed
/// its side yet), from /proc/net/tcp. Outbound connections (to the simulator) are not counted.
fn agent_connections(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let local_port = f
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            local_port == Some(port) && matches!(f.get(3), Some(&"01") | Some(&"08"))
        })
        .count()
}

/// 200 viewers that never read, on an agent with 60 integrations probed every second (a snapshot and deltas
/// every sweep, engine events for each probe): `/healthz` answers while they stall, the agent's memory stays
/// bounded, and when they leave their connections and buffers go (descriptors back, RSS near where it was).
#[test]
fn two_hundred_stalled_sse_viewers_are_bounded_and_freed_when_they_leave() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sim = rt.block_on(start_sim(&one_client_scenario(CLIENT, SENTINEL, "")));
    let secret = write_secret(dir.path(), "secret", SENTINEL);
    let operator = write_secret(dir.path(), "operator.token", OPERATOR);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut text = format!(
        "[settings]\nprobe_interval = \"1s\"\n\n[agent]\nlisten = \"127.0.0.1:{port}\"\n\n\
         [[agent.token]]\nname = \"oncall\"\nrole = \"operator\"\ntoken = {{ file = \"{}\" }}\n\n{}",
        operator.display(),
        sfmc_credential("pkg", &sim.base_url(), CLIENT, &secret),
    );
    for i in 0..60 {
        text += &integration(&format!("integration-{i:02}-with-a-longer-name"), "pkg", "");
    }
    let config = write_config(dir.path(), &text);
    let agent = Agent(
        Command::new(BIN)
            .args(["--config", config.to_str().unwrap(), "agent"])
            .env("XDG_STATE_HOME", dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + DEADLINE;
    while healthz_status(&rt, &base) != Some(200) {
        assert!(Instant::now() < deadline, "agent did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    let rss_before = agent.kib("VmRSS:");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let viewers: Vec<TcpStream> = (0..200).map(|_| stalled_viewer(addr)).collect();
    // Every viewer is being served (one descriptor each on the agent's side).
    let deadline = Instant::now() + DEADLINE;
    while agent_connections(port) < 200 {
        assert!(
            Instant::now() < deadline,
            "{} of 200 viewers accepted",
            agent_connections(port)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Several sweeps go by while nobody reads: each one is a snapshot/delta and 60 probe events per viewer.
    let version = |rt: &tokio::runtime::Runtime| {
        rt.block_on(async {
            let r = reqwest::Client::new()
                .get(format!("{base}/api/v1/state"))
                .bearer_auth(OPERATOR)
                .send()
                .await
                .ok()?;
            r.json::<serde_json::Value>().await.ok()?["version"].as_u64()
        })
    };
    let start = version(&rt).expect("the state answers");
    let deadline = Instant::now() + Duration::from_secs(60);
    while version(&rt).is_none_or(|v| v < start + 5) {
        assert!(Instant::now() < deadline, "the engine did not go on");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        healthz_status(&rt, &base),
        Some(200),
        "/healthz behind 200 stalled viewers"
    );
    let grown = agent.kib("VmHWM:").saturating_sub(rss_before);
    assert!(
        grown < 64 * 1024,
        "peak RSS grew by {} MiB with 200 stalled viewers",
        grown / 1024
    );

    // They leave: every connection is closed on the agent's side, and their buffers with it.
    drop(viewers);
    let deadline = Instant::now() + DEADLINE;
    while agent_connections(port) > 0 {
        assert!(
            Instant::now() < deadline,
            "{} viewer connections still held after the viewers left",
            agent_connections(port)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = agent.kib("VmRSS:").saturating_sub(rss_before);
    eprintln!(
        "agent RSS: {rss_before} KiB before, peak +{grown} KiB with 200 stalled viewers, +{left} KiB after they left"
    );
    assert!(
        left < 32 * 1024,
        "RSS still {} MiB above the start after the viewers left",
        left / 1024
    );
    assert_eq!(healthz_status(&rt, &base), Some(200));
    std::mem::forget(sim);
}
