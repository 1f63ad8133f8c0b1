//! The workbench as a person drives it, in process: keys go through the real event handling, its
//! effects run against a real database and a run streams from the bundled demo model served over
//! loopback HTTP. One run, three proposals: approve then undo, edit then approve, reject.

use std::time::Duration;

use ace::adaptation::{ApproveMode, RunConfig};
use ace::approval::BatchStatus;
use ace::delta::Source;
use ace::llm::mock::{MockServer, Script};
use ace::store::Store;
use ace::tui::popups::Popup;
use ace::tui::state::{Pane, State};
use ace::tui::{DEMO_SCRIPT, ModelSource, Workbench, render};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

const WAIT: Duration = Duration::from_secs(60);

fn press(wb: &mut Workbench, code: KeyCode) {
    wb.press(KeyEvent::new(code, KeyModifiers::NONE));
}

fn typed(wb: &mut Workbench, text: &str) {
    for c in text.chars() {
        press(wb, KeyCode::Char(c));
    }
}

/// The first queued batch with undecided ops, if it is the selected one.
fn pending_batch(s: &State) -> Option<i64> {
    s.queue
        .get(s.queue_sel)
        .filter(|b| b.is_pending())
        .map(|b| b.id)
}

fn screen(state: &State) -> String {
    let mut terminal = Terminal::new(TestBackend::new(110, 32)).unwrap();
    terminal.draw(|f| render(state, f)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    (0..32)
        .map(|y| {
            (0..110)
                .map(|x| buffer[(x, y)].symbol())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits until the run waits on a new proposal (not `after`) and returns its queue id.
fn next_proposal(wb: &mut Workbench, after: Option<i64>) -> i64 {
    assert!(
        wb.wait_until(WAIT, |s| s.run.waiting_on.is_some()
            && pending_batch(s).is_some_and(|id| Some(id) != after)),
        "no new proposal; run status: {}",
        wb.state.run.phase
    );
    pending_batch(&wb.state).unwrap()
}

/// The bullets a revision added.
fn added_bullets(store: &Store, revision: i64) -> Vec<ace::playbook::Bullet> {
    store
        .revision(revision)
        .unwrap()
        .changes
        .into_iter()
        .filter_map(|c| match c {
            ace::delta::Change::Bullet {
                before: None,
                after: Some(a),
                ..
            } => Some(a),
            _ => None,
        })
        .collect()
}

/// The demo model on loopback (on its own runtime) and a workbench on a new database in `dir`,
/// its run form defaulting to batch size 1 and approve wait.
fn demo_workbench(dir: &std::path::Path) -> (tokio::runtime::Runtime, MockServer, Workbench) {
    let config = RunConfig {
        batch_size: 1,
        approve: ApproveMode::Wait,
        ..RunConfig::default()
    };
    demo_workbench_with(dir, config)
}

/// A workbench over `dir/ace.db` (the sample playbook loaded) whose runs use `config` and the
/// demo model served on loopback.
fn demo_workbench_with(
    dir: &std::path::Path,
    config: RunConfig,
) -> (tokio::runtime::Runtime, MockServer, Workbench) {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = server_rt
        .block_on(MockServer::start_local(
            Script::from_json(DEMO_SCRIPT).unwrap(),
        ))
        .unwrap();
    let mut wb = Workbench::open(
        &dir.join("ace.db"),
        ModelSource::Demo(server.base_url()),
        config,
        "flow",
    )
    .unwrap();
    assert!(
        wb.wait_until(WAIT, |s| !s.playbook.sections.is_empty()),
        "the sample playbook loads"
    );
    assert!(wb.state.model_label.contains("SCRIPTED DEMO"));
    (server_rt, server, wb)
}

#[test]
fn a_cancelled_run_is_resumed_from_the_workbench_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, server, mut wb) = demo_workbench(dir.path());
    press(&mut wb, KeyCode::Char('2'));
    press(&mut wb, KeyCode::Char('r'));
    press(&mut wb, KeyCode::Enter);
    let first = next_proposal(&mut wb, None);
    let run = wb.state.run.run.clone().unwrap();
    press(&mut wb, KeyCode::Char('x'));
    press(&mut wb, KeyCode::Char('y'));
    assert!(
        wb.wait_until(WAIT, |s| !s.run.active),
        "{}",
        wb.state.run.phase
    );
    assert_eq!(wb.state.run.phase.to_string(), "cancelled");

    // R lists the unfinished run; Enter resumes it where it stopped: waiting on the same proposal
    press(&mut wb, KeyCode::Char('R'));
    assert!(
        wb.wait_until(WAIT, |s| matches!(s.popup, Some(Popup::ResumeRun { .. }))),
        "{}",
        wb.state.message
    );
    let shown = screen(&wb.state);
    assert!(
        shown.contains(&format!("{run} · sample · cancelled")),
        "{shown}"
    );
    press(&mut wb, KeyCode::Enter);
    assert!(
        wb.wait_until(WAIT, |s| s.run.active && s.run.waiting_on == Some(first)),
        "status: {}; {}",
        wb.state.run.phase,
        wb.state.message
    );
    assert_eq!(
        wb.state.run.run.as_deref(),
        Some(run.as_str()),
        "the same run, not a new one"
    );
    // approving lets it go on to its next proposal
    press(&mut wb, KeyCode::Char('3'));
    press(&mut wb, KeyCode::Char('y'));
    next_proposal(&mut wb, Some(first));
    let check = Store::open(&dir.path().join("ace.db")).unwrap();
    assert_eq!(check.runs().unwrap().len(), 1);
    let status = check.run(&run).unwrap().status;
    assert!(status.is_live(), "{status}");
    drop(wb);
    server.shutdown();
}

#[test]
fn approve_undo_edit_and_reject_proposals_of_a_live_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    let (_rt, server, mut wb) = demo_workbench(dir.path());
    let check = Store::open(&db).unwrap();
    let active_before = check
        .load_playbook("sample")
        .unwrap()
        .active_bullets()
        .count();

    // start a run from the form with its defaults (the sample dataset, batch size 1, approve wait)
    press(&mut wb, KeyCode::Char('2'));
    press(&mut wb, KeyCode::Char('r'));
    assert!(matches!(wb.state.popup, Some(Popup::RunForm(_))));
    press(&mut wb, KeyCode::Enter);
    let first = next_proposal(&mut wb, None);
    assert!(wb.state.run.active);
    assert!(
        wb.state.run.waiting_on.is_some(),
        "the run waits for the decision"
    );

    // 1. approve it: one revision from the curator with the proposed bullet
    press(&mut wb, KeyCode::Char('3'));
    assert_eq!(wb.state.focus, Pane::Queue);
    let shown = screen(&wb.state);
    assert!(
        shown.contains("LESSON"),
        "the queue shows the proposed bullet:\n{shown}"
    );
    press(&mut wb, KeyCode::Char('y'));
    assert!(
        wb.wait_until(WAIT, |s| s.last_applied.is_some()),
        "{}",
        wb.state.message
    );
    let approved = wb.state.last_applied.unwrap();
    let detail = check.revision(approved).unwrap();
    assert_eq!(detail.revision.source, Source::Curator);
    assert_eq!(detail.revision.summary.added, 1);
    let lesson = added_bullets(&check, approved).pop().unwrap();
    assert!(lesson.content.starts_with("LESSON"), "{}", lesson.content);
    assert!(
        check
            .load_playbook("sample")
            .unwrap()
            .bullet(&lesson.id)
            .unwrap()
            .is_active()
    );

    // … and undo it: a revert revision, the bullet gone again
    press(&mut wb, KeyCode::Char('u'));
    assert!(
        wb.wait_until(WAIT, |s| s
            .message
            .contains(&format!("revision {approved} reverted by revision"))),
        "{}",
        wb.state.message
    );
    let p = check.load_playbook("sample").unwrap();
    assert!(p.bullet(&lesson.id).is_none_or(|b| !b.is_active()));
    assert_eq!(
        check.revisions(Some("sample"), 1).unwrap()[0].reverts,
        Some(approved)
    );

    // 2. the run goes on; edit the next proposal in the editor and save (Ctrl-s approves the edit)
    let second = next_proposal(&mut wb, Some(first));
    press(&mut wb, KeyCode::Char('e'));
    assert!(matches!(wb.state.popup, Some(Popup::EditOp { .. })));
    for _ in 0..3 {
        press(&mut wb, KeyCode::Down); // to the "content" line
    }
    press(&mut wb, KeyCode::End);
    press(&mut wb, KeyCode::Left); // inside the closing quote
    typed(&mut wb, " Check the units.");
    wb.press(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL));
    assert!(
        wb.wait_until(WAIT, |s| s.last_applied.is_some_and(|r| r > approved + 1)),
        "{}",
        wb.state.message
    );
    let edited_rev = wb.state.last_applied.unwrap();
    let added = added_bullets(&check, edited_rev);
    assert_eq!(added.len(), 1);
    assert!(
        added[0].content.starts_with("LESSON") && added[0].content.ends_with(" Check the units."),
        "{}",
        added[0].content
    );
    let queued = check.pending_batch(second).unwrap();
    assert_eq!(queued.ops[0].status, ace::approval::OpStatus::Edited);

    // 3. reject the next one with a reason: nothing applied, the reason kept
    let third = next_proposal(&mut wb, Some(second));
    press(&mut wb, KeyCode::Char('n'));
    typed(&mut wb, "too narrow");
    press(&mut wb, KeyCode::Enter);
    assert!(
        wb.wait_until(WAIT, |s| s.message.contains("nothing approved")),
        "{}",
        wb.state.message
    );
    let rejected = check.pending_batch(third).unwrap();
    assert_eq!(rejected.status, BatchStatus::Rejected);
    assert_eq!(rejected.ops[0].reason.as_deref(), Some("too narrow"));
    assert_eq!(rejected.revision, None);
    let curated_since = check
        .revisions(Some("sample"), 1000)
        .unwrap()
        .into_iter()
        .filter(|r| r.id > edited_rev && r.source == Source::Curator)
        .count();
    assert_eq!(curated_since, 0, "a rejected proposal writes no revision");

    // of the three proposals the playbook holds exactly the edited one (the undone one is gone)
    let after = check.load_playbook("sample").unwrap();
    assert_eq!(after.active_bullets().count(), active_before + 1);
    assert!(
        after
            .active_bullets()
            .any(|b| b.content.ends_with(" Check the units."))
    );
    drop(wb);
    server.shutdown();
}

