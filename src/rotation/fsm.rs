//! The rotation state machine, pure: `step(state, input, now) -> (state, effects)`.
//!
//! It never sees a secret, a clock or the network: the driver ([`super::Rotator`]) holds the pending secret, runs
//! the effects (checks, sink writes, audit) and feeds their results back as inputs (`*Done`). A refused input
//! leaves the state unchanged and yields [`Effect::Refused`] with the reason (and an audit entry saying so).

use crate::duration::utc_stamp;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// SFMC client secrets expire this long after they are generated (activation is when the new one takes over).
pub const SECRET_LIFETIME_DAYS: i64 = 180;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Idle,
    Staged,
    Verified,
    Promoted,
    Activated,
    Completed,
    Aborted,
}

impl Phase {
    pub const ALL: [Phase; 7] = [
        Phase::Idle,
        Phase::Staged,
        Phase::Verified,
        Phase::Promoted,
        Phase::Activated,
        Phase::Completed,
        Phase::Aborted,
    ];
    /// The wizard's steps, in order.
    pub const STEPS: [Phase; 5] = [
        Phase::Staged,
        Phase::Verified,
        Phase::Promoted,
        Phase::Activated,
        Phase::Completed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Staged => "staged",
            Phase::Verified => "verified",
            Phase::Promoted => "promoted",
            Phase::Activated => "activated",
            Phase::Completed => "completed",
            Phase::Aborted => "aborted",
        }
    }

    pub fn parse(s: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// A rotation is in progress (a pending secret or a promoted one exists).
    pub fn in_progress(self) -> bool {
        matches!(
            self,
            Phase::Staged | Phase::Verified | Phase::Promoted | Phase::Activated
        )
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the place consumers read the secret from held when authwatch last looked (keyed fingerprints).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Holds {
    Old,
    New,
    /// Neither the old nor the new secret: changed by someone else.
    Neither,
}

impl Holds {
    pub fn as_str(self) -> &'static str {
        match self {
            Holds::Old => "the OLD secret",
            Holds::New => "the NEW secret",
            Holds::Neither => "neither the old nor the new secret",
        }
    }
}

/// Keyed fingerprints (HMAC-SHA256 with a random key per rotation) of the old and the new secret: they tell which
/// one a sink holds after a crash without keeping either secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Fingerprints {
    /// Hex; random per rotation.
    pub key: String,
    pub old: Option<String>,
    pub new: String,
}

/// The persisted state of one credential's rotation. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    pub credential: String,
    pub phase: Phase,
    pub staged_at: Option<DateTime<Utc>>,
    /// When SFMC accepts the staged secret (staged + staging_delay).
    pub accept_after: Option<DateTime<Utc>>,
    pub verified_at: Option<DateTime<Utc>>,
    pub promoted_at: Option<DateTime<Utc>>,
    pub activated_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// generation + 180 days, set once activation's checks passed.
    pub new_expires: Option<DateTime<Utc>>,
    /// Why the last check failed (empty after a passing one).
    #[serde(default)]
    pub failures: Vec<String>,
    /// When the new secret was generated in Setup (SFMC counts its 180 days from then).
    #[serde(default)]
    pub generated_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub fingerprints: Option<Fingerprints>,
    /// What the sink held when authwatch last looked (after a write, a restore or a reconciliation).
    #[serde(default)]
    pub sink_holds: Option<Holds>,
    /// Whether the old secret still got a token at promote (before anything was activated).
    #[serde(default)]
    pub old_worked_at_promote: Option<bool>,
}

impl Rotation {
    pub fn idle(credential: &str) -> Rotation {
        Rotation {
            credential: credential.to_string(),
            phase: Phase::Idle,
            staged_at: None,
            accept_after: None,
            verified_at: None,
            promoted_at: None,
            activated_at: None,
            completed_at: None,
            new_expires: None,
            failures: Vec::new(),
            generated_at: None,
            fingerprints: None,
            sink_holds: None,
            old_worked_at_promote: None,
        }
    }
}

