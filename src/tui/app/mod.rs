//! Console state and its update rules: keys and snapshots in, state out. No terminal, no clock: callers pass `now`.
//!
//! [`App`] routes each key through the registry ([`Keymap`]) of the layer that has the keyboard (the wizard, the
//! filter prompt, help, the detail view or the focused pane) and hands the action to that layer's own state:
//! [`IntegrationsPane`], [`ExpiryPane`], [`LogPane`], [`DetailView`], [`HelpView`], [`FilterPrompt`], [`WizardUi`].
//! What reaches outside the console (engine commands, rotation requests, footer messages) stays here.

mod nav;
mod panes;
mod views;
mod wizard;

pub use nav::{Input, ListNav, Scroll};
pub use panes::{
    ExpiryPane, GroupKey, IntegrationsPane, LogGroup, LogPane, LogRow, Pane, SortKey, group_key,
    integration_matches, reason, secret_verified_at, status_since,
};
pub use views::{DetailView, FilterPrompt, HelpView, View};
pub use wizard::WizardUi;

use super::keymap::{Action, Context, Keymap, typed_char};
use super::theme::Theme;
use crate::engine::{Command, CredentialView, EngineHandle, IntegrationView, Snapshot};
use crate::model::AuthEvent;
use crate::rotation::session::{Request, Update, WizardCmd};
use crate::store::AuditEntry;
use crate::tui::views::wizard::Wizard;
use chrono::{DateTime, Utc};
use crossterm::event::{KeyEvent, KeyEventKind};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;
use views::PromptOutcome;
use wizard::WizardOutcome;

/// How long a footer message stays.
pub const MESSAGE_SECS: i64 = 4;

/// The parts of `TuiOptions` the state needs (no channels, no terminal).
#[derive(Debug, Clone, Default)]
pub struct AppOptions {
    pub read_only: bool,
    pub color: bool,
    pub ascii: bool,
    pub log_path: Option<PathBuf>,
    /// `--wall`: the wall screen (read-only, no cursor, cycling through the failing integrations' details).
    pub wall: bool,
    /// `[keys]` of the configuration: remapped console keys.
    pub keys: crate::config::KeyBindings,
}

/// How long the wall screen shows one failing integration's detail before the next.
pub const WALL_CYCLE_SECS: i64 = 8;

/// The wall screen's cycle through the failing integrations' details, driven by [`App::tick`].
#[derive(Debug, Default)]
pub struct WallCycle {
    /// The integration whose detail is shown, and since when.
    pub shown: Option<(String, DateTime<Utc>)>,
    /// The minute last drawn (the wall shows minutes, not seconds: it redraws when the minute turns).
    minute: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Message {
    pub text: String,
    pub error: bool,
    pub until: DateTime<Utc>,
}

/// Updates held while frozen.
#[derive(Debug, Default)]
pub struct Freeze {
    pub frozen: bool,
    pending: Option<Arc<Snapshot>>,
    pub pending_updates: u64,
}

/// The console's link to the rotation task, and what it has told about each credential.
#[derive(Debug, Default)]
pub struct RotationLink {
    /// Where rotation requests go (None: rotation is not available in this console).
    tx: Option<mpsc::UnboundedSender<Request>>,
    /// The demo: the simulator stands in for Setup.
    demo: bool,
    /// Rotation audit trails by credential, for the detail view.
    pub audit: HashMap<String, Vec<AuditEntry>>,
}

pub struct App {
    pub(crate) opts: AppOptions,
    pub(crate) keymap: Keymap,
    pub(crate) theme: Theme,
    handle: Option<EngineHandle>,
    /// What is on screen (the frozen snapshot while frozen).
    pub(crate) snapshot: Arc<Snapshot>,
    pub(crate) freeze: Freeze,
    pub(crate) focus: Pane,
    pub(crate) view: View,
    pub(crate) integrations: IntegrationsPane,
    pub(crate) expiry: ExpiryPane,
    pub(crate) log: LogPane,
    pub(crate) detail: DetailView,
    pub(crate) help: HelpView,
    pub(crate) prompt: FilterPrompt,
    /// The rotation wizard, when open.
    pub(crate) wizard: Option<WizardUi>,
    pub(crate) rotation: RotationLink,
    pub(crate) message: Option<Message>,
    pub(crate) engine_stopped: bool,
    /// The terminal is below 80x24: only quitting works (nothing can be seen to act on).
    too_small: bool,
    quit: bool,
    repaint: bool,
    pub(crate) wall: WallCycle,
    /// `a` on an acknowledged integration asks first: the name whose acknowledgement the next `a` takes back.
    /// Valid while its message is shown.
    unack_pending: Option<(String, DateTime<Utc>)>,
}

impl App {
    pub fn new(snapshot: Arc<Snapshot>, mut opts: AppOptions) -> Self {
        // The wall screen is for watching: nothing on it can change anything.
        opts.read_only |= opts.wall;
        let mut app = App {
            keymap: Keymap::new(opts.read_only).with_remap(&opts.keys),
            theme: Theme::new(opts.color, opts.ascii),
            opts,
            handle: None,
            snapshot,
            freeze: Freeze::default(),
            focus: Pane::Integrations,
            view: View::Main,
            integrations: IntegrationsPane::default(),
            expiry: ExpiryPane::default(),
            log: LogPane::default(),
            detail: DetailView::default(),
            help: HelpView::default(),
            prompt: FilterPrompt::default(),
            wizard: None,
            rotation: RotationLink::default(),
            message: None,
            engine_stopped: false,
            too_small: false,
            quit: false,
            repaint: false,
            wall: WallCycle::default(),
            unack_pending: None,
        };
        app.refresh(None);
        app
    }

