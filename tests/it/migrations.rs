//! Schema migrations up and down at every version, and databases the binary must refuse.

use std::time::Duration;

use crate::common::*;
use ace::store::{LATEST_VERSION, MIGRATIONS, Store, StoreError};
use rusqlite::Connection;

fn tables(conn: &Connection) -> Vec<String> {
    texts(
        conn,
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
}

/// The first column of every row `sql` selects, as text.
fn texts(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Each sample's reflection of `run`, as the store reads it back.
fn reflections(store: &Store, run: &str) -> Vec<Option<serde_json::Value>> {
    store
        .run_samples(run)
        .unwrap()
        .into_iter()
        .map(|s| s.reflection)
        .collect()
}

fn columns(conn: &Connection, table: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare(&format!("PRAGMA table_info({table})"))
        .unwrap();
    stmt.query_map([], |r| r.get(1))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn migrations_are_numbered_from_one_without_gaps() {
    for (i, m) in MIGRATIONS.iter().enumerate() {
        assert_eq!(m.version as usize, i + 1);
    }
    assert_eq!(LATEST_VERSION as usize, MIGRATIONS.len());
}

#[test]
fn every_version_migrates_up_and_down_keeping_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ace.db");
    let mut store = Store::open_unmigrated(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), 0);
    assert!(tables(store.connection()).is_empty());

    // version 1: playbooks, sections, bullets. Write data at this version by hand.
    assert_eq!(store.migrate_to(1).unwrap(), vec![1]);
    assert_eq!(
        tables(store.connection()),
        [
            "bullets",
            "bullets_section_created",
            "playbooks",
            "sections"
        ]
    );
    store
        .connection()
        .execute_batch(
            "INSERT INTO playbooks (id, name, created_at, next_bullet_number) VALUES (1, 'old', '2026-01-01T00:00:00Z', 8);
             INSERT INTO sections (id, playbook_id, name, slug, position) VALUES (1, 1, 'OTHERS', 'misc', 1);
             INSERT INTO bullets (playbook_id, bullet_id, section_id, position, content, helpful, created_at, updated_at)
             VALUES (1, 'misc-00007', 1, 2, 'kept across migrations', 4, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');",
        )
        .unwrap();

    // up to 2: revisions appear, the version-1 data survives
    assert_eq!(store.migrate_to(2).unwrap(), vec![2]);
    assert!(tables(store.connection()).contains(&"revisions".to_string()));
    assert!(columns(store.connection(), "bullets").contains(&"last_revision".to_string()));
    // up to 3: runs and the queue appear
    assert_eq!(store.migrate_to(3).unwrap(), vec![3]);
    assert!(tables(store.connection()).contains(&"pending_batches".to_string()));
    // up to 4: sections get a status
    assert_eq!(store.migrate_to(4).unwrap(), vec![4]);
    assert!(columns(store.connection(), "sections").contains(&"status".to_string()));
    // up to 5: budgets, the token and embedding caches, shown bullets and prompt views; now at the
    // latest version the data is usable
    assert_eq!(store.migrate_to(5).unwrap(), vec![5]);
    // up to 6: a revision keeps what its batch said
    assert_eq!(store.migrate_to(6).unwrap(), vec![6]);
    assert!(columns(store.connection(), "revisions").contains(&"ops_hash".to_string()));
    // up to 7: agents' traces wait in an inbox; a playbook says what agents may change
    assert_eq!(store.migrate_to(7).unwrap(), vec![7]);
    assert!(tables(store.connection()).contains(&"trace_inbox".to_string()));
    assert!(columns(store.connection(), "playbooks").contains(&"agent_policy".to_string()));
    // up to 8: trials and the answers they cache
    assert_eq!(store.migrate_to(8).unwrap(), vec![8]);
    assert!(tables(store.connection()).contains(&"trial_answers".to_string()));
    assert!(columns(store.connection(), "playbooks").contains(&"token_budget".to_string()));
    assert!(tables(store.connection()).contains(&"embeddings".to_string()));
    // up to 9: prompts by template and reference, changes as patches (no table changes)
    assert_eq!(store.migrate_to(9).unwrap(), vec![9]);
    // up to 10: texts in the order they arrive, found by hash; creating ops indexed by key
    assert_eq!(store.migrate_to(10).unwrap(), vec![10]);
    assert_eq!(columns(store.connection(), "blobs"), ["id", "hash", "body"]);
    let p = store.load_playbook("old").unwrap();
    assert_eq!(
        (p.bullets[0].content.as_str(), p.bullets[0].helpful),
        ("kept across migrations", 4)
    );
    let out = apply(
        &mut store,
        "old",
        batch("b", vec![add("OTHERS", "new"), tag("misc-00007", 1, 0)]),
    );
    assert_eq!(
        added(&out),
        vec!["misc-00008"],
        "the stored counter carries across versions"
    );

    // a removed section at version 4 comes back at version 3, holding its removed bullet
    let gone = apply(
        &mut store,
        "old",
        batch(
            "gone",
            vec![ace::delta::DeltaOp::RemoveSection {
                section: "OTHERS".into(),
            }],
        ),
    );
    assert!(store.load_playbook("old").unwrap().sections.is_empty());
    store.set_token_budget("old", Some(5000)).unwrap();
    assert_eq!(store.migrate_to(3).unwrap(), vec![10, 9, 8, 7, 6, 5, 4]);
    assert!(!columns(store.connection(), "sections").contains(&"status".to_string()));
    assert!(!columns(store.connection(), "playbooks").contains(&"token_budget".to_string()));
    assert_eq!(store.migrate_to(10).unwrap(), vec![4, 5, 6, 7, 8, 9, 10]);
    assert_eq!(
        store.token_budget("old").unwrap(),
        None,
        "the budget went with version 5"
    );
    let p = store.load_playbook("old").unwrap();
    assert_eq!(p.sections.len(), 1);
    assert!(p.bullets.iter().all(|b| !b.is_active()));
    // the section came back by migration, not by a revision: reverting the removal needs --force
    assert!(matches!(
        store.revert(gone.revision(), false, None),
        Err(StoreError::RevertConflict { .. })
    ));
    store.revert(gone.revision(), true, None).unwrap();
    assert!(
        store
            .load_playbook("old")
            .unwrap()
            .bullets
            .iter()
            .all(|b| b.is_active())
    );
    // a queued proposal at version 5 …
    store
        .propose(
            "old",
            "k",
            None,
            "why",
            &[(
                "c-1".into(),
                ace::delta::DeltaOp::Remove {
                    bullet_id: "misc-00007".into(),
                },
            )],
            &Default::default(),
        )
        .unwrap();
    // … down to 2: the section status and the queue go, revisions and bullets stay
    assert_eq!(store.migrate_to(2).unwrap(), vec![10, 9, 8, 7, 6, 5, 4, 3]);
    assert!(!tables(store.connection()).contains(&"pending_batches".to_string()));
    assert!(tables(store.connection()).contains(&"revisions".to_string()));
    // down to 1: revisions go, bullets stay (with the counters they had)
    assert_eq!(store.migrate_to(1).unwrap(), vec![2]);
    assert_eq!(store.schema_version().unwrap(), 1);
    assert!(!tables(store.connection()).contains(&"revisions".to_string()));
    assert!(!columns(store.connection(), "bullets").contains(&"last_revision".to_string()));
    let n: i64 = store
        .connection()
        .query_row("SELECT count(*) FROM bullets WHERE helpful = 5", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(n, 1);
    // the store refuses to write through an old schema instead of failing halfway
    assert!(matches!(
        store.load_playbook("old"),
        Err(StoreError::TooOld { found: 1, .. })
    ));

    // and down to 0, then all the way up again
    store.migrate_to(0).unwrap();
    assert!(tables(store.connection()).is_empty());
    store.migrate_to(LATEST_VERSION).unwrap();
    assert_eq!(store.schema_version().unwrap(), LATEST_VERSION);
    drop(store);
    // a normal open of an old database migrates it
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), LATEST_VERSION);
}

#[test]
fn a_database_newer_than_the_binary_is_refused_not_downgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ace.db");
    drop(Store::open(&path).unwrap());
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", LATEST_VERSION + 1)
        .unwrap();
    for result in [
        Store::open(&path).map(|_| ()),
        Store::open_unmigrated(&path).map(|_| ()),
    ] {
        let err = result.unwrap_err();
        assert!(matches!(err, StoreError::TooNew { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("newer than this ace binary supports")
        );
    }
    let version: u32 = Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, LATEST_VERSION + 1, "nothing was changed");
}

#[test]
fn a_corrupt_file_is_a_clear_error_and_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ace.db");
    let garbage =
        b"this is not a database, just some text that happens to be here......".repeat(100);
    std::fs::write(&path, &garbage).unwrap();
    let err = Store::open(&path).err().expect("must fail");
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    assert!(
        err.to_string()
            .contains("not an ace database or is corrupt")
    );
    assert_eq!(std::fs::read(&path).unwrap(), garbage);
}