/// What the operator asks for, or what a check the driver ran came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A new secret was entered (the driver holds it); SFMC accepts it `staging_delay` after generation.
    Stage {
        staging_delay: Duration,
        /// When Setup generated it (default: now).
        generated_at: DateTime<Utc>,
        fingerprints: Option<Fingerprints>,
    },
    Verify,
    /// Result of [`Effect::CheckNewSecret`]: empty = every consumer passed.
    VerifyDone {
        failures: Vec<String>,
    },
    /// `writable`: authwatch can write the sink (file, store, command with an update command); otherwise
    /// (env, command without update) the operator must update it by hand and confirm with `manual_confirmed`.
    /// `rollback_kept`: the previous secret can be kept durably (file `.prev`, or the encrypted store);
    /// `no_rollback`: the operator accepts promoting without a way back.
    Promote {
        writable: bool,
        manual_confirmed: bool,
        rollback_kept: bool,
        no_rollback: bool,
    },
    /// Result of [`Effect::WriteSink`] + [`Effect::CheckOldWorks`] + [`Effect::ReprobeConsumers`].
    PromoteDone {
        failures: Vec<String>,
        old_works: Option<bool>,
    },
    /// `confirmed`: the operator typed the credential id (they activated the secret in Setup).
    Activate {
        confirmed: bool,
    },
    /// Result of [`Effect::CheckOldRefused`] + [`Effect::CheckNewWorks`].
    ActivateDone {
        failures: Vec<String>,
    },
    Abort,
    /// Result of [`Effect::RestorePrevious`] when aborting after promotion: empty = the previous secret is back.
    AbortDone {
        failures: Vec<String>,
    },
}

impl Input {
    /// The audit action name.
    pub fn action(&self) -> &'static str {
        match self {
            Input::Stage { .. } => "stage",
            Input::Verify => "verify",
            Input::VerifyDone { .. } => "verify-result",
            Input::Promote { .. } => "promote",
            Input::PromoteDone { .. } => "promote-result",
            Input::Activate { .. } => "activate",
            Input::ActivateDone { .. } => "activate-result",
            Input::Abort => "abort",
            Input::AbortDone { .. } => "abort-result",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditResult {
    Ok,
    Failed,
    Refused,
    Requested,
}

impl AuditResult {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditResult::Ok => "ok",
            AuditResult::Failed => "failed",
            AuditResult::Refused => "refused",
            AuditResult::Requested => "requested",
        }
    }
}

/// Work for the driver, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// The input is refused; the state is unchanged.
    Refused(String),
    /// Something to tell the operator.
    Note(String),
    /// Keep the entered secret as the pending one (encrypted store when available, else memory only).
    KeepPending,
    DiscardPending,
    /// Token request + scopes + representative call + MID for every consumer, with the pending secret.
    CheckNewSecret,
    /// Keep the current secret (`path.prev`, store entry) and write the pending one to the sink.
    WriteSink,
    /// Does the old secret still get a token (before activation)? Recorded: a refusal after activation only
    /// proves something when it was accepted before.
    CheckOldWorks,
    /// Probe every consumer again, reading the secret the way they do (the sink).
    ReprobeConsumers,
    /// Put the previous secret back into the sink.
    RestorePrevious,
    /// The old secret must now be refused (401 invalid_client). `proves`: false when it was already refused
    /// at promote, so its refusal now says nothing about the activation.
    CheckOldRefused {
        proves: bool,
    },
    /// The new secret, read from the sink, must work for every consumer.
    CheckNewWorks,
    RecordExpiry(DateTime<Utc>),
    /// Delete the kept previous secret (`path.prev`).
    DropPrevious,
    Audit {
        action: &'static str,
        from: Phase,
        to: Phase,
        result: AuditResult,
        details: String,
    },
}

fn refuse(state: Rotation, input: &Input, reason: String) -> (Rotation, Vec<Effect>) {
    let phase = state.phase;
    (
        state,
        vec![
            Effect::Refused(reason.clone()),
            Effect::Audit {
                action: input.action(),
                from: phase,
                to: phase,
                result: AuditResult::Refused,
                details: reason,
            },
        ],
    )
}

