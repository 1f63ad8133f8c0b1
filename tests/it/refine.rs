//! Grow and refine, end to end over loopback HTTP: near duplicates judged by embeddings (the mock
//! model serves `/v1/embeddings`) or by word overlap, a token budget auto-approval never exceeds,
//! retrieval of a buried bullet from a large imported playbook, and `ace playbook dedup`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ace::adaptation::{self, ApproveMode, Event, Models, RunConfig, RunStatus};
use ace::approval::BatchStatus;
use ace::delta::DeltaOp;
use ace::environment::Environment;
use ace::llm::mock::{EmbedRule, MockServer, Rule, Script};
use ace::llm::{EndpointConfig, Ledger, LlmClient, OpenAiClient, OpenAiEmbedder, PriceTable};
use ace::playbook::format::{self, Format};
use ace::prompts::Retrieval;
use ace::store::Store;
use serde_json::json;

use crate::common::{self, test_data};
use crate::world;

const ACE: &str = env!("CARGO_BIN_EXE_ace");

fn models(server: &MockServer, embedder: bool) -> Models {
    let mut cfg = EndpointConfig::new(server.base_url(), "scripted");
    cfg.min_backoff = Duration::from_millis(5);
    cfg.max_retries = 1;
    let ledger = Ledger::default();
    let client: Arc<dyn LlmClient> =
        Arc::new(OpenAiClient::new(cfg.clone(), ledger.clone(), PriceTable::default()).unwrap());
    cfg.model = "embed-test".into();
    Models::one(client, ledger).with_embedder(
        embedder
            .then(|| Arc::new(OpenAiEmbedder::new(cfg).unwrap()) as Arc<dyn ace::llm::Embedder>),
    )
}

fn dataset(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join("units.jsonl");
    let lines: String = (0..n)
        .map(|i| {
            json!({"question": format!("UNITS task {i}: how many cm in {i} m?"), "ground_truth": format!("{}", i * 100)})
                .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(&path, lines).unwrap();
    path
}

fn rule(role: &str, reply: serde_json::Value) -> Rule {
    Rule {
        role: Some(role.into()),
        reply: Some(reply),
        ..Rule::default()
    }
}

/// A curator answer proposing these ADDs in one batch.
fn adds(contents: &[&str]) -> serde_json::Value {
    let ops: Vec<_> = contents
        .iter()
        .map(|c| json!({"type": "ADD", "section": "PROBLEM-SOLVING HEURISTICS AND WORKFLOWS", "content": c}))
        .collect();
    json!({"reasoning": "a lesson", "operations": ops})
}

/// A world where every answer is wrong, so every batch reaches the curator, who answers `curator`
/// in order (one reply per batch).
fn script(curator: Vec<serde_json::Value>, embeddings: Vec<EmbedRule>) -> Script {
    let mut rules = vec![
        rule(
            "generator",
            json!({"reasoning": "guess", "bullet_ids": [], "final_answer": "0"}),
        ),
        rule(
            "reflector",
            json!({"reasoning": "r", "error_identification": "wrong unit", "root_cause_analysis": "c", "correct_approach": "a", "key_insight": "units matter", "bullet_tags": []}),
        ),
    ];
    for reply in curator {
        rules.push(Rule {
            times: Some(1),
            ..rule("curator", reply)
        });
    }
    rules.push(rule(
        "curator",
        json!({"reasoning": "nothing new", "operations": []}),
    ));
    Script {
        model: "refine".into(),
        reject_formats: vec![],
        embeddings,
        rules,
    }
}

fn config(data: &Path, playbook: &str) -> RunConfig {
    RunConfig {
        playbook: playbook.into(),
        dataset: data.to_path_buf(),
        env: Environment::Exact,
        epochs: 1,
        batch_size: 1,
        concurrency: 1,
        approve: ApproveMode::Auto,
        max_rounds: 1,
        poll_ms: 20,
        ..RunConfig::default()
    }
}

/// Runs to the end; the run id and every event.
async fn run(store: &Arc<Mutex<Store>>, models: Models, config: RunConfig) -> (String, Vec<Event>) {
    let mut handle = adaptation::start(store.clone(), models, config, None);
    let mut events = Vec::new();
    while let Some(e) = handle.events.recv().await {
        events.push(e);
    }
    let run = tokio::time::timeout(Duration::from_secs(60), handle.task)
        .await
        .expect("the run finished in time")
        .unwrap()
        .unwrap_or_else(|e| panic!("the run failed: {e}; events: {events:?}"));
    assert!(
        matches!(events.last(), Some(Event::Finished { status, .. }) if *status == RunStatus::Finished),
        "{events:?}"
    );
    (run, events)
}

fn messages(events: &[Event], warnings: bool) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Warning { message } if warnings => Some(message.clone()),
            Event::Notice { message } if !warnings => Some(message.clone()),
            _ => None,
        })
        .collect()
}

