//! The Playbook pane: sections on the left, the bullets of the selected one (or of a filter) on
//! the right, a bullet's detail and story below on request. Edits by hand become delta batches.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState, Paragraph, Wrap};

use crate::delta::DeltaOp;
use crate::tui::action::{Effect, HandEdit};
use crate::tui::keymap::Cmd;
use crate::tui::popups::{Confirmed, InputFor, Popup, input};
use crate::tui::state::{Pane, Sort, State};
use crate::tui::theme::Theme;
use crate::tui::widgets::{block, break_lines, short};

/// With the detail view open, the selected bullet's story is loaded (origin, counters, runs).
pub fn story_effect(state: &mut State) -> Vec<Effect> {
    state.story = None;
    match state.selected_bullet() {
        Some(b) if state.show_detail && state.viewing_at.is_none() => {
            vec![Effect::LoadStory(b.id.clone())]
        }
        _ => Vec::new(),
    }
}

/// Commands that change the playbook, refused while a past revision is shown.
fn edits(cmd: Cmd) -> bool {
    matches!(
        cmd,
        Cmd::AddBullet
            | Cmd::AddSection
            | Cmd::EditBullet
            | Cmd::MoveBullet
            | Cmd::RemoveBullet
            | Cmd::Undo
            | Cmd::RenameSection
            | Cmd::SectionDown
            | Cmd::SectionUp
            | Cmd::RemoveSection
    )
}

pub fn command(state: &mut State, cmd: Cmd) -> Vec<Effect> {
    if state.viewing_at.is_some() && edits(cmd) {
        state.message =
            "viewing a past revision; Esc returns to the current playbook to edit".into();
        return Vec::new();
    }
    match cmd {
        Cmd::ToBullets => state.focus = Pane::Bullets,
        Cmd::ToSections => state.focus = Pane::Sections,
        Cmd::Filter => {
            state.popup = Some(input(
                "filter bullets (all sections)",
                InputFor::Filter,
                &state.filter,
            ))
        }
        Cmd::Sort => {
            state.sort = match state.sort {
                Sort::Order => Sort::Id,
                Sort::Id => Sort::Helpful,
                Sort::Helpful => Sort::Harmful,
                Sort::Harmful => Sort::Recent,
                Sort::Recent => Sort::Order,
            };
            state.message = format!("sorted by {:?}", state.sort).to_lowercase();
            state.refilter();
        }
        Cmd::Impact => {
            let Some(id) = state.selected_bullet().map(|b| b.id.clone()) else {
                state.message = "no bullet selected".into();
                return Vec::new();
            };
            state.show_detail = true;
            state.message =
                format!("measuring {id}'s impact on samples… (the workbench stays usable)");
            return vec![Effect::Impact(id)];
        }
        Cmd::Details => {
            state.show_detail = !state.show_detail;
            state.focus = Pane::Bullets;
            return story_effect(state);
        }
        Cmd::AddBullet => {
            if let Some(section) = state.section_name().map(str::to_string) {
                state.popup = Some(input(
                    &format!("new bullet in '{section}'"),
                    InputFor::AddBullet { section },
                    "",
                ));
            }
        }
        Cmd::AddSection => {
            state.popup = Some(input(
                "new section name",
                InputFor::AddBullet {
                    section: String::new(),
                },
                "",
            ))
        }
        Cmd::RenameSection => {
            if let Some(section) = state.section_name().map(str::to_string) {
                state.popup = Some(input(
                    &format!("rename section '{section}'"),
                    InputFor::RenameSection {
                        section: section.clone(),
                    },
                    &section,
                ));
            }
        }
        Cmd::RemoveSection => {
            if let Some(section) = state.section_name().map(str::to_string) {
                let n = state.playbook.section_bullets(&section).count();
                state.popup = Some(Popup::Confirm {
                    message: format!(
                        "Remove section '{section}' and its {n} bullet{}? (a revision; revertible)",
                        if n == 1 { "" } else { "s" }
                    ),
                    action: Confirmed::RemoveSection(section),
                });
            }
        }
        Cmd::SectionDown | Cmd::SectionUp => {
            let len = state.playbook.sections.len();
            let from = state.section;
            let to = if cmd == Cmd::SectionDown {
                from + 1
            } else {
                from.wrapping_sub(1)
            };
            if let (Some(name), true) = (state.section_name().map(str::to_string), to < len) {
                state.follow_section = Some(name.clone());
                return vec![Effect::Apply(HandEdit {
                    what: "section-move",
                    reason: format!("moved section {name} by hand"),
                    ops: vec![DeltaOp::MoveSection {
                        section: name,
                        index: to,
                    }],
                })];
            }
        }
        Cmd::EditBullet => {
            if let Some(b) = state.selected_bullet() {
                let (id, content) = (b.id.clone(), b.content.clone());
                state.popup = Some(input(
                    &format!("edit [{id}]"),
                    InputFor::EditBullet { id },
                    &content,
                ));
            }
        }
        Cmd::MoveBullet => {
            if let Some(b) = state.selected_bullet() {
                let (id, from) = (b.id.clone(), b.section.clone());
                let sections: Vec<String> = state
                    .playbook
                    .sections
                    .iter()
                    .map(|s| s.name.clone())
                    .filter(|s| *s != from)
                    .collect();
                if sections.is_empty() {
                    state.message = "there is no other section (S adds one)".into();
                } else {
                    state.popup = Some(Popup::MoveTo {
                        bullet: id,
                        sections,
                        sel: 0,
                    });
                }
            }
        }
        Cmd::CopyBullet => {
            if let Some(b) = state.selected_bullet() {
                let (id, text) = (b.id.clone(), b.content.clone());
                state.message = format!("copied the text of {id} to the clipboard");
                return vec![Effect::Copy(text)];
            }
        }
        Cmd::Undo => {
            state.message = "undoing the last hand edit…".into();
            return vec![Effect::UndoLastEdit];
        }
        Cmd::RemoveBullet => {
            if let Some(b) = state.selected_bullet() {
                let id = b.id.clone();
                state.popup = Some(Popup::Confirm {
                    message: format!("Remove [{id}]? (a revision; revertible)"),
                    action: Confirmed::RemoveBullet(id),
                });
            }
        }
        _ => {}
    }
    Vec::new()
}

