//! The Queue pane: proposals waiting for a person, each op as a diff against its own playbook, with
//! the samples and reflections behind it; approve, reject, edit, skip, all at once, undo.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState, Paragraph, Wrap};

use super::step;
use crate::approval::{Decision, OpStatus};
use crate::delta::DeltaOp;
use crate::tui::action::Effect;
use crate::tui::keymap::Cmd;
use crate::tui::popups::{Confirmed, InputFor, Popup, input, wrapping_editor};
use crate::tui::state::{Pane, State};
use crate::tui::theme::Theme;
use crate::tui::widgets::{block, break_lines, short};

pub fn command(state: &mut State, cmd: Cmd) -> Vec<Effect> {
    let Some(batch) = state.selected_batch() else {
        if cmd == Cmd::Undo {
            return undo(state);
        }
        state.message = "the queue is empty".into();
        return Vec::new();
    };
    let (id, len) = (batch.id, batch.ops.len());
    let op = state.op_sel;
    let pending = batch
        .ops
        .get(op)
        .is_some_and(|o| o.status == OpStatus::Pending);
    match cmd {
        Cmd::Approve | Cmd::Reject | Cmd::EditOp if !pending => {
            state.message = "this op is already decided".into()
        }
        Cmd::Approve => {
            return vec![Effect::Decide {
                batch: id,
                decisions: vec![(op, Decision::Approve)],
            }];
        }
        Cmd::Reject => {
            state.popup = Some(input(
                "reason for rejecting (optional, Enter to reject)",
                InputFor::RejectReason { batch: id, op },
                "",
            ));
        }
        Cmd::EditOp => {
            let json = batch
                .ops
                .get(op)
                .map(|o| serde_json::to_string_pretty(&o.op).unwrap_or_default())
                .unwrap_or_default();
            let editor = wrapping_editor(json.lines().map(str::to_string).collect());
            state.popup = Some(Popup::EditOp {
                batch: id,
                op,
                editor,
            });
        }
        Cmd::Skip => state.op_sel = (op + 1).min(len.saturating_sub(1)),
        Cmd::ApproveAll | Cmd::RejectAll => {
            let approve = cmd == Cmd::ApproveAll;
            let left = batch.undecided();
            state.popup = Some(Popup::Confirm {
                message: format!(
                    "{} all {left} undecided ops of batch {id}?",
                    if approve { "Approve" } else { "Reject" }
                ),
                action: Confirmed::DecideAll { batch: id, approve },
            });
        }
        Cmd::Undo => return undo(state),
        Cmd::Trial => {
            // inside the batch's ops: that op alone; on the batch list: all of it
            let op = state.queue_ops.then_some(op + 1);
            state.message = match op {
                Some(n) => {
                    format!("trying op {n} of proposal #{id} on samples… (the queue stays usable)")
                }
                None => format!("trying proposal #{id} on samples… (the queue stays usable)"),
            };
            return vec![Effect::Trial { batch: id, op }];
        }
        Cmd::ToOps => {
            state.queue_ops = true;
            state.message =
                "j/k move over this batch's ops; h or Esc goes back to the batches".into();
        }
        Cmd::ToBatches => state.queue_ops = false,
        Cmd::NextBatch | Cmd::PrevBatch => {
            let delta = if cmd == Cmd::NextBatch { 1 } else { -1 };
            state.queue_sel = step(state.queue_sel, state.queue.len(), delta);
            state.op_sel = 0;
        }
        _ => {}
    }
    Vec::new()
}

fn undo(state: &mut State) -> Vec<Effect> {
    match state.last_applied {
        Some(revision) => vec![Effect::Revert {
            revision,
            force: false,
        }],
        None => {
            state.message = "nothing to undo".into();
            Vec::new()
        }
    }
}