#[test]
fn a_locked_database_is_a_clear_error_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ace.db");
    let mut store = Store::open(&path).unwrap();
    store.create_playbook("fin", &["OTHERS"]).unwrap();
    store.set_busy_timeout(Duration::from_millis(100)).unwrap();
    let holder = Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let err = store
        .apply(
            "fin",
            &batch("b", vec![add("OTHERS", "x")]),
            &Default::default(),
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::Locked), "{err}");
    assert!(err.to_string().contains("locked by another writer"));
    holder.execute_batch("ROLLBACK").unwrap();
    assert!(store.load_playbook("fin").unwrap().bullets.is_empty());
    apply(&mut store, "fin", batch("b", vec![add("OTHERS", "x")]));
}

#[test]
fn processes_opening_a_new_database_at_once_migrate_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ace.db");
    let openers: Vec<_> = (0..6)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || Store::open(&path).map(|s| s.schema_version().unwrap()))
        })
        .collect();
    for o in openers {
        assert_eq!(o.join().unwrap().unwrap(), LATEST_VERSION);
    }
}

#[test]
fn prompts_stored_by_reference_get_their_text_back_on_the_way_down() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, run) = store_with_run(dir.path());
    let call = text_call("You are the ACE Curator. ".repeat(20));
    store
        .record_calls(&run, "curator/1/1", std::slice::from_ref(&call), &[])
        .unwrap();
    store
        .record_calls(&run, "curator/1/2", std::slice::from_ref(&call), &[])
        .unwrap();
    let blobs: i64 = store
        .connection()
        .query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        blobs, 2,
        "the long text is stored once, and so is the prompt that names it"
    );
    assert_eq!(
        store.run_calls(&run, None).unwrap()[1].messages,
        call.messages
    );
    store.migrate_to(4).unwrap();
    let prompts = texts(store.connection(), "SELECT prompt FROM llm_calls");
    for p in prompts {
        let messages: Vec<ace::llm::Message> = serde_json::from_str(&p).unwrap();
        assert_eq!(messages, call.messages);
    }
}

