//! `update(&mut State, Action) -> Vec<Effect>`: every key and every background report, no I/O.
//! One command list ([`COMMANDS`]) feeds the footer hints and the `?` help, so they cannot drift.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui_textarea::{TextArea, WrapMode};

use super::state::{
    Action, Confirmed, Effect, FormField, InputFor, Pane, Popup, RunForm, RunView, Sort, State,
};
use crate::adaptation::{Control, Event};
use crate::approval::Decision;
use crate::delta::{AddOp, DeltaBatch, DeltaOp, Source, UpdateOp};

/// A key binding as shown to people.
pub struct Command {
    pub keys: &'static str,
    pub what: &'static str,
    /// Panes where it applies; empty = everywhere.
    pub panes: &'static [Pane],
}

const PLAYBOOK: &[Pane] = &[Pane::Sections, Pane::Bullets];
const SECTIONS: &[Pane] = &[Pane::Sections];
const BULLETS: &[Pane] = &[Pane::Bullets];
const RUN: &[Pane] = &[Pane::Run];
const QUEUE: &[Pane] = &[Pane::Queue];
const REVS: &[Pane] = &[Pane::Revisions];

pub const COMMANDS: &[Command] = &[
    Command {
        keys: "?",
        what: "help",
        panes: &[],
    },
    Command {
        keys: "q",
        what: "quit",
        panes: &[],
    },
    Command {
        keys: "Tab",
        what: "next pane",
        panes: &[],
    },
    Command {
        keys: "1-4",
        what: "playbook/run/queue/revisions",
        panes: &[],
    },
    Command {
        keys: "P",
        what: "switch playbook",
        panes: &[],
    },
    Command {
        keys: "j/k",
        what: "move",
        panes: &[],
    },
    Command {
        keys: "g/G",
        what: "top/bottom",
        panes: &[],
    },
    Command {
        keys: "e",
        what: "edit",
        panes: BULLETS,
    },
    Command {
        keys: "m",
        what: "move to section",
        panes: BULLETS,
    },
    Command {
        keys: "d",
        what: "remove",
        panes: BULLETS,
    },
    Command {
        keys: "e",
        what: "rename section",
        panes: SECTIONS,
    },
    Command {
        keys: "J/K",
        what: "move section",
        panes: SECTIONS,
    },
    Command {
        keys: "d",
        what: "remove section",
        panes: SECTIONS,
    },
    Command {
        keys: "/",
        what: "filter",
        panes: PLAYBOOK,
    },
    Command {
        keys: "o",
        what: "sort",
        panes: PLAYBOOK,
    },
    Command {
        keys: "Enter",
        what: "details",
        panes: PLAYBOOK,
    },
    Command {
        keys: "a",
        what: "add bullet",
        panes: PLAYBOOK,
    },
    Command {
        keys: "S",
        what: "add section",
        panes: PLAYBOOK,
    },
    Command {
        keys: "r",
        what: "start run",
        panes: RUN,
    },
    Command {
        keys: "R",
        what: "resume run",
        panes: RUN,
    },
    Command {
        keys: "p",
        what: "pause/resume",
        panes: RUN,
    },
    Command {
        keys: "space",
        what: "step sample",
        panes: RUN,
    },
    Command {
        keys: "b",
        what: "to batch end",
        panes: RUN,
    },
    Command {
        keys: "E",
        what: "to epoch end",
        panes: RUN,
    },
    Command {
        keys: "x",
        what: "cancel run",
        panes: RUN,
    },
    Command {
        keys: "y",
        what: "approve",
        panes: QUEUE,
    },
    Command {
        keys: "n",
        what: "reject",
        panes: QUEUE,
    },
    Command {
        keys: "e",
        what: "edit",
        panes: QUEUE,
    },
    Command {
        keys: "s",
        what: "skip",
        panes: QUEUE,
    },
    Command {
        keys: "A/R",
        what: "approve/reject all",
        panes: QUEUE,
    },
    Command {
        keys: "u",
        what: "undo",
        panes: QUEUE,
    },
    Command {
        keys: "]/[",
        what: "next/prev batch",
        panes: QUEUE,
    },
    Command {
        keys: "Enter",
        what: "diff",
        panes: REVS,
    },
    Command {
        keys: "r",
        what: "revert",
        panes: REVS,
    },
    Command {
        keys: "v",
        what: "view playbook as of it",
        panes: REVS,
    },
];

/// Commands that apply in a pane, in list order.
pub fn commands_for(pane: Pane) -> impl Iterator<Item = &'static Command> {
    COMMANDS
        .iter()
        .filter(move |c| c.panes.is_empty() || c.panes.contains(&pane))
}

/// A text editor that wraps long lines on screen (bullets run to hundreds of characters).
fn wrapping_editor(lines: Vec<String>) -> TextArea<'static> {
    let mut editor = TextArea::new(lines);
    editor.set_wrap_mode(WrapMode::WordOrGlyph);
    editor
}

