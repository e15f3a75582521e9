//! systemd's notify protocol (`Type=notify`, via the `sd-notify` crate): READY=1 once the configuration, the
//! database and the first sweep are in; STATUS= with the counts; RELOADING=1 (with MONOTONIC_USEC) / READY=1
//! around a SIGHUP reload; WATCHDOG=1 every half `WatchdogSec` while the engine answers and its sweeps are fresh
//! (a stuck engine gets no ping, so systemd restarts it); STOPPING=1. Without NOTIFY_SOCKET every call is a no-op.

use crate::engine::{Command, EngineHandle, Snapshot};
use sd_notify::NotifyState;
use std::time::Duration;
use tokio::sync::mpsc;

/// Send states to the service manager; a failure is logged, never fatal.
pub fn notify(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("cannot notify systemd: {e}");
    }
}

/// `STATUS=` text: what `systemctl status authwatch` shows.
pub fn status_line(s: &Snapshot) -> String {
    let m = &s.summary;
    format!(
        "{} integrations: {} ok, {} warn, {} fail, {} unknown",
        s.integrations.len(),
        m.ok,
        m.warn,
        m.fail,
        m.unknown
    )
}

/// READY=1 with a status line.
pub fn ready(s: &Snapshot) {
    let status = status_line(s);
    notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
}

/// RELOADING=1 with the monotonic time systemd requires alongside it.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => notify(&[NotifyState::Reloading, now]),
        Err(e) => tracing::warn!("cannot read the monotonic clock for RELOADING=1: {e}"),
    }
}

pub fn stopping() {
    notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// The watchdog interval systemd asks for (WATCHDOG_USEC), if any.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
}

/// Every `period`: ask the engine's loop to answer within `period`; call `ping` only when it did and `live()`
/// holds. Runs until the engine is gone for good (then systemd's watchdog fires, as it should).
pub async fn watchdog(
    engine: EngineHandle,
    live: impl Fn() -> bool,
    period: Duration,
    mut ping: impl FnMut(),
) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (tx, mut rx) = mpsc::channel(1);
        // A full command queue is a stuck engine too.
        if engine.try_send(Command::Ping(tx)).is_err() {
            if !engine.is_running() {
                tracing::error!("the engine has stopped: no more watchdog pings");
                return;
            }
            tracing::warn!("the engine's command queue is full: withholding WATCHDOG=1");
            continue;
        }
        match tokio::time::timeout(period, rx.recv()).await {
            Ok(Some(())) if live() => ping(),
            Ok(Some(())) => tracing::warn!("probe sweeps are stale: withholding WATCHDOG=1"),
            _ => tracing::warn!(
                "the engine did not answer within {period:?}: withholding WATCHDOG=1"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::watch;

    /// A handle whose commands go to `commands` (nobody reads them unless the test does).
    fn handle() -> (EngineHandle, mpsc::Receiver<Command>) {
        let (_snap_tx, snap_rx) = watch::channel(Arc::new(Snapshot::empty("t")));
        let (cmd_tx, cmd_rx) = mpsc::channel(4);
        (EngineHandle::from_channels(snap_rx, cmd_tx), cmd_rx)
    }

    async fn pings_in(engine: EngineHandle, live: bool, periods: u32) -> usize {
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let period = Duration::from_secs(10);
        let _ = tokio::time::timeout(
            period * periods,
            watchdog(
                engine,
                move || live,
                period,
                move || {
                    c.fetch_add(1, Ordering::SeqCst);
                },
            ),
        )
        .await;
        count.load(Ordering::SeqCst)
    }

    #[tokio::test(start_paused = true)]
    async fn pings_only_while_the_engine_answers_and_is_live() {
        // An engine loop that answers pings.
        let (engine, mut rx) = handle();
        tokio::spawn(async move {
            while let Some(cmd) = rx.recv().await {
                if let Command::Ping(reply) = cmd {
                    let _ = reply.try_send(());
                }
            }
        });
        assert!(pings_in(engine.clone(), true, 4).await >= 3);
        assert_eq!(pings_in(engine, false, 4).await, 0, "stale sweeps: no ping");

        // A stuck loop: commands are queued but never answered.
        let (stuck, _rx) = handle();
        assert_eq!(pings_in(stuck, true, 4).await, 0);

        // A stopped engine: the watchdog ends without pinging.
        let (gone, rx) = handle();
        drop(rx);
        assert_eq!(pings_in(gone, true, 4).await, 0);
    }
}
