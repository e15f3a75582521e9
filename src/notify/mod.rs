//! Direct notifications to the team that owns an integration: generic webhooks, Slack incoming webhooks and
//! Alertmanager (`POST /api/v2/alerts`). See [`plan`] for what is sent when.
//!
//! The notifier follows the engine's snapshots on its own task and each receiver has its own sending queue, so a
//! dead or slow receiver never slows probing nor the other receivers. Sends are retried with exponential backoff;
//! every send (and every muted or abandoned one) is recorded in the store. URLs are never logged or recorded:
//! webhook URLs are credentials.

pub mod payload;
pub mod plan;

use crate::config::{Maintenance, NotifyConfig, NotifyKind, UrlRef};
use crate::engine::Snapshot;
use crate::metrics::Metrics;
use crate::store::{NotificationRecord, Store};
use chrono::Utc;
use plan::{EventKind, Message, Planned, Planner};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Retries of one message before it is recorded as failed.
pub const MAX_ATTEMPTS: u32 = 8;
/// First retry delay; doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Per-request timeout.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Firing alerts are re-posted to Alertmanager this often (they carry endsAt = now + [`ALERT_VALIDITY`]).
pub const ALERT_REFRESH: Duration = Duration::from_secs(15 * 60);
pub const ALERT_VALIDITY: Duration = Duration::from_secs(60 * 60);

pub struct NotifierOptions {
    pub receivers: Vec<NotifyConfig>,
    pub maintenance: Vec<Maintenance>,
    /// Where sends are recorded (and read back on start).
    pub db: Option<PathBuf>,
    pub secret_timeout: Duration,
    /// Where outcomes are counted (`authwatch_notifications_total`), if anywhere.
    pub metrics: Option<Arc<Metrics>>,
}

struct Shared {
    receivers: Vec<NotifyConfig>,
    maintenance: Vec<Maintenance>,
    queues: HashMap<String, mpsc::UnboundedSender<Message>>,
    planner: Planner,
    /// Alertmanager alerts currently firing, per receiver, for the periodic refresh.
    firing: HashMap<String, HashMap<String, Message>>,
}

/// Handle to the notifier: follow snapshots, reload receivers, stop.
pub struct Notifier {
    shared: Arc<Mutex<Shared>>,
    recorder: Recorder,
    client: reqwest::Client,
    secret_timeout: Duration,
    workers: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    stop: watch::Sender<bool>,
}

/// Writes records on a blocking thread of its own (SQLite never blocks a sender), and counts outcomes.
#[derive(Clone)]
struct Recorder {
    tx: Option<std::sync::mpsc::Sender<NotificationRecord>>,
    done: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
    metrics: Option<Arc<Metrics>>,
}

impl Recorder {
    /// A recorder with nowhere to record: sends still happen, their outcomes are not kept.
    fn unrecorded(metrics: Option<Arc<Metrics>>) -> (Recorder, Vec<NotificationRecord>) {
        let recorder = Recorder {
            tx: None,
            done: Arc::new(Mutex::new(None)),
            metrics,
        };
        (recorder, Vec::new())
    }

