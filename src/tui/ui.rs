//! Pure rendering of the workbench from `&State`.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Gauge, List, ListItem, ListState, Paragraph, Wrap};

use super::state::{Pane, Popup, State, Unfinished};
use super::update::commands_for;
use crate::approval::OpStatus;
use crate::delta::{Change, DeltaOp};

struct Theme {
    on: bool,
    light: bool,
}

impl Theme {
    fn fg(&self, c: Color) -> Style {
        if self.on {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }
    fn added(&self) -> Style {
        self.fg(Color::Green)
    }
    fn removed(&self) -> Style {
        self.fg(Color::Red)
    }
    /// Yellow is unreadable on many light backgrounds; magenta reads on both.
    fn changed(&self) -> Style {
        self.fg(if self.light {
            Color::Magenta
        } else {
            Color::Yellow
        })
    }
    fn dim(&self) -> Style {
        if self.on {
            Style::default().add_modifier(Modifier::DIM)
        } else {
            Style::default()
        }
    }
    fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
    fn title(&self, focused: bool) -> Style {
        if focused {
            Style::default().add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        }
    }
}

fn block<'a>(title: String, focused: bool, theme: &Theme) -> Block<'a> {
    let marker = if focused { "▶ " } else { "" };
    Block::default().borders(Borders::ALL).title(Span::styled(
        format!("{marker}{title}"),
        theme.title(focused),
    ))
}

/// Splits lines whose spans hold line breaks (multi-line bullet content, code snippets) into screen
/// lines; each continuation is indented two spaces and keeps its span's style.
fn break_lines(lines: Vec<Line<'static>>) -> Vec<Line<'static>> {
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

fn short(s: &str, n: usize) -> String {
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

pub fn render(state: &State, frame: &mut Frame) {
    let theme = Theme {
        on: !state.no_color,
        light: state.light_background,
    };
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(2),
    ])
    .areas(frame.area());
    render_header(state, frame, header, &theme);
    match state.focus {
        Pane::Sections | Pane::Bullets => render_playbook(state, frame, body, &theme),
        Pane::Run => render_run(state, frame, body, &theme),
        Pane::Queue => render_queue(state, frame, body, &theme),
        Pane::Revisions => render_revisions(state, frame, body, &theme),
    }
    render_footer(state, frame, footer, &theme);
    if let Some(popup) = &state.popup {
        render_popup(state, popup, frame, &theme);
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
    spans.push(Span::raw(format!(
        "· {}{at} ({} bullets) · {}",
        pb.name, state.active_count, state.model_label
    )));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn render_footer(state: &State, frame: &mut Frame, area: Rect, theme: &Theme) {
    // The pane's own keys first, then the global ones.
    let (local, global): (Vec<_>, Vec<_>) =
        commands_for(state.focus).partition(|c| !c.panes.is_empty());
    let hints: Vec<String> = local
        .iter()
        .chain(global.iter())
        .map(|c| format!("{} {}", c.keys, c.what))
        .collect();
    let message = if state.message.is_empty() {
        state.db_label.clone()
    } else {
        state.message.clone()
    };
    let text = vec![
        Line::from(Span::styled(message, theme.changed())),
        Line::from(Span::styled(hints.join(" · "), theme.dim())),
    ];
    frame.render_widget(Paragraph::new(text), area);
}

fn render_playbook(state: &State, frame: &mut Frame, area: Rect, theme: &Theme) {
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(28), Constraint::Percentage(72)]).areas(area);
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
    let (table, detail) = if state.show_detail {
        let [t, d] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(right);
        (t, Some(d))
    } else {
        (right, None)
    };
    // Virtualised: only the rows that fit are built, around the selection.
    let rows = table.height.saturating_sub(2) as usize;
    let offset = state
        .bullet
        .saturating_sub(rows / 2)
        .min(state.visible.len().saturating_sub(rows));
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
    if let Some(area) = detail {
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
}

fn render_run(state: &State, frame: &mut Frame, area: Rect, theme: &Theme) {
    let run = &state.run;
    let [top, gauge, middle, log] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(1),
        Constraint::Min(6),
        Constraint::Length(6),
    ])
    .areas(area);
    let title = match &run.run {
        Some(id) => format!(
            "Run {id} · {} · feedback: {}",
            run.status, run.feedback_mode
        ),
        None => "Run · none yet (r starts one, R resumes one)".into(),
    };
    let head = vec![Line::from(format!(
        "{} · tokens {} · ${:.4}",
        state.model_label, run.tokens, run.cost_usd
    ))];
    frame.render_widget(
        Paragraph::new(head).block(block(title, state.focus == Pane::Run, theme)),
        top,
    );
    let ratio = if run.total == 0 {
        0.0
    } else {
        (run.done as f64 / run.total as f64).min(1.0)
    };
    frame.render_widget(
        Gauge::default()
            .ratio(ratio)
            .label(format!(
                "epoch {} · {}/{}",
                run.epoch.max(1),
                run.done,
                run.total
            ))
            .gauge_style(theme.added()),
        gauge,
    );
    let mut acc: Vec<String> = run
        .accuracy
        .iter()
        .map(|(e, split, a)| format!("{split} e{e}: {:.1}%", a * 100.0))
        .collect();
    if let Some((correct, seen)) = run.so_far.filter(|(_, seen)| *seen > 0) {
        acc.push(format!(
            "this epoch {correct}/{seen} ({:.0}%)",
            100.0 * correct as f64 / seen as f64
        ));
    }
    let bars: String = run
        .accuracy
        .iter()
        .filter(|(_, s, _)| s == "train")
        .map(|(_, _, a)| {
            ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'][((a * 7.0).round() as usize).min(7)]
        })
        .collect();
    let lines = vec![
        Line::from(vec![
            Span::styled("question: ", theme.dim()),
            Span::raw(short(&run.question, 400)),
        ]),
        Line::from(vec![
            Span::styled("answer:   ", theme.dim()),
            Span::raw(short(&run.answer, 200)),
        ]),
        Line::from(vec![
            Span::styled("verdict:  ", theme.dim()),
            Span::styled(
                run.verdict.clone(),
                if run.verdict.starts_with("right") {
                    theme.added()
                } else {
                    theme.removed()
                },
            ),
        ]),
        Line::from(vec![
            Span::styled("insight:  ", theme.dim()),
            Span::raw(short(&run.insight, 300)),
        ]),
        Line::from(vec![
            Span::styled("accuracy: ", theme.dim()),
            Span::raw(if bars.is_empty() {
                acc.join(" · ")
            } else {
                format!("{bars} {}", acc.join(" · "))
            }),
        ]),
    ];
    let [sample, chart] =
        Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)]).areas(middle);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: true }).block(block(
            "Current sample".into(),
            false,
            theme,
        )),
        sample,
    );
    render_accuracy_chart(state, frame, chart, theme);
    let tail: Vec<Line> = run
        .log
        .iter()
        .rev()
        .take(log.height.saturating_sub(2) as usize)
        .rev()
        .map(|l| Line::from(l.clone()))
        .collect();
    frame.render_widget(
        Paragraph::new(tail).block(block("Log".into(), false, theme)),
        log,
    );
}

