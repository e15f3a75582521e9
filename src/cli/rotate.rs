//! The `rotate`, `secret set` and `audit` subcommands.
//!
//! Exit codes: 0 done, 1 the step was refused or a check failed, 3 usage/configuration error.

use super::{EXIT_FAILED, EXIT_USAGE, Format};
use crate::config::Config;
use crate::rotation::{Report, RotateError, Rotator};
use crate::secrets::vault::{Vault, VaultError};
use crate::store::Store;
use clap::ValueEnum;
use color_eyre::eyre::Result;
use secrecy::SecretString;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RotateAction {
    /// Where the rotation stands and what comes next
    Status,
    /// Enter the new secret generated in Setup (stdin; a no-echo prompt on a terminal)
    Stage,
    /// Check every consumer with the new secret: token, scopes, call, MID
    Verify,
    /// Write the new secret where consumers read it (previous kept) and re-probe them
    Promote,
    /// After activating in Setup (point of no return): old secret refused, new one works, new expiry
    Activate,
    /// Before activation: restore the previous secret and discard the pending one
    Abort,
}

/// Use the expiries recorded at activation (for `check` and the console). Opens the database only if it exists.
pub fn apply_stored_expiries(config: &mut Config, db: Option<&Path>) {
    if let Some(path) = db.filter(|p| p.exists())
        && let Ok(store) = Store::open(path)
    {
        crate::rotation::apply_effective_expiries(config, &store);
    }
}

fn open_vault() -> Result<Option<Vault>, i32> {
    Vault::from_env().map_err(|e| {
        eprintln!("error: {e}");
        EXIT_USAGE
    })
}

/// Read a secret: a no-echo prompt when stdin is a terminal, else all of stdin (trailing newline dropped).
pub fn read_secret(prompt: &str) -> Result<SecretString, String> {
    let text = if std::io::stdin().is_terminal() {
        Zeroizing::new(rpassword::prompt_password(prompt).map_err(|e| e.to_string())?)
    } else {
        let mut buf = Zeroizing::new(String::new());
        std::io::stdin()
            .read_to_string(&mut buf)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        buf
    };
    let trimmed = text.trim_end_matches(['\r', '\n']);
    if trimmed.trim().is_empty() {
        return Err("no secret on stdin (pipe it in, or run on a terminal to be prompted)".into());
    }
    if trimmed.contains('\n') {
        return Err("the secret must be a single line".into());
    }
    Ok(SecretString::from(trimmed.to_owned()))
}

fn print_report(report: &Report, format: Format) {
    match format {
        Format::Text => out!("{}", report.to_text()),
        Format::Json => outln!(
            "{}",
            serde_json::to_string_pretty(report).unwrap_or_default()
        ),
    }
}

/// Options of `authwatch rotate` beyond the credential and the step.
#[derive(Debug, Clone, Default)]
pub struct RotateOptions {
    /// activate: the typed credential id.
    pub confirm: Option<String>,
    /// promote: env (or command without update) references were updated by hand.
    pub confirm_manual: bool,
    /// promote: go ahead although the previous secret cannot be kept durably.
    pub no_rollback: bool,
    /// stage: when Setup generated the secret.
    pub generated_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Parse `--generated-at`: RFC 3339, "YYYY-MM-DD HH:MM[:SS]" (UTC) or "YYYY-MM-DD" (midnight UTC).
pub fn parse_generated_at(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(Utc.from_utc_datetime(&t));
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| Utc.from_utc_datetime(&t))
        .ok_or_else(|| {
            format!("`{s}` is not a time: use 2026-11-30T14:05:00Z or \"2026-11-30 14:05\" (UTC)")
        })
}

/// Run a step to its end even when a signal comes: SIGTERM/SIGINT/SIGHUP wait (up to 30 s) for the step's
/// result to be journaled, then the process exits with 128 + the signal. Returns the step's output and that code.
pub async fn finish_despite_signals<T>(
    step: impl std::future::Future<Output = T>,
) -> (T, Option<i32>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        return (step.await, None);
    };
    tokio::pin!(step);
    let (name, code) = tokio::select! {
        out = &mut step => return (out, None),
        _ = term.recv() => ("SIGTERM", 128 + libc::SIGTERM),
        _ = int.recv() => ("SIGINT", 128 + libc::SIGINT),
        _ = hup.recv() => ("SIGHUP", 128 + libc::SIGHUP),
    };
    eprintln!(
        "note: {name}: finishing the running step first (up to {} s) so that its result is recorded",
        crate::rotation::safety::SIGNAL_GRACE.as_secs()
    );
    match tokio::time::timeout(crate::rotation::safety::SIGNAL_GRACE, &mut step).await {
        Ok(out) => (out, Some(code)),
        Err(_) => {
            eprintln!(
                "error: the step did not finish in time; exiting: the next `authwatch rotate` finds out what it did"
            );
            std::process::exit(code);
        }
    }
}