    fn open(
        db: Option<PathBuf>,
        metrics: Option<Arc<Metrics>>,
    ) -> (Recorder, Vec<NotificationRecord>) {
        let Some(path) = db else {
            return Recorder::unrecorded(metrics);
        };
        let mut store = match Store::open(&path) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("notifications will not be recorded: {e}");
                return Recorder::unrecorded(metrics);
            }
        };
        let earlier = store
            .notifications(Some(Utc::now() - chrono::Duration::days(60)))
            .unwrap_or_else(|e| {
                tracing::error!("cannot read earlier notifications: {e}");
                Vec::new()
            });
        let (tx, rx) = std::sync::mpsc::channel::<NotificationRecord>();
        let thread = std::thread::Builder::new()
            .name("authwatch-notify-store".into())
            .spawn(move || {
                for rec in rx {
                    if let Err(e) = store.record_notification(&rec) {
                        tracing::error!("notification not recorded: {e}");
                    }
                }
            })
            .ok();
        (
            Recorder {
                tx: Some(tx),
                done: Arc::new(Mutex::new(thread)),
                metrics,
            },
            earlier,
        )
    }

    fn record(
        &self,
        r: &NotifyConfig,
        m: &Message,
        outcome: &str,
        attempts: u32,
        detail: Option<String>,
    ) {
        if let Some(metrics) = &self.metrics {
            metrics.notification(&r.name, m.event.as_str(), outcome);
        }
        let rec = NotificationRecord {
            at: Utc::now(),
            receiver: r.name.clone(),
            kind: r.kind.as_str().to_string(),
            event: m.event.as_str().to_string(),
            subject: m.subject.clone(),
            incident_key: m.incident_key.clone(),
            outcome: outcome.to_string(),
            attempts,
            detail,
        };
        match outcome {
            "failed" => tracing::error!(
                "notification {} {} to {} failed after {attempts} attempts: {}",
                rec.event,
                rec.subject,
                rec.receiver,
                rec.detail.as_deref().unwrap_or("")
            ),
            _ => tracing::info!(
                "notification {} {} to {}: {outcome}",
                rec.event,
                rec.subject,
                rec.receiver
            ),
        }
        if let Some(tx) = &self.tx {
            let _ = tx.send(rec);
        }
    }
}

