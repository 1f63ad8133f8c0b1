//! The ACE loop end to end against the loopback scripted model.

use crate::{common, world};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ace::adaptation::{
    self, ApproveMode, Control, Event, FeedbackMode, LoopError, Models, RunConfig, RunKind,
    RunStatus, Split,
};
use ace::delta::Source;
use ace::environment::Environment;
use ace::llm::mock::MockServer;
use ace::llm::{EndpointConfig, Ledger, LlmClient, OpenAiClient, PriceTable};
use ace::store::Store;

const ACE: &str = env!("CARGO_BIN_EXE_ace");

fn models(server: &MockServer) -> Models {
    let mut cfg = EndpointConfig::new(server.base_url(), "scripted");
    cfg.min_backoff = Duration::from_millis(5);
    let ledger = Ledger::default();
    let client: Arc<dyn LlmClient> =
        Arc::new(OpenAiClient::new(cfg, ledger.clone(), PriceTable::default()).unwrap());
    Models::one(client, ledger)
}

fn config(dataset: &std::path::Path, approve: ApproveMode) -> RunConfig {
    RunConfig {
        playbook: "world".into(),
        dataset: dataset.to_path_buf(),
        env: Environment::Exact,
        epochs: 2,
        batch_size: 1,
        concurrency: 2,
        approve,
        max_rounds: 2,
        poll_ms: 20,
        ..RunConfig::default()
    }
}

async fn train_with_decisions(approve: bool) -> (Store, String, usize) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    let data = world::dataset(dir.path());
    let server = MockServer::start_local(world::script(None)).await.unwrap();
    let store = Arc::new(Mutex::new(Store::open(&db).unwrap()));
    let stop = Arc::new(AtomicBool::new(false));
    let decider = common::approver(db.clone(), approve, "tester", stop.clone());
    let handle = adaptation::start(
        store.clone(),
        models(&server),
        config(&data, ApproveMode::Wait),
        None,
    );
    let run = tokio::time::timeout(Duration::from_secs(60), handle.task)
        .await
        .expect("the run finished in time")
        .unwrap()
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    let decided = decider.join().unwrap();
    drop(store);
    let store = Store::open(&db).unwrap();
    std::mem::forget(dir); // keep the files for the assertions below (removed with the temp dir's parent)
    (store, run, decided)
}

