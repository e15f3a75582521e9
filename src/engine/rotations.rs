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

/// Start watching `db`: each message lists the credentials whose rotation completed since the last poll. The
/// thread ends when the receiver is dropped.
pub fn watch(db: PathBuf) -> mpsc::UnboundedReceiver<Vec<String>> {
    let (tx, rx) = mpsc::unbounded_channel();
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
            // What was complete before this engine started is not news.
            let mut seen: HashMap<String, i64> = store
                .rotation_completions()
                .unwrap_or_default()
                .into_iter()
                .collect();
            loop {
                std::thread::sleep(POLL_EVERY);
                if tx.is_closed() {
                    return;
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
    rx
}
