//! The `ace` binary as a user runs it.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::test_data;

const ACE: &str = env!("CARGO_BIN_EXE_ace");

/// `ace --db DB ARGS…` as a user runs it (shared with the trust tests).
pub(crate) fn ace(db: &Path, args: &[&str]) -> Output {
    Command::new(ACE)
        .env_remove("ACE_DB")
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .unwrap()
}

pub(crate) fn ok(db: &Path, args: &[&str]) -> String {
    let out = ace(db, args);
    assert!(
        out.status.success(),
        "ace {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub(crate) fn fails(db: &Path, args: &[&str]) -> String {
    let out = ace(db, args);
    assert!(!out.status.success(), "ace {args:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn no_arguments_prints_playbooks_and_help() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    let out = ok(&db, &[]);
    assert!(out.contains("no playbooks yet"), "{out}");
    assert!(out.contains("ace playbook list"), "{out}");
    ok(&db, &["playbook", "create", "fin"]);
    let out = ok(&db, &[]);
    assert!(out.contains("fin") && out.contains("8"), "{out}");
}

#[test]
fn env_var_selects_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("from-env.db");
    let out = Command::new(ACE)
        .env("ACE_DB", &db)
        .args(["playbook", "create", "x"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(db.exists());
}

#[test]
fn a_whole_session_import_apply_revert_export() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    let file = test_data("playbooks/appworld_initial_playbook.txt");
    let out = ok(
        &db,
        &[
            "playbook",
            "import",
            file.to_str().unwrap(),
            "--name",
            "appworld",
        ],
    );
    assert!(out.contains("imported 8 bullets in 8 sections"), "{out}");

    let delta = dir.path().join("b1.json");
    std::fs::write(
        &delta,
        r#"{"id": "b-1", "source": "human", "reason": "first curation", "operations": [
            {"type": "ADD", "section": "VERIFICATION CHECKLIST", "content": "Re-read the task before calling complete_task."},
            {"type": "TAG", "bullet_id": "shr-00001", "helpful": 1},
            {"type": "UPDATE", "bullet_id": "psw-00002", "content": "Variables persist across code blocks."},
            {"type": "REMOVE", "bullet_id": "misc-00003"}]}"#,
    )
    .unwrap();
    let out = ok(
        &db,
        &[
            "delta",
            "apply",
            delta.to_str().unwrap(),
            "--playbook",
            "appworld",
        ],
    );
    assert!(
        out.contains("applied batch 'b-1' as revision 2 (+1 ~1 -1 tag×1)"),
        "{out}"
    );
    assert!(out.contains("new bullets: vc-00009"), "{out}");
    let out = ok(
        &db,
        &[
            "delta",
            "apply",
            delta.to_str().unwrap(),
            "--playbook",
            "appworld",
        ],
    );
    assert!(
        out.contains("already applied as revision 2; nothing changed"),
        "{out}"
    );

    let list: serde_json::Value =
        serde_json::from_str(&ok(&db, &["revisions", "list", "--json"])).unwrap();
    assert_eq!(
        list.as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [2, 1]
    );
    let show = ok(&db, &["revisions", "show", "2"]);
    assert!(
        show.contains("+ [vc-00009] (VERIFICATION CHECKLIST) Re-read the task"),
        "{show}"
    );
    assert!(show.contains("~ [psw-00002] content"), "{show}");
    assert!(show.contains("- [misc-00003]"), "{show}");
    assert!(
        show.contains("[shr-00001] helpful=0 harmful=0 neutral=0 → helpful=1 harmful=0 neutral=0"),
        "{show}"
    );

    let now = ok(&db, &["playbook", "show", "appworld"]);
    assert!(now.contains("vc-00009") && !now.contains("misc-00003"));
    let at1 = ok(&db, &["playbook", "show", "appworld", "--at", "1"]);
    assert!(!at1.contains("vc-00009") && at1.contains("misc-00003"));

    let out = ok(&db, &["revisions", "revert", "2"]);
    assert!(out.contains("reverted revision 2 as revision 3"), "{out}");
    let err = fails(&db, &["revisions", "revert", "2"]);
    assert!(err.contains("already reverted by revision 3"), "{err}");
    assert_eq!(
        ok(&db, &["playbook", "export", "appworld", "--format", "ace"]),
        ok(&db, &["playbook", "show", "appworld", "--at", "1"])
            .trim_end()
            .to_string()
            + "\n"
    );

    let pbs: serde_json::Value =
        serde_json::from_str(&ok(&db, &["playbook", "list", "--json"])).unwrap();
    assert_eq!(pbs[0]["name"], "appworld");
    assert!(pbs[0]["id"].is_i64());
    for format in ["ace", "json", "skillbook", "markdown"] {
        assert!(!ok(&db, &["playbook", "export", "appworld", "--format", format]).is_empty());
    }
}

