//! The console's side of a rotation: one task, on a thread of its own, owns the store connection and the
//! [`Rotator`], and runs what the wizard asks, one request at a time, answering with the new state, the step's
//! report and the audit trail.
//!
//! Secrets only travel inward (typed or generated -> [`Rotator::stage`]); nothing that comes back holds one.

use super::fsm::{Phase, Rotation};
use super::sinks::Sink;
use super::{Line, LineKind, Report, Rotator};
use crate::config::Config;
use crate::engine::{Command, EngineHandle};
use crate::secrets::vault::Vault;
use crate::sim::SimAdmin;
use crate::store::{AuditEntry, Store};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;

/// A credential's pending and previous secrets, kept in memory.
type Kept = (Option<SecretString>, Option<SecretString>);

/// How far back the detail view's audit trail goes.
pub const AUDIT_DAYS: i64 = 90;

/// What the wizard asks for.
pub enum WizardCmd {
    /// Where the rotation stands (the wizard just opened).
    Open,
    Stage(SecretString),
    Verify,
    Promote {
        manual_confirmed: bool,
    },
    /// The operator typed the credential id: they activated the secret in Setup.
    Activate,
    Abort,
    /// Demo: Setup "generate" in the simulator, then stage what it generated.
    SimGenerate,
    /// Demo: Setup "activate" in the simulator, then the activation checks.
    SimActivate,
    /// Only the audit trail (the detail view opened).
    Audit,
}

impl std::fmt::Debug for WizardCmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WizardCmd::Open => "Open",
            WizardCmd::Stage(_) => "Stage([REDACTED])",
            WizardCmd::Verify => "Verify",
            WizardCmd::Promote { .. } => "Promote",
            WizardCmd::Activate => "Activate",
            WizardCmd::Abort => "Abort",
            WizardCmd::SimGenerate => "SimGenerate",
            WizardCmd::SimActivate => "SimActivate",
            WizardCmd::Audit => "Audit",
        })
    }
}

#[derive(Debug)]
pub struct Request {
    pub credential: String,
    pub cmd: WizardCmd,
}

/// The answer to one request. Holds no secret.
#[derive(Debug, Clone)]
pub struct Update {
    pub credential: String,
    /// None for an audit-only request.
    pub rotation: Option<Rotation>,
    /// What the step checked (or why it could not run).
    pub lines: Vec<Line>,
    pub ok: bool,
    pub next: String,
    /// Where promote writes: None when authwatch can write it, else what the operator updates by hand.
    pub manual_sink: Option<String>,
    /// The credential's audit trail, oldest first.
    pub audit: Vec<AuditEntry>,
}

/// What the console needs to run rotations.
#[derive(Clone)]
pub struct RotationSetup {
    pub config: Arc<Config>,
    pub db: PathBuf,
    /// The demo's simulator: "generate/activate in simulator" instead of Setup.
    pub sim: Option<SimAdmin>,
}

/// Start the rotation task. Requests go in, updates come out in the same order.
pub fn spawn(
    setup: RotationSetup,
    engine: Option<EngineHandle>,
) -> (
    mpsc::UnboundedSender<Request>,
    mpsc::UnboundedReceiver<Update>,
) {
    let (req_tx, req_rx) = mpsc::unbounded_channel();
    let (upd_tx, upd_rx) = mpsc::unbounded_channel();
    // A rotation blocks (SQLite, the vault's file lock, sink file writes): it gets a thread and a current-thread
    // runtime of its own, so it never holds one of the two async workers the console runs on.
    let task = serve(setup, engine, req_rx, upd_tx);
    let started = std::thread::Builder::new()
        .name("authwatch-rotation".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(task),
                Err(e) => tracing::error!("cannot start the rotation runtime: {e}"),
            }
        });
    if let Err(e) = started {
        // The requests then go nowhere: the wizard reports the rotation task as gone.
        tracing::error!("cannot start the rotation thread: {e}");
    }
    (req_tx, upd_rx)
}

