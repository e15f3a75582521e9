//! Rotation state, the rotation audit trail and expiries recorded at activation. Never a secret.

use super::{Store, StoreError, from_ms, ms};
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// One audit entry, as `authwatch audit --format json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
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
                "INSERT INTO rotation_audit (at, actor, credential, action, from_state, to_state, result, details)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    ms(entry.at),
                    entry.actor,
                    entry.credential,
                    entry.action,
                    entry.from,
                    entry.to,
                    entry.result,
                    entry.details
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
                "SELECT at, actor, credential, action, from_state, to_state, result, details
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
            .query_row(
                "SELECT expires FROM secret_expiry WHERE credential = ?1",
                params![credential],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.sql_err(e))?;
        Ok(v.map(from_ms))
    }
}
