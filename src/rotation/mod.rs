//! Guided secret rotation: stage -> verify -> promote -> activate -> completed (or aborted), per credential.
//!
//! [`fsm`] is the pure state machine; [`Rotator`] is the thin driver that runs its effects (checks against SFMC
//! with the new secret, writing the sink, the audit trail) and persists the state in the store. The pending
//! secret lives in memory and, when `AUTHWATCH_MASTER_KEY` is set, in the encrypted store
//! ([`crate::secrets::vault`]) so that it survives restarts; otherwise it must be entered again.

pub mod fsm;
pub mod session;
pub mod sinks;

use crate::config::{Config, Credential, Integration};
use crate::duration::utc_stamp;
use crate::model::Outcome;
use crate::probe::{self, Freshness, ProbeTarget, Prober, TokenCache};
use crate::secrets::vault::Vault;
use crate::store::{AuditEntry, Store};
use chrono::{DateTime, Utc};
use fsm::{AuditResult, Effect, Input, Phase, Rotation};
use secrecy::SecretString;
use serde::Serialize;
use sinks::Sink;

/// The expiry `check`, the calendar and the console should use for a credential: the one recorded at the newest
/// activation when there is one, else the configured `secret_expires`.
pub fn effective_expiry(store: &Store, credential_id: &str) -> Option<DateTime<Utc>> {
    store.recorded_expiry(credential_id).ok().flatten()
}

