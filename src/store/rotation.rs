//! Rotation state, the rotation audit trail and expiries recorded at activation. Never a secret.

use super::{Store, StoreError, from_ms, ms};
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// One audit entry, as `authwatch audit --format json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
    /// Where the step came from: "cli", "console" or "api" ("" for entries older than this field).
    #[serde(default)]
    pub origin: String,
    pub credential: String,
    pub action: String,
    pub from: String,
    pub to: String,
    pub result: String,
    pub details: String,
}

impl Store {
    fn sql_err(&self, e: rusqlite::Error) -> StoreError {
        StoreError::from_sqlite(&self.path, e)
    }

    /// The saved rotation of a credential (None: never rotated here). The store keeps the rotation's state as
    /// the JSON the rotation module gives it, so it does not depend on that module's types.
    pub fn rotation<R: DeserializeOwned>(&self, credential: &str) -> Result<Option<R>, StoreError> {
        let text: Option<String> = self
            .conn
            .query_row(
                "SELECT state FROM rotations WHERE credential = ?1",
                params![credential],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.sql_err(e))?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    pub fn save_rotation(
        &mut self,
        credential: &str,
        rotation: &impl Serialize,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string(rotation).expect("rotation serializes");
        self.conn
            .execute(
                "INSERT INTO rotations (credential, state, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (credential) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                params![credential, text, ms(now)],
            )
            .map_err(|e| self.sql_err(e))?;
        Ok(())
    }

    pub fn append_audit(&mut self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO rotation_audit (at, actor, credential, action, from_state, to_state, result, details, origin)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    ms(entry.at),
                    entry.actor,
                    entry.credential,
                    entry.action,
                    entry.from,
                    entry.to,
                    entry.result,
                    entry.details,
                    entry.origin
                ],
            )
            .map_err(|e| self.sql_err(e))?;
        Ok(())
    }

    /// Audit entries at or after `since` (oldest first), for one credential or all.
    pub fn audit(
        &self,
        credential: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT at, actor, credential, action, from_state, to_state, result, details, origin
                 FROM rotation_audit WHERE at >= ?1 AND (?2 IS NULL OR credential = ?2) ORDER BY at, id",
            )
            .map_err(|e| self.sql_err(e))?;
        let rows = stmt
            .query_map(params![ms(since), credential], |r| {
                Ok(AuditEntry {
                    at: from_ms(r.get(0)?),
                    actor: r.get(1)?,
                    credential: r.get(2)?,
                    action: r.get(3)?,
                    from: r.get(4)?,
                    to: r.get(5)?,
                    result: r.get(6)?,
                    details: r.get(7)?,
                    origin: r.get(8)?,
                })
            })
            .map_err(|e| self.sql_err(e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sql_err(e))
    }

    pub fn record_expiry(
        &mut self,
        credential: &str,
        expires: DateTime<Utc>,
        activated_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO secret_expiry (credential, expires, activated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (credential) DO UPDATE SET expires = excluded.expires, activated_at = excluded.activated_at",
                params![credential, ms(expires), ms(activated_at)],
            )
            .map_err(|e| self.sql_err(e))?;
        Ok(())
    }

    /// The expiry recorded by the newest activation of this credential's secret, if any.
    pub fn recorded_expiry(&self, credential: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let v: Option<i64> = self
            .conn
            .prepare_cached("SELECT expires FROM secret_expiry WHERE credential = ?1")
            .and_then(|mut st| st.query_row(params![credential], |r| r.get(0)))
            .optional()
            .map_err(|e| self.sql_err(e))?;
        Ok(v.map(from_ms))
    }

    /// Every credential's recorded expiry, in one query (not one per credential of a large config).
    pub fn recorded_expiries(
        &self,
    ) -> Result<std::collections::HashMap<String, DateTime<Utc>>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT credential, expires FROM secret_expiry")
            .map_err(|e| self.sql_err(e))?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, from_ms(r.get(1)?))))
            .map_err(|e| self.sql_err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql_err(e))
    }
}

