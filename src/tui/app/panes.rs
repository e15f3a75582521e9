//! The three panes' states. Each owns its filter, its rows (indices into the snapshot, filtered and sorted) and
//! its cursor, recomputes them from a snapshot, and receives the movement actions meant for it.

use super::nav::ListNav;
use crate::engine::{CredentialView, IntegrationView, Snapshot};
use crate::model::{AuthEvent, Status};
use crate::tui::keymap::{Action, Context};
use crate::tui::text;
use chrono::{DateTime, Datelike, Utc};
use std::cmp::Ordering;
use std::sync::Arc;

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
    pub(super) fn context(self) -> Context {
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

/// The Integrations pane.
#[derive(Debug)]
pub struct IntegrationsPane {
    pub filter: String,
    pub sort: SortKey,
    /// Indices into `snapshot.integrations`, filtered and sorted.
    pub rows: Vec<usize>,
    pub nav: ListNav,
    /// Widest name, team, owner, business unit and credential among `rows` (column sizing).
    pub col_widths: [usize; 5],
    /// FAIL and WARN counts among `rows[..k]` at `k` (`rows.len() + 1` entries), so the rows scrolled out of the
    /// window are counted without a pass over all of them on every frame.
    pub flagged_before: Vec<[u32; 2]>,
    selected_name: Option<String>,
    /// Until the user moves in the list, the selection stays on the top (worst) row; afterwards it follows
    /// the selected integration by name, so an update can never swap the row under a pending `p`.
    touched: bool,
}

impl Default for IntegrationsPane {
    fn default() -> Self {
        Self {
            filter: String::new(),
            sort: SortKey::Status,
            rows: Vec::new(),
            nav: ListNav::default(),
            col_widths: [0; 5],
            flagged_before: vec![[0; 2]],
            selected_name: None,
            touched: false,
        }
    }
}

impl IntegrationsPane {
    pub fn selected<'a>(&self, snap: &'a Snapshot) -> Option<&'a Arc<IntegrationView>> {
        self.rows
            .get(self.nav.selected)
            .map(|&i| &snap.integrations[i])
    }

    /// A movement; true when the selection moved.
    pub(super) fn apply(&mut self, action: Action, snap: &Snapshot) -> bool {
        self.touched = true;
        let moved = self.nav.apply(action, self.rows.len());
        self.selected_name = self.selected(snap).map(|i| i.name.clone());
        moved
    }

    pub(super) fn cycle_sort(&mut self, snap: &Snapshot) {
        self.sort = self.sort.next();
        self.refresh(snap);
    }

    /// Recompute the rows and put the selection back on the same integration (by name).
    pub(super) fn refresh(&mut self, snap: &Snapshot) {
        self.refresh_since(snap, None);
    }

    /// The same as [`refresh`](Self::refresh), from the rows as sorted for `old` (same filter and sort key):
    /// only the integrations whose view changed (a new `Arc`) are taken out and put back in place, so a snapshot
    /// that changed a few integrations costs a pass over the rows, not a sort of all of them.
    pub(super) fn refresh_since(&mut self, snap: &Snapshot, old: Option<&Snapshot>) {
        let prev_index = self.nav.selected;
        let needle = self.filter.to_lowercase();
        let items = &snap.integrations;
        let changed: Option<Vec<usize>> = old
            .filter(|o| o.integrations.len() == items.len())
            .map(|o| {
                (0..items.len())
                    .filter(|&i| !Arc::ptr_eq(&o.integrations[i], &items[i]))
                    .collect()
            })
            .filter(|c: &Vec<usize>| c.len() <= items.len() / 8);
        let rows = match changed {
            Some(changed) => {
                let mut is_changed = vec![false; items.len()];
                for &i in &changed {
                    is_changed[i] = true;
                }
                let mut rows = std::mem::take(&mut self.rows);
                rows.retain(|&i| !is_changed[i]);
                for i in changed {
                    if integration_matches(&items[i], &needle) {
                        // Ties (equal names, from merged agents) keep index order, as the stable sort does.
                        let at = rows.partition_point(|&r| {
                            cmp_rows(&items[r], &items[i], self.sort).then(r.cmp(&i))
                                == Ordering::Less
                        });
                        rows.insert(at, i);
                    }
                }
                rows
            }
            None => {
                let mut rows: Vec<usize> = (0..items.len())
                    .filter(|&i| integration_matches(&items[i], &needle))
                    .collect();
                sort_rows(&mut rows, items, self.sort);
                rows
            }
        };
        // Owner widths by credential id, once per credential rather than a search per row.
        let owners: std::collections::HashMap<&str, usize> = snap
            .credentials
            .iter()
            .map(|c| (c.id.as_str(), c.owner.as_deref().map_or(1, text::width)))
            .rev() // the first credential of an id wins, as `Snapshot::credential` finds it
            .collect();
        self.col_widths = rows.iter().fold([0; 5], |w, &i| {
            let i = &items[i];
            let owner = owners.get(i.credential.as_str()).copied().unwrap_or(1);
            [
                w[0].max(text::width(&i.name)),
                w[1].max(i.team.as_deref().map_or(1, text::width)),
                w[2].max(owner),
                w[3].max(i.business_unit.as_deref().map_or(1, text::width)),
                w[4].max(text::width(&i.credential)),
            ]
        });
        self.flagged_before.clear();
        self.flagged_before.push([0; 2]);
        let mut counts = [0u32; 2];
        for &i in &rows {
            match items[i].health.status {
                Status::Fail => counts[0] += 1,
                Status::Warn => counts[1] += 1,
                _ => {}
            }
            self.flagged_before.push(counts);
        }
        self.rows = rows;
        let found = if self.touched {
            self.selected_name.as_deref().and_then(|n| {
                self.rows
                    .iter()
                    .position(|&i| snap.integrations[i].name == n)
            })
        } else {
            self.nav.reset();
            None
        };
        match found {
            Some(to) => self.nav.follow(prev_index, to),
            None => {
                self.nav.selected = prev_index.min(self.rows.len().saturating_sub(1));
                self.selected_name = self.selected(snap).map(|i| i.name.clone());
            }
        }
    }
}