    /// Commands (probe now) go to this engine.
    pub fn with_handle(mut self, handle: EngineHandle) -> Self {
        self.handle = Some(handle);
        self
    }

    /// Rotation requests go here (the console's rotation task); `demo` offers the simulator's Setup actions.
    pub fn with_rotation(mut self, tx: mpsc::UnboundedSender<Request>, demo: bool) -> Self {
        self.rotation.tx = Some(tx);
        self.rotation.demo = demo;
        self
    }

    // ---- read access (used by the views and by tests) ----

    pub fn wizard(&self) -> Option<&Wizard> {
        self.wizard.as_ref().map(|w| &w.view)
    }
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snapshot
    }
    pub fn focus(&self) -> Pane {
        self.focus
    }
    pub fn view(&self) -> &View {
        &self.view
    }
    pub fn sort(&self) -> SortKey {
        self.integrations.sort
    }
    pub fn is_frozen(&self) -> bool {
        self.freeze.frozen
    }
    pub fn help_open(&self) -> bool {
        self.help.open
    }
    pub fn should_quit(&self) -> bool {
        self.quit
    }
    pub fn read_only(&self) -> bool {
        self.opts.read_only
    }
    pub fn is_wall(&self) -> bool {
        self.opts.wall
    }
    /// The wall screen's list: every integration that is not OK, worst first, then the longest failing first.
    pub fn wall_failing(&self) -> Vec<&Arc<IntegrationView>> {
        let mut v: Vec<_> = self
            .snapshot
            .integrations
            .iter()
            .filter(|i| i.health.status != crate::model::Status::Ok)
            .collect();
        v.sort_by(|a, b| {
            b.health
                .status
                .cmp(&a.health.status)
                .then_with(|| {
                    let (x, y) = (status_since(a), status_since(b));
                    match (x, y) {
                        (Some(x), Some(y)) => x.cmp(&y),
                        (Some(_), None) => std::cmp::Ordering::Less,
                        (None, Some(_)) => std::cmp::Ordering::Greater,
                        (None, None) => std::cmp::Ordering::Equal,
                    }
                })
                .then_with(|| a.name.cmp(&b.name))
        });
        v
    }
    /// The failing integration whose detail the wall shows now, with its place in the list (1-based) and the
    /// list's length.
    pub fn wall_shown(&self) -> Option<(&Arc<IntegrationView>, usize, usize)> {
        let list = self.wall_failing();
        let n = list.len();
        let name = self.wall.shown.as_ref().map(|(n, _)| n.as_str());
        let pos = name
            .and_then(|name| list.iter().position(|i| i.name == name))
            .unwrap_or(0);
        list.get(pos).map(|i| (*i, pos + 1, n))
    }
    pub fn filter(&self, pane: Pane) -> &str {
        match pane {
            Pane::Integrations => &self.integrations.filter,
            Pane::Expiry => &self.expiry.filter,
            Pane::Log => &self.log.filter,
        }
    }
    fn filter_mut(&mut self, pane: Pane) -> &mut String {
        match pane {
            Pane::Integrations => &mut self.integrations.filter,
            Pane::Expiry => &mut self.expiry.filter,
            Pane::Log => &mut self.log.filter,
        }
    }
    pub fn editing_filter(&self) -> Option<Pane> {
        self.prompt.editing
    }
    pub fn message_text(&self) -> Option<&str> {
        self.message.as_ref().map(|m| m.text.as_str())
    }
    /// The integrations in display order (filtered and sorted).
    pub fn visible_integrations(&self) -> impl Iterator<Item = &Arc<IntegrationView>> {
        self.integrations
            .rows
            .iter()
            .map(|&i| &self.snapshot.integrations[i])
    }
    pub fn selected_integration(&self) -> Option<&Arc<IntegrationView>> {
        self.integrations.selected(&self.snapshot)
    }
    pub fn selected_credential(&self) -> Option<&Arc<CredentialView>> {
        self.expiry.selected(&self.snapshot)
    }
    pub fn selected_log(&self) -> Option<&AuthEvent> {
        self.log.selected(&self.snapshot)
    }
    /// Entries that arrived in the 401/403 log while scrolled away.
    pub fn log_new(&self) -> usize {
        self.log.new
    }
    /// The month the calendar shows.
    pub fn calendar_month(&self, now: DateTime<Utc>) -> (i32, u32) {
        self.expiry.month(now)
    }
    /// Takes the Ctrl-L request (the runner clears the terminal before the next draw).
    pub fn take_repaint(&mut self) -> bool {
        std::mem::take(&mut self.repaint)
    }
    /// When the footer message disappears (the runner wakes up then to redraw).
    pub fn message_deadline(&self) -> Option<DateTime<Utc>> {
        self.message.as_ref().map(|m| m.until)
    }

