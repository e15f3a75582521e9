//! Supervision of long-lived tasks: a panic is caught, logged with its cause, counted per task
//! (`authwatch_task_restarts_total{task}`), and the task goes on from its last state. Nothing an endpoint sends
//! may end monitoring.

use chrono::{DateTime, Utc};
use futures::FutureExt;
use std::any::Any;
use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

static RESTARTS: Mutex<BTreeMap<&'static str, u64>> = Mutex::new(BTreeMap::new());

/// The text of a panic payload (`panic!("...")` gives a `&str` or a `String`).
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_string()
    }
}

/// Count and log one restart of `task`.
pub fn record_restart(task: &'static str, cause: &str) {
    tracing::error!(
        task,
        "task panicked, restarting from its last state: {cause}"
    );
    let mut map = RESTARTS.lock().unwrap_or_else(|p| p.into_inner());
    let n = map.entry(task).or_insert(0);
    *n = n.saturating_add(1);
}

/// Restarts so far, per task name (for metrics).
pub fn restarts() -> Vec<(&'static str, u64)> {
    let map = RESTARTS.lock().unwrap_or_else(|p| p.into_inner());
    map.iter().map(|(k, v)| (*k, *v)).collect()
}

/// The result recorded for a probe that panicked: a failure of that integration, with the cause as detail.
pub fn crashed_probe(cause: &str) -> crate::model::ProbeResult {
    let at = chrono::SubsecRound::trunc_subsecs(Utc::now(), 3);
    let mut r = crate::model::ProbeResult::new(
        at,
        crate::model::Outcome::BadResponse,
        crate::model::Phase::Token,
    );
    r.error = Some("probe failed inside authwatch".to_string());
    r.detail = Some(crate::probe::classify::truncate(cause, 300));
    r
}

/// Run `fut`, turning a panic into `Err(cause)`.
pub async fn catch<F: Future>(fut: F) -> Result<F::Output, String> {
    AssertUnwindSafe(fut)
        .catch_unwind()
        .await
        .map_err(|p| panic_message(p.as_ref()))
}

/// The engine's own pulse: when its loop last completed a pass (due probes started, snapshot published), and
/// the probe interval it runs with. Written by the engine, read by `/healthz` and `/readyz`.
#[derive(Debug, Default)]
pub struct Liveness {
    /// Unix milliseconds; 0: never.
    last_sweep_ms: AtomicI64,
    interval_ms: AtomicU64,
}

impl Liveness {
    pub fn swept(&self, now: DateTime<Utc>, probe_interval: Duration) {
        self.last_sweep_ms
            .store(now.timestamp_millis(), Ordering::Relaxed);
        self.interval_ms.store(
            u64::try_from(probe_interval.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
    pub fn last_sweep(&self) -> Option<DateTime<Utc>> {
        match self.last_sweep_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => DateTime::from_timestamp_millis(ms),
        }
    }
    pub fn probe_interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms.load(Ordering::Relaxed))
    }
}

/// A pass older than this is "stale" even with a tiny probe interval (a loaded machine may lag a second or two).
const MIN_STALE: Duration = Duration::from_secs(5);

/// Is the engine healthy? `Err` carries the reason `/healthz` answers with its 503. Pure: `now` passed in.
pub fn engine_health(
    running: bool,
    last_sweep: Option<DateTime<Utc>>,
    probe_interval: Duration,
    now: DateTime<Utc>,
) -> Result<(), String> {
    if !running {
        return Err("engine not running".to_string());
    }
    let Some(last) = last_sweep else {
        return Err("engine has not completed a sweep yet".to_string());
    };
    let limit = probe_interval.saturating_mul(2).max(MIN_STALE);
    let age = (now - last).to_std().unwrap_or(Duration::ZERO);
    if age > limit {
        return Err(format!(
            "last engine sweep {}s ago (more than twice probe_interval, {}s)",
            age.as_secs(),
            limit.as_secs()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_health_table() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let min = Duration::from_secs(60);
        let ago = |s: i64| Some(now - chrono::TimeDelta::seconds(s));
        assert_eq!(engine_health(true, ago(10), 5 * min, now), Ok(()));
        assert_eq!(engine_health(true, ago(599), 5 * min, now), Ok(()));
        let stale = engine_health(true, ago(601), 5 * min, now).unwrap_err();
        assert!(stale.contains("601s ago"), "{stale}");
        assert_eq!(
            engine_health(false, ago(1), 5 * min, now).unwrap_err(),
            "engine not running"
        );
        assert!(engine_health(true, None, min, now).is_err());
        // A tiny interval does not turn a second's lag into an alarm.
        assert_eq!(
            engine_health(true, ago(2), Duration::from_millis(50), now),
            Ok(())
        );
        // A clock that went backwards is not stale.
        assert_eq!(engine_health(true, ago(-30), min, now), Ok(()));
    }

    #[tokio::test]
    async fn a_panic_becomes_its_cause_and_is_counted() {
        let before = restarts()
            .iter()
            .find(|(t, _)| *t == "unit-test")
            .map_or(0, |(_, n)| *n);
        let caught = catch(async { panic!("DateTime + TimeDelta overflowed") }).await;
        let cause: String = caught.map(|()| String::new()).unwrap_err();
        assert_eq!(cause, "DateTime + TimeDelta overflowed");
        record_restart("unit-test", &cause);
        let after = restarts()
            .iter()
            .find(|(t, _)| *t == "unit-test")
            .map_or(0, |(_, n)| *n);
        assert_eq!(after, before + 1);
        assert_eq!(catch(async { 7 }).await, Ok(7));
    }
}
