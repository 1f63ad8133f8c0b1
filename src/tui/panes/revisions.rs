//! The Revisions pane: the playbook's history, newest first; a revision's diff, its revert, and
//! the playbook as it stood after it.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState, Paragraph, Wrap};

use crate::delta::Change;
use crate::tui::action::Effect;
use crate::tui::keymap::Cmd;
use crate::tui::popups::{Confirmed, Popup};
use crate::tui::state::{Pane, State};
use crate::tui::theme::Theme;
use crate::tui::widgets::{block, break_lines};

pub fn command(state: &mut State, cmd: Cmd) -> Vec<Effect> {
    let Some(rev) = state.revisions.get(state.revision_sel) else {
        return Vec::new();
    };
    let id = rev.id;
    match cmd {
        Cmd::Diff => {
            state.comparison = None;
            return vec![Effect::LoadRevision(id)];
        }
        Cmd::Compare => match state.revision_mark.take() {
            None => {
                state.revision_mark = Some(id);
                state.message = format!(
                    "marked revision {id}: select another and press c to compare, or w for the playbook now"
                );
            }
            Some(mark) if mark == id => state.message = "mark cleared".into(),
            Some(mark) => {
                let (a, b) = (mark.min(id), mark.max(id));
                return vec![Effect::Compare { a, b: Some(b) }];
            }
        },
        Cmd::CompareNow => {
            let a = state.revision_mark.take().unwrap_or(id);
            return vec![Effect::Compare { a, b: None }];
        }
        Cmd::Revert => {
            state.popup = Some(Popup::Confirm {
                message: format!(
                    "Revert revision {id} ({})? A new revision applies its inverse.",
                    rev.summary
                ),
                action: Confirmed::Revert {
                    revision: id,
                    force: false,
                },
            });
        }
        Cmd::ViewAt => {
            if state.viewing_at.take().is_some() {
                state.recount();
                state.refilter();
                state.message = "back to the current playbook".into();
            } else {
                return vec![Effect::LoadPlaybookAt(id)];
            }
        }
        _ => {}
    }
    Vec::new()
}

pub fn render(state: &State, frame: &mut Frame, area: Rect, theme: &Theme) {
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(area);
    // The summary comes before the source: on a narrow screen the source is what gets cut.
    let items: Vec<ListItem> = state
        .revisions
        .iter()
        .map(|r| {
            let time = r
                .created_at
                .get(5..16)
                .unwrap_or(&r.created_at)
                .replace('T', " ");
            ListItem::new(format!("{:>4} {time} {} {}", r.id, r.summary, r.source))
        })
        .collect();
    let mut ls = ListState::default()
        .with_selected((!state.revisions.is_empty()).then_some(state.revision_sel));
    frame.render_stateful_widget(
        List::new(items)
            .block(block(
                "Revisions".into(),
                state.focus == Pane::Revisions,
                theme,
            ))
            .highlight_style(theme.selected()),
        left,
        &mut ls,
    );
    let mut lines = Vec::new();
    if let Some((title, changes)) = &state.comparison {
        lines.push(Line::from(Span::styled(
            title.clone(),
            Style::default().add_modifier(Modifier::BOLD),
        )));
        if changes.is_empty() {
            lines.push(Line::from("no differences"));
        }
        lines.extend(change_lines(changes, theme));
    } else if let Some(d) = &state.revision_detail {
        let r = &d.revision;
        lines.push(Line::from(Span::styled(
            format!(
                "revision {} · {} · {} · {}",
                r.id, r.source, r.summary, r.created_at
            ),
            Style::default().add_modifier(Modifier::BOLD),
        )));
        if let Some(reason) = &r.reason {
            lines.push(Line::from(reason.clone()));
        }
        lines.extend(change_lines(&d.changes, theme));
    } else {
        lines.push(Line::from("Enter shows the selected revision"));
    }
    frame.render_widget(
        Paragraph::new(break_lines(lines))
            .wrap(Wrap { trim: false })
            .block(block("Diff".into(), false, theme)),
        right,
    );
}

/// A list of changes as diff lines: `+` added or back, `-` removed, `~` sections, counters moved.
fn change_lines(changes: &[Change], theme: &Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for c in changes {
        match c {
            Change::Section { .. } => {
                if let Some((sign, line)) = c.section_line() {
                    let style = match sign {
                        '+' => theme.added(),
                        '-' => theme.removed(),
                        _ => theme.changed(),
                    };
                    lines.push(Line::from(Span::styled(format!("{sign} {line}"), style)));
                }
            }
            Change::Bullet {
                id,
                before: None,
                after: Some(a),
            } => lines.push(Line::from(Span::styled(
                format!("+ [{id}] {}", a.content),
                theme.added(),
            ))),
            Change::Bullet {
                id,
                before: Some(b),
                after: None,
            } => lines.push(Line::from(Span::styled(
                format!("- [{id}] {}", b.content),
                theme.removed(),
            ))),
            Change::Bullet {
                id,
                before: Some(b),
                after: Some(a),
            } => {
                if b.is_active() && !a.is_active() {
                    lines.push(Line::from(Span::styled(
                        format!("- [{id}] {}", b.content),
                        theme.removed(),
                    )));
                } else if b.content != a.content || b.section != a.section {
                    lines.push(Line::from(Span::styled(
                        format!("- [{id}] {}", b.content),
                        theme.removed(),
                    )));
                    lines.push(Line::from(Span::styled(
                        format!("+ [{id}] ({}) {}", a.section, a.content),
                        theme.added(),
                    )));
                } else if !b.is_active() && a.is_active() {
                    lines.push(Line::from(Span::styled(
                        format!("+ [{id}] {} (restored)", a.content),
                        theme.added(),
                    )));
                } else {
                    lines.push(Line::from(Span::styled(
                        format!(
                            "  [{id}] helpful {}→{} harmful {}→{}",
                            b.helpful, a.helpful, b.harmful, a.harmful
                        ),
                        theme.changed(),
                    )));
                }
            }
            _ => {}
        }
    }
    lines
}
