//! The one driver of rotations: a thread of its own (blocking SQLite, the vault's file lock, sink writes, update
//! commands: never on the async workers) that owns a store connection and runs steps one at a time for the
//! engine, which is the only one who talks to it (`crate::engine` forwards rotation commands from the console,
//! the agent API and, through the agent, `--connect` consoles). Each step answers with an [`Update`] for whoever
//! asked and a [`RotationView`] the engine publishes in its snapshot.
//!
//! Secrets only travel inward (typed or generated -> [`Rotator::stage`]); nothing that comes back holds one
//! (the fingerprints are stripped too).

use super::fsm::{Phase, Rotation};
use super::sinks::Sink;
use super::{Line, LineKind, Report, Rotator};
use crate::config::Config;
use crate::secrets::vault::Vault;
use crate::sim::SimAdmin;
use crate::store::{AuditEntry, Store};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;

/// A credential's pending and previous secrets, kept in memory.
type Kept = (Option<SecretString>, Option<SecretString>);

/// How far back the detail view's audit trail goes.
pub const AUDIT_DAYS: i64 = 90;

/// A wizard session that sends nothing for this long gives its hold on the credential up.
pub const SESSION_IDLE: chrono::Duration = chrono::Duration::minutes(10);

/// Where a rotation step comes from (audited beside the actor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Cli,
    Console,
    Api,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Cli => "cli",
            Origin::Console => "console",
            Origin::Api => "api",
        }
    }
}

/// Who asks for a step: the OS user (cli, console) or the agent token's name (api), and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub origin: Origin,
}

impl Actor {
    /// The OS user running this console.
    pub fn console() -> Actor {
        Actor {
            name: crate::host::os_user().to_string(),
            origin: Origin::Console,
        }
    }
}

/// What the wizard (or the API) asks for.
pub enum WizardCmd {
    /// Where the rotation stands (the wizard just opened: a session also takes the credential's lease).
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
    /// The wizard closed: its session gives the lease back.
    Close,
}

impl WizardCmd {
    /// The step's name, as the API spells it.
    pub fn name(&self) -> &'static str {
        match self {
            WizardCmd::Open => "open",
            WizardCmd::Stage(_) => "stage",
            WizardCmd::Verify => "verify",
            WizardCmd::Promote { .. } => "promote",
            WizardCmd::Activate => "activate",
            WizardCmd::Abort => "abort",
            WizardCmd::SimGenerate => "sim_generate",
            WizardCmd::SimActivate => "sim_activate",
            WizardCmd::Audit => "audit",
            WizardCmd::Close => "close",
        }
    }
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
            WizardCmd::Close => "Close",
        })
    }
}

/// What the console's wizard sends (the link adds who and from where).
#[derive(Debug)]
pub struct Request {
    pub credential: String,
    pub cmd: WizardCmd,
}

/// One step for the driver: the request, who asks, and the wizard session it belongs to (None: a single step,
/// e.g. one API call, holding the lease only while it runs).
#[derive(Debug)]
pub struct StepRequest {
    pub credential: String,
    pub cmd: WizardCmd,
    pub actor: Actor,
    pub session: Option<u64>,
}

/// The answer to one request. Holds no secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Update {
    pub credential: String,
    /// None for an audit-only request. Without fingerprints.
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

impl Update {
    /// Refused or failed before anything ran.
    pub fn failed(credential: &str, text: String) -> Update {
        failed(credential, text)
    }
    /// Refused: someone else holds the rotation.
    pub fn refused(credential: &str, text: String) -> Update {
        Update {
            lines: vec![Line {
                kind: LineKind::Refused,
                text,
            }],
            ..failed(credential, String::new())
        }
    }
}

/// Who holds a credential's rotation lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseView {
    pub holder: String,
    pub host: String,
    pub pid: u32,
    pub since: DateTime<Utc>,
    pub heartbeat: DateTime<Utc>,
}

/// A step that is done, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepDone {
    pub step: String,
    pub at: DateTime<Utc>,
}

/// The last step run through this engine: what, by whom, from where, and whether it passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastStep {
    pub step: String,
    pub actor: String,
    pub origin: Origin,
    pub at: DateTime<Utc>,
    pub ok: bool,
}

