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
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(2),
    ])
    .areas(frame.area());
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

fn render_header(state: &State, frame: &mut Frame, area: Rect, theme: &Theme) {
    let tabs = [
        (Pane::Sections, "1 Playbook"),
        (Pane::Run, "2 Run"),
        (Pane::Queue, "3 Queue"),
        (Pane::Revisions, "4 Revisions"),
    ];
    let mut spans = vec![Span::styled(
        "ace ",
        Style::default().add_modifier(Modifier::BOLD),
    )];
    for (pane, label) in tabs {
        let active =
            state.focus == pane || (pane == Pane::Sections && state.focus == Pane::Bullets);
        let label = if pane == Pane::Queue && state.pending_count() > 0 {
            format!("{label} ({})", state.pending_count())
        } else {
            label.to_string()
        };
        spans.push(Span::styled(
            format!("[{label}]"),
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
    spans.push(Span::raw(format!(
        "· {}{at} ({} bullets{size}) · {}",
        pb.name, state.active_count, state.model_label
    )));

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
    let text = vec![
        Line::from(Span::styled(message, theme.changed())),
        Line::from(Span::styled(
            keymap::fitted_hint_line(state.focus.layers(), usize::from(area.width)),
            theme.dim(),
        )),
    ];
    frame.render_widget(Paragraph::new(text), area);
}