/// Accuracy per epoch, train and validation, as a line chart (0–100%).
fn render_accuracy_chart(state: &State, frame: &mut Frame, area: Rect, theme: &Theme) {
    use ratatui::symbols::Marker;
    use ratatui::widgets::{Axis, Chart, Dataset, GraphType};
    let points = |val: bool| -> Vec<(f64, f64)> {
        state
            .run
            .accuracy
            .iter()
            .filter(|(_, split, _)| {
                if val {
                    split.starts_with("val")
                } else {
                    split == "train"
                }
            })
            .map(|(epoch, _, a)| (f64::from(*epoch), a * 100.0))
            .collect()
    };
    let (train, val) = (points(false), points(true));
    let block = block("Accuracy by epoch".into(), false, theme);
    if train.is_empty() && val.is_empty() {
        frame.render_widget(Paragraph::new("no epoch finished yet").block(block), area);
        return;
    }
    let epochs = train.iter().chain(&val).map(|p| p.0).fold(1.0, f64::max);
    let datasets = vec![
        Dataset::default()
            .name("train")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(theme.added())
            .data(&train),
        Dataset::default()
            .name("val")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(theme.changed())
            .data(&val),
    ];
    let chart = Chart::new(datasets)
        .block(block)
        .x_axis(
            Axis::default()
                .bounds([1.0, epochs.max(2.0)])
                .labels(["1".to_string(), format!("{:.0}", epochs.max(2.0))]),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, 100.0])
                .labels(["0%", "50%", "100%"]),
        );
    frame.render_widget(chart, area);
}

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
        other => vec![Line::from(Span::styled(other.describe(), theme.changed()))],
    }
}