pub async fn rotate(
    config: &Config,
    db: Option<PathBuf>,
    credential: &str,
    action: RotateAction,
    format: Format,
    options: RotateOptions,
) -> Result<i32> {
    let Some(db) = db else {
        eprintln!(
            "error: no place for the database: set XDG_STATE_HOME or HOME, or pass --db PATH"
        );
        return Ok(EXIT_USAGE);
    };
    let mut store = match Store::open(&db) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    if let Err(e) = store.make_durable() {
        eprintln!("error: {e}");
        return Ok(EXIT_USAGE);
    }
    let vault = match open_vault() {
        Ok(v) => v,
        Err(code) => return Ok(code),
    };
    let mut rotator = Rotator::new(config, &mut store, vault)?
        .with_no_rollback(options.no_rollback)
        .with_generated_at(options.generated_at);
    if let Err(RotateError::UnknownCredential(id, hint)) = rotator.state(credential) {
        eprintln!("error: unknown credential `{id}`{hint}");
        return Ok(EXIT_USAGE);
    }
    let action_name = match action {
        RotateAction::Status => "status",
        RotateAction::Stage => "stage",
        RotateAction::Verify => "verify",
        RotateAction::Promote => "promote",
        RotateAction::Activate => "activate",
        RotateAction::Abort => "abort",
    };
    if rotator.needs_pending(credential, action_name) {
        eprintln!(
            "note: the pending secret was not kept ({} is not set): enter it again",
            crate::secrets::vault::MASTER_KEY_ENV
        );
        match read_secret(&format!("new secret for {credential} (not echoed): ")) {
            Ok(s) => rotator.set_pending(s),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(EXIT_USAGE);
            }
        }
    }
    // Everything asked of the operator comes first: the step itself then runs to its end.
    let mut staged = None;
    let mut typed = None;
    match action {
        RotateAction::Stage => {
            match read_secret(&format!(
                "new secret for {credential} from Setup (not echoed): "
            )) {
                Ok(s) => staged = Some(s),
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(EXIT_USAGE);
                }
            }
        }
        RotateAction::Activate => {
            let state = rotator.state(credential)?;
            typed = match options.confirm {
                Some(c) => Some(c),
                None if state.phase == crate::rotation::fsm::Phase::Promoted
                    && std::io::stdin().is_terminal() =>
                {
                    eprintln!(
                        "Activating is the point of no return: SFMC deactivates the old secret at once."
                    );
                    eprint!(
                        "Activated it in Setup? Type the credential id ({credential}) to confirm: "
                    );
                    let mut line = String::new();
                    let _ = std::io::stdin().read_line(&mut line);
                    Some(line.trim().to_string())
                }
                None => None,
            };
            if let Some(t) = &typed
                && t != credential
            {
                eprintln!(
                    "error: the confirmation `{t}` is not the credential id `{credential}`: nothing done"
                );
                return Ok(EXIT_FAILED);
            }
        }
        _ => {}
    }
    let step = async {
        match action {
            RotateAction::Status => rotator.status(credential).await,
            RotateAction::Stage => {
                let secret = staged.take().expect("read above");
                rotator.stage(credential, secret).await
            }
            RotateAction::Verify => rotator.verify(credential).await,
            RotateAction::Promote => rotator.promote(credential, options.confirm_manual).await,
            RotateAction::Activate => rotator.activate(credential, typed.is_some()).await,
            RotateAction::Abort => rotator.abort(credential).await,
        }
    };
    let (report, signalled) = finish_despite_signals(step).await;
    let report = report?;
    print_report(&report, format);
    Ok(signalled.unwrap_or(if report.ok { 0 } else { EXIT_FAILED }))
}

/// `authwatch secret set NAME`: store a secret read from stdin in the encrypted store. Prints no secret.
pub fn secret_set(name: &str) -> Result<i32> {
    if let Err(e) = crate::secrets::vault::check_name(name) {
        eprintln!("error: {e}");
        return Ok(EXIT_USAGE);
    }
    let vault = match open_vault() {
        Ok(Some(v)) => v,
        Ok(None) => {
            eprintln!("error: {}", VaultError::NoKey);
            return Ok(EXIT_USAGE);
        }
        Err(code) => return Ok(code),
    };
    let secret = match read_secret(&format!("secret for `{name}` (not echoed): ")) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    match vault.set(name, &secret) {
        Ok(()) => {
            outln!(
                "stored `{name}` in {} (refer to it as client_secret = {{ store = \"{name}\" }})",
                vault.path().display()
            );
            Ok(0)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(EXIT_USAGE)
        }
    }
}

/// `authwatch audit`
pub fn audit(
    store: &Store,
    credential: Option<&str>,
    since: chrono::Duration,
    format: Format,
) -> Result<i32> {
    let entries = store.audit(credential, chrono::Utc::now() - since)?;
    match format {
        Format::Json => outln!("{}", serde_json::to_string_pretty(&entries)?),
        Format::Text => {
            if entries.is_empty() {
                outln!("no rotation audit entries in that period");
                return Ok(0);
            }
            outln!(
                "{:<23}  {:<10} {:<7} {:<16} {:<16} {:>9} -> {:<9} {:<9} DETAILS",
                "TIME",
                "ACTOR",
                "VIA",
                "CREDENTIAL",
                "ACTION",
                "FROM",
                "TO",
                "RESULT"
            );
            for e in &entries {
                outln!(
                    "{:<23}  {:<10} {:<7} {:<16} {:<16} {:>9} -> {:<9} {:<9} {}",
                    crate::duration::utc_stamp(e.at),
                    e.actor,
                    if e.origin.is_empty() { "-" } else { &e.origin },
                    e.credential,
                    e.action,
                    e.from,
                    e.to,
                    e.result,
                    e.details
                );
            }
        }
    }
    Ok(0)
}