#[test]
fn bad_input_is_a_clear_error_with_a_failing_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    ok(&db, &["playbook", "create", "fin"]);
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "## A\n[a-00001] fine\n[a-00002 oops\n").unwrap();
    let err = fails(&db, &["playbook", "import", bad.to_str().unwrap()]);
    assert!(
        err.contains("bad.txt:3: the bullet id has no closing ']'"),
        "{err}"
    );
    let list = ok(&db, &["playbook", "list"]);
    assert!(!list.contains("bad"), "a bad file imports nothing: {list}");
    // an empty playbook file (here our JSON with no sections and no bullets) is refused, not created
    let empty = dir.path().join("empty.json");
    std::fs::write(
        &empty,
        r#"{"format": "ace-workbench-playbook/1", "name": "e", "sections": [], "bullets": [], "next_bullet_number": 1}"#,
    )
    .unwrap();
    let err = fails(&db, &["playbook", "import", empty.to_str().unwrap()]);
    assert!(
        err.contains("empty.json holds no sections and no bullets; nothing to import"),
        "{err}"
    );
    assert!(!ok(&db, &["playbook", "list"]).contains("empty"));

    let delta = dir.path().join("d.json");
    std::fs::write(
        &delta,
        r#"{"id": "x", "operations": [{"type": "TAG", "bullet_id": "calc-00404", "helpful": 1}]}"#,
    )
    .unwrap();
    let err = fails(
        &db,
        &[
            "delta",
            "apply",
            delta.to_str().unwrap(),
            "--playbook",
            "fin",
        ],
    );
    assert!(err.contains("operations[0] (TAG calc-00404 helpful+1 harmful+0 neutral+0): bullet calc-00404 does not exist"), "{err}");
    std::fs::write(&delta, "{not json").unwrap();
    let err = fails(
        &db,
        &[
            "delta",
            "apply",
            delta.to_str().unwrap(),
            "--playbook",
            "fin",
        ],
    );
    assert!(err.contains("is not a valid delta batch"), "{err}");
    let err = fails(&db, &["revisions", "show", "99"]);
    assert!(err.contains("no revision 99"), "{err}");
    // the workbench asked to show a playbook the database does not have says so before opening
    let err = fails(&db, &["workbench", "--playbook", "gamma"]);
    assert!(
        err.contains("no playbook named 'gamma' (playbooks: fin)"),
        "{err}"
    );
}

#[test]
fn db_commands_migrate_and_roll_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    // a status of a database that does not exist creates none
    let err = fails(&db, &["db", "status"]);
    assert!(err.contains("no database at"), "{err}");
    assert!(!db.exists());
    assert!(ok(&db, &["db", "migrate"]).contains("migrated from version 0 to 10"));
    // a rollback drops data: without a terminal it needs --yes, and it keeps a copy first
    let err = fails(&db, &["db", "rollback", "--to", "1"]);
    assert!(err.contains("not confirmed; nothing changed"), "{err}");
    assert!(ok(&db, &["db", "status"]).contains("schema version 10"));
    let out = ok(&db, &["db", "rollback", "--to", "1", "--yes"]);
    assert!(out.contains("rolled back from version 10 to 1"), "{out}");
    assert!(out.contains("saved a copy of the database as"), "{out}");
    assert!(dir.path().join("ace.db.v10.bak").exists());
    assert!(ok(&db, &["db", "status"]).contains("schema version 1"));
    let err = fails(&db, &["db", "rollback", "--to", "2", "--yes"]);
    assert!(err.contains("rollback only goes down"), "{err}");
    // an ordinary command brings an older database up to date on open
    ok(&db, &["playbook", "list"]);
    assert!(ok(&db, &["db", "status"]).contains("schema version 10"));
}

