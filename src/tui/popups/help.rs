//! `?`: every key of the workbench, read from the key table, the focused pane's first.

use ratatui::Frame;
use ratatui::text::Line;
use ratatui::widgets::{Clear, Paragraph};

use super::Popup;
use crate::tui::action::Effect;
use crate::tui::keymap::{self, Cmd, HINTS, Layer};
use crate::tui::state::State;
use crate::tui::theme::Theme;
use crate::tui::widgets::{block, centered};

/// The help's lines: the focused pane's keys, then the global ones, then every other layer's.
fn lines(state: &State) -> Vec<String> {
    let first = state.focus.layers();
    let rest = Layer::ALL.into_iter().filter(|l| !first.contains(l));
    first
        .iter()
        .copied()
        .chain(rest)
        .flat_map(|layer| HINTS.iter().filter(move |h| h.layer == layer))
        .map(|h| format!("{:<16} {:<30} {}", h.keys(), h.what, h.layer.name()))
        .chain(
            EDITING
                .iter()
                .map(|(keys, what)| format!("{keys:<16} {what:<30} editing text")),
        )
        .chain(
            MOUSE
                .iter()
                .map(|(keys, what)| format!("{keys:<16} {what:<30} mouse")),
        )
        .collect()
}

/// What the mouse does.
const MOUSE: [(&str, &str); 2] = [
    ("click", "a tab, a pane, a section"),
    ("wheel", "scroll the focused list"),
];

/// The keys of every text field (the editor widget's own, emacs-like), listed after the table's.
const EDITING: [(&str, &str); 9] = [
    ("←/→ ↑/↓", "move the cursor"),
    ("Home/End C-a/C-e", "start/end of the line"),
    ("M-b/M-f", "word back/forward"),
    ("Backspace/Del", "delete a character"),
    ("C-k", "delete to the end of the line"),
    ("C-w", "delete the word before"),
    ("C-u/C-r", "undo/redo"),
    ("C-y", "paste what was deleted"),
    ("Alt-Enter", "new line (in bullet content)"),
];

pub(super) fn key(state: &mut State, scroll: u16, cmd: Option<Cmd>) -> Vec<Effect> {
    let last = lines(state).len().saturating_sub(1) as u16;
    let scroll = match cmd {
        Some(Cmd::Close) => return Vec::new(),
        Some(Cmd::Down) => scroll.saturating_add(1),
        Some(Cmd::Up) => scroll.saturating_sub(1),
        Some(Cmd::PageDown) => scroll.saturating_add(10),
        Some(Cmd::PageUp) => scroll.saturating_sub(10),
        Some(Cmd::Top) => 0,
        Some(Cmd::Bottom) => last,
        _ => scroll,
    };
    state.popup = Some(Popup::Help {
        scroll: scroll.min(last),
    });
    Vec::new()
}

pub(super) fn render(state: &State, scroll: u16, frame: &mut Frame, theme: &Theme) {
    let lines = lines(state);
    let r = centered(frame.area(), 76, lines.len() as u16 + 2);
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(lines.into_iter().map(Line::from).collect::<Vec<_>>())
            .scroll((scroll, 0))
            .block(block(
                format!("Help · {}", keymap::hint_line(&[Layer::Help])),
                true,
                theme,
            )),
        r,
    );
}
