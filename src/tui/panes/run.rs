//! The Run pane: the run this workbench drives (start, resume, pause, step, cancel), its progress,
//! the sample in hand, accuracy per epoch and a log, all from the run's one event stream.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Gauge, Paragraph, Wrap};

use crate::adaptation::{Control, Event, Split};
use crate::tui::action::Effect;
use crate::tui::keymap::Cmd;
use crate::tui::popups::{Confirmed, Popup, run_form};
use crate::tui::state::{Pane, Phase, RunView, Score, SlotView, State};
use crate::tui::theme::Theme;
use crate::tui::widgets::{block, short};

pub fn command(state: &mut State, cmd: Cmd) -> Vec<Effect> {
    let active = state.run.active;
    match cmd {
        Cmd::StartRun | Cmd::ResumeRun if active => {
            state.message = "a run is already active".into()
        }
        Cmd::StartRun => state.popup = Some(Popup::RunForm(run_form(&state.default_run))),
        Cmd::ResumeRun => return vec![Effect::LoadUnfinishedRuns],
        Cmd::AllRuns => {
            state.popup = Some(Popup::Runs {
                rows: Vec::new(),
                sel: 0,
                detail: None,
            });
            return vec![Effect::LoadRuns];
        }
        Cmd::PauseResume | Cmd::Step | Cmd::ToBatchEnd | Cmd::ToEpochEnd | Cmd::CancelRun
            if !active =>
        {
            state.message = "no run is active (r starts one)".into()
        }
        Cmd::PauseResume => {
            return vec![Effect::Control(if state.run.phase == Phase::Paused {
                Control::Resume
            } else {
                Control::Pause
            })];
        }
        Cmd::Step => return vec![Effect::Control(Control::Step)],
        Cmd::ToBatchEnd => return vec![Effect::Control(Control::RunToBatchEnd)],
        Cmd::ToEpochEnd => return vec![Effect::Control(Control::RunToEpochEnd)],
        Cmd::CancelRun => {
            state.popup = Some(Popup::Confirm {
                message: "Cancel the run? It can be resumed later (R in the Run pane).".into(),
                action: Confirmed::CancelRun,
            });
        }
        _ => {}
    }
    Vec::new()
}

/// What one event of the run changes in the pane, and the log line it writes.
pub fn event(state: &mut State, event: Event) -> Vec<Effect> {
    let run = &mut state.run;
    let mut refresh = false;
    match &event {
        Event::Started {
            run: id,
            train,
            feedback_mode,
            resumed,
            ..
        } => {
            // A new (or resumed) run starts from a clean view; the log keeps the earlier lines.
            let log = std::mem::take(&mut run.log);
            *run = RunView {
                log,
                ..RunView::default()
            };
            run.active = true;
            run.run = Some(id.clone());
            run.total = *train;
            run.phase = if *resumed {
                Phase::Resumed
            } else {
                Phase::Running
            };
            run.feedback_mode = feedback_mode.to_string();
        }
        Event::SampleStarted { key, question } => {
            let slot = slot(run, key);
            *slot = SlotView {
                key: key.clone(),
                question: question.clone(),
                ..SlotView::default()
            };
        }
        Event::Generated { key, answer, .. } => slot(run, key).answer = answer.clone(),
        Event::Evaluated {
            key,
            correct,
            feedback,
            round,
        } => {
            {
                let slot = slot(run, key);
                slot.verdict = format!("{} — {feedback}", if *correct { "right" } else { "wrong" });
                slot.correct = Some(*correct);
                if *round > 1 {
                    slot.verdict.push_str(&format!(" (attempt {round})"));
                }
            }
            // progress and accuracy move per sample (the batch's end then sets them exactly)
            let mut parts = key.split('/');
            if *round == 1
                && matches!(parts.next(), Some("train" | "online"))
                && let Some(epoch) = parts.next().and_then(|e| e.parse::<u32>().ok())
            {
                if epoch != run.epoch.max(1) && epoch > run.epoch {
                    run.epoch = epoch;
                    run.done = 0;
                    run.so_far = None;
                }
                if run.total == 0 || run.done < run.total {
                    run.done += 1;
                }
                let (c, n) = run.so_far.unwrap_or((0, 0));
                run.so_far = Some((c + u64::from(*correct), n + 1));
            }
        }
        Event::Reflected {
            key, key_insight, ..
        } => {
            // reflected on: the sample is done
            slot(run, key).insight = key_insight.clone();
            if let Some(i) = run.slots.iter().position(|s| &s.key == key) {
                run.last = Some(run.slots.remove(i));
            }
        }
        Event::BatchFinished {
            epoch,
            done,
            correct_so_far,
            seen_so_far,
            ..
        } => {
            // samples not reflected on (evaluation) end with their batch
            if let Some(s) = run.slots.drain(..).next_back() {
                run.last = Some(s);
            }
            run.epoch = *epoch;
            run.done = *done;
            run.so_far = Some((*correct_so_far, *seen_so_far));
        }
        Event::EpochFinished {
            epoch,
            split,
            correct,
            total,
        } => {
            run.accuracy.push(Score {
                epoch: *epoch,
                split: *split,
                after_batch: None,
                accuracy: *correct as f64 / (*total).max(1) as f64,
            });
        }
        Event::Validated {
            step,
            correct,
            total,
            ..
        } => run.accuracy.push(Score {
            epoch: run.epoch.max(1),
            split: Split::Val,
            after_batch: Some(*step),
            accuracy: *correct as f64 / (*total).max(1) as f64,
        }),
        Event::WaitingForApproval { pending } => {
            run.waiting_on = Some(*pending);
            run.phase = Phase::Waiting(*pending);
            refresh = true;
        }
        Event::Proposed { .. } | Event::TagsApplied { .. } => refresh = true,
        Event::Applied { .. } => {
            run.waiting_on = None;
            run.phase = Phase::Running;
            refresh = true;
        }
        Event::Paused => run.phase = Phase::Paused,
        Event::Resumed => run.phase = Phase::Running,
        Event::Finished { status, .. } => {
            run.active = false;
            run.phase = Phase::Ended(*status);
            run.waiting_on = None;
            refresh = true;
        }
        Event::Failed { error } => run.phase = Phase::Failed(error.clone()),
        Event::NotStarted { error } => {
            run.active = false;
            run.phase = Phase::NotStarted(error.clone());
        }
        Event::Warning { .. } | Event::Notice { .. } => {}
    }
    if let Some(line) = log_line(&event) {
        state.log(line);
    }
    if refresh {
        vec![Effect::Refresh]
    } else {
        Vec::new()
    }
}