/// An op as a diff against the shown playbook.
fn op_lines(op: &DeltaOp, state: &State, theme: &Theme) -> Vec<Line<'static>> {
    let pb = &state.playbook;
    match op {
        DeltaOp::Add(a) => {
            let mut v = vec![Line::from(Span::styled(
                format!("+ ({}) {}", a.section, a.content),
                theme.added(),
            ))];
            // Approving creates the section (or brings a removed one back): say so before.
            if !pb.has_section(&a.section) {
                v.push(Line::from(Span::styled(
                    format!(
                        "  approving creates section '{}' (the playbook has no such section)",
                        a.section
                    ),
                    theme.changed(),
                )));
            }
            if let Some(similar) = a
                .metadata
                .as_ref()
                .and_then(|m| m.get("similar_to"))
                .and_then(|s| s.as_str())
            {
                v.push(Line::from(Span::styled(
                    format!(
                        "  similar to [{similar}]: {}",
                        pb.bullet(similar).map(|b| b.content.as_str()).unwrap_or("")
                    ),
                    theme.changed(),
                )));
            }
            v
        }
        DeltaOp::Update(u) => {
            let before = pb.bullet(&u.bullet_id);
            let mut v = Vec::new();
            if let (Some(b), Some(c)) = (before, &u.content) {
                v.push(Line::from(Span::styled(
                    format!("- [{}] {}", b.id, b.content),
                    theme.removed(),
                )));
                v.push(Line::from(Span::styled(
                    format!("+ [{}] {c}", b.id),
                    theme.added(),
                )));
            }
            if let Some(s) = &u.section {
                v.push(Line::from(Span::styled(
                    format!("~ [{}] → section {s}", u.bullet_id),
                    theme.changed(),
                )));
            }
            v
        }
        DeltaOp::Remove { bullet_id } => vec![Line::from(Span::styled(
            format!(
                "- [{bullet_id}] {}",
                pb.bullet(bullet_id)
                    .map(|b| b.content.as_str())
                    .unwrap_or("")
            ),
            theme.removed(),
        ))],
        DeltaOp::Merge(m) => {
            let similarity = m
                .similarity
                .map(|s| format!(" (similarity {s:.2})"))
                .unwrap_or_default();
            let text = |id: &str| pb.bullet(id).map(|b| b.content.clone()).unwrap_or_default();
            let mut v = vec![
                Line::from(Span::styled(
                    format!("≈ merge into [{}]{similarity}", m.bullet_id),
                    theme.changed(),
                )),
                Line::from(format!("  kept:     {}", text(&m.bullet_id))),
            ];
            if let Some(dup) = &m.duplicate {
                v.push(Line::from(Span::styled(
                    format!(
                        "- [{dup}] {} (its counters join the kept bullet)",
                        text(dup)
                    ),
                    theme.removed(),
                )));
            }
            if let Some(p) = &m.proposed {
                v.push(Line::from(Span::styled(
                    format!("  proposed: {p} (helpful +1 instead of a second bullet)"),
                    theme.dim(),
                )));
            }
            if let Some(c) = &m.content {
                v.push(Line::from(Span::styled(
                    format!("+ becomes: {c}"),
                    theme.added(),
                )));
            }
            v
        }
        other => vec![Line::from(Span::styled(other.describe(), theme.changed()))],
    }
}

