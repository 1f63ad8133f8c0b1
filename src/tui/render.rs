//! `render(&State, &mut Frame)`: the header, the focused pane, the footer and the popup on top,
//! drawn from the state alone. Never mutates.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::keymap;
use super::panes;
use super::popups;
use super::state::{Pane, State};
use super::theme::Theme;

pub fn render(state: &State, frame: &mut Frame) {
    let theme = Theme::of(state);
    let [header, body, footer] = screen_areas(state, frame.area());
    render_header(state, frame, header, &theme);
    match state.focus {
        Pane::Sections | Pane::Bullets => panes::playbook::render(state, frame, body, &theme),
        Pane::Run => panes::run::render(state, frame, body, &theme),
        Pane::Queue => panes::queue::render(state, frame, body, &theme),
        Pane::Revisions => panes::revisions::render(state, frame, body, &theme),
    }
    render_footer(state, frame, footer, &theme);
    if let Some(popup) = &state.popup {
        popups::render(state, popup, frame, &theme);
    }
}

/// The header, the pane and the footer on a screen of `area`. A long message (an error with its
/// reason) wraps onto up to three lines instead of losing its end. A click finds what is where
/// with the same areas.
pub fn screen_areas(state: &State, area: Rect) -> [Rect; 3] {
    let width = usize::from(area.width.max(1));
    let message_lines = state.message.chars().count().div_ceil(width).clamp(1, 3) as u16;
    Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(message_lines + 1),
    ])
    .areas(area)
}

/// The header's tabs at a screen `width`: each pane, its label and whether it is the focused one.
/// The header draws them and a mouse click finds them with the same numbers.
pub fn tabs(state: &State, width: u16) -> Vec<(Pane, String, bool)> {
    let tabs = [
        (Pane::Sections, "1 Playbook"),
        (Pane::Run, "2 Run"),
        (Pane::Queue, "3 Queue"),
        (Pane::Revisions, "4 Revisions"),
    ];
    // narrow screens: the tabs not shown are their numbers only, so the playbook keeps its place
    let narrow = width < 100;
    tabs.into_iter()
        .map(|(pane, label)| {
            let active =
                state.focus == pane || (pane == Pane::Sections && state.focus == Pane::Bullets);
            let label = if narrow && !active {
                &label[..1]
            } else {
                label
            };
            let label = if pane == Pane::Queue && state.pending_count() > 0 {
                format!("{label} ({})", state.pending_count())
            } else {
                label.to_string()
            };
            (pane, format!("[{label}]"), active)
        })
        .collect()
}

/// The pane whose tab is at column `x` of the header.
pub fn tab_at(state: &State, width: u16, x: u16) -> Option<Pane> {
    let mut at = "ace ".len() as u16;
    for (pane, label, _) in tabs(state, width) {
        let w = label.chars().count() as u16;
        if (at..at + w).contains(&x) {
            return Some(pane);
        }
        at += w + 1;
    }
    None
}

fn render_header(state: &State, frame: &mut Frame, area: Rect, theme: &Theme) {
    let mut spans = vec![Span::styled(
        "ace ",
        Style::default().add_modifier(Modifier::BOLD),
    )];
    for (_, label, active) in tabs(state, area.width) {
        spans.push(Span::styled(
            label,
            if active {
                theme.selected()
            } else {
                Style::default()
            },
        ));
        spans.push(Span::raw(" "));
    }
    let pb = state.shown();
    let at = state
        .viewing_at
        .as_ref()
        .map(|(r, _)| format!(" @rev {r}"))
        .unwrap_or_default();
    let size = match (state.viewing_at.is_some(), state.token_budget) {
        (true, _) => String::new(),
        (false, Some(b)) if state.tokens > b => {
            format!(" · {}/{b} tokens, OVER BUDGET", state.tokens)
        }
        (false, Some(b)) => format!(" · {}/{b} tokens", state.tokens),
        (false, None) => format!(" · {} tokens", state.tokens),
    };
    // the playbook and its size always show; the model label gets what room is left
    let used: usize = spans.iter().map(|s| s.content.chars().count()).sum();
    let shown = format!("· {}{at} ({} bullets{size})", pb.name, state.active_count);
    let room = usize::from(area.width).saturating_sub(used + shown.chars().count() + 3);
    let model = if state.model_label.chars().count() <= room {
        state.model_label.clone()
    } else if room > 1 {
        let cut: String = state.model_label.chars().take(room - 1).collect();
        format!("{cut}…")
    } else {
        String::new()
    };
    spans.push(Span::raw(if model.is_empty() {
        shown
    } else {
        format!("{shown} · {model}")
    }));

    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The message line, then the focused pane's keys (its own first, then the global ones), read from
/// the key table.
fn render_footer(state: &State, frame: &mut Frame, area: Rect, theme: &Theme) {
    let message = if state.message.is_empty() {
        state.db_label.clone()
    } else {
        state.message.clone()
    };
    let [message_area, hints_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
    frame.render_widget(
        Paragraph::new(Line::from(Span::styled(message, theme.changed())))
            .wrap(ratatui::widgets::Wrap { trim: false }),
        message_area,
    );
    frame.render_widget(
        Paragraph::new(Line::from(Span::styled(
            keymap::fitted_hint_line(state.focus.layers(), usize::from(area.width)),
            theme.dim(),
        ))),
        hints_area,
    );
}
