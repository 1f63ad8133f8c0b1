//! Colours and emphasis: named ANSI colours only, so the terminal's palette does the rest.

use ratatui::style::{Color, Modifier, Style};

use super::state::State;

pub struct Theme {
    /// Colours on (off with `NO_COLOR`).
    pub on: bool,
    /// Drawn for a light background.
    pub light: bool,
}

impl Theme {
    pub fn of(state: &State) -> Theme {
        Theme {
            on: !state.no_color,
            light: state.light_background,
        }
    }

    pub fn fg(&self, c: Color) -> Style {
        if self.on {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }
    pub fn added(&self) -> Style {
        self.fg(Color::Green)
    }
    pub fn removed(&self) -> Style {
        self.fg(Color::Red)
    }
    /// Yellow is unreadable on many light backgrounds; magenta reads on both.
    pub fn changed(&self) -> Style {
        self.fg(if self.light {
            Color::Magenta
        } else {
            Color::Yellow
        })
    }
    pub fn dim(&self) -> Style {
        if self.on {
            Style::default().add_modifier(Modifier::DIM)
        } else {
            Style::default()
        }
    }
    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
    pub fn title(&self, focused: bool) -> Style {
        if focused {
            Style::default().add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        }
    }
}