/// Replace each credential's `secret_expires` by the one recorded at activation, when newer.
pub fn apply_effective_expiries(config: &mut Config, store: &Store) {
    for c in &mut config.credentials {
        if let Some(recorded) = effective_expiry(store, &c.id)
            && c.secret_expires
                .is_none_or(|configured| recorded > configured)
        {
            c.secret_expires = Some(recorded);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    Ok,
    Fail,
    Note,
    Refused,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    /// The pending secret, when entered in this process or read from the encrypted store.
    pending: Option<SecretString>,
    /// The previous secret kept in memory when there is no encrypted store (restore within this process).
    previous: Option<SecretString>,
}

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
            pending: None,
            previous: None,
        })
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

    pub fn status(&mut self, cred: &str) -> Result<Report, RotateError> {
        let credential = self.credential(cred)?;
        let state = self.state(cred)?;
        let mut lines = Vec::new();
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
            ("new expiry", state.new_expires),
        ] {
            if let Some(t) = t {
                lines.push(note(format!("{label}: {}", utc_stamp(t))));
            }
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
        let before = self.pending.replace(secret);
        let delay = crate::duration::to_chrono(self.config.settings.staging_delay);
        let mut report = self
            .run(
                cred,
                Input::Stage {
                    staging_delay: delay,
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
        let writable = Sink::for_credential(self.credential(cred)?).writable();
        let mut report = self
            .run(
                cred,
                Input::Promote {
                    writable,
                    manual_confirmed,
                },
            )
            .await?;
        if !writable && !manual_confirmed && report.from == Phase::Verified {
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
            credential: cred.to_string(),
            action: action.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            result: result.to_string(),
            details,
        })?;
        Ok(())
    }

    /// Feed an input, run the effects (feeding check results back), persist and audit.
    async fn run(&mut self, cred: &str, input: Input) -> Result<Report, RotateError> {
        let credential = self.credential(cred)?;
        let sink = Sink::for_credential(credential);
        let start = self.state(cred)?;
        let from = start.phase;
        let action = input.action().to_string();
        let mut state = start;
        let mut lines: Vec<Line> = Vec::new();
        let mut ok = true;
        let mut queue = vec![input];
        while let Some(input) = queue.pop() {
            let now = Utc::now();
            let (next, mut effects) = fsm::step(state.clone(), input.clone(), now);
            // The step's own audit entry goes before the entries of the checks it runs.
            effects.sort_by_key(|e| !matches!(e, Effect::Audit { .. }));
            let phase = next.phase;
            // Results of the checks among the effects: they become the next input.
            let mut failures: Vec<String> = Vec::new();
            let mut followup: Option<fn(Vec<String>) -> Input> = None;
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
                        self.pending = None;
                        if let Some(v) = &self.vault {
                            v.remove(&sinks::pending_name(cred))?;
                            v.remove(&sinks::previous_name(cred))?;
                        }
                        lines.push(note("pending secret discarded".into()));
                    }
                    Effect::CheckNewSecret => {
                        followup = Some(|failures| Input::VerifyDone { failures });
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
                        followup = Some(|failures| Input::PromoteDone { failures });
                        match self.write_sink(cred, credential, &sink).await {
                            Ok(text) => lines.push(good(text)),
                            Err(e) => failures.push(e),
                        }
                    }
                    Effect::ReprobeConsumers => {
                        followup = Some(|failures| Input::PromoteDone { failures });
                        if failures.is_empty() {
                            // Manual sinks: consumers are updated by hand; check the secret they were given.
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
                                &mut lines,
                                &mut failures,
                                phase,
                            )
                            .await?;
                        }
                    }
                    Effect::RestorePrevious => {
                        let aborting = matches!(input, Input::Abort);
                        if aborting {
                            followup = Some(|failures| Input::AbortDone { failures });
                        }
                        let previous = self.previous_secret(cred, &sink);
                        let timeout = self.config.settings.secret_command_timeout;
                        match sinks::restore(&sink, previous.as_ref(), self.vault.as_ref(), timeout).await {
                            Ok(t) => lines.push(good(t)),
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
                    Effect::CheckOldRefused => {
                        followup = Some(|failures| Input::ActivateDone { failures });
                        self.check_old_refused(cred, credential, &sink, &mut lines, &mut failures, phase)
                            .await?;
                    }
                    Effect::CheckNewWorks => {
                        followup = Some(|failures| Input::ActivateDone { failures });
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
                            &mut lines,
                            &mut failures,
                            phase,
                        )
                        .await?;
                    }
                    Effect::RecordExpiry(t) => {
                        self.store.record_expiry(cred, t, now)?;
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
                        if let Some(t) = sinks::drop_previous(&sink) {
                            lines.push(note(t));
                        }
                        self.previous = None;
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
            if let Some(make) = followup {
                if !failures.is_empty() {
                    ok = false;
                }
                queue.push(make(failures));
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

    fn previous_secret(&self, cred: &str, sink: &Sink) -> Option<SecretString> {
        sinks::kept_previous(sink)
            .or_else(|| {
                self.vault
                    .as_ref()
                    .and_then(|v| v.get(&sinks::previous_name(cred)).ok().flatten())
            })
            .or_else(|| self.previous.clone())
    }

    async fn write_sink(
        &mut self,
        cred: &str,
        credential: &Credential,
        sink: &Sink,
    ) -> Result<String, String> {
        let new = self
            .pending
            .clone()
            .ok_or_else(|| "the pending secret is not available: stage it again".to_string())?;
        let timeout = self.config.settings.secret_command_timeout;
        // Keep the current secret: needed to restore on abort and to check it is refused after activation.
        match self.keep_current(cred, credential).await {
            Ok(()) => {}
            Err(e) if !matches!(sink, Sink::File(_)) => {
                return Err(format!("cannot read the current secret to keep it: {e}"));
            }
            Err(_) => {}
        }
        sinks::write_new(sink, &new, self.vault.as_ref(), timeout).await
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

    async fn check_old_refused(
        &mut self,
        cred: &str,
        credential: &Credential,
        sink: &Sink,
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
        let account = consumers(self.config, cred)
            .first()
            .and_then(|i| i.account_id.clone());
        let answer = self
            .prober
            .request_token(credential, &old, account.as_deref(), &[])
            .await;
        let (passed, text) = match answer {
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
        if passed {
            lines.push(good(text));
        } else {
            lines.push(fail(text.clone()));
            failures.push(text);
        }
        Ok(())
    }
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
