//! The states of what sits over or instead of the panes: the detail view, the help overlay, the filter prompt.

use super::nav::{Edited, Input, Scroll, edit};
use super::panes::Pane;
use crate::tui::keymap::Action;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    Main,
    /// Detail of one integration, by name.
    Detail(String),
    /// Detail of one 401/403 event (and of its group).
    Event(Box<crate::model::AuthEvent>),
}

impl View {
    /// A full-screen view over the panes (detail of an integration or an event).
    pub fn is_detail(&self) -> bool {
        matches!(self, View::Detail(_) | View::Event(_))
    }
}

/// The detail view's scroll (what it shows is `View::Detail`'s integration).
#[derive(Debug, Default)]
pub struct DetailView {
    pub scroll: Scroll,
}

impl DetailView {
    pub(super) fn apply(&mut self, action: Action) -> bool {
        self.scroll.apply(action)
    }
}

/// The help overlay.
#[derive(Debug, Default)]
pub struct HelpView {
    pub open: bool,
    pub scroll: Scroll,
}

impl HelpView {
    /// An action while help is open (or `Help` to open it); true when handled.
    pub(super) fn apply(&mut self, action: Action) -> bool {
        match action {
            Action::Help => {
                self.open = !self.open;
                self.scroll = Scroll::default();
                true
            }
            Action::Back => {
                self.open = false;
                true
            }
            _ => self.scroll.apply(action),
        }
    }
}

/// The filter prompt: which pane's filter is being typed. The text itself lives in the pane.
#[derive(Debug, Default)]
pub struct FilterPrompt {
    pub editing: Option<Pane>,
}

/// What the prompt asks of the console after an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptOutcome {
    /// The filter text changed (or the prompt closed): recompute the pane.
    Refilter,
    /// Pass this action on (movement in the pane, quit).
    Pass(Action),
    Ignored,
}

impl FilterPrompt {
    pub(super) fn apply(&mut self, filter: &mut String, input: Input) -> PromptOutcome {
        match edit(filter, input, None) {
            Edited::Changed => PromptOutcome::Refilter,
            Edited::Accept => {
                self.editing = None;
                PromptOutcome::Refilter
            }
            Edited::Cancel => {
                filter.clear();
                self.editing = None;
                PromptOutcome::Refilter
            }
            Edited::Other(a) => PromptOutcome::Pass(a),
            Edited::Ignored => PromptOutcome::Ignored,
        }
    }
}
