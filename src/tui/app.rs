//! Console state and its update rules: keys and snapshots in, state out. No terminal, no clock: callers pass `now`.

use super::keymap::{Action, Context, Keymap};
use super::text;
use super::theme::Theme;
use crate::engine::{Command, CredentialView, EngineHandle, IntegrationView, Snapshot};
use crate::model::AuthEvent;
use crate::rotation::fsm::{Phase, Rotation};
use crate::rotation::session::{Request, Update, WizardCmd};
use crate::store::AuditEntry;
use crate::tui::views::wizard::Wizard;
use chrono::{DateTime, Datelike, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use secrecy::SecretString;
use std::cell::Cell;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;
use zeroize::Zeroizing;

/// Bytes reserved for a secret typed into the wizard (SFMC client secrets are 24-64 characters).
const SECRET_CAPACITY: usize = 512;

/// How long a footer message stays.
pub const MESSAGE_SECS: i64 = 4;

/// The parts of `TuiOptions` the state needs (no channels, no terminal).
#[derive(Debug, Clone, Default)]
pub struct AppOptions {
    pub read_only: bool,
    pub color: bool,
    pub ascii: bool,
    pub log_path: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Integrations,
    Expiry,
    Log,
}

impl Pane {
    pub const ALL: [Pane; 3] = [Pane::Integrations, Pane::Expiry, Pane::Log];

    pub fn title(self) -> &'static str {
        match self {
            Pane::Integrations => "Integrations",
            Pane::Expiry => "Secret expiry",
            Pane::Log => "401/403 log",
        }
    }
    fn index(self) -> usize {
        match self {
            Pane::Integrations => 0,
            Pane::Expiry => 1,
            Pane::Log => 2,
        }
    }
    pub fn next(self) -> Pane {
        Pane::ALL[(self.index() + 1) % 3]
    }
    pub fn prev(self) -> Pane {
        Pane::ALL[(self.index() + 2) % 3]
    }
    fn context(self) -> Context {
        match self {
            Pane::Integrations => Context::Integrations,
            Pane::Expiry => Context::Expiry,
            Pane::Log => Context::Log,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Worst first (the default: failing integrations on top).
    Status,
    Name,
    /// Soonest secret expiry first.
    Expiry,
    /// Most recent failure first.
    LastFailure,
}

impl SortKey {
    pub fn label(self) -> &'static str {
        match self {
            SortKey::Status => "status",
            SortKey::Name => "name",
            SortKey::Expiry => "expiry",
            SortKey::LastFailure => "last failure",
        }
    }
    pub fn next(self) -> SortKey {
        match self {
            SortKey::Status => SortKey::Name,
            SortKey::Name => SortKey::Expiry,
            SortKey::Expiry => SortKey::LastFailure,
            SortKey::LastFailure => SortKey::Status,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    Main,
    /// Detail of one integration, by name.
    Detail(String),
}

#[derive(Debug, Clone)]
pub struct Message {
    pub text: String,
    pub error: bool,
    pub until: DateTime<Utc>,
}

/// Cursor and scroll of one list. The offset and page size are written back by the renderer (which is the only
/// place that knows the viewport height), hence `Cell`.
#[derive(Debug, Default)]
pub struct ListNav {
    pub selected: usize,
    pub offset: Cell<usize>,
    pub page: Cell<usize>,
}

impl ListNav {
    fn page(&self) -> usize {
        self.page.get().max(1)
    }
    fn apply(&mut self, action: Action, len: usize) -> bool {
        let before = self.selected;
        let last = len.saturating_sub(1);
        self.selected = match action {
            Action::Up => self.selected.saturating_sub(1),
            Action::Down => (self.selected + 1).min(last),
            Action::Top => 0,
            Action::Bottom => last,
            Action::PageUp => self.selected.saturating_sub(self.page()),
            Action::PageDown => (self.selected + self.page()).min(last),
            _ => self.selected,
        };
        self.selected != before
    }
    /// Keep the selection visible in a window of `height` rows; returns the first visible row.
    pub fn window(&self, height: usize, len: usize) -> usize {
        self.page.set(height);
        let mut off = self.offset.get();
        if height == 0 {
            return off.min(len);
        }
        if self.selected < off {
            off = self.selected;
        }
        if self.selected >= off + height {
            off = self.selected + 1 - height;
        }
        off = off.min(len.saturating_sub(height));
        self.offset.set(off);
        off
    }
    /// The selected row moved from `from` to `to` (rows were inserted/reordered): move the window with it.
    fn follow(&mut self, from: usize, to: usize) {
        self.selected = to;
        let off = self.offset.get();
        let off = if to >= from {
            off + (to - from)
        } else {
            off.saturating_sub(from - to)
        };
        self.offset.set(off);
    }
}

/// Scroll of a text view (detail, help); the renderer clamps it to the content.
#[derive(Debug, Default)]
pub struct Scroll {
    pub top: Cell<usize>,
    pub page: Cell<usize>,
}

impl Scroll {
    fn apply(&mut self, action: Action) -> bool {
        let before = self.top.get();
        let page = self.page.get().max(1);
        let top = match action {
            Action::Up => before.saturating_sub(1),
            Action::Down => before + 1,
            Action::Top => 0,
            Action::Bottom => usize::MAX / 2,
            Action::PageUp => before.saturating_sub(page),
            Action::PageDown => before + page,
            _ => before,
        };
        self.top.set(top);
        top != before
    }
    /// Clamp to content of `len` lines in a window of `height`; returns the first line to show.
    pub fn clamp(&self, height: usize, len: usize) -> usize {
        self.page.set(height);
        let top = self.top.get().min(len.saturating_sub(height));
        self.top.set(top);
        top
    }
}

pub struct App {
    pub(crate) opts: AppOptions,
    pub(crate) keymap: Keymap,
    pub(crate) theme: Theme,
    handle: Option<EngineHandle>,
    /// What is on screen (the frozen snapshot while frozen).
    pub(crate) snapshot: Arc<Snapshot>,
    pending: Option<Arc<Snapshot>>,
    pub(crate) pending_updates: u64,
    pub(crate) frozen: bool,
    pub(crate) focus: Pane,
    pub(crate) view: View,
    pub(crate) help: bool,
    pub(crate) help_scroll: Scroll,
    pub(crate) detail_scroll: Scroll,
    pub(crate) sort: SortKey,
    pub(crate) filters: [String; 3],
    /// The pane whose filter is being typed.
    pub(crate) editing: Option<Pane>,
    /// Indices into `snapshot.integrations`, filtered and sorted.
    pub(crate) rows: Vec<usize>,
    selected_name: Option<String>,
    /// Until the user moves in the list, the selection stays on the top (worst) row; afterwards it follows
    /// the selected integration by name, so an update can never swap the row under a pending `p`.
    integ_touched: bool,
    pub(crate) integ: ListNav,
    /// Widest name, business unit, credential and reason among `rows` (column sizing).
    pub(crate) col_widths: [usize; 4],
    /// Indices into `snapshot.credentials`, filtered, soonest expiry first.
    pub(crate) creds: Vec<usize>,
    selected_cred: Option<String>,
    pub(crate) cred: ListNav,
    /// Month shown by the calendar; `None` = the current month.
    pub(crate) cal_month: Option<(i32, u32)>,
    /// Indices into `snapshot.auth_log` (newest first), filtered.
    pub(crate) logs: Vec<usize>,
    pub(crate) log: ListNav,
    /// The selected log entry while scrolled away from the top (None = following the newest).
    log_anchor: Option<AuthEvent>,
    /// Entries that arrived while scrolled away.
    pub(crate) log_new: usize,
    pub(crate) message: Option<Message>,
    pub(crate) engine_stopped: bool,
    /// The rotation wizard, when open.
    pub(crate) wizard: Option<WizardUi>,
    /// Where rotation requests go (None: rotation is not available in this console).
    rotation: Option<mpsc::UnboundedSender<Request>>,
    /// The demo: the simulator stands in for Setup.
    rotation_demo: bool,
    /// Rotation audit trails by credential, for the detail view.
    pub(crate) audit: HashMap<String, Vec<AuditEntry>>,
    quit: bool,
    repaint: bool,
}

/// The open wizard: what it shows, plus the secret being typed (kept here, zeroized, never shown).
pub struct WizardUi {
    pub view: Wizard,
    secret: Zeroizing<String>,
    /// The confirmation was started with `A` (activate in the simulator first).
    confirm_in_sim: bool,
}

impl std::fmt::Debug for WizardUi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WizardUi")
            .field("view", &self.view)
            .field("secret", &"[REDACTED]")
            .finish()
    }
}

impl App {
    pub fn new(snapshot: Arc<Snapshot>, opts: AppOptions) -> Self {
        let mut app = App {
            keymap: Keymap::new(opts.read_only),
            theme: Theme::new(opts.color, opts.ascii),
            opts,
            handle: None,
            snapshot,
            pending: None,
            pending_updates: 0,
            frozen: false,
            focus: Pane::Integrations,
            view: View::Main,
            help: false,
            help_scroll: Scroll::default(),
            detail_scroll: Scroll::default(),
            sort: SortKey::Status,
            filters: Default::default(),
            editing: None,
            rows: Vec::new(),
            selected_name: None,
            integ_touched: false,
            integ: ListNav::default(),
            col_widths: [0; 4],
            creds: Vec::new(),
            selected_cred: None,
            cred: ListNav::default(),
            cal_month: None,
            logs: Vec::new(),
            log: ListNav::default(),
            log_anchor: None,
            log_new: 0,
            message: None,
            engine_stopped: false,
            wizard: None,
            rotation: None,
            rotation_demo: false,
            audit: HashMap::new(),
            quit: false,
            repaint: false,
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
        self.rotation = Some(tx);
        self.rotation_demo = demo;
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
        self.sort
    }
    pub fn is_frozen(&self) -> bool {
        self.frozen
    }
    pub fn help_open(&self) -> bool {
        self.help
    }
    pub fn should_quit(&self) -> bool {
        self.quit
    }
    pub fn read_only(&self) -> bool {
        self.opts.read_only
    }
    pub fn filter(&self, pane: Pane) -> &str {
        &self.filters[pane.index()]
    }
    pub fn editing_filter(&self) -> Option<Pane> {
        self.editing
    }
    pub fn message_text(&self) -> Option<&str> {
        self.message.as_ref().map(|m| m.text.as_str())
    }
    /// The integrations in display order (filtered and sorted).
    pub fn visible_integrations(&self) -> impl Iterator<Item = &Arc<IntegrationView>> {
        self.rows.iter().map(|&i| &self.snapshot.integrations[i])
    }
    pub fn selected_integration(&self) -> Option<&Arc<IntegrationView>> {
        self.rows
            .get(self.integ.selected)
            .map(|&i| &self.snapshot.integrations[i])
    }
    pub fn selected_credential(&self) -> Option<&Arc<CredentialView>> {
        self.creds
            .get(self.cred.selected)
            .map(|&i| &self.snapshot.credentials[i])
    }
    pub fn selected_log(&self) -> Option<&AuthEvent> {
        self.logs
            .get(self.log.selected)
            .map(|&i| &self.snapshot.auth_log[i])
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
        if self.frozen {
            self.pending = Some(snap);
            self.pending_updates += 1;
            return;
        }
        let old = std::mem::replace(&mut self.snapshot, snap);
        self.refresh(Some(&old));
    }

    /// The engine's channel closed: keep showing the last snapshot and say so.
    pub fn engine_gone(&mut self) {
        self.engine_stopped = true;
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

    /// Which registry context the keyboard is in.
    pub fn context(&self) -> Context {
        if self.help {
            Context::Help
        } else if matches!(self.view, View::Detail(_)) {
            Context::Detail
        } else {
            self.focus.context()
        }
    }

    /// A key press. Returns true when the screen needs a redraw.
    pub fn handle_key(&mut self, ev: KeyEvent, now: DateTime<Utc>) -> bool {
        if ev.kind == KeyEventKind::Release {
            return false;
        }
        if self.wizard.is_some() {
            return self.wizard_key(ev, now);
        }
        if let Some(pane) = self.editing {
            return self.edit_filter(pane, ev);
        }
        match self.keymap.action_for(self.context(), &ev) {
            Some(action) => self.perform(action, now),
            None => false,
        }
    }

    fn edit_filter(&mut self, pane: Pane, ev: KeyEvent) -> bool {
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        let text = &mut self.filters[pane.index()];
        match ev.code {
            KeyCode::Char('c') if ctrl => self.quit = true,
            KeyCode::Char('u') if ctrl => text.clear(),
            KeyCode::Char(c) if !ctrl => text.push(c),
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Enter => self.editing = None,
            KeyCode::Esc => {
                text.clear();
                self.editing = None;
            }
            KeyCode::Up | KeyCode::Down | KeyCode::PageUp | KeyCode::PageDown => {
                let action = match ev.code {
                    KeyCode::Up => Action::Up,
                    KeyCode::Down => Action::Down,
                    KeyCode::PageUp => Action::PageUp,
                    _ => Action::PageDown,
                };
                return self.move_in(pane, action);
            }
            _ => return false,
        }
        self.refresh(None);
        true
    }

    /// Do one registry action.
    pub fn perform(&mut self, action: Action, now: DateTime<Utc>) -> bool {
        let ctx = self.context();
        match action {
            Action::Quit => self.quit = true,
            Action::Help => {
                self.help = !self.help;
                self.help_scroll = Scroll::default();
            }
            Action::Back => {
                if self.help {
                    self.help = false;
                } else if matches!(self.view, View::Detail(_)) {
                    self.view = View::Main;
                } else if !self.filters[self.focus.index()].is_empty() {
                    self.filters[self.focus.index()].clear();
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
            Action::Up
            | Action::Down
            | Action::Top
            | Action::Bottom
            | Action::PageUp
            | Action::PageDown => {
                return match ctx {
                    Context::Help => self.help_scroll.apply(action),
                    Context::Detail => self.detail_scroll.apply(action),
                    _ => self.move_in(self.focus, action),
                };
            }
            Action::PrevMonth | Action::NextMonth => {
                let (y, m) = self.calendar_month(now);
                let idx = y * 12 + m as i32 - 1 + if action == Action::NextMonth { 1 } else { -1 };
                self.cal_month = Some((idx.div_euclid(12), idx.rem_euclid(12) as u32 + 1));
            }
            Action::Open => return self.open(now),
            Action::Filter => self.editing = Some(self.focus),
            Action::Sort => {
                self.sort = self.sort.next();
                self.refresh(None);
                self.set_message(format!("sorted by {}", self.sort.label()), false, now);
            }
            Action::ProbeSelected => {
                let name = match &self.view {
                    View::Detail(name) => Some(name.clone()),
                    View::Main => self.selected_integration().map(|i| i.name.clone()),
                };
                match name {
                    Some(name) => self.send(
                        Command::ProbeNow {
                            integration: name.clone(),
                        },
                        format!("probe queued for {name}"),
                        now,
                    ),
                    None => self.set_message("no integration selected", true, now),
                }
            }
            Action::Acknowledge => {
                let selected = match &self.view {
                    View::Detail(name) => self.snapshot.integration(name).cloned(),
                    View::Main => self.selected_integration().cloned(),
                };
                match selected {
                    None => self.set_message("no integration selected", true, now),
                    Some(i) if i.health.status == crate::model::Status::Ok => self.set_message(
                        format!("nothing to acknowledge: {} is OK", i.name),
                        true,
                        now,
                    ),
                    Some(i) => self.send(
                        Command::Ack {
                            integration: i.name.clone(),
                            actor: crate::host::os_user().to_string(),
                        },
                        format!("acknowledged {}", i.name),
                        now,
                    ),
                }
            }
            Action::ProbeAll => {
                let n = self.snapshot.integrations.len();
                self.send(
                    Command::ProbeAll,
                    format!("probe queued for all {n} integrations"),
                    now,
                );
            }
            Action::Rotate => self.open_wizard(now),
            Action::Freeze => {
                self.frozen = !self.frozen;
                if self.frozen {
                    self.set_message("frozen: updates are held until f", false, now);
                } else {
                    let n = std::mem::take(&mut self.pending_updates);
                    if let Some(snap) = self.pending.take() {
                        let old = std::mem::replace(&mut self.snapshot, snap);
                        self.refresh(Some(&old));
                    }
                    self.set_message(format!("live again ({n} updates applied)"), false, now);
                }
            }
            Action::Repaint => self.repaint = true,
        }
        true
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
            (View::Detail(name), _) => self
                .snapshot
                .integration(name)
                .map(|i| i.credential.clone()),
            (View::Main, Pane::Expiry) => self.selected_credential().map(|c| c.id.clone()),
            (View::Main, _) => self.selected_integration().map(|i| i.credential.clone()),
        }
    }

    fn open_wizard(&mut self, now: DateTime<Utc>) {
        if self.opts.read_only {
            self.set_message("read-only: nothing can be changed", true, now);
            return;
        }
        let Some(tx) = self.rotation.clone() else {
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
        let mut view = Wizard::new(Rotation::idle(&cred));
        view.demo = self.rotation_demo;
        view.busy = true;
        view.consumers = self
            .snapshot
            .integrations
            .iter()
            .filter(|i| i.credential == cred)
            .map(|i| (i.name.clone(), i.team.clone(), i.business_unit.clone()))
            .collect();
        self.wizard = Some(WizardUi {
            view,
            // Room for any client secret up front: growing the buffer would leave copies behind, unzeroized.
            secret: Zeroizing::new(String::with_capacity(SECRET_CAPACITY)),
            confirm_in_sim: false,
        });
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
            .as_ref()
            .is_some_and(|tx| tx.send(Request { credential, cmd }).is_ok());
        if sent {
            w.view.busy = true;
            w.view.checks.clear();
        } else {
            self.set_message("rotation is not running", true, now);
        }
    }

    /// Keys while the wizard is open: its own keys (listed in its last line), the masked secret field, the typed
    /// confirmation. Nothing else reaches the panes behind it.
    fn wizard_key(&mut self, ev: KeyEvent, now: DateTime<Utc>) -> bool {
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(ev.code, KeyCode::Char('c') | KeyCode::Char('C')) {
            self.quit = true;
            return true;
        }
        let Some(w) = self.wizard.as_mut() else {
            return false;
        };
        if w.view.secret_len.is_some() {
            match ev.code {
                KeyCode::Char('u') if ctrl => w.secret.clear(),
                // Beyond the reserved room a secret is not a paste of one secret: refuse rather than reallocate.
                KeyCode::Char(c) if !ctrl && w.secret.len() + c.len_utf8() <= SECRET_CAPACITY => {
                    w.secret.push(c)
                }
                KeyCode::Backspace => {
                    w.secret.pop();
                }
                KeyCode::Esc => {
                    w.secret.clear();
                    w.view.secret_len = None;
                    return true;
                }
                KeyCode::Enter => {
                    let typed = w.secret.trim().to_string();
                    w.secret.clear();
                    w.view.secret_len = None;
                    if typed.is_empty() {
                        self.set_message("nothing typed: no secret staged", true, now);
                    } else {
                        self.rotation_request(WizardCmd::Stage(SecretString::from(typed)), now);
                    }
                    return true;
                }
                _ => return false,
            }
            w.view.secret_len = Some(w.secret.chars().count());
            return true;
        }
        if let Some(typed) = w.view.confirm_typed.as_mut() {
            match ev.code {
                KeyCode::Char(c) if !ctrl => typed.push(c),
                KeyCode::Backspace => {
                    typed.pop();
                }
                KeyCode::Esc => w.view.confirm_typed = None,
                KeyCode::Enter => {
                    let matches = *typed == w.view.rotation.credential;
                    let in_sim = w.confirm_in_sim;
                    w.view.confirm_typed = None;
                    if matches {
                        let cmd = if in_sim {
                            WizardCmd::SimActivate
                        } else {
                            WizardCmd::Activate
                        };
                        self.rotation_request(cmd, now);
                    } else {
                        self.set_message("the id typed does not match: not activated", true, now);
                    }
                }
                _ => return false,
            }
            return true;
        }
        if ev.code == KeyCode::Esc {
            self.wizard = None;
            return true;
        }
        let KeyCode::Char(key) = ev.code else {
            return false;
        };
        let offered = w
            .view
            .keys()
            .iter()
            .any(|(k, _)| k.len() == 1 && k.starts_with(key));
        if !offered {
            return false;
        }
        if w.view.busy {
            self.set_message("a step is running: wait for its result", true, now);
            return true;
        }
        let phase = w.view.rotation.phase;
        let cmd = match key {
            's' => {
                w.view.secret_len = Some(0);
                return true;
            }
            'a' if phase == Phase::Promoted => {
                w.view.confirm_typed = Some(String::new());
                w.confirm_in_sim = false;
                return true;
            }
            'A' => {
                w.view.confirm_typed = Some(String::new());
                w.confirm_in_sim = true;
                return true;
            }
            'a' => WizardCmd::Activate,
            'g' => WizardCmd::SimGenerate,
            'v' => WizardCmd::Verify,
            'p' => WizardCmd::Promote {
                manual_confirmed: false,
            },
            'c' => WizardCmd::Promote {
                manual_confirmed: true,
            },
            'x' => WizardCmd::Abort,
            _ => return false,
        };
        self.rotation_request(cmd, now);
        true
    }

    /// The rotation task answered.
    pub fn apply_rotation_update(&mut self, u: Update, now: DateTime<Utc>) -> bool {
        if !u.audit.is_empty() || u.rotation.is_some() {
            self.audit.insert(u.credential.clone(), u.audit.clone());
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
        if let (Some(tx), Some(i)) = (&self.rotation, self.snapshot.integration(name)) {
            let _ = tx.send(Request {
                credential: i.credential.clone(),
                cmd: WizardCmd::Audit,
            });
        }
    }

    fn open(&mut self, now: DateTime<Utc>) -> bool {
        match self.focus {
            Pane::Integrations => match self.selected_integration() {
                Some(i) => {
                    let name = i.name.clone();
                    self.request_audit(&name);
                    self.view = View::Detail(name);
                    self.detail_scroll = Scroll::default();
                }
                None => return false,
            },
            Pane::Expiry => {
                let Some(c) = self.selected_credential() else {
                    return false;
                };
                let id = c.id.clone();
                self.filters[Pane::Integrations.index()] = id.clone();
                self.focus = Pane::Integrations;
                self.refresh(None);
                self.set_message(
                    format!("integrations filtered by credential {id} (Esc clears)"),
                    false,
                    now,
                );
            }
            Pane::Log => {
                let Some(ev) = self.selected_log() else {
                    return false;
                };
                match ev.integration.clone() {
                    Some(name) if self.snapshot.integration(&name).is_some() => {
                        self.request_audit(&name);
                        self.view = View::Detail(name);
                        self.detail_scroll = Scroll::default();
                    }
                    _ => {
                        self.set_message("this event matched no configured integration", true, now)
                    }
                }
            }
        }
        true
    }

    fn move_in(&mut self, pane: Pane, action: Action) -> bool {
        match pane {
            Pane::Integrations => {
                self.integ_touched = true;
                let moved = self.integ.apply(action, self.rows.len());
                self.selected_name = self.selected_integration().map(|i| i.name.clone());
                moved
            }
            Pane::Expiry => {
                let moved = self.cred.apply(action, self.creds.len());
                self.sync_cred_selection();
                moved
            }
            Pane::Log => {
                let moved = self.log.apply(action, self.logs.len());
                self.log_anchor = if self.log.selected == 0 {
                    self.log_new = 0;
                    None
                } else {
                    self.selected_log().cloned()
                };
                moved
            }
        }
    }

    fn sync_cred_selection(&mut self) {
        let Some(c) = self.selected_credential().cloned() else {
            self.selected_cred = None;
            return;
        };
        self.selected_cred = Some(c.id.clone());
        if let Some(exp) = c.secret_expires {
            // Selecting a credential jumps the calendar to its month.
            self.cal_month = Some((exp.year(), exp.month()));
        }
    }

    /// The month the calendar shows.
    pub fn calendar_month(&self, now: DateTime<Utc>) -> (i32, u32) {
        self.cal_month.unwrap_or((now.year(), now.month()))
    }

    /// Recompute the filtered/sorted rows and put every selection back on the same item (by name/id/event).
    fn refresh(&mut self, old: Option<&Snapshot>) {
        let snap = self.snapshot.clone();

        // Integrations.
        let prev_index = self.integ.selected;
        let needle = self.filters[Pane::Integrations.index()].to_lowercase();
        let mut rows: Vec<usize> = (0..snap.integrations.len())
            .filter(|&i| integration_matches(&snap.integrations[i], &needle))
            .collect();
        sort_rows(&mut rows, &snap.integrations, self.sort);
        self.col_widths = rows.iter().fold([0; 4], |w, &i| {
            let i = &snap.integrations[i];
            [
                w[0].max(text::width(&i.name)),
                w[1].max(i.business_unit.as_deref().map_or(1, text::width)),
                w[2].max(text::width(&i.credential)),
                w[3].max(text::width(&reason(i))),
            ]
        });
        self.rows = rows;
        let found = if self.integ_touched {
            self.selected_name.as_deref().and_then(|n| {
                self.rows
                    .iter()
                    .position(|&i| snap.integrations[i].name == n)
            })
        } else {
            self.integ.selected = 0;
            self.integ.offset.set(0);
            None
        };
        match found {
            Some(to) => self.integ.follow(prev_index, to),
            None => {
                self.integ.selected = prev_index.min(self.rows.len().saturating_sub(1));
                self.selected_name = self.selected_integration().map(|i| i.name.clone());
            }
        }

        // Credentials.
        let needle = self.filters[Pane::Expiry.index()].to_lowercase();
        let mut creds: Vec<usize> = (0..snap.credentials.len())
            .filter(|&i| credential_matches(&snap.credentials[i], &needle))
            .collect();
        creds.sort_by(|&a, &b| {
            let (a, b) = (&snap.credentials[a], &snap.credentials[b]);
            cmp_none_last(a.days_left, b.days_left).then_with(|| a.id.cmp(&b.id))
        });
        self.creds = creds;
        let prev = self.cred.selected;
        match self.selected_cred.as_deref().and_then(|id| {
            self.creds
                .iter()
                .position(|&i| snap.credentials[i].id == id)
        }) {
            Some(to) => self.cred.follow(prev, to),
            None => {
                self.cred.selected = prev.min(self.creds.len().saturating_sub(1));
                self.selected_cred = self.selected_credential().map(|c| c.id.clone());
            }
        }

        // 401/403 log: count what is new, and keep the anchored entry in view when scrolled away.
        if let Some(old) = old
            && self.log_anchor.is_some()
        {
            let new_entries = match old.auth_log.first() {
                Some(newest) => snap
                    .auth_log
                    .iter()
                    .position(|e| e == newest)
                    .unwrap_or(snap.auth_log.len()),
                None => snap.auth_log.len(),
            };
            self.log_new += new_entries;
        }
        let needle = self.filters[Pane::Log.index()].to_lowercase();
        self.logs = (0..snap.auth_log.len())
            .filter(|&i| event_matches(&snap.auth_log[i], &needle))
            .collect();
        let prev = self.log.selected;
        match &self.log_anchor {
            None => {
                self.log.selected = 0;
                self.log.offset.set(0);
            }
            Some(anchor) => match self.logs.iter().position(|&i| &snap.auth_log[i] == anchor) {
                Some(to) => self.log.follow(prev, to),
                None => {
                    self.log.selected = prev.min(self.logs.len().saturating_sub(1));
                    self.log_anchor = self.selected_log().cloned();
                }
            },
        }
    }
}

/// The short reason shown in tables: "probing..." before the first result, "(paused)" when automatic probes
/// are paused.
pub fn reason(i: &IntegrationView) -> String {
    if i.history.is_empty() {
        return "probing...".into();
    }
    let r = i.health.short_reason();
    let r = if r.is_empty() {
        i.last_probe().map(|p| p.summary()).unwrap_or_default()
    } else {
        r.to_string()
    };
    if i.paused && !r.contains("paused") {
        format!("{r} (paused)")
    } else {
        r
    }
}

fn cmp_none_last<T: Ord>(a: Option<T>, b: Option<T>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.cmp(&b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

fn sort_rows(rows: &mut [usize], items: &[Arc<IntegrationView>], key: SortKey) {
    rows.sort_by(|&a, &b| {
        let (a, b) = (&items[a], &items[b]);
        let primary = match key {
            SortKey::Status => b.health.status.cmp(&a.health.status).then_with(|| {
                b.consecutive_auth_failures
                    .cmp(&a.consecutive_auth_failures)
            }),
            SortKey::Name => Ordering::Equal,
            SortKey::Expiry => cmp_none_last(a.secret_expires, b.secret_expires),
            // Newest failure first: compare reversed, keeping "never failed" last.
            SortKey::LastFailure => match (a.last_failure_at(), b.last_failure_at()) {
                (Some(x), Some(y)) => y.cmp(&x),
                (x, y) => cmp_none_last(x, y),
            },
        };
        primary.then_with(|| a.name.cmp(&b.name))
    });
}

fn contains(hay: Option<&str>, needle: &str) -> bool {
    hay.is_some_and(|h| h.to_lowercase().contains(needle))
}

/// Filter on name, business unit, team, credential and reasons (case-insensitive substring).
pub fn integration_matches(i: &IntegrationView, needle: &str) -> bool {
    needle.is_empty()
        || contains(Some(&i.name), needle)
        || contains(i.business_unit.as_deref(), needle)
        || contains(i.team.as_deref(), needle)
        || contains(Some(&i.credential), needle)
        || i.health.reasons.iter().any(|r| contains(Some(r), needle))
}

fn credential_matches(c: &CredentialView, needle: &str) -> bool {
    needle.is_empty()
        || contains(Some(&c.id), needle)
        || contains(c.owner.as_deref(), needle)
        || contains(Some(&c.client_id), needle)
        || c.integrations.iter().any(|i| contains(Some(i), needle))
}

fn event_matches(e: &AuthEvent, needle: &str) -> bool {
    needle.is_empty()
        || contains(e.integration.as_deref(), needle)
        || contains(Some(&e.error), needle)
        || contains(Some(&e.source), needle)
        || e.http_status.to_string().contains(needle)
}
