//! History that survives restarts: probe results, status transitions (incidents), 401/403 events,
//! acknowledgements and ingest offsets, in one SQLite file. Never a secret or a token.

pub mod migrations;
mod notifications;
pub use notifications::NotificationRecord;
mod rotation;
pub use rotation::{AuditEntry, JournalEntry, Lease, LeaseOutcome};

use crate::model::{AuthEvent, Outcome, Phase, ProbeResult, Status};
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use migrations::LATEST_VERSION;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "database {path} is locked by another process: is another authwatch running on it? Stop it, or pass --db PATH"
    )]
    Locked { path: PathBuf },
    #[error(
        "database {path} is corrupt or not an authwatch database: move it aside (history starts empty) or pass --db PATH"
    )]
    Corrupt { path: PathBuf },
    #[error(
        "database {path} is read-only: fix its permissions (and its directory's), or pass --db PATH"
    )]
    ReadOnly { path: PathBuf },
    #[error("database {path}: the disk is full; history is not being saved until space is freed")]
    Full { path: PathBuf },
    #[error(
        "database {path} was written by a newer authwatch (schema {found}, this one knows {known}): upgrade authwatch or pass --db PATH"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("cannot create {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

impl StoreError {
    fn from_sqlite(path: &Path, e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode as C;
        let path = path.to_path_buf();
        match e.sqlite_error_code() {
            Some(C::DatabaseBusy | C::DatabaseLocked) => StoreError::Locked { path },
            Some(C::DatabaseCorrupt | C::NotADatabase) => StoreError::Corrupt { path },
            Some(C::ReadOnly | C::CannotOpen | C::PermissionDenied) => {
                StoreError::ReadOnly { path }
            }
            Some(C::DiskFull) => StoreError::Full { path },
            _ => StoreError::Sqlite { path, source: e },
        }
    }
}

/// Default location: `$XDG_STATE_HOME/authwatch/authwatch.db`.
pub fn default_path() -> Option<PathBuf> {
    crate::logging::state_dir().map(|d| d.join("authwatch.db"))
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Device and inode of the file opened: a file deleted or replaced under us is noticed by comparing.
    file: Option<(u64, u64)>,
}

fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

/// An incident: an integration left ok at `started` and came back at `ended` (None: still open).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub integration: String,
    pub at: DateTime<Utc>,
    pub from: Status,
    pub to: Status,
    pub reason: String,
}

/// What the engine needs on start to continue where it stopped.
#[derive(Debug, Default)]
pub struct Recent {
    /// Per integration name: newest last.
    pub probes: std::collections::HashMap<String, Vec<ProbeResult>>,
    /// Newest first.
    pub auth_events: Vec<AuthEvent>,
    /// Per integration: the status it was last recorded in.
    pub statuses: std::collections::HashMap<String, Status>,
    /// Acknowledgements of incidents still open (newer than the integration's last transition away from OK).
    pub acks: std::collections::HashMap<String, crate::model::Ack>,
    /// Where each followed log file was read up to, per source name.
    pub offsets: std::collections::HashMap<String, Vec<crate::ingest::Offsets>>,
}