pub fn render(state: &State, frame: &mut Frame, area: Rect, theme: &Theme) {
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(30), Constraint::Percentage(70)]).areas(area);
    let items: Vec<ListItem> = state
        .queue
        .iter()
        .map(|b| {
            ListItem::new(format!(
                "#{} {} · {} ops · {}",
                b.id,
                b.state(),
                b.ops.len(),
                b.run_id.as_deref().unwrap_or("manual")
            ))
        })
        .collect();
    let mut ls =
        ListState::default().with_selected((!state.queue.is_empty()).then_some(state.queue_sel));
    frame.render_stateful_widget(
        List::new(items)
            .block(block(
                format!("Queue ({} pending)", state.pending_count()),
                state.focus == Pane::Queue,
                theme,
            ))
            .highlight_style(theme.selected()),
        left,
        &mut ls,
    );
    let Some(batch) = state.selected_batch() else {
        frame.render_widget(
            Paragraph::new("No curator proposals are waiting.").block(block(
                "Proposal".into(),
                false,
                theme,
            )),
            right,
        );
        return;
    };
    let mut lines = Vec::new();
    if let Some(effect) = state.effects.get(&batch.id) {
        let over = effect.over();
        lines.push(Line::from(vec![
            Span::styled("size if approved: ", theme.dim()),
            Span::styled(
                effect.describe(),
                if over {
                    theme.removed()
                } else {
                    Style::default()
                },
            ),
        ]));
        if over {
            lines.push(Line::from(Span::styled(
                "approving all of it takes the playbook over its token budget (auto-approval holds such a batch)",
                theme.removed(),
            )));
        }
    }
    if let Some(note) = &batch.provenance.budget {
        lines.push(Line::from(Span::styled(note.describe(), theme.dim())));
        for p in &note.prunes {
            lines.push(Line::from(format!("  prune {}: {}", p.op, p.reason)));
        }
    }
    for t in state.trials.get(&batch.id).into_iter().flatten() {
        let r = &t.report;
        let delta = r.delta_points();
        lines.push(Line::from(vec![
            Span::styled(format!("trial ({}): ", t.subject), theme.dim()),
            Span::styled(
                r.summary(),
                if delta < 0.0 {
                    theme.removed()
                } else {
                    Style::default()
                },
            ),
        ]));
        for (label, flips) in [("right→wrong", &r.to_wrong), ("wrong→right", &r.to_right)] {
            for f in flips.iter().take(3) {
                lines.push(Line::from(format!(
                    "  {label} {}: {:?} → {:?}",
                    f.sample_id, f.before, f.after
                )));
            }
        }
    }
    if !lines.is_empty() {
        lines.push(Line::from(""));
    }
    for (i, op) in batch.ops.iter().enumerate() {
        let marker = if i == state.op_sel { "▶" } else { " " };
        lines.push(Line::from(Span::styled(
            format!("{marker} [{}/{}] {}", i + 1, batch.ops.len(), op.status),
            if i == state.op_sel {
                theme.selected()
            } else {
                Style::default()
            },
        )));
        lines.extend(op_lines(op.effective(), state, theme));
    }
    lines.push(Line::from(""));
    if let Some(r) = &batch.reasoning {
        lines.push(Line::from(vec![
            Span::styled("curator: ", theme.dim()),
            Span::raw(r.clone()),
        ]));
    }
    // answers as JSON strings: quoted and escaped, `null` for no ground truth
    let quoted = |t: Option<&str>| serde_json::to_string(&t).unwrap_or_default();
    for s in batch.samples() {
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", s.key), theme.dim()),
            Span::styled(
                if s.correct { "right" } else { "wrong" },
                if s.correct {
                    theme.added()
                } else {
                    theme.removed()
                },
            ),
            Span::raw(format!(
                " · answer {} · expected {}",
                quoted(Some(&s.answer)),
                quoted(s.ground_truth.as_deref())
            )),
        ]));
        lines.push(Line::from(format!(
            "  question: {}",
            short(&s.question, 300)
        )));
        if let Some(r) = &s.reflection {
            if !r.error_identification.is_empty() {
                lines.push(Line::from(format!(
                    "  diagnosis: {}",
                    r.error_identification
                )));
            }
            if !r.key_insight.is_empty() {
                lines.push(Line::from(format!("  insight: {}", r.key_insight)));
            }
        }
    }
    let title = format!(
        "Proposal #{} [{}/{}] for '{}'",
        batch.id,
        state.op_sel + 1,
        batch.ops.len(),
        batch.playbook
    );
    frame.render_widget(
        Paragraph::new(break_lines(lines))
            .wrap(Wrap { trim: false })
            .block(block(title, false, theme)),
        right,
    );
}