#[test]
fn doctor_reaches_a_mock_model_started_from_the_cli_and_explains_a_missing_one() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.json");
    std::fs::write(&script, r#"{"model": "cli", "rules": [{"reply": "OK"}]}"#).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(ACE)
        .args([
            "mock-model",
            "--script",
            script.to_str().unwrap(),
            "--port",
            &port.to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    // keep the pipe open for the whole test
    let mut reader = std::io::BufReader::new(server.stdout.take().unwrap());
    reader.read_line(&mut first).unwrap();
    assert!(first.contains("this is not a real model"), "{first}");

    let base = format!("http://127.0.0.1:{port}/v1");
    let out = Command::new(ACE)
        .env_clear()
        .env("HOME", dir.path())
        .env("ACE_BASE_URL", &base)
        .env("ACE_MODEL", "scripted")
        .env("ACE_API_KEY", "sk-secret-value-123456")
        .arg("doctor")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for role in ["generator", "reflector", "curator"] {
        assert!(
            text.contains(&format!("{role:<10} ok: scripted:cli answered")),
            "{text}"
        );
    }
    assert!(
        text.contains("key sk-…3456") && !text.contains("secret-value"),
        "keys are masked: {text}"
    );
    // the same as JSON, for scripts
    let out = Command::new(ACE)
        .env_clear()
        .env("HOME", dir.path())
        .env("ACE_BASE_URL", &base)
        .env("ACE_MODEL", "scripted")
        .env("ACE_API_KEY", "sk-secret-value-123456")
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["healthy"], true, "{report}");
    assert_eq!(report["roles"].as_array().unwrap().len(), 3);
    assert_eq!(report["roles"][0]["key"], "sk-…3456");
    assert_eq!(report["roles"][0]["structured_output"], "json_schema");
    assert!(report["roles"][0]["probe_ms"].is_u64());
    assert!(!report.to_string().contains("secret-value"));

    // a config file named by ACE_CONFIG that does not exist is an error, not silently skipped
    let out = Command::new(ACE)
        .env_clear()
        .env("ACE_CONFIG", dir.path().join("none.toml"))
        .arg("doctor")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("none.toml: no such file")
            || String::from_utf8_lossy(&out.stderr).contains("none.toml")
    );
    let _ = server.kill();
    let _ = server.wait();

    let out = Command::new(ACE)
        .env_clear()
        .env("HOME", dir.path())
        .arg("doctor")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("no model configured") && text.contains("export OPENAI_API_KEY"),
        "{text}"
    );
}

#[test]
fn revisions_compare_and_a_forced_revert_of_a_reverted_revision_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    ok(&db, &["playbook", "create", "p"]);
    let file = dir.path().join("d.json");
    let path = file.to_str().unwrap();
    std::fs::write(
        &file,
        r#"{"id": "a", "operations": [{"type": "ADD", "section": "OTHERS", "content": "first lesson"}]}"#,
    )
    .unwrap();
    ok(&db, &["delta", "apply", path, "--playbook", "p"]);
    std::fs::write(
        &file,
        r#"{"id": "b", "operations": [{"type": "UPDATE", "bullet_id": "misc-00001", "content": "first lesson, sharper"},
                                      {"type": "TAG", "bullet_id": "misc-00001", "helpful": 2}]}"#,
    )
    .unwrap();
    ok(&db, &["delta", "apply", path, "--playbook", "p"]);
    let diff = ok(&db, &["revisions", "diff", "1", "3"]);
    assert!(
        diff.contains("+ [misc-00001] (OTHERS) first lesson, sharper"),
        "{diff}"
    );
    let diff = ok(&db, &["revisions", "diff", "2"]);
    assert!(diff.contains("revision 2 → now"), "{diff}");
    assert!(
        diff.contains("- first lesson\n    + first lesson, sharper"),
        "{diff}"
    );
    assert!(
        diff.contains("helpful=0 harmful=0") || diff.contains("0/0"),
        "{diff}"
    );
    assert!(ok(&db, &["revisions", "diff", "3"]).contains("no differences"));
    let json = ok(&db, &["revisions", "diff", "2", "3", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["changes"][0]["after"]["helpful"], 2);
    // revert, then a forced revert of the same revision: nothing left to undo, no empty revision
    ok(&db, &["revisions", "revert", "3"]);
    let before = ok(&db, &["revisions", "list"]);
    let err = fails(&db, &["revisions", "revert", "3", "--force"]);
    assert!(err.contains("nothing to revert, nothing written"), "{err}");
    assert_eq!(ok(&db, &["revisions", "list"]), before);
}