const FIRST: &str = "Always double-check the units before answering.";
const SECOND: &str = "Verify measurement dimensions prior to replying.";
const THIRD: &str = "Confirm which units every quantity uses first.";

/// Unit vectors: the lesson's three wordings point the same way; anything else is hashed words.
fn lesson_vectors() -> Vec<EmbedRule> {
    let v = |x: f32, y: f32| {
        let mut v = vec![0f32; 64];
        v[0] = x;
        v[1] = y;
        Some(v)
    };
    vec![
        EmbedRule {
            when_contains: vec!["double-check the units".into()],
            vector: v(1.0, 0.0),
            ..EmbedRule::default()
        },
        EmbedRule {
            when_contains: vec!["measurement dimensions".into()],
            vector: v(0.98, 0.2),
            ..EmbedRule::default()
        },
        EmbedRule {
            when_contains: vec!["units every quantity".into()],
            vector: v(0.95, 0.31),
            ..EmbedRule::default()
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paraphrased_re_proposals_of_one_lesson_end_as_one_bullet() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), 4);
    // batch 1 proposes the lesson twice in other words; later batches say it again, differently
    let curator = vec![
        adds(&[FIRST, SECOND]),
        adds(&[SECOND]),
        adds(&[THIRD]),
        adds(&[FIRST]),
    ];
    let server = MockServer::start_local(script(curator, lesson_vectors()))
        .await
        .unwrap();
    let store = Arc::new(Mutex::new(Store::open(&dir.path().join("ace.db")).unwrap()));
    let (_, events) = run(&store, models(&server, true), config(&data, "units")).await;

    let notices = messages(&events, false);
    assert!(
        notices
            .iter()
            .any(|n| n.contains("judged by embeddings (embed-test)")),
        "the run says once which method it uses: {notices:?}"
    );
    let store = store.lock().unwrap();
    let playbook = store.load_playbook("units").unwrap();
    let active: Vec<_> = playbook.active_bullets().collect();
    assert_eq!(
        active.len(),
        1,
        "one lesson, one bullet: {:?}",
        active.iter().map(|b| &b.content).collect::<Vec<_>>()
    );
    assert_eq!(active[0].content, FIRST);
    assert_eq!(
        active[0].helpful, 3,
        "each re-proposal counts for the bullet it repeats"
    );
    // the queue shows the merges with their similarity
    let batches = store.queue(Some("units"), false).unwrap();
    let merges: Vec<_> = batches
        .iter()
        .flat_map(|b| &b.ops)
        .filter_map(|o| match &o.op {
            DeltaOp::Merge(m) => Some(m.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(merges.len(), 3, "{merges:?}");
    assert!(
        merges
            .iter()
            .all(|m| m.similarity.is_some_and(|s| (0.85..=1.0).contains(&s))
                && m.bullet_id == active[0].id
                && m.proposed.is_some())
    );
    // the same-batch paraphrase collapsed, with the reason kept for the reviewer
    let first = &batches.iter().min_by_key(|b| b.id).unwrap().provenance;
    assert!(
        first
            .dropped
            .iter()
            .any(|d| d.op.contains("measurement") && d.reason.contains("repeats another ADD")),
        "{:?}",
        first.dropped
    );
    // a text is embedded once: later batches read its vector from the cache
    let embedded: Vec<String> = server
        .requests()
        .iter()
        .filter(|r| r.role.as_deref() == Some("embedding"))
        .flat_map(|r| {
            r.body["input"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|v| v.as_str().unwrap_or_default().to_string())
        })
        .collect();
    assert_eq!(
        embedded.iter().filter(|t| t.as_str() == FIRST).count(),
        1,
        "{embedded:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_embeddings_word_overlap_judges_and_the_run_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), 3);
    // the same lesson with its words reordered and recased is a duplicate by word overlap too
    let curator = vec![
        adds(&[FIRST]),
        adds(&["before answering, always double-check the UNITS"]),
    ];
    let server = MockServer::start_local(script(curator, vec![]))
        .await
        .unwrap();
    let store = Arc::new(Mutex::new(Store::open(&dir.path().join("ace.db")).unwrap()));
    let (_, events) = run(&store, models(&server, false), config(&data, "units")).await;
    let notices = messages(&events, false);
    assert!(
        notices.iter().any(|n| n.contains("word overlap")),
        "{notices:?}"
    );
    assert!(
        !server
            .requests()
            .iter()
            .any(|r| r.role.as_deref() == Some("embedding"))
    );
    let store = store.lock().unwrap();
    assert_eq!(
        store
            .load_playbook("units")
            .unwrap()
            .active_bullets()
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embeddings_outage_falls_back_to_word_overlap_with_one_warning() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), 4);
    let outage = vec![EmbedRule {
        status: Some(503),
        ..EmbedRule::default()
    }];
    let curator = vec![adds(&[FIRST]), adds(&[FIRST]), adds(&[FIRST])];
    let server = MockServer::start_local(script(curator, outage))
        .await
        .unwrap();
    let store = Arc::new(Mutex::new(Store::open(&dir.path().join("ace.db")).unwrap()));
    let (_, events) = run(&store, models(&server, true), config(&data, "units")).await;
    let warnings: Vec<String> = messages(&events, true)
        .into_iter()
        .filter(|w| w.contains("embeddings endpoint failed"))
        .collect();
    assert_eq!(warnings.len(), 1, "said once, not per batch: {warnings:?}");
    assert!(warnings[0].contains("word overlap"), "{warnings:?}");
    // the run went on and still folded the repeats
    let store = store.lock().unwrap();
    let playbook = store.load_playbook("units").unwrap();
    assert_eq!(playbook.active_bullets().count(), 1);
    assert_eq!(playbook.active_bullets().next().unwrap().helpful, 2);
}

/// The published AppWorld playbook (359 bullets, ~24k tokens) with the world's ZORB lesson buried in
/// the middle of a section.
fn buried_playbook(store: &mut Store) -> String {
    let text = std::fs::read_to_string(test_data("playbooks/appworld_online_trained_playbook.txt"))
        .unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let at = lines.len() / 2;
    let at = (at..lines.len())
        .find(|&i| lines[i].starts_with('['))
        .unwrap();
    lines.insert(at, format!("[zorb-99001] {}", world::ZORB));
    let parsed = format::parse(Format::Ace, &lines.join("\n"), "big").unwrap();
    store
        .import_playbook(
            "big",
            &ace::delta::import_batch(&parsed, "import"),
            parsed.next_bullet_number,
        )
        .unwrap();
    "zorb-99001".into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buried_bullet_of_a_large_playbook_reaches_the_prompt_within_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    let data = world::dataset(dir.path());
    let mut store = Store::open(&dir.path().join("ace.db")).unwrap();
    let zorb = buried_playbook(&mut store);
    let whole = store.playbook_tokens("big").unwrap();
    let budget = 1_500;
    assert!(
        whole > 10 * budget,
        "the playbook is far over the prompt budget"
    );
    // the generator cites the bullet twice (in its reasoning and its list): counted once
    let mut script = world::script(None);
    for r in &mut script.rules {
        let role = r.role.clone();
        let Some(reply) = r.reply.as_mut() else {
            continue;
        };
        match role.as_deref() {
            Some("generator") => {
                reply["reasoning"] = json!(format!("per [{zorb}], as [{zorb}] says"));
                reply["bullet_ids"] = json!([zorb]);
            }
            Some("reflector") => reply["bullet_tags"] = json!([{"id": zorb, "tag": "helpful"}]),
            _ => {}
        }
    }
    let server = MockServer::start_local(script).await.unwrap();
    let store = Arc::new(Mutex::new(store));
    let mut cfg = config(&data, "big");
    cfg.prompt_budget = budget;
    cfg.retrieval = Retrieval::Auto;
    cfg.approve = ApproveMode::Queue;
    cfg.max_rounds = 1;
    let (run_id, _) = run(&store, models(&server, false), cfg).await;

    let store = store.lock().unwrap();
    let playbook = store.load_playbook("big").unwrap();
    let samples = store.run_samples(&run_id).unwrap();
    assert_eq!(samples.len(), 4);
    for s in &samples {
        let shown = s
            .shown
            .as_ref()
            .expect("a selection, not the whole playbook");
        let bullets: u64 = shown
            .iter()
            .map(|id| ace::prompts::bullet_cost(playbook.bullet(id).unwrap()))
            .sum();
        assert!(bullets <= budget, "{bullets} tokens shown");
        if s.question.contains("ZORB") {
            assert!(shown.contains(&zorb), "{shown:?}");
            assert!(s.first_correct, "the buried lesson answered {}", s.question);
            assert_eq!(s.cited, vec![zorb.clone()], "cited once");
        }
    }
    // what the generator received holds the lesson and stays within the budget
    for r in server
        .requests()
        .iter()
        .filter(|r| r.role.as_deref() == Some("generator"))
    {
        let text = r.text();
        assert!(
            ace::prompts::tokens(&text) < budget as usize + 1_500,
            "prompt of {} tokens",
            ace::prompts::tokens(&text)
        );
        if text.contains("zorb of") {
            assert!(text.contains(world::ZORB));
        }
    }
    // every stored prompt, its selection rebuilt from the stored list, is what the server received
    let sent: Vec<serde_json::Value> = server
        .requests()
        .iter()
        .filter(|r| r.role.as_deref() != Some("embedding"))
        .map(|r| r.body["messages"].clone())
        .collect();
    let calls = store.run_calls(&run_id, None).unwrap();
    assert_eq!(calls.len(), sent.len());
    for call in &calls {
        let rebuilt = serde_json::to_value(&call.messages).unwrap();
        assert!(sent.contains(&rebuilt), "{rebuilt}");
    }
    // tags apply by policy, whatever the approval mode
    let bullet = playbook.bullet(&zorb).unwrap();
    assert_eq!(bullet.helpful, 2, "one helpful tag per sample that used it");
}

/// A playbook with a budget just above its size: a harmful bullet, an unused one, and room for
/// nothing more.
fn budgeted(store: &mut Store) -> (String, String) {
    store
        .create_playbook("tight", ace::playbook::DEFAULT_SECTIONS)
        .unwrap();
    let out = common::apply(
        store,
        "tight",
        common::batch(
            "seed",
            vec![
                common::add(
                    "PROBLEM-SOLVING HEURISTICS AND WORKFLOWS",
                    "Guess the answer without reading the question closely at all.",
                ),
                common::add(
                    "PROBLEM-SOLVING HEURISTICS AND WORKFLOWS",
                    "Answer in the units the question asks for.",
                ),
            ],
        ),
    );
    let ids = common::added(&out);
    common::apply(
        store,
        "tight",
        common::batch("tags", vec![common::tag(&ids[0], 0, 3)]),
    );
    let size = store.playbook_tokens("tight").unwrap();
    store.set_token_budget("tight", Some(size + 5)).unwrap();
    (ids[0].clone(), ids[1].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_approval_never_takes_a_playbook_over_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), 3);
    let mut store = Store::open(&dir.path().join("ace.db")).unwrap();
    let (harmful, _useful) = budgeted(&mut store);
    let budget = store.token_budget("tight").unwrap().unwrap();
    // each batch proposes a new lesson of about the harmful bullet's size
    let curator = vec![
        adds(&["Convert metres to centimetres by multiplying by one hundred."]),
        adds(&["Read the question's unit twice and answer in exactly that unit."]),
        adds(&["State the unit next to the number in the final answer line."]),
    ];
    let server = MockServer::start_local(script(curator, vec![]))
        .await
        .unwrap();
    let store = Arc::new(Mutex::new(store));
    let (_, events) = run(&store, models(&server, false), config(&data, "tight")).await;

    let store = store.lock().unwrap();
    // at every revision the run wrote, the playbook was within its budget
    let mut sizes = Vec::new();
    for r in store.revisions(Some("tight"), 100).unwrap() {
        let at = store.playbook_at(r.id).unwrap();
        sizes.push(ace::prompts::playbook_tokens(&at));
    }
    assert!(sizes.iter().all(|s| *s <= budget), "{sizes:?} of {budget}");
    // the first lesson fitted only with the harmful bullet pruned, and the run said so
    let notices = messages(&events, false);
    assert!(
        notices.iter().any(|n| n.contains("applied with 1 prune")),
        "{notices:?}"
    );
    let playbook = store.load_playbook("tight").unwrap();
    assert!(!playbook.bullet(&harmful).unwrap().is_active());
    // later ones could not fit: held for a person, with the reason, and said so
    let warnings = messages(&events, true);
    assert!(
        warnings.iter().any(|w| w.contains("held for a person")),
        "{warnings:?}"
    );
    let held = store.pending(Some("tight")).unwrap();
    assert!(!held.is_empty());
    for b in &held {
        let note = b.provenance.budget.as_ref().expect("a budget note");
        assert!(note.proposed > note.budget, "{note:?}");
        assert_eq!(b.status, BatchStatus::Pending);
    }
    // the pruning batch records what it let go and why
    let applied = store.queue(Some("tight"), false).unwrap();
    let pruned = applied
        .iter()
        .filter_map(|b| b.provenance.budget.as_ref())
        .find(|n| !n.prunes.is_empty())
        .expect("a batch with prunes");
    assert!(
        pruned.prunes[0]
            .reason
            .contains("more harmful than helpful"),
        "{pruned:?}"
    );
}

#[test]
fn a_guarded_approval_over_budget_decides_and_writes_nothing() {
    let mut store = Store::open_in_memory().unwrap();
    budgeted(&mut store);
    let head = store.head_revision("tight").unwrap();
    let ops = vec![(
        "k".to_string(),
        common::add(
            "PROBLEM-SOLVING HEURISTICS AND WORKFLOWS",
            "A long new lesson that cannot possibly fit in the few tokens left in the budget.",
        ),
    )];
    let id = store
        .propose(
            "tight",
            "over",
            None,
            "r",
            &ops,
            &ace::approval::Provenance::default(),
        )
        .unwrap()
        .unwrap();
    let err = store
        .approve_within_budget(id, "auto-policy", ace::delta::Source::AutoPolicy)
        .unwrap_err();
    assert!(
        matches!(err, ace::store::StoreError::OverBudget { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("over its token budget"), "{err}");
    let batch = store.pending_batch(id).unwrap();
    assert!(batch.is_pending());
    assert_eq!(batch.undecided(), 1);
    assert_eq!(store.head_revision("tight").unwrap(), head);
    // a person may still approve it knowingly
    store.decide_all(id, true, None, "me").unwrap();
}

fn ace(db: &Path, args: &[&str]) -> (String, String, bool) {
    let out = Command::new(ACE)
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("ACE_EMBEDDING_MODEL")
        .env_remove("ACE_CONFIG")
        .env("HOME", db.parent().unwrap())
        .env("XDG_CONFIG_HOME", db.parent().unwrap())
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

#[test]
fn dedup_scan_of_the_published_playbook_queues_merges_and_changes_nothing_until_approved() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    let file = test_data("playbooks/appworld_online_trained_playbook.txt");
    let (_, err, ok) = ace(
        &db,
        &["playbook", "import", file.to_str().unwrap(), "--name", "aw"],
    );
    assert!(ok, "{err}");
    let before = Store::open(&db).unwrap().load_playbook("aw").unwrap();
    let (out, err, ok) = ace(&db, &["playbook", "dedup", "aw"]);
    assert!(ok, "{err}");
    assert!(out.contains("word overlap"), "{out}");
    assert!(out.contains("queued as batch 1"), "{out}");
    let mut store = Store::open(&db).unwrap();
    assert_eq!(
        store.load_playbook("aw").unwrap(),
        before,
        "nothing changes without approval"
    );
    let batch = store.pending_batch(1).unwrap();
    let merges: Vec<_> = batch
        .ops
        .iter()
        .filter_map(|o| match &o.op {
            DeltaOp::Merge(m) => Some(m.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(merges.len(), batch.ops.len());
    // the published file holds bullets repeated word for word: each is found
    for m in &merges {
        let dup = m.duplicate.as_deref().unwrap();
        let (a, b) = (
            before.bullet(&m.bullet_id).unwrap(),
            before.bullet(dup).unwrap(),
        );
        assert!(m.similarity.unwrap() >= 0.9, "{m:?}");
        assert_ne!(a.id, b.id);
    }
    let exact = {
        let mut seen = std::collections::HashSet::new();
        before
            .active_bullets()
            .filter(|b| !seen.insert(b.content.clone()))
            .count()
    };
    assert!(exact > 0 && merges.len() >= exact, "{exact} exact copies");
    // a second scan of the same revision queues nothing new
    let (out, _, _) = ace(&db, &["playbook", "dedup", "aw"]);
    assert!(out.contains("queued as batch 1"), "{out}");
    store.decide_all(1, true, None, "me").unwrap();
    let after = store.load_playbook("aw").unwrap();
    assert_eq!(
        after.active_bullets().count(),
        before.active_bullets().count() - merges.len()
    );
    let mut seen = std::collections::HashSet::new();
    assert!(
        after
            .active_bullets()
            .all(|b| seen.insert(b.content.clone())),
        "no exact copy is left"
    );
}

#[test]
fn queue_show_says_when_approving_would_exceed_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    let mut store = Store::open(&db).unwrap();
    budgeted(&mut store);
    let ops = vec![(
        "k".to_string(),
        common::add(
            "PROBLEM-SOLVING HEURISTICS AND WORKFLOWS",
            "A long new lesson that cannot possibly fit in the few tokens left in the budget.",
        ),
    )];
    let id = store
        .propose(
            "tight",
            "over",
            None,
            "r",
            &ops,
            &ace::approval::Provenance::default(),
        )
        .unwrap()
        .unwrap();
    drop(store);
    let (out, err, ok) = ace(&db, &["queue", "show", &id.to_string()]);
    assert!(ok, "{err}");
    assert!(out.contains("size if approved"), "{out}");
    assert!(out.contains("over by"), "{out}");
    assert!(
        out.contains("takes the playbook over its token budget"),
        "{out}"
    );
}

/// The large playbook with a lesson that shares no word with the task it answers.
fn playbook_with_paraphrased_lesson(store: &mut Store) -> String {
    let text = std::fs::read_to_string(test_data("playbooks/appworld_online_trained_playbook.txt"))
        .unwrap();
    let text = format!("{text}\n## LESSONS\n[les-99001] {HIDDEN}\n");
    let parsed = format::parse(Format::Ace, &text, "big").unwrap();
    store
        .import_playbook(
            "big",
            &ace::delta::import_batch(&parsed, "import"),
            parsed.next_bullet_number,
        )
        .unwrap();
    "les-99001".into()
}

const HIDDEN: &str = "Quantities called Z double their input.";

async fn hidden_lesson_run(embedder: bool) -> (Vec<ace::adaptation::SampleRecord>, String) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("z.jsonl");
    std::fs::write(
        &data,
        json!({"question": "ZORB task: what is the zorb of 6?", "ground_truth": "12"}).to_string()
            + "\n",
    )
    .unwrap();
    let mut store = Store::open(&dir.path().join("ace.db")).unwrap();
    let id = playbook_with_paraphrased_lesson(&mut store);
    let same = |when: &str| EmbedRule {
        when_contains: vec![when.into()],
        vector: Some({
            let mut v = vec![0f32; 64];
            v[7] = 1.0;
            v
        }),
        ..EmbedRule::default()
    };
    let mut script = script(vec![], vec![same("zorb of 6"), same("called Z double")]);
    script.rules.insert(
        0,
        Rule {
            role: Some("generator".into()),
            when_contains: vec!["zorb of 6".into(), HIDDEN.into()],
            reply: Some(
                json!({"reasoning": "Z doubles", "bullet_ids": [id], "final_answer": "12"}),
            ),
            ..Rule::default()
        },
    );
    let server = MockServer::start_local(script).await.unwrap();
    let store = Arc::new(Mutex::new(store));
    let mut cfg = config(&data, "big");
    cfg.prompt_budget = 1_500;
    cfg.approve = ApproveMode::Queue;
    let (run_id, _) = run(&store, models(&server, embedder), cfg).await;
    let samples = store.lock().unwrap().run_samples(&run_id).unwrap();
    (samples, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_retrieve_a_lesson_that_shares_no_word_with_the_task() {
    // by BM25 alone the lesson is not found among ~360 bullets
    let (samples, id) = hidden_lesson_run(false).await;
    assert!(!samples[0].shown.as_ref().unwrap().contains(&id));
    assert!(!samples[0].first_correct);
    // fused with embeddings it is, and the task is answered
    let (samples, id) = hidden_lesson_run(true).await;
    assert!(samples[0].shown.as_ref().unwrap().contains(&id));
    assert!(samples[0].first_correct);
    assert_eq!(samples[0].cited, vec![id]);
}