/// A step running right now (set by the engine while its driver works on it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningStep {
    pub step: String,
    pub actor: String,
    pub origin: Origin,
    pub since: DateTime<Utc>,
}

/// A credential's rotation as the engine publishes it: state, steps done, the last step's checks, the lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationView {
    pub credential: String,
    pub state: Phase,
    pub steps: Vec<StepDone>,
    /// What the last step (run through this engine) checked and said.
    pub checks: Vec<Line>,
    pub last_step: Option<LastStep>,
    /// The step running now, if any.
    #[serde(default)]
    pub running: Option<RunningStep>,
    /// What to do next.
    pub next: String,
    /// Why the last check failed.
    pub failures: Vec<String>,
    pub lease: Option<LeaseView>,
    pub accept_after: Option<DateTime<Utc>>,
    pub new_expires: Option<DateTime<Utc>>,
}

impl RotationView {
    fn new(
        r: &Rotation,
        checks: Vec<Line>,
        last_step: Option<LastStep>,
        lease: Option<LeaseView>,
    ) -> RotationView {
        let steps = [
            ("stage", r.staged_at),
            ("verify", r.verified_at),
            ("promote", r.promoted_at),
            ("activate", r.activated_at),
            ("complete", r.completed_at),
        ]
        .into_iter()
        .filter_map(|(step, at)| {
            at.map(|at| StepDone {
                step: step.into(),
                at,
            })
        })
        .collect();
        RotationView {
            credential: r.credential.clone(),
            state: r.phase,
            steps,
            checks,
            last_step,
            running: None,
            next: if r.phase.in_progress() {
                super::next_hint(r.phase, &r.credential)
            } else {
                String::new()
            },
            failures: r.failures.clone(),
            lease,
            accept_after: r.accept_after,
            new_expires: r.new_expires,
        }
    }
}

/// What the console (or the agent) needs to run rotations.
#[derive(Clone)]
pub struct RotationSetup {
    pub config: Arc<Config>,
    pub db: PathBuf,
    /// The demo's simulator: "generate/activate in simulator" instead of Setup.
    pub sim: Option<SimAdmin>,
}

/// A rotation's activation passed: the engine records the new expiry and re-probes the consumers at once.
#[derive(Debug, Clone)]
pub struct Activated {
    pub credential: String,
    pub expires: Option<DateTime<Utc>>,
    pub consumers: Vec<String>,
}

/// What goes into the driver. `R` travels with a step and comes back with its answer (the engine's reply).
pub enum DriverIn<R> {
    Step(StepRequest, R),
    /// Read these credentials' state and lease again (a rotation elsewhere moved them).
    Refresh(Vec<String>),
    /// The configuration was reloaded.
    Reconfigure(Arc<Config>),
}

/// What comes out.
pub enum DriverOut<R> {
    Step {
        update: Box<Update>,
        view: Box<RotationView>,
        activated: Option<Activated>,
        reply: R,
    },
    Views(Vec<RotationView>),
}

/// Start the driver on a thread of its own. It reads every credential's state at once (sent as `Views`), then
/// runs steps in the order they come. It ends when the sender is dropped.
pub fn spawn<R: Send + 'static>(
    setup: RotationSetup,
    gate: Option<tokio::sync::oneshot::Receiver<()>>,
) -> (
    mpsc::UnboundedSender<DriverIn<R>>,
    mpsc::UnboundedReceiver<DriverOut<R>>,
) {
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let started = std::thread::Builder::new()
        .name("authwatch-rotation".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(async move {
                    // Requests sent meanwhile wait in the channel; a dropped sender opens the gate too.
                    if let Some(gate) = gate {
                        let _ = gate.await;
                    }
                    serve(setup, in_rx, out_tx).await
                }),
                Err(e) => tracing::error!("cannot start the rotation runtime: {e}"),
            }
        });
    if let Err(e) = started {
        // The requests then go nowhere: the engine answers that rotation is not running.
        tracing::error!("cannot start the rotation thread: {e}");
    }
    (in_tx, out_rx)
}

