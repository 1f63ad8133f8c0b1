//! Editing a queued op as JSON; saving approves the edited op (validated by the store).

use ratatui::Frame;
use ratatui::crossterm::event::KeyEvent;
use ratatui_textarea::TextArea;

use super::Popup;
use crate::approval::Decision;
use crate::delta::DeltaOp;
use crate::tui::action::Effect;
use crate::tui::keymap::{self, Cmd, Layer};
use crate::tui::state::State;
use crate::tui::theme::Theme;
use crate::tui::widgets::{block, centered};

pub(super) fn key(
    state: &mut State,
    batch: i64,
    op: usize,
    mut editor: TextArea<'static>,
    cmd: Option<Cmd>,
    key: KeyEvent,
) -> Vec<Effect> {
    match cmd {
        Some(Cmd::Close) => return Vec::new(),
        Some(Cmd::Save) => match serde_json::from_str::<DeltaOp>(&editor.lines().join("\n")) {
            Ok(edited) => {
                return vec![Effect::Decide {
                    batch,
                    decisions: vec![(op, Decision::Edit(edited))],
                }];
            }
            Err(e) => state.message = format!("not a valid op: {e}"),
        },
        _ => {
            editor.input(key);
        }
    }
    state.popup = Some(Popup::EditOp { batch, op, editor });
    Vec::new()
}

pub(super) fn render(
    batch: i64,
    op: usize,
    editor: &TextArea<'static>,
    frame: &mut Frame,
    theme: &Theme,
) {
    let r = centered(frame.area(), 76, 16);
    frame.render_widget(ratatui::widgets::Clear, r);
    let title = format!(
        "Edit op {} of batch {batch} · {}",
        op + 1,
        keymap::hint_line(&[Layer::EditOp])
    );
    let mut e = editor.clone();
    e.set_block(block(title, true, theme));
    frame.render_widget(&e, r);
}