fn audit(input: &Input, from: Phase, to: Phase, result: AuditResult, details: String) -> Effect {
    Effect::Audit {
        action: input.action(),
        from,
        to,
        result,
        details,
    }
}

/// Why an input is refused in a state where nothing is in progress or it comes too late.
fn not_now(phase: Phase, cred: &str) -> String {
    match phase {
        Phase::Idle | Phase::Aborted | Phase::Completed => format!(
            "no rotation of {cred} is in progress ({phase}): generate a secret in Setup > Installed Packages, then `authwatch rotate {cred} stage`"
        ),
        Phase::Staged => format!(
            "the new secret of {cred} is staged but not verified: run `authwatch rotate {cred} verify` first"
        ),
        Phase::Verified => format!(
            "the new secret of {cred} is verified but not promoted: run `authwatch rotate {cred} promote` first (every consumer must have it before the old one dies)"
        ),
        Phase::Promoted => format!(
            "the new secret of {cred} is already verified and promoted: next, activate it in Setup, then `authwatch rotate {cred} activate --confirm {cred}`"
        ),
        Phase::Activated => format!(
            "the new secret of {cred} was activated: run `authwatch rotate {cred} activate` to re-run the activation checks"
        ),
    }
}

/// Abort where the new secret is in the sink: restore first, aborted only once it is back.
fn restore_requested(state: Rotation, input: &Input, details: &str) -> (Rotation, Vec<Effect>) {
    let phase = state.phase;
    let effects = vec![
        Effect::RestorePrevious,
        audit(input, phase, phase, AuditResult::Requested, details.into()),
    ];
    (state, effects)
}

fn already_promoted(cred: &str) -> String {
    format!(
        "the new secret of {cred} is already where consumers read it: `authwatch rotate {cred} abort` first (restores the previous one) to stage another"
    )
}

const NO_ROLLBACK: &str = "there is no rollback after activation: SFMC deactivated the old secret the moment the new one was activated, so restoring it would break every consumer; if something fails now, fix the consumer (it needs the new secret) or generate and rotate again";