fn failed(credential: &str, text: String) -> Update {
    Update {
        credential: credential.to_string(),
        rotation: None,
        lines: vec![Line {
            kind: LineKind::Fail,
            text,
        }],
        ok: false,
        next: String::new(),
        manual_sink: None,
        audit: Vec::new(),
    }
}

async fn serve(
    setup: RotationSetup,
    engine: Option<EngineHandle>,
    mut requests: mpsc::UnboundedReceiver<Request>,
    updates: mpsc::UnboundedSender<Update>,
) {
    let config = setup.config.clone();
    let mut store = match Store::open(&setup.db).and_then(|s| s.make_durable().map(|()| s)) {
        Ok(s) => s,
        Err(e) => {
            while let Some(r) = requests.recv().await {
                let _ = updates.send(failed(
                    &r.credential,
                    format!("rotation is unavailable: {e}"),
                ));
            }
            return;
        }
    };
    let mut next: Option<Request> = None;
    // Secrets held in memory per credential while the wizard works on another one.
    let mut kept: HashMap<String, Kept> = HashMap::new();
    loop {
        let first = match next.take() {
            Some(r) => r,
            None => match requests.recv().await {
                Some(r) => r,
                None => return,
            },
        };
        let credential = first.credential.clone();
        // One Rotator per credential at a time: its pending secret belongs to that credential.
        let vault = match Vault::from_env() {
            Ok(v) => v,
            Err(e) => {
                tracing::error!("encrypted store unavailable for rotation: {e}");
                None
            }
        };
        let mut rotator = match Rotator::new(&config, &mut store, vault) {
            Ok(r) => r.with_kept(kept.remove(&credential).unwrap_or_default()),
            Err(e) => {
                let _ = updates.send(failed(&credential, e.to_string()));
                continue;
            }
        };
        let mut request = first;
        loop {
            let update = handle(&setup, engine.as_ref(), &mut rotator, request).await;
            if updates.send(update).is_err() {
                return;
            }
            match requests.recv().await {
                None => return,
                // Audit trails are read for any credential without switching.
                Some(r) if r.credential == credential || matches!(r.cmd, WizardCmd::Audit) => {
                    request = r
                }
                Some(r) => {
                    next = Some(r);
                    break;
                }
            }
        }
        kept.insert(credential, rotator.into_kept());
    }
}