fn failed(credential: &str, text: String) -> Update {
    Update {
        credential: credential.to_string(),
        rotation: None,
        lines: if text.is_empty() {
            Vec::new()
        } else {
            vec![Line {
                kind: LineKind::Fail,
                text,
            }]
        },
        ok: false,
        next: String::new(),
        manual_sink: None,
        audit: Vec::new(),
    }
}

/// A wizard session's hold on a credential.
struct Hold {
    session: u64,
    actor: Actor,
    since: DateTime<Utc>,
    seen: DateTime<Utc>,
}

struct Driver {
    setup: RotationSetup,
    store: Store,
    /// Secrets held in memory per credential (pending, previous) between steps.
    kept: HashMap<String, Kept>,
    holds: HashMap<String, Hold>,
    /// The last step's lines per credential.
    last: HashMap<String, (Vec<Line>, LastStep)>,
}

async fn serve<R>(
    setup: RotationSetup,
    mut requests: mpsc::UnboundedReceiver<DriverIn<R>>,
    out: mpsc::UnboundedSender<DriverOut<R>>,
) {
    let store = match Store::open(&setup.db).and_then(|s| s.make_durable().map(|()| s)) {
        Ok(s) => s,
        Err(e) => {
            while let Some(r) = requests.recv().await {
                if let DriverIn::Step(req, reply) = r {
                    let u = failed(&req.credential, format!("rotation is unavailable: {e}"));
                    let view =
                        RotationView::new(&Rotation::idle(&req.credential), Vec::new(), None, None);
                    let _ = out.send(DriverOut::Step {
                        update: Box::new(u),
                        view: Box::new(view),
                        activated: None,
                        reply,
                    });
                }
            }
            return;
        }
    };
    // An interrupted step (a crash mid-promote) is found and set right at start, before any request.
    let mut store = store;
    let config = setup.config.clone();
    super::reconcile_with(&config, &mut store).await;
    let mut driver = Driver {
        setup,
        store,
        kept: HashMap::new(),
        holds: HashMap::new(),
        last: HashMap::new(),
    };
    let all: Vec<String> = driver
        .setup
        .config
        .credentials
        .iter()
        .map(|c| c.id.clone())
        .collect();
    if out.send(DriverOut::Views(driver.views(&all))).is_err() {
        return;
    }
    while let Some(r) = requests.recv().await {
        let sent = match r {
            DriverIn::Refresh(creds) => out.send(DriverOut::Views(driver.views(&creds))),
            DriverIn::Reconfigure(config) => {
                let all: Vec<String> = config.credentials.iter().map(|c| c.id.clone()).collect();
                driver.setup.config = config;
                out.send(DriverOut::Views(driver.views(&all)))
            }
            DriverIn::Step(req, reply) => {
                let credential = req.credential.clone();
                let (update, activated) = driver.step(req).await;
                let view = driver.view(&credential);
                out.send(DriverOut::Step {
                    update: Box::new(update),
                    view: Box::new(view),
                    activated,
                    reply,
                })
            }
        };
        if sent.is_err() {
            break;
        }
    }
    // The engine stopped: give back the leases of open sessions.
    let held: Vec<String> = driver.holds.keys().cloned().collect();
    for cred in held {
        driver.close(&cred);
    }
}

impl Driver {
    fn views(&self, creds: &[String]) -> Vec<RotationView> {
        creds.iter().map(|c| self.view(c)).collect()
    }

    fn view(&self, cred: &str) -> RotationView {
        let state = self
            .store
            .rotation::<Rotation>(cred)
            .ok()
            .flatten()
            .unwrap_or_else(|| Rotation::idle(cred));
        let lease = self.store.lease(cred).ok().flatten().and_then(|l| {
            // A holder on this host that is gone holds nothing (the next step takes the lease over).
            let gone = l.host == super::safety::host() && !super::safety::pid_alive(l.pid);
            (!gone).then_some(LeaseView {
                holder: l.holder,
                host: l.host,
                pid: l.pid,
                since: l.since,
                heartbeat: l.heartbeat,
            })
        });
        let (checks, last) = match self.last.get(cred) {
            Some((lines, last)) => (lines.clone(), Some(last.clone())),
            None => (Vec::new(), None),
        };
        RotationView::new(&state, checks, last, lease)
    }

