//! Small drawing pieces every pane and popup uses.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, List, ListItem, ListState};

use super::theme::Theme;

pub fn block<'a>(title: String, focused: bool, theme: &Theme) -> Block<'a> {
    let marker = if focused { "▶ " } else { "" };
    Block::default().borders(Borders::ALL).title(Span::styled(
        format!("{marker}{title}"),
        theme.title(focused),
    ))
}

/// Splits lines whose spans hold line breaks (multi-line bullet content, code snippets) into screen
/// lines; each continuation is indented two spaces and keeps its span's style.
pub fn break_lines(lines: Vec<Line<'static>>) -> Vec<Line<'static>> {
    let mut out = Vec::with_capacity(lines.len());
    for line in lines {
        if !line.spans.iter().any(|s| s.content.contains('\n')) {
            out.push(line);
            continue;
        }
        let mut current = Vec::new();
        for span in line.spans {
            let mut parts = span.content.split('\n');
            if let Some(first) = parts.next() {
                current.push(Span::styled(first.to_string(), span.style));
            }
            for part in parts {
                out.push(Line::from(std::mem::take(&mut current)));
                current.push(Span::styled(format!("  {part}"), span.style));
            }
        }
        out.push(Line::from(current));
    }
    out
}

pub fn short(s: &str, n: usize) -> String {
    let one_line = s.replace('\n', " ");
    if one_line.chars().count() <= n {
        one_line
    } else {
        one_line
            .chars()
            .take(n.saturating_sub(1))
            .collect::<String>()
            + "…"
    }
}

/// A popup list to pick one line from.
pub fn pick_list(
    frame: &mut Frame,
    r: Rect,
    title: String,
    lines: Vec<String>,
    sel: usize,
    theme: &Theme,
) {
    frame.render_widget(Clear, r);
    let mut ls = ListState::default().with_selected(Some(sel));
    frame.render_stateful_widget(
        List::new(lines.into_iter().map(ListItem::new))
            .block(block(title, true, theme))
            .highlight_style(theme.selected()),
        r,
        &mut ls,
    );
}

pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width.saturating_sub(2));
    let h = height.min(area.height.saturating_sub(2));
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}