#[test]
fn playbooks_are_renamed_copied_deleted_and_restored() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    ok(&db, &["playbook", "create", "fin", "--budget", "5000"]);
    let file = dir.path().join("d.json");
    std::fs::write(
        &file,
        r#"{"operations": [{"type": "ADD", "section": "OTHERS", "content": "kept lesson"},
                           {"type": "ADD", "section": "OTHERS", "content": "gone lesson"}]}"#,
    )
    .unwrap();
    ok(
        &db,
        &[
            "delta",
            "apply",
            file.to_str().unwrap(),
            "--playbook",
            "fin",
        ],
    );
    std::fs::write(
        &file,
        r#"{"operations": [{"type": "REMOVE", "bullet_id": "misc-00002"}, {"type": "TAG", "bullet_id": "misc-00001", "helpful": 3}]}"#,
    )
    .unwrap();
    ok(
        &db,
        &[
            "delta",
            "apply",
            file.to_str().unwrap(),
            "--playbook",
            "fin",
        ],
    );
    // copy: the same bullets, ids, counters and removed ones, and the budget
    ok(&db, &["playbook", "copy", "fin", "trial"]);
    let a: serde_json::Value =
        serde_json::from_str(&ok(&db, &["playbook", "show", "fin", "--all", "--json"])).unwrap();
    let b: serde_json::Value =
        serde_json::from_str(&ok(&db, &["playbook", "show", "trial", "--all", "--json"])).unwrap();
    let shape = |v: &serde_json::Value| -> Vec<(String, String, u64, String)> {
        v["bullets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["id"].as_str().unwrap().to_string(),
                    b["content"].as_str().unwrap().to_string(),
                    b["helpful"].as_u64().unwrap(),
                    b["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(shape(&a), shape(&b));
    assert!(ok(&db, &["playbook", "list"]).contains("5000"));
    // rename
    ok(&db, &["playbook", "rename", "trial", "experiment"]);
    let list = ok(&db, &["playbook", "list"]);
    assert!(
        list.contains("experiment") && !list.contains("trial"),
        "{list}"
    );
    let err = fails(&db, &["playbook", "rename", "experiment", "fin"]);
    assert!(err.contains("already exists"), "{err}");
    // delete asks (or --yes), hides, frees the name; restore brings it back whole
    let err = fails(&db, &["playbook", "delete", "experiment"]);
    assert!(err.contains("not confirmed; nothing changed"), "{err}");
    ok(&db, &["playbook", "delete", "experiment", "--yes"]);
    assert!(!ok(&db, &["playbook", "list"]).contains("experiment"));
    assert!(ok(&db, &["playbook", "list", "--deleted"]).contains("experiment"));
    assert!(fails(&db, &["playbook", "show", "experiment"]).contains("no playbook named"));
    ok(&db, &["playbook", "restore", "experiment"]);
    let back: serde_json::Value = serde_json::from_str(&ok(
        &db,
        &["playbook", "show", "experiment", "--all", "--json"],
    ))
    .unwrap();
    assert_eq!(shape(&back), shape(&a));
}

#[test]
fn a_prompt_export_leaves_out_ids_counters_and_harmful_bullets_and_fills_an_instruction_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    ok(&db, &["playbook", "create", "fin"]);
    let file = dir.path().join("d.json");
    std::fs::write(
        &file,
        r#"{"operations": [{"type": "ADD", "section": "OTHERS", "content": "good lesson"},
                           {"type": "ADD", "section": "OTHERS", "content": "bad lesson"}]}"#,
    )
    .unwrap();
    ok(
        &db,
        &[
            "delta",
            "apply",
            file.to_str().unwrap(),
            "--playbook",
            "fin",
        ],
    );
    std::fs::write(
        &file,
        r#"{"operations": [{"type": "TAG", "bullet_id": "misc-00001", "helpful": 2}, {"type": "TAG", "bullet_id": "misc-00002", "harmful": 3}]}"#,
    )
    .unwrap();
    ok(
        &db,
        &[
            "delta",
            "apply",
            file.to_str().unwrap(),
            "--playbook",
            "fin",
        ],
    );
    let out = ace(&db, &["playbook", "prompt", "fin"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text, "## OTHERS\n\n- good lesson\n");
    let note = String::from_utf8(out.stderr).unwrap();
    assert!(
        note.contains("tokens (cl100k)") && note.contains("1 harmful-dominated"),
        "{note}"
    );
    let all = ok(
        &db,
        &[
            "playbook",
            "prompt",
            "fin",
            "--ids",
            "--counters",
            "--include-harmful",
        ],
    );
    assert!(
        all.contains("- [misc-00001] good lesson (helpful 2, harmful 0)"),
        "{all}"
    );
    assert!(all.contains("bad lesson"), "{all}");
    // a managed block in AGENTS.md: added, idempotent, the rest of the file kept
    let agents = dir.path().join("AGENTS.md");
    std::fs::write(&agents, "# Rules\n\nAlways run the tests.\n").unwrap();
    let path = agents.to_str().unwrap();
    assert!(ok(&db, &["playbook", "prompt", "fin", "--into", path]).starts_with("wrote"));
    let first = std::fs::read_to_string(&agents).unwrap();
    assert!(
        first.starts_with("# Rules\n\nAlways run the tests.\n"),
        "{first}"
    );
    assert!(first.contains("- good lesson"), "{first}");
    assert!(ok(&db, &["playbook", "prompt", "fin", "--into", path]).starts_with("unchanged"));
    assert_eq!(std::fs::read_to_string(&agents).unwrap(), first);
    std::fs::write(&agents, format!("{first}\nA line of mine after.\n")).unwrap();
    ok(&db, &["playbook", "prompt", "fin", "--into", path, "--ids"]);
    let again = std::fs::read_to_string(&agents).unwrap();
    assert!(again.contains("- [misc-00001] good lesson"), "{again}");
    assert!(again.ends_with("\nA line of mine after.\n"), "{again}");
    assert_eq!(again.matches("ace:playbook fin begin").count(), 1);
}