    /// Give a session's hold back (the wizard closed, or the engine stopped).
    fn close(&mut self, cred: &str) {
        if self.holds.remove(cred).is_none() {
            return;
        }
        let config = self.setup.config.clone();
        if let Ok(mut r) = Rotator::new(&config, &mut self.store, None) {
            r.unhold(cred);
        }
    }

    async fn step(&mut self, req: StepRequest) -> (Update, Option<Activated>) {
        let cred = req.credential.clone();
        let now = Utc::now();
        if self.setup.config.credential(&cred).is_none() {
            return (failed(&cred, format!("unknown credential `{cred}`")), None);
        }
        // Holds of sessions that went quiet are given up.
        let idle: Vec<String> = self
            .holds
            .iter()
            .filter(|(_, h)| now.signed_duration_since(h.seen) > SESSION_IDLE)
            .map(|(c, _)| c.clone())
            .collect();
        for c in idle {
            self.close(&c);
        }
        let ours = match self.holds.get_mut(&cred) {
            Some(h) if req.session == Some(h.session) => {
                h.seen = now;
                true
            }
            Some(h) if !matches!(req.cmd, WizardCmd::Audit | WizardCmd::Close) => {
                let text = format!(
                    "the rotation of {cred} is held by {} via {} since {}: wait until they finish (or close the wizard)",
                    h.actor.name,
                    h.actor.origin.as_str(),
                    crate::duration::utc_stamp(h.since)
                );
                let config = self.setup.config.clone();
                if let Ok(r) = Rotator::new(&config, &mut self.store, None) {
                    let mut r = r.with_actor(&req.actor.name, req.actor.origin.as_str());
                    r.audit_refusal(&cred, req.cmd.name(), &text);
                }
                let mut u = Update::refused(&cred, text);
                u.rotation = self
                    .store
                    .rotation::<Rotation>(&cred)
                    .ok()
                    .flatten()
                    .map(public);
                return (u, None);
            }
            _ => false,
        };
        if matches!(req.cmd, WizardCmd::Close) {
            if ours {
                self.close(&cred);
            }
            return (
                Update {
                    ok: true,
                    ..failed(&cred, String::new())
                },
                None,
            );
        }
        let config = self.setup.config.clone();
        let vault = match Vault::from_env() {
            Ok(v) => v,
            Err(e) => {
                tracing::error!("encrypted store unavailable for rotation: {e}");
                None
            }
        };
        let mut rotator = match Rotator::new(&config, &mut self.store, vault) {
            Ok(r) => r
                .with_kept(self.kept.remove(&cred).unwrap_or_default())
                .with_actor(&req.actor.name, req.actor.origin.as_str())
                .keeping_lease(ours),
            Err(e) => return (failed(&cred, e.to_string()), None),
        };
        let mut took: Vec<Line> = Vec::new();
        // A wizard session opening takes the lease for all its steps.
        if let (WizardCmd::Open, Some(session), false) = (&req.cmd, req.session, ours) {
            match rotator.hold(&cred) {
                Ok(Ok(lines)) => {
                    took = lines;
                    rotator = rotator.keeping_lease(true);
                    self.holds.insert(
                        cred.clone(),
                        Hold {
                            session,
                            actor: req.actor.clone(),
                            since: now,
                            seen: now,
                        },
                    );
                }
                Ok(Err(held)) => took.push(Line {
                    kind: LineKind::Refused,
                    text: held,
                }),
                Err(e) => took.push(Line {
                    kind: LineKind::Fail,
                    text: e.to_string(),
                }),
            }
        }
        let step = req.cmd.name();
        let (mut update, activated) = handle(&self.setup, &mut rotator, &cred, req.cmd).await;
        self.kept.insert(cred.clone(), rotator.into_kept());
        if !took.is_empty() {
            took.extend(update.lines);
            update.lines = took;
        }
        if step != "audit" {
            self.last.insert(
                cred.clone(),
                (
                    update.lines.clone(),
                    LastStep {
                        step: step.to_string(),
                        actor: req.actor.name.clone(),
                        origin: req.actor.origin,
                        at: now,
                        ok: update.ok,
                    },
                ),
            );
        }
        (update, activated)
    }
}