    // ---- updates ----

    /// A new snapshot from the engine. While frozen it is only counted (and kept for unfreezing).
    pub fn apply_snapshot(&mut self, snap: Arc<Snapshot>) {
        if self.freeze.frozen {
            self.freeze.pending = Some(snap);
            self.freeze.pending_updates += 1;
            return;
        }
        self.show(snap);
    }

    fn show(&mut self, snap: Arc<Snapshot>) {
        let old = std::mem::replace(&mut self.snapshot, snap);
        self.refresh(Some(&old));
    }

    /// The engine's channel closed: keep showing the last snapshot and say so.
    pub fn engine_gone(&mut self) {
        self.engine_stopped = true;
    }

    /// The clock ticked. True when the screen must be redrawn: always for the console (its clock shows
    /// seconds; when nothing else moved, only the header row is drawn, see [`crate::tui::LastFrame`]); on the wall screen only when the cycle moves on to the next failing integration or the minute
    /// turns (the wall shows minutes), so a wall that nothing happens on is not redrawn every second.
    pub fn tick(&mut self, now: DateTime<Utc>) -> bool {
        if !self.opts.wall {
            return true;
        }
        let mut dirty = false;
        let minute = now.timestamp().div_euclid(60);
        if self.wall.minute != Some(minute) {
            self.wall.minute = Some(minute);
            dirty = true;
        }
        let names: Vec<String> = self.wall_failing().iter().map(|i| i.name.clone()).collect();
        let next = match &self.wall.shown {
            None => names.first().map(|n| (n.clone(), now)),
            Some((name, since)) => match names.iter().position(|n| n == name) {
                // Gone from the list (recovered): the next one now.
                None => names.first().map(|n| (n.clone(), now)),
                Some(i) if (now - *since).num_seconds() >= WALL_CYCLE_SECS => {
                    Some((names[(i + 1) % names.len()].clone(), now))
                }
                Some(_) => Some((name.clone(), *since)),
            },
        };
        if next.as_ref().map(|(n, _)| n) != self.wall.shown.as_ref().map(|(n, _)| n) {
            dirty = true;
        }
        self.wall.shown = next;
        dirty
    }

    /// Drops the footer message once it has expired; true if something changed.
    pub fn expire_message(&mut self, now: DateTime<Utc>) -> bool {
        if self.message.as_ref().is_some_and(|m| m.until <= now) {
            self.message = None;
            return true;
        }
        false
    }

