//! Pick lists: the playbook to show (`P`), the run to resume (`R`), the section a bullet moves to
//! (`m`). One key handler and one renderer for all three.

use ratatui::Frame;

use super::Popup;
use crate::delta::{DeltaOp, UpdateOp};
use crate::tui::action::{Effect, HandEdit};
use crate::tui::keymap::{self, Cmd, Layer};
use crate::tui::state::{Pane, State, Unfinished};
use crate::tui::theme::Theme;
use crate::tui::widgets::{centered, pick_list};

/// The selection after a move command.
fn moved(sel: usize, len: usize, cmd: Option<Cmd>) -> usize {
    let last = len.saturating_sub(1);
    match cmd {
        Some(Cmd::Down) => (sel + 1).min(last),
        Some(Cmd::Up) => sel.saturating_sub(1),
        Some(Cmd::Top) => 0,
        Some(Cmd::Bottom) => last,
        _ => sel,
    }
}

pub(super) fn key(state: &mut State, popup: Popup, cmd: Option<Cmd>) -> Vec<Effect> {
    if cmd == Some(Cmd::Close) {
        return Vec::new();
    }
    let picked = cmd == Some(Cmd::Pick);
    match popup {
        Popup::MoveTo {
            bullet,
            sections,
            sel,
        } => {
            if picked {
                let section = sections[sel].clone();
                return vec![Effect::Apply(HandEdit {
                    what: "move",
                    reason: format!("moved {bullet} to {section} by hand"),
                    ops: vec![DeltaOp::Update(UpdateOp {
                        bullet_id: bullet,
                        content: None,
                        section: Some(section),
                        metadata: None,
                    })],
                })];
            }
            let sel = moved(sel, sections.len(), cmd);
            state.popup = Some(Popup::MoveTo {
                bullet,
                sections,
                sel,
            });
        }
        Popup::PickPlaybook { names, sel } => {
            let name = names[sel].clone();
            match cmd {
                Some(Cmd::RenamePlaybook) => {
                    state.popup = Some(super::input(
                        &format!("rename playbook '{name}' to"),
                        super::InputFor::RenamePlaybook { name: name.clone() },
                        &name,
                    ));
                    return Vec::new();
                }
                Some(Cmd::CopyPlaybook) => {
                    state.popup = Some(super::input(
                        &format!("copy playbook '{name}' as"),
                        super::InputFor::CopyPlaybook { name: name.clone() },
                        &format!("{name}-copy"),
                    ));
                    return Vec::new();
                }
                Some(Cmd::DeletePlaybook) => {
                    state.popup = Some(Popup::Confirm {
                        message: format!(
                            "Delete playbook '{name}'? It is kept hidden with its history; `ace playbook restore {name}` brings it back."
                        ),
                        action: super::confirm::Confirmed::DeletePlaybook(name),
                    });
                    return Vec::new();
                }
                _ => {}
            }
            if picked {
                let name = names[sel].clone();
                // The queue always shows the selected proposal's playbook: a playbook picked
                // there is shown in the Playbook pane.
                if state.focus == Pane::Queue {
                    state.focus = Pane::Sections;
                }
                if name == state.playbook.name {
                    return Vec::new();
                }
                state.message = format!("showing playbook '{name}'");
                return crate::tui::update::open_playbook(state, name);
            }
            let sel = moved(sel, names.len(), cmd);
            state.popup = Some(Popup::PickPlaybook { names, sel });
        }
        Popup::ResumeRun { runs, sel } => {
            if picked && runs[sel].live_elsewhere {
                state.message = format!(
                    "{} is being run by another process right now; its proposals are in the queue (3)",
                    runs[sel].run.id
                );
            } else if picked
                && let crate::environment::Environment::Command { command, .. } =
                    &runs[sel].run.config.env
            {
                // a command stored in a shared database runs only once a person has read it
                let run = &runs[sel].run;
                state.popup = Some(Popup::Confirm {
                    message: format!(
                        "{} checks answers by running this command on this machine: `{}`. Resume it and run the command?",
                        run.id,
                        crate::text::visible(command)
                    ),
                    action: super::confirm::Confirmed::ResumeWithCommand {
                        run: run.id.clone(),
                        playbook: run.playbook.clone(),
                    },
                });
                return Vec::new();
            } else if picked {
                let run = &runs[sel].run;
                state.message = format!("resuming {} on '{}'", run.id, run.playbook);
                return vec![Effect::ResumeRun {
                    run: run.id.clone(),
                    playbook: run.playbook.clone(),
                }];
            }
            let sel = moved(sel, runs.len(), cmd);
            state.popup = Some(Popup::ResumeRun { runs, sel });
        }
        other => state.popup = Some(other),
    }
    Vec::new()
}

/// A run as the resume picker lists it.
fn run_line(u: &Unfinished) -> String {
    let r = &u.run;
    let at = r
        .checkpoint
        .as_ref()
        .map(|c| format!(" · epoch {} · {} batches done", c.epoch, c.step))
        .unwrap_or_default();
    let busy = if u.live_elsewhere {
        " · being run by another process"
    } else {
        ""
    };
    format!(
        "{} · {} · {} · {}{at}{busy}",
        r.id,
        r.playbook,
        r.status,
        r.updated_at
            .get(..16)
            .unwrap_or(&r.updated_at)
            .replace('T', " ")
    )
}

/// The picker's keys; the playbook list also renames, copies and deletes.
fn keys(playbooks: bool) -> String {
    keymap::hints(&[Layer::Pick])
        .filter(|h| {
            playbooks
                || !h.cmds.iter().any(|c| {
                    matches!(
                        c,
                        Cmd::RenamePlaybook | Cmd::CopyPlaybook | Cmd::DeletePlaybook
                    )
                })
        })
        .map(keymap::Hint::text)
        .collect::<Vec<_>>()
        .join(" · ")
}

pub(super) fn render(popup: &Popup, frame: &mut Frame, theme: &Theme) {
    let keys = keys(matches!(popup, Popup::PickPlaybook { .. }));
    let (width, title, lines, sel) = match popup {
        Popup::MoveTo {
            bullet,
            sections,
            sel,
        } => (
            60,
            format!("move [{bullet}] to · {keys}"),
            sections.clone(),
            *sel,
        ),
        Popup::PickPlaybook { names, sel } => {
            (60, format!("show playbook · {keys}"), names.clone(), *sel)
        }
        Popup::ResumeRun { runs, sel } => (
            110,
            format!("resume which run? · {keys}"),
            runs.iter().map(run_line).collect(),
            *sel,
        ),
        _ => return,
    };
    let r = centered(frame.area(), width, lines.len() as u16 + 2);
    pick_list(frame, r, title, lines, sel, theme);
}
