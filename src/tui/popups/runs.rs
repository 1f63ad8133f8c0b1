//! Every run of the database (`L` in the Run pane): status, accuracy, tokens, cost and wall time,
//! live ones (this workbench's or another process's) updating while the list is open; Enter shows
//! a run's accuracy per epoch and split, its deltas and its cost per role.

use ratatui::Frame;
use ratatui::text::Line;
use ratatui::widgets::{Clear, Paragraph, Wrap};

use super::Popup;
use crate::adaptation::Split;
use crate::tui::action::Effect;
use crate::tui::keymap::{self, Cmd, Layer};
use crate::tui::state::{RunDetail, RunRow, State};
use crate::tui::theme::Theme;
use crate::tui::widgets::{block, centered, pick_list};

/// One line of the list.
pub fn row_line(r: &RunRow) -> String {
    let t = &r.totals;
    let rate = crate::adaptation::RunTotals::percent;
    // a run some process drives right now is marked live, next to its status
    let status = format!("{}{}", r.run.status, if r.live { " live" } else { "" });
    format!(
        "{:<8} {:<14} {:<13} {:>6} {:>6} {:>6} {:>9} ${:<8.4} {:.0}s",
        r.run.id,
        r.run.playbook,
        status,
        rate(t.learning()),
        rate(t.val),
        rate(t.test),
        t.prompt_tokens + t.completion_tokens,
        t.cost_usd,
        t.wall_secs,
    )
}

pub(super) fn key(
    state: &mut State,
    rows: Vec<RunRow>,
    sel: usize,
    detail: Option<Box<RunDetail>>,
    cmd: Option<Cmd>,
) -> Vec<Effect> {
    let last = rows.len().saturating_sub(1);
    match cmd {
        // Esc leaves the detail first, then the list
        Some(Cmd::Close) if detail.is_some() => {
            state.popup = Some(Popup::Runs {
                rows,
                sel,
                detail: None,
            });
        }
        Some(Cmd::Close) => {}
        Some(Cmd::Pick) => {
            let effects = rows
                .get(sel)
                .map(|r| vec![Effect::LoadRunSummary(r.run.id.clone())])
                .unwrap_or_default();
            state.popup = Some(Popup::Runs { rows, sel, detail });
            return effects;
        }
        other => {
            let sel = match other {
                Some(Cmd::Down) => (sel + 1).min(last),
                Some(Cmd::Up) => sel.saturating_sub(1),
                Some(Cmd::Top) => 0,
                Some(Cmd::Bottom) => last,
                _ => sel,
            };
            state.popup = Some(Popup::Runs {
                rows,
                sel,
                detail: None,
            });
        }
    }
    Vec::new()
}

pub(super) fn render(
    rows: &[RunRow],
    sel: usize,
    detail: Option<&RunDetail>,
    frame: &mut Frame,
    theme: &Theme,
) {
    let keys = keymap::hints(&[Layer::Pick])
        .filter(|h| h.cmds.iter().any(|c| matches!(c, Cmd::Close | Cmd::Down)))
        .map(keymap::Hint::text)
        .collect::<Vec<_>>()
        .join(" · ");
    if let Some(d) = detail {
        let s = &d.summary;
        let mut lines = vec![Line::from(format!(
            "{} · playbook '{}' · {} · {} · feedback: {}",
            s.run.id, s.run.playbook, s.run.kind, s.run.status, s.run.feedback_mode
        ))];
        for a in &s.accuracy {
            lines.push(Line::from(a.to_string()));
        }
        if let Some(best) = s.run.best_revision {
            lines.push(Line::from(format!(
                "best validation playbook: revision {best}"
            )));
        }
        lines.push(Line::from(format!(
            "deltas: {} proposed, {} approved, {} rejected, {} pending",
            s.proposed_ops, s.approved_ops, s.rejected_ops, s.pending_ops
        )));
        for (role, t) in &s.roles {
            lines.push(Line::from(format!(
                "  {role:<10} {} calls · {} + {} tokens · ${:.4}",
                t.calls, t.prompt_tokens, t.completion_tokens, t.cost_usd
            )));
        }
        if let Some(e) = &s.run.error {
            lines.push(Line::from(format!("error: {e}")));
        }
        // the chart: accuracy per epoch for each split, as bars
        for split in [Split::Train, Split::Val, Split::Test, Split::Online] {
            let bars: String = s
                .accuracy
                .iter()
                .filter(|a| a.split == split)
                .map(|a| {
                    let rate = a.correct as f64 / a.total.max(1) as f64;
                    ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'][((rate * 7.0).round() as usize).min(7)]
                })
                .collect();
            if !bars.is_empty() {
                lines.push(Line::from(format!("  {:<6} {bars}", split.to_string())));
            }
        }
        // its latest samples, as a log of verdicts
        if !d.samples.is_empty() {
            lines.push(Line::from("latest samples:"));
        }
        for x in &d.samples {
            lines.push(Line::from(format!(
                "  {} {} · {} · {}",
                x.key,
                if x.first_correct { "right" } else { "wrong" },
                crate::tui::widgets::short(&x.question, 50),
                crate::tui::widgets::short(&x.answer, 20)
            )));
        }
        let r = centered(frame.area(), 110, lines.len() as u16 + 2);
        frame.render_widget(Clear, r);
        frame.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(block(format!("run {} · Esc back", s.run.id), true, theme)),
            r,
        );
        return;
    }
    let lines: Vec<String> = if rows.is_empty() {
        vec!["no runs yet (r starts one)".into()]
    } else {
        // the columns' names on the first line
        std::iter::once(format!(
            "{:<8} {:<14} {:<13} {:>6} {:>6} {:>6} {:>9} {:<9} {}",
            "run", "playbook", "status", "train", "val", "test", "tokens", "cost", "wall"
        ))
        .chain(rows.iter().map(row_line))
        .collect()
    };
    let sel = if rows.is_empty() { 0 } else { sel + 1 };
    let r = centered(frame.area(), 96, lines.len() as u16 + 2);
    pick_list(
        frame,
        r,
        format!("runs · Enter details · {keys}"),
        lines,
        sel,
        theme,
    );
}