    pub fn set_message(&mut self, text: impl Into<String>, error: bool, now: DateTime<Utc>) {
        self.message = Some(Message {
            text: text.into(),
            error,
            until: now + chrono::Duration::seconds(MESSAGE_SECS),
        });
    }

    /// Which registry context (layer) the keyboard is in.
    pub fn context(&self) -> Context {
        if let Some(w) = &self.wizard {
            w.view.context()
        } else if self.prompt.editing.is_some() {
            Context::Filter
        } else if self.help.open {
            Context::Help
        } else if self.view.is_detail() {
            Context::Detail
        } else {
            self.focus.context()
        }
    }

    /// The terminal's size (the runner reports it at start and on every resize).
    pub fn resize(&mut self, width: u16, height: u16) {
        self.too_small = width < super::MIN_WIDTH || height < super::MIN_HEIGHT;
    }

    /// A key press. Returns true when the screen needs a redraw.
    pub fn handle_key(&mut self, ev: KeyEvent, now: DateTime<Utc>) -> bool {
        if ev.kind == KeyEventKind::Release {
            return false;
        }
        let ctx = self.context();
        let action = self.keymap.action_for(ctx, &ev);
        if self.opts.wall {
            // Nothing to move or open on the wall: only quitting and repainting.
            match action {
                Some(Action::Quit) => self.quit = true,
                Some(Action::Repaint) => self.repaint = true,
                _ => return false,
            }
            return true;
        }
        if self.too_small {
            // "Too small" is all that is drawn: a key must not change what lies hidden behind it.
            if action == Some(Action::Quit) {
                self.quit = true;
            }
            return false;
        }
        let input = match action {
            Some(action) => Input::Action(action),
            None => match typed_char(&ev).filter(|_| ctx.is_text()) {
                Some(c) => Input::Char(c),
                None => {
                    if let Some(b) = self.keymap.stripped(ctx, &ev) {
                        let key = self
                            .keymap
                            .keys(b)
                            .first()
                            .map(|k| k.label())
                            .unwrap_or_default();
                        if b.action == Action::Rotate && self.rotation_progress(now) {
                            return true;
                        }
                        self.set_message(format!("read-only: {key} is not available"), true, now);
                        return true;
                    }
                    return false;
                }
            },
        };
        if self.wizard.is_some() {
            return self.wizard_input(input, now);
        }
        if let Some(pane) = self.prompt.editing {
            return self.prompt_input(pane, input, now);
        }
        match input {
            Input::Action(action) => self.perform(action, now),
            Input::Char(_) => false,
        }
    }

    fn prompt_input(&mut self, pane: Pane, input: Input, now: DateTime<Utc>) -> bool {
        let mut filter = std::mem::take(self.filter_mut(pane));
        let outcome = self.prompt.apply(&mut filter, input);
        *self.filter_mut(pane) = filter;
        match outcome {
            PromptOutcome::Refilter => {
                self.refresh(None);
                true
            }
            PromptOutcome::Pass(Action::Quit) => {
                self.quit = true;
                true
            }
            PromptOutcome::Pass(action) => self.move_in(pane, action, now),
            PromptOutcome::Ignored => false,
        }
    }