/// The Secret expiry pane: credentials soonest expiry first, and the calendar's month.
#[derive(Debug, Default)]
pub struct ExpiryPane {
    pub filter: String,
    /// Indices into `snapshot.credentials`, filtered, soonest expiry first.
    pub creds: Vec<usize>,
    pub nav: ListNav,
    /// Month shown by the calendar; `None` = the current month.
    pub cal_month: Option<(i32, u32)>,
    selected_id: Option<String>,
}

impl ExpiryPane {
    pub fn selected<'a>(&self, snap: &'a Snapshot) -> Option<&'a Arc<CredentialView>> {
        self.creds
            .get(self.nav.selected)
            .map(|&i| &snap.credentials[i])
    }

    /// The month the calendar shows.
    pub fn month(&self, now: DateTime<Utc>) -> (i32, u32) {
        self.cal_month.unwrap_or((now.year(), now.month()))
    }

    /// A movement or a month step; true when something changed.
    pub(super) fn apply(&mut self, action: Action, snap: &Snapshot, now: DateTime<Utc>) -> bool {
        match action {
            Action::PrevMonth | Action::NextMonth => {
                let (y, m) = self.month(now);
                let idx = y * 12 + m as i32 - 1 + if action == Action::NextMonth { 1 } else { -1 };
                self.cal_month = Some((idx.div_euclid(12), idx.rem_euclid(12) as u32 + 1));
                true
            }
            _ => {
                let moved = self.nav.apply(action, self.creds.len());
                self.sync_selection(snap);
                moved
            }
        }
    }

    fn sync_selection(&mut self, snap: &Snapshot) {
        let Some(c) = self.selected(snap).cloned() else {
            self.selected_id = None;
            return;
        };
        self.selected_id = Some(c.id.clone());
        if let Some(exp) = c.secret_expires {
            // Selecting a credential jumps the calendar to its month.
            self.cal_month = Some((exp.year(), exp.month()));
        }
    }

    /// Recompute the rows and keep the selection on the same credential (by id).
    pub(super) fn refresh(&mut self, snap: &Snapshot) {
        let needle = self.filter.to_lowercase();
        let mut creds: Vec<usize> = (0..snap.credentials.len())
            .filter(|&i| credential_matches(&snap.credentials[i], &needle))
            .collect();
        creds.sort_by(|&a, &b| {
            let (a, b) = (&snap.credentials[a], &snap.credentials[b]);
            cmp_none_last(a.days_left, b.days_left).then_with(|| a.id.cmp(&b.id))
        });
        self.creds = creds;
        let prev = self.nav.selected;
        match self.selected_id.as_deref().and_then(|id| {
            self.creds
                .iter()
                .position(|&i| snap.credentials[i].id == id)
        }) {
            Some(to) => self.nav.follow(prev, to),
            None => {
                self.nav.selected = prev.min(self.creds.len().saturating_sub(1));
                self.selected_id = self.selected(snap).map(|c| c.id.clone());
            }
        }
    }
}

