//! The rotation state machine as a table: (state, input) -> (state, effects), every refused transition included.

use authwatch::rotation::fsm::{AuditResult, Effect, Holds, Input, Phase, Rotation, step};
use chrono::{DateTime, Duration, TimeZone, Utc};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn state(phase: Phase) -> Rotation {
    let mut r = Rotation::idle("crm");
    r.phase = phase;
    if phase != Phase::Idle {
        r.staged_at = Some(now() - Duration::minutes(10));
        r.accept_after = Some(now() - Duration::minutes(5));
    }
    r
}

fn inputs() -> Vec<(&'static str, Input)> {
    vec![
        (
            "stage",
            Input::Stage {
                staging_delay: Duration::minutes(5),
                generated_at: now(),
                fingerprints: None,
            },
        ),
        ("verify", Input::Verify),
        ("verify_ok", Input::VerifyDone { failures: vec![] }),
        (
            "verify_fail",
            Input::VerifyDone {
                failures: vec!["x: lacks email_read".into()],
            },
        ),
        (
            "promote",
            Input::Promote {
                writable: true,
                manual_confirmed: false,
                rollback_kept: true,
                no_rollback: false,
            },
        ),
        (
            "promote_manual",
            Input::Promote {
                writable: false,
                manual_confirmed: false,
                rollback_kept: true,
                no_rollback: false,
            },
        ),
        (
            "promote_manual_ok",
            Input::Promote {
                writable: false,
                manual_confirmed: true,
                rollback_kept: true,
                no_rollback: false,
            },
        ),
        (
            "promote_ok",
            Input::PromoteDone {
                failures: vec![],
                old_works: Some(true),
            },
        ),
        (
            "promote_fail",
            Input::PromoteDone {
                failures: vec!["x: 401".into()],
                old_works: Some(true),
            },
        ),
        ("activate", Input::Activate { confirmed: true }),
        ("activate_unconfirmed", Input::Activate { confirmed: false }),
        ("activate_ok", Input::ActivateDone { failures: vec![] }),
        (
            "activate_fail",
            Input::ActivateDone {
                failures: vec!["old still accepted".into()],
            },
        ),
        ("abort", Input::Abort),
        ("abort_ok", Input::AbortDone { failures: vec![] }),
        (
            "abort_fail",
            Input::AbortDone {
                failures: vec!["update command failed".into()],
            },
        ),
    ]
}

