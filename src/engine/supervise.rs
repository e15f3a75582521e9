//! Supervision of long-lived tasks: a panic is caught, logged with its cause, counted per task
//! (`authwatch_task_restarts_total{task}`), and the task goes on from its last state. Nothing an endpoint sends
//! may end monitoring.

use chrono::Utc;
use futures::FutureExt;
use std::any::Any;
use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;

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

#[cfg(test)]
mod tests {
    use super::*;

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
