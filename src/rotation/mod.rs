//! Guided secret rotation: stage -> verify -> promote -> activate -> completed (or aborted), per credential.
//!
//! [`fsm`] is the pure state machine; [`Rotator`] is the thin driver that runs its effects (checks against SFMC
//! with the new secret, writing the sink, the audit trail) and persists the state in the store. The pending
//! secret lives in memory and, when `AUTHWATCH_MASTER_KEY` is set, in the encrypted store
//! ([`crate::secrets::vault`]) so that it survives restarts; otherwise it must be entered again.

pub mod fsm;
pub mod safety;
pub mod session;
pub mod sinks;

use crate::config::{Config, Credential, Integration};
use crate::duration::utc_stamp;
use crate::model::Outcome;
use crate::probe::{self, Freshness, ProbeTarget, Prober, TokenCache};
use crate::secrets::vault::Vault;
use crate::store::{AuditEntry, Store};
use chrono::{DateTime, Utc};
use fsm::{AuditResult, Effect, Fingerprints, Holds, Input, Phase, Rotation};
use safety::{StepInFlight, fault, fingerprint};
use secrecy::SecretString;
use serde::Serialize;
use sinks::Sink;

/// Replace each credential's `secret_expires` by the one recorded at its newest activation, when newer: the
/// expiry `check`, the calendar and the console use.
pub fn apply_effective_expiries(config: &mut Config, store: &Store) {
    let recorded = store.recorded_expiries().unwrap_or_default();
    if recorded.is_empty() {
        return;
    }
    for c in &mut config.credentials {
        if let Some(&recorded) = recorded.get(&c.id)
            && c.secret_expires
                .is_none_or(|configured| recorded > configured)
        {
            c.secret_expires = Some(recorded);
        }
    }
}

/// At the start of a console or an agent: reconcile every credential whose rotation step was interrupted (the
/// process died between an effect's intent and its result). What was found is logged and audited; the state is
/// set to what the sink really holds. Returns what was said, one line per credential.
pub async fn reconcile_interrupted(
    config: std::sync::Arc<Config>,
    db: std::path::PathBuf,
) -> Vec<String> {
    let opened = tokio::task::spawn_blocking(move || Store::open(&db)).await;
    let Ok(Ok(mut store)) = opened else {
        return Vec::new();
    };
    reconcile_with(&config, &mut store).await
}

/// [`reconcile_interrupted`] on a store already open (the rotation driver's, at its start). Blocks: call it off
/// the async workers.
pub async fn reconcile_with(config: &Config, store: &mut Store) -> Vec<String> {
    let open = store.journal_open_credentials().unwrap_or_default();
    let interrupted: Vec<String> = config
        .credentials
        .iter()
        .filter(|c| open.contains(&c.id))
        .map(|c| c.id.clone())
        .collect();
    if interrupted.is_empty() {
        return Vec::new();
    }
    let _ = store.make_durable();
    let vault = Vault::from_env().ok().flatten();
    let Ok(mut rotator) = Rotator::new(config, store, vault) else {
        return Vec::new();
    };
    let mut said = Vec::new();
    for cred in interrupted {
        if let Ok(report) = rotator.status(&cred).await {
            for line in report.lines.iter().filter(|l| l.kind == LineKind::Fail) {
                tracing::warn!("rotation of {cred}: {}", line.text);
                said.push(format!("{cred}: {}", line.text));
            }
        }
    }
    said
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    Ok,
    Fail,
    Note,
    Refused,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Line {
    pub kind: LineKind,
    pub text: String,
}

/// What one command did: printed as text by the CLI, shown by the wizard. Never holds a secret.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub credential: String,
    pub action: String,
    pub from: Phase,
    pub state: Phase,
    pub ok: bool,
    pub lines: Vec<Line>,
    pub next: String,
    pub accept_after: Option<DateTime<Utc>>,
    pub new_expires: Option<DateTime<Utc>>,
}

impl Report {
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{} {}: {} -> {}{}\n",
            self.credential,
            self.action,
            self.from,
            self.state,
            if self.ok { "" } else { " (FAILED)" }
        );
        for l in &self.lines {
            let tag = match l.kind {
                LineKind::Ok => "  OK    ",
                LineKind::Fail => "  FAIL  ",
                LineKind::Note => "  note  ",
                LineKind::Refused => "  REFUSED ",
            };
            out.push_str(tag);
            out.push_str(&l.text);
            out.push('\n');
        }
        if !self.next.is_empty() {
            out.push_str(&format!("next: {}\n", self.next));
        }
        out
    }
}

/// What comes next from a phase (one line, with the command).
pub fn next_hint(phase: Phase, cred: &str) -> String {
    match phase {
        Phase::Idle | Phase::Aborted | Phase::Completed => format!(
            "to rotate: generate a new secret in Setup > Installed Packages, then `authwatch rotate {cred} stage` (reads it from stdin)"
        ),
        Phase::Staged => {
            format!("`authwatch rotate {cred} verify` checks every consumer with the new secret")
        }
        Phase::Verified => format!(
            "`authwatch rotate {cred} promote` writes it where consumers read it (previous kept) and re-probes them"
        ),
        Phase::Promoted => format!(
            "activate the new secret in Setup (the old one dies at once), then `authwatch rotate {cred} activate --confirm {cred}`"
        ),
        Phase::Activated => {
            format!("fix what failed, then `authwatch rotate {cred} activate` re-runs the checks")
        }
    }
}

/// The integrations that use a credential: the consumers to verify and the people to tell.
pub fn consumers<'c>(config: &'c Config, credential: &str) -> Vec<&'c Integration> {
    config
        .integrations
        .iter()
        .filter(|i| i.credential == credential)
        .collect()
}