/// The pane's parts in `area`: the sections, the bullet table, the detail (when open). A click
/// finds rows with the same numbers.
pub fn areas(state: &State, area: Rect) -> (Rect, Rect, Option<Rect>) {
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(28), Constraint::Percentage(72)]).areas(area);
    if state.show_detail {
        let [t, d] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(right);
        (left, t, Some(d))
    } else {
        (left, right, None)
    }
}

/// The first visible bullet row and how many rows the table shows (the window around the
/// selection the list is virtualised over).
pub fn bullet_window(state: &State, table: Rect) -> (usize, usize) {
    let rows = table.height.saturating_sub(2) as usize;
    let offset = state
        .bullet
        .saturating_sub(rows / 2)
        .min(state.visible.len().saturating_sub(rows));
    (offset, rows)
}

pub fn render(state: &State, frame: &mut Frame, area: Rect, theme: &Theme) {
    let (left, table, detail) = areas(state, area);
    let pb = state.shown();
    let items: Vec<ListItem> = pb
        .sections
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (count, harmful) = state.section_stats.get(i).copied().unwrap_or_default();
            let mark = if harmful > 0 {
                format!(" !{harmful}")
            } else {
                String::new()
            };
            ListItem::new(Line::from(vec![
                Span::raw(format!("{count:>3} {}", short(&s.name, 40))),
                Span::styled(mark, theme.removed()),
            ]))
        })
        .collect();
    let mut list_state = ListState::default().with_selected(Some(state.section));
    frame.render_stateful_widget(
        List::new(items)
            .block(block(
                "Sections".into(),
                state.focus == Pane::Sections,
                theme,
            ))
            .highlight_style(theme.selected()),
        left,
        &mut list_state,
    );
    render_bullets(state, frame, table, theme);
    if let Some(area) = detail {
        render_detail(state, frame, area, theme);
    }
}

