//! Styles and symbols. Colour is always in addition to words, symbols and modifiers, never instead: with
//! `color == false` no style carries a foreground or background colour at all.

use crate::model::Status;
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::border;

/// ASCII border set for terminals (or fonts) without box-drawing characters.
const ASCII_BORDER: border::Set<'static> = border::Set {
    top_left: "+",
    top_right: "+",
    bottom_left: "+",
    bottom_right: "+",
    vertical_left: "|",
    vertical_right: "|",
    horizontal_top: "-",
    horizontal_bottom: "-",
};

/// The focused pane in ASCII mode: '=' edges so focus reads without colour or bold.
const ASCII_FOCUSED: border::Set<'static> = border::Set {
    top_left: "#",
    top_right: "#",
    bottom_left: "#",
    bottom_right: "#",
    vertical_left: "|",
    vertical_right: "|",
    horizontal_top: "=",
    horizontal_bottom: "=",
};

#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
    pub ascii: bool,
}

impl Theme {
    pub fn new(color: bool, ascii: bool) -> Self {
        Self { color, ascii }
    }

    /// Drops colours when colour is off; modifiers (bold, reversed, underline) stay.
    pub fn style(&self, s: Style) -> Style {
        if self.color {
            s
        } else {
            Style {
                fg: None,
                bg: None,
                underline_color: None,
                ..s
            }
        }
    }

    pub fn fg(&self, c: Color) -> Style {
        self.style(Style::new().fg(c))
    }

    pub fn status_color(s: Status) -> Color {
        match s {
            Status::Ok => Color::Green,
            Status::Warn => Color::Yellow,
            Status::Fail => Color::Red,
            Status::Unknown => Color::Cyan,
        }
    }

    /// Foreground style for a status word; FAIL is bold so it stands out without colour too.
    pub fn status(&self, s: Status) -> Style {
        let base = Style::new().fg(Self::status_color(s));
        let base = match s {
            Status::Fail => base.add_modifier(Modifier::BOLD),
            _ => base,
        };
        self.style(base)
    }

    pub fn symbol(&self, s: Status) -> &'static str {
        match (self.ascii, s) {
            (false, Status::Ok) => "✔",
            (false, Status::Warn) => "▲",
            (false, Status::Fail) => "✖",
            (false, Status::Unknown) => "?",
            (true, Status::Ok) => "+",
            (true, Status::Warn) => "!",
            (true, Status::Fail) => "x",
            (true, Status::Unknown) => "?",
        }
    }

    /// "✖ FAIL"
    pub fn status_text(&self, s: Status) -> String {
        format!("{} {}", self.symbol(s), s.label())
    }

    pub fn border(&self, focused: bool) -> border::Set<'static> {
        match (self.ascii, focused) {
            (true, false) => ASCII_BORDER,
            (true, true) => ASCII_FOCUSED,
            (false, false) => border::PLAIN,
            (false, true) => border::THICK,
        }
    }

    pub fn border_style(&self, focused: bool) -> Style {
        if focused {
            self.style(Style::new().fg(Color::Cyan))
        } else {
            Style::new()
        }
    }

    /// Pane titles: the focused one is reversed, which reads on monochrome screens.
    pub fn title(&self, focused: bool) -> Style {
        if focused {
            Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED)
        } else {
            Style::new().add_modifier(Modifier::BOLD)
        }
    }

    pub fn selected(&self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    pub fn dim(&self) -> Style {
        self.style(Style::new().fg(Color::DarkGray))
    }

    pub fn header_row(&self) -> Style {
        Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
    }

    pub fn bold(&self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    pub fn ellipsis(&self) -> &'static str {
        if self.ascii { "~" } else { "…" }
    }

    /// Calendar day marks. Each severity has its own modifier set so it survives NO_COLOR:
    /// fail = reversed + bold, warn = bold + underlined, ok = underlined; today = bold + italic.
    pub fn expiry_day(&self, s: Status) -> Style {
        let m = match s {
            Status::Fail => Modifier::REVERSED | Modifier::BOLD,
            Status::Warn => Modifier::BOLD | Modifier::UNDERLINED,
            Status::Ok | Status::Unknown => Modifier::UNDERLINED,
        };
        self.style(Style::new().fg(Self::status_color(s)).add_modifier(m))
    }

    pub fn today(&self) -> Style {
        self.style(
            Style::new()
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD | Modifier::ITALIC),
        )
    }

    pub fn message(&self, error: bool) -> Style {
        let c = if error { Color::Red } else { Color::Cyan };
        self.style(Style::new().fg(c).add_modifier(Modifier::BOLD))
    }

    /// The header badge takes the colour of the worst status (reversed when colour is off), for the wall screen.
    pub fn badge(&self, worst: Status) -> Style {
        if self.color {
            Style::new()
                .fg(Color::Black)
                .bg(Self::status_color(worst))
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED)
        }
    }

    pub fn flag(&self) -> Style {
        self.style(
            Style::new()
                .fg(Color::Magenta)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED),
        )
    }
}