/// Where `secret_expires` of a credential is (or belongs) in the config file: "path:line".
pub fn expiry_line(config: &Config, credential: &str) -> Option<String> {
    let path = config.path.as_ref()?;
    let text = std::fs::read_to_string(path).ok()?;
    let lines: Vec<&str> = text.lines().collect();
    let id_line = lines.iter().position(|l| {
        let t = l.trim().replace(' ', "");
        t == format!("id=\"{credential}\"") || t == format!("id='{credential}'")
    })?;
    let end = lines[id_line + 1..]
        .iter()
        .position(|l| l.trim_start().starts_with('['))
        .map(|p| id_line + 1 + p)
        .unwrap_or(lines.len());
    let at = lines[id_line..end]
        .iter()
        .position(|l| l.trim_start().starts_with("secret_expires"))
        .map(|p| id_line + p)
        .unwrap_or(id_line);
    Some(format!("{}:{}", path.display(), at + 1))
}

/// Runs the state machine's effects for one credential at a time.
pub struct Rotator<'a> {
    config: &'a Config,
    store: &'a mut Store,
    vault: Option<Vault>,
    prober: Prober,
    actor: String,
    /// Where the steps come from: "cli", "console" or "api" (audited beside the actor).
    origin: String,
    /// A wizard session holds the lease across its steps: a step does not release it.
    keep_lease: bool,
    /// The pending secret, when entered in this process or read from the encrypted store.
    pending: Option<SecretString>,
    /// The previous secret kept in memory when there is no encrypted store (restore within this process).
    previous: Option<SecretString>,
    /// promote: the operator accepts that the previous secret cannot be kept durably.
    no_rollback: bool,
    /// stage: when Setup generated the secret (default: the stage time).
    generated_at: Option<DateTime<Utc>>,
    host: String,
}

/// The credential a step writes, and where.
#[derive(Clone, Copy)]
struct Place<'p> {
    cred: &'p str,
    credential: &'p Credential,
    sink: &'p Sink,
    state: &'p Rotation,
    phase: Phase,
}

/// An effect's outcome (Ok/Err: said to the operator), or a store error.
type StepResult = Result<Result<String, String>, RotateError>;

/// Which result a step's checks feed back into the state machine.
#[derive(Clone, Copy)]
enum Followup {
    Verify,
    Promote,
    Activate,
    Abort,
}