#[test]
fn shell_completions_name_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("none.db");
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(&db, &["completions", shell]);
        for word in ["playbook", "revisions", "queue", "train", "prompt", "prune"] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
    assert!(!db.exists(), "completions need no database");
}

#[test]
fn dot_env_in_the_working_directory_is_read_and_the_environment_wins() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "ACE_DB=from-dotenv.db\nACE_MODEL=from-dotenv\n",
    )
    .unwrap();
    let run = |env_db: Option<&str>| {
        let mut c = Command::new(ACE);
        c.current_dir(dir.path()).env_remove("ACE_DB");
        if let Some(db) = env_db {
            c.env("ACE_DB", db);
        }
        c.args(["playbook", "create", "p"]).output().unwrap()
    };
    assert!(run(None).status.success());
    assert!(
        dir.path().join("from-dotenv.db").exists(),
        "ACE_DB came from .env"
    );
    assert!(run(Some("real.db")).status.success());
    assert!(
        dir.path().join("real.db").exists(),
        "the real environment wins"
    );
}

#[test]
fn our_json_export_imports_under_the_name_inside_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    ok(&db, &["playbook", "create", "finance"]);
    let file = dir.path().join("backup-2026.json");
    ok(
        &db,
        &[
            "playbook",
            "export",
            "finance",
            "--format",
            "json",
            "-o",
            file.to_str().unwrap(),
        ],
    );
    let other = dir.path().join("other.db");
    let out = ok(&other, &["playbook", "import", file.to_str().unwrap()]);
    assert!(out.contains("into playbook 'finance'"), "{out}");
}

