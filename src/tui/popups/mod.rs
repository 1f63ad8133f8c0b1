//! Popups: modal dialogs over the panes, one file each with its own state, its pure key handling
//! and its pure drawing. While one is open it takes every key.

mod confirm;
mod edit_op;
mod help;
mod input;
mod pick;
mod run_form;
pub mod runs;

pub use confirm::Confirmed;
pub use input::{InputFor, input, wrapping_editor};
pub use run_form::{FormField, RunForm, parse_run_fields, refuse as refuse_run, run_form};

use ratatui::Frame;
use ratatui::crossterm::event::KeyEvent;
use ratatui_textarea::TextArea;

use super::action::Effect;
use super::keymap::{self, Layer};
use super::state::{RunRow, State, Unfinished};
use super::theme::Theme;

pub enum Popup {
    /// The key list, scrolled down by `scroll` lines.
    Help {
        scroll: u16,
    },
    Confirm {
        message: String,
        action: Confirmed,
    },
    /// Editing a queued op as JSON (saving approves it).
    EditOp {
        batch: i64,
        op: usize,
        editor: TextArea<'static>,
    },
    Input {
        purpose: InputFor,
        title: String,
        editor: TextArea<'static>,
    },
    /// The form that starts a run: one line per field.
    RunForm(RunForm),
    /// Picking the playbook to show.
    PickPlaybook {
        names: Vec<String>,
        sel: usize,
    },
    /// Picking an unfinished run to resume.
    ResumeRun {
        runs: Vec<Unfinished>,
        sel: usize,
    },
    /// Every run, with the selected one's summary when asked.
    Runs {
        rows: Vec<RunRow>,
        sel: usize,
        detail: Option<Box<crate::tui::state::RunDetail>>,
    },
    /// Picking the section a bullet moves to.
    MoveTo {
        bullet: String,
        sections: Vec<String>,
        sel: usize,
    },
}

impl Popup {
    /// The key layer in force while it is open.
    pub fn layers(&self) -> &'static [Layer] {
        match self {
            Popup::Help { .. } => &[Layer::Help],
            Popup::Confirm { .. } => &[Layer::Confirm],
            Popup::EditOp { .. } => &[Layer::EditOp],
            Popup::Input { purpose, .. } => input::layers(purpose),
            Popup::RunForm(_) => &[Layer::RunForm],
            Popup::PickPlaybook { .. }
            | Popup::ResumeRun { .. }
            | Popup::MoveTo { .. }
            | Popup::Runs { .. } => &[Layer::Pick],
        }
    }
}

/// A key while a popup is open: the popup decides (and is put back if it stays open).
pub fn key(state: &mut State, key: KeyEvent) -> Vec<Effect> {
    let Some(popup) = state.popup.take() else {
        return Vec::new();
    };
    let cmd = keymap::command(popup.layers(), &key);
    match popup {
        Popup::Help { scroll } => help::key(state, scroll, cmd),
        Popup::Confirm { message, action } => confirm::key(state, message, action, cmd),
        Popup::EditOp { batch, op, editor } => edit_op::key(state, batch, op, editor, cmd, key),
        Popup::Input {
            purpose,
            title,
            editor,
        } => input::key(state, purpose, title, editor, cmd, key),
        Popup::RunForm(form) => run_form::key(state, form, cmd, key),
        Popup::Runs { rows, sel, detail } => runs::key(state, rows, sel, detail, cmd),
        popup @ (Popup::PickPlaybook { .. } | Popup::ResumeRun { .. } | Popup::MoveTo { .. }) => {
            pick::key(state, popup, cmd)
        }
    }
}

pub fn render(state: &State, popup: &Popup, frame: &mut Frame, theme: &Theme) {
    match popup {
        Popup::Help { scroll } => help::render(state, *scroll, frame, theme),
        Popup::Confirm { message, .. } => confirm::render(message, frame, theme),
        Popup::EditOp { batch, op, editor } => edit_op::render(*batch, *op, editor, frame, theme),
        Popup::Input {
            purpose,
            title,
            editor,
        } => input::render(purpose, title, editor, frame, theme),
        Popup::RunForm(form) => run_form::render(form, frame, theme),
        Popup::Runs { rows, sel, detail } => {
            runs::render(rows, *sel, detail.as_deref(), frame, theme)
        }
        Popup::PickPlaybook { .. } | Popup::ResumeRun { .. } | Popup::MoveTo { .. } => {
            pick::render(popup, frame, theme)
        }
    }
}