#[test]
fn the_run_form_is_checked_for_files_where_the_run_starts() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, server, mut wb) = demo_workbench(dir.path());
    press(&mut wb, KeyCode::Char('2'));
    press(&mut wb, KeyCode::Char('r'));
    // the dataset field has the focus: a file that does not exist
    wb.press(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
    typed(&mut wb, "no/such/data.jsonl");
    press(&mut wb, KeyCode::Enter);
    assert!(
        wb.wait_until(
            WAIT,
            |s| matches!(&s.popup, Some(Popup::RunForm(f)) if f.error.is_some())
        ),
        "the runner answers"
    );
    let Some(Popup::RunForm(form)) = &wb.state.popup else {
        unreachable!()
    };
    assert_eq!(
        form.error.as_deref(),
        Some("dataset: no file at no/such/data.jsonl")
    );
    assert_eq!(form.fields[form.focus].key, "dataset");
    assert!(!wb.state.run.active, "no run was started");
    let check = Store::open(&dir.path().join("ace.db")).unwrap();
    assert!(check.runs().unwrap().is_empty());
    drop(wb);
    server.shutdown();
}

#[test]
fn u_undoes_the_last_hand_edit_as_a_revert_revision() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, server, mut wb) = demo_workbench(dir.path());
    let active = |s: &State| s.playbook.bullets.iter().filter(|b| b.is_active()).count();
    let before = active(&wb.state);
    press(&mut wb, KeyCode::Char('1'));
    press(&mut wb, KeyCode::Char('l'));
    let removed = wb.state.selected_bullet().unwrap().id.clone();
    press(&mut wb, KeyCode::Char('d'));
    press(&mut wb, KeyCode::Char('y'));
    assert!(
        wb.wait_until(WAIT, |s| active(s) == before - 1),
        "the bullet was removed"
    );
    press(&mut wb, KeyCode::Char('u'));
    assert!(
        wb.wait_until(WAIT, |s| active(s) == before),
        "the removal was undone: {}",
        wb.state.message
    );
    assert!(
        wb.state.message.starts_with("undone: revision"),
        "{}",
        wb.state.message
    );
    let store = Store::open(&dir.path().join("ace.db")).unwrap();
    let newest = &store.revisions(None, 1).unwrap()[0];
    assert_eq!(
        newest.source,
        Source::Revert,
        "an undo is a revert revision"
    );
    let restored = store.load_playbook("sample").unwrap();
    assert!(restored.bullet(&removed).unwrap().is_active());
    // nothing left to undo
    press(&mut wb, KeyCode::Char('u'));
    assert!(
        wb.wait_until(WAIT, |s| s.message.starts_with("no hand edit")),
        "{}",
        wb.state.message
    );
    drop(wb);
    server.shutdown();
}