fn accuracy(store: &Store, run: &str, split: Split, epoch: u32) -> (u64, u64) {
    let s = store.run_summary(run).unwrap();
    let a = s
        .accuracy
        .iter()
        .find(|a| a.split == split && a.epoch == epoch)
        .unwrap_or_else(|| panic!("no {split} epoch {epoch}: {:?}", s.accuracy));
    (a.correct, a.total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approved_bullets_are_fed_back_and_the_loop_learns() {
    let (store, run, decided) = train_with_decisions(true).await;
    assert_eq!(decided, 2, "one proposal per kind of task");
    let pb = store.load_playbook("world").unwrap();
    let contents: Vec<&str> = pb.active_bullets().map(|b| b.content.as_str()).collect();
    assert!(
        contents.contains(&world::ZORB) && contents.contains(&world::FLIP),
        "{contents:?}"
    );
    let (c1, t1) = accuracy(&store, &run, Split::Train, 1);
    let (c2, t2) = accuracy(&store, &run, Split::Train, 2);
    assert_eq!((t1, t2), (4, 4));
    assert!(
        c1 < 4,
        "the first sample of each kind is answered before its lesson exists"
    );
    assert_eq!(c2, 4, "after approval every answer is right");
    let summary = store.run_summary(&run).unwrap();
    assert_eq!(
        (
            summary.approved_ops,
            summary.rejected_ops,
            summary.pending_ops
        ),
        (2, 0, 0)
    );
    assert!(summary.helpful_tags > 0);
    // the causal chain: the bullet's origin batch, its run, its evidence
    let zorb = pb
        .active_bullets()
        .find(|b| b.content == world::ZORB)
        .unwrap();
    let story = store.bullet_story("world", &zorb.id).unwrap();
    assert_eq!(story.origin_run.as_deref(), Some(run.as_str()));
    let batch = store.pending_batch(story.origin_batch.unwrap()).unwrap();
    assert_eq!(batch.decided_by.as_deref(), Some("tester"));
    assert!(batch.samples()[0].question.contains("ZORB"));
    assert!(!story.cited_by.is_empty(), "answers cited it");
    let rev = store
        .revision(story.origin_revision.unwrap())
        .unwrap()
        .revision;
    assert_eq!(
        (rev.source.as_str(), rev.author.as_deref()),
        ("curator", Some("tester"))
    );
    // transcripts: every model call is stored with its prompt version
    let calls = store.run_calls(&run, None).unwrap();
    assert!(
        calls
            .iter()
            .any(|c| c.prompt_version.starts_with("curator-v1-"))
    );
    assert!(calls.iter().all(|c| c.model == "scripted:world"));
    // prompts are stored without the playbook text, and rebuilt exactly from the revision they
    // carried: the second epoch's generator prompts held the approved lessons
    let stored: Vec<String> = {
        let mut stmt = store
            .connection()
            .prepare("SELECT prompt FROM llm_calls WHERE role = 'generator'")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert!(stored.iter().all(|p| !p.contains(world::ZORB)));
    // the system prompt, the same text in every call, is stored once (compressed) and referred to
    let texts: Vec<String> = {
        let mut stmt = store
            .connection()
            .prepare("SELECT body FROM blobs")
            .unwrap();
        stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))
            .unwrap()
            .map(Result::unwrap)
            .filter_map(|body| ace::store::blobs::body_text(&body).ok())
            .filter(|text| text.contains("ACE Generator"))
            .collect()
    };
    assert_eq!(texts.len(), 1, "one system text for every generator call");
    assert!(texts[0].contains('\u{1}') && !texts[0].contains(world::ZORB));
    let rebuilt: Vec<&ace::llm::CallRecord> = calls
        .iter()
        .filter(|c| c.role == ace::llm::Role::Generator)
        .collect();
    assert_eq!(rebuilt.len(), stored.len());
    assert!(
        rebuilt
            .iter()
            .all(|c| c.messages[0].content.contains("PLAYBOOK:\n")
                && !c.messages[0].content.contains('\u{1}'))
    );
    assert!(
        rebuilt.iter().any(|c| c.messages[0]
            .content
            .contains(&format!("] {}", world::ZORB))),
        "a rebuilt prompt shows the lesson it carried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_proposals_never_reach_the_playbook_and_nothing_is_learned() {
    let (store, run, decided) = train_with_decisions(false).await;
    assert!(decided >= 2);
    assert_eq!(
        store
            .load_playbook("world")
            .unwrap()
            .active_bullets()
            .count(),
        0
    );
    assert_eq!(accuracy(&store, &run, Split::Train, 2), (0, 4));
    assert_eq!(store.run_summary(&run).unwrap().approved_ops, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_approval_learns_without_a_person_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let data = world::dataset(dir.path());
    let server = MockServer::start_local(world::script(None)).await.unwrap();
    let store = Arc::new(Mutex::new(Store::open(&dir.path().join("ace.db")).unwrap()));
    let mut handle = adaptation::start(
        store.clone(),
        models(&server),
        config(&data, ApproveMode::Auto),
        None,
    );
    let mut events = Vec::new();
    while let Some(e) = handle.events.recv().await {
        events.push(e);
    }
    let run = handle.task.await.unwrap().unwrap();
    let store = store.lock().unwrap();
    assert_eq!(accuracy(&store, &run, Split::Train, 2), (4, 4));
    let revisions = store.revisions(Some("world"), 100).unwrap();
    assert!(revisions.iter().any(|r| r.source == Source::AutoPolicy));
    assert!(
        revisions.iter().any(|r| r.source == Source::Policy),
        "tags are applied by policy as revisions"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::WaitingForApproval { .. }))
    );
    assert!(matches!(events.first(), Some(Event::Started { .. })));
    assert!(
        matches!(events.last(), Some(Event::Finished { status, .. }) if *status == RunStatus::Finished)
    );
    // every stored prompt, rebuilt from its revision, is exactly what the server received
    let sent: Vec<serde_json::Value> = server
        .requests()
        .iter()
        .map(|r| r.body["messages"].clone())
        .collect();
    let calls = store.run_calls(&run, None).unwrap();
    assert_eq!(calls.len(), sent.len());
    for call in &calls {
        let rebuilt = serde_json::to_value(&call.messages).unwrap();
        assert!(sent.contains(&rebuilt), "{rebuilt}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_processes_one_sample_then_pauses_and_cancel_stops() {
    let dir = tempfile::tempdir().unwrap();
    let data = world::dataset(dir.path());
    let server = MockServer::start_local(world::script(None)).await.unwrap();
    let store = Arc::new(Mutex::new(Store::open(&dir.path().join("ace.db")).unwrap()));
    let mut cfg = config(&data, ApproveMode::Queue);
    cfg.batch_size = 4;
    let mut handle = adaptation::start(store.clone(), models(&server), cfg, None);
    handle.controls.send(Control::Step).unwrap();
    let mut started = 0;
    let mut paused_after = None;
    while let Some(e) = tokio::time::timeout(Duration::from_secs(20), handle.events.recv())
        .await
        .unwrap()
    {
        match e {
            Event::SampleStarted { .. } => started += 1,
            Event::Paused if started > 0 => {
                paused_after = Some(started);
                break;
            }
            _ => {}
        }
    }
    assert_eq!(paused_after, Some(1), "one step is one sample");
    handle.controls.send(Control::Cancel).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(20), handle.task)
        .await
        .unwrap()
        .unwrap();
    assert!(result.is_err());
    let store = store.lock().unwrap();
    let run = store.runs().unwrap()[0].clone();
    assert_eq!(run.status, RunStatus::Cancelled);
}

/// A run on `dir/ace.db` against the world whose every answer takes ten minutes: it stays live
/// until cancelled, with its first model call in flight.
async fn stalled_run(
    dir: &std::path::Path,
) -> (MockServer, Arc<Mutex<Store>>, adaptation::RunHandle) {
    let data = world::dataset(dir);
    let server = MockServer::start_local(world::script(Some(600_000)))
        .await
        .unwrap();
    let store = Arc::new(Mutex::new(Store::open(&dir.join("ace.db")).unwrap()));
    let handle = adaptation::start(
        store.clone(),
        models(&server),
        config(&data, ApproveMode::Queue),
        None,
    );
    (server, store, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_model_call_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let (server, store, mut handle) = stalled_run(dir.path()).await;
    loop {
        let e = tokio::time::timeout(Duration::from_secs(20), handle.events.recv())
            .await
            .unwrap();
        if matches!(e, Some(Event::SampleStarted { .. })) {
            break;
        }
    }
    while server.requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    handle.controls.send(Control::Cancel).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(60), handle.task)
        .await
        .expect("the run ends long before the model would answer")
        .unwrap();
    assert!(matches!(result, Err(LoopError::Cancelled)), "{result:?}");
    assert_eq!(
        store.lock().unwrap().runs().unwrap()[0].status,
        RunStatus::Cancelled
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_run_cannot_be_resumed_twice_but_an_ended_one_can() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    let (server, store, mut live) = stalled_run(dir.path()).await;
    let run = loop {
        let e = tokio::time::timeout(Duration::from_secs(20), live.events.recv())
            .await
            .unwrap();
        if let Some(Event::Started { run, .. }) = e {
            break run;
        }
    };
    // a second driver (its own connection, as another process would have) is refused
    let other = || Arc::new(Mutex::new(Store::open(&db).unwrap()));
    let second = adaptation::start(
        other(),
        models(&server),
        RunConfig::default(),
        Some(run.clone()),
    );
    let refused = tokio::time::timeout(Duration::from_secs(20), second.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains(&format!("run {run} is being run by another process")),
        "{refused}"
    );
    assert_eq!(
        store.lock().unwrap().run(&run).unwrap().status,
        RunStatus::Running
    );
    // once the first driver has ended, the run is free to resume
    live.controls.send(Control::Cancel).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(20), live.task)
        .await
        .unwrap();
    let mut third = adaptation::start(
        other(),
        models(&server),
        RunConfig::default(),
        Some(run.clone()),
    );
    loop {
        let e = tokio::time::timeout(Duration::from_secs(20), third.events.recv())
            .await
            .unwrap();
        if let Some(Event::Started { resumed, .. }) = e {
            assert!(resumed);
            break;
        }
    }
    third.controls.send(Control::Cancel).unwrap();
    let _ = third.task.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_dataset_line_fails_before_any_model_call() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bad.jsonl");
    std::fs::write(
        &data,
        "{\"question\": \"ok\", \"ground_truth\": \"1\"}\n{\"question\": oops}\n",
    )
    .unwrap();
    let server = MockServer::start_local(world::script(None)).await.unwrap();
    let store = Arc::new(Mutex::new(Store::open(&dir.path().join("ace.db")).unwrap()));
    let handle = adaptation::start(
        store.clone(),
        models(&server),
        config(&data, ApproveMode::Auto),
        None,
    );
    let err = handle.task.await.unwrap().unwrap_err().to_string();
    assert!(err.contains("bad.jsonl:2: not valid JSON"), "{err}");
    assert!(server.requests().is_empty());
    assert!(
        store.lock().unwrap().runs().unwrap().is_empty(),
        "no run is recorded for data that never loaded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_labels_the_reflector_never_sees_the_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let data = world::dataset(dir.path());
    let server = MockServer::start_local(world::script(None)).await.unwrap();
    let store = Arc::new(Mutex::new(Store::open(&dir.path().join("ace.db")).unwrap()));
    let mut cfg = config(&data, ApproveMode::Auto);
    cfg.no_labels = true;
    cfg.epochs = 1;
    let handle = adaptation::start(store.clone(), models(&server), cfg, None);
    let run = handle.task.await.unwrap().unwrap();
    let reflector: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.role.as_deref() == Some("reflector"))
        .collect();
    assert!(!reflector.is_empty());
    assert!(
        reflector
            .iter()
            .all(|r| !r.text().contains("CORRECT ANSWER"))
    );
    assert_eq!(
        store.lock().unwrap().run(&run).unwrap().feedback_mode,
        FeedbackMode::ExecutionFeedbackOnly
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_windows_are_scored_before_learning_from_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = world::dataset(dir.path());
    let server = MockServer::start_local(world::script(None)).await.unwrap();
    let store = Arc::new(Mutex::new(Store::open(&dir.path().join("ace.db")).unwrap()));
    let mut cfg = config(&data, ApproveMode::Auto);
    cfg.kind = ace::adaptation::RunKind::Online;
    cfg.batch_size = 2;
    let handle = adaptation::start(store.clone(), models(&server), cfg, None);
    let run = handle.task.await.unwrap().unwrap();
    let store = store.lock().unwrap();
    let s = store.run_summary(&run).unwrap();
    let windows: Vec<(u64, u64)> = s
        .accuracy
        .iter()
        .filter(|a| a.split == Split::Online)
        .map(|a| (a.correct, a.total))
        .collect();
    // window 1 (zorb 6, flip 12): no lessons yet; window 2 (zorb 10, flip 34): both learned from window 1
    assert_eq!(windows, [(0, 2), (2, 2)]);
    assert_eq!(s.run.kind, RunKind::Online);
}

fn train_cmd(db: &std::path::Path, home: &std::path::Path, base_url: &str) -> Command {
    let mut c = Command::new(ACE);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("ACE_BASE_URL", base_url)
        .env("ACE_MODEL", "scripted")
        .arg("--db")
        .arg(db)
        .arg("train");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_with_sigkill_resumes_without_repeating_ops_or_double_counting_tags() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    let data = world::dataset(dir.path());
    // slow answers so the kill lands in the middle of the run
    let server = MockServer::start_local(world::script(Some(120)))
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let decider = common::approver(db.clone(), true, "tester", stop.clone());
    let mut child = train_cmd(&db, dir.path(), &server.base_url())
        .args([
            "--playbook",
            "world",
            "--dataset",
            data.to_str().unwrap(),
            "--epochs",
            "2",
            "--max-rounds",
            "2",
            "--approve",
            "wait",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("train.log")).unwrap())
        .spawn()
        .unwrap();
    let log = dir.path().join("train.log");
    let watcher = Store::open(&db).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let done = watcher
            .runs()
            .ok()
            .and_then(|r| r.first().map(|r| r.id.clone()))
            .map(|id| watcher.run_samples(&id).unwrap().len())
            .unwrap_or(0);
        if done >= 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run made no progress: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let run = watcher.runs().unwrap()[0].clone();
    assert_ne!(run.status, RunStatus::Finished, "killed mid-run");
    // the list says no process drives it any more (its lock went with the process)
    let listed = Command::new(ACE)
        .arg("--db")
        .arg(&db)
        .args(["runs", "list"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains(&format!("{}*", run.status)) && listed.contains("no process is driving it"),
        "{listed}"
    );

    let out = train_cmd(&db, dir.path(), &server.base_url())
        .args(["--resume", &run.id])
        .output()
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    decider.join().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let store = Store::open(&db).unwrap();
    assert_eq!(store.run(&run.id).unwrap().status, RunStatus::Finished);
    let samples: Vec<_> = store
        .run_samples(&run.id)
        .unwrap()
        .into_iter()
        .filter(|s| s.split == Split::Train)
        .collect();
    assert_eq!(samples.len(), 8, "2 epochs x 4 samples, none twice");
    // each lesson was added once, and nothing approved was lost
    let pb = store.load_playbook("world").unwrap();
    for lesson in [world::ZORB, world::FLIP] {
        assert_eq!(
            pb.bullets.iter().filter(|b| b.content == lesson).count(),
            1,
            "{lesson}"
        );
    }
    // counters: each sample's tags counted exactly once
    for b in pb.active_bullets() {
        let expected = samples
            .iter()
            .filter(|s| {
                s.reflection
                    .as_ref()
                    .and_then(|r| r["bullet_tags"].as_array())
                    .into_iter()
                    .flatten()
                    .any(|t| t["id"] == b.id.as_str() && t["tag"] == "helpful")
            })
            .count() as u64;
        assert_eq!(b.helpful, expected, "bullet {} helpful counter", b.id);
    }
    assert_eq!(accuracy(&store, &run.id, Split::Train, 2), (4, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_while_a_run_waits_for_approval() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    let data = world::dataset(dir.path());
    let server = MockServer::start_local(world::script(None)).await.unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = train_cmd(&db, dir.path(), &server.base_url())
        .args([
            "--playbook",
            "world",
            "--dataset",
            data.to_str().unwrap(),
            "--approve",
            "wait",
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let watcher = Store::open(&db).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while watcher.pending(None).map(|p| p.is_empty()).unwrap_or(true) {
        assert!(std::time::Instant::now() < deadline, "nothing was queued");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ace::llm::install_crypto_provider();
    let body = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "ace_samples_total",
        "ace_model_calls_total",
        "ace_tokens_total",
        "ace_deltas_total",
        "ace_queue_length 1",
        "ace_harmful_bullets",
    ] {
        assert!(body.contains(name), "{name} missing from:\n{body}");
    }
    // a run its process still drives is listed as it is, not as stopped
    let listed = Command::new(ACE)
        .arg("--db")
        .arg(&db)
        .args(["runs", "list"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains("run-1") && !listed.contains('*'),
        "{listed}"
    );
    // the first batch is one sample, however many attempts it took
    assert!(
        body.contains("ace_samples_total{split=\"train\"} 1\n"),
        "one sample so far:\n{body}"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let decider = common::approver(db.clone(), true, "tester", stop.clone());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    decider.join().unwrap();
    assert!(status.success());
}

/// A curator that teaches the lesson in epoch 1 and removes it in epoch 2: validation is best after
/// epoch 1, and the final test must run on that playbook (the paper's protocol), not the last one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_runs_on_the_best_validation_revision() {
    use ace::llm::mock::Rule;
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    let lines = [
        json!({"question": "ZORB task: what is the zorb of 6?", "ground_truth": "12"}),
        json!({"question": "ZORB task: what is the zorb of 10?", "ground_truth": "20"}),
    ]
    .map(|l| l.to_string() + "\n")
    .concat();
    let data = dir.path().join("zorb.jsonl");
    std::fs::write(&data, &lines).unwrap();
    let mut script = world::script(None);
    let curator = |when: Option<bool>, times: Option<u32>, ops: serde_json::Value| Rule {
        role: Some("curator".into()),
        when_contains: if when == Some(true) {
            vec![world::ZORB.into()]
        } else {
            vec![]
        },
        unless_contains: if when == Some(false) {
            vec![world::ZORB.into()]
        } else {
            vec![]
        },
        times,
        reply: Some(json!({"reasoning": "r", "operations": ops})),
        ..Rule::default()
    };
    let first = script
        .rules
        .iter()
        .position(|r| r.role.as_deref() == Some("curator"))
        .unwrap();
    let sequence = vec![
        curator(
            Some(false),
            Some(1),
            json!([{"type": "ADD", "section": "FORMULAS AND CALCULATIONS", "content": world::ZORB}]),
        ),
        curator(Some(true), Some(1), json!([])),
        curator(
            Some(true),
            Some(1),
            json!([{"type": "REMOVE", "bullet_id": "calc-00001"}]),
        ),
        curator(None, None, json!([])),
    ];
    script.rules.splice(first..first, sequence);
    let server = MockServer::start_local(script).await.unwrap();
    let store = Arc::new(Mutex::new(Store::open(&db).unwrap()));
    let mut cfg = config(&data, ApproveMode::Auto);
    cfg.concurrency = 1;
    cfg.max_rounds = 1;
    cfg.val = Some(data.clone());
    cfg.test = Some(data.clone());
    let handle = adaptation::start(store.clone(), models(&server), cfg, None);
    let run = tokio::time::timeout(Duration::from_secs(60), handle.task)
        .await
        .expect("the run finished in time")
        .unwrap()
        .unwrap();
    let store = store.lock().unwrap();
    assert_eq!(accuracy(&store, &run, Split::Val, 1), (2, 2));
    assert_eq!(
        accuracy(&store, &run, Split::Val, 2),
        (0, 2),
        "the lesson was removed"
    );
    let summary = store.run_summary(&run).unwrap();
    let best = summary
        .run
        .best_revision
        .expect("a best validation revision");
    let test = summary
        .accuracy
        .iter()
        .find(|a| a.split == Split::Test)
        .unwrap();
    assert_eq!(
        (test.correct, test.total),
        (2, 2),
        "tested on the best playbook"
    );
    assert_eq!(
        test.revision,
        Some(best),
        "the summary says which revision was tested"
    );
    let head = store.head_revision("world").unwrap().unwrap();
    assert!(head > best);
}

/// Online, a window is scored by the playbook that answered it: the revision before its own
/// lesson, not the one after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_online_window_is_labelled_with_the_revision_that_answered_it() {
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    let data = dir.path().join("stream.jsonl");
    std::fs::write(
        &data,
        [
            json!({"question": "ZORB task: what is the zorb of 6?", "ground_truth": "12"}),
            json!({"question": "ZORB task: what is the zorb of 10?", "ground_truth": "20"}),
        ]
        .map(|l| l.to_string() + "\n")
        .concat(),
    )
    .unwrap();
    let server = MockServer::start_local(world::script(None)).await.unwrap();
    let store = Arc::new(Mutex::new(Store::open(&db).unwrap()));
    let before = {
        let mut s = store.lock().unwrap();
        s.create_playbook("world", ace::playbook::DEFAULT_SECTIONS)
            .unwrap();
        s.head_revision("world").unwrap()
    };
    let mut cfg = config(&data, ApproveMode::Auto);
    cfg.kind = RunKind::Online;
    cfg.epochs = 1;
    cfg.concurrency = 1;
    cfg.max_rounds = 1;
    let handle = adaptation::start(store.clone(), models(&server), cfg, None);
    let run = tokio::time::timeout(Duration::from_secs(60), handle.task)
        .await
        .expect("the run finished in time")
        .unwrap()
        .unwrap();
    let store = store.lock().unwrap();
    let summary = store.run_summary(&run).unwrap();
    let windows: Vec<_> = summary
        .accuracy
        .iter()
        .filter(|a| a.split == Split::Online)
        .collect();
    assert_eq!(windows.len(), 2, "{:?}", summary.accuracy);
    // window 1 was answered by the empty playbook (wrong) and taught the lesson; window 2 was
    // answered by the playbook holding it (right)
    assert_eq!((windows[0].correct, windows[0].revision), (0, before));
    assert_eq!(windows[1].correct, 1);
    let taught = windows[1].revision.expect("a revision with the lesson");
    let at = store.playbook_at(taught).unwrap();
    assert!(at.active_bullets().any(|b| b.content == world::ZORB));
    assert!(
        store.head_revision("world").unwrap().unwrap() > taught,
        "window 2's own lesson came after it"
    );
}

/// Models write ids their own way: `[CALC-00001].`, `(Calc-00001)`. They name the bullet; an id
/// that matches nothing is counted and reported, never dropped silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_as_models_write_them_are_matched_and_unknown_ones_are_counted() {
    use ace::llm::mock::{Rule, Script};
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    let data = dir.path().join("d.jsonl");
    std::fs::write(
        &data,
        json!({"question": "ZORB task: what is the zorb of 6?", "ground_truth": "12"}).to_string()
            + "\n",
    )
    .unwrap();
    let mut store = Store::open(&db).unwrap();
    store
        .create_playbook("world", ace::playbook::DEFAULT_SECTIONS)
        .unwrap();
    common::apply(
        &mut store,
        "world",
        common::batch(
            "seed",
            vec![common::add("FORMULAS AND CALCULATIONS", world::ZORB)],
        ),
    );
    let script = Script {
        model: "ids".into(),
        reject_formats: vec![],
        embeddings: vec![],
        rules: vec![
            Rule {
                role: Some("generator".into()),
                reply: Some(
                    json!({"reasoning": "per [CALC-00001]. and [xyz-00099]", "bullet_ids": ["(Calc-00001)"], "final_answer": "12"}),
                ),
                ..Rule::default()
            },
            Rule {
                role: Some("reflector".into()),
                reply: Some(
                    json!({"reasoning": "r", "error_identification": "", "root_cause_analysis": "", "correct_approach": "", "key_insight": "doubling",
                    "bullet_tags": [{"id": "[Calc-00001]", "tag": "helpful"}, {"id": "nope-00001", "tag": "harmful"}]}),
                ),
                ..Rule::default()
            },
            Rule {
                role: Some("curator".into()),
                reply: Some(json!({"reasoning": "sharpen", "operations": [
                    {"type": "UPDATE", "bullet_id": "CALC-00001.", "content": "The zorb of a number is twice it."}]})),
                ..Rule::default()
            },
        ],
    };
    let server = MockServer::start_local(script).await.unwrap();
    let store = Arc::new(Mutex::new(store));
    let mut cfg = config(&data, ApproveMode::Auto);
    cfg.epochs = 1;
    cfg.max_rounds = 1;
    let mut handle = adaptation::start(store.clone(), models(&server), cfg, None);
    let mut events = Vec::new();
    while let Some(e) = handle.events.recv().await {
        events.push(e);
    }
    let run = handle.task.await.unwrap().unwrap();
    let store = store.lock().unwrap();
    let samples = store.run_samples(&run).unwrap();
    assert_eq!(samples[0].cited, vec!["calc-00001".to_string()]);
    assert_eq!(
        samples[0].unknown_ids,
        vec!["xyz-00099".to_string(), "nope-00001".to_string()]
    );
    let pb = store.load_playbook("world").unwrap();
    let b = pb.bullet("calc-00001").unwrap();
    assert_eq!(b.helpful, 1, "the tag reached the bullet");
    assert_eq!(
        b.content, "The zorb of a number is twice it.",
        "the UPDATE too"
    );
    assert_eq!(store.run_summary(&run).unwrap().unknown_ids, 2);
    let warned = events
        .iter()
        .any(|e| matches!(e, Event::Warning { message } if message.contains("xyz-00099")));
    assert!(warned, "the run says so once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_list_shows_accuracy_tokens_cost_and_wall_time_with_a_total() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    let data = world::dataset(dir.path());
    let server = MockServer::start_local(world::script(None)).await.unwrap();
    let store = Arc::new(Mutex::new(Store::open(&db).unwrap()));
    let mut cfg = config(&data, ApproveMode::Auto);
    cfg.val = Some(data.clone());
    for _ in 0..2 {
        let handle = adaptation::start(store.clone(), models(&server), cfg.clone(), None);
        tokio::time::timeout(Duration::from_secs(60), handle.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
    drop(store);
    let out = Command::new(ACE)
        .env_remove("ACE_DB")
        .arg("--db")
        .arg(&db)
        .args(["runs", "list"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let header = text.lines().next().unwrap();
    for col in ["TRAIN", "VAL", "TEST", "TOKENS", "COST $", "WALL"] {
        assert!(header.contains(col), "{text}");
    }
    assert!(
        text.contains("100.0%"),
        "the second run's validation: {text}"
    );
    assert!(text.lines().any(|l| l.starts_with("TOTAL 2")), "{text}");
    let json = Command::new(ACE)
        .env_remove("ACE_DB")
        .arg("--db")
        .arg(&db)
        .args(["runs", "list", "--json"])
        .output()
        .unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let totals = &rows[0]["totals"];
    assert!(totals["calls"].as_u64().unwrap() > 0, "{totals}");
    assert!(totals["prompt_tokens"].as_u64().unwrap() > 0, "{totals}");
    assert_eq!(totals["val"], serde_json::json!([4, 4]), "{totals}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_call_records_are_pruned_with_what_it_frees_and_lock_files_go_with_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    let data = world::dataset(dir.path());
    let server = MockServer::start_local(world::script(None)).await.unwrap();
    let store = Arc::new(Mutex::new(Store::open(&db).unwrap()));
    let handle = adaptation::start(
        store.clone(),
        models(&server),
        config(&data, ApproveMode::Auto),
        None,
    );
    let run = tokio::time::timeout(Duration::from_secs(60), handle.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    drop(store);
    // the run's lock file went with it
    let locks = dir.path().join("ace.db.locks");
    assert!(
        !locks.exists() || std::fs::read_dir(&locks).unwrap().next().is_none(),
        "lock files left behind"
    );
    let ace = |args: &[&str]| {
        let out = Command::new(ACE)
            .env_remove("ACE_DB")
            .arg("--db")
            .arg(&db)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    // the calls read back as sent: the playbook text summed up in a line unless --full
    let calls = ace(&["runs", "calls", &run]);
    assert!(calls.starts_with("── call 1 · train/"), "{calls}");
    assert!(calls.contains("[playbook at revision"), "{calls}");
    assert!(calls.contains("zorb of"), "the tasks are shown: {calls}");
    let full = ace(&["runs", "calls", &run, "--full"]);
    assert!(!full.contains("[playbook at revision") && full.len() > calls.len());
    let listed: Vec<serde_json::Value> =
        serde_json::from_str(&ace(&["runs", "calls", &run, "--json"])).unwrap();
    let key = listed[0]["sample"].as_str().unwrap().to_string();
    let one: Vec<serde_json::Value> =
        serde_json::from_str(&ace(&["runs", "calls", &run, "--sample", &key, "--json"])).unwrap();
    assert!(!one.is_empty() && one.len() < listed.len());
    assert!(one.iter().all(|c| c["sample"] == key.as_str()));
    assert_eq!(one[0]["messages"], listed[0]["messages"]);
    // a recent run is kept by default; a dry run says what would go and deletes nothing
    assert!(ace(&["db", "prune"]).contains("0 run(s): 0 calls"));
    let dry = ace(&["db", "prune", "--older-than", "0", "--dry-run"]);
    assert!(
        dry.starts_with("would delete the model-call records of 1 run(s)"),
        "{dry}"
    );
    assert!(
        !Store::open(&db)
            .unwrap()
            .run_calls(&run, None)
            .unwrap()
            .is_empty()
    );
    let done = ace(&["db", "prune", "--older-than", "0"]);
    assert!(
        done.starts_with("deleted the model-call records of 1 run(s)"),
        "{done}"
    );
    assert!(!done.contains(" 0 calls"), "{done}");
    let store = Store::open(&db).unwrap();
    assert!(store.run_calls(&run, None).unwrap().is_empty());
    assert!(ace(&["runs", "calls", &run]).contains("no model calls recorded"));
    let blobs: i64 = store
        .connection()
        .query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(blobs, 0, "texts only those calls used went too");
    // the run's samples and accuracy stay
    assert_eq!(store.run_samples(&run).unwrap().len(), 8);
    drop(store);
    assert!(ace(&["db", "vacuum"]).starts_with("vacuumed:"));
    assert!(ace(&["runs", "show", &run]).contains("train"));
}

/// What a small real model did: copy the prompt's example op, and name a section the playbook does
/// not have. The copy is refused, the new section becomes its own op, and auto-approval holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placeholders_are_refused_and_a_new_section_waits_for_a_person() {
    use ace::llm::mock::Rule;
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    let data = dir.path().join("d.jsonl");
    std::fs::write(
        &data,
        json!({"question": "ZORB task: what is the zorb of 6?", "ground_truth": "12"}).to_string()
            + "\n",
    )
    .unwrap();
    let mut script = world::script(None);
    let first = script
        .rules
        .iter()
        .position(|r| r.role.as_deref() == Some("curator"))
        .unwrap();
    script.rules.insert(
        first,
        Rule {
            role: Some("curator".into()),
            reply: Some(json!({"reasoning": "copying the example", "operations": [
                {"type": "ADD", "section": "<an existing section name>", "content": "<one new, specific, reusable lesson>"},
                {"type": "ADD", "section": "NUMBER THEORY", "content": world::ZORB}
            ]})),
            ..Rule::default()
        },
    );
    let server = MockServer::start_local(script).await.unwrap();
    // by the person's setting, such a lesson goes to OTHERS instead, and applies
    let other_db = dir.path().join("others.db");
    let other = Arc::new(Mutex::new(Store::open(&other_db).unwrap()));
    let mut cfg = config(&data, ApproveMode::Auto);
    cfg.epochs = 1;
    cfg.max_rounds = 1;
    let mut to_others = cfg.clone();
    to_others.unknown_sections_to_others = true;
    let handle = adaptation::start(other.clone(), models(&server), to_others, None);
    handle.task.await.unwrap().unwrap();
    {
        let pb = other.lock().unwrap().load_playbook("world").unwrap();
        assert!(pb.sections.iter().all(|s| s.name != "NUMBER THEORY"));
        assert!(
            pb.active_bullets()
                .any(|b| b.content == world::ZORB && b.section == "OTHERS"),
            "the lesson went to OTHERS"
        );
    }
    let store = Arc::new(Mutex::new(Store::open(&db).unwrap()));
    let mut handle = adaptation::start(store.clone(), models(&server), cfg, None);
    let mut events = Vec::new();
    while let Some(e) = handle.events.recv().await {
        events.push(e);
    }
    handle.task.await.unwrap().unwrap();
    let warned = events.iter().any(|e| {
        matches!(e, Event::Warning { message } if message.contains("held for a person: it creates section 'NUMBER THEORY'"))
    });
    assert!(warned, "{events:?}");
    let store = store.lock().unwrap();
    let pb = store.load_playbook("world").unwrap();
    assert!(
        pb.sections.iter().all(|s| s.name != "NUMBER THEORY"),
        "no section created"
    );
    assert!(pb.sections.iter().all(|s| !s.name.starts_with('<')));
    assert!(pb.bullets.iter().all(|b| !b.content.starts_with('<')));
    let queued = store.pending(None).unwrap();
    let batch = queued
        .iter()
        .find(|b| b.is_pending())
        .expect("the batch waits");
    let ops: Vec<String> = batch.ops.iter().map(|o| o.op.describe()).collect();
    assert!(ops[0].starts_with("ADD_SECTION 'NUMBER THEORY'"), "{ops:?}");
    assert_eq!(ops.len(), 2, "{ops:?}");
    let dropped = &batch.provenance.dropped;
    assert!(
        dropped.iter().any(|d| d.reason.contains("placeholder")),
        "{dropped:?}"
    );
}

/// A model whose answers stay unusable after the repair: its calls reached the server, so the run
/// counts them (calls and tokens agree with what the server saw).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_that_reached_the_server_is_counted_even_unusable_ones() {
    use ace::llm::mock::Rule;
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    let data = dir.path().join("d.jsonl");
    std::fs::write(
        &data,
        json!({"question": "ZORB task: what is the zorb of 6?", "ground_truth": "12"}).to_string()
            + "\n",
    )
    .unwrap();
    let mut script = world::script(None);
    // the generator and the curator never answer usable JSON
    for role in ["generator", "curator"] {
        script.rules.insert(
            0,
            Rule {
                role: Some(role.into()),
                reply: Some(serde_json::Value::String("I am thinking about it".into())),
                ..Rule::default()
            },
        );
    }
    let server = MockServer::start_local(script).await.unwrap();
    let store = Arc::new(Mutex::new(Store::open(&db).unwrap()));
    let mut cfg = config(&data, ApproveMode::Auto);
    cfg.epochs = 1;
    cfg.max_rounds = 1;
    let handle = adaptation::start(store.clone(), models(&server), cfg, None);
    let run = handle.task.await.unwrap().unwrap();
    let seen = |role: &str| {
        server
            .requests()
            .iter()
            .filter(|r| r.role.as_deref() == Some(role))
            .count() as u64
    };
    let summary = store.lock().unwrap().run_summary(&run).unwrap();
    for role in ["generator", "reflector", "curator"] {
        let counted = summary.roles.get(role).map_or(0, |t| t.calls);
        assert_eq!(
            counted,
            seen(role),
            "{role}: counted {counted}, the server saw {}",
            seen(role)
        );
    }
    assert_eq!(seen("generator"), 2, "an answer and its repair");
    assert_eq!(seen("curator"), 2);
    // each call says what came of it
    assert_eq!(
        summary.outcomes.get("unusable"),
        Some(&4),
        "{:?}",
        summary.outcomes
    );
    assert_eq!(summary.outcomes.get("ok"), Some(&seen("reflector")));
}

/// A call the server keeps failing (HTTP 500 on every retry) stops the run, but it reached the
/// server: it is recorded as `failed` with its attempts, and the calls its sample had already made
/// (the generator's) are kept under a key of their own, so the run's totals still agree with what
/// the server saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_failed_at_the_server_and_its_samples_calls_are_counted() {
    use ace::llm::mock::Rule;
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    let data = dir.path().join("d.jsonl");
    std::fs::write(
        &data,
        json!({"question": "ZORB task: what is the zorb of 6?", "ground_truth": "12"}).to_string()
            + "\n",
    )
    .unwrap();
    let mut script = world::script(None);
    script.rules.insert(
        0,
        Rule {
            role: Some("reflector".into()),
            status: Some(500),
            body: Some(r#"{"error":{"message":"overloaded"}}"#.into()),
            ..Rule::default()
        },
    );
    let server = MockServer::start_local(script).await.unwrap();
    let store = Arc::new(Mutex::new(Store::open(&db).unwrap()));
    let mut cfg = config(&data, ApproveMode::Auto);
    cfg.epochs = 1;
    cfg.max_rounds = 1;
    let handle = adaptation::start(store.clone(), models(&server), cfg, None);
    let failed = handle.task.await.unwrap();
    assert!(
        failed.is_err(),
        "the run stops on a server that keeps failing"
    );
    let seen = |role: &str| {
        server
            .requests()
            .iter()
            .filter(|r| r.role.as_deref() == Some(role))
            .count() as u64
    };
    let store = store.lock().unwrap();
    let run = store.runs().unwrap()[0].id.clone();
    let summary = store.run_summary(&run).unwrap();
    let generator = summary.roles.get("generator").cloned().unwrap_or_default();
    assert_eq!(generator.calls, seen("generator"), "{summary:?}");
    assert_eq!(generator.calls, 1);
    let reflector = summary.roles.get("reflector").cloned().unwrap_or_default();
    assert_eq!(reflector.calls, 1, "one call, given up: {summary:?}");
    assert!(seen("reflector") > 1, "the client retried a 500");
    assert_eq!(
        reflector.requests,
        seen("reflector"),
        "every request the server saw is counted"
    );
    assert_eq!(
        summary.outcomes.get("failed"),
        Some(&1),
        "{:?}",
        summary.outcomes
    );
    assert_eq!(
        summary.outcomes.get("ok"),
        Some(&1),
        "{:?}",
        summary.outcomes
    );
    assert_eq!(summary.samples, 0, "no sample finished");
}

/// Learning from an agent's recorded runs: no generator call is made; the reflector is shown the
/// agent's answer, steps and feedback; its tags count the bullets the agent cited; the curator's
/// lesson waits in the queue with the trace as its evidence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_are_reflected_on_and_their_lessons_queued_without_a_generator() {
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    let traces = dir.path().join("traces.jsonl");
    let lines = [
        json!({"task": "ZORB task: what is the zorb of 6?", "answer": "6", "steps": ["looked it up", "guessed 6"],
               "bullet_ids": ["calc-00001", "nope-00009"], "success": false, "feedback": "the user said: wrong, it is 12"}),
        json!({"messages": [{"role": "user", "content": "FLIP task: flip 12."}, {"role": "assistant", "content": "By [calc-00001] it is 12"}],
               "ground_truth": "21"}),
    ];
    std::fs::write(
        &traces,
        lines
            .iter()
            .map(|l| l.to_string() + "\n")
            .collect::<String>(),
    )
    .unwrap();
    let server = MockServer::start_local(world::script(None)).await.unwrap();
    let store = Arc::new(Mutex::new(Store::open(&db).unwrap()));
    {
        let mut s = store.lock().unwrap();
        s.create_playbook("world", ace::playbook::DEFAULT_SECTIONS)
            .unwrap();
        s.apply(
            "world",
            &common::batch(
                "seed",
                vec![common::add("FORMULAS AND CALCULATIONS", "Show your work.")],
            ),
            &ace::delta::ApplyOptions::default(),
        )
        .unwrap();
    }
    let mut cfg = config(&traces, ApproveMode::Queue);
    cfg.traces = true;
    cfg.epochs = 1;
    cfg.batch_size = 2;
    let handle = adaptation::start(store.clone(), models(&server), cfg, None);
    let run = handle.task.await.unwrap().unwrap();
    let roles: Vec<Option<String>> = server.requests().iter().map(|r| r.role.clone()).collect();
    assert!(
        !roles.iter().any(|r| r.as_deref() == Some("generator")),
        "{roles:?}"
    );
    let reflector: Vec<String> = server
        .requests()
        .iter()
        .filter(|r| r.role.as_deref() == Some("reflector"))
        .map(|r| r.body.to_string())
        .collect();
    assert_eq!(reflector.len(), 2);
    let zorb = reflector.iter().find(|b| b.contains("zorb of 6")).unwrap();
    assert!(zorb.contains("guessed 6"), "the agent's steps are shown");
    assert!(zorb.contains("wrong, it is 12"), "and its host's feedback");
    let store = store.lock().unwrap();
    let summary = store.run_summary(&run).unwrap();
    assert_eq!(summary.samples, 2);
    assert!(!summary.roles.contains_key("generator"));
    let samples = store.run_samples(&run).unwrap();
    assert!(samples.iter().all(|s| !s.correct), "both traces went wrong");
    let zorb = samples
        .iter()
        .find(|s| s.question.contains("zorb"))
        .unwrap();
    assert_eq!(zorb.cited, ["calc-00001"], "the agent's citation counts");
    assert!(
        zorb.unknown_ids.contains(&"nope-00009".to_string()),
        "an id that matches no bullet is counted, not dropped: {:?}",
        zorb.unknown_ids
    );
    let pending = store.pending(None).unwrap();
    let batch = pending
        .iter()
        .find(|b| b.is_pending())
        .expect("a proposal waits");
    let ops: Vec<String> = batch.ops.iter().map(|o| format!("{:?}", o.op)).collect();
    assert!(ops.iter().any(|o| o.contains(world::ZORB)), "{ops:?}");
    assert!(
        batch.provenance.samples.iter().any(|e| e.answer == "6"),
        "the trace is the evidence: {:?}",
        batch.provenance.samples
    );
    let pb = store.load_playbook("world").unwrap();
    assert_eq!(
        pb.active_bullets().count(),
        1,
        "nothing applied without a person"
    );
}

/// A cost limit stops the run cleanly before a call would pass it (nothing spent beyond it), the run
/// says why and stays resumable, and a resume with a larger limit (its earlier spend counted) ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cost_limit_stops_before_it_is_passed_and_a_larger_one_resumes_to_the_end() {
    use ace::llm::ledger::Price;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    let data = world::dataset(dir.path());
    let server = MockServer::start_local(world::script(None)).await.unwrap();
    let priced = |ledger: &Ledger| {
        let mut cfg = EndpointConfig::new(server.base_url(), "scripted");
        cfg.min_backoff = Duration::from_millis(5);
        cfg.max_tokens = Some(200);
        let prices = PriceTable(
            [(
                "scripted".to_string(),
                Price {
                    input_per_mtok: 1000.0,
                    output_per_mtok: 1000.0,
                    cached_input_per_mtok: None,
                },
            )]
            .into(),
        );
        let client: Arc<dyn LlmClient> =
            Arc::new(OpenAiClient::new(cfg, ledger.clone(), prices).unwrap());
        Models::one(client, ledger.clone())
    };
    let store = Arc::new(Mutex::new(Store::open(&db).unwrap()));
    let mut cfg = config(&data, ApproveMode::Auto);
    cfg.concurrency = 1;
    let ledger = Ledger::default();
    let max = 2.0;
    ledger.set_budget(max, 0.0);
    let mut handle = adaptation::start(store.clone(), priced(&ledger), cfg.clone(), None);
    let mut said = None;
    while let Some(e) = handle.events.recv().await {
        if let ace::adaptation::Event::Warning { message } = e
            && message.contains("cost limit")
        {
            said = Some(message);
        }
    }
    let stopped = handle.task.await.unwrap();
    assert!(stopped.is_err());
    let said = said.expect("the run says why it stopped");
    assert!(said.contains("$2.0000"), "{said}");
    let run = store.lock().unwrap().runs().unwrap()[0].clone();
    assert_eq!(run.status, ace::adaptation::RunStatus::Cancelled);
    assert!(run.error.as_deref().unwrap_or("").contains("cost limit"));
    let spent: f64 = {
        let s = store.lock().unwrap().run_summary(&run.id).unwrap();
        s.roles.values().map(|r| r.cost_usd).sum()
    };
    assert!(spent > 0.0 && spent <= max, "spent {spent} of {max}");
    // resumed with a larger limit, its earlier spend carried: it ends
    let ledger = Ledger::default();
    ledger.set_budget(1000.0, spent);
    let handle = adaptation::start(store.clone(), priced(&ledger), cfg, Some(run.id.clone()));
    handle.task.await.unwrap().unwrap();
    let run = store.lock().unwrap().run(&run.id).unwrap();
    assert_eq!(run.status, ace::adaptation::RunStatus::Finished);
    // what the money bought
    let summary = store.lock().unwrap().run_summary(&run.id).unwrap();
    assert_eq!(summary.approved_bullets, 2, "the ZORB and FLIP lessons");
    let shown = crate::cli::ok(&db, &["runs", "show", &run.id]);
    let per_bullet = format!("${:.4} per approved bullet (2)", summary.cost_usd() / 2.0);
    assert!(shown.contains(&per_bullet), "{shown}");
}

/// `--approve gate:0`: a proposal that does not lower accuracy on the validation set is applied
/// (its trial kept with it); one that lowers it waits for a person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_applies_a_right_lesson_and_holds_one_that_hurts() {
    use ace::llm::mock::Rule;
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    let data = world::dataset(dir.path());
    // a right lesson: the world's curator proposes it and the gate lets it through
    let server = MockServer::start_local(world::script(None)).await.unwrap();
    let store = Arc::new(Mutex::new(Store::open(&db).unwrap()));
    let mut cfg = config(&data, "gate:0".parse().unwrap());
    cfg.val = Some(data.clone());
    cfg.epochs = 1;
    cfg.batch_size = 4;
    let handle = adaptation::start(store.clone(), models(&server), cfg.clone(), None);
    handle.task.await.unwrap().unwrap();
    {
        let s = store.lock().unwrap();
        let pb = s.load_playbook("world").unwrap();
        assert!(
            pb.active_bullets().any(|b| b.content == world::ZORB),
            "applied"
        );
        let batch = s
            .queue(Some("world"), false)
            .unwrap()
            .into_iter()
            .next()
            .unwrap();
        let trials = s.trials(batch.id).unwrap();
        assert_eq!(trials.len(), 1);
        assert!(
            trials[0].report.delta_points() > 0.0,
            "{:?}",
            trials[0].report
        );
        // the validation after it answered with the lesson in view
        let id = pb
            .active_bullets()
            .find(|b| b.content == world::ZORB)
            .unwrap()
            .id
            .clone();
        let e = s.bullet_exposure("world", &id).unwrap();
        assert!(e.samples > 0 && e.shown == e.samples, "{e:?}");
    }
    // an edit that breaks the lesson: its trial loses points, so it waits for a person
    let mut script = world::script(None);
    let id = store
        .lock()
        .unwrap()
        .load_playbook("world")
        .unwrap()
        .active_bullets()
        .find(|b| b.content == world::ZORB)
        .unwrap()
        .id
        .clone();
    script.rules.insert(
        0,
        Rule {
            role: Some("curator".into()),
            reply: Some(json!({"reasoning": "r", "operations": [{"type": "UPDATE", "bullet_id": id, "content": "Numbers are fun."}]})),
            ..Rule::default()
        },
    );
    // a FLIP task is answered wrong, so the curator is asked
    let flip = dir.path().join("flip.jsonl");
    std::fs::write(
        &flip,
        json!({"question": "FLIP task: flip 56.", "ground_truth": "65"}).to_string() + "\n",
    )
    .unwrap();
    let server = MockServer::start_local(script).await.unwrap();
    let mut cfg2 = cfg.clone();
    cfg2.dataset = flip;
    cfg2.batch_size = 1;
    cfg2.max_rounds = 1;
    let mut handle = adaptation::start(store.clone(), models(&server), cfg2, None);
    let mut held = None;
    while let Some(e) = handle.events.recv().await {
        match e {
            ace::adaptation::Event::Warning { message }
                if message.contains("held for a person") =>
            {
                held = Some(message)
            }
            ace::adaptation::Event::WaitingForApproval { .. } => handle.cancel.cancel(),
            _ => {}
        }
    }
    let _ = handle.task.await;
    let held = held.expect("the hurting edit is held");
    assert!(held.contains("lost more than 0 points"), "{held}");
    let s = store.lock().unwrap();
    assert!(
        s.load_playbook("world")
            .unwrap()
            .active_bullets()
            .any(|b| b.content == world::ZORB),
        "the lesson is unchanged"
    );
    let pending = s.pending(Some("world")).unwrap();
    assert_eq!(pending.len(), 1);
    assert!(s.trials(pending[0].id).unwrap()[0].report.delta_points() < 0.0);
}

#[test]
fn a_trial_takes_its_samples_from_the_playbooks_newest_dataset_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("ace.db")).unwrap();
    store.create_playbook("p", &["S"]).unwrap();
    store.create_playbook("other", &["S"]).unwrap();
    assert!(store.last_run("p").unwrap().is_none());
    let run = |store: &mut Store, playbook: &str, dataset: &str, traces: bool| {
        store
            .create_run(&RunConfig {
                playbook: playbook.into(),
                dataset: dataset.into(),
                traces,
                ..Default::default()
            })
            .unwrap()
    };
    run(&mut store, "p", "old.jsonl", false);
    let newest = run(&mut store, "p", "new.jsonl", false);
    // a later run of another playbook, and one learning from agents' traces, are not it
    run(&mut store, "other", "x.jsonl", false);
    run(&mut store, "p", "", true);
    let last = store.last_run("p").unwrap().unwrap();
    assert_eq!(
        (last.id, last.config.dataset),
        (newest, std::path::PathBuf::from("new.jsonl"))
    );
}
