//! Cursor and scroll state shared by the panes and the text views, and the one text-field editor behind the
//! filter prompt, the wizard's secret field and its typed confirmation.

use crate::tui::keymap::Action;
use std::cell::Cell;

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
    pub(super) fn apply(&mut self, action: Action, len: usize) -> bool {
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
    pub(super) fn follow(&mut self, from: usize, to: usize) {
        self.selected = to;
        let off = self.offset.get();
        let off = if to >= from {
            off + (to - from)
        } else {
            off.saturating_sub(from - to)
        };
        self.offset.set(off);
    }
    /// Back to the first row, scrolled to the top.
    pub(super) fn reset(&mut self) {
        self.selected = 0;
        self.offset.set(0);
    }
}

/// Scroll of a text view (detail, help); the renderer clamps it to the content.
#[derive(Debug, Default)]
pub struct Scroll {
    pub top: Cell<usize>,
    pub page: Cell<usize>,
}

impl Scroll {
    pub(super) fn apply(&mut self, action: Action) -> bool {
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

/// A key in a text layer: a registry action, or a character to type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Action(Action),
    Char(char),
}

/// What a text field made of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edited {
    /// The text changed.
    Changed,
    /// Nothing the field knows (or a character beyond its capacity).
    Ignored,
    Accept,
    Cancel,
    /// An action for the layer around the field (quit, move while filtering).
    Other(Action),
}

/// Apply one input to a field holding at most `capacity` bytes (`None`: no limit). Growing beyond a reserved
/// capacity is refused rather than reallocating, so a secret's buffer never leaves a copy behind.
pub fn edit(text: &mut String, input: Input, capacity: Option<usize>) -> Edited {
    match input {
        Input::Char(c) => {
            if capacity.is_some_and(|cap| text.len() + c.len_utf8() > cap) {
                return Edited::Ignored;
            }
            text.push(c);
            Edited::Changed
        }
        Input::Action(Action::DeleteChar) => {
            text.pop();
            Edited::Changed
        }
        Input::Action(Action::Erase) => {
            text.clear();
            Edited::Changed
        }
        Input::Action(Action::Accept) => Edited::Accept,
        Input::Action(Action::Cancel) => Edited::Cancel,
        Input::Action(other) => Edited::Other(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_types_deletes_erases_and_respects_its_capacity() {
        let mut t = String::new();
        assert_eq!(edit(&mut t, Input::Char('a'), Some(2)), Edited::Changed);
        assert_eq!(edit(&mut t, Input::Char('b'), Some(2)), Edited::Changed);
        assert_eq!(edit(&mut t, Input::Char('c'), Some(2)), Edited::Ignored);
        assert_eq!(t, "ab");
        edit(&mut t, Input::Action(Action::DeleteChar), None);
        assert_eq!(t, "a");
        edit(&mut t, Input::Action(Action::Erase), None);
        assert_eq!(t, "");
        assert_eq!(
            edit(&mut t, Input::Action(Action::Accept), None),
            Edited::Accept
        );
        assert_eq!(
            edit(&mut t, Input::Action(Action::Up), None),
            Edited::Other(Action::Up)
        );
    }
}
