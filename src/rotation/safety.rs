//! What keeps a rotation from losing a secret across crashes and races: keyed fingerprints (to recognise the old
//! and the new secret without keeping either), the lease identity, steps in flight (a signal waits for them), and
//! fault-injection points for the crash tests (compiled into debug builds only).

use secrecy::{ExposeSecret, SecretString};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// HMAC-SHA256 of a secret under a rotation's key, hex.
pub fn fingerprint(key_hex: &str, secret: &SecretString) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key_hex.as_bytes());
    let tag = ring::hmac::sign(&key, secret.expose_secret().trim_end().as_bytes());
    hex::encode(tag.as_ref())
}

/// A fresh random fingerprint key (per rotation), hex.
pub fn new_key() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// This machine's name (lease holders on other hosts are judged by their heartbeat).
pub fn host() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Is a process of this host still running?
pub fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static IDLE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Held while a step runs effects: a signal to the process waits for it (see [`wait_for_steps`]).
pub struct StepInFlight(());

impl StepInFlight {
    pub fn start() -> StepInFlight {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        StepInFlight(())
    }
}

impl Drop for StepInFlight {
    fn drop(&mut self) {
        if IN_FLIGHT.fetch_sub(1, Ordering::SeqCst) == 1 {
            IDLE.notify_waiters();
        }
    }
}

pub fn steps_in_flight() -> usize {
    IN_FLIGHT.load(Ordering::SeqCst)
}

/// Before exiting on a signal: wait (at most `limit`) until every running step has journaled its result.
/// Returns whether they all finished.
pub async fn wait_for_steps(limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let idle = IDLE.notified();
        if steps_in_flight() == 0 {
            return true;
        }
        if tokio::time::timeout_at(deadline, idle).await.is_err() {
            return steps_in_flight() == 0;
        }
    }
}

/// How long a signal waits for a running step.
pub const SIGNAL_GRACE: Duration = Duration::from_secs(30);

/// A crash-test point: with `AUTHWATCH_FAULT=after:<name>` (debug builds only) the process kills itself with
/// SIGKILL here, as a power cut or `kill -9` would.
pub fn fault(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("AUTHWATCH_FAULT").is_ok_and(|v| v.strip_prefix("after:") == Some(name)) {
        // SAFETY: raising SIGKILL on ourselves; nothing after this runs.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}

/// Outside text (an update command's stderr) made safe for the audit trail: one line, printable, bounded, and
/// without any of the `secrets` in it.
pub fn sanitize(text: &str, secrets: &[&SecretString]) -> String {
    let mut t = text.to_string();
    for s in secrets {
        let s = s.expose_secret().trim_end();
        if !s.is_empty() {
            t = t.replace(s, "[REDACTED]");
        }
    }
    let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
    // Every other known secret redacted too; control and bidi characters become visible escapes.
    crate::sanitize::clean(&t).chars().take(300).collect()
}