/// The slot of sample `key`, made when its first event arrives. At most 32 are kept (a row each).
fn slot<'a>(run: &'a mut RunView, key: &str) -> &'a mut SlotView {
    let i = match run.slots.iter().position(|s| s.key == key) {
        Some(i) => i,
        None => {
            if run.slots.len() >= 32 {
                run.slots.remove(0);
            }
            run.slots.push(SlotView {
                key: key.to_string(),
                ..SlotView::default()
            });
            run.slots.len() - 1
        }
    };
    &mut run.slots[i]
}

fn log_line(event: &Event) -> Option<String> {
    Some(match event {
        Event::Started {
            run,
            playbook,
            resumed,
            train,
            ..
        } => format!(
            "{run} {} on '{playbook}' ({train} training samples)",
            if *resumed { "resumed" } else { "started" }
        ),
        Event::SampleStarted { key, .. } => format!("{key} started"),
        Event::Evaluated {
            key,
            correct,
            round,
            ..
        } => format!(
            "{key}: {}{}",
            if *correct { "right" } else { "wrong" },
            if *round > 1 {
                format!(" (attempt {round}, after reflection)")
            } else {
                String::new()
            }
        ),
        Event::Proposed {
            pending: Some(p),
            ops,
            dropped,
            // `#N` is the proposal's number in the queue (3 Queue, `ace queue show N`), not the run's
            // batch (which sample keys carry: split/epoch/batch/sample)
        } => format!("queued proposal #{p}: {ops} ops ({dropped} dropped)"),
        Event::Applied { pending, revision } => format!(
            "proposal #{pending} → {}",
            revision.map_or("nothing applied".into(), |r| format!("revision {r}"))
        ),
        Event::Warning { message } => format!("warning: {message}"),
        Event::Notice { message } => format!("note: {message}"),
        Event::Failed { error } => format!("failed: {error}"),
        Event::NotStarted { error } => format!("the run did not start: {error}"),
        Event::Finished { run, status } => format!("{run} {status}"),
        _ => return None,
    })
}

pub fn render(state: &State, frame: &mut Frame, area: Rect, theme: &Theme) {
    let run = &state.run;
    let [top, gauge, middle, log] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(1),
        Constraint::Min(6),
        Constraint::Length(6),
    ])
    .areas(area);
    let title = match &run.run {
        Some(id) => format!("Run {id} · {} · feedback: {}", run.phase, run.feedback_mode),
        None => "Run · none yet (r starts one, R resumes one)".into(),
    };
    let spend = match run.max_usd {
        Some(max) => format!("${:.4} of ${max:.2} limit", run.cost_usd),
        None => format!("${:.4}", run.cost_usd),
    };
    let head = vec![Line::from(format!(
        "{} · tokens {} · {spend}",
        state.model_label, run.tokens
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
    let [sample, chart] =
        Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)]).areas(middle);
    frame.render_widget(
        Paragraph::new(sample_lines(run, theme))
            .wrap(Wrap { trim: true })
            .block(block(
                format!("Samples · {} in flight", run.slots.len()),
                false,
                theme,
            )),
        sample,
    );
    render_accuracy_chart(run, frame, chart, theme);
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