fn render_queue(state: &State, frame: &mut Frame, area: Rect, theme: &Theme) {
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(30), Constraint::Percentage(70)]).areas(area);
    let items: Vec<ListItem> = state
        .queue
        .iter()
        .map(|b| {
            ListItem::new(format!(
                "#{} {} · {} ops · {}",
                b.id,
                b.status,
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
    for (i, op) in batch.ops.iter().enumerate() {
        let status = match op.status {
            OpStatus::Pending => "pending",
            OpStatus::Approved => "approved",
            OpStatus::Rejected => "rejected",
            OpStatus::Edited => "edited",
        };
        let marker = if i == state.op_sel { "▶" } else { " " };
        lines.push(Line::from(Span::styled(
            format!("{marker} [{}/{}] {status}", i + 1, batch.ops.len()),
            if i == state.op_sel {
                theme.selected()
            } else {
                Style::default()
            },
        )));
        lines.extend(op_lines(op.edited.as_ref().unwrap_or(&op.op), state, theme));
    }
    lines.push(Line::from(""));
    if let Some(r) = &batch.reasoning {
        lines.push(Line::from(vec![
            Span::styled("curator: ", theme.dim()),
            Span::raw(r.clone()),
        ]));
    }
    for s in batch.samples() {
        // answers as JSON strings: quoted and escaped, `null` for no ground truth
        let quoted = |t: Option<&str>| serde_json::to_string(&t).unwrap_or_default();
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

fn render_revisions(state: &State, frame: &mut Frame, area: Rect, theme: &Theme) {
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
    if let Some(d) = &state.revision_detail {
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
        for c in &d.changes {
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

/// A popup list to pick one line from.
fn pick_list(
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

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width.saturating_sub(2));
    let h = height.min(area.height.saturating_sub(2));
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn render_popup(state: &State, popup: &Popup, frame: &mut Frame, theme: &Theme) {
    let area = frame.area();
    match popup {
        Popup::Help { scroll } => {
            let r = centered(area, 70, super::update::COMMANDS.len() as u16 + 2);
            let lines: Vec<Line> = super::update::COMMANDS
                .iter()
                .map(|c| {
                    let wh = if c.panes.is_empty() {
                        "everywhere".to_string()
                    } else {
                        format!("{:?}", c.panes).to_lowercase()
                    };
                    Line::from(format!("{:<8} {:<28} {wh}", c.keys, c.what))
                })
                .collect();
            frame.render_widget(Clear, r);
            frame.render_widget(
                Paragraph::new(lines).scroll((*scroll, 0)).block(block(
                    "Help · j/k scroll · Esc closes".into(),
                    true,
                    theme,
                )),
                r,
            );
        }
        Popup::Confirm { message, .. } => {
            let r = centered(area, 60, 5);
            frame.render_widget(Clear, r);
            frame.render_widget(
                Paragraph::new(vec![
                    Line::from(message.clone()),
                    Line::from(Span::styled("y confirm · n / Esc cancel", theme.dim())),
                ])
                .wrap(Wrap { trim: true })
                .block(block("Confirm".into(), true, theme)),
                r,
            );
        }
        Popup::EditOp { batch, op, editor } => {
            let r = centered(area, 76, 16);
            frame.render_widget(Clear, r);
            let title = format!(
                "Edit op {} of batch {batch} · Ctrl-s saves and approves · Esc cancels",
                op + 1
            );
            let mut e = editor.clone();
            e.set_block(block(title, true, theme));
            frame.render_widget(&e, r);
        }
        Popup::MoveTo {
            bullet,
            sections,
            sel,
        } => pick_list(
            frame,
            centered(area, 60, sections.len() as u16 + 2),
            format!("move [{bullet}] to · j/k · Enter · Esc"),
            sections.clone(),
            *sel,
            theme,
        ),
        Popup::PickPlaybook { names, sel } => pick_list(
            frame,
            centered(area, 60, names.len() as u16 + 2),
            "show playbook · j/k · Enter · Esc".into(),
            names.clone(),
            *sel,
            theme,
        ),
        Popup::ResumeRun { runs, sel } => {
            let lines = runs
                .iter()
                .map(
                    |Unfinished {
                         run: r,
                         live_elsewhere,
                     }| {
                        let at = r
                            .checkpoint
                            .as_ref()
                            .map(|c| format!(" · epoch {} · {} batches done", c.epoch, c.step))
                            .unwrap_or_default();
                        let busy = if *live_elsewhere {
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
                    },
                )
                .collect();
            pick_list(
                frame,
                centered(area, 110, runs.len() as u16 + 2),
                "resume which run? · j/k · Enter · Esc".into(),
                lines,
                *sel,
                theme,
            )
        }
        Popup::RunForm(form) => {
            let height = form.fields.len() as u16 + 6;
            let r = centered(area, 78, height);
            frame.render_widget(Clear, r);
            let outer = block(
                "Start a run · Tab/↑↓ field · Ctrl-u clear · Enter start · Esc cancel".into(),
                true,
                theme,
            );
            let inner = outer.inner(r);
            frame.render_widget(outer, r);
            let rows = Layout::vertical(
                std::iter::repeat_n(Constraint::Length(1), form.fields.len()).chain([
                    Constraint::Length(1),
                    Constraint::Length(1),
                    Constraint::Min(1),
                ]),
            )
            .split(inner);
            for (i, f) in form.fields.iter().enumerate() {
                let [label, value] =
                    Layout::horizontal([Constraint::Length(15), Constraint::Min(1)]).areas(rows[i]);
                let focused = i == form.focus;
                let style = if focused {
                    Style::default().add_modifier(Modifier::BOLD)
                } else {
                    theme.dim()
                };
                frame.render_widget(
                    Paragraph::new(format!("{}{}", if focused { "▸ " } else { "  " }, f.label))
                        .style(style),
                    label,
                );
                let mut e = f.editor.clone();
                if !focused {
                    e.set_cursor_style(Style::default());
                }
                e.set_cursor_line_style(Style::default());
                frame.render_widget(&e, value);
            }
            let n = form.fields.len();
            frame.render_widget(
                Paragraph::new(Span::styled(
                    form.fields[form.focus].hint.to_string(),
                    theme.dim(),
                )),
                rows[n + 1],
            );
            if let Some(e) = &form.error {
                frame.render_widget(
                    Paragraph::new(Span::styled(e.clone(), theme.removed()))
                        .wrap(Wrap { trim: true }),
                    rows[n + 2],
                );
            }
        }
        Popup::Input {
            title,
            editor,
            purpose,
        } => {
            // Grows with the text (wrapped), up to 10 rows, so a long bullet is seen whole.
            let width = area
                .width
                .saturating_sub(2)
                .min(76)
                .saturating_sub(2)
                .max(1) as usize;
            let wrapped: usize = editor
                .lines()
                .iter()
                .map(|l| (l.chars().count() + 1).div_ceil(width))
                .sum();
            let rows = match wrapped as u16 {
                0 | 1 => 1,
                n => n + 1, // words wrap earlier than characters would
            };
            let r = centered(area, 76, (rows + 2).min(12));
            frame.render_widget(Clear, r);
            let mut e = editor.clone();
            let keys = if purpose.multiline() {
                "Enter saves · Alt-Enter/Ctrl-j new line · Esc"
            } else {
                "Enter · Esc"
            };
            e.set_block(block(format!("{title} · {keys}"), true, theme));
            frame.render_widget(&e, r);
        }
    }
    let _ = state;
}
