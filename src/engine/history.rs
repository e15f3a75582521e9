//! The engine's link to the store: a writer thread that batches records, so SQLite never blocks probing, and
//! a visible error when history cannot be saved (the in-memory state goes on regardless).

use crate::store::{Record, Store};
use chrono::Utc;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PRUNE_EVERY: Duration = Duration::from_secs(3600);
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
                    pending.extend(rx.try_iter().flatten());
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