/// What makes 401/403 events one group: the same integration, status, error and source.
pub type GroupKey = (Option<String>, u16, String, String);

pub fn group_key(e: &AuthEvent) -> GroupKey {
    (
        e.integration.clone(),
        e.http_status,
        e.error.clone(),
        e.source.clone(),
    )
}

/// Events of one (integration, status, error, source), newest first.
#[derive(Debug, Clone)]
pub struct LogGroup {
    pub key: GroupKey,
    /// Indices into `snapshot.auth_log`, newest first (never empty).
    pub events: Vec<usize>,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
}

/// One row of the log pane: a group, or (when the group is expanded) one of its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogRow {
    Group(usize),
    /// Group index, index into `snapshot.auth_log`.
    Event(usize, usize),
}

/// The 401/403 log pane: one row per group (newest group first), expanded groups list their events; follows the
/// newest unless scrolled away, then stays on its row and counts what arrives.
#[derive(Debug, Default)]
pub struct LogPane {
    pub filter: String,
    /// Indices into `snapshot.auth_log` (newest first), filtered.
    pub logs: Vec<usize>,
    pub groups: Vec<LogGroup>,
    pub rows: Vec<LogRow>,
    pub expanded: std::collections::HashSet<GroupKey>,
    pub nav: ListNav,
    /// The selected row while scrolled away from the top (None = following the newest): its group, and its
    /// event for an event row.
    anchor: Option<(GroupKey, Option<AuthEvent>)>,
    /// Entries that arrived while scrolled away.
    pub new: usize,
}

impl LogPane {
    /// The selected event: an event row's, or a group's newest.
    pub fn selected<'a>(&self, snap: &'a Snapshot) -> Option<&'a AuthEvent> {
        match self.rows.get(self.nav.selected)? {
            LogRow::Group(g) => self.groups.get(*g).map(|g| &snap.auth_log[g.events[0]]),
            LogRow::Event(_, e) => snap.auth_log.get(*e),
        }
    }

    pub fn selected_group(&self) -> Option<&LogGroup> {
        match self.rows.get(self.nav.selected)? {
            LogRow::Group(g) | LogRow::Event(g, _) => self.groups.get(*g),
        }
    }

    fn row_anchor(&self, snap: &Snapshot) -> Option<(GroupKey, Option<AuthEvent>)> {
        match self.rows.get(self.nav.selected)? {
            LogRow::Group(g) => Some((self.groups[*g].key.clone(), None)),
            LogRow::Event(g, e) => {
                Some((self.groups[*g].key.clone(), snap.auth_log.get(*e).cloned()))
            }
        }
    }

    pub(super) fn apply(&mut self, action: Action, snap: &Snapshot) -> bool {
        let moved = self.nav.apply(action, self.rows.len());
        self.anchor = if self.nav.selected == 0 {
            self.new = 0;
            None
        } else {
            self.row_anchor(snap)
        };
        moved
    }

    /// Expand or collapse the selected group (on an event row: its group, which then is selected).
    pub(super) fn toggle(&mut self, snap: &Snapshot) -> bool {
        let Some(g) = self.selected_group() else {
            return false;
        };
        let key = g.key.clone();
        if !self.expanded.remove(&key) {
            self.expanded.insert(key.clone());
        }
        self.rebuild_rows();
        if let Some(at) = self
            .rows
            .iter()
            .position(|r| matches!(r, LogRow::Group(g) if self.groups[*g].key == key))
        {
            let from = self.nav.selected;
            self.nav.follow(from, at);
        }
        self.anchor = if self.nav.selected == 0 {
            None
        } else {
            self.row_anchor(snap)
        };
        true
    }

    fn rebuild_rows(&mut self) {
        self.rows.clear();
        for (gi, g) in self.groups.iter().enumerate() {
            self.rows.push(LogRow::Group(gi));
            if self.expanded.contains(&g.key) {
                self.rows
                    .extend(g.events.iter().map(|&e| LogRow::Event(gi, e)));
            }
        }
    }

    /// Count what is new since `old`, regroup, and keep the anchored row in view when scrolled away.
    pub(super) fn refresh(&mut self, snap: &Snapshot, old: Option<&Snapshot>) {
        if let Some(old) = old
            && self.anchor.is_some()
        {
            let new_entries = match old.auth_log.first() {
                Some(newest) => snap
                    .auth_log
                    .iter()
                    .position(|e| e == newest)
                    .unwrap_or(snap.auth_log.len()),
                None => snap.auth_log.len(),
            };
            self.new += new_entries;
        }
        let needle = self.filter.to_lowercase();
        self.logs = (0..snap.auth_log.len())
            .filter(|&i| event_matches(&snap.auth_log[i], &needle))
            .collect();
        // Groups in the order of their newest event (the log is newest first).
        let mut index: std::collections::HashMap<GroupKey, usize> = Default::default();
        self.groups.clear();
        for &i in &self.logs {
            let e = &snap.auth_log[i];
            let key = group_key(e);
            match index.get(&key) {
                Some(&g) => {
                    let g = &mut self.groups[g];
                    g.events.push(i);
                    g.first = g.first.min(e.at);
                    g.last = g.last.max(e.at);
                }
                None => {
                    index.insert(key.clone(), self.groups.len());
                    self.groups.push(LogGroup {
                        key,
                        events: vec![i],
                        first: e.at,
                        last: e.at,
                    });
                }
            }
        }
        self.expanded.retain(|k| index.contains_key(k));
        self.rebuild_rows();
        let prev = self.nav.selected;
        match &self.anchor {
            None => self.nav.reset(),
            Some((key, ev)) => {
                let at = self.rows.iter().position(|r| match (r, ev) {
                    (LogRow::Group(g), None) => &self.groups[*g].key == key,
                    (LogRow::Event(_, e), Some(ev)) => &snap.auth_log[*e] == ev,
                    _ => false,
                });
                match at {
                    Some(to) => self.nav.follow(prev, to),
                    None => {
                        self.nav.selected = prev.min(self.rows.len().saturating_sub(1));
                        self.anchor = self.row_anchor(snap);
                    }
                }
            }
        }
    }
}