    /// Do one registry action of the console layer.
    pub fn perform(&mut self, action: Action, now: DateTime<Utc>) -> bool {
        // Any other key cancels a pending "take the acknowledgement back".
        let unack_pending = self.unack_pending.take();
        match action {
            Action::Quit => self.quit = true,
            Action::Repaint => self.repaint = true,
            _ if self.help.open || action == Action::Help => return self.help.apply(action),
            Action::Back => {
                if self.view.is_detail() {
                    self.view = View::Main;
                } else if !self.filter(self.focus).is_empty() {
                    self.filter_mut(self.focus).clear();
                    self.refresh(None);
                } else {
                    return false;
                }
            }
            Action::FocusNext => self.focus = self.focus.next(),
            Action::FocusPrev => self.focus = self.focus.prev(),
            Action::FocusIntegrations | Action::FocusExpiry | Action::FocusLog => {
                self.view = View::Main;
                self.focus = match action {
                    Action::FocusIntegrations => Pane::Integrations,
                    Action::FocusExpiry => Pane::Expiry,
                    _ => Pane::Log,
                };
            }
            _ if action.is_movement() && self.view.is_detail() => {
                return self.detail.apply(action);
            }
            _ if action.is_movement()
                || matches!(action, Action::PrevMonth | Action::NextMonth) =>
            {
                return self.move_in(self.focus, action, now);
            }
            Action::Open => return self.open(now),
            Action::Filter => self.prompt.editing = Some(self.focus),
            Action::Sort => {
                self.integrations.cycle_sort(&self.snapshot);
                let label = self.integrations.sort.label();
                self.set_message(format!("sorted by {label}"), false, now);
            }
            Action::ProbeSelected => match self.target_integration() {
                Some(i) => {
                    let name = i.name.clone();
                    self.send(
                        Command::ProbeNow {
                            integration: name.clone(),
                        },
                        format!("probe queued for {name}"),
                        now,
                    )
                }
                None => self.set_message("no integration selected", true, now),
            },
            Action::Acknowledge => match self.target_integration().cloned() {
                None => self.set_message("no integration selected", true, now),
                Some(i) if i.health.status == crate::model::Status::Ok => self.set_message(
                    format!("nothing to acknowledge: {} is OK", i.name),
                    true,
                    now,
                ),
                Some(i) => match &i.acked {
                    Some(_)
                        if unack_pending
                            .as_ref()
                            .is_some_and(|(name, until)| *name == i.name && now < *until) =>
                    {
                        self.send(
                            Command::Unack {
                                integration: i.name.clone(),
                                actor: crate::host::os_user().to_string(),
                            },
                            format!("acknowledgement of {} taken back", i.name),
                            now,
                        )
                    }
                    Some(ack) => {
                        let key = self
                            .keymap
                            .key_label(self.context(), Action::Acknowledge)
                            .unwrap_or_else(|| "a".into());
                        self.set_message(
                            format!(
                                "{} is acknowledged by {} ({}): press {key} again to take it back, any other key keeps it",
                                i.name,
                                ack.actor,
                                crate::duration::utc_stamp(ack.at)
                            ),
                            false,
                            now,
                        );
                        self.unack_pending = Some((
                            i.name.clone(),
                            now + chrono::Duration::seconds(MESSAGE_SECS),
                        ));
                    }
                    None => self.send(
                        Command::Ack {
                            integration: i.name.clone(),
                            actor: crate::host::os_user().to_string(),
                        },
                        format!("acknowledged {}", i.name),
                        now,
                    ),
                },
            },
            Action::ProbeAll => {
                let n = self.snapshot.integrations.len();
                self.send(
                    Command::ProbeAll,
                    format!("probe queued for all {n} integrations"),
                    now,
                );
            }
            Action::Rotate => self.open_wizard(now),
            Action::NextMatch | Action::PrevMatch => {
                if self.filter(self.focus).is_empty() {
                    self.set_message(
                        "no filter: / sets one, then n/N step through the matches",
                        true,
                        now,
                    );
                } else {
                    let step = if action == Action::NextMatch {
                        Action::Down
                    } else {
                        Action::Up
                    };
                    let len = match self.focus {
                        Pane::Integrations => self.integrations.rows.len(),
                        Pane::Expiry => self.expiry.creds.len(),
                        Pane::Log => self.log.rows.len(),
                    };
                    // Past the last match, wrap to the first (and back).
                    if !self.move_in(self.focus, step, now) && len > 1 {
                        let wrap = if step == Action::Down {
                            Action::Top
                        } else {
                            Action::Bottom
                        };
                        self.move_in(self.focus, wrap, now);
                    }
                }
            }
            Action::Expand if self.focus == Pane::Log && self.view == View::Main => {
                return self.log.toggle(&self.snapshot);
            }
            Action::Freeze => self.toggle_freeze(now),
            // Actions of the other layers do not reach the console layer.
            _ => return false,
        }
        true
    }

    /// The integration an action on "the selected one" means: the detail's, else the selected row's.
    fn target_integration(&self) -> Option<&Arc<IntegrationView>> {
        match &self.view {
            View::Detail(name) => self.snapshot.integration(name),
            View::Event(e) => e
                .integration
                .as_deref()
                .and_then(|n| self.snapshot.integration(n)),
            View::Main => self.selected_integration(),
        }
    }