fn input(title: &str, purpose: InputFor, text: &str) -> Popup {
    let mut editor = wrapping_editor(text.split('\n').map(str::to_string).collect());
    editor.move_cursor(ratatui_textarea::CursorMove::Bottom);
    editor.move_cursor(ratatui_textarea::CursorMove::End);
    Popup::Input {
        purpose,
        title: title.to_string(),
        editor,
    }
}

/// The selection of a pick list after a j/k/g/G (or arrow, Home, End) key.
fn picked(sel: usize, last: usize, code: KeyCode) -> usize {
    match code {
        KeyCode::Char('j') | KeyCode::Down => (sel + 1).min(last),
        KeyCode::Char('k') | KeyCode::Up => sel.saturating_sub(1),
        KeyCode::Char('g') | KeyCode::Home => 0,
        KeyCode::Char('G') | KeyCode::End => last,
        _ => sel,
    }
}

fn step(sel: usize, len: usize, delta: isize) -> usize {
    if len == 0 {
        return 0;
    }
    (sel as isize + delta).clamp(0, len as isize - 1) as usize
}

pub fn update(state: &mut State, action: Action) -> Vec<Effect> {
    let mut effects = handle(state, action);
    effects.extend(follow_batch(state));
    effects
}

/// A proposal is shown as a diff against its own playbook: while the Queue pane has a batch of
/// another playbook selected, that playbook is shown.
fn follow_batch(state: &mut State) -> Vec<Effect> {
    if state.focus != Pane::Queue || state.popup.is_some() {
        return Vec::new();
    }
    let Some(name) = state.selected_batch().map(|b| b.playbook.clone()) else {
        return Vec::new();
    };
    if name == state.playbook.name
        || state.opening.as_ref() == Some(&name)
        || !state.playbooks.contains(&name)
    {
        return Vec::new();
    }
    state.message = format!("showing playbook '{name}', which this proposal is for");
    open_playbook(state, name)
}

fn open_playbook(state: &mut State, name: String) -> Vec<Effect> {
    state.viewing_at = None;
    state.story = None;
    state.default_run.playbook = name.clone();
    state.opening = Some(name.clone());
    vec![Effect::OpenPlaybook(name)]
}

fn handle(state: &mut State, action: Action) -> Vec<Effect> {
    match action {
        Action::Key(key) if key.kind == KeyEventKind::Press => key_press(state, key),
        Action::Key(_) | Action::Tick => Vec::new(),
        Action::ScrollUp => move_selection(state, -3),
        Action::ScrollDown => move_selection(state, 3),
        Action::Loaded(snapshot) => {
            state.opening = None;
            // Selections follow their item (a new revision or proposal on top must not shift them).
            let revision = state.revisions.get(state.revision_sel).map(|r| r.id);
            let batch = state.queue.get(state.queue_sel).map(|b| b.id);
            let section = state
                .follow_section
                .take()
                .or_else(|| state.section_name().map(str::to_string));
            state.playbooks = snapshot.playbooks;
            state.playbook = snapshot.playbook;
            state.queue = snapshot.queue;
            state.revisions = snapshot.revisions;
            if state.viewing_at.is_none()
                && let Some(i) = section
                    .and_then(|name| state.playbook.sections.iter().position(|s| s.name == name))
            {
                state.section = i;
            }
            state.section = state
                .section
                .min(state.playbook.sections.len().saturating_sub(1));
            // A batch still pending keeps the selection; once decided, the selection moves on to
            // the first batch still waiting (pending ones are listed first).
            match batch.and_then(|id| state.queue.iter().position(|b| b.id == id)) {
                Some(i) if state.queue[i].is_pending() => state.queue_sel = i,
                Some(_) if state.queue.first().is_some_and(|b| b.is_pending()) => {
                    state.queue_sel = 0;
                    state.op_sel = 0;
                }
                Some(i) => state.queue_sel = i,
                None => {}
            }
            state.queue_sel = state.queue_sel.min(state.queue.len().saturating_sub(1));
            if let Some(i) = revision.and_then(|id| state.revisions.iter().position(|r| r.id == id))
            {
                state.revision_sel = i;
            }
            let ops = state.selected_batch().map_or(0, |b| b.ops.len());
            state.op_sel = state.op_sel.min(ops.saturating_sub(1));
            state.revision_sel = state
                .revision_sel
                .min(state.revisions.len().saturating_sub(1));
            state.recount();
            state.refilter();
            Vec::new()
        }
        Action::StoryLoaded(story) => {
            if state
                .selected_bullet()
                .is_some_and(|b| b.id == story.bullet_id)
            {
                state.story = Some(*story);
            }
            Vec::new()
        }
        Action::RevisionLoaded(detail) => {
            state.revision_detail = Some(*detail);
            Vec::new()
        }
        Action::PlaybookAt(revision, playbook) => {
            state.viewing_at = Some((revision, *playbook));
            state.message =
                format!("viewing the playbook as of revision {revision} (v again to return)");
            state.focus = Pane::Bullets;
            state.recount();
            state.refilter();
            Vec::new()
        }
        Action::Run(event) => run_event(state, *event),
        Action::Ledger { tokens, cost_usd } => {
            state.run.tokens = tokens;
            state.run.cost_usd = cost_usd;
            Vec::new()
        }
        Action::UnfinishedRuns(runs) => {
            if runs.is_empty() {
                state.message = "every run has finished; nothing to resume (r starts one)".into();
            } else if !state.run.active {
                state.popup = Some(Popup::ResumeRun { runs, sel: 0 });
                state.message =
                    "a resumed run keeps its stored settings and goes on from its last finished batch"
                        .into();
            }
            Vec::new()
        }
        Action::Decided {
            batch,
            revision,
            closed,
        } => {
            if let Some(r) = revision {
                state.last_applied = Some(r);
            }
            state.message = match (closed, revision) {
                (true, Some(r)) => format!("batch {batch} applied as revision {r} (u to undo)"),
                (true, None) => format!("batch {batch} closed; nothing approved"),
                (false, _) => format!("decision recorded on batch {batch}"),
            };
            let mut effects = vec![Effect::Refresh];
            // The run waiting on this batch goes on now; say so at once rather than showing a
            // stale "waiting" until the loop reports back.
            if closed && state.run.active && state.run.waiting_on == Some(batch) {
                state.run.waiting_on = None;
                state.run.status = format!("batch {batch} decided; resuming");
                effects.push(Effect::Control(Control::Wake));
            }
            effects
        }
        Action::Reverted { revision, new } => {
            if state.last_applied == Some(revision) {
                state.last_applied = None;
            }
            state.message = format!("revision {revision} reverted by revision {new}");
            vec![Effect::Refresh]
        }
        Action::RevertConflict { revision, detail } => {
            let detail = detail.trim_end_matches("; use --force to revert anyway");
            state.popup = Some(Popup::Confirm {
                message: format!(
                    "Revision {revision} cannot be reverted cleanly: {detail}. Force it? Content comes back; later counter increments stay."
                ),
                action: Confirmed::Revert {
                    revision,
                    force: true,
                },
            });
            Vec::new()
        }
        Action::Failed(e) => {
            state.message = format!("error: {e}");
            Vec::new()
        }
        Action::Info(m) => {
            state.message = m;
            Vec::new()
        }
    }
}

