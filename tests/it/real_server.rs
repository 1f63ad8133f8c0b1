//! Against a real OpenAI-compatible server (llama.cpp, Ollama, vLLM, LiteLLM): the plumbing, not the
//! accuracy. Ignored by default; run it with
//! `ACE_REAL_MODEL_URL=http://127.0.0.1:8080/v1 ACE_REAL_MODEL=NAME cargo test --test it real_server -- --ignored`
//! (docs/OPERATIONS.md). It starts no server itself and calls nothing on the internet.

use std::process::Command;

use crate::common::test_data;

const ACE: &str = env!("CARGO_BIN_EXE_ace");

#[test]
#[ignore = "needs a model server: set ACE_REAL_MODEL_URL (and ACE_REAL_MODEL)"]
fn a_real_server_runs_the_loop_with_every_call_accounted_and_nothing_invalid_applied() {
    let url = std::env::var("ACE_REAL_MODEL_URL").expect("ACE_REAL_MODEL_URL names the server");
    let model = std::env::var("ACE_REAL_MODEL").unwrap_or_else(|_| "default".into());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    let ace = |args: &[&str]| {
        Command::new(ACE)
            .env_remove("ACE_DB")
            .env("HOME", dir.path())
            .env("ACE_BASE_URL", &url)
            .env("ACE_MODEL", &model)
            .arg("--db")
            .arg(&db)
            .args(args)
            .output()
            .unwrap()
    };
    // the doctor: every role answers, and says how its structured answers are asked for
    let doctor = ace(&["doctor", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    for role in report["roles"].as_array().unwrap() {
        assert_eq!(role["ok"], true, "{role}");
        assert!(role["structured_output"].is_string(), "{role}");
    }
    // five Formula samples, auto-approved
    let data = dir.path().join("five.jsonl");
    let text =
        std::fs::read_to_string(test_data("ace-formula/formula_train_subset_500.jsonl")).unwrap();
    std::fs::write(
        &data,
        text.lines().take(5).collect::<Vec<_>>().join("\n") + "\n",
    )
    .unwrap();
    let train = ace(&[
        "train",
        "--playbook",
        "real",
        "--dataset",
        data.to_str().unwrap(),
        "--env",
        "numeric",
        "--approve",
        "auto",
        "--json",
    ]);
    assert!(
        train.status.success(),
        "{}",
        String::from_utf8_lossy(&train.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&train.stdout).unwrap();
    assert_eq!(summary["run"]["status"], "finished", "{summary}");
    // every call counted once, whatever came of it
    let by_role: u64 = summary["roles"]
        .as_object()
        .unwrap()
        .values()
        .map(|r| r["calls"].as_u64().unwrap())
        .sum();
    let by_outcome: u64 = summary["outcomes"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert!(
        by_role >= 5 * 2,
        "a generator and a reflector call per sample at least"
    );
    assert_eq!(by_role, by_outcome, "{summary}");
    // nothing that fails validation reached the playbook
    let store = ace::store::Store::open(&db).unwrap();
    let pb = store.load_playbook("real").unwrap();
    for b in pb.active_bullets() {
        assert!(
            !b.content.trim().starts_with('<'),
            "a placeholder: {}",
            b.content
        );
        assert!(
            ace::text::hidden_char(&b.content).is_none(),
            "{}",
            b.content
        );
        assert!(pb.sections.iter().any(|s| s.name == b.section));
    }
    assert!(pb.sections.iter().all(|s| !s.name.starts_with('<')));
}
