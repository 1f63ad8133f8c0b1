//! `update(&mut State, Action) -> Vec<Effect>`: every key and every background report, and nothing
//! else: no clock, no environment, no file system. Keys become commands through the key table
//! ([`super::keymap`]); the popup on top, the focused pane or the global layer acts on them.

use ratatui::crossterm::event::KeyEventKind;

use super::action::{Action, Effect};
use super::keymap::{self, Cmd};
use super::panes::{self, playbook::story_effect, step};
use super::popups::{self, Confirmed, Popup};
use super::state::{Pane, Phase, State};
use crate::adaptation::Control;

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

/// Shows playbook `name` (and makes it the run form's default).
pub fn open_playbook(state: &mut State, name: String) -> Vec<Effect> {
    state.viewing_at = None;
    state.story = None;
    state.default_run.playbook = name.clone();
    state.opening = Some(name.clone());
    vec![Effect::OpenPlaybook(name)]
}

fn handle(state: &mut State, action: Action) -> Vec<Effect> {
    match action {
        Action::Key(key) if key.kind == KeyEventKind::Press => {
            if state.popup.is_some() {
                return popups::key(state, key);
            }
            state.message.clear();
            match keymap::command(state.key_layers(), &key) {
                Some(cmd) => command(state, cmd),
                None => Vec::new(),
            }
        }
        Action::Tick => {
            // the runs list follows live runs (this workbench's and other processes') every 2 s
            if let Some(Popup::Runs { rows, sel, detail }) = &state.popup {
                state.ticks = state.ticks.wrapping_add(1);
                if state.ticks.is_multiple_of(2) {
                    let mut effects = vec![Effect::LoadRuns];
                    if detail.is_some()
                        && let Some(r) = rows.get(*sel)
                    {
                        effects.push(Effect::LoadRunSummary(r.run.id.clone()));
                    }
                    return effects;
                }
            }
            Vec::new()
        }
        Action::Runs(new_rows) => {
            if let Some(Popup::Runs { rows, sel, .. }) = &mut state.popup {
                // the selection follows its run
                let picked = rows.get(*sel).map(|r| r.run.id.clone());
                *rows = new_rows;
                *sel = picked
                    .and_then(|id| rows.iter().position(|r| r.run.id == id))
                    .unwrap_or(0)
                    .min(rows.len().saturating_sub(1));
            }
            Vec::new()
        }
        Action::RunSummaryLoaded(summary) => {
            if let Some(Popup::Runs { detail, rows, sel }) = &mut state.popup
                && rows
                    .get(*sel)
                    .is_some_and(|r| r.run.id == summary.summary.run.id)
            {
                *detail = Some(summary);
            }
            Vec::new()
        }
        Action::Click {
            x,
            y,
            width,
            height,
        } => click(state, x, y, width, height),
        Action::Key(_) => Vec::new(),
        Action::ScrollUp => move_selection(state, -3),
        Action::ScrollDown => move_selection(state, 3),
        Action::Loaded(snapshot) => {
            loaded(state, *snapshot);
            Vec::new()
        }
        Action::TrialDone => vec![Effect::Refresh],
        Action::ImpactFound(id, report) => {
            state.message = format!(
                "{id}: {:+.1} points with it than without it ({})",
                -report.delta_points(),
                report.summary()
            );
            state.impact = Some((id, *report));
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
        Action::Compared(title, changes) => {
            state.message = format!("{title}: {} change(s)", changes.len());
            state.comparison = Some((title, changes));
            Vec::new()
        }
        Action::RevisionLoaded(detail) => {
            state.comparison = None;
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
        Action::Run(event) => panes::run::event(state, *event),
        Action::Ledger {
            tokens,
            cost_usd,
            max_usd,
        } => {
            state.run.tokens = tokens;
            state.run.cost_usd = cost_usd;
            state.run.max_usd = max_usd;
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
        Action::RunAccepted => {
            if matches!(state.popup, Some(Popup::RunForm(_))) {
                state.popup = None;
            }
            state.run = Default::default();
            state.run.phase = Phase::Starting;
            Vec::new()
        }
        Action::RunRefused { field, message } => {
            match &mut state.popup {
                Some(Popup::RunForm(form)) => popups::refuse_run(form, field, message),
                _ => state.message = message,
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
                state.run.phase = Phase::Decided(batch);
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

/// A fresh snapshot of the store: selections follow their item (a new revision or proposal on top
/// must not shift them).
fn loaded(state: &mut State, snapshot: super::state::Snapshot) {
    state.opening = None;
    // the newest revision stays selected as new ones arrive (and another playbook opens on its
    // newest): `r` then offers the latest change, never the original import
    let other_playbook = state.playbook.name != snapshot.playbook.name;
    let revision = (state.revision_sel > 0 && !other_playbook)
        .then(|| state.revisions.get(state.revision_sel).map(|r| r.id))
        .flatten();
    let batch = state.queue.get(state.queue_sel).map(|b| b.id);
    let section = state
        .follow_section
        .take()
        .or_else(|| state.section_name().map(str::to_string));
    state.playbooks = snapshot.playbooks;
    state.playbook = snapshot.playbook;
    state.tokens = snapshot.tokens;
    state.token_budget = snapshot.token_budget;
    state.effects = snapshot.effects;
    state.trials = snapshot.trials;
    state.queue = snapshot.queue;
    state.revisions = snapshot.revisions;
    if state.viewing_at.is_none()
        && let Some(i) =
            section.and_then(|name| state.playbook.sections.iter().position(|s| s.name == name))
    {
        state.section = i;
    }
    state.section = state
        .section
        .min(state.playbook.sections.len().saturating_sub(1));
    // A batch still pending keeps the selection; once decided, the selection moves on to the
    // first batch still waiting (pending ones are listed first).
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
    match revision.and_then(|id| state.revisions.iter().position(|r| r.id == id)) {
        Some(i) => state.revision_sel = i,
        None => state.revision_sel = 0,
    }
    let ops = state.selected_batch().map_or(0, |b| b.ops.len());
    state.op_sel = state.op_sel.min(ops.saturating_sub(1));
    state.revision_sel = state
        .revision_sel
        .min(state.revisions.len().saturating_sub(1));
    state.recount();
    state.refilter();
}

/// A command with no popup open: the global ones here, the rest to the focused pane.
fn command(state: &mut State, cmd: Cmd) -> Vec<Effect> {
    match cmd {
        Cmd::Help => state.popup = Some(Popup::Help { scroll: 0 }),
        Cmd::Quit => return ask_quit(state),
        Cmd::NextPane => state.focus = next_pane(state.focus, 1),
        Cmd::PrevPane => state.focus = next_pane(state.focus, -1),
        // the list opens with one playbook too: it renames, copies and deletes as well
        Cmd::SwitchPlaybook if !state.playbooks.is_empty() => {
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
        Cmd::SwitchPlaybook => {
            state.message =
                "this database has no playbook yet (`ace playbook create` or import adds one)"
                    .into()
        }
        Cmd::ShowPlaybook => state.focus = Pane::Sections,
        Cmd::ShowRun => state.focus = Pane::Run,
        Cmd::ShowQueue => state.focus = Pane::Queue,
        Cmd::ShowRevisions => {
            state.focus = Pane::Revisions;
            return state
                .revisions
                .get(state.revision_sel)
                .map(|r| vec![Effect::LoadRevision(r.id)])
                .unwrap_or_default();
        }
        Cmd::Down => return move_selection(state, 1),
        Cmd::Up => return move_selection(state, -1),
        Cmd::PageDown => return move_selection(state, 20),
        Cmd::PageUp => return move_selection(state, -20),
        Cmd::Top => return move_selection(state, -1_000_000),
        Cmd::Bottom => return move_selection(state, 1_000_000),
        Cmd::Back => {
            if state.focus == Pane::Queue && state.queue_ops {
                state.queue_ops = false;
            } else if state.viewing_at.take().is_some() {
                state.recount();
                state.refilter();
                state.message = "back to the current playbook".into();
            } else if !state.filter.is_empty() {
                state.filter.clear();
                state.refilter();
            }
        }
        _ => return route(state, cmd),
    }
    Vec::new()
}

/// The focused pane's own commands.
fn route(state: &mut State, cmd: Cmd) -> Vec<Effect> {
    match state.focus {
        Pane::Sections | Pane::Bullets => panes::playbook::command(state, cmd),
        Pane::Run => panes::run::command(state, cmd),
        Pane::Queue => panes::queue::command(state, cmd),
        Pane::Revisions => panes::revisions::command(state, cmd),
    }
}

/// A click: a tab switches pane; in the Playbook pane a click on the left focuses the sections (on
/// a row, selects it), on the right the bullets. Popups take no clicks.
fn click(state: &mut State, x: u16, y: u16, width: u16, height: u16) -> Vec<Effect> {
    if state.popup.is_some() || height < 4 {
        return Vec::new();
    }
    if y == 0 {
        if let Some(pane) = super::render::tab_at(state, width, x) {
            state.focus = pane;
        }
        return Vec::new();
    }
    if !matches!(state.focus, Pane::Sections | Pane::Bullets) {
        return Vec::new();
    }
    // the areas as the frame drew them
    let screen = ratatui::layout::Rect::new(0, 0, width, height);
    let [_, body, _] = super::render::screen_areas(state, screen);
    let (left, table, _) = super::panes::playbook::areas(state, body);
    let inside = |r: ratatui::layout::Rect| {
        x >= r.x && x < r.x + r.width && y > r.y && y + 1 < r.y + r.height
    };
    if x < left.x + left.width {
        state.focus = Pane::Sections;
        // rows start under the list's border; only while every section is on screen (a
        // scrolled list's rows are not known here)
        let row = usize::from(y.saturating_sub(left.y + 1));
        let fits = state.shown().sections.len() <= usize::from(left.height.saturating_sub(2));
        if fits && inside(left) && row < state.shown().sections.len() && state.section != row {
            state.section = row;
            state.bullet = 0;
            state.refilter();
        }
        return Vec::new();
    }
    state.focus = Pane::Bullets;
    if inside(table) {
        let (offset, _) = super::panes::playbook::bullet_window(state, table);
        let row = offset + usize::from(y - table.y - 1);
        if row < state.visible.len() {
            state.bullet = row;
            return story_effect(state);
        }
    }
    Vec::new()
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
        // j/k move over the batches, like every list; Enter (or l) goes into a batch's ops
        Pane::Queue if state.queue_ops => {
            let len = state.selected_batch().map_or(0, |b| b.ops.len());
            state.op_sel = step(state.op_sel, len, delta);
        }
        Pane::Queue => {
            state.queue_sel = step(state.queue_sel, state.queue.len(), delta);
            state.op_sel = 0;
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

fn next_pane(p: Pane, delta: isize) -> Pane {
    let i = Pane::ORDER.iter().position(|x| *x == p).unwrap_or(0) as isize;
    Pane::ORDER[(i + delta).rem_euclid(Pane::ORDER.len() as isize) as usize]
}

fn ask_quit(state: &mut State) -> Vec<Effect> {
    if state.run.active {
        state.popup = Some(Popup::Confirm {
            message: "A run is active. Quit anyway? The run stops; R in the Run pane (or `ace train --resume`) resumes it later.".into(),
            action: Confirmed::Quit,
        });
    } else {
        state.quit = true;
    }
    Vec::new()
}