/// A database with playbook `p` (one section, `S`) and a run of it.
fn store_with_run(dir: &std::path::Path) -> (Store, String) {
    let mut store = Store::open(&dir.join("ace.db")).unwrap();
    store.create_playbook("p", &["S"]).unwrap();
    let run = new_run(&mut store);
    (store, run)
}

fn new_run(store: &mut Store) -> String {
    store
        .create_run(&ace::adaptation::RunConfig {
            playbook: "p".into(),
            ..Default::default()
        })
        .unwrap()
}

/// A curator's call made of plain text (no template): a system message and a short user one.
fn text_call(system: String) -> ace::llm::CallRecord {
    ace::llm::CallRecord {
        role: ace::llm::Role::Curator,
        prompt_version: "curator-v1-test".into(),
        messages: vec![
            ace::llm::Message::system(system),
            ace::llm::Message::user("short"),
        ],
        response: "{}".into(),
        model: "m".into(),
        usage: Default::default(),
        latency_ms: 1,
        cost_usd: 0.0,
        attempts: 1,
        playbook: None,
        recipes: Vec::new(),
        outcome: "ok".into(),
    }
}

/// Sample `train/1/1/0`, answered 42 where 43 was right.
fn sample_row(
    question: &str,
    feedback: &str,
    reflection: serde_json::Value,
) -> ace::adaptation::SampleRecord {
    ace::adaptation::SampleRecord {
        key: "train/1/1/0".into(),
        split: ace::adaptation::Split::Train,
        epoch: 1,
        step: 1,
        sample_id: "d.jsonl:1".into(),
        question: question.into(),
        answer: "42".into(),
        ground_truth: Some("43".into()),
        correct: false,
        first_correct: false,
        rounds: 1,
        feedback: feedback.into(),
        cited: Vec::new(),
        reflection: Some(reflection),
        shown: None,
        unknown_ids: Vec::new(),
    }
}

/// A call as the roles make it from `prompt`, answered `response`.
fn call_from(prompt: &ace::prompts::Prompt, response: &str) -> ace::llm::CallRecord {
    ace::llm::CallRecord {
        role: prompt.role,
        prompt_version: prompt.version.clone(),
        messages: prompt.messages.clone(),
        response: response.into(),
        model: "m".into(),
        usage: Default::default(),
        latency_ms: 1,
        cost_usd: 0.0,
        attempts: 1,
        playbook: prompt.playbook.clone(),
        recipes: prompt.recipes.clone(),
        outcome: "ok".into(),
    }
}