/// `L` lists every run of the database, a run another process drives included, live.
#[test]
fn the_runs_list_shows_every_run_and_follows_one_another_process_drives() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, server, mut wb) = demo_workbench(dir.path());
    let db = dir.path().join("ace.db");
    let playbook = wb.state.playbook.name.clone();
    // a headless run on the same database, waiting for a person's approval
    let dataset =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sample/dataset.jsonl");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ace"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("ACE_BASE_URL", server.base_url())
        .env("ACE_MODEL", "scripted")
        .arg("--db")
        .arg(&db)
        .args(["train", "--playbook", &playbook, "--dataset"])
        .arg(&dataset)
        .args(["--approve", "wait", "--batch-size", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    press(&mut wb, KeyCode::Char('2'));
    press(&mut wb, KeyCode::Char('L'));
    let listed = |s: &State| match &s.popup {
        Some(Popup::Runs { rows, .. }) => rows.iter().any(|r| r.live && r.totals.calls > 0),
        _ => false,
    };
    let seen = wb.wait_until(WAIT, listed);
    let shown = screen(&wb.state);
    // its details: accuracy, deltas and calls per role
    press(&mut wb, KeyCode::Enter);
    let detailed = wb.wait_until(WAIT, |s| {
        matches!(
            &s.popup,
            Some(Popup::Runs {
                detail: Some(_),
                ..
            })
        )
    });
    let detail = screen(&wb.state);
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen, "the other process's run is listed live: {shown}");
    assert!(shown.contains("run-1") && shown.contains("live"), "{shown}");
    assert!(detailed, "Enter shows the run's details");
    assert!(
        detail.contains("deltas:") && detail.contains("generator"),
        "{detail}"
    );
    assert!(
        detail.contains("latest samples:") && detail.contains("train/1/"),
        "{detail}"
    );
    // Esc goes back to the list, then closes it
    press(&mut wb, KeyCode::Esc);
    assert!(matches!(
        &wb.state.popup,
        Some(Popup::Runs { detail: None, .. })
    ));
    press(&mut wb, KeyCode::Esc);
    assert!(wb.state.popup.is_none());
    drop(wb);
    server.shutdown();
}