fn run_event(state: &mut State, event: Event) -> Vec<Effect> {
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
            run.status = if *resumed {
                "resumed".into()
            } else {
                "running".into()
            };
            run.feedback_mode = feedback_mode.to_string();
        }
        Event::SampleStarted { question, .. } => {
            run.question = question.clone();
            run.answer.clear();
            run.verdict.clear();
        }
        Event::Generated { answer, .. } => run.answer = answer.clone(),
        Event::Evaluated {
            correct,
            feedback,
            round,
            ..
        } => {
            run.verdict = format!("{} — {feedback}", if *correct { "right" } else { "wrong" });
            if *round > 1 {
                run.verdict.push_str(&format!(" (attempt {round})"));
            }
        }
        Event::Reflected { key_insight, .. } => run.insight = key_insight.clone(),
        Event::BatchFinished {
            epoch,
            done,
            correct_so_far,
            seen_so_far,
            ..
        } => {
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
            run.accuracy.push((
                *epoch,
                split.to_string(),
                *correct as f64 / (*total).max(1) as f64,
            ));
        }
        Event::Validated {
            step,
            correct,
            total,
            ..
        } => run.accuracy.push((
            run.epoch.max(1),
            format!("val@{step}"),
            *correct as f64 / (*total).max(1) as f64,
        )),
        Event::WaitingForApproval { pending } => {
            run.waiting_on = Some(*pending);
            run.status = format!("waiting for decisions on batch {pending}");
            refresh = true;
        }
        Event::Proposed { .. } | Event::TagsApplied { .. } => refresh = true,
        Event::Applied { .. } => {
            run.waiting_on = None;
            run.status = "running".into();
            refresh = true;
        }
        Event::Paused => run.status = "paused".into(),
        Event::Resumed => run.status = "running".into(),
        Event::Finished { status, .. } => {
            run.active = false;
            run.status = status.to_string();
            run.waiting_on = None;
            refresh = true;
        }
        Event::Failed { error } => run.status = format!("failed: {error}"),
        Event::NotStarted { error } => {
            run.active = false;
            run.status = format!("not started: {error}");
        }
        Event::Warning { .. } => {}
    }
    let line = match &event {
        Event::Started {
            run,
            playbook,
            resumed,
            train,
            ..
        } => Some(format!(
            "{run} {} on '{playbook}' ({train} training samples)",
            if *resumed { "resumed" } else { "started" }
        )),
        Event::SampleStarted { key, .. } => Some(format!("{key} started")),
        Event::Evaluated {
            key,
            correct,
            round,
            ..
        } => Some(format!(
            "{key}: {}{}",
            if *correct { "right" } else { "wrong" },
            if *round > 1 {
                format!(" (attempt {round}, after reflection)")
            } else {
                String::new()
            }
        )),
        Event::Proposed {
            pending: Some(p),
            ops,
            dropped,
        } => Some(format!("proposed batch {p}: {ops} ops ({dropped} dropped)")),
        Event::Applied { pending, revision } => Some(format!(
            "batch {pending} → {}",
            revision.map_or("nothing applied".into(), |r| format!("revision {r}"))
        )),
        Event::Warning { message } => Some(format!("warning: {message}")),
        Event::Failed { error } => Some(format!("failed: {error}")),
        Event::NotStarted { error } => Some(format!("the run did not start: {error}")),
        Event::Finished { run, status } => Some(format!("{run} {status}")),
        _ => None,
    };
    if let Some(line) = line {
        state.log(line);
    }
    if refresh {
        vec![Effect::Refresh]
    } else {
        Vec::new()
    }
}