    fn toggle_freeze(&mut self, now: DateTime<Utc>) {
        self.freeze.frozen = !self.freeze.frozen;
        if self.freeze.frozen {
            self.set_message("frozen: updates are held until f", false, now);
        } else {
            let n = std::mem::take(&mut self.freeze.pending_updates);
            if let Some(snap) = self.freeze.pending.take() {
                self.show(snap);
            }
            self.set_message(format!("live again ({n} updates applied)"), false, now);
        }
    }

    fn send(&mut self, cmd: Command, ok_text: String, now: DateTime<Utc>) {
        if self.opts.read_only {
            // Unreachable through the keymap; kept so no path can mutate in read-only mode.
            self.set_message("read-only: nothing can be changed", true, now);
            return;
        }
        match &self.handle {
            Some(h) => match h.try_send(cmd) {
                Ok(()) => self.set_message(ok_text, false, now),
                Err(_) => {
                    self.set_message("engine not accepting commands (busy or stopped)", true, now)
                }
            },
            None => self.set_message("no engine connected", true, now),
        }
    }

    /// The credential `r` applies to: the detail's integration, the selected integration or credential.
    fn rotation_target(&self) -> Option<String> {
        match (&self.view, self.focus) {
            (View::Main, Pane::Expiry) => self.selected_credential().map(|c| c.id.clone()),
            _ => self.target_integration().map(|i| i.credential.clone()),
        }
    }

    /// Read-only: the rotation's progress, as the engine (or the agent) publishes it, in the footer. False when
    /// there is nothing to show.
    fn rotation_progress(&mut self, now: DateTime<Utc>) -> bool {
        // Read-only: the rotation's progress as the engine (or the agent) publishes it, nothing to press.
        let progress = self
            .rotation_target()
            .and_then(|c| self.snapshot.rotation(&c).cloned())
            .filter(|r| r.state.in_progress() || r.last_step.is_some());
        match progress {
            Some(r) => {
                let last = r
                    .last_step
                    .map(|l| {
                        format!(
                            ", last: {} {} by {} via {}",
                            l.step,
                            if l.ok { "ok" } else { "failed" },
                            l.actor,
                            l.origin.as_str()
                        )
                    })
                    .unwrap_or_default();
                let held = match (r.running, r.lease) {
                    (Some(run), _) => format!(
                        ", running: {} by {} via {}",
                        run.step,
                        run.actor,
                        run.origin.as_str()
                    ),
                    (None, Some(l)) => format!(", held by {}", l.holder),
                    (None, None) => String::new(),
                };
                // From the agent: outside text.
                self.set_message(
                    crate::sanitize::owned(format!(
                        "read-only: rotation of {} is {}{last}{held}",
                        r.credential, r.state
                    )),
                    false,
                    now,
                );
                true
            }
            None => false,
        }
    }

    fn open_wizard(&mut self, now: DateTime<Utc>) {
        if self.opts.read_only {
            if !self.rotation_progress(now) {
                self.set_message("read-only: nothing can be changed", true, now);
            }
            return;
        }
        let Some(tx) = self.rotation.tx.clone() else {
            self.set_message(
                "rotation runs where the secrets are: `authwatch rotate CREDENTIAL status` on that host",
                true,
                now,
            );
            return;
        };
        let Some(cred) = self.rotation_target() else {
            self.set_message("no credential selected", true, now);
            return;
        };
        let consumers = self
            .snapshot
            .integrations
            .iter()
            .filter(|i| i.credential == cred)
            .map(|i| (i.name.clone(), i.team.clone(), i.business_unit.clone()))
            .collect();
        let mut w = wizard::open(&cred, self.rotation.demo, consumers);
        w.view.owner = self
            .snapshot
            .credential(&cred)
            .and_then(|c| c.owner.clone());
        self.wizard = Some(w);
        if tx
            .send(Request {
                credential: cred,
                cmd: WizardCmd::Open,
            })
            .is_err()
        {
            self.wizard = None;
            self.set_message("rotation is not running", true, now);
        }
    }

