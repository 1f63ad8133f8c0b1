//! A full offline run on the paper's Formula files against the loopback scripted model, with every
//! approval given through `ace queue` from other processes, killed with SIGKILL mid-run and resumed.

use crate::common;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::test_data;
use ace::adaptation::{RunStatus, Split};
use ace::llm::mock::{MockServer, Rule, Script};
use ace::store::Store;
use serde_json::{Value, json};

const ACE: &str = env!("CARGO_BIN_EXE_ace");

fn lines(file: &str) -> Vec<Value> {
    std::fs::read_to_string(test_data(file))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn formula(context: &str) -> String {
    let rest = context.strip_prefix("Use formula ").unwrap();
    rest[..rest.find(" to answer").unwrap()].to_string()
}

fn lesson(formula: &str) -> String {
    format!("LESSON: {formula} — apply the formula as given, then round to two decimals.")
}

/// The generator answers a question right only if the lesson for its formula is in the prompt.
fn script(samples: &[Value]) -> Script {
    let mut rules = Vec::new();
    for s in samples {
        let context = s["context"].as_str().unwrap();
        rules.push(Rule {
            role: Some("generator".into()),
            when_contains: vec![context.trim().to_string(), lesson(&formula(context))],
            reply: Some(json!({"reasoning": "apply the lesson", "bullet_ids": [], "final_answer": s["target"]})),
            ..Rule::default()
        });
    }
    rules.push(Rule {
        role: Some("generator".into()),
        reply: Some(json!({"reasoning": "no idea", "bullet_ids": [], "final_answer": "0.00"})),
        ..Rule::default()
    });
    let mut formulas: Vec<String> = samples
        .iter()
        .map(|s| formula(s["context"].as_str().unwrap()))
        .collect();
    formulas.sort();
    formulas.dedup();
    for f in &formulas {
        rules.push(Rule {
            role: Some("reflector".into()),
            when_contains: vec![format!("Use formula {f} to answer")],
            reply: Some(json!({"reasoning": "r", "error_identification": "e", "root_cause_analysis": "c", "correct_approach": "a",
                               "key_insight": format!("insight about {f}."), "bullet_tags": []})),
            ..Rule::default()
        });
        rules.push(Rule {
            role: Some("curator".into()),
            when_contains: vec![format!("insight about {f}.")],
            unless_contains: vec![lesson(f)],
            reply: Some(json!({"reasoning": "new formula", "operations": [{"type": "ADD", "section": "FORMULAS AND CALCULATIONS", "content": lesson(f)}]})),
            ..Rule::default()
        });
    }
    rules.push(Rule {
        role: Some("curator".into()),
        reply: Some(json!({"reasoning": "known", "operations": []})),
        ..Rule::default()
    });
    Script {
        model: "formula-world".into(),
        reject_formats: vec![],
        embeddings: vec![],
        rules,
    }
}

fn ace(db: &std::path::Path, home: &std::path::Path, base: &str) -> Command {
    let mut c = Command::new(ACE);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("ACE_BASE_URL", base)
        .env("ACE_MODEL", "scripted")
        .arg("--db")
        .arg(db);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_formula_run_with_approvals_from_other_processes_survives_sigkill() {
    let (train, val, test) = (
        "ace-formula/formula_train_subset_500.jsonl",
        "ace-formula/formula_val_subset_300.jsonl",
        "ace-formula/formula_test.jsonl",
    );
    let all: Vec<Value> = [train, val, test].iter().flat_map(|f| lines(f)).collect();
    let server = MockServer::start_local(script(&all)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    let base = server.base_url();

    // Another process decides: `ace queue list --json`, then `ace queue approve ID`.
    let stop = Arc::new(AtomicBool::new(false));
    let approver = common::approver(db.clone(), true, "reviewer", stop.clone());

    let args = |c: &mut Command| {
        c.args([
            "train",
            "--playbook",
            "formula",
            "--env",
            "numeric",
            "--epochs",
            "2",
            "--batch-size",
            "1",
            "--concurrency",
            "4",
            "--max-rounds",
            "2",
        ])
        .arg("--dataset")
        .arg(test_data(train))
        .arg("--val")
        .arg(test_data(val))
        .arg("--test")
        .arg(test_data(test));
    };
    let mut first = ace(&db, dir.path(), &base);
    args(&mut first);
    let mut child = first
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let watcher = Store::open(&db).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = watcher
            .runs()
            .ok()
            .and_then(|r| r.first().map(|r| r.id.clone()))
            .map_or(0, |id| watcher.run_samples(&id).unwrap().len());
        if done >= 120 {
            break;
        }
        assert!(Instant::now() < deadline, "no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let run = watcher.runs().unwrap()[0].id.clone();
    let lessons_before = watcher
        .load_playbook("formula")
        .unwrap()
        .active_bullets()
        .count();

    let out = ace(&db, dir.path(), &base)
        .args(["train", "--resume", &run])
        .output()
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    let approved = approver.join().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let store = Store::open(&db).unwrap();
    let summary = store.run_summary(&run).unwrap();
    assert_eq!(summary.run.status, RunStatus::Finished);
    let acc = |split: Split, epoch: u32| {
        summary
            .accuracy
            .iter()
            .find(|a| a.split == split && a.epoch == epoch)
            .map(|a| (a.correct, a.total))
            .unwrap()
    };
    let (c1, t1) = acc(Split::Train, 1);
    assert_eq!(t1, 500);
    assert!(
        (400..500).contains(&c1),
        "the first question of each formula is missed: {c1}"
    );
    assert_eq!(
        acc(Split::Train, 2),
        (500, 500),
        "every approved lesson is fed back"
    );
    assert_eq!(acc(Split::Test, 2), (200, 200));
    assert!(summary.accuracy.iter().any(|a| a.split == Split::Val));
    // 50 formulas, 50 lessons: none lost, none added twice, all approved by the other process
    let pb = store.load_playbook("formula").unwrap();
    assert_eq!(pb.active_bullets().count(), 50);
    assert!(lessons_before < 50);
    assert_eq!(summary.approved_ops, 50);
    assert!(approved >= 50);
    assert_eq!(
        store
            .run_samples(&run)
            .unwrap()
            .iter()
            .filter(|s| s.split == Split::Train)
            .count(),
        1000,
        "2 epochs x 500, none twice"
    );
    // the summary the user sees
    assert!(
        text.contains("train  epoch  2") && text.contains("500/500"),
        "{text}"
    );
    let shown = ace(&db, dir.path(), &base)
        .args(["runs", "show", &run])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&shown.stdout)
            .contains("deltas: 50 proposed, 50 approved, 0 rejected, 0 pending")
    );
}