/// A rotation state fit to leave the driver: without the fingerprints (key and hashes stay in the store).
fn public(mut r: Rotation) -> Rotation {
    r.fingerprints = None;
    r
}

async fn handle(
    setup: &RotationSetup,
    rotator: &mut Rotator<'_>,
    cred: &str,
    cmd: WizardCmd,
) -> (Update, Option<Activated>) {
    let Some(credential) = setup.config.credential(cred) else {
        return (failed(cred, format!("unknown credential `{cred}`")), None);
    };
    let sink = Sink::for_credential(credential);
    let manual_sink = match &sink {
        Sink::Manual { what } => Some(what.clone()),
        _ => None,
    };
    let mut pre: Vec<Line> = Vec::new();
    let result = match cmd {
        WizardCmd::Audit => {
            return (
                Update {
                    credential: cred.to_string(),
                    rotation: None,
                    lines: Vec::new(),
                    ok: true,
                    next: String::new(),
                    manual_sink,
                    audit: rotator
                        .audit_trail(cred, Utc::now() - chrono::Duration::days(AUDIT_DAYS)),
                },
                None,
            );
        }
        WizardCmd::Open | WizardCmd::Close => rotator.status(cred).await,
        WizardCmd::Stage(secret) => rotator.stage(cred, secret).await,
        WizardCmd::Verify if rotator.needs_pending(cred, "verify") => {
            return (not_kept(rotator, cred, manual_sink), None);
        }
        WizardCmd::Verify => rotator.verify(cred).await,
        WizardCmd::Promote { .. } if rotator.needs_pending(cred, "promote") => {
            return (not_kept(rotator, cred, manual_sink), None);
        }
        WizardCmd::Promote { manual_confirmed } => rotator.promote(cred, manual_confirmed).await,
        WizardCmd::Activate => rotator.activate(cred, true).await,
        WizardCmd::Abort => rotator.abort(cred).await,
        WizardCmd::SimGenerate => match &setup.sim {
            None => {
                return (
                    failed(
                        cred,
                        "no simulator here: generate the secret in Setup".into(),
                    ),
                    None,
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
                Err(e) => return (failed(cred, format!("the simulator refused: {e}")), None),
            },
        },
        WizardCmd::SimActivate => match &setup.sim {
            None => {
                return (
                    failed(
                        cred,
                        "no simulator here: activate the secret in Setup".into(),
                    ),
                    None,
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
                        Err(e) => {
                            return (failed(cred, format!("the simulator refused: {e}")), None);
                        }
                    }
                }
            }
        },
    };
    let audit = rotator.audit_trail(cred, Utc::now() - chrono::Duration::days(AUDIT_DAYS));
    match result {
        Ok(report) => {
            let activated = activated(&setup.config, &report);
            let rotation = rotator.state(cred).ok().map(public);
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
            (
                Update {
                    credential: cred.to_string(),
                    rotation,
                    lines: pre,
                    ok,
                    next,
                    manual_sink,
                    audit,
                },
                activated,
            )
        }
        Err(e) => (
            Update {
                audit,
                manual_sink,
                rotation: rotator.state(cred).ok().map(public),
                ..failed(cred, e.to_string())
            },
            None,
        ),
    }
}

fn not_kept(rotator: &mut Rotator<'_>, cred: &str, manual_sink: Option<String>) -> Update {
    Update {
        rotation: rotator.state(cred).ok().map(public),
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

/// What a completed activation changed: the new expiry, and the consumers to re-probe at once so every screen
/// shows them working with the new secret.
fn activated(config: &Config, report: &Report) -> Option<Activated> {
    let done = report.ok && matches!(report.state, Phase::Activated | Phase::Completed);
    if !done || report.action != "activate" {
        return None;
    }
    Some(Activated {
        credential: report.credential.clone(),
        expires: report.new_expires,
        consumers: super::consumers(config, &report.credential)
            .into_iter()
            .map(|i| i.name.clone())
            .collect(),
    })
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