async fn handle(
    setup: &RotationSetup,
    engine: Option<&EngineHandle>,
    rotator: &mut Rotator<'_>,
    request: Request,
) -> Update {
    let cred = request.credential.as_str();
    let Some(credential) = setup.config.credential(cred) else {
        return failed(cred, format!("unknown credential `{cred}`"));
    };
    let sink = Sink::for_credential(credential);
    let manual_sink = match &sink {
        Sink::Manual { what } => Some(what.clone()),
        _ => None,
    };
    let mut pre: Vec<Line> = Vec::new();
    let result = match request.cmd {
        WizardCmd::Audit => {
            return Update {
                credential: cred.to_string(),
                rotation: None,
                lines: Vec::new(),
                ok: true,
                next: String::new(),
                manual_sink,
                audit: rotator.audit_trail(cred, Utc::now() - chrono::Duration::days(AUDIT_DAYS)),
            };
        }
        WizardCmd::Open => rotator.status(cred).await,
        WizardCmd::Stage(secret) => rotator.stage(cred, secret).await,
        WizardCmd::Verify if rotator.needs_pending(cred, "verify") => {
            return not_kept(rotator, cred, manual_sink);
        }
        WizardCmd::Verify => rotator.verify(cred).await,
        WizardCmd::Promote { .. } if rotator.needs_pending(cred, "promote") => {
            return not_kept(rotator, cred, manual_sink);
        }
        WizardCmd::Promote { manual_confirmed } => rotator.promote(cred, manual_confirmed).await,
        WizardCmd::Activate => rotator.activate(cred, true).await,
        WizardCmd::Abort => rotator.abort(cred).await,
        WizardCmd::SimGenerate => match &setup.sim {
            None => {
                return failed(
                    cred,
                    "no simulator here: generate the secret in Setup".into(),
                );
            }
            Some(sim) => match sim.generate_secret(cred) {
                Ok(secret) => {
                    pre.push(Line {
                        kind: LineKind::Note,
                        text: "generated a new secret in the simulator (stands in for Setup)"
                            .into(),
                    });
                    rotator.stage(cred, SecretString::from(secret)).await
                }
                Err(e) => return failed(cred, format!("the simulator refused: {e}")),
            },
        },
        WizardCmd::SimActivate => match &setup.sim {
            None => {
                return failed(
                    cred,
                    "no simulator here: activate the secret in Setup".into(),
                );
            }
            Some(sim) => {
                // Only once authwatch agrees activation may happen: Setup would not stop anyone, the wizard does.
                let phase = rotator.state(cred).map(|r| r.phase).ok();
                if phase != Some(Phase::Promoted) {
                    rotator.activate(cred, true).await
                } else {
                    match sim.activate_secret(cred) {
                        Ok(()) => {
                            pre.push(Line {
                                kind: LineKind::Note,
                                text: "activated the new secret in the simulator (stands in for Setup)"
                                    .into(),
                            });
                            rotator.activate(cred, true).await
                        }
                        Err(e) => return failed(cred, format!("the simulator refused: {e}")),
                    }
                }
            }
        },
    };
    let audit = rotator.audit_trail(cred, Utc::now() - chrono::Duration::days(AUDIT_DAYS));
    match result {
        Ok(report) => {
            if let Some(engine) = engine {
                after_step(engine, &setup.config, &report).await;
            }
            let rotation = rotator.state(cred).ok();
            let Report {
                lines,
                ok,
                next,
                action,
                ..
            } = report;
            // The wizard lists the consumers itself (with their teams).
            pre.extend(
                lines
                    .into_iter()
                    .filter(|l| !(action == "status" && l.text.starts_with("consumer "))),
            );
            Update {
                credential: cred.to_string(),
                rotation,
                lines: pre,
                ok,
                next,
                manual_sink,
                audit,
            }
        }
        Err(e) => Update {
            audit,
            manual_sink,
            rotation: rotator.state(cred).ok(),
            ..failed(cred, e.to_string())
        },
    }
}

fn not_kept(rotator: &mut Rotator<'_>, cred: &str, manual_sink: Option<String>) -> Update {
    Update {
        rotation: rotator.state(cred).ok(),
        manual_sink,
        ..failed(
            cred,
            format!(
                "the pending secret was not kept ({} is not set): enter it again with s",
                crate::secrets::vault::MASTER_KEY_ENV
            ),
        )
    }
}

/// Tell the engine what a completed step changed: the new expiry at activation, and a fresh probe of every
/// consumer so the screen shows them working with the new secret.
async fn after_step(engine: &EngineHandle, config: &Config, report: &Report) {
    let activated = report.ok && matches!(report.state, Phase::Activated | Phase::Completed);
    if !activated || report.action != "activate" {
        return;
    }
    if let Some(expires) = report.new_expires {
        let _ = engine
            .send(Command::SetSecretExpiry {
                credential: report.credential.clone(),
                expires,
            })
            .await;
    }
    for i in super::consumers(config, &report.credential) {
        let _ = engine
            .send(Command::ProbeNow {
                integration: i.name.clone(),
            })
            .await;
    }
}

impl Rotator<'_> {
    /// The credential's audit entries since `since` (empty when the store cannot be read: logged).
    pub fn audit_trail(&self, cred: &str, since: DateTime<Utc>) -> Vec<AuditEntry> {
        self.store().audit(Some(cred), since).unwrap_or_else(|e| {
            tracing::error!("cannot read the audit trail of {cred}: {e}");
            Vec::new()
        })
    }
}