#[test]
fn prompts_name_the_texts_the_run_holds_and_come_back_whole_at_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, run) = store_with_run(dir.path());
    let playbook = store.load_playbook("p").unwrap();
    let question = "  A long question about the ZORB constant, with a trailing blank line?\n";
    let reasoning = "Multiply the ZORB constant by itself,\nthen add \"one\".";
    let generated =
        serde_json::json!({"reasoning": reasoning, "bullet_ids": [], "final_answer": "42"});
    let reflection = serde_json::json!({
        "reasoning": "r",
        "error_identification": "none",
        "root_cause_analysis": "The answer squared the constant where the task asked for its cube.",
        "correct_approach": "same",
        "key_insight": "Cube the ZORB constant before adding one to it.",
        "bullet_tags": []
    });
    let generator = ace::prompts::generator(
        &playbook,
        ace::playbook::View {
            revision: playbook.revision,
            bullets: None,
            counters: false,
        },
        question,
        "",
        None,
    );
    let reflector = ace::prompts::reflector(&ace::prompts::ReflectorPrompt {
        question,
        context: "",
        reasoning,
        answer: "42",
        ground_truth: Some("43"),
        feedback: "wrong: expected 43",
        used: &[],
        previous: None,
    });
    let sample = sample_row(question, "wrong: expected 43", reflection.clone());
    let calls = vec![
        call_from(&generator, &generated.to_string()),
        call_from(&reflector, &reflection.to_string()),
    ];
    store
        .record_samples(&run, "p", &[(sample, calls.clone())])
        .unwrap();
    // the curator's prompt tells of the sample: its texts are named, not repeated
    let summary = format!(
        "[1] task: {}\nError: none\nRoot cause: {}\nCorrect approach: same\nKey insight: {}",
        question.trim(),
        reflection["root_cause_analysis"].as_str().unwrap(),
        reflection["key_insight"].as_str().unwrap()
    );
    let curator = ace::prompts::curator(
        &playbook,
        ace::playbook::View {
            revision: playbook.revision,
            bullets: None,
            counters: true,
        },
        "bullets: 0\nunused so far (no tags): none",
        &summary,
    );
    let curator_call = call_from(&curator, r#"{"reasoning":"x","operations":[]}"#);
    store
        .record_calls(
            &run,
            "curator/1/1",
            std::slice::from_ref(&curator_call),
            &["train/1/1/0".to_string()],
        )
        .unwrap();
    let sent: Vec<Vec<ace::llm::Message>> = calls
        .iter()
        .chain(std::iter::once(&curator_call))
        .map(|c| c.messages.clone())
        .collect();
    let read = |store: &Store| -> Vec<Vec<ace::llm::Message>> {
        store
            .run_calls(&run, None)
            .unwrap()
            .into_iter()
            .map(|c| c.messages)
            .collect()
    };
    assert_eq!(read(&store), sent, "every prompt comes back exactly");
    // neither the question nor the lessons are stored again: not in the calls, not in blobs
    // (stored texts read as the store reads them: long ones are compressed)
    let holding = |store: &Store, text: &str| -> i64 {
        let in_calls: i64 = store
            .connection()
            .query_row(
                "SELECT count(*) FROM llm_calls WHERE instr(prompt, ?1) > 0",
                [text],
                |r| r.get(0),
            )
            .unwrap();
        let mut stmt = store
            .connection()
            .prepare("SELECT body FROM blobs")
            .unwrap();
        let in_blobs = stmt
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .unwrap()
            .map(Result::unwrap)
            .filter(|body| {
                ace::store::blobs::body_text(body)
                    .map(|t| t.contains(text))
                    .unwrap_or(false)
            })
            .count() as i64;
        in_calls + in_blobs
    };
    assert_eq!(holding(&store, "ZORB constant, with"), 0);
    assert_eq!(holding(&store, "Cube the ZORB"), 0);
    // long texts are stored compressed
    let compressed = |store: &Store| -> i64 {
        store
            .connection()
            .query_row(
                "SELECT count(*) FROM blobs WHERE substr(body, 1, 1) = x'FF'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert!(compressed(&store) > 0);
    // down to 8, every prompt holds its texts again and no stored text is compressed (the form
    // version 8 reads), and back up
    assert_eq!(store.migrate_to(8).unwrap(), vec![10, 9]);
    assert_eq!(compressed(&store), 0);
    assert!(holding(&store, "ZORB constant, with") >= 3);
    assert!(holding(&store, "Cube the ZORB") >= 1);
    let prompts = texts(
        store.connection(),
        "SELECT prompt FROM llm_calls ORDER BY id",
    );
    for p in &prompts {
        let messages: Vec<serde_json::Value> = serde_json::from_str(p).unwrap();
        assert!(
            messages
                .iter()
                .all(|m| m.get("content").is_some() || m["text"].is_i64()),
            "{p}"
        );
    }
    assert_eq!(store.migrate_to(LATEST_VERSION).unwrap(), vec![9, 10]);
    assert_eq!(read(&store), sent);
    // a second run stores the same prompts, sharing their stored texts; pruning the first run's
    // calls keeps every text the second one names
    let second = new_run(&mut store);
    let again = sample_row(question, "wrong: expected 43", reflection.clone());
    store
        .record_samples(&second, "p", &[(again, calls)])
        .unwrap();
    store.prune_calls(None, Some(&run), false).unwrap();
    assert!(store.run_calls(&run, None).unwrap().is_empty());
    let kept: Vec<Vec<ace::llm::Message>> = store
        .run_calls(&second, None)
        .unwrap()
        .into_iter()
        .map(|c| c.messages)
        .collect();
    assert_eq!(kept, sent[..2]);
}

#[test]
fn a_prompt_naming_a_sample_answered_again_later_says_so_instead_of_showing_other_texts() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, run) = store_with_run(dir.path());
    let playbook = store.load_playbook("p").unwrap();
    let sample = |insight: &str| {
        sample_row(
            "What does the ZORB constant multiply, and by how much?",
            "wrong",
            serde_json::json!({ "key_insight": insight }),
        )
    };
    let first = "Cube the ZORB constant before adding one to it.";
    store
        .record_samples(&run, "p", &[(sample(first), Vec::new())])
        .unwrap();
    // the curator's call that tells of the sample's lesson, recorded
    let curate = |store: &mut Store, insight: &str| {
        let prompt = ace::prompts::curator(
            &playbook,
            ace::playbook::View {
                revision: playbook.revision,
                bullets: None,
                counters: true,
            },
            "bullets: 0",
            &format!(
                "[1] task: What does the ZORB constant multiply, and by how much?\nKey insight: {insight}"
            ),
        );
        let call = call_from(&prompt, r#"{"reasoning":"x","operations":[]}"#);
        store
            .record_calls(
                &run,
                "curator/1/1",
                std::slice::from_ref(&call),
                &["train/1/1/0".to_string()],
            )
            .unwrap();
        call
    };
    let call = curate(&mut store, first);
    assert_eq!(
        store.run_calls(&run, None).unwrap()[0].messages,
        call.messages
    );
    // the batch is redone: the sample's row is written again with another lesson
    store
        .record_samples(
            &run,
            "p",
            &[(
                sample("Square it, a different lesson altogether."),
                Vec::new(),
            )],
        )
        .unwrap();
    let read = store.run_calls(&run, None).unwrap();
    let user = &read[0].messages[1].content;
    assert!(!user.contains("Square it"), "{user}");
    assert!(user.contains("written again after it was sent"), "{user}");
    // the redo's own curator call replaces it and is shown as sent
    let call = curate(&mut store, "Square it, a different lesson altogether.");
    assert_eq!(
        store.run_calls(&run, None).unwrap()[0].messages,
        call.messages
    );
}

#[test]
fn counter_changes_are_stored_as_patches_and_made_whole_on_the_way_down() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("ace.db")).unwrap();
    store.create_playbook("p", &["S"]).unwrap();
    let out = apply(
        &mut store,
        "p",
        batch(
            "a",
            vec![add("S", "a lesson worth keeping for a long time")],
        ),
    );
    let id = added(&out)[0].clone();
    let tagged = apply(&mut store, "p", batch("t", vec![tag(&id, 2, 1)]));
    let stored = |store: &Store| -> String {
        store
            .connection()
            .query_row(
                "SELECT after FROM revision_ops WHERE revision_id = ?1",
                [tagged.revision()],
                |r| r.get(0),
            )
            .unwrap()
    };
    let patch = stored(&store);
    assert!(patch.starts_with(r#"{"~":1,"#), "{patch}");
    assert!(!patch.contains("worth keeping"), "{patch}");
    // read back whole: at the revision, in its story, and reverted
    let at = store.playbook_at(tagged.revision()).unwrap();
    let b = at.bullet(&id).unwrap();
    assert_eq!((b.helpful, b.harmful), (2, 1));
    let story = store.bullet_story("p", &id).unwrap();
    assert_eq!(
        story.history.last().map(|h| (h.helpful, h.harmful)),
        Some((2, 1))
    );
    store.migrate_to(8).unwrap();
    let whole: serde_json::Value = serde_json::from_str(&stored(&store)).unwrap();
    assert_eq!(whole["content"], "a lesson worth keeping for a long time");
    assert_eq!(
        (whole["helpful"].as_i64(), whole["harmful"].as_i64()),
        (Some(2), Some(1))
    );
    assert!(whole.get("~").is_none());
    store.migrate_to(LATEST_VERSION).unwrap();
    // a batch's evidence keeps the curator's reasoning once, and has it at every version
    let provenance = ace::approval::Provenance {
        curator_reasoning: Some("the lesson generalises".into()),
        ..Default::default()
    };
    let pending = store
        .propose(
            "p",
            "k",
            None,
            "the lesson generalises",
            &[("c-1".into(), tag(&id, 1, 0))],
            &provenance,
        )
        .unwrap()
        .unwrap();
    let held: String = store
        .connection()
        .query_row(
            "SELECT provenance FROM pending_batches WHERE id = ?1",
            [pending],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!held.contains("generalises"), "{held}");
    assert_eq!(store.pending_batch(pending).unwrap().provenance, provenance);
    store.migrate_to(8).unwrap();
    let held: serde_json::Value = store
        .connection()
        .query_row(
            "SELECT provenance FROM pending_batches WHERE id = ?1",
            [pending],
            |r| r.get::<_, String>(0),
        )
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap();
    assert_eq!(held["curator_reasoning"], "the lesson generalises");
    store.migrate_to(LATEST_VERSION).unwrap();
    store.revert(tagged.revision(), false, None).unwrap();
    let b = store.load_playbook("p").unwrap();
    let b = b.bullet(&id).unwrap();
    assert_eq!((b.helpful, b.harmful), (0, 0));
}

#[test]
fn a_damaged_compressed_text_is_a_clear_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, run) = store_with_run(dir.path());
    let call = text_call("You are the ACE Curator. ".repeat(40));
    store
        .record_calls(&run, "curator/1/1", std::slice::from_ref(&call), &[])
        .unwrap();
    assert_eq!(
        store.run_calls(&run, None).unwrap()[0].messages,
        call.messages
    );
    // the long system text is stored compressed; damage it on disk
    let damaged = store
        .connection()
        .execute(
            "UPDATE blobs SET body = x'FF0102030405' WHERE substr(body, 1, 1) = x'FF'",
            [],
        )
        .unwrap();
    assert!(damaged > 0);
    let err = store.run_calls(&run, None).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    assert!(err.to_string().contains("does not inflate"), "{err}");
    // nothing else changed: the playbook and the run read as before
    assert_eq!(store.load_playbook("p").unwrap().sections.len(), 1);
    assert_eq!(store.run(&run).unwrap().playbook, "p");
}