/// How long a lease of a holder on another host lives without a heartbeat.
const LEASE_STALE_MINUTES: i64 = 2;

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error("unknown credential `{0}`{1}")]
    UnknownCredential(String, String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Vault(#[from] crate::secrets::vault::VaultError),
    #[error(transparent)]
    Setup(#[from] crate::probe::ProbeSetupError),
}

impl<'a> Rotator<'a> {
    pub fn new(
        config: &'a Config,
        store: &'a mut Store,
        vault: Option<Vault>,
    ) -> Result<Self, RotateError> {
        Ok(Rotator {
            prober: Prober::new(&config.settings)?,
            config,
            store,
            vault,
            actor: crate::host::os_user().to_string(),
            origin: "cli".to_string(),
            keep_lease: false,
            pending: None,
            previous: None,
            no_rollback: false,
            generated_at: None,
            host: safety::host(),
        })
    }

    /// Who runs the steps and from where (audited; named to anyone refused by the lease).
    pub fn with_actor(mut self, name: &str, origin: &str) -> Self {
        self.actor = name.to_string();
        self.origin = origin.to_string();
        self
    }

    /// Keep the lease after each step (a wizard session holds it until it closes: see [`Rotator::hold`]).
    pub fn keeping_lease(mut self, yes: bool) -> Self {
        self.keep_lease = yes;
        self
    }

    /// Take the credential's lease for a session of several steps. Err: who holds it.
    pub fn hold(&mut self, cred: &str) -> Result<Result<Vec<Line>, String>, RotateError> {
        self.credential(cred)?;
        self.acquire(cred)
    }

    /// Give the lease back at the end of a session.
    pub fn unhold(&mut self, cred: &str) {
        self.keep_lease = false;
        self.release(cred);
    }

    /// promote: go ahead even though the previous secret cannot be kept durably (`--no-rollback`).
    pub fn with_no_rollback(mut self, yes: bool) -> Self {
        self.no_rollback = yes;
        self
    }

    /// stage: when Setup generated the new secret (SFMC counts 180 days and the staging delay from then).
    pub fn with_generated_at(mut self, at: Option<DateTime<Utc>>) -> Self {
        self.generated_at = at;
        self
    }

    pub fn store(&self) -> &Store {
        self.store
    }

    pub fn vault(&self) -> Option<&Vault> {
        self.vault.as_ref()
    }

    fn credential(&self, id: &str) -> Result<&'a Credential, RotateError> {
        self.config.credential(id).ok_or_else(|| {
            let ids = self.config.credentials.iter().map(|c| c.id.as_str());
            let hint = crate::suggest::nearest(id, ids)
                .map(|n| format!(": did you mean `{n}`?"))
                .unwrap_or_default();
            RotateError::UnknownCredential(id.to_string(), hint)
        })
    }

    pub fn state(&self, cred: &str) -> Result<Rotation, RotateError> {
        self.credential(cred)?;
        Ok(self
            .store
            .rotation(cred)?
            .unwrap_or_else(|| Rotation::idle(cred)))
    }

    /// Is the pending secret available (memory or encrypted store)? Loads it from the store if needed.
    pub fn has_pending(&mut self, cred: &str) -> bool {
        if self.pending.is_some() {
            return true;
        }
        if let Some(v) = &self.vault
            && let Ok(Some(s)) = v.get(&sinks::pending_name(cred))
        {
            self.pending = Some(s);
            return true;
        }
        false
    }

    /// Supply the pending secret again (after a restart without an encrypted store).
    pub fn set_pending(&mut self, secret: SecretString) {
        self.pending = Some(secret);
    }

    /// The secrets this driver holds in memory (pending, previous), to hand to the next driver for the same
    /// credential: a long-lived console switches between credentials without losing them.
    pub fn into_kept(self) -> (Option<SecretString>, Option<SecretString>) {
        (self.pending, self.previous)
    }

    /// Take back what [`Rotator::into_kept`] gave.
    pub fn with_kept(mut self, kept: (Option<SecretString>, Option<SecretString>)) -> Self {
        self.pending = kept.0;
        self.previous = kept.1;
        self
    }

    /// Whether `action` needs the pending secret and it is not available.
    pub fn needs_pending(&mut self, cred: &str, action: &str) -> bool {
        let Ok(state) = self.state(cred) else {
            return false;
        };
        let needs = matches!(
            (action, state.phase),
            ("verify", Phase::Staged | Phase::Verified) | ("promote", Phase::Verified)
        );
        needs && !self.has_pending(cred)
    }

    pub async fn status(&mut self, cred: &str) -> Result<Report, RotateError> {
        let credential = self.credential(cred)?;
        let mut lines = Vec::new();
        // Reconcile an interrupted step, unless a live holder is running one right now.
        match self.acquire(cred)? {
            Err(held) => lines.push(note(held)),
            Ok(took_over) => {
                lines.extend(took_over);
                let reconciled = self.reconcile(cred, credential).await;
                self.release(cred);
                lines.extend(reconciled?);
            }
        }
        let state = self.state(cred)?;
        let sink = Sink::for_credential(credential);
        lines.push(note(format!(
            "secret read from {}",
            credential.client_secret
        )));
        lines.push(note(format!("new secret goes to {}", sink.describe())));
        for (label, t) in [
            ("staged", state.staged_at),
            ("SFMC accepts it from", state.accept_after),
            ("verified", state.verified_at),
            ("promoted", state.promoted_at),
            ("activated", state.activated_at),
            ("completed", state.completed_at),
            ("generated in Setup", state.generated_at),
            ("new expiry", state.new_expires),
        ] {
            if let Some(t) = t {
                lines.push(note(format!("{label}: {}", utc_stamp(t))));
            }
        }
        if let Some(h) = state.sink_holds
            && state.phase.in_progress()
        {
            lines.push(note(format!("where consumers read it: {}", h.as_str())));
        }
        if matches!(state.phase, Phase::Staged | Phase::Verified) {
            lines.push(note(if self.has_pending(cred) {
                "pending secret: kept in the encrypted store".to_string()
            } else {
                format!(
                    "pending secret: not kept ({} not set): verify/promote ask for it again",
                    crate::secrets::vault::MASTER_KEY_ENV
                )
            }));
        }
        for f in &state.failures {
            lines.push(Line {
                kind: LineKind::Fail,
                text: f.clone(),
            });
        }
        for i in consumers(self.config, cred) {
            lines.push(note(format!("consumer {}", consumer_label(i))));
        }
        Ok(Report {
            credential: cred.into(),
            action: "status".into(),
            from: state.phase,
            state: state.phase,
            ok: true,
            lines,
            next: next_hint(state.phase, cred),
            accept_after: state.accept_after,
            new_expires: state.new_expires,
        })
    }

    /// Stage a new secret (replacing a pending one).
    pub async fn stage(&mut self, cred: &str, secret: SecretString) -> Result<Report, RotateError> {
        let credential = self.credential(cred)?;
        // Fingerprints of the new secret and of the one consumers read now: after a crash they tell which
        // one a sink holds. The key is random per rotation; neither secret is stored.
        let key = safety::new_key();
        let new = fingerprint(&key, &secret);
        let timeout = self.config.settings.secret_command_timeout;
        let old = credential
            .client_secret
            .resolve(timeout)
            .await
            .ok()
            .map(|s| fingerprint(&key, &s));
        let before = self.pending.replace(secret);
        let delay = crate::duration::to_chrono(self.config.settings.staging_delay);
        let mut report = self
            .run(
                cred,
                Input::Stage {
                    staging_delay: delay,
                    generated_at: self.generated_at.unwrap_or_else(Utc::now),
                    fingerprints: Some(Fingerprints { key, old, new }),
                },
            )
            .await?;
        if !report.ok {
            self.pending = before;
        } else if !Sink::for_credential(self.credential(cred)?).writable() {
            // Consumers are updated by hand later, maybe before promote: the old secret is still what the
            // credential reads now. It is checked to be refused after activation.
            let credential = self.credential(cred)?;
            if let Err(e) = self.keep_current(cred, credential).await {
                report.lines.push(note(format!(
                    "the current secret could not be kept to check it is refused after activation: {e}"
                )));
            }
        }
        Ok(report)
    }

    pub async fn verify(&mut self, cred: &str) -> Result<Report, RotateError> {
        self.run(cred, Input::Verify).await
    }

    pub async fn promote(
        &mut self,
        cred: &str,
        manual_confirmed: bool,
    ) -> Result<Report, RotateError> {
        let sink = Sink::for_credential(self.credential(cred)?);
        let writable = sink.writable();
        // A file keeps `.prev`; other sinks keep the previous secret in the encrypted store only.
        let rollback_kept = matches!(sink, Sink::File(_)) || self.vault.is_some();
        let mut report = self
            .run(
                cred,
                Input::Promote {
                    writable,
                    manual_confirmed,
                    rollback_kept,
                    no_rollback: self.no_rollback,
                },
            )
            .await?;
        if !writable
            && !manual_confirmed
            && report.from == Phase::Verified
            && report.state == Phase::Verified
            && (rollback_kept || self.no_rollback)
        {
            let credential = self.credential(cred)?;
            let Sink::Manual { what } = Sink::for_credential(credential) else {
                unreachable!()
            };
            report.lines.push(note(format!("update {what}")));
            for i in consumers(self.config, cred) {
                report
                    .lines
                    .push(note(format!("  consumer {}", consumer_label(i))));
            }
            report.next = format!(
                "once every one is updated: `authwatch rotate {cred} promote --confirm-manual`"
            );
        }
        Ok(report)
    }

    pub async fn activate(&mut self, cred: &str, confirmed: bool) -> Result<Report, RotateError> {
        self.run(cred, Input::Activate { confirmed }).await
    }

    pub async fn abort(&mut self, cred: &str) -> Result<Report, RotateError> {
        self.run(cred, Input::Abort).await
    }

    fn audit(
        &mut self,
        cred: &str,
        action: &str,
        from: Phase,
        to: Phase,
        result: &str,
        details: String,
    ) -> Result<(), RotateError> {
        self.store.append_audit(&AuditEntry {
            at: Utc::now(),
            actor: self.actor.clone(),
            origin: self.origin.clone(),
            credential: cred.to_string(),
            action: action.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            result: result.to_string(),
            // Details quote server answers and command output: known secrets redacted, controls escaped.
            details: crate::sanitize::clean(&details),
        })?;
        Ok(())
    }

    /// Audit a step refused before it ran (someone else's session holds the rotation). Logged if it fails.
    pub fn audit_refusal(&mut self, cred: &str, action: &str, why: &str) {
        let phase = self.state(cred).map(|r| r.phase).unwrap_or(Phase::Idle);
        if let Err(e) = self.audit(cred, action, phase, phase, "refused", why.to_string()) {
            tracing::error!("cannot audit a refused rotation step of {cred}: {e}");
        }
    }

    /// Take the credential's rotation lease. Err: who holds it (a refusal to show); Ok: notes on a takeover.
    fn acquire(&mut self, cred: &str) -> Result<Result<Vec<Line>, String>, RotateError> {
        let now = Utc::now();
        let me = crate::store::Lease {
            credential: cred.to_string(),
            holder: if self.origin == "cli" {
                self.actor.clone()
            } else {
                format!("{} via {}", self.actor, self.origin)
            },
            host: self.host.clone(),
            pid: std::process::id(),
            since: now,
            heartbeat: now,
        };
        let stale = chrono::Duration::minutes(LEASE_STALE_MINUTES);
        Ok(
            match self.store.acquire_lease(&me, stale, safety::pid_alive)? {
                crate::store::LeaseOutcome::Acquired => Ok(Vec::new()),
                crate::store::LeaseOutcome::TakenOver(l) => Ok(vec![note(format!(
                    "took over the rotation lease of {} (pid {} on {}, since {}): that process is gone",
                    l.holder,
                    l.pid,
                    l.host,
                    utc_stamp(l.since)
                ))]),
                crate::store::LeaseOutcome::Held(l) => Err(format!(
                    "a rotation step of {cred} is running: held by {} (pid {} on {}) since {}: wait for it to finish",
                    l.holder,
                    l.pid,
                    l.host,
                    utc_stamp(l.since)
                )),
            },
        )
    }

    fn release(&mut self, cred: &str) {
        if self.keep_lease {
            return;
        }
        if let Err(e) = self
            .store
            .release_lease(cred, &self.host, std::process::id())
        {
            tracing::error!("cannot release the rotation lease of {cred}: {e}");
        }
    }

    /// Journal the intent of an effect with an outside consequence (synced before the effect runs).
    fn intent(&mut self, cred: &str, effect: &str, phase: Phase) -> Result<i64, RotateError> {
        let now = Utc::now();
        let id = self
            .store
            .journal_intent(cred, effect, phase.as_str(), now)?;
        self.store
            .heartbeat_lease(cred, &self.host, std::process::id(), now)?;
        Ok(id)
    }

    fn done(&mut self, id: i64, result: &Result<String, String>) -> Result<(), RotateError> {
        let text = match result {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("failed: {e}"),
        };
        self.store.journal_result(id, &text, Utc::now())?;
        Ok(())
    }
}

/// What the place consumers read the secret from holds, read the way they read it. None: no fingerprints
/// (a rotation staged before they existed).
async fn read_holds(
    timeout: std::time::Duration,
    state: &Rotation,
    credential: &Credential,
) -> Result<Option<Holds>, String> {
    {
        let Some(fp) = &state.fingerprints else {
            return Ok(None);
        };
        let current = credential
            .client_secret
            .resolve(timeout)
            .await
            .map_err(|e| e.to_string())?;
        let h = fingerprint(&fp.key, &current);
        Ok(Some(if h == fp.new {
            Holds::New
        } else if fp.old.as_ref() == Some(&h) {
            Holds::Old
        } else {
            Holds::Neither
        }))
    }
}

impl<'a> Rotator<'a> {
    /// An effect that was started and never reported back (the process died): find out what is true from the
    /// sink itself, close the journal entries, set the state and say so.
    async fn reconcile(
        &mut self,
        cred: &str,
        credential: &Credential,
    ) -> Result<Vec<Line>, RotateError> {
        let open = self.store.journal_open(cred)?;
        let Some(first) = open.first() else {
            return Ok(Vec::new());
        };
        let mut state = self.state(cred)?;
        let holds = read_holds(
            self.config.settings.secret_command_timeout,
            &state,
            credential,
        )
        .await;
        let what = match &holds {
            Ok(Some(h)) => format!("the sink holds {}", h.as_str()),
            Ok(None) => "what the sink holds is unknown (no fingerprints)".to_string(),
            Err(e) => format!("the sink cannot be read ({e})"),
        };
        let new = matches!(holds, Ok(Some(Holds::New)));
        let effect = open.last().map(|e| e.effect.as_str()).unwrap_or("");
        let advice = match (effect, state.phase) {
            ("keep-previous" | "write-sink", _) if new => format!(
                "run `authwatch rotate {cred} promote` again (re-probes the consumers; the kept previous secret is not touched), or abort to restore the old one"
            ),
            ("keep-previous" | "write-sink", _) => {
                format!("run `authwatch rotate {cred} promote` again, or abort")
            }
            ("restore", _) => format!(
                "run `authwatch rotate {cred} abort` again (it restores and reads back the old secret)"
            ),
            (_, Phase::Activated) => format!(
                "run `authwatch rotate {cred} activate` again to re-run the checks and finish"
            ),
            _ => format!("check `authwatch rotate {cred} status`"),
        };
        let step = match effect {
            "keep-previous" | "write-sink" => "promote",
            "restore" => "abort",
            "record-expiry" | "drop-previous" | "discard-pending" => "activate",
            other => other,
        };
        let text = format!(
            "{step} was interrupted ({effect} started {} and never finished): {what}; {advice}",
            utc_stamp(first.intent_at)
        );
        if let Ok(h) = holds {
            state.sink_holds = h;
        }
        if matches!(holds, Ok(Some(Holds::Neither))) {
            state.failures = vec![format!(
                "the sink holds neither the old nor the new secret: changed outside authwatch? check it before going on"
            )];
        }
        let now = Utc::now();
        self.store.save_rotation(&state.credential, &state, now)?;
        for e in &open {
            self.store
                .journal_result(e.id, &format!("interrupted; reconciled: {what}"), now)?;
        }
        self.audit(
            cred,
            "reconcile",
            state.phase,
            state.phase,
            "ok",
            text.clone(),
        )?;
        Ok(vec![Line {
            kind: LineKind::Fail,
            text,
        }])
    }

    /// Feed an input under the credential's lease: reconcile an interrupted step first, then run the effects
    /// (feeding check results back), journaled, persisted and audited.
    async fn run(&mut self, cred: &str, input: Input) -> Result<Report, RotateError> {
        let credential = self.credential(cred)?;
        let _in_flight = StepInFlight::start();
        let start = self.state(cred)?;
        let mut lines = match self.acquire(cred)? {
            Ok(lines) => lines,
            Err(held) => {
                // Refused without touching the state, and audited so the trail shows the attempt.
                self.audit(
                    cred,
                    input.action(),
                    start.phase,
                    start.phase,
                    "refused",
                    held.clone(),
                )?;
                return Ok(Report {
                    credential: cred.into(),
                    action: input.action().to_string(),
                    from: start.phase,
                    state: start.phase,
                    ok: false,
                    lines: vec![Line {
                        kind: LineKind::Refused,
                        text: held,
                    }],
                    next: String::new(),
                    accept_after: start.accept_after,
                    new_expires: start.new_expires,
                });
            }
        };
        let result = match self.reconcile(cred, credential).await {
            Ok(found) => {
                lines.extend(found);
                self.run_held(cred, credential, input, lines).await
            }
            Err(e) => Err(e),
        };
        self.release(cred);
        result
    }

    async fn run_held(
        &mut self,
        cred: &str,
        credential: &'a Credential,
        input: Input,
        mut lines: Vec<Line>,
    ) -> Result<Report, RotateError> {
        let sink = Sink::for_credential(credential);
        let start = self.state(cred)?;
        let from = start.phase;
        let action = input.action().to_string();
        let mut state = start;
        let mut ok = true;
        let mut queue = vec![input];
        while let Some(input) = queue.pop() {
            let now = Utc::now();
            let (mut next, mut effects) = fsm::step(state.clone(), input.clone(), now);
            // The step's own audit entry goes before the entries of the checks it runs.
            effects.sort_by_key(|e| !matches!(e, Effect::Audit { .. }));
            let phase = next.phase;
            // Results of the checks among the effects: they become the next input.
            let mut failures: Vec<String> = Vec::new();
            let mut old_works: Option<bool> = None;
            let mut followup: Option<Followup> = None;
            for effect in effects {
                match effect {
                    Effect::Refused(reason) => {
                        ok = false;
                        lines.push(Line {
                            kind: LineKind::Refused,
                            text: reason,
                        });
                    }
                    Effect::Note(t) => lines.push(note(t)),
                    Effect::KeepPending => match (&self.vault, &self.pending) {
                        (Some(v), Some(secret)) => {
                            v.set(&sinks::pending_name(cred), secret)?;
                            lines.push(note(format!(
                                "the new secret is kept encrypted in {} until the rotation ends",
                                v.path().display()
                            )));
                        }
                        _ => lines.push(note(format!(
                            "the new secret is NOT kept ({} is not set): verify and promote will ask for it again, as will anything after a restart",
                            crate::secrets::vault::MASTER_KEY_ENV
                        ))),
                    },
                    Effect::DiscardPending => {
                        let id = self.intent(cred, "discard-pending", phase)?;
                        self.pending = None;
                        if let Some(v) = &self.vault {
                            v.remove(&sinks::pending_name(cred))?;
                        }
                        self.done(id, &Ok(String::new()))?;
                        lines.push(note("pending secret discarded".into()));
                    }
                    Effect::CheckNewSecret => {
                        followup = Some(Followup::Verify);
                        let secret = self.pending.clone();
                        match secret {
                            Some(s) => {
                                let too_early = state.accept_after.is_some_and(|t| now < t);
                                self.check_consumers(
                                    cred,
                                    credential,
                                    Some(&s),
                                    too_early,
                                    &mut lines,
                                    &mut failures,
                                    phase,
                                )
                                .await?;
                            }
                            None => failures.push(format!(
                                "the pending secret is not available (not kept without {}): stage it again",
                                crate::secrets::vault::MASTER_KEY_ENV
                            )),
                        }
                    }
                    Effect::WriteSink => {
                        followup = Some(Followup::Promote);
                        match self.write_sink(Place { cred, credential, sink: &sink, state: &state, phase }).await? {
                            Ok(text) => {
                                next.sink_holds = Some(Holds::New);
                                self.audit(cred, "write-sink", phase, phase, "ok", text.clone())?;
                                lines.push(good(text));
                            }
                            Err(e) => {
                                self.audit(cred, "write-sink", phase, phase, "failed", e.clone())?;
                                lines.push(fail(e.clone()));
                                failures.push(e);
                            }
                        }
                    }
                    Effect::CheckOldWorks => {
                        followup = Some(Followup::Promote);
                        if failures.is_empty() {
                            old_works = self.check_old_works(cred, credential, &sink, &mut lines, phase).await?;
                        }
                    }
                    Effect::ReprobeConsumers => {
                        followup = Some(Followup::Promote);
                        if failures.is_empty() {
                            self.check_consumers_after_promote(cred, credential, &sink, &mut lines, &mut failures, phase)
                                .await?;
                        }
                    }
                    Effect::RestorePrevious => {
                        let aborting = matches!(input, Input::Abort);
                        if aborting {
                            followup = Some(Followup::Abort);
                        }
                        let restored = self.restore(Place { cred, credential, sink: &sink, state: &state, phase }).await?;
                        match restored {
                            Ok(t) => {
                                next.sink_holds = Some(Holds::Old);
                                lines.push(good(t));
                            }
                            Err(e) if aborting => {
                                lines.push(fail(e.clone()));
                                failures.push(e);
                            }
                            Err(e) => {
                                // After a failed promotion: say so in the trail, the state stays verified.
                                ok = false;
                                self.audit(cred, "restore", phase, phase, "failed", e.clone())?;
                                lines.push(fail(e));
                            }
                        }
                    }
                    Effect::CheckOldRefused { proves } => {
                        followup = Some(Followup::Activate);
                        self.check_old_refused(cred, credential, &sink, proves, &state, &mut lines, &mut failures, phase)
                            .await?;
                    }
                    Effect::CheckNewWorks => {
                        followup = Some(Followup::Activate);
                        self.check_consumers_after_promote(cred, credential, &sink, &mut lines, &mut failures, phase)
                            .await?;
                        fault("activate-checks");
                    }
                    Effect::RecordExpiry(t) => {
                        let id = self.intent(cred, "record-expiry", phase)?;
                        self.store.record_expiry(cred, t, now)?;
                        fault("activate-record-expiry");
                        self.done(id, &Ok(String::new()))?;
                        let place = expiry_line(self.config, cred)
                            .map(|l| format!(" at {l}"))
                            .unwrap_or_default();
                        lines.push(note(format!(
                            "new expiry {} recorded (used by check and the calendar); update the config{place}: secret_expires = {}",
                            utc_stamp(t),
                            t.format("%Y-%m-%d")
                        )));
                    }
                    Effect::DropPrevious => {
                        let id = self.intent(cred, "drop-previous", phase)?;
                        if let Some(t) = sinks::drop_previous(&sink) {
                            lines.push(note(t));
                        }
                        if let Some(v) = &self.vault {
                            v.remove(&sinks::previous_name(cred))?;
                        }
                        self.previous = None;
                        fault("drop-previous");
                        self.done(id, &Ok(String::new()))?;
                    }
                    Effect::Audit {
                        action,
                        from,
                        to,
                        result,
                        details,
                    } => {
                        if result == AuditResult::Failed {
                            ok = false;
                        }
                        self.audit(cred, action, from, to, result.as_str(), details)?;
                    }
                }
            }
            state = next;
            self.store.save_rotation(&state.credential, &state, now)?;
            if let Some(kind) = followup {
                if !failures.is_empty() {
                    ok = false;
                }
                queue.push(match kind {
                    Followup::Verify => Input::VerifyDone { failures },
                    Followup::Promote => Input::PromoteDone {
                        failures,
                        old_works,
                    },
                    Followup::Activate => Input::ActivateDone { failures },
                    Followup::Abort => Input::AbortDone { failures },
                });
            }
        }
        Ok(Report {
            credential: cred.into(),
            action,
            from,
            state: state.phase,
            ok,
            lines,
            next: next_hint(state.phase, cred),
            accept_after: state.accept_after,
            new_expires: state.new_expires,
        })
    }

    /// Put the previous secret back (journaled), then read the sink the way consumers do: success only when it
    /// really holds the old secret again.
    async fn restore(&mut self, place: Place<'_>) -> StepResult {
        let (cred, credential, sink) = (place.cred, place.credential, place.sink);
        let (state, phase) = (place.state, place.phase);
        let previous = self.previous_secret(cred, sink);
        let timeout = self.config.settings.secret_command_timeout;
        let id = self.intent(cred, "restore", phase)?;
        let mut result =
            sinks::restore(sink, previous.as_ref(), self.vault.as_ref(), timeout).await;
        fault("abort-restore");
        if let Ok(text) = &result {
            if matches!(sink, Sink::Command { .. }) {
                self.audit(cred, "update-command", phase, phase, "ok", text.clone())?;
            }
            result = match read_holds(
                self.config.settings.secret_command_timeout,
                state,
                credential,
            )
            .await
            {
                Ok(Some(Holds::Old)) => {
                    Ok(format!("{text}; read back: the old secret is in place"))
                }
                Ok(None) => Ok(format!(
                    "{text} (not read back: this rotation has no fingerprints)"
                )),
                Ok(Some(h)) => Err(format!(
                    "{text}, but reading it back through {} finds {}: the old secret is NOT in place",
                    credential.client_secret,
                    h.as_str()
                )),
                Err(e) => Err(format!("{text}, but it cannot be read back: {e}")),
            };
        } else if let Err(e) = &result
            && matches!(sink, Sink::Command { .. })
        {
            self.audit(cred, "update-command", phase, phase, "failed", e.clone())?;
        }
        self.done(id, &result)?;
        Ok(result)
    }

    fn previous_secret(&self, cred: &str, sink: &Sink) -> Option<SecretString> {
        sinks::kept_previous(sink)
            .or_else(|| {
                self.vault
                    .as_ref()
                    .and_then(|v| v.get(&sinks::previous_name(cred)).ok().flatten())
            })
            .or_else(|| self.previous.clone())
    }

    /// Keep the current secret (only when the sink still holds the OLD one) and write the new one, journaled.
    async fn write_sink(&mut self, place: Place<'_>) -> StepResult {
        let (cred, credential, sink) = (place.cred, place.credential, place.sink);
        let (state, phase) = (place.state, place.phase);
        let Some(new) = self.pending.clone() else {
            return Ok(Err(
                "the pending secret is not available: stage it again".to_string()
            ));
        };
        let timeout = self.config.settings.secret_command_timeout;
        // A repeated promote (after a crash) finds the NEW secret there: what was kept stays as it is.
        let keep = match read_holds(
            self.config.settings.secret_command_timeout,
            state,
            credential,
        )
        .await
        {
            Ok(Some(Holds::New)) => false,
            Ok(Some(Holds::Neither)) => {
                return Ok(Err(format!(
                    "{} holds neither the old nor the new secret (changed outside authwatch?): not overwriting it; check it, then abort or stage again",
                    credential.client_secret
                )));
            }
            Ok(Some(Holds::Old) | None) => true,
            Err(_) if matches!(sink, Sink::File(_)) => true,
            Err(e) => {
                return Ok(Err(format!(
                    "cannot read the current secret to keep it: {e}"
                )));
            }
        };
        if keep {
            let id = self.intent(cred, "keep-previous", phase)?;
            let kept = self.keep_current(cred, credential).await;
            self.done(id, &kept.clone().map(|()| String::new()))?;
            if let Err(e) = kept
                && !matches!(sink, Sink::File(_))
            {
                return Ok(Err(format!("cannot keep the current secret: {e}")));
            }
        }
        let id = self.intent(cred, "write-sink", phase)?;
        let result = sinks::write_new(sink, &new, self.vault.as_ref(), timeout, keep).await;
        fault("promote-sink-write");
        self.done(id, &result)?;
        Ok(result)
    }

    /// Keep the secret the credential reads now as the previous one (memory, and the encrypted store when there
    /// is one), unless it already is the pending secret.
    async fn keep_current(&mut self, cred: &str, credential: &Credential) -> Result<(), String> {
        use secrecy::ExposeSecret;
        let timeout = self.config.settings.secret_command_timeout;
        let current = credential
            .client_secret
            .resolve(timeout)
            .await
            .map_err(|e| e.to_string())?;
        if self
            .pending
            .as_ref()
            .is_some_and(|p| p.expose_secret() == current.expose_secret())
        {
            return Ok(());
        }
        if let Some(v) = &self.vault {
            v.set(&sinks::previous_name(cred), &current)
                .map_err(|e| e.to_string())?;
        }
        self.previous = Some(current);
        Ok(())
    }

    /// Checks every consumer with the secret it now reads: the sink's for writable sinks; for manual sinks,
    /// whose consumers are updated by hand, the pending secret they were given.
    async fn check_consumers_after_promote(
        &mut self,
        cred: &str,
        credential: &Credential,
        sink: &Sink,
        lines: &mut Vec<Line>,
        failures: &mut Vec<String>,
        phase: Phase,
    ) -> Result<(), RotateError> {
        let secret = if sink.writable() {
            None
        } else {
            self.pending.clone()
        };
        self.check_consumers(
            cred,
            credential,
            secret.as_ref(),
            false,
            lines,
            failures,
            phase,
        )
        .await
    }

    /// Probe every consumer; `secret`: this secret, else the credential's reference (as consumers read it).
    #[allow(clippy::too_many_arguments)]
    async fn check_consumers(
        &mut self,
        cred: &str,
        credential: &Credential,
        secret: Option<&SecretString>,
        too_early: bool,
        lines: &mut Vec<Line>,
        failures: &mut Vec<String>,
        phase: Phase,
    ) -> Result<(), RotateError> {
        let list = consumers(self.config, cred);
        if list.is_empty() {
            let f = format!("no [[integration]] uses {cred}: nothing to verify");
            lines.push(fail(f.clone()));
            failures.push(f);
            return Ok(());
        }
        let cache = TokenCache::new();
        let timeout = self.config.settings.secret_command_timeout;
        for integration in list {
            let target = ProbeTarget {
                integration,
                credential,
            };
            let result = match secret {
                Some(s) => {
                    let source =
                        move || -> futures::future::BoxFuture<'_, Result<SecretString, String>> {
                            let s = s.clone();
                            Box::pin(async move { Ok(s) })
                        };
                    probe::probe(
                        &self.prober,
                        &cache,
                        target,
                        &source,
                        Freshness::fresh_batch(),
                    )
                    .await
                }
                None => {
                    let source = probe::secret_source(&credential.client_secret, timeout);
                    probe::probe(
                        &self.prober,
                        &cache,
                        target,
                        &source,
                        Freshness::fresh_batch(),
                    )
                    .await
                }
            };
            let (passed, text) = match result {
                Err(probe::NotProbed::Secret(e)) => (
                    false,
                    format!("{}: cannot read the secret: {e}", integration.name),
                ),
                Ok(r) => describe_probe(integration, &r, too_early),
            };
            self.audit(
                cred,
                "check",
                phase,
                phase,
                if passed { "ok" } else { "failed" },
                text.clone(),
            )?;
            if passed {
                lines.push(good(text));
            } else {
                lines.push(fail(text.clone()));
                failures.push(text);
            }
        }
        Ok(())
    }

    /// At promote, before anything is activated: does the old secret still get a token? (None: could not tell.)
    async fn check_old_works(
        &mut self,
        cred: &str,
        credential: &Credential,
        sink: &Sink,
        lines: &mut Vec<Line>,
        phase: Phase,
    ) -> Result<Option<bool>, RotateError> {
        let Some(old) = self.previous_secret(cred, sink) else {
            return Ok(None);
        };
        let answer = old_secret_answer(&self.prober, self.config, cred, credential, &old).await;
        let (works, text) = match answer {
            Ok(_) => (Some(true), "old secret still works (until the new one is activated in Setup)".to_string()),
            Err(f) if f.http_status == Some(401) && f.outcome == Outcome::AuthRejected => (
                Some(false),
                "old secret ALREADY refused before activation (expired or revoked in Setup?): its refusal after activation will prove nothing".to_string(),
            ),
            Err(f) => (None, format!("could not tell whether the old secret still works: {}", f.outcome)),
        };
        self.audit(cred, "check", phase, phase, "ok", text.clone())?;
        lines.push(note(text));
        Ok(works)
    }

    #[allow(clippy::too_many_arguments)]
    async fn check_old_refused(
        &mut self,
        cred: &str,
        credential: &Credential,
        sink: &Sink,
        proves: bool,
        state: &Rotation,
        lines: &mut Vec<Line>,
        failures: &mut Vec<String>,
        phase: Phase,
    ) -> Result<(), RotateError> {
        let Some(old) = self.previous_secret(cred, sink) else {
            let t = format!(
                "old secret not checked: it was not kept (file sinks keep .prev; others need {})",
                crate::secrets::vault::MASTER_KEY_ENV
            );
            self.audit(cred, "check", phase, phase, "skipped", t.clone())?;
            lines.push(note(t));
            return Ok(());
        };
        let answer = old_secret_answer(&self.prober, self.config, cred, credential, &old).await;
        let (passed, text) = match answer {
            Err(f) if f.http_status == Some(401) && f.outcome == Outcome::AuthRejected && !proves => (
                true,
                format!(
                    "old secret refused, but that proves nothing: it was already refused at promote ({}), before anything was activated; make sure the NEW secret is the active one in Setup",
                    state.promoted_at.map(utc_stamp).unwrap_or_else(|| "before activation".into())
                ),
            ),
            Err(f) if f.http_status == Some(401) && f.outcome == Outcome::AuthRejected => (
                true,
                format!(
                    "old secret refused ({} {})",
                    401,
                    f.error.as_deref().unwrap_or("invalid_client")
                ),
            ),
            Ok(_) => (
                false,
                "the OLD secret is still accepted: activate the new secret in Setup > Installed Packages, then run activate again".to_string(),
            ),
            Err(f) => (
                false,
                format!(
                    "could not confirm the old secret is refused: {}{}",
                    f.outcome,
                    f.error.map(|e| format!(" ({e})")).unwrap_or_default()
                ),
            ),
        };
        self.audit(
            cred,
            "check",
            phase,
            phase,
            if passed { "ok" } else { "failed" },
            text.clone(),
        )?;
        if passed && !proves {
            lines.push(note(text));
        } else if passed {
            lines.push(good(text));
        } else {
            lines.push(fail(text.clone()));
            failures.push(text);
        }
        Ok(())
    }
}