/// One journaled effect of a rotation: the intent is written before the effect, the result after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JournalEntry {
    pub id: i64,
    pub credential: String,
    /// What was about to happen: "write-sink", "restore", "drop-previous", "record-expiry", ...
    pub effect: String,
    /// The rotation's phase when the intent was written.
    pub phase: String,
    pub intent_at: DateTime<Utc>,
    /// None: the effect was started and never reported back (the process died or was killed).
    pub result: Option<String>,
}

/// Who runs a rotation step of a credential right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Lease {
    pub credential: String,
    pub holder: String,
    pub host: String,
    pub pid: u32,
    pub since: DateTime<Utc>,
    pub heartbeat: DateTime<Utc>,
}

/// The answer to a lease request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseOutcome {
    Acquired,
    /// The previous holder is gone (process dead, or no heartbeat for too long): its lease was taken over.
    TakenOver(Lease),
    /// Someone alive holds it.
    Held(Lease),
}

impl Store {
    /// Rotation writes are synced to disk before the effect they announce (a power cut keeps the intent too).
    pub fn make_durable(&self) -> Result<(), StoreError> {
        self.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(|e| self.sql_err(e))
    }

    pub fn journal_intent(
        &mut self,
        credential: &str,
        effect: &str,
        phase: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        self.conn
            .execute(
                "INSERT INTO rotation_journal (credential, effect, phase, intent_at) VALUES (?1, ?2, ?3, ?4)",
                params![credential, effect, phase, ms(now)],
            )
            .map_err(|e| self.sql_err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn journal_result(
        &mut self,
        id: i64,
        result: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE rotation_journal SET result = ?2, result_at = ?3 WHERE id = ?1",
                params![id, result, ms(now)],
            )
            .map_err(|e| self.sql_err(e))?;
        Ok(())
    }

    /// The credentials with an effect started and never reported back, in one query (a start-up reconcile of
    /// 500 credentials asked 500 times).
    pub fn journal_open_credentials(
        &self,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT credential FROM rotation_journal WHERE result_at IS NULL")
            .map_err(|e| self.sql_err(e))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.sql_err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql_err(e))
    }