#[test]
fn reflections_and_states_before_a_change_store_what_differs_and_come_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, run) = store_with_run(dir.path());
    let raw = |store: &Store, sql: &str| -> String {
        store.connection().query_row(sql, [], |r| r.get(0)).unwrap()
    };
    // the reflector's answer tagged an id the attempt never used and carried a field of its own;
    // the reflection kept is what the loop made of it
    let answer = serde_json::json!({
        "reasoning": "The attempt squared the constant.",
        "error_identification": "Squared where the task asked for a cube.",
        "root_cause_analysis": "The ZORB rule was read as a square.",
        "correct_approach": "Cube the constant, then add one.",
        "key_insight": "Cube the ZORB constant before adding one to it.",
        "bullet_tags": [{"id": "s-00099", "tag": "harmful"}],
        "confidence": "high"
    });
    let mut reflection = answer.clone();
    reflection["bullet_tags"] = serde_json::json!([]);
    reflection["unknown_ids"] = serde_json::json!(["s-00099"]);
    reflection.as_object_mut().unwrap().remove("confidence");
    let reflector = ace::prompts::reflector(&ace::prompts::ReflectorPrompt {
        question: "q",
        context: "",
        reasoning: "r",
        answer: "42",
        ground_truth: Some("43"),
        feedback: "wrong",
        used: &[],
        previous: None,
    });
    let sample = sample_row("What is ZORB?", "wrong", reflection.clone());
    // the generator was shown a part of the playbook; a first reflector answer was unusable,
    // then came the one the reflection came from
    let playbook = store.load_playbook("p").unwrap();
    let generator = ace::prompts::generator(
        &playbook,
        ace::playbook::View {
            revision: playbook.revision,
            bullets: Some(vec!["s-00001".into()]),
            counters: false,
        },
        "What is ZORB?",
        "",
        None,
    );
    let retry = ace::prompts::generator(
        &playbook,
        ace::playbook::View {
            revision: playbook.revision,
            bullets: Some(vec!["s-00002".into()]),
            counters: false,
        },
        "What is ZORB?",
        "",
        None,
    );
    let calls = vec![
        call_from(
            &generator,
            r#"{"reasoning":"r","bullet_ids":[],"final_answer":"42"}"#,
        ),
        call_from(
            &retry,
            r#"{"reasoning":"r","bullet_ids":[],"final_answer":"43"}"#,
        ),
        call_from(&reflector, "I think the answer is wrong."),
        call_from(&reflector, &answer.to_string()),
    ];
    // a second sample whose reflector answered inside a code fence: its reflection stays whole
    let mut fenced = sample_row("What else?", "wrong", reflection.clone());
    fenced.key = "train/1/1/1".into();
    let fenced_calls = vec![call_from(&reflector, &format!("```json\n{answer}\n```"))];
    store
        .record_samples(&run, "p", &[(sample, calls), (fenced, fenced_calls)])
        .unwrap();
    let stored = raw(
        &store,
        "SELECT reflection FROM run_samples WHERE key = 'train/1/1/0'",
    );
    assert!(stored.starts_with(r#"{"~":3,"#), "{stored}");
    assert!(!stored.contains("Cube the ZORB"), "{stored}");
    let whole = raw(
        &store,
        "SELECT reflection FROM run_samples WHERE key = 'train/1/1/1'",
    );
    assert!(whole.contains("Cube the ZORB"), "{whole}");
    assert_eq!(reflections(&store, &run), vec![Some(reflection.clone()); 2]);
    // a batch's evidence names the sample (it is as its run recorded it) and reads it back whole
    let evidence = store
        .run_samples(&run)
        .unwrap()
        .into_iter()
        .map(|s| ace::approval::Evidence {
            key: s.key,
            sample_id: s.sample_id,
            question: s.question,
            answer: s.answer,
            ground_truth: s.ground_truth,
            correct: s.correct,
            feedback: s.feedback,
            cited: s.cited,
            reflection: s.reflection.and_then(|r| serde_json::from_value(r).ok()),
        })
        .collect::<Vec<_>>();
    let provenance = ace::approval::Provenance {
        run: Some(run.clone()),
        samples: evidence.clone(),
        ..Default::default()
    };
    let pending = store
        .propose(
            "p",
            "k",
            Some(&run),
            "why",
            &[("c-1".into(), add("S", "Cube the ZORB constant."))],
            &provenance,
        )
        .unwrap()
        .unwrap();
    let held = raw(&store, "SELECT provenance FROM pending_batches");
    assert!(!held.contains("Cube the ZORB"), "{held}");
    assert_eq!(
        store.pending_batch(pending).unwrap().provenance.samples,
        evidence
    );
    // approved, its revision's reason is the batch's reasoning, stored once
    let from_queue = store
        .decide_all(pending, true, None, "alice")
        .unwrap()
        .revision
        .unwrap();
    let reason = |store: &Store| -> Option<String> {
        store
            .connection()
            .query_row(
                "SELECT reason FROM revisions WHERE id = ?1",
                [from_queue],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(reason(&store), None);
    assert_eq!(
        store
            .revision(from_queue)
            .unwrap()
            .revision
            .reason
            .as_deref(),
        Some("why")
    );
    assert_eq!(
        store.revisions(Some("p"), 1).unwrap()[0].reason.as_deref(),
        Some("why")
    );

    // a bullet's state before a change is what differs from the state it was created with
    let out = apply(
        &mut store,
        "p",
        batch(
            "a",
            vec![add(
                "S",
                "A lesson long enough to be worth not storing again.",
            )],
        ),
    );
    let id = added(&out)[0].clone();
    apply(&mut store, "p", batch("t1", vec![tag(&id, 1, 0)]));
    let second = apply(&mut store, "p", batch("t2", vec![tag(&id, 2, 1)]));
    let before = |store: &Store| -> String {
        raw(
            store,
            &format!(
                "SELECT before FROM revision_ops WHERE revision_id = {}",
                second.revision()
            ),
        )
    };
    let b = before(&store);
    assert!(b.starts_with(r#"{"~":2,"@":["#), "{b}");
    assert!(!b.contains("worth not storing"), "{b}");
    let at = store.playbook_at(second.revision()).unwrap();
    assert_eq!(at.bullet(&id).map(|b| (b.helpful, b.harmful)), Some((3, 1)));
    let story = store.bullet_story("p", &id).unwrap();
    assert_eq!(
        story
            .history
            .iter()
            .map(|h| (h.helpful, h.harmful))
            .collect::<Vec<_>>(),
        vec![(0, 0), (1, 0), (3, 1)]
    );

    // down to 9: every reflection, state and view is whole again, and reads the same
    let views = |store: &Store| -> Vec<Option<ace::playbook::View>> {
        store
            .run_calls(&run, None)
            .unwrap()
            .into_iter()
            .map(|c| c.playbook.map(|p| p.view))
            .collect()
    };
    let views_before = views(&store);
    assert!(
        views_before
            .iter()
            .any(|v| v.as_ref().is_some_and(|v| v.bullets.is_some()))
    );
    let short = raw(
        &store,
        "SELECT group_concat(playbook_view, ' ') FROM llm_calls WHERE playbook_view IS NOT NULL",
    );
    assert!(short.starts_with(r#"{"r":"#), "{short}");
    assert_eq!(store.migrate_to(9).unwrap(), vec![10]);
    let stored_views: Vec<serde_json::Value> = raw(
        &store,
        "SELECT json_group_array(json(playbook_view)) FROM llm_calls WHERE playbook_view IS NOT NULL",
    )
    .parse::<serde_json::Value>()
    .map(|v| v.as_array().unwrap().clone())
    .unwrap();
    assert_eq!(
        stored_views,
        vec![
            serde_json::json!({"row": true, "revision": playbook.revision, "counters": false}),
            serde_json::json!({"revision": playbook.revision, "bullets": ["s-00002"], "counters": false}),
        ],
        "the names version 9 reads"
    );
    let whole: serde_json::Value = serde_json::from_str(&raw(
        &store,
        "SELECT reflection FROM run_samples WHERE key = 'train/1/1/0'",
    ))
    .unwrap();
    assert_eq!(whole, reflection);
    let b: serde_json::Value = serde_json::from_str(&before(&store)).unwrap();
    assert_eq!(
        b["content"],
        "A lesson long enough to be worth not storing again."
    );
    assert_eq!((b["helpful"].as_i64(), b.get("~")), (Some(1), None));
    assert_eq!(reason(&store).as_deref(), Some("why"));
    assert_eq!(
        columns(store.connection(), "blobs"),
        ["hash", "body"],
        "version 9's table"
    );
    assert_eq!(store.migrate_to(LATEST_VERSION).unwrap(), vec![10]);
    assert_eq!(reflections(&store, &run), vec![Some(reflection.clone()); 2]);
    assert_eq!(
        store
            .revision(from_queue)
            .unwrap()
            .revision
            .reason
            .as_deref(),
        Some("why")
    );
    assert_eq!(views(&store), views_before);
    // pruning the run's calls keeps its reflections, made whole first
    store.prune_calls(None, Some(&run), false).unwrap();
    assert!(store.run_calls(&run, None).unwrap().is_empty());
    assert_eq!(reflections(&store, &run), vec![Some(reflection.clone()); 2]);
    // reverting the second tag takes the counters back
    store.revert(second.revision(), false, None).unwrap();
    let p = store.load_playbook("p").unwrap();
    assert_eq!(p.bullet(&id).map(|b| (b.helpful, b.harmful)), Some((1, 0)));
}

#[test]
fn a_reflection_whose_answer_sqlite_would_read_otherwise_is_stored_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, run) = store_with_run(dir.path());
    let reflector = ace::prompts::reflector(&ace::prompts::ReflectorPrompt {
        question: "q",
        context: "",
        reasoning: "r",
        answer: "a",
        ground_truth: None,
        feedback: "f",
        used: &[],
        previous: None,
    });
    let insight = "Check the units before adding the two amounts together.";
    // answers as a model may write them: a repeated field, a field named like the marks, escapes
    // and a number written unusually, pretty-printed
    let answers = [
        format!(r#"{{"key_insight": "first", "key_insight": "{insight}", "bullet_tags": []}}"#),
        format!(r#"{{"~": 1, "key_insight": "{insight}", "bullet_tags": []}}"#),
        format!(
            "{{\n  \"key_insight\": \"{}\",\n  \"confidence\": 1.50e1,\n  \"bullet_tags\": []\n}}",
            insight.replace("units", "\\u0075nits \\\"SI\\\"")
        ),
    ];
    let mut rows = Vec::new();
    for (i, answer) in answers.iter().enumerate() {
        // what the loop keeps: the answer as parsed, without the extra field
        let mut reflection: serde_json::Value = serde_json::from_str(answer).unwrap();
        reflection.as_object_mut().unwrap().remove("confidence");
        reflection["reasoning"] = serde_json::json!("kept apart");
        let mut sample = sample_row("q", "f", reflection);
        sample.key = format!("train/1/1/{i}");
        rows.push((sample, vec![call_from(&reflector, answer)]));
    }
    store.record_samples(&run, "p", &rows).unwrap();
    let back = reflections(&store, &run);
    let sent: Vec<Option<serde_json::Value>> =
        rows.iter().map(|(s, _)| s.reflection.clone()).collect();
    assert_eq!(back, sent);
    let stored = texts(
        store.connection(),
        "SELECT reflection FROM run_samples ORDER BY key",
    );
    // the repeated field and the mark-like field keep the reflection whole; the escapes and the
    // number read the same either way
    assert!(!stored[0].starts_with(r#"{"~""#), "{}", stored[0]);
    assert!(!stored[1].starts_with(r#"{"~":3"#), "{}", stored[1]);
    assert!(stored[2].starts_with(r#"{"~":3"#), "{}", stored[2]);
    // and all of them come back the same after going down to 9 and up again
    store.migrate_to(9).unwrap();
    store.migrate_to(LATEST_VERSION).unwrap();
    let again = reflections(&store, &run);
    assert_eq!(again, sent);
}
