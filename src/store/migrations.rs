//! Schema versions, applied in order; `PRAGMA user_version` says which ones a file has.

use super::StoreError;
use rusqlite::Connection;
use std::path::Path;

/// Each entry upgrades from version `index` to `index + 1`. Append only: never edit a shipped step.
pub(crate) const STEPS: &[&str] = &[
    // 1: probe history, incidents, 401/403 events, acknowledgements, ingest offsets.
    "CREATE TABLE probes (
        id INTEGER PRIMARY KEY,
        integration TEXT NOT NULL,
        at INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        phase TEXT NOT NULL,
        http_status INTEGER,
        error TEXT,
        detail TEXT,
        token_ms INTEGER,
        call_ms INTEGER,
        fresh_token INTEGER NOT NULL DEFAULT 0,
        granted_scopes TEXT,
        missing_scopes TEXT NOT NULL DEFAULT '',
        mid TEXT,
        retry_after_secs INTEGER
     );
     CREATE INDEX probes_by_integration ON probes (integration, at);
     CREATE INDEX probes_by_time ON probes (at);
     CREATE TABLE transitions (
        id INTEGER PRIMARY KEY,
        integration TEXT NOT NULL,
        at INTEGER NOT NULL,
        from_status TEXT NOT NULL,
        to_status TEXT NOT NULL,
        reason TEXT NOT NULL
     );
     CREATE INDEX transitions_by_integration ON transitions (integration, at);
     CREATE TABLE auth_events (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        integration TEXT,
        http_status INTEGER NOT NULL,
        error TEXT NOT NULL,
        source TEXT NOT NULL
     );
     CREATE INDEX auth_events_by_time ON auth_events (at);
     CREATE TABLE acks (
        id INTEGER PRIMARY KEY,
        integration TEXT NOT NULL,
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,
        note TEXT
     );
     CREATE TABLE ingest_offsets (
        source TEXT NOT NULL,
        path TEXT NOT NULL,
        identity TEXT NOT NULL,
        offset INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (source, path)
     );",
    // 2: secret rotation: per-credential state, the audit trail, expiries recorded at activation.
    "CREATE TABLE rotations (
        credential TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        updated_at INTEGER NOT NULL
     );
     CREATE TABLE rotation_audit (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,
        credential TEXT NOT NULL,
        action TEXT NOT NULL,
        from_state TEXT NOT NULL,
        to_state TEXT NOT NULL,
        result TEXT NOT NULL,
        details TEXT NOT NULL
     );
     CREATE INDEX rotation_audit_by_credential ON rotation_audit (credential, at);
     CREATE TABLE secret_expiry (
        credential TEXT PRIMARY KEY,
        expires INTEGER NOT NULL,
        activated_at INTEGER NOT NULL
     );",
    // 3: every notification sent (or muted, or given up on) to a [[notify]] receiver.
    "CREATE TABLE notifications (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        receiver TEXT NOT NULL,
        kind TEXT NOT NULL,
        event TEXT NOT NULL,
        subject TEXT NOT NULL,
        incident_key TEXT NOT NULL,
        outcome TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        detail TEXT
     );
     CREATE INDEX notifications_by_key ON notifications (receiver, incident_key, at);",
    // 4: rotation write-ahead journal (intent before an effect, result after) and one lease per credential.
    "CREATE TABLE rotation_journal (
        id INTEGER PRIMARY KEY,
        credential TEXT NOT NULL,
        effect TEXT NOT NULL,
        phase TEXT NOT NULL,
        intent_at INTEGER NOT NULL,
        result_at INTEGER,
        result TEXT
     );
     CREATE INDEX rotation_journal_open ON rotation_journal (credential, result_at);
     CREATE TABLE rotation_lease (
        credential TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        since INTEGER NOT NULL,
        heartbeat INTEGER NOT NULL
     );",
    // 5: the console's uptime reads (integration, at, outcome) only: a covering index answers it without the table.
    "CREATE INDEX probes_by_integration_outcome ON probes (integration, at, outcome);
     DROP INDEX probes_by_integration;",
    // 6: where a rotation step came from (cli / console / api) beside who did it.
    "ALTER TABLE rotation_audit ADD COLUMN origin TEXT NOT NULL DEFAULT '';",
    // 7: where each integration's results change between ok and not ok (the first result of each run), kept by
    // triggers as results are written or deleted, so the console's start reads the week's runs, not its results.
    // A result is a run start when its predecessor (same integration, in (at, id) order) has the other ok-ness or
    // there is none; an insert before later results also settles its successor. Deletes drop the deleted row
    // only: exact for the deletes authwatch makes (everything before a time), and the reader takes the first
    // result of its window from `probes` itself.
    "CREATE TABLE probe_runs (
        probe_id INTEGER PRIMARY KEY,
        integration TEXT NOT NULL,
        at INTEGER NOT NULL,
        ok INTEGER NOT NULL
     );
     CREATE INDEX probe_runs_by_integration ON probe_runs (integration, at);
     INSERT INTO probe_runs (probe_id, integration, at, ok)
        SELECT id, integration, at, ok FROM (
            SELECT id, integration, at, outcome = 'ok' AS ok,
                   LAG(outcome = 'ok') OVER (PARTITION BY integration ORDER BY at, id) AS prev
            FROM probes)
        WHERE prev IS NULL OR prev <> ok;
     CREATE TRIGGER probe_runs_insert AFTER INSERT ON probes BEGIN
        INSERT INTO probe_runs (probe_id, integration, at, ok)
            SELECT NEW.id, NEW.integration, NEW.at, NEW.outcome = 'ok'
            WHERE (SELECT outcome = 'ok' FROM probes
                   WHERE integration = NEW.integration AND at <= NEW.at AND (at < NEW.at OR id < NEW.id)
                   ORDER BY at DESC, id DESC LIMIT 1) IS NOT (NEW.outcome = 'ok');
        DELETE FROM probe_runs WHERE probe_id = (
            SELECT id FROM probes
            WHERE integration = NEW.integration AND at >= NEW.at AND (at > NEW.at OR id > NEW.id)
            ORDER BY at, id LIMIT 1);
        INSERT INTO probe_runs (probe_id, integration, at, ok)
            SELECT id, integration, at, ok FROM (
                SELECT id, integration, at, outcome = 'ok' AS ok FROM probes
                WHERE integration = NEW.integration AND at >= NEW.at AND (at > NEW.at OR id > NEW.id)
                ORDER BY at, id LIMIT 1)
            WHERE ok <> (NEW.outcome = 'ok');
     END;
     CREATE TRIGGER probe_runs_delete AFTER DELETE ON probes BEGIN
        DELETE FROM probe_runs WHERE probe_id = OLD.id;
     END;",
    // 8: where a 401/403 event came from (log file and line, client id, MID, URL host), as JSON.
    "ALTER TABLE auth_events ADD COLUMN origin TEXT;",
];

pub const LATEST_VERSION: i64 = STEPS.len() as i64;

pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let err = |e| StoreError::from_sqlite(path, e);
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(err)?;
    if version > LATEST_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: version,
            known: LATEST_VERSION,
        });
    }
    for (index, step) in STEPS.iter().enumerate().skip(version.max(0) as usize) {
        let tx = conn.transaction().map_err(err)?;
        tx.execute_batch(step).map_err(err)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)
            .map_err(err)?;
        tx.commit().map_err(err)?;
    }
    Ok(())
}

/// Bring an empty database to exactly `version` (for tests of upgrades from every earlier version).
pub fn migrate_to(conn: &mut Connection, version: i64) -> rusqlite::Result<()> {
    for (index, step) in STEPS.iter().enumerate().take(version as usize) {
        conn.execute_batch(step)?;
        conn.pragma_update(None, "user_version", index as i64 + 1)?;
    }
    Ok(())
}