/// A token request with the old secret, for the first consumer's business unit.
async fn old_secret_answer(
    prober: &Prober,
    config: &Config,
    cred: &str,
    credential: &Credential,
    old: &SecretString,
) -> Result<crate::probe::Token, crate::probe::classify::Failure> {
    let account = consumers(config, cred)
        .first()
        .and_then(|i| i.account_id.clone());
    prober
        .request_token(credential, old, account.as_deref(), &[])
        .await
}

fn consumer_label(i: &Integration) -> String {
    let mut parts = vec![i.name.clone()];
    if let Some(t) = &i.team {
        parts.push(format!("team {t}"));
    }
    if let Some(b) = &i.business_unit {
        parts.push(format!("BU {b}"));
    }
    if let Some(m) = &i.account_id {
        parts.push(format!("MID {m}"));
    }
    parts.join(", ")
}

/// One consumer's verification, in words: (passed, text). Never contains a secret.
pub fn describe_probe(
    integration: &Integration,
    r: &crate::model::ProbeResult,
    too_early: bool,
) -> (bool, String) {
    let name = &integration.name;
    match r.outcome {
        Outcome::Ok => {
            let scopes = if integration.scopes.is_empty() {
                String::new()
            } else {
                format!(", scopes {}", integration.scopes.join(" "))
            };
            let mid = r
                .mid
                .as_ref()
                .map(|m| format!(", MID {m}"))
                .unwrap_or_default();
            (true, format!("{name}: token granted{scopes}, call ok{mid}"))
        }
        Outcome::ScopeMissing => (
            false,
            format!(
                "{name}: new secret lacks {}: the package was edited?",
                r.missing_scopes.join(", ")
            ),
        ),
        Outcome::AuthRejected => (
            false,
            format!(
                "{name}: token request refused ({} {}): {}",
                r.http_status.map(|s| s.to_string()).unwrap_or_default(),
                r.error.as_deref().unwrap_or("invalid_client"),
                if too_early {
                    "SFMC may not accept the staged secret yet (staging delay), or the secret is wrong"
                } else {
                    "the new secret is wrong (a typo, another package's secret?)"
                }
            ),
        ),
        Outcome::WrongAccount => (
            false,
            format!(
                "{name}: wrong business unit: {}",
                r.error.as_deref().unwrap_or("MID mismatch")
            ),
        ),
        other => (
            false,
            format!(
                "{name}: {other}{}",
                r.error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            ),
        ),
    }
}

fn note(text: String) -> Line {
    Line {
        kind: LineKind::Note,
        text,
    }
}
fn good(text: String) -> Line {
    Line {
        kind: LineKind::Ok,
        text,
    }
}
fn fail(text: String) -> Line {
    Line {
        kind: LineKind::Fail,
        text,
    }
}