    /// Effects of a credential's rotation that were started and never finished, oldest first.
    pub fn journal_open(&self, credential: &str) -> Result<Vec<JournalEntry>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, credential, effect, phase, intent_at, result FROM rotation_journal
                 WHERE credential = ?1 AND result_at IS NULL ORDER BY id",
            )
            .map_err(|e| self.sql_err(e))?;
        let rows = stmt
            .query_map(params![credential], |r| {
                Ok(JournalEntry {
                    id: r.get(0)?,
                    credential: r.get(1)?,
                    effect: r.get(2)?,
                    phase: r.get(3)?,
                    intent_at: from_ms(r.get(4)?),
                    result: r.get(5)?,
                })
            })
            .map_err(|e| self.sql_err(e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sql_err(e))
    }

    /// Who holds the credential's rotation lease (None: nobody), as recorded; whether the holder is alive is
    /// for the caller to judge.
    pub fn lease(&self, credential: &str) -> Result<Option<Lease>, StoreError> {
        self.conn
            .query_row(
                "SELECT credential, holder, host, pid, since, heartbeat FROM rotation_lease WHERE credential = ?1",
                params![credential],
                |r| {
                    Ok(Lease {
                        credential: r.get(0)?,
                        holder: r.get(1)?,
                        host: r.get(2)?,
                        pid: r.get(3)?,
                        since: from_ms(r.get(4)?),
                        heartbeat: from_ms(r.get(5)?),
                    })
                },
            )
            .optional()
            .map_err(|e| self.sql_err(e))
    }

    /// Take the credential's rotation lease, unless a live holder has it. `alive` says whether a holder on this
    /// host is still running (by pid); holders on other hosts count as gone after `stale` without a heartbeat.
    pub fn acquire_lease(
        &mut self,
        me: &Lease,
        stale: chrono::Duration,
        alive: impl Fn(u32) -> bool,
    ) -> Result<LeaseOutcome, StoreError> {
        let path = self.path.clone();
        let err = |e| StoreError::from_sqlite(&path, e);
        // IMMEDIATE: two processes asking at once are serialized by SQLite's write lock.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let current: Option<Lease> = tx
            .query_row(
                "SELECT credential, holder, host, pid, since, heartbeat FROM rotation_lease WHERE credential = ?1",
                params![me.credential],
                |r| {
                    Ok(Lease {
                        credential: r.get(0)?,
                        holder: r.get(1)?,
                        host: r.get(2)?,
                        pid: r.get(3)?,
                        since: from_ms(r.get(4)?),
                        heartbeat: from_ms(r.get(5)?),
                    })
                },
            )
            .optional()
            .map_err(err)?;
        let outcome = match current {
            None => LeaseOutcome::Acquired,
            Some(l) if l.host == me.host && l.pid == me.pid => LeaseOutcome::Acquired,
            Some(l) => {
                let live = if l.host == me.host {
                    alive(l.pid)
                } else {
                    me.heartbeat.signed_duration_since(l.heartbeat) < stale
                };
                if live {
                    return Ok(LeaseOutcome::Held(l));
                }
                LeaseOutcome::TakenOver(l)
            }
        };
        tx.execute(
            "INSERT INTO rotation_lease (credential, holder, host, pid, since, heartbeat) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (credential) DO UPDATE SET holder = excluded.holder, host = excluded.host, pid = excluded.pid,
             since = excluded.since, heartbeat = excluded.heartbeat",
            params![me.credential, me.holder, me.host, me.pid, ms(me.since), ms(me.heartbeat)],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(outcome)
    }

    pub fn heartbeat_lease(
        &mut self,
        credential: &str,
        host: &str,
        pid: u32,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE rotation_lease SET heartbeat = ?4 WHERE credential = ?1 AND host = ?2 AND pid = ?3",
                params![credential, host, pid, ms(now)],
            )
            .map_err(|e| self.sql_err(e))?;
        Ok(())
    }

    pub fn release_lease(
        &mut self,
        credential: &str,
        host: &str,
        pid: u32,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "DELETE FROM rotation_lease WHERE credential = ?1 AND host = ?2 AND pid = ?3",
                params![credential, host, pid],
            )
            .map_err(|e| self.sql_err(e))?;
        Ok(())
    }

    /// Per credential, the id of the newest completed rotation (a successful activation): a counter that
    /// running consoles and agents poll cheaply to notice a rotation completed by another process.
    /// Per credential, a mark that moves whenever its rotation state or its lease changes (any process): the
    /// newest state update and the lease's holder and start.
    /// Changes when another connection (another process, or this one's other handles) commits: a poller asks
    /// this one cheap question and reads its tables only when the answer moved.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        self.conn
            .pragma_query_value(None, "data_version", |r| r.get(0))
            .map_err(|e| self.sql_err(e))
    }

    pub fn rotation_marks(&self) -> Result<std::collections::HashMap<String, String>, StoreError> {
        let mut marks: std::collections::HashMap<String, String> = std::collections::HashMap::new();
        for sql in [
            "SELECT credential, 's' || updated_at FROM rotations",
            "SELECT credential, 'l' || since || ':' || pid || ':' || host FROM rotation_lease",
        ] {
            let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.sql_err(e))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(|e| self.sql_err(e))?;
            for row in rows {
                let (cred, mark) = row.map_err(|e| self.sql_err(e))?;
                marks.entry(cred).or_default().push_str(&mark);
            }
        }
        Ok(marks)
    }

    pub fn rotation_completions(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT credential, MAX(id) FROM rotation_audit
                 WHERE action = 'activate-result' AND result = 'ok' GROUP BY credential",
            )
            .map_err(|e| self.sql_err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.sql_err(e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sql_err(e))
    }
}