impl Store {
    /// Open (creating it 0600 if needed) and migrate to the latest schema.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Create {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        if !path.exists() {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .create_new(true)
                .write(true)
                .mode(0o600)
                .open(path)
                .map_err(|source| StoreError::Create {
                    path: path.to_path_buf(),
                    source,
                })?;
        }
        let err = |e| StoreError::from_sqlite(path, e);
        let mut conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(2)).map_err(err)?;
        // WAL: readers (report, a second console) don't block the engine's writes.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        migrations::migrate(&mut conn, path)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            file: file_identity(path),
        })
    }

    /// The file at our path is gone or is another file than the one we opened (deleted, or replaced by a
    /// restore): what we write would be lost with the old file.
    pub fn file_replaced(&self) -> bool {
        self.file.is_none() || file_identity(&self.path) != self.file
    }

    /// Open the file at our path again (created and migrated when missing), after [`Store::file_replaced`].
    /// Our connection to the old file is closed first: as its last connection, SQLite checkpoints into the old
    /// file and removes its `-wal`/`-shm`, which must not be read as part of the new one. On failure this store
    /// writes nowhere (every write fails) until a later reopen succeeds.
    pub fn reopen(&mut self) -> Result<(), StoreError> {
        let nowhere = Connection::open_in_memory().map_err(|e| self.err(e))?;
        drop(std::mem::replace(&mut self.conn, nowhere));
        self.file = None;
        if !self.path.exists() {
            // The main file deleted while another connection kept its journal: that journal is the old file's.
            for suffix in ["-wal", "-shm"] {
                let mut journal = self.path.clone().into_os_string();
                journal.push(suffix);
                let _ = std::fs::remove_file(journal);
            }
        }
        *self = Store::open(&self.path)?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Cap the database at its current size, so the next growth fails as a full disk does (SQLITE_FULL).
    #[doc(hidden)]
    pub fn cap_at_current_size_for_tests(&self) -> Result<(), StoreError> {
        let pages: i64 = self
            .conn
            .pragma_query_value(None, "page_count", |r| r.get(0))
            .map_err(|e| self.err(e))?;
        self.conn
            .pragma_update(None, "max_page_count", pages)
            .map_err(|e| self.err(e))
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        StoreError::from_sqlite(&self.path, e)
    }

    /// Write a batch in one transaction (the engine's writer thread batches everything that is waiting).
    pub fn write(&mut self, batch: &[Record]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |e| StoreError::from_sqlite(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        for record in batch {
            match record {
                Record::Probe {
                    integration,
                    result,
                } => {
                    let r = result;
                    tx.prepare_cached(
                        "INSERT INTO probes (integration, at, outcome, phase, http_status, error, detail, token_ms, call_ms,
                           fresh_token, granted_scopes, missing_scopes, mid, retry_after_secs)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                    )
                    .and_then(|mut st| {
                        st.execute(params![
                            integration,
                            ms(r.at),
                            r.outcome.as_str(),
                            match r.phase {
                                Phase::Token => "token",
                                Phase::Call => "call",
                            },
                            r.http_status,
                            r.error,
                            r.detail,
                            r.token_ms.map(|v| v as i64),
                            r.call_ms.map(|v| v as i64),
                            r.fresh_token,
                            r.granted_scopes.as_ref().map(|s| s.join(" ")),
                            r.missing_scopes.join(" "),
                            r.mid,
                            r.retry_after_secs.map(|v| v as i64),
                        ])
                    })
                    .map_err(err)?;
                }
                Record::Transition(t) => {
                    tx.prepare_cached(
                        "INSERT INTO transitions (integration, at, from_status, to_status, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
                    )
                    .and_then(|mut st| st.execute(params![t.integration, ms(t.at), t.from.as_str(), t.to.as_str(), t.reason]))
                    .map_err(err)?;
                }
                Record::AuthEvent(e) => {
                    tx.prepare_cached(
                        "INSERT INTO auth_events (at, integration, http_status, error, source, origin) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )
                    .and_then(|mut st| {
                        let origin = (!e.origin.is_empty())
                            .then(|| serde_json::to_string(&e.origin).unwrap_or_default());
                        st.execute(params![ms(e.at), e.integration, e.http_status, e.error, e.source, origin])
                    })
                    .map_err(err)?;
                }
                Record::Ack {
                    integration,
                    at,
                    actor,
                    note,
                } => {
                    tx.prepare_cached(
                        "INSERT INTO acks (integration, at, actor, note) VALUES (?1, ?2, ?3, ?4)",
                    )
                    .and_then(|mut st| st.execute(params![integration, ms(*at), actor, note]))
                    .map_err(err)?;
                }
                Record::Offset {
                    source,
                    path,
                    identity,
                    offset,
                } => {
                    tx.prepare_cached(
                        "INSERT INTO ingest_offsets (source, path, identity, offset, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (source, path) DO UPDATE SET identity = excluded.identity, offset = excluded.offset,
                           updated_at = excluded.updated_at",
                    )
                    .and_then(|mut st| st.execute(params![source, path, identity, *offset as i64, ms(Utc::now())]))
                    .map_err(err)?;
                }
            }
        }
        tx.commit().map_err(err)
    }

    /// Delete rows older than `before` (probes, transitions, auth events, acks, notification records).
    pub fn prune(&mut self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        let cutoff = ms(before);
        let mut n = 0;
        for table in [
            "probes",
            "transitions",
            "auth_events",
            "acks",
            "notifications",
        ] {
            n += self
                .conn
                .execute(
                    &format!("DELETE FROM {table} WHERE at < ?1"),
                    params![cutoff],
                )
                .map_err(|e| self.err(e))?;
        }
        // Offsets of rotated-away files stop being updated; forget them with the rest of the old history.
        n += self
            .conn
            .execute(
                "DELETE FROM ingest_offsets WHERE updated_at < ?1",
                params![cutoff],
            )
            .map_err(|e| self.err(e))?;
        Ok(n)
    }

    /// The newest `per_integration` results of every integration in the store, plus statuses, acks and the log.
    pub fn load_recent(
        &self,
        per_integration: usize,
        auth_events: usize,
    ) -> Result<Recent, StoreError> {
        let names = self.probed_integrations()?;
        self.load_recent_for(&names, per_integration, auth_events)
    }

    fn probed_integrations(&self) -> Result<Vec<String>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT DISTINCT integration FROM probes")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |row| row.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// As `load_recent`, for the named integrations: one bounded index read each (newest first, LIMIT), not a
    /// window function over the whole table.
    pub fn load_recent_for(
        &self,
        names: &[String],
        per_integration: usize,
        auth_events: usize,
    ) -> Result<Recent, StoreError> {
        let mut recent = Recent::default();
        let mut st = self
            .conn
            .prepare(
                "SELECT ?1, at, outcome, phase, http_status, error, detail, token_ms, call_ms, fresh_token,
                        granted_scopes, missing_scopes, mid, retry_after_secs
                 FROM probes WHERE integration = ?1 ORDER BY at DESC, id DESC LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        for name in names {
            let rows = st
                .query_map(params![name, per_integration as i64], |row| {
                    let outcome: String = row.get(2)?;
                    let phase: String = row.get(3)?;
                    let mut r = ProbeResult::new(
                        from_ms(row.get(1)?),
                        Outcome::parse(&outcome).unwrap_or(Outcome::BadResponse),
                        if phase == "call" {
                            Phase::Call
                        } else {
                            Phase::Token
                        },
                    );
                    r.http_status = row.get(4)?;
                    r.error = row.get(5)?;
                    r.detail = row.get(6)?;
                    r.token_ms = row.get::<_, Option<i64>>(7)?.map(|v| v as u64);
                    r.call_ms = row.get::<_, Option<i64>>(8)?.map(|v| v as u64);
                    r.fresh_token = row.get(9)?;
                    r.granted_scopes = row
                        .get::<_, Option<String>>(10)?
                        .map(|s| s.split_whitespace().map(str::to_string).collect());
                    r.missing_scopes = row
                        .get::<_, String>(11)?
                        .split_whitespace()
                        .map(str::to_string)
                        .collect();
                    r.mid = row.get(12)?;
                    r.retry_after_secs = row.get::<_, Option<i64>>(13)?.map(|v| v as u64);
                    Ok((row.get::<_, String>(0)?, r))
                })
                .map_err(|e| self.err(e))?;
            let mut probes = Vec::new();
            for row in rows {
                probes.push(row.map_err(|e| self.err(e))?.1);
            }
            if !probes.is_empty() {
                probes.reverse();
                recent.probes.insert(name.clone(), probes);
            }
        }
        recent.auth_events = self.auth_events(None, auth_events)?;
        let mut st = self
            .conn
            .prepare(
                "SELECT integration, to_status FROM transitions t
                 WHERE id = (SELECT MAX(id) FROM transitions WHERE integration = t.integration)",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (name, status) = row.map_err(|e| self.err(e))?;
            recent.statuses.insert(name, parse_status(&status));
        }
        let mut st = self
            .conn
            .prepare(
                "SELECT a.integration, a.at, a.actor FROM acks a
                 WHERE a.id = (SELECT MAX(id) FROM acks WHERE integration = a.integration)
                   AND COALESCE(a.note, '') <> 'withdrawn'
                   AND a.at >= COALESCE((SELECT MAX(at) FROM transitions t WHERE t.integration = a.integration
                                           AND t.from_status = 'ok'), 0)
                   AND NOT EXISTS (SELECT 1 FROM transitions t WHERE t.integration = a.integration AND t.at > a.at
                                   AND t.to_status = 'ok')",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    crate::model::Ack {
                        at: from_ms(row.get(1)?),
                        actor: row.get(2)?,
                    },
                ))
            })
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (name, ack) = row.map_err(|e| self.err(e))?;
            recent.acks.insert(name, ack);
        }
        Ok(recent)
    }

    /// Newest first; `since` bounds the age.
    pub fn auth_events(
        &self,
        since: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<AuthEvent>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT at, integration, http_status, error, source, origin FROM auth_events WHERE at >= ?1
                 ORDER BY at DESC, id DESC LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(
                params![since.map(ms).unwrap_or(i64::MIN), limit as i64],
                |row| {
                    Ok(AuthEvent {
                        at: from_ms(row.get(0)?),
                        integration: row.get(1)?,
                        http_status: row.get(2)?,
                        error: row.get(3)?,
                        source: row.get(4)?,
                        origin: row
                            .get::<_, Option<String>>(5)?
                            .and_then(|j| serde_json::from_str(&j).ok())
                            .unwrap_or_default(),
                    })
                },
            )
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Probe results of one integration since `since`, oldest first (for reports).
    pub fn probes_since(
        &self,
        integration: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, Outcome)>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT at, outcome FROM probes WHERE integration = ?1 AND at >= ?2 ORDER BY at, id")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![integration, ms(since)], |row| {
                let o: String = row.get(1)?;
                Ok((
                    from_ms(row.get(0)?),
                    Outcome::parse(&o).unwrap_or(Outcome::BadResponse),
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Status transitions of one integration since `since`, oldest first.
    /// Where an integration's results since `since` change between ok and not ok: (first result of each run,
    /// ok), oldest first, then the newest result. The first result since `since` comes from `probes` (the
    /// covering index), the later run starts from `probe_runs` (kept by triggers): no result that does not start
    /// a run is read.
    #[allow(clippy::type_complexity)]
    pub fn probe_runs(
        &self,
        integration: &str,
        since: DateTime<Utc>,
    ) -> Result<(Vec<(DateTime<Utc>, bool)>, Option<(DateTime<Utc>, bool)>), StoreError> {
        let first = self
            .conn
            .prepare_cached(
                "SELECT at, id, outcome = 'ok' FROM probes WHERE integration = ?1 AND at >= ?2
                 ORDER BY at, id LIMIT 1",
            )
            .map_err(|e| self.err(e))?
            .query_row(params![integration, ms(since)], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, bool>(2)?,
                ))
            })
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((first_at, first_id, first_ok)) = first else {
            return Ok((Vec::new(), None));
        };
        let mut runs = vec![(from_ms(first_at), first_ok)];
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT at, ok FROM probe_runs
                 WHERE integration = ?1 AND at >= ?2 AND (at > ?2 OR probe_id > ?3)
                 ORDER BY at, probe_id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![integration, first_at, first_id], |row| {
                Ok((from_ms(row.get(0)?), row.get::<_, bool>(1)?))
            })
            .map_err(|e| self.err(e))?;
        for row in rows {
            runs.push(row.map_err(|e| self.err(e))?);
        }
        let newest = self
            .conn
            .prepare_cached(
                "SELECT at, outcome = 'ok' FROM probes WHERE integration = ?1 AND at >= ?2
                 ORDER BY at DESC, id DESC LIMIT 1",
            )
            .map_err(|e| self.err(e))?
            .query_row(params![integration, ms(since)], |row| {
                Ok((from_ms(row.get(0)?), row.get::<_, bool>(1)?))
            })
            .optional()
            .map_err(|e| self.err(e))?;
        Ok((runs, newest))
    }

    pub fn transitions_since(
        &self,
        integration: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<Transition>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT at, from_status, to_status, reason FROM transitions WHERE integration = ?1 AND at >= ?2 ORDER BY at, id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![integration, ms(since)], |row| {
                Ok(Transition {
                    integration: integration.to_string(),
                    at: from_ms(row.get(0)?),
                    from: parse_status(&row.get::<_, String>(1)?),
                    to: parse_status(&row.get::<_, String>(2)?),
                    reason: row.get(3)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Newest ok probe of an integration, however old.
    pub fn last_success(&self, integration: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.conn
            .query_row(
                "SELECT MAX(at) FROM probes WHERE integration = ?1 AND outcome = 'ok'",
                params![integration],
                |row| row.get::<_, Option<i64>>(0),
            )
            .map(|v| v.map(from_ms))
            .map_err(|e| self.err(e))
    }

    /// 401/403 counts since `since`, per (integration, source, status); unmatched events have no integration.
    pub fn auth_event_counts(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<AuthEventCount>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT integration, source, http_status, COUNT(*) FROM auth_events WHERE at >= ?1
                 GROUP BY integration, source, http_status ORDER BY integration, source, http_status",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![ms(since)], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get::<_, i64>(3)? as u64,
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// The status an integration was in at `at` (the newest transition before it).
    pub fn status_at(
        &self,
        integration: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Status>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT to_status FROM transitions WHERE integration = ?1 AND at < ?2 ORDER BY at DESC, id DESC LIMIT 1",
            )
            .and_then(|mut st| {
                st.query_row(params![integration, ms(at)], |row| row.get::<_, String>(0))
            })
            .optional()
            .map(|v| v.map(|s| parse_status(&s)))
            .map_err(|e| self.err(e))
    }

    /// Every stored offset of a log source: (path, identity, offset).
    pub fn offsets(&self, source: &str) -> Result<Vec<(String, String, u64)>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT path, identity, offset FROM ingest_offsets WHERE source = ?1")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![source], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get::<_, i64>(2)? as u64))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Stored offset of a followed file: (identity, offset).
    pub fn offset(&self, source: &str, path: &str) -> Result<Option<(String, u64)>, StoreError> {
        self.conn
            .query_row(
                "SELECT identity, offset FROM ingest_offsets WHERE source = ?1 AND path = ?2",
                params![source, path],
                |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64)),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Row counts per table (for `report` and tests of retention).
    pub fn count(&self, table: &str) -> Result<u64, StoreError> {
        let allowed = [
            "probes",
            "transitions",
            "auth_events",
            "acks",
            "ingest_offsets",
            "notifications",
        ];
        assert!(allowed.contains(&table), "unknown table {table}");
        self.conn
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| {
                row.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }
}

fn parse_status(s: &str) -> Status {
    match s {
        "ok" => Status::Ok,
        "warn" => Status::Warn,
        "fail" => Status::Fail,
        _ => Status::Unknown,
    }
}

/// (integration or None when unmatched, source, HTTP status, count).
pub type AuthEventCount = (Option<String>, String, u16, u64);

/// The note of an ack row that takes the acknowledgement back (the newest row of an integration wins).
pub const ACK_WITHDRAWN: &str = "withdrawn";

/// One thing to append.
#[derive(Debug, Clone)]
pub enum Record {
    Probe {
        integration: String,
        result: ProbeResult,
    },
    Transition(Transition),
    AuthEvent(AuthEvent),
    Ack {
        integration: String,
        at: DateTime<Utc>,
        actor: String,
        note: Option<String>,
    },
    Offset {
        source: String,
        path: String,
        identity: String,
        offset: u64,
    },
}