/// With the detail view open, the selected bullet's story is loaded (origin, counters, runs).
fn story_effect(state: &mut State) -> Vec<Effect> {
    state.story = None;
    match state.selected_bullet() {
        Some(b) if state.show_detail && state.viewing_at.is_none() => {
            vec![Effect::LoadStory(b.id.clone())]
        }
        _ => Vec::new(),
    }
}

fn move_selection(state: &mut State, delta: isize) -> Vec<Effect> {
    match state.focus {
        Pane::Sections => {
            state.section = step(state.section, state.shown().sections.len(), delta);
            state.bullet = 0;
            state.refilter();
        }
        Pane::Bullets => {
            state.bullet = step(state.bullet, state.visible.len(), delta);
            return story_effect(state);
        }
        Pane::Queue => {
            let len = state.selected_batch().map_or(0, |b| b.ops.len());
            state.op_sel = step(state.op_sel, len, delta);
        }
        Pane::Revisions => {
            state.revision_sel = step(state.revision_sel, state.revisions.len(), delta);
            state.revision_detail = None;
            return state
                .revisions
                .get(state.revision_sel)
                .map(|r| vec![Effect::LoadRevision(r.id)])
                .unwrap_or_default();
        }
        Pane::Run => {}
    }
    Vec::new()
}

fn key_press(state: &mut State, key: KeyEvent) -> Vec<Effect> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && key.code == KeyCode::Char('c') && state.popup.is_none() {
        return ask_quit(state);
    }
    if state.popup.is_some() {
        return popup_key(state, key);
    }
    state.message.clear();
    match key.code {
        KeyCode::Char('?') => state.popup = Some(Popup::Help { scroll: 0 }),
        KeyCode::Char('q') => return ask_quit(state),
        KeyCode::Tab => state.focus = next_pane(state.focus, 1),
        KeyCode::BackTab => state.focus = next_pane(state.focus, -1),
        KeyCode::Char('P') if state.playbooks.len() > 1 => {
            let sel = state
                .playbooks
                .iter()
                .position(|p| *p == state.playbook.name)
                .unwrap_or(0);
            state.popup = Some(Popup::PickPlaybook {
                names: state.playbooks.clone(),
                sel,
            });
        }
        KeyCode::Char('P') => {
            state.message =
                "this database has one playbook (`ace playbook create` or import adds more)".into()
        }
        KeyCode::Char('1') => state.focus = Pane::Sections,
        KeyCode::Char('2') => state.focus = Pane::Run,
        KeyCode::Char('3') => state.focus = Pane::Queue,
        KeyCode::Char('4') => {
            state.focus = Pane::Revisions;
            return state
                .revisions
                .get(state.revision_sel)
                .map(|r| vec![Effect::LoadRevision(r.id)])
                .unwrap_or_default();
        }
        KeyCode::Char('j') | KeyCode::Down => return move_selection(state, 1),
        KeyCode::Char('k') | KeyCode::Up => return move_selection(state, -1),
        KeyCode::PageDown => return move_selection(state, 20),
        KeyCode::PageUp => return move_selection(state, -20),
        KeyCode::Char('g') | KeyCode::Home => return move_selection(state, -1_000_000),
        KeyCode::Char('G') | KeyCode::End => return move_selection(state, 1_000_000),
        KeyCode::Left | KeyCode::Char('h') if state.focus == Pane::Bullets => {
            state.focus = Pane::Sections
        }
        KeyCode::Right | KeyCode::Char('l') if state.focus == Pane::Sections => {
            state.focus = Pane::Bullets
        }
        KeyCode::Esc => {
            if state.viewing_at.take().is_some() {
                state.recount();
                state.refilter();
                state.message = "back to the current playbook".into();
            } else if !state.filter.is_empty() {
                state.filter.clear();
                state.refilter();
            }
        }
        _ => {
            return match state.focus {
                Pane::Sections | Pane::Bullets => playbook_key(state, key),
                Pane::Run => run_key(state, key),
                Pane::Queue => queue_key(state, key),
                Pane::Revisions => revisions_key(state, key),
            };
        }
    }
    Vec::new()
}

fn next_pane(p: Pane, delta: isize) -> Pane {
    let i = Pane::ORDER.iter().position(|x| *x == p).unwrap_or(0) as isize;
    Pane::ORDER[(i + delta).rem_euclid(Pane::ORDER.len() as isize) as usize]
}

fn ask_quit(state: &mut State) -> Vec<Effect> {
    if state.run.active {
        state.popup = Some(Popup::Confirm { message: "A run is active. Quit anyway? The run stops; R in the Run pane (or `ace train --resume`) resumes it later.".into(), action: Confirmed::Quit });
    } else {
        state.quit = true;
    }
    Vec::new()
}

