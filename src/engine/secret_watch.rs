//! Changed secrets, noticed without waiting for the next token request: every `secret_check_interval` the `env`,
//! `file` and `store` references are read again, off the engine's loop, and compared by a fingerprint (HMAC-SHA256
//! under a key made at start, so neither the secret nor anything that could be checked against a guess outside
//! this process is kept). A secret that changed, or one that can be read again after it could not, re-probes its
//! credential's integrations at once with a new token and lifts their pause. `command` references are not run
//! on a timer (a program may prompt, cost or log); they are read whenever a token is requested.
//!
//! No token is requested unless a secret changed: SFMC's budget of one token per 20 minutes per package stands.

use super::fingerprint::{
    FileStamp, FileStamps, READ_ALL_EVERY, Read, SecretReads, fingerprint, is_news,
};
use super::state::Engine;
use crate::config::Config;
use crate::secrets::{SecretError, SecretRef};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio::sync::mpsc;

/// Read every `env`/`file`/`store` reference of `config` and send the fingerprints.
async fn read_all(
    config: Arc<Config>,
    key: Arc<ring::hmac::Key>,
    stamps: Arc<Mutex<FileStamps>>,
    generation: u64,
    tx: mpsc::UnboundedSender<SecretReads>,
) {
    let timeout = config.settings.secret_command_timeout;
    let read = |key: &ring::hmac::Key, secret: Result<SecretString, SecretError>| match secret {
        Ok(secret) => Read::Value(fingerprint(key, secret.expose_secret())),
        Err(_) => Read::Unavailable,
    };
    // Env, store and regular files in one blocking task; what could block (a FIFO) is read below, bounded.
    let batch = {
        let (config, key) = (config.clone(), key.clone());
        tokio::task::spawn_blocking(move || {
            let mut stamps = stamps.lock().unwrap_or_else(|p| p.into_inner());
            stamps.rounds = stamps.rounds.wrapping_add(1);
            let trust = !stamps.rounds.is_multiple_of(READ_ALL_EVERY);
            let mut seen = HashMap::new();
            let batch = config
                .credentials
                .iter()
                .map(|c| match &c.client_secret {
                    SecretRef::Command(_) => None,
                    SecretRef::File(path) => {
                        let stamp = FileStamp::of(path, SystemTime::now());
                        let kept = stamps
                            .by_path
                            .remove(path)
                            .or_else(|| seen.get(path).copied());
                        if let (Some((now, _)), Some((was, print))) = (stamp, kept)
                            && trust
                            && now == was
                        {
                            seen.insert(path.clone(), (was, print));
                            return Some(Some(Read::Value(print)));
                        }
                        let Some(got) = c.client_secret.resolve_now() else {
                            return Some(None); // not a regular file: read below, bounded
                        };
                        let got = read(&key, got);
                        if let (Some((stamp, true)), Read::Value(print)) = (stamp, &got) {
                            seen.insert(path.clone(), (stamp, *print));
                        }
                        Some(Some(got))
                    }
                    _ => Some(c.client_secret.resolve_now().map(|r| read(&key, r))),
                })
                .collect::<Vec<_>>();
            stamps.by_path = seen; // files no longer referenced are forgotten
            batch
        })
        .await
        .unwrap_or_default()
    };
    let mut reads = Vec::with_capacity(batch.len());
    for (c, now) in config.credentials.iter().zip(batch) {
        let read = match now {
            None => continue,
            Some(Some(read)) => read,
            // Bounded: a file that never ends (a FIFO nobody writes) must not stop every later round.
            Some(None) => {
                match tokio::time::timeout(timeout, c.client_secret.resolve(timeout)).await {
                    Ok(secret) => read(&key, secret),
                    Err(_) => Read::Unavailable,
                }
            }
        };
        reads.push((c.id.clone(), read));
    }
    let _ = tx.send(SecretReads { generation, reads });
}

impl Engine {
    /// Start one round of reads (none while one is running, none when turned off).
    pub(super) fn check_secrets(&mut self) {
        if self.secret_reading || self.config.settings.secret_check_interval.is_zero() {
            return;
        }
        self.secret_reading = true;
        tokio::spawn(read_all(
            self.config.clone(),
            self.secret_key.clone(),
            self.secret_stamps.clone(),
            self.generation,
            self.secret_reads_tx.clone(),
        ));
    }

    /// A round of reads: re-probe (with a new token, lifting pauses) the consumers of every secret that changed.
    pub(super) fn secrets_read(&mut self, round: SecretReads) {
        self.secret_reading = false;
        if round.generation != self.generation {
            return;
        }
        for (credential, read) in round.reads {
            let consumers = self.consumers(&credential);
            let missing = consumers
                .iter()
                .any(|&i| self.integrations[i].secret_error.is_some());
            if is_news(self.secret_reads.get(&credential), &read, missing) {
                tracing::info!(
                    credential,
                    "secret reference reads a new value: re-probing its integrations now"
                );
                for idx in consumers {
                    self.force(idx);
                }
            }
            self.secret_reads.insert(credential, read);
        }
    }

    /// After a reload: forget the reads of credentials whose reference changed (the reload re-probes them anyway).
    pub(super) fn keep_secret_reads(&mut self, old: &Config) {
        let config = self.config.clone();
        let same = |id: &str| match (old.credential(id), config.credential(id)) {
            (Some(a), Some(b)) => a.client_secret == b.client_secret,
            _ => false,
        };
        self.secret_reads.retain(|id, _| same(id));
        self.secret_verified.retain(|id, _| same(id));
    }
}
