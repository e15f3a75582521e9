//! What `/readyz`, `/healthz` and systemd's READY=1 / WATCHDOG=1 decide on: one pure function over the agent's
//! state with `now` passed in. Liveness is the subset a restart can fix (engine running, sweeps not stale);
//! readiness adds the database and the first sweep since start.

use crate::engine::Snapshot;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::time::Duration;

/// Jitter stretches an interval by up to 10%; stale means later than twice the interval plus that.
const STALE_FACTOR: f64 = 2.2;

pub struct Inputs<'a> {
    pub snapshot: &'a Snapshot,
    /// The agent (engine) start: probes before it are restored history, not this run's sweeps.
    pub started_at: DateTime<Utc>,
    pub probe_interval: Duration,
    /// The engine still takes commands (its loop has not ended).
    pub engine_running: bool,
    /// A history database is configured (None: in memory only).
    pub db_configured: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// Alive: the engine runs and its sweeps are not stale (`/healthz`, the systemd watchdog).
    pub live: bool,
    /// Ready: alive, database open, and a sweep completed since start within twice probe_interval (`/readyz`).
    pub ready: bool,
    pub checks: Vec<Check>,
}

pub fn evaluate(i: &Inputs<'_>, now: DateTime<Utc>) -> Readiness {
    let s = i.snapshot;
    // try_from: mul_f64 panics on overflow, and the interval comes from the configuration.
    let stale =
        std::time::Duration::try_from_secs_f64(i.probe_interval.as_secs_f64() * STALE_FACTOR)
            .unwrap_or(std::time::Duration::MAX);
    let limit = crate::duration::to_chrono(stale);
    // Paused integrations are not probed on schedule: they cannot hold a sweep back.
    let active: Vec<_> = s.integrations.iter().filter(|v| !v.paused).collect();
    let unswept = active
        .iter()
        .filter(|v| v.last_probe().is_none_or(|p| p.at < i.started_at))
        .count();
    let newest = active
        .iter()
        .filter_map(|v| v.last_probe().map(|p| p.at))
        .filter(|at| *at >= i.started_at)
        .max();
    let age = |t: DateTime<Utc>| now.signed_duration_since(t);

    let engine = Check {
        name: "engine",
        ok: i.engine_running,
        detail: if i.engine_running {
            "running".into()
        } else {
            "stopped".into()
        },
    };
    let config = Check {
        name: "config",
        ok: true,
        detail: format!(
            "{} integrations from {}",
            s.integrations.len(),
            s.config_name
        ),
    };
    let database = match (&s.history_error, i.db_configured) {
        (Some(e), _) => Check {
            name: "database",
            ok: false,
            detail: e.clone(),
        },
        (None, true) => Check {
            name: "database",
            ok: true,
            detail: "open".into(),
        },
        (None, false) => Check {
            name: "database",
            ok: true,
            detail: "none configured (history in memory)".into(),
        },
    };
    // Stale: no result since start although the start was long enough ago, or the newest result too old.
    let (sweep_live, sweep_ready, detail) = if active.is_empty() {
        (
            true,
            true,
            "nothing to probe (none configured or all paused)".to_string(),
        )
    } else {
        let since = newest.unwrap_or(i.started_at);
        let stale = age(since) > limit;
        let what = match newest {
            Some(t) => format!("newest probe {}s ago", age(t).num_seconds().max(0)),
            None => "no probe since start".into(),
        };
        let first = if unswept > 0 {
            format!(", first sweep pending for {unswept} of {}", active.len())
        } else {
            String::new()
        };
        let limit_s = limit.num_seconds();
        (
            !stale,
            !stale && unswept == 0,
            format!("{what}{first} (stale after {limit_s}s)"),
        )
    };
    let sweep = Check {
        name: "sweep",
        ok: sweep_ready,
        detail,
    };
    let live = engine.ok && sweep_live;
    let ready = live && database.ok && sweep.ok;
    Readiness {
        live,
        ready,
        checks: vec![config, database, engine, sweep],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{IntegrationView, Snapshot};
    use crate::model::{Outcome, Phase, ProbeResult};
    use std::sync::Arc;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn view(probes: &[i64], paused: bool) -> Arc<IntegrationView> {
        let mut v: IntegrationView = serde_json::from_value(serde_json::json!({
            "name": "crm", "credential": "pkg", "account_id": null, "business_unit": null, "team": null,
            "environment": null, "processes": [], "required_scopes": [],
            "health": {"status": "ok", "reasons": []}, "history": [], "consecutive_auth_failures": 0,
            "failing_since": null, "last_success": null, "next_probe_at": null, "paused": false,
            "probing": false, "secret_expires": null, "acked": null, "uptime_24h": null, "uptime_7d": null,
            "incidents": []
        }))
        .expect("a minimal view");
        v.paused = paused;
        v.history = probes
            .iter()
            .map(|s| ProbeResult::new(t(*s), Outcome::Ok, Phase::Call))
            .collect();
        Arc::new(v)
    }

    fn run(
        views: Vec<Arc<IntegrationView>>,
        engine: bool,
        db_error: Option<&str>,
        now: i64,
    ) -> Readiness {
        let mut s = Snapshot::empty("team");
        s.integrations = views;
        s.history_error = db_error.map(String::from);
        evaluate(
            &Inputs {
                snapshot: &s,
                started_at: t(0),
                probe_interval: Duration::from_secs(100),
                engine_running: engine,
                db_configured: true,
            },
            t(now),
        )
    }

    /// (case, views, engine running, database error, now, live, ready)
    type Case = (
        &'static str,
        Vec<Arc<IntegrationView>>,
        bool,
        Option<&'static str>,
        i64,
        bool,
        bool,
    );

    #[test]
    fn table() {
        // (case, views, engine, db error, now, live, ready)
        let cases: Vec<Case> = vec![
            (
                "fresh start, nothing probed yet",
                vec![view(&[], false)],
                true,
                None,
                5,
                true,
                false,
            ),
            (
                "first sweep done",
                vec![view(&[3], false)],
                true,
                None,
                5,
                true,
                true,
            ),
            (
                "restored history only",
                vec![view(&[-50], false)],
                true,
                None,
                5,
                true,
                false,
            ),
            (
                "one of two swept",
                vec![view(&[3], false), view(&[], false)],
                true,
                None,
                5,
                true,
                false,
            ),
            (
                "paused one does not hold back",
                vec![view(&[3], false), view(&[], true)],
                true,
                None,
                5,
                true,
                true,
            ),
            (
                "within 2x interval (+jitter)",
                vec![view(&[3], false)],
                true,
                None,
                220,
                true,
                true,
            ),
            (
                "stale sweep",
                vec![view(&[3], false)],
                true,
                None,
                230,
                false,
                false,
            ),
            (
                "never probed, long after start",
                vec![view(&[], false)],
                true,
                None,
                300,
                false,
                false,
            ),
            (
                "engine stopped",
                vec![view(&[3], false)],
                false,
                None,
                5,
                false,
                false,
            ),
            (
                "database broken: alive, not ready",
                vec![view(&[3], false)],
                true,
                Some("disk full"),
                5,
                true,
                false,
            ),
            ("nothing configured", vec![], true, None, 10_000, true, true),
        ];
        for (name, views, engine, db, now, live, ready) in cases {
            let r = run(views, engine, db, now);
            assert_eq!((r.live, r.ready), (live, ready), "{name}: {:?}", r.checks);
        }
    }
}