#[test]
fn playbooks_are_renamed_copied_and_deleted_from_the_playbook_list() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, server, mut wb) = demo_workbench(dir.path());
    let original = wb.state.playbook.name.clone();
    // P, then e on the shown playbook: rename it; the workbench follows the new name
    press(&mut wb, KeyCode::Char('P'));
    press(&mut wb, KeyCode::Char('e'));
    wb.press(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
    for _ in 0..original.chars().count() + 2 {
        press(&mut wb, KeyCode::Backspace);
    }
    typed(&mut wb, "renamed");
    press(&mut wb, KeyCode::Enter);
    assert!(
        wb.wait_until(WAIT, |s| s.playbook.name == "renamed"),
        "{} / {}",
        wb.state.playbook.name,
        wb.state.message
    );
    // c copies it under a new name and shows the copy
    press(&mut wb, KeyCode::Char('P'));
    press(&mut wb, KeyCode::Char('c'));
    press(&mut wb, KeyCode::Enter);
    assert!(
        wb.wait_until(WAIT, |s| s.playbook.name == "renamed-copy"),
        "{}",
        wb.state.message
    );
    let bullets = |s: &State| s.playbook.bullets.len();
    let copied = bullets(&wb.state);
    // d deletes the shown one (after a confirmation) and shows another
    press(&mut wb, KeyCode::Char('P'));
    let Some(Popup::PickPlaybook { names, .. }) = &wb.state.popup else {
        panic!("P lists the playbooks")
    };
    let at = names.iter().position(|n| n == "renamed-copy").unwrap();
    for _ in 0..at {
        press(&mut wb, KeyCode::Char('j'));
    }
    press(&mut wb, KeyCode::Char('d'));
    assert!(matches!(wb.state.popup, Some(Popup::Confirm { .. })));
    press(&mut wb, KeyCode::Char('y'));
    assert!(
        wb.wait_until(WAIT, |s| s.playbook.name == "renamed"),
        "{}",
        wb.state.message
    );
    let store = Store::open(&dir.path().join("ace.db")).unwrap();
    assert_eq!(store.playbook_names().unwrap(), vec!["renamed".to_string()]);
    assert_eq!(
        store.load_playbook("renamed").unwrap().bullets.len(),
        copied
    );
    assert_eq!(store.deleted_playbooks().unwrap()[0].0, "renamed-copy");
    drop(wb);
    server.shutdown();
}