#[test]
fn db_status_and_delta_apply_speak_json_for_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    ok(&db, &["playbook", "create", "p"]);
    let status: serde_json::Value =
        serde_json::from_str(&ok(&db, &["db", "status", "--json"])).unwrap();
    assert_eq!(status["schema_version"], status["latest"]);
    let file = dir.path().join("d.json");
    std::fs::write(
        &file,
        r#"{"id": "j", "operations": [{"type": "ADD", "section": "OTHERS", "content": "a lesson"}]}"#,
    )
    .unwrap();
    let applied: serde_json::Value = serde_json::from_str(&ok(
        &db,
        &[
            "delta",
            "apply",
            file.to_str().unwrap(),
            "--playbook",
            "p",
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(applied["batch"], "j");
    assert_eq!(
        applied["outcome"]["added"],
        serde_json::json!(["misc-00001"])
    );
}

#[test]
fn a_bullet_story_shows_edits_and_moves_and_credits_the_person_who_edited_a_proposal() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    ok(&db, &["playbook", "create", "p"]);
    {
        let mut store = ace::store::Store::open(&db).unwrap();
        store
            .propose(
                "p",
                "k1",
                None,
                "curator's idea",
                &[(
                    "c-1".into(),
                    ace::delta::DeltaOp::Add(ace::delta::AddOp::new("OTHERS", "curator text")),
                )],
                &Default::default(),
            )
            .unwrap();
    }
    let op = dir.path().join("op.json");
    std::fs::write(
        &op,
        r#"{"type": "ADD", "section": "OTHERS", "content": "ana's better text"}"#,
    )
    .unwrap();
    ok(
        &db,
        &[
            "queue",
            "edit",
            "1",
            "--op",
            "1",
            "--file",
            op.to_str().unwrap(),
            "--author",
            "ana",
        ],
    );
    let file = dir.path().join("d.json");
    std::fs::write(
        &file,
        r#"{"author": "bob", "operations": [{"type": "UPDATE", "bullet_id": "misc-00001", "section": "STRATEGIES AND HARD RULES", "content": "bob's text"}]}"#,
    )
    .unwrap();
    ok(
        &db,
        &["delta", "apply", file.to_str().unwrap(), "--playbook", "p"],
    );
    let story = ok(&db, &["bullet", "story", "misc-00001"]);
    assert!(story.contains("by ana (edited the proposal)"), "{story}");
    assert!(
        story.contains("by bob · content, moved 'OTHERS' → 'STRATEGIES AND HARD RULES'"),
        "{story}"
    );
    assert!(story.contains("now: bob's text"), "{story}");
}

#[test]
fn an_applied_proposal_whose_revision_was_reverted_reads_undone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    ok(&db, &["playbook", "create", "p"]);
    {
        let mut store = ace::store::Store::open(&db).unwrap();
        store
            .propose(
                "p",
                "k1",
                None,
                "r",
                &[(
                    "c-1".into(),
                    ace::delta::DeltaOp::Add(ace::delta::AddOp::new("OTHERS", "a lesson")),
                )],
                &Default::default(),
            )
            .unwrap();
    }
    let out = ok(&db, &["queue", "approve", "1"]);
    assert!(out.contains("revision 2"), "{out}");
    assert!(ok(&db, &["queue", "list", "--all"]).contains("applied"));
    ok(&db, &["revisions", "revert", "2"]);
    let list = ok(&db, &["queue", "list", "--all"]);
    assert!(list.contains("undone (revision 3)"), "{list}");
    assert!(ok(&db, &["queue", "show", "1"]).contains("undone (revision 3)"));
}

#[test]
fn ace_learn_names_a_bad_trace_line_before_any_model_call() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    let traces = dir.path().join("traces.jsonl");
    std::fs::write(
        &traces,
        "{\"task\": \"t\", \"answer\": \"a\"}\n\n{\"task\": \"t2\", \"answr\": \"a\"}\n",
    )
    .unwrap();
    // no model is configured anywhere: the file is refused before one is needed
    let out = Command::new(ACE)
        .env_remove("ACE_DB")
        .env("ACE_BASE_URL", "http://127.0.0.1:9/v1")
        .env("ACE_MODEL", "any")
        .arg("--db")
        .arg(&db)
        .args(["learn", "--playbook", "agent", "--traces"])
        .arg(&traces)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("traces.jsonl:3: unknown field \"answr\""),
        "{err}"
    );
    assert!(!err.contains("cannot reach"), "{err}");
}