/// The short reason shown in tables: what the health rules say, else the last probe's summary; "probing..." only
/// while nothing is known at all (a probe that cannot run says why at once); "(paused)" when automatic probes are
/// paused; and an OK whose last probe reused a cached token says when the secret itself was last verified.
pub fn reason(i: &IntegrationView, now: DateTime<Utc>) -> String {
    let r = i.health.short_reason();
    if i.history.is_empty() {
        return if r.is_empty() {
            "probing...".into()
        } else {
            r.to_string()
        };
    }
    let r = if r.is_empty() {
        match i.last_probe() {
            Some(p) if p.outcome.is_ok() && !p.fresh_token => match secret_verified_at(i) {
                Some(at) => format!("ok, secret verified {} ago", text::age(Some(at), now)),
                None => "ok, token reused (secret not verified yet)".to_string(),
            },
            Some(p) => p.summary(),
            None => String::new(),
        }
    } else {
        r.to_string()
    };
    if i.paused && !r.contains("paused") {
        format!("{r} (paused)")
    } else {
        r
    }
}

/// When a probe last requested a new token and got it: the last time the client secret itself was checked
/// (a probe that reuses a cached token checks the token, not the secret).
pub fn secret_verified_at(i: &IntegrationView) -> Option<DateTime<Utc>> {
    // The engine's, per credential (another consumer's new token verified it too); else this one's history.
    i.secret_verified_at.or_else(|| {
        i.history
            .iter()
            .rev()
            .find(|p| p.verified_secret())
            .map(|p| p.at)
    })
}

/// Since when the integration has been in its current state: the start of the failures (or of the ongoing
/// incident) when not OK, the end of the last incident when OK again. `None`: not known (no history).
pub fn status_since(i: &IntegrationView) -> Option<DateTime<Utc>> {
    if i.history.is_empty() {
        return None;
    }
    match i.health.status {
        crate::model::Status::Ok => i.incidents.iter().find_map(|inc| inc.ended),
        _ => i.failing_since.or_else(|| {
            i.incidents
                .iter()
                .find(|inc| inc.ended.is_none())
                .map(|inc| inc.started)
        }),
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
    rows.sort_by(|&a, &b| cmp_rows(&items[a], &items[b], key));
}

/// The display order: by `key`, then by name (names are unique, so the order is total).
fn cmp_rows(a: &IntegrationView, b: &IntegrationView, key: SortKey) -> Ordering {
    {
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
    }
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