/// The bullet list, virtualised: only the rows that fit are built, around the selection.
fn render_bullets(state: &State, frame: &mut Frame, table: Rect, theme: &Theme) {
    let pb = state.shown();
    let (offset, rows) = bullet_window(state, table);
    let width = table.width.saturating_sub(22) as usize;
    let items: Vec<ListItem> = state
        .visible
        .iter()
        .skip(offset)
        .take(rows)
        .map(|i| {
            let b = &pb.bullets[*i];
            let counters = format!("+{} -{} ={}", b.helpful, b.harmful, b.neutral);
            let style = if b.harmful > b.helpful {
                theme.removed()
            } else {
                Style::default()
            };
            ListItem::new(Line::from(vec![
                Span::styled(format!("{:<12}", b.id), style),
                Span::styled(format!("{counters:<10}"), theme.dim()),
                Span::raw(short(&b.content, width)),
            ]))
        })
        .collect();
    let title = if state.filter.is_empty() {
        format!(
            "Bullets {}/{} · sort {:?}",
            state.visible.len().min(state.bullet + 1),
            state.visible.len(),
            state.sort
        )
        .to_lowercase()
    } else {
        format!(
            "bullets matching \"{}\": {}",
            state.filter,
            state.visible.len()
        )
    };
    let mut list_state = ListState::default()
        .with_selected((!state.visible.is_empty()).then(|| state.bullet - offset));
    frame.render_stateful_widget(
        List::new(items)
            .block(block(title, state.focus == Pane::Bullets, theme))
            .highlight_style(theme.selected()),
        table,
        &mut list_state,
    );
}

fn render_detail(state: &State, frame: &mut Frame, area: Rect, theme: &Theme) {
    let text = match state.selected_bullet() {
        Some(b) => {
            let mut lines = vec![
                Line::from(Span::styled(
                    format!(
                        "[{}] in {} · helpful {} harmful {} neutral {}",
                        b.id, b.section, b.helpful, b.harmful, b.neutral
                    ),
                    Style::default().add_modifier(Modifier::BOLD),
                )),
                // one span, so `break_lines` puts each of its lines on a screen line
                Line::from(Span::raw(b.content.clone())),
                Line::from(Span::styled(
                    format!("created {} · updated {}", b.created_at, b.updated_at),
                    theme.dim(),
                )),
            ];
            if !b.metadata.is_empty() {
                lines.push(Line::from(Span::styled(
                    format!("metadata {}", serde_json::Value::Object(b.metadata.clone())),
                    theme.dim(),
                )));
            }
            match state.story.as_ref().filter(|s| s.bullet_id == b.id) {
                Some(story) => {
                    let origin =
                        match (story.origin_revision, story.origin_batch, &story.origin_run) {
                            (Some(r), Some(q), Some(run)) => {
                                format!("added by revision {r}, queued batch #{q} of {run}")
                            }
                            (Some(r), _, _) => format!("added by revision {r}"),
                            _ => "origin unknown".into(),
                        };
                    lines.push(Line::from(origin));
                    let counters: Vec<String> = story
                        .history
                        .iter()
                        .map(|p| format!("r{} +{}-{}", p.revision, p.helpful, p.harmful))
                        .collect();
                    lines.push(Line::from(Span::styled(
                        format!("counters: {}", counters.join(" → ")),
                        theme.dim(),
                    )));
                    let runs: Vec<String> = story
                        .cited_by
                        .iter()
                        .map(|(r, n)| format!("{r} ×{n}"))
                        .collect();
                    lines.push(Line::from(if runs.is_empty() {
                        "not cited by a run yet".to_string()
                    } else {
                        format!("cited by {}", runs.join(", "))
                    }));
                }
                None => lines.push(Line::from(Span::styled("loading its story…", theme.dim()))),
            }
            if let Some((id, r)) = &state.impact
                && *id == b.id
            {
                lines.push(Line::from(format!(
                    "impact: {:+.1} points with it than without ({} samples of {}; {} would go wrong, {} right without it)",
                    -r.delta_points(),
                    r.samples,
                    r.source,
                    r.to_wrong.len(),
                    r.to_right.len()
                )));
            } else {
                lines.push(Line::from(Span::styled(
                    "I measures its impact (leave-one-out)",
                    theme.dim(),
                )));
            }
            lines
        }
        None => vec![Line::from("no bullet selected")],
    };
    frame.render_widget(
        Paragraph::new(break_lines(text))
            .wrap(Wrap { trim: false })
            .block(block("Detail".into(), false, theme)),
        area,
    );
}