/// The transition function. Pure: same inputs, same outputs.
pub fn step(state: Rotation, input: Input, now: DateTime<Utc>) -> (Rotation, Vec<Effect>) {
    use Phase::*;
    let from = state.phase;
    let cred = state.credential.clone();
    match (&input, from) {
        (
            Input::Stage {
                staging_delay,
                generated_at,
                fingerprints,
            },
            Idle | Staged | Verified | Aborted | Completed,
        ) => {
            if from == Verified && state.sink_holds == Some(Holds::New) {
                return refuse(state, &input, already_promoted(&cred));
            }
            let accept_after = *generated_at + *staging_delay;
            let mut next = Rotation::idle(&cred);
            next.phase = Staged;
            next.staged_at = Some(now);
            next.accept_after = Some(accept_after);
            next.generated_at = Some(*generated_at);
            next.fingerprints = fingerprints.clone();
            let mut effects = vec![Effect::KeepPending];
            if matches!(from, Staged | Verified) {
                effects.push(Effect::Note(
                    "the new secret replaces the pending one (verify it again)".into(),
                ));
            }
            effects.push(Effect::Note(format!(
                "SFMC accepts a staged secret {} after it was generated: from about {}",
                crate::duration::format_duration(staging_delay.to_std().unwrap_or_default()),
                utc_stamp(accept_after)
            )));
            effects.push(audit(
                &input,
                from,
                Staged,
                AuditResult::Ok,
                format!("accepted by SFMC from {}", utc_stamp(accept_after)),
            ));
            (next, effects)
        }
        (Input::Stage { .. }, Promoted) => refuse(state, &input, already_promoted(&cred)),
        (Input::Stage { .. }, Activated) => refuse(
            state,
            &input,
            format!(
                "the new secret of {cred} was activated: finish with `authwatch rotate {cred} activate` (re-runs the checks) before a new rotation"
            ),
        ),
        (Input::Verify, Staged | Verified) => {
            let mut effects = Vec::new();
            if let Some(accept) = state.accept_after
                && now < accept
            {
                effects.push(Effect::Note(format!(
                    "SFMC may not accept the staged secret yet (until about {}, the staging delay after generation): a refusal now can just mean it is too early",
                    utc_stamp(accept)
                )));
            }
            effects.push(Effect::CheckNewSecret);
            effects.push(audit(
                &input,
                from,
                from,
                AuditResult::Requested,
                "checking every consumer with the new secret".into(),
            ));
            (state, effects)
        }
        (Input::Verify, _) => refuse(state, &input, not_now(from, &cred)),
        (Input::VerifyDone { failures }, Staged | Verified) => {
            let mut next = state;
            if failures.is_empty() {
                next.phase = Verified;
                next.verified_at = Some(now);
                next.failures.clear();
                let e = audit(
                    &input,
                    from,
                    Verified,
                    AuditResult::Ok,
                    "every consumer works with the new secret".into(),
                );
                (next, vec![e])
            } else {
                next.phase = Staged;
                next.verified_at = None;
                next.failures = failures.clone();
                let e = audit(
                    &input,
                    from,
                    Staged,
                    AuditResult::Failed,
                    failures.join("; "),
                );
                (next, vec![e])
            }
        }
        (Input::VerifyDone { .. }, _) => refuse(
            state,
            &input,
            format!("no verification of {cred} was running ({from})"),
        ),
        (
            Input::Promote {
                writable,
                manual_confirmed,
                rollback_kept,
                no_rollback,
            },
            Verified,
        ) => {
            if !rollback_kept && !no_rollback {
                return refuse(
                    state,
                    &input,
                    format!(
                        "authwatch cannot keep {cred}'s current secret durably (a command or env reference needs {} for the encrypted store): without it an abort or a crash could leave no way back; set {} and run promote again, or pass --no-rollback to promote without one",
                        crate::secrets::vault::MASTER_KEY_ENV,
                        crate::secrets::vault::MASTER_KEY_ENV
                    ),
                );
            }
            if !writable && !manual_confirmed {
                return refuse(
                    state,
                    &input,
                    format!(
                        "authwatch cannot write where {cred}'s secret is read from: update it by hand everywhere listed, then confirm"
                    ),
                );
            }
            let mut effects = Vec::new();
            if *writable {
                effects.push(Effect::WriteSink);
            }
            effects.push(Effect::CheckOldWorks);
            effects.push(Effect::ReprobeConsumers);
            effects.push(audit(
                &input,
                from,
                from,
                AuditResult::Requested,
                if *writable {
                    "writing the new secret (previous kept)".into()
                } else {
                    "operator confirmed the manual update".into()
                },
            ));
            (state, effects)
        }
        (Input::Promote { .. }, _) => refuse(state, &input, not_now(from, &cred)),
        (
            Input::PromoteDone {
                failures,
                old_works,
            },
            Verified,
        ) => {
            let mut next = state;
            next.old_worked_at_promote = *old_works;
            if failures.is_empty() {
                next.phase = Promoted;
                next.promoted_at = Some(now);
                next.failures.clear();
                let e = audit(
                    &input,
                    from,
                    Promoted,
                    AuditResult::Ok,
                    "every consumer passed with the promoted secret".into(),
                );
                (next, vec![e])
            } else {
                next.failures = failures.clone();
                let e = audit(
                    &input,
                    from,
                    Verified,
                    AuditResult::Failed,
                    format!(
                        "consumers failed, restoring the previous secret: {}",
                        failures.join("; ")
                    ),
                );
                (next, vec![Effect::RestorePrevious, e])
            }
        }
        (Input::PromoteDone { .. }, _) => refuse(
            state,
            &input,
            format!("no promotion of {cred} was running ({from})"),
        ),
        (Input::Activate { confirmed }, Promoted) => {
            if !confirmed {
                return refuse(
                    state,
                    &input,
                    format!(
                        "activation is the point of no return: activate the secret in Setup, then confirm by typing the credential id (`--confirm {cred}`)"
                    ),
                );
            }
            let proves = state.old_worked_at_promote != Some(false);
            let mut next = state;
            next.phase = Activated;
            next.activated_at = Some(now);
            let effects = vec![
                Effect::CheckOldRefused { proves },
                Effect::CheckNewWorks,
                audit(
                    &input,
                    from,
                    Activated,
                    AuditResult::Ok,
                    "operator confirmed activation in Setup; checking".into(),
                ),
            ];
            (next, effects)
        }
        (Input::Activate { .. }, Activated) => {
            let effects = vec![
                Effect::CheckOldRefused {
                    proves: state.old_worked_at_promote != Some(false),
                },
                Effect::CheckNewWorks,
                audit(
                    &input,
                    from,
                    from,
                    AuditResult::Requested,
                    "re-running the activation checks".into(),
                ),
            ];
            (state, effects)
        }
        (Input::Activate { .. }, _) => refuse(state, &input, not_now(from, &cred)),
        (Input::ActivateDone { failures }, Activated) => {
            let mut next = state;
            if failures.is_empty() {
                // SFMC counts the 180 days from generation, not from activation.
                let born = next.generated_at.or(next.staged_at).unwrap_or(now);
                let expires = born + Duration::days(SECRET_LIFETIME_DAYS);
                next.phase = Completed;
                next.completed_at = Some(now);
                next.new_expires = Some(expires);
                next.failures.clear();
                let e = audit(
                    &input,
                    from,
                    Completed,
                    AuditResult::Ok,
                    format!(
                        "old secret refused, new secret works everywhere; new expiry {} (generated {} + {SECRET_LIFETIME_DAYS} days)",
                        utc_stamp(expires),
                        utc_stamp(born)
                    ),
                );
                (
                    next,
                    vec![
                        Effect::RecordExpiry(expires),
                        Effect::DropPrevious,
                        Effect::DiscardPending,
                        e,
                    ],
                )
            } else {
                next.failures = failures.clone();
                let e = audit(
                    &input,
                    from,
                    Activated,
                    AuditResult::Failed,
                    failures.join("; "),
                );
                (next, vec![e])
            }
        }
        (Input::ActivateDone { .. }, _) => refuse(
            state,
            &input,
            format!("no activation check of {cred} was running ({from})"),
        ),
        // A promote that was interrupted after writing: the new secret is where consumers read it.
        (Input::Abort, Staged | Verified) if state.sink_holds == Some(Holds::New) => {
            restore_requested(
                state,
                &input,
                "the sink holds the new secret (interrupted promote): restoring the previous one",
            )
        }
        (Input::Abort, Staged | Verified) => {
            let mut next = state;
            next.phase = Aborted;
            next.failures.clear();
            let effects = vec![
                Effect::DiscardPending,
                audit(
                    &input,
                    from,
                    Aborted,
                    AuditResult::Ok,
                    "pending secret discarded".into(),
                ),
            ];
            (next, effects)
        }
        // The previous secret must be back in the sink before the rotation counts as aborted.
        (Input::Abort, Promoted) => {
            restore_requested(state, &input, "restoring the previous secret")
        }
        (Input::AbortDone { failures }, Staged | Verified | Promoted) => {
            let mut next = state;
            if failures.is_empty() {
                next.phase = Aborted;
                next.failures.clear();
                next.sink_holds = Some(Holds::Old);
                let e = audit(
                    &input,
                    from,
                    Aborted,
                    AuditResult::Ok,
                    "previous secret restored and read back, pending one discarded".into(),
                );
                (next, vec![Effect::DropPrevious, Effect::DiscardPending, e])
            } else {
                next.failures = failures.clone();
                let e = audit(
                    &input,
                    from,
                    from,
                    AuditResult::Failed,
                    format!(
                        "previous secret NOT restored (kept for another try): {}",
                        failures.join("; ")
                    ),
                );
                (next, vec![e])
            }
        }
        (Input::AbortDone { .. }, _) => refuse(
            state,
            &input,
            format!("no abort of {cred} was running ({from})"),
        ),
        (Input::Abort, Activated | Completed) => refuse(state, &input, NO_ROLLBACK.into()),
        (Input::Abort, Idle | Aborted) => refuse(
            state,
            &input,
            format!("no rotation of {cred} is in progress ({from}): nothing to abort"),
        ),
    }
}