/// Effects in short form; the audit entry as `audit:<result>`.
fn summary(effects: &[Effect]) -> String {
    effects
        .iter()
        .map(|e| match e {
            Effect::Refused(_) => "refused".to_string(),
            Effect::Note(_) => "note".into(),
            Effect::KeepPending => "keep_pending".into(),
            Effect::DiscardPending => "discard_pending".into(),
            Effect::CheckNewSecret => "check_new_secret".into(),
            Effect::WriteSink => "write_sink".into(),
            Effect::ReprobeConsumers => "reprobe".into(),
            Effect::RestorePrevious => "restore_previous".into(),
            Effect::CheckOldRefused { proves: true } => "check_old_refused".into(),
            Effect::CheckOldRefused { proves: false } => "check_old_refused_proves_nothing".into(),
            Effect::CheckOldWorks => "check_old_works".into(),
            Effect::CheckNewWorks => "check_new_works".into(),
            Effect::RecordExpiry(_) => "record_expiry".into(),
            Effect::DropPrevious => "drop_previous".into(),
            Effect::Audit { result, .. } => format!("audit:{}", result.as_str()),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

const R: &str = "refused audit:refused";

/// (from, input, to, effects). Every phase x every input.
#[rustfmt::skip]
const TABLE: &[(&str, &str, &str, &str)] = &[
    // idle
    ("idle", "stage", "staged", "keep_pending note audit:ok"),
    ("idle", "verify", "idle", R),
    ("idle", "verify_ok", "idle", R),
    ("idle", "verify_fail", "idle", R),
    ("idle", "promote", "idle", R),
    ("idle", "promote_manual", "idle", R),
    ("idle", "promote_manual_ok", "idle", R),
    ("idle", "promote_ok", "idle", R),
    ("idle", "promote_fail", "idle", R),
    ("idle", "activate", "idle", R),
    ("idle", "activate_unconfirmed", "idle", R),
    ("idle", "activate_ok", "idle", R),
    ("idle", "activate_fail", "idle", R),
    ("idle", "abort", "idle", R),
    ("idle", "abort_ok", "idle", R),
    ("idle", "abort_fail", "idle", R),
    // staged
    ("staged", "stage", "staged", "keep_pending note note audit:ok"),
    ("staged", "verify", "staged", "check_new_secret audit:requested"),
    ("staged", "verify_ok", "verified", "audit:ok"),
    ("staged", "verify_fail", "staged", "audit:failed"),
    ("staged", "promote", "staged", R),
    ("staged", "promote_manual", "staged", R),
    ("staged", "promote_manual_ok", "staged", R),
    ("staged", "promote_ok", "staged", R),
    ("staged", "promote_fail", "staged", R),
    ("staged", "activate", "staged", R),
    ("staged", "activate_unconfirmed", "staged", R),
    ("staged", "activate_ok", "staged", R),
    ("staged", "activate_fail", "staged", R),
    ("staged", "abort", "aborted", "discard_pending audit:ok"),
    ("staged", "abort_ok", "aborted", "drop_previous discard_pending audit:ok"),
    ("staged", "abort_fail", "staged", "audit:failed"),
    // verified
    ("verified", "stage", "staged", "keep_pending note note audit:ok"),
    ("verified", "verify", "verified", "check_new_secret audit:requested"),
    ("verified", "verify_ok", "verified", "audit:ok"),
    ("verified", "verify_fail", "staged", "audit:failed"),
    ("verified", "promote", "verified", "write_sink check_old_works reprobe audit:requested"),
    ("verified", "promote_manual", "verified", R),
    ("verified", "promote_manual_ok", "verified", "check_old_works reprobe audit:requested"),
    ("verified", "promote_ok", "promoted", "audit:ok"),
    ("verified", "promote_fail", "verified", "restore_previous audit:failed"),
    ("verified", "activate", "verified", R),
    ("verified", "activate_unconfirmed", "verified", R),
    ("verified", "activate_ok", "verified", R),
    ("verified", "activate_fail", "verified", R),
    ("verified", "abort", "aborted", "discard_pending audit:ok"),
    ("verified", "abort_ok", "aborted", "drop_previous discard_pending audit:ok"),
    ("verified", "abort_fail", "verified", "audit:failed"),
    // promoted
    ("promoted", "stage", "promoted", R),
    ("promoted", "verify", "promoted", R),
    ("promoted", "verify_ok", "promoted", R),
    ("promoted", "verify_fail", "promoted", R),
    ("promoted", "promote", "promoted", R),
    ("promoted", "promote_manual", "promoted", R),
    ("promoted", "promote_manual_ok", "promoted", R),
    ("promoted", "promote_ok", "promoted", R),
    ("promoted", "promote_fail", "promoted", R),
    ("promoted", "activate", "activated", "check_old_refused check_new_works audit:ok"),
    ("promoted", "activate_unconfirmed", "promoted", R),
    ("promoted", "activate_ok", "promoted", R),
    ("promoted", "activate_fail", "promoted", R),
    ("promoted", "abort", "promoted", "restore_previous audit:requested"),
    ("promoted", "abort_ok", "aborted", "drop_previous discard_pending audit:ok"),
    ("promoted", "abort_fail", "promoted", "audit:failed"),
    // activated
    ("activated", "stage", "activated", R),
    ("activated", "verify", "activated", R),
    ("activated", "verify_ok", "activated", R),
    ("activated", "verify_fail", "activated", R),
    ("activated", "promote", "activated", R),
    ("activated", "promote_manual", "activated", R),
    ("activated", "promote_manual_ok", "activated", R),
    ("activated", "promote_ok", "activated", R),
    ("activated", "promote_fail", "activated", R),
    ("activated", "activate", "activated", "check_old_refused check_new_works audit:requested"),
    ("activated", "activate_unconfirmed", "activated", "check_old_refused check_new_works audit:requested"),
    ("activated", "activate_ok", "completed", "record_expiry drop_previous discard_pending audit:ok"),
    ("activated", "activate_fail", "activated", "audit:failed"),
    ("activated", "abort", "activated", R),
    ("activated", "abort_ok", "activated", R),
    ("activated", "abort_fail", "activated", R),
    // completed
    ("completed", "stage", "staged", "keep_pending note audit:ok"),
    ("completed", "verify", "completed", R),
    ("completed", "verify_ok", "completed", R),
    ("completed", "verify_fail", "completed", R),
    ("completed", "promote", "completed", R),
    ("completed", "promote_manual", "completed", R),
    ("completed", "promote_manual_ok", "completed", R),
    ("completed", "promote_ok", "completed", R),
    ("completed", "promote_fail", "completed", R),
    ("completed", "activate", "completed", R),
    ("completed", "activate_unconfirmed", "completed", R),
    ("completed", "activate_ok", "completed", R),
    ("completed", "activate_fail", "completed", R),
    ("completed", "abort", "completed", R),
    ("completed", "abort_ok", "completed", R),
    ("completed", "abort_fail", "completed", R),
    // aborted
    ("aborted", "stage", "staged", "keep_pending note audit:ok"),
    ("aborted", "verify", "aborted", R),
    ("aborted", "verify_ok", "aborted", R),
    ("aborted", "verify_fail", "aborted", R),
    ("aborted", "promote", "aborted", R),
    ("aborted", "promote_manual", "aborted", R),
    ("aborted", "promote_manual_ok", "aborted", R),
    ("aborted", "promote_ok", "aborted", R),
    ("aborted", "promote_fail", "aborted", R),
    ("aborted", "activate", "aborted", R),
    ("aborted", "activate_unconfirmed", "aborted", R),
    ("aborted", "activate_ok", "aborted", R),
    ("aborted", "activate_fail", "aborted", R),
    ("aborted", "abort", "aborted", R),
    ("aborted", "abort_ok", "aborted", R),
    ("aborted", "abort_fail", "aborted", R),
];

#[test]
fn every_state_and_input_is_in_the_table_and_matches() {
    let inputs = inputs();
    assert_eq!(TABLE.len(), Phase::ALL.len() * inputs.len());
    let mut mismatches = Vec::new();
    for phase in Phase::ALL {
        for (label, input) in &inputs {
            let row = TABLE
                .iter()
                .find(|r| r.0 == phase.as_str() && r.1 == *label)
                .unwrap_or_else(|| panic!("no row for ({phase}, {label})"));
            let before = state(phase);
            let (after, effects) = step(before.clone(), input.clone(), now());
            let got = (after.phase.as_str(), summary(&effects));
            if got != (row.2, row.3.to_string()) {
                mismatches.push(format!(
                    "({phase}, {label}): want ({}, {}), got ({}, {})",
                    row.2, row.3, got.0, got.1
                ));
            }
            if effects.iter().any(|e| matches!(e, Effect::Refused(_))) {
                assert_eq!(
                    after, before,
                    "a refused input changes nothing: ({phase}, {label})"
                );
            }
            // Every transition is audited exactly once.
            let audits = effects
                .iter()
                .filter(|e| matches!(e, Effect::Audit { .. }))
                .count();
            assert_eq!(audits, 1, "({phase}, {label})");
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn every_refusal_says_why_and_what_to_do() {
    for phase in Phase::ALL {
        for (label, input) in inputs() {
            let (_, effects) = step(state(phase), input, now());
            for e in &effects {
                if let Effect::Refused(reason) = e {
                    assert!(
                        reason.len() > 30,
                        "({phase}, {label}) reason too short: {reason}"
                    );
                    let audited = effects.iter().any(|a| matches!(a, Effect::Audit { result: AuditResult::Refused, details, .. } if details == reason));
                    assert!(
                        audited,
                        "({phase}, {label}) refusal not audited with its reason"
                    );
                }
            }
        }
    }
}

#[test]
fn abort_after_activation_explains_there_is_no_rollback() {
    for phase in [Phase::Activated, Phase::Completed] {
        let (_, effects) = step(state(phase), Input::Abort, now());
        let Effect::Refused(reason) = &effects[0] else {
            panic!("{effects:?}")
        };
        assert!(reason.contains("no rollback"), "{reason}");
        assert!(reason.contains("deactivated the old secret"), "{reason}");
    }
}

#[test]
fn stage_records_when_sfmc_accepts_and_verify_warns_before_that() {
    let (s, effects) = step(
        Rotation::idle("crm"),
        Input::Stage {
            staging_delay: Duration::minutes(5),
            generated_at: now(),
            fingerprints: None,
        },
        now(),
    );
    assert_eq!(s.staged_at, Some(now()));
    assert_eq!(s.accept_after, Some(now() + Duration::minutes(5)));
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Note(n) if n.contains("2026-03-01 12:05:00")))
    );
    // One minute later: too early.
    let (_, effects) = step(s.clone(), Input::Verify, now() + Duration::minutes(1));
    assert!(
        matches!(&effects[0], Effect::Note(n) if n.contains("may not accept")),
        "{effects:?}"
    );
    // After the delay: no warning.
    let (_, effects) = step(s, Input::Verify, now() + Duration::minutes(6));
    assert_eq!(effects[0], Effect::CheckNewSecret);
}

#[test]
fn expiry_is_generation_plus_180_days_recorded_only_when_activation_checks_pass() {
    let generated = now() - Duration::days(3);
    let (s, _) = step(
        Rotation::idle("crm"),
        Input::Stage {
            staging_delay: Duration::minutes(5),
            generated_at: generated,
            fingerprints: None,
        },
        now(),
    );
    assert_eq!(s.generated_at, Some(generated));
    // SFMC accepts it the staging delay after generation, not after staging.
    assert_eq!(s.accept_after, Some(generated + Duration::minutes(5)));
    let mut s = s;
    s.phase = Phase::Promoted;
    let (s, effects) = step(s, Input::Activate { confirmed: true }, now());
    assert_eq!(
        s.new_expires, None,
        "nothing recorded before the checks pass"
    );
    assert!(!effects.iter().any(|e| matches!(e, Effect::RecordExpiry(_))));
    let (s, effects) = step(
        s,
        Input::ActivateDone {
            failures: vec!["old still accepted".into()],
        },
        now(),
    );
    assert_eq!(s.phase, Phase::Activated);
    assert_eq!(s.new_expires, None);
    assert!(!effects.iter().any(|e| matches!(e, Effect::RecordExpiry(_))));
    assert_eq!(s.failures, vec!["old still accepted".to_string()]);
    let (s, effects) = step(s, Input::ActivateDone { failures: vec![] }, now());
    assert_eq!(s.phase, Phase::Completed);
    assert!(s.failures.is_empty());
    assert_eq!(s.new_expires, Some(generated + Duration::days(180)));
    assert_eq!(
        effects[0],
        Effect::RecordExpiry(generated + Duration::days(180))
    );
}

#[test]
fn an_old_secret_already_refused_at_promote_proves_nothing_at_activation() {
    let (s, _) = step(
        state(Phase::Verified),
        Input::PromoteDone {
            failures: vec![],
            old_works: Some(false),
        },
        now(),
    );
    assert_eq!(s.old_worked_at_promote, Some(false));
    let (_, effects) = step(s, Input::Activate { confirmed: true }, now());
    assert!(
        effects.contains(&Effect::CheckOldRefused { proves: false }),
        "{effects:?}"
    );
}

#[test]
fn without_a_durable_previous_secret_promote_needs_no_rollback() {
    let promote = |no_rollback| Input::Promote {
        writable: true,
        manual_confirmed: false,
        rollback_kept: false,
        no_rollback,
    };
    let (s, effects) = step(state(Phase::Verified), promote(false), now());
    let Effect::Refused(reason) = &effects[0] else {
        panic!("{effects:?}")
    };
    assert!(reason.contains("AUTHWATCH_MASTER_KEY"), "{reason}");
    assert!(reason.contains("--no-rollback"), "{reason}");
    let (_, effects) = step(s, promote(true), now());
    assert_eq!(effects[0], Effect::WriteSink, "{effects:?}");
}

#[test]
fn after_an_interrupted_promote_abort_restores_and_stage_is_refused() {
    let mut s = state(Phase::Verified);
    s.sink_holds = Some(Holds::New);
    let (s2, effects) = step(s.clone(), Input::Abort, now());
    assert_eq!(s2.phase, Phase::Verified, "aborted only once restored");
    assert!(effects.contains(&Effect::RestorePrevious), "{effects:?}");
    let (s3, _) = step(s2, Input::AbortDone { failures: vec![] }, now());
    assert_eq!(s3.phase, Phase::Aborted);
    assert_eq!(s3.sink_holds, Some(Holds::Old));
    let (_, effects) = step(
        s,
        Input::Stage {
            staging_delay: Duration::minutes(5),
            generated_at: now(),
            fingerprints: None,
        },
        now(),
    );
    assert!(
        matches!(&effects[0], Effect::Refused(r) if r.contains("abort")),
        "{effects:?}"
    );
}

#[test]
fn the_happy_path_end_to_end() {
    let mut s = Rotation::idle("crm");
    for input in [
        Input::Stage {
            staging_delay: Duration::minutes(5),
            generated_at: now(),
            fingerprints: None,
        },
        Input::Verify,
        Input::VerifyDone { failures: vec![] },
        Input::Promote {
            writable: true,
            manual_confirmed: false,
            rollback_kept: true,
            no_rollback: false,
        },
        Input::PromoteDone {
            failures: vec![],
            old_works: Some(true),
        },
        Input::Activate { confirmed: true },
        Input::ActivateDone { failures: vec![] },
    ] {
        s = step(s, input, now()).0;
    }
    assert_eq!(s.phase, Phase::Completed);
    // The state is serializable (it is what the store keeps) and holds no secret field at all.
    let json = serde_json::to_string(&s).unwrap();
    let back: Rotation = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
}