    fn rotation_request(&mut self, cmd: WizardCmd, now: DateTime<Utc>) {
        let Some(w) = self.wizard.as_mut() else {
            return;
        };
        let credential = w.view.rotation.credential.clone();
        let sent = self
            .rotation
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send(Request { credential, cmd }).is_ok());
        if sent {
            w.view.busy = true;
            w.view.checks.clear();
        } else {
            self.set_message("rotation is not running", true, now);
        }
    }

    /// Keys while the wizard is open: its own layers only; nothing reaches the panes behind it.
    fn wizard_input(&mut self, input: Input, now: DateTime<Utc>) -> bool {
        let Some(w) = self.wizard.as_mut() else {
            return false;
        };
        match w.apply(input) {
            WizardOutcome::Redraw(changed) => changed,
            WizardOutcome::Request(cmd) => {
                self.rotation_request(cmd, now);
                true
            }
            WizardOutcome::Close => {
                // The wizard's session gives the credential's rotation lease back.
                if let (Some(w), Some(tx)) = (self.wizard.take(), &self.rotation.tx) {
                    let _ = tx.send(Request {
                        credential: w.view.rotation.credential,
                        cmd: WizardCmd::Close,
                    });
                }
                true
            }
            WizardOutcome::Quit => {
                self.quit = true;
                true
            }
            WizardOutcome::Refuse(text) => {
                self.set_message(text, true, now);
                true
            }
        }
    }

    /// The rotation task answered.
    pub fn apply_rotation_update(&mut self, u: Update, now: DateTime<Utc>) -> bool {
        if !u.audit.is_empty() || u.rotation.is_some() {
            self.rotation
                .audit
                .insert(u.credential.clone(), u.audit.clone());
        }
        let Some(w) = self
            .wizard
            .as_mut()
            .filter(|w| w.view.rotation.credential == u.credential)
        else {
            return true;
        };
        if u.rotation.is_none() && u.ok && u.lines.is_empty() {
            // Audit only.
            return true;
        }
        w.view.busy = false;
        w.view.manual_sink = u.manual_sink;
        if let Some(r) = u.rotation {
            w.view.rotation = r;
        }
        w.view.checks = u.lines;
        let phase = w.view.rotation.phase;
        let cred = u.credential;
        if u.ok {
            self.set_message(format!("{cred}: {phase}"), false, now);
        } else {
            self.set_message(
                format!("{cred}: step failed, see the wizard ({phase})"),
                true,
                now,
            );
        }
        true
    }

    /// The credential of the integration shown in the detail view: its audit trail is wanted.
    fn request_audit(&self, name: &str) {
        if let (Some(tx), Some(i)) = (&self.rotation.tx, self.snapshot.integration(name)) {
            let _ = tx.send(Request {
                credential: i.credential.clone(),
                cmd: WizardCmd::Audit,
            });
        }
    }

    fn open_detail(&mut self, name: String) {
        self.request_audit(&name);
        self.view = View::Detail(name);
        self.detail = DetailView::default();
    }

    fn open(&mut self, now: DateTime<Utc>) -> bool {
        match self.focus {
            Pane::Integrations => match self.selected_integration() {
                Some(i) => self.open_detail(i.name.clone()),
                None => return false,
            },
            Pane::Expiry => {
                let Some(c) = self.selected_credential() else {
                    return false;
                };
                let id = c.id.clone();
                self.integrations.filter = id.clone();
                self.focus = Pane::Integrations;
                self.refresh(None);
                self.set_message(
                    format!("integrations filtered by credential {id} (Esc clears)"),
                    false,
                    now,
                );
            }
            Pane::Log => {
                let Some(ev) = self.selected_log().cloned() else {
                    return false;
                };
                self.view = View::Event(Box::new(ev));
                self.detail = DetailView::default();
            }
        }
        true
    }

    /// A movement (or month step) in a pane; true when something changed.
    fn move_in(&mut self, pane: Pane, action: Action, now: DateTime<Utc>) -> bool {
        match pane {
            Pane::Integrations => self.integrations.apply(action, &self.snapshot),
            Pane::Expiry => self.expiry.apply(action, &self.snapshot, now),
            Pane::Log => self.log.apply(action, &self.snapshot),
        }
    }

    /// Recompute every pane's rows and put each selection back on the same item (by name/id/event).
    fn refresh(&mut self, old: Option<&Snapshot>) {
        let snap = self.snapshot.clone();
        self.integrations.refresh_since(&snap, old);
        self.expiry.refresh(&snap);
        self.log.refresh(&snap, old);
    }
}