impl Notifier {
    pub fn spawn(opts: NotifierOptions) -> Notifier {
        let (recorder, earlier) = Recorder::open(opts.db, opts.metrics);
        let mut planner = Planner::default();
        planner.restore(&earlier);
        // No redirects (a 3xx would re-POST the payload to another host) and no Referer (it would carry the
        // secret webhook URL along).
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .timeout(SEND_TIMEOUT)
            .user_agent(concat!("authwatch/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        let (stop, _) = watch::channel(false);
        let n = Notifier {
            shared: Arc::new(Mutex::new(Shared {
                receivers: Vec::new(),
                maintenance: opts.maintenance,
                queues: HashMap::new(),
                planner,
                firing: HashMap::new(),
            })),
            recorder,
            client,
            secret_timeout: opts.secret_timeout,
            workers: Arc::new(Mutex::new(Vec::new())),
            stop,
        };
        n.set_receivers(opts.receivers);
        n
    }

    /// Replace receivers and windows. Queues of receivers that keep their name (and kind and URL) go on.
    pub fn reload(&self, receivers: Vec<NotifyConfig>, maintenance: Vec<Maintenance>) {
        self.shared.lock().expect("notify lock").maintenance = maintenance;
        self.set_receivers(receivers);
    }

    fn set_receivers(&self, receivers: Vec<NotifyConfig>) {
        let mut sh = self.shared.lock().expect("notify lock");
        let old = std::mem::take(&mut sh.receivers);
        let mut queues = std::mem::take(&mut sh.queues);
        let mut kept = HashMap::new();
        for r in &receivers {
            let same = old.iter().any(|o| o == r);
            match queues.remove(&r.name) {
                Some(q) if same => {
                    kept.insert(r.name.clone(), q);
                }
                _ => {
                    let (tx, rx) = mpsc::unbounded_channel();
                    let worker = tokio::spawn(worker(
                        r.clone(),
                        rx,
                        self.client.clone(),
                        self.recorder.clone(),
                        self.secret_timeout,
                        self.stop.subscribe(),
                    ));
                    self.workers.lock().expect("workers lock").push(worker);
                    kept.insert(r.name.clone(), tx);
                }
            }
        }
        // Dropping the other queues ends their workers once they have sent what they hold.
        drop(queues);
        sh.queues = kept;
        sh.receivers = receivers;
        let names: Vec<String> = sh.receivers.iter().map(|r| r.name.clone()).collect();
        sh.firing.retain(|k, _| names.contains(k));
    }

    /// Decide and dispatch for one snapshot.
    pub fn observe(&self, snap: &Snapshot) {
        let now = Utc::now();
        let mut sh = self.shared.lock().expect("notify lock");
        let Shared {
            receivers,
            maintenance,
            planner,
            ..
        } = &mut *sh;
        let planned = planner.plan(snap, receivers, maintenance, now);
        for p in planned {
            self.dispatch(&mut sh, p);
        }
        // Incidents that ended silently (integration removed, receiver no longer wants it): stop refreshing
        // their alerts, so that Alertmanager lets them expire instead of keeping them firing forever.
        let Shared {
            planner, firing, ..
        } = &mut *sh;
        for (receiver, alerts) in firing.iter_mut() {
            alerts.retain(|subject, _| {
                planner
                    .open
                    .contains_key(&(receiver.clone(), subject.clone()))
            });
        }
    }

    fn dispatch(&self, sh: &mut Shared, p: Planned) {
        let Some(r) = sh.receivers.iter().find(|r| r.name == p.receiver).cloned() else {
            return;
        };
        if let Some(why) = p.muted {
            self.recorder.record(&r, &p.message, "muted", 0, Some(why));
            return;
        }
        if r.kind == NotifyKind::Alertmanager {
            let firing = sh.firing.entry(r.name.clone()).or_default();
            match p.message.event {
                EventKind::Fail => {
                    firing.insert(p.message.subject.clone(), p.message.clone());
                }
                EventKind::Resolved => {
                    firing.remove(&p.message.subject);
                }
                _ => {}
            }
        }
        if let Some(q) = sh.queues.get(&r.name) {
            let _ = q.send(p.message);
        }
    }

    /// Follow the engine's snapshots (and refresh firing Alertmanager alerts) until the notifier stops.
    pub fn follow(&self, mut snapshots: watch::Receiver<Arc<Snapshot>>) {
        let me = self.clone_handle();
        let mut stop = self.stop.subscribe();
        tokio::spawn(async move {
            let mut refresh = tokio::time::interval(ALERT_REFRESH);
            refresh.tick().await;
            loop {
                let snap = snapshots.borrow_and_update().clone();
                me.observe(&snap);
                tokio::select! {
                    r = snapshots.changed() => if r.is_err() { break },
                    _ = refresh.tick() => me.refresh(),
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
        });
    }

    fn refresh(&self) {
        let sh = self.shared.lock().expect("notify lock");
        for (name, alerts) in &sh.firing {
            if let Some(q) = sh.queues.get(name) {
                for m in alerts.values() {
                    let mut m = m.clone();
                    m.event = EventKind::Refresh;
                    m.at = Utc::now();
                    let _ = q.send(m);
                }
            }
        }
    }

    fn clone_handle(&self) -> Notifier {
        Notifier {
            shared: self.shared.clone(),
            recorder: self.recorder.clone(),
            client: self.client.clone(),
            secret_timeout: self.secret_timeout,
            workers: self.workers.clone(),
            stop: self.stop.clone(),
        }
    }

    /// Stop following; give queued messages up to `grace` to go out, then record the rest as failed.
    pub async fn stop(self, grace: Duration) {
        {
            let mut sh = self.shared.lock().expect("notify lock");
            sh.queues.clear();
        }
        let workers: Vec<_> = std::mem::take(&mut *self.workers.lock().expect("workers lock"));
        let all = futures::future::join_all(workers);
        if tokio::time::timeout(grace, all).await.is_err() {
            let _ = self.stop.send(true);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = self.stop.send(true);
        let Recorder { tx, done, .. } = self.recorder;
        drop(tx);
        let thread = done.lock().expect("recorder lock").take();
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

/// One receiver's queue: messages in order, each retried with backoff until sent or given up.
async fn worker(
    r: NotifyConfig,
    mut rx: mpsc::UnboundedReceiver<Message>,
    client: reqwest::Client,
    recorder: Recorder,
    secret_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    while let Some(m) = rx.recv().await {
        let mut attempts = 0;
        let mut backoff = FIRST_BACKOFF;
        loop {
            attempts += 1;
            let result = send(&client, &r, &m, secret_timeout).await;
            match result {
                Ok(()) => {
                    recorder.record(&r, &m, "sent", attempts, None);
                    break;
                }
                Err(e) if !e.retry || attempts >= MAX_ATTEMPTS || *stop.borrow() => {
                    recorder.record(&r, &m, "failed", attempts, Some(e.reason));
                    break;
                }
                Err(Failed { reason: e, .. }) => {
                    tracing::warn!(
                        "notification {} {} to {}: attempt {attempts} failed: {e}; retrying in {:?}",
                        m.event.as_str(),
                        m.subject,
                        r.name,
                        backoff
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.wait_for(|s| *s) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

/// Why an attempt failed; `retry: false` when trying again cannot help (a redirect: the receiver's URL is wrong
/// or taken over, and retrying would only knock on it again).
struct Failed {
    reason: String,
    retry: bool,
}

impl From<String> for Failed {
    fn from(reason: String) -> Self {
        Failed {
            reason,
            retry: true,
        }
    }
}

/// One attempt. Errors never contain the URL.
async fn send(
    client: &reqwest::Client,
    r: &NotifyConfig,
    m: &Message,
    secret_timeout: Duration,
) -> Result<(), Failed> {
    use secrecy::ExposeSecret;
    let base = match &r.url {
        UrlRef::Plain(u) => u.clone(),
        UrlRef::Secret(s) => {
            let value = s
                .resolve(secret_timeout)
                .await
                .map_err(|e| format!("cannot resolve the URL ({s}): {e}"))?;
            url::Url::parse(value.expose_secret().trim())
                .map_err(|_| format!("the URL from {s} is not a valid URL"))?
        }
    };
    let (url, body) = match r.kind {
        NotifyKind::Webhook => (base, payload::webhook(m)),
        NotifyKind::Slack => (base, payload::slack(m)),
        NotifyKind::Teams => (base, payload::teams(m)),
        NotifyKind::PagerDuty => {
            let Some(key_ref) = &r.routing_key else {
                return Err(String::from("no routing_key").into());
            };
            let key = key_ref
                .resolve(secret_timeout)
                .await
                .map_err(|e| format!("cannot resolve the routing key ({key_ref}): {e}"))?;
            (base, payload::pagerduty(m, key.expose_secret().trim()))
        }
        NotifyKind::Alertmanager => {
            let mut u = base;
            let path = format!("{}/api/v2/alerts", u.path().trim_end_matches('/'));
            u.set_path(&path);
            (u, payload::alertmanager(m, Utc::now()))
        }
    };
    let resp = client
        .post(url)
        .json(&body)
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else if status.is_redirection() {
        // Named by status and target host only: the full Location may carry a token.
        let host = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| url::Url::parse(l).ok())
            .and_then(|u| u.host_str().map(crate::sanitize::owned_str))
            .unwrap_or_else(|| "an unknown host".into());
        Err(Failed {
            reason: format!("the receiver answered {status}, a redirect to {host} (not followed)"),
            retry: false,
        })
    } else {
        Err(format!("the receiver answered {status}").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;
    use plan::tests::{failing, receiver, snap};

    #[tokio::test]
    async fn alerts_of_silently_ended_incidents_are_no_longer_refreshed() {
        let mut am = receiver("am", &[], Status::Fail);
        am.kind = NotifyKind::Alertmanager;
        // Nothing listens there: messages wait in the queue, which does not matter here.
        am.url = UrlRef::Plain(url::Url::parse("http://127.0.0.1:9/").unwrap());
        let n = Notifier::spawn(NotifierOptions {
            receivers: vec![am],
            maintenance: vec![],
            db: None,
            secret_timeout: Duration::from_secs(1),
            metrics: None,
        });
        let since = Utc::now() - chrono::Duration::minutes(1);
        let firing = |n: &Notifier| -> Vec<String> {
            let sh = n.shared.lock().unwrap();
            let mut v: Vec<String> = sh
                .firing
                .get("am")
                .map(|a| a.keys().cloned().collect())
                .unwrap_or_default();
            v.sort();
            v
        };
        n.observe(&snap(
            vec![
                failing("crm-sync", None, since),
                failing("web-shop", None, since),
            ],
            vec![],
        ));
        assert_eq!(firing(&n), ["crm-sync", "web-shop"]);
        // crm-sync removed by a reload: its incident ends without a message, and its alert is not refreshed.
        n.observe(&snap(vec![failing("web-shop", None, since)], vec![]));
        assert_eq!(firing(&n), ["web-shop"]);
        n.stop(Duration::from_millis(10)).await;
    }
}