fn sample_lines(run: &RunView, theme: &Theme) -> Vec<Line<'static>> {
    let mut acc: Vec<String> = run
        .accuracy
        .iter()
        .map(|s| format!("{}: {:.1}%", s.label(), s.accuracy * 100.0))
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
        .filter(|s| s.split == Split::Train)
        .map(|s| {
            ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'][((s.accuracy * 7.0).round() as usize).min(7)]
        })
        .collect();
    let verdict_style = |s: &SlotView| match s.correct {
        Some(true) => theme.added(),
        Some(false) => theme.removed(),
        None => theme.dim(),
    };
    let mut lines = vec![Line::from(vec![
        Span::styled("accuracy: ", theme.dim()),
        Span::raw(if bars.is_empty() {
            acc.join(" · ")
        } else {
            format!("{bars} {}", acc.join(" · "))
        }),
    ])];
    // one row per sample in flight: its own question, answer and verdict
    for s in &run.slots {
        let state = if s.verdict.is_empty() {
            if s.answer.is_empty() {
                "answering".to_string()
            } else {
                format!("answered {}", short(&s.answer, 24))
            }
        } else {
            s.verdict.clone()
        };
        lines.push(Line::from(vec![
            Span::styled(format!("▸ {} ", s.key), theme.dim()),
            Span::raw(format!("{} · ", short(&s.question, 50))),
            Span::styled(short(&state, 60), verdict_style(s)),
        ]));
    }
    // the last finished sample in detail
    if let Some(s) = &run.last {
        lines.push(Line::from(Span::styled(
            format!("last finished: {}", s.key),
            theme.dim(),
        )));
        lines.push(Line::from(vec![
            Span::styled("question: ", theme.dim()),
            Span::raw(short(&s.question, 400)),
        ]));
        lines.push(Line::from(vec![
            Span::styled("answer:   ", theme.dim()),
            Span::raw(short(&s.answer, 200)),
        ]));
        lines.push(Line::from(vec![
            Span::styled("verdict:  ", theme.dim()),
            Span::styled(s.verdict.clone(), verdict_style(s)),
        ]));
        lines.push(Line::from(vec![
            Span::styled("insight:  ", theme.dim()),
            Span::raw(short(&s.insight, 300)),
        ]));
    }
    lines
}

/// Accuracy per epoch, train and validation, as a line chart (0–100%).
fn render_accuracy_chart(run: &RunView, frame: &mut Frame, area: Rect, theme: &Theme) {
    use ratatui::symbols::Marker;
    use ratatui::widgets::{Axis, Chart, Dataset, GraphType};
    let points = |split: Split| -> Vec<(f64, f64)> {
        run.accuracy
            .iter()
            .filter(|s| s.split == split)
            .map(|s| (f64::from(s.epoch), s.accuracy * 100.0))
            .collect()
    };
    let (mut train, val, test) = (
        points(Split::Train),
        points(Split::Val),
        points(Split::Test),
    );
    // online windows are the run's training accuracy
    train.extend(points(Split::Online));
    let block = block("Accuracy by epoch".into(), false, theme);
    if train.is_empty() && val.is_empty() && test.is_empty() {
        frame.render_widget(Paragraph::new("no epoch finished yet").block(block), area);
        return;
    }
    // the best validation (the playbook a test runs on), marked on its own
    let best: Vec<(f64, f64)> = val
        .iter()
        .copied()
        .fold(None, |b: Option<(f64, f64)>, p| match b {
            Some(b) if b.1 >= p.1 => Some(b),
            _ => Some(p),
        })
        .into_iter()
        .collect();
    let epochs = train
        .iter()
        .chain(&val)
        .chain(&test)
        .map(|p| p.0)
        .fold(1.0, f64::max);
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
        Dataset::default()
            .name("test")
            .marker(Marker::Block)
            .graph_type(GraphType::Scatter)
            .style(theme.removed())
            .data(&test),
        Dataset::default()
            .name("best val")
            .marker(Marker::Dot)
            .graph_type(GraphType::Scatter)
            .style(theme.selected())
            .data(&best),
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
