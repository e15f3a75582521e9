//! The engine's link to the store: a writer thread that batches records, so SQLite never blocks probing, and
//! a visible error when history cannot be saved (the in-memory state goes on regardless).

use crate::store::{Record, Store};
use chrono::Utc;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// How long the writer gathers records after the first before it commits them together: a commit per probe
/// (30 a second with 1,000 integrations) cost more than the inserts, a fifth of the agent's CPU.
const GATHER_FOR: Duration = Duration::from_millis(500);
/// How often, at the latest, the writer checks that its database file is still the one at the path.
pub const FILE_CHECK_EVERY: Duration = Duration::from_secs(5);

pub struct HistoryWriter {
    tx: mpsc::Sender<Vec<Record>>,
    error: Arc<Mutex<Option<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The database file was deleted or replaced while we run: open the file at the path (a new one when missing),
/// so what follows is saved; until that works, history is reported as not saved.
fn reopen(store: &mut Store, error: &Mutex<Option<String>>) {
    let path = store.path().display().to_string();
    match store.reopen() {
        Ok(()) => {
            tracing::warn!("the history database {path} was deleted or replaced: opened it again");
            *error.lock().expect("history error lock") = None;
        }
        Err(e) => {
            tracing::error!(
                "the history database {path} was deleted or replaced and cannot be opened again: {e}"
            );
            *error.lock().expect("history error lock") = Some(format!(
                "history not saved: database file deleted or replaced, cannot open it again: {e}"
            ));
        }
    }
}

/// Adds what arrives before `until` to `pending`; an error when every sender is gone (write and stop).
fn gather(
    rx: &mpsc::Receiver<Vec<Record>>,
    pending: &mut Vec<Record>,
    until: Instant,
) -> Result<(), mpsc::RecvTimeoutError> {
    loop {
        match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(more) => pending.extend(more),
            Err(mpsc::RecvTimeoutError::Timeout) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

impl HistoryWriter {
    pub fn spawn(mut store: Store, retention: Duration) -> HistoryWriter {
        let (tx, rx) = mpsc::channel::<Vec<Record>>();
        let error = Arc::new(Mutex::new(None));
        let shared = error.clone();
        let thread = std::thread::Builder::new()
            .name("authwatch-history".into())
            .spawn(move || {
                let retention = crate::duration::to_chrono(retention);
                let mut last_prune: Option<Instant> = None;
                let mut pending: Vec<Record> = Vec::new();
                loop {
                    if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                        if let Err(e) = store.prune(Utc::now() - retention) {
                            tracing::warn!("pruning history failed: {e}");
                        }
                        last_prune = Some(Instant::now());
                    }
                    let received = rx.recv_timeout(FILE_CHECK_EVERY);
                    if store.file_replaced() {
                        reopen(&mut store, &shared);
                    }
                    match received {
                        Ok(first) => pending.extend(first),
                        Err(mpsc::RecvTimeoutError::Timeout) => continue,
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                    let gathered = gather(&rx, &mut pending, Instant::now() + GATHER_FOR);
                    match store.write(&pending) {
                        Ok(()) => {
                            pending.clear();
                            *shared.lock().expect("history error lock") = None;
                        }
                        Err(e) => {
                            tracing::error!("history not saved: {e}");
                            *shared.lock().expect("history error lock") =
                                Some(format!("history not saved: {e}"));
                            // Keep what failed for the next attempt, bounded so a full disk cannot grow memory forever.
                            if pending.len() > 10_000 {
                                pending.drain(..pending.len() - 10_000);
                            }
                        }
                    }
                    if gathered.is_err() {
                        break;
                    }
                }
                if !pending.is_empty()
                    && let Err(e) = store.write(&pending)
                {
                    tracing::error!("history not saved at shutdown: {e}");
                }
            })
            .expect("spawn history writer thread");
        HistoryWriter {
            tx,
            error,
            thread: Some(thread),
        }
    }

    pub fn record(&self, record: Record) {
        self.record_all(vec![record]);
    }

    /// Records that must land in the same transaction (log events and the file offset after them).
    pub fn record_all(&self, records: Vec<Record>) {
        // The thread only ends when this writer is dropped.
        let _ = self.tx.send(records);
    }

    /// Why history is not being saved, if it is not.
    pub fn error(&self) -> Option<String> {
        self.error.lock().expect("history error lock").clone()
    }

    /// Finish pending writes (clean shutdown).
    pub fn close(mut self) {
        let (dead_tx, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.tx, dead_tx));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(integration: &str) -> Vec<Record> {
        vec![Record::Ack {
            integration: integration.into(),
            at: Utc::now(),
            actor: "test".into(),
            note: None,
        }]
    }

    #[test]
    fn records_sent_close_together_are_written_in_one_batch_and_a_closed_channel_ends_it() {
        let (tx, rx) = mpsc::channel();
        for name in ["a", "b", "c"] {
            tx.send(ack(name)).unwrap();
        }
        let mut pending = Vec::new();
        assert!(gather(&rx, &mut pending, Instant::now()).is_ok());
        assert_eq!(pending.len(), 3, "what was already queued joins the batch");
        tx.send(ack("d")).unwrap();
        drop(tx);
        let far = Instant::now() + Duration::from_secs(3600);
        assert_eq!(
            gather(&rx, &mut pending, far),
            Err(mpsc::RecvTimeoutError::Disconnected),
            "a closed channel does not wait out the window"
        );
        assert_eq!(pending.len(), 4);
    }
}