fn human_batch(id: &str, reason: String, ops: Vec<DeltaOp>) -> DeltaBatch {
    let mut b = DeltaBatch::new(id, Source::Human, ops).with_reason(reason);
    b.author = std::env::var("USER").ok().or(Some("human".into()));
    b
}

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("tui-{tag}-{nanos:x}")
}

fn playbook_key(state: &mut State, key: KeyEvent) -> Vec<Effect> {
    if state.viewing_at.is_some()
        && matches!(
            key.code,
            KeyCode::Char('a' | 'e' | 'm' | 'd' | 'S' | 'J' | 'K')
        )
    {
        state.message =
            "viewing a past revision; Esc returns to the current playbook to edit".into();
        return Vec::new();
    }
    match key.code {
        KeyCode::Char('/') => {
            state.popup = Some(input(
                "filter bullets (all sections)",
                InputFor::Filter,
                &state.filter,
            ))
        }
        KeyCode::Char('o') => {
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
        KeyCode::Enter => {
            state.show_detail = !state.show_detail;
            state.focus = Pane::Bullets;
            return story_effect(state);
        }
        KeyCode::Char('a') => {
            if let Some(section) = state.section_name().map(str::to_string) {
                state.popup = Some(input(
                    &format!("new bullet in '{section}'"),
                    InputFor::AddBullet { section },
                    "",
                ));
            }
        }
        KeyCode::Char('e') if state.focus == Pane::Sections => {
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
        KeyCode::Char('d') if state.focus == Pane::Sections => {
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
        KeyCode::Char(c @ ('J' | 'K')) if state.focus == Pane::Sections => {
            let len = state.playbook.sections.len();
            let from = state.section;
            let to = if c == 'J' {
                from + 1
            } else {
                from.wrapping_sub(1)
            };
            if let (Some(name), true) = (state.section_name().map(str::to_string), to < len) {
                state.follow_section = Some(name.clone());
                return vec![Effect::Apply(human_batch(
                    &unique("section-move"),
                    format!("moved section {name} by hand"),
                    vec![DeltaOp::MoveSection {
                        section: name,
                        index: to,
                    }],
                ))];
            }
        }
        KeyCode::Char('e') => {
            if let Some(b) = state.selected_bullet() {
                let (id, content) = (b.id.clone(), b.content.clone());
                state.popup = Some(input(
                    &format!("edit [{id}]"),
                    InputFor::EditBullet { id },
                    &content,
                ));
            }
        }
        KeyCode::Char('m') => {
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
        KeyCode::Char('d') => {
            if let Some(b) = state.selected_bullet() {
                let id = b.id.clone();
                state.popup = Some(Popup::Confirm {
                    message: format!("Remove [{id}]? (a revision; revertible)"),
                    action: Confirmed::RemoveBullet(id),
                });
            }
        }
        KeyCode::Char('S') => {
            state.popup = Some(input(
                "new section name",
                InputFor::AddBullet {
                    section: String::new(),
                },
                "",
            ))
        }
        _ => {}
    }
    Vec::new()
}

fn run_key(state: &mut State, key: KeyEvent) -> Vec<Effect> {
    let active = state.run.active;
    match key.code {
        KeyCode::Char('r') if !active => {
            state.popup = Some(Popup::RunForm(run_form(&state.default_run)));
        }
        KeyCode::Char('R') if !active => return vec![Effect::LoadUnfinishedRuns],
        KeyCode::Char('r' | 'R') => state.message = "a run is already active".into(),
        KeyCode::Char('p') if active => {
            return vec![Effect::Control(if state.run.status == "paused" {
                Control::Resume
            } else {
                Control::Pause
            })];
        }
        KeyCode::Char(' ') if active => return vec![Effect::Control(Control::Step)],
        KeyCode::Char('b') if active => return vec![Effect::Control(Control::RunToBatchEnd)],
        KeyCode::Char('E') if active => return vec![Effect::Control(Control::RunToEpochEnd)],
        KeyCode::Char('x') if active => {
            state.popup = Some(Popup::Confirm {
                message: "Cancel the run? It can be resumed later (R in the Run pane).".into(),
                action: Confirmed::CancelRun,
            });
        }
        KeyCode::Char('p' | ' ' | 'b' | 'E' | 'x') => {
            state.message = "no run is active (r starts one)".into()
        }
        _ => {}
    }
    Vec::new()
}

fn queue_key(state: &mut State, key: KeyEvent) -> Vec<Effect> {
    let Some(batch) = state.selected_batch() else {
        if key.code == KeyCode::Char('u') {
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
        .is_some_and(|o| o.status == crate::approval::OpStatus::Pending);
    match key.code {
        KeyCode::Char('y') if pending => {
            return vec![Effect::Decide {
                batch: id,
                decisions: vec![(op, Decision::Approve)],
            }];
        }
        KeyCode::Char('n') if pending => {
            state.popup = Some(input(
                "reason for rejecting (optional, Enter to reject)",
                InputFor::RejectReason { batch: id, op },
                "",
            ));
        }
        KeyCode::Char('e') if pending => {
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
        KeyCode::Char('y' | 'n' | 'e') => state.message = "this op is already decided".into(),
        KeyCode::Char('s') => state.op_sel = (op + 1).min(len.saturating_sub(1)),
        KeyCode::Char('A') | KeyCode::Char('R') => {
            let approve = key.code == KeyCode::Char('A');
            let left = batch
                .ops
                .iter()
                .filter(|o| o.status == crate::approval::OpStatus::Pending)
                .count();
            state.popup = Some(Popup::Confirm {
                message: format!(
                    "{} all {left} undecided ops of batch {id}?",
                    if approve { "Approve" } else { "Reject" }
                ),
                action: Confirmed::DecideAll { batch: id, approve },
            });
        }
        KeyCode::Char('u') => return undo(state),
        KeyCode::Char(']') => {
            state.queue_sel = step(state.queue_sel, state.queue.len(), 1);
            state.op_sel = 0;
        }
        KeyCode::Char('[') => {
            state.queue_sel = step(state.queue_sel, state.queue.len(), -1);
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

fn revisions_key(state: &mut State, key: KeyEvent) -> Vec<Effect> {
    let Some(rev) = state.revisions.get(state.revision_sel) else {
        return Vec::new();
    };
    let id = rev.id;
    match key.code {
        KeyCode::Enter => return vec![Effect::LoadRevision(id)],
        KeyCode::Char('r') => {
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
        KeyCode::Char('v') => {
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

fn popup_key(state: &mut State, key: KeyEvent) -> Vec<Effect> {
    let Some(popup) = state.popup.take() else {
        return Vec::new();
    };
    match popup {
        Popup::Help { scroll } => {
            let last = COMMANDS.len().saturating_sub(1) as u16;
            let scroll = match key.code {
                KeyCode::Esc | KeyCode::Char('?' | 'q') | KeyCode::Enter => return Vec::new(),
                KeyCode::Char('j') | KeyCode::Down => scroll.saturating_add(1),
                KeyCode::Char('k') | KeyCode::Up => scroll.saturating_sub(1),
                KeyCode::PageDown | KeyCode::Char(' ') => scroll.saturating_add(10),
                KeyCode::PageUp => scroll.saturating_sub(10),
                KeyCode::Char('g') | KeyCode::Home => 0,
                KeyCode::Char('G') | KeyCode::End => last,
                _ => scroll,
            };
            state.popup = Some(Popup::Help {
                scroll: scroll.min(last),
            });
            Vec::new()
        }
        Popup::Confirm { message, action } => match key.code {
            KeyCode::Char('y') | KeyCode::Enter => confirmed(state, action),
            KeyCode::Char('n') | KeyCode::Esc => Vec::new(),
            _ => {
                state.popup = Some(Popup::Confirm { message, action });
                Vec::new()
            }
        },
        Popup::EditOp {
            batch,
            op,
            mut editor,
        } => {
            let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
            match key.code {
                KeyCode::Esc => Vec::new(),
                KeyCode::Char('s') if ctrl => {
                    match serde_json::from_str::<DeltaOp>(&editor.lines().join("\n")) {
                        Ok(edited) => vec![Effect::Decide {
                            batch,
                            decisions: vec![(op, Decision::Edit(edited))],
                        }],
                        Err(e) => {
                            state.message = format!("not a valid op: {e}");
                            state.popup = Some(Popup::EditOp { batch, op, editor });
                            Vec::new()
                        }
                    }
                }
                _ => {
                    editor.input(key);
                    state.popup = Some(Popup::EditOp { batch, op, editor });
                    Vec::new()
                }
            }
        }
        Popup::RunForm(form) => form_key(state, form, key),
        Popup::MoveTo {
            bullet,
            sections,
            sel,
        } => {
            let last = sections.len().saturating_sub(1);
            let sel = match key.code {
                KeyCode::Esc => return Vec::new(),
                KeyCode::Enter => {
                    let section = sections[sel].clone();
                    return vec![Effect::Apply(human_batch(
                        &unique("move"),
                        format!("moved {bullet} to {section} by hand"),
                        vec![DeltaOp::Update(UpdateOp {
                            bullet_id: bullet,
                            content: None,
                            section: Some(section),
                            metadata: None,
                        })],
                    ))];
                }
                code => picked(sel, last, code),
            };
            state.popup = Some(Popup::MoveTo {
                bullet,
                sections,
                sel,
            });
            Vec::new()
        }
        Popup::PickPlaybook { names, sel } => match key.code {
            KeyCode::Esc => Vec::new(),
            KeyCode::Enter => {
                let name = names[sel].clone();
                // The queue always shows the selected proposal's playbook: a playbook picked there
                // is shown in the Playbook pane.
                if state.focus == Pane::Queue {
                    state.focus = Pane::Sections;
                }
                if name == state.playbook.name {
                    return Vec::new();
                }
                state.message = format!("showing playbook '{name}'");
                open_playbook(state, name)
            }
            code => {
                let sel = picked(sel, names.len().saturating_sub(1), code);
                state.popup = Some(Popup::PickPlaybook { names, sel });
                Vec::new()
            }
        },
        Popup::ResumeRun { runs, sel } => match key.code {
            KeyCode::Esc => Vec::new(),
            KeyCode::Enter if runs[sel].live_elsewhere => {
                state.message = format!(
                    "{} is being run by another process right now; its proposals are in the queue (3)",
                    runs[sel].run.id
                );
                state.popup = Some(Popup::ResumeRun { runs, sel });
                Vec::new()
            }
            KeyCode::Enter => {
                let run = &runs[sel].run;
                state.message = format!("resuming {} on '{}'", run.id, run.playbook);
                vec![Effect::ResumeRun {
                    run: run.id.clone(),
                    playbook: run.playbook.clone(),
                }]
            }
            code => {
                let sel = picked(sel, runs.len().saturating_sub(1), code);
                state.popup = Some(Popup::ResumeRun { runs, sel });
                Vec::new()
            }
        },
        Popup::Input {
            purpose,
            title,
            mut editor,
        } => match key.code {
            KeyCode::Esc => Vec::new(),
            KeyCode::Enter if !key.modifiers.contains(KeyModifiers::ALT) => {
                let joint = if purpose.multiline() { "\n" } else { " " };
                submit(
                    state,
                    purpose,
                    editor.lines().join(joint).trim().to_string(),
                )
            }
            _ => {
                let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
                // Alt-Enter or Ctrl-j: a line break, in bullet content only
                if key.code == KeyCode::Enter || (ctrl && key.code == KeyCode::Char('j')) {
                    if purpose.multiline() {
                        editor.insert_newline();
                    }
                } else if key.code == KeyCode::Char('u') && ctrl {
                    // clears the line, as in a shell
                    editor = wrapping_editor(Vec::new());
                } else {
                    editor.input(key);
                }
                if purpose == InputFor::Filter {
                    state.filter = editor.lines().join(" ");
                    state.bullet = 0;
                    state.refilter();
                }
                state.popup = Some(Popup::Input {
                    purpose,
                    title,
                    editor,
                });
                Vec::new()
            }
        },
    }
}

fn confirmed(state: &mut State, action: Confirmed) -> Vec<Effect> {
    match action {
        Confirmed::Quit => {
            state.quit = true;
            vec![Effect::Control(Control::Cancel)]
        }
        Confirmed::Revert { revision, force } => vec![Effect::Revert { revision, force }],
        Confirmed::DecideAll { batch, approve } => vec![Effect::DecideAll { batch, approve }],
        Confirmed::RemoveBullet(id) => vec![Effect::Apply(human_batch(
            &unique("remove"),
            format!("removed {id} by hand"),
            vec![DeltaOp::Remove { bullet_id: id }],
        ))],
        Confirmed::RemoveSection(section) => vec![Effect::Apply(human_batch(
            &unique("section-remove"),
            format!("removed section {section} by hand"),
            vec![DeltaOp::RemoveSection { section }],
        ))],
        Confirmed::CancelRun => vec![Effect::Control(Control::Cancel)],
    }
}

fn submit(state: &mut State, purpose: InputFor, text: String) -> Vec<Effect> {
    match purpose {
        InputFor::Filter => {
            state.filter = text;
            state.refilter();
            Vec::new()
        }
        InputFor::RejectReason { batch, op } => {
            vec![Effect::Decide {
                batch,
                decisions: vec![(
                    op,
                    Decision::Reject {
                        reason: (!text.is_empty()).then_some(text),
                    },
                )],
            }]
        }
        _ if text.is_empty() => {
            state.message = "nothing entered".into();
            Vec::new()
        }
        InputFor::AddBullet { section } if section.is_empty() => {
            vec![Effect::Apply(human_batch(
                &unique("section"),
                format!("added section {text} by hand"),
                vec![DeltaOp::AddSection {
                    section: text,
                    slug: None,
                }],
            ))]
        }
        InputFor::RenameSection { section } if section == text => {
            state.message = "the name is unchanged".into();
            Vec::new()
        }
        InputFor::RenameSection { section } => {
            state.follow_section = Some(text.clone());
            vec![Effect::Apply(human_batch(
                &unique("section-rename"),
                format!("renamed section {section} by hand"),
                vec![DeltaOp::RenameSection {
                    section,
                    new_name: text,
                }],
            ))]
        }
        InputFor::AddBullet { section } => {
            vec![Effect::Apply(human_batch(
                &unique("add"),
                "added by hand".into(),
                vec![DeltaOp::Add(AddOp::new(section, text))],
            ))]
        }
        InputFor::EditBullet { id } => vec![Effect::Apply(human_batch(
            &unique("edit"),
            "edited by hand".into(),
            vec![DeltaOp::Update(UpdateOp {
                bullet_id: id,
                content: Some(text),
                section: None,
                metadata: None,
            })],
        ))],
    }
}

/// The run form, filled with `c`.
pub fn run_form(c: &crate::adaptation::RunConfig) -> RunForm {
    let approve = match c.approve {
        crate::adaptation::ApproveMode::Wait => "wait",
        crate::adaptation::ApproveMode::Auto => "auto",
        crate::adaptation::ApproveMode::Queue => "queue",
    };
    let path = |p: &Option<std::path::PathBuf>| {
        p.as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };
    let field = |key, label, hint, value: String| {
        let mut editor = TextArea::new(vec![value]);
        editor.move_cursor(ratatui_textarea::CursorMove::End);
        FormField {
            key,
            label,
            hint,
            editor,
        }
    };
    RunForm {
        fields: vec![
            field(
                "playbook",
                "playbook",
                "learns into this playbook (created if new)",
                c.playbook.clone(),
            ),
            field(
                "mode",
                "mode",
                "offline (epochs) | online (windows of batch size: answer, then learn)",
                match c.kind {
                    crate::adaptation::RunKind::Offline => "offline",
                    crate::adaptation::RunKind::Online => "online",
                }
                .to_string(),
            ),
            field(
                "dataset",
                "dataset",
                "JSONL: {context, target} or {question, context, ground_truth}",
                c.dataset.display().to_string(),
            ),
            field("val", "validation", "optional JSONL", path(&c.val)),
            field("test", "test", "optional JSONL", path(&c.test)),
            field(
                "env",
                "environment",
                "exact | numeric | contains | regex:PATTERN | json | cmd:COMMAND",
                c.env.to_string(),
            ),
            field(
                "epochs",
                "epochs",
                "passes over the dataset",
                c.epochs.to_string(),
            ),
            field(
                "batch",
                "batch size",
                "samples per curator call (1 = the paper)",
                c.batch_size.to_string(),
            ),
            field(
                "concurrency",
                "concurrency",
                "model calls at once within a batch",
                c.concurrency.to_string(),
            ),
            field(
                "approve",
                "approve",
                "wait (pause for decisions) | queue (go on) | auto (apply all)",
                approve.to_string(),
            ),
        ],
        focus: 2,
        error: None,
    }
}

fn form_key(state: &mut State, mut form: RunForm, key: KeyEvent) -> Vec<Effect> {
    let n = form.fields.len();
    match key.code {
        KeyCode::Esc => return Vec::new(),
        KeyCode::Tab | KeyCode::Down => form.focus = (form.focus + 1) % n,
        KeyCode::BackTab | KeyCode::Up => form.focus = (form.focus + n - 1) % n,
        KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => {
            form.fields[form.focus].editor = TextArea::default();
        }
        KeyCode::Enter => {
            let values: Vec<(&'static str, String)> =
                form.fields.iter().map(|f| (f.key, f.value())).collect();
            match parse_run_fields(&state.default_run, &values) {
                Ok(config) => {
                    state.run = Default::default();
                    state.run.status = "starting".into();
                    return vec![Effect::StartRun(Box::new(config))];
                }
                Err((field, message)) => {
                    if let Some(i) = form.fields.iter().position(|f| Some(f.key) == field) {
                        form.focus = i;
                    }
                    form.error = Some(message);
                }
            }
        }
        _ => {
            form.error = None;
            form.fields[form.focus].editor.input(key);
        }
    }
    state.popup = Some(Popup::RunForm(form));
    Vec::new()
}

/// Builds a run config from form fields (`key`, value); an empty value keeps the default (or, for
/// `val` and `test`, means none). Dataset files must exist. An error names its field.
pub fn parse_run_fields(
    defaults: &crate::adaptation::RunConfig,
    fields: &[(&'static str, String)],
) -> Result<crate::adaptation::RunConfig, (Option<&'static str>, String)> {
    let mut c = defaults.clone();
    for (k, v) in fields {
        let (k, v) = (*k, v.trim());
        let err = |m: String| (Some(k), m);
        let num = |v: &str| {
            v.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| err(format!("{k}: '{v}' is not a whole number above 0")))
        };
        let file = |v: &str| {
            let p = std::path::PathBuf::from(v);
            if p.is_file() {
                Ok(p)
            } else {
                Err(err(format!("{k}: no file at {v}")))
            }
        };
        match k {
            "val" if v.is_empty() => c.val = None,
            "test" if v.is_empty() => c.test = None,
            _ if v.is_empty() => {}
            "dataset" => c.dataset = file(v)?,
            "val" => c.val = Some(file(v)?),
            "test" => c.test = Some(file(v)?),
            "env" => {
                c.env = v
                    .parse()
                    .map_err(|e| (Some("env"), format!("environment: {e}")))?
            }
            "epochs" => c.epochs = num(v)? as u32,
            "batch" => c.batch_size = num(v)? as usize,
            "concurrency" => c.concurrency = num(v)? as usize,
            "approve" => c.approve = v.parse().map_err(err)?,
            "playbook" => c.playbook = v.into(),
            "mode" => {
                c.kind = match v.to_ascii_lowercase().as_str() {
                    "offline" => crate::adaptation::RunKind::Offline,
                    "online" => crate::adaptation::RunKind::Online,
                    _ => return Err(err(format!("mode: '{v}' is not offline or online"))),
                }
            }
            other => return Err((None, format!("unknown field '{other}'"))),
        }
    }
    if c.dataset.as_os_str().is_empty() {
        return Err((Some("dataset"), "give a dataset file".into()));
    }
    Ok(c)
}