/// Concurrency 4 over the demo model: every sample row the Run pane shows, and the last finished
/// one, carry that sample's own question and answer (as the run recorded them), never another's.
#[test]
fn under_concurrency_each_sample_row_shows_its_own_sample() {
    let dir = tempfile::tempdir().unwrap();
    let config = RunConfig {
        batch_size: 4,
        concurrency: 4,
        approve: ApproveMode::Auto,
        ..RunConfig::default()
    };
    let (_rt, server, mut wb) = demo_workbench_with(dir.path(), config);
    press(&mut wb, KeyCode::Char('2'));
    press(&mut wb, KeyCode::Char('r'));
    press(&mut wb, KeyCode::Enter);
    // watch every row as events arrive, until the run ends
    let mut rows: Vec<ace::tui::state::SlotView> = Vec::new();
    let mut finished: Vec<ace::tui::state::SlotView> = Vec::new();
    let mut most_in_flight = 0;
    let deadline = std::time::Instant::now() + WAIT;
    while !matches!(wb.state.run.phase, ace::tui::state::Phase::Ended(_)) {
        assert!(std::time::Instant::now() < deadline, "the run ended");
        wb.pump(Duration::from_millis(50));
        most_in_flight = most_in_flight.max(wb.state.run.slots.len());
        rows.extend(wb.state.run.slots.iter().cloned());
        finished.extend(wb.state.run.last.iter().cloned());
    }
    let store = Store::open(&dir.path().join("ace.db")).unwrap();
    let run = store.runs().unwrap()[0].id.clone();
    let recorded = store.run_samples(&run).unwrap();
    assert!(!rows.is_empty() && !finished.is_empty());
    let record = |key: &str| {
        recorded
            .iter()
            .find(|r| r.key == key)
            .unwrap_or_else(|| panic!("{key} was recorded"))
    };
    // a row in flight shows its own sample's question at every moment
    for slot in &rows {
        assert_eq!(slot.question, record(&slot.key).question, "{}", slot.key);
    }
    // a finished one, its own final answer too
    for slot in &finished {
        let r = record(&slot.key);
        assert_eq!(
            (&slot.question, &slot.answer),
            (&r.question, &r.answer),
            "{}",
            slot.key
        );
    }
    assert!(most_in_flight >= 1);
    drop(wb);
    server.shutdown();
}

/// `t` in the Queue pane tries the waiting proposal on the run's samples in the background; the
/// trial is kept with it and shown in the proposal, and nothing is decided or applied.
#[test]
fn t_tries_a_proposal_from_the_queue_pane_and_shows_the_trial() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    let (_rt, _server, mut wb) = demo_workbench(dir.path());
    press(&mut wb, KeyCode::Char('2'));
    press(&mut wb, KeyCode::Char('r'));
    press(&mut wb, KeyCode::Enter);
    let first = next_proposal(&mut wb, None);
    let revisions = Store::open(&db)
        .unwrap()
        .revisions(None, 100)
        .unwrap()
        .len();
    press(&mut wb, KeyCode::Char('3'));
    press(&mut wb, KeyCode::Char('t'));
    assert!(
        wb.state.message.contains("trying proposal"),
        "{}",
        wb.state.message
    );
    assert!(
        wb.wait_until(WAIT, |s| s
            .trials
            .get(&first)
            .is_some_and(|t| !t.is_empty())),
        "the trial is shown: {}",
        wb.state.message
    );
    let shown = screen(&wb.state);
    assert!(shown.contains("trial (proposal #"), "{shown}");
    let store = Store::open(&db).unwrap();
    assert!(
        store.pending_batch(first).unwrap().is_pending(),
        "nothing decided"
    );
    assert_eq!(
        store.revisions(None, 100).unwrap().len(),
        revisions,
        "nothing applied"
    );
    assert!(store.trials(first).unwrap()[0].report.samples > 0);
    // I in the Playbook pane: the selected bullet's leave-one-out impact, shown in its detail
    press(&mut wb, KeyCode::Char('1'));
    press(&mut wb, KeyCode::Tab);
    press(&mut wb, KeyCode::Char('I'));
    assert!(wb.state.message.contains("impact"), "{}", wb.state.message);
    assert!(
        wb.wait_until(WAIT, |s| s.impact.is_some()),
        "the impact is measured: {}",
        wb.state.message
    );
    let shown = screen(&wb.state);
    assert!(shown.contains("impact:"), "{shown}");
    assert_eq!(
        store.revisions(None, 100).unwrap().len(),
        revisions,
        "nothing applied"
    );
}
