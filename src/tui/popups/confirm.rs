//! A yes/no question before a destructive action (revert, reject all, remove, cancel, quit).

use ratatui::Frame;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use super::Popup;
use crate::adaptation::Control;
use crate::delta::DeltaOp;
use crate::tui::action::{Effect, HandEdit};
use crate::tui::keymap::{self, Cmd, Layer};
use crate::tui::state::State;
use crate::tui::theme::Theme;
use crate::tui::widgets::{block, centered};

/// What a confirmed question does.
#[derive(Debug, Clone, PartialEq)]
pub enum Confirmed {
    Quit,
    Revert {
        revision: i64,
        force: bool,
    },
    DecideAll {
        batch: i64,
        approve: bool,
    },
    RemoveBullet(String),
    RemoveSection(String),
    CancelRun,
    /// Delete a playbook (soft: `ace playbook restore` brings it back).
    DeletePlaybook(String),
    /// Resume a run whose stored environment runs a command on this machine.
    ResumeWithCommand {
        run: String,
        playbook: String,
    },
}

pub(super) fn key(
    state: &mut State,
    message: String,
    action: Confirmed,
    cmd: Option<Cmd>,
) -> Vec<Effect> {
    match cmd {
        Some(Cmd::Confirm) => confirmed(state, action),
        Some(Cmd::Close) => Vec::new(),
        _ => {
            state.popup = Some(Popup::Confirm { message, action });
            Vec::new()
        }
    }
}

fn confirmed(state: &mut State, action: Confirmed) -> Vec<Effect> {
    match action {
        Confirmed::Quit => {
            state.quit = true;
            vec![Effect::Control(Control::Cancel)]
        }
        Confirmed::Revert { revision, force } => vec![Effect::Revert { revision, force }],
        Confirmed::DecideAll { batch, approve } => vec![Effect::DecideAll { batch, approve }],
        Confirmed::RemoveBullet(id) => vec![Effect::Apply(HandEdit {
            what: "remove",
            reason: format!("removed {id} by hand"),
            ops: vec![DeltaOp::Remove { bullet_id: id }],
        })],
        Confirmed::ResumeWithCommand { run, playbook } => {
            state.message = format!("resuming {run} on '{playbook}'");
            vec![Effect::ResumeRun { run, playbook }]
        }
        Confirmed::RemoveSection(section) => vec![Effect::Apply(HandEdit {
            what: "section-remove",
            reason: format!("removed section {section} by hand"),
            ops: vec![DeltaOp::RemoveSection { section }],
        })],
        Confirmed::CancelRun => vec![Effect::Control(Control::Cancel)],
        Confirmed::DeletePlaybook(name) => {
            vec![Effect::ManagePlaybook(crate::tui::action::Manage::Delete {
                name,
            })]
        }
    }
}

pub(super) fn render(message: &str, frame: &mut Frame, theme: &Theme) {
    // room for a long question (a command to show whole), within the screen
    let height = (message.chars().count() / 56 + 4).clamp(5, 14) as u16;
    let r = centered(frame.area(), 60, height);
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(message.to_string()),
            Line::from(Span::styled(
                keymap::hint_line(&[Layer::Confirm]),
                theme.dim(),
            )),
        ])
        .wrap(Wrap { trim: true })
        .block(block("Confirm".into(), true, theme)),
        r,
    );
}
