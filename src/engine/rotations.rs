//! Rotations completed by another process (the CLI, another console, the agent): noticed within seconds, so the
//! consumers' pause is lifted and they are re-probed at once instead of showing FAIL "paused" until a key press.
//!
//! A thread of its own (blocking SQLite, off the async workers) polls a cheap counter in the store: per credential,
//! the id of the newest successful activation in the rotation audit trail.

use crate::store::Store;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;

/// How often the store is asked whether a rotation completed.
pub const POLL_EVERY: Duration = Duration::from_secs(2);

/// Start watching `db`: each message on the first receiver lists the credentials whose rotation completed since
/// the last poll; on the second, those whose rotation state or lease moved (a step run by another process: its
/// progress is published too). The thread ends when the first receiver is dropped.
pub fn watch(
    db: PathBuf,
) -> (
    mpsc::UnboundedReceiver<Vec<String>>,
    mpsc::UnboundedReceiver<Vec<String>>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (moved_tx, moved_rx) = mpsc::unbounded_channel();
    let spawned = std::thread::Builder::new()
        .name("rotation-watch".into())
        .spawn(move || {
            let store = match Store::open(&db) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("not watching for completed rotations: {e}");
                    return;
                }
            };
            // Asked before the tables are read: a commit in between is seen on the next look.
            let mut version = store.data_version().ok();
            // What was complete before this engine started is not news.
            let mut seen: HashMap<String, i64> = store
                .rotation_completions()
                .unwrap_or_default()
                .into_iter()
                .collect();
            let mut marks = store.rotation_marks().unwrap_or_default();
            loop {
                std::thread::sleep(POLL_EVERY);
                if tx.is_closed() {
                    return;
                }
                let now_version = store.data_version().ok();
                if now_version.is_some() && now_version == version {
                    continue; // nothing committed since the last look
                }
                version = now_version;
                if let Ok(now) = store.rotation_marks() {
                    let moved: Vec<String> = now
                        .iter()
                        .filter(|(cred, mark)| marks.get(*cred) != Some(*mark))
                        .map(|(cred, _)| cred.clone())
                        .chain(marks.keys().filter(|c| !now.contains_key(*c)).cloned())
                        .collect();
                    marks = now;
                    if !moved.is_empty() {
                        let _ = moved_tx.send(moved);
                    }
                }
                let Ok(now) = store.rotation_completions() else {
                    continue;
                };
                let news: Vec<String> = now
                    .into_iter()
                    .filter(|(cred, id)| seen.insert(cred.clone(), *id) != Some(*id))
                    .map(|(cred, _)| cred)
                    .collect();
                if !news.is_empty() && tx.send(news).is_err() {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("not watching for completed rotations: {e}");
    }
    (rx, moved_rx)
}

// ── The rotation driver: steps from every front end, run one at a time off the async workers ──

use super::handle::RotateCommand;
use super::rotation_link::{Busy, DriverOut, Reply};
use super::state::Engine;
use crate::rotation::session::{self, DriverIn, RotationView, Update, WizardCmd};
use chrono::Utc;
use std::sync::Arc;

impl Engine {
    /// A rotation step from a front end: refused at once while another step of the same credential runs (the
    /// holder named), else handed to the driver.
    pub(super) fn rotate(&mut self, cmd: RotateCommand) {
        let RotateCommand {
            credential,
            cmd,
            actor,
            session,
            reply,
        } = cmd;
        let Some(link) = &mut self.rotation else {
            if let Some(to) = reply {
                let _ = to.send(Update::failed(
                    &credential,
                    "rotation is not available here (it needs the history database)".into(),
                ));
            }
            return;
        };
        // Reading the audit trail and closing a session never wait on a step nor block one.
        let marks = !matches!(cmd, WizardCmd::Audit | WizardCmd::Close);
        if marks && let Some(b) = link.busy.get(&credential) {
            if let Some(to) = reply {
                let _ = to.send(Update::refused(
                    &credential,
                    format!(
                        "a rotation step of {credential} is running ({}): held by {} via {} since {}: wait for it to finish",
                        b.step,
                        b.actor.name,
                        b.actor.origin.as_str(),
                        crate::duration::utc_stamp(b.since)
                    ),
                ));
            }
            return;
        }
        let running = marks.then(|| session::RunningStep {
            step: cmd.name().to_string(),
            actor: actor.name.clone(),
            origin: actor.origin,
            since: Utc::now(),
        });
        if let Some(r) = &running {
            link.busy.insert(
                credential.clone(),
                Busy {
                    step: cmd.name(),
                    actor: actor.clone(),
                    since: r.since,
                },
            );
        }
        let step = session::StepRequest {
            credential: credential.clone(),
            cmd,
            actor,
            session,
        };
        if let Err(mpsc::error::SendError(DriverIn::Step(_, r))) = link.tx.send(DriverIn::Step(
            step,
            Reply {
                to: reply,
                busy: marks,
            },
        )) {
            link.busy.remove(&credential);
            if let Some(to) = r.to {
                let _ = to.send(Update::failed(
                    &credential,
                    "rotation is not running".into(),
                ));
            }
            return;
        }
        // Everyone sees the step running (who, from where, since when) until its answer comes.
        if let Some(r) = running
            && let Some(mut view) = self
                .rotation_views
                .iter()
                .find(|v| v.credential == credential)
                .cloned()
        {
            view.running = Some(r);
            self.set_rotation_view(view);
        }
    }

    /// The driver answered: publish the credential's view, apply what an activation changed, queue the reply.
    pub(super) fn rotation_out(&mut self, out: DriverOut) {
        match out {
            session::DriverOut::Views(views) => {
                for v in views {
                    self.set_rotation_view(v);
                }
            }
            session::DriverOut::Step {
                update,
                view,
                activated,
                reply,
            } => {
                let credential = view.credential.clone();
                self.set_rotation_view(*view);
                if let Some(a) = activated {
                    if let Some(expires) = a.expires {
                        self.set_secret_expiry(&a.credential, expires);
                    }
                    for name in &a.consumers {
                        if let Some(idx) = self.index_of(name) {
                            self.force(idx);
                        }
                    }
                }
                if let Some(link) = &mut self.rotation {
                    if reply.busy {
                        link.busy.remove(&credential);
                    }
                    if let Some(to) = reply.to {
                        link.replies.push((to, *update));
                    }
                }
            }
        }
    }

    /// Answer the steps whose snapshot is out.
    pub(super) fn send_rotation_replies(&mut self) {
        if let Some(link) = &mut self.rotation {
            for (to, update) in link.replies.drain(..) {
                let _ = to.send(update);
            }
        }
    }

    fn set_rotation_view(&mut self, view: RotationView) {
        let order = |c: &str| self.config.credentials.iter().position(|x| x.id == c);
        let mut views: Vec<RotationView> = self.rotation_views.as_ref().clone();
        match views.iter_mut().find(|v| v.credential == view.credential) {
            Some(v) if *v == view => return,
            Some(v) => *v = view,
            None => views.push(view),
        }
        views.sort_by_key(|v| order(&v.credential));
        self.rotation_views = Arc::new(views);
        self.rotations_changed = true;
    }
}
