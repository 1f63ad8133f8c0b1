//! Trust: what a reviewer sees is what gets applied, clear refusals, data that stays where it
//! belongs. Each test drives the `ace` binary as a user (or an attacker) would.

use std::process::Command;

use ace::approval::{Evidence, Provenance};
use ace::delta::{AddOp, DeltaOp};
use ace::store::Store;

use crate::cli::{ace, fails, ok};

const ACE: &str = env!("CARGO_BIN_EXE_ace");

/// Raw bytes a terminal would act on: ESC, CSI, OSC's BEL, C1 CSI, a bidi override, CR.
const HOSTILE: [&str; 6] = ["\u{1b}", "\u{7}", "\u{9b}", "\u{202e}", "\r", "\u{7f}"];

fn assert_clean(what: &str, text: &str) {
    for h in HOSTILE {
        assert!(
            !text.contains(h),
            "{what} prints {:?} raw:\n{text}",
            h.escape_unicode().to_string()
        );
    }
}

#[test]
fn text_from_models_and_files_is_shown_escaped_in_every_printout() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    ok(&db, &["playbook", "create", "p"]);
    let evil_question = "What is 2+2?\u{1b}]0;owned\u{7}\u{1b}[2J";
    let evil_reasoning = "fine \u{9b}31m\u{202e}txt.exe";
    {
        let mut store = Store::open(&db).unwrap();
        let provenance = Provenance {
            samples: vec![Evidence {
                key: "train/1/1/1".into(),
                question: evil_question.into(),
                answer: "4\r\u{1b}[1A".into(),
                ..Default::default()
            }],
            curator_reasoning: Some(evil_reasoning.into()),
            ..Default::default()
        };
        store
            .propose(
                "p",
                "k1",
                None,
                evil_reasoning,
                &[(
                    "c-1".into(),
                    DeltaOp::Add(AddOp::new("OTHERS", "Check the sum twice.")),
                )],
                &provenance,
            )
            .unwrap();
    }
    ok(&db, &["queue", "approve", "1", "--author", "ana"]);
    Store::open(&db)
        .unwrap()
        .connection()
        .execute(
            "UPDATE bullets SET content = 'shown\u{1b}[8m hidden\u{1b}[0m\u{202e}'",
            [],
        )
        .unwrap();
    for args in [
        vec!["queue", "show", "1"],
        vec!["queue", "list", "--all"],
        vec!["playbook", "show", "p"],
        vec!["playbook", "export", "p", "--format", "ace"],
        vec!["playbook", "export", "p", "--format", "markdown"],
        vec!["revisions", "show", "1"],
    ] {
        let out = ok(&db, &args);
        assert_clean(&format!("ace {args:?}"), &out);
    }
    let shown = ok(&db, &["queue", "show", "1"]);
    assert!(shown.contains("\\x1b]0;owned\\x07"), "{shown}");
    assert!(shown.contains("\\u009b31m\\u202etxt.exe"), "{shown}");
    let book = ok(&db, &["playbook", "show", "p"]);
    assert!(
        book.contains("shown\\x1b[8m hidden\\x1b[0m\\u202e"),
        "{book}"
    );
    // JSON stays JSON, and reads back to the exact text
    let json = ok(&db, &["queue", "show", "1", "--json"]);
    assert_clean("queue show --json", &json);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        value["provenance"]["samples"][0]["question"].as_str(),
        Some(evil_question)
    );
    // a written export carries no raw control characters either
    let file = dir.path().join("out.md");
    ok(
        &db,
        &[
            "playbook",
            "export",
            "p",
            "--format",
            "ace",
            "-o",
            file.to_str().unwrap(),
        ],
    );
    assert_clean("export -o", &std::fs::read_to_string(&file).unwrap());
}

#[test]
fn the_store_refuses_control_characters_in_content_and_names_where() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    ok(&db, &["playbook", "create", "p"]);
    let file = dir.path().join("d.json");
    std::fs::write(
        &file,
        r#"{"operations": [{"type": "ADD", "section": "OTHERS", "content": "first lesson"},
                           {"type": "ADD", "section": "OTHERS", "content": "looks fine\u001b[8m rm -rf"}]}"#,
    )
    .unwrap();
    let err = fails(
        &db,
        &["delta", "apply", file.to_str().unwrap(), "--playbook", "p"],
    );
    assert!(err.contains("operations[1]"), "{err}");
    assert!(err.contains("U+001B at character 11"), "{err}");
    assert_clean("the error", &err);
    assert!(
        !ok(&db, &["playbook", "show", "p"]).contains("first lesson"),
        "nothing was written"
    );
    // a proposal (from a model or an agent) is refused at the queue's door too
    let mut store = Store::open(&db).unwrap();
    let err = store
        .propose(
            "p",
            "k",
            None,
            "r",
            &[(
                "c".into(),
                DeltaOp::Add(AddOp::new("OTHERS", "bidi \u{202e}reversed")),
            )],
            &Provenance::default(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("U+202E"), "{err}");
    // line breaks and tabs are content
    std::fs::write(
        &file,
        r#"{"operations": [{"type": "ADD", "section": "OTHERS", "content": "two\nlines\tand a tab"}]}"#,
    )
    .unwrap();
    ok(
        &db,
        &["delta", "apply", file.to_str().unwrap(), "--playbook", "p"],
    );
}

#[test]
fn delta_files_with_unknown_fields_or_a_reused_id_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    ok(&db, &["playbook", "create", "p"]);
    let file = dir.path().join("d.json");
    let path = file.to_str().unwrap();
    std::fs::write(
        &file,
        r#"{"id": "b1", "operations": [{"type": "ADD", "section": "OTHERS", "content": "one"}]}"#,
    )
    .unwrap();
    ok(&db, &["delta", "apply", path, "--playbook", "p"]);
    // the same file again is a no-op, as before
    assert!(ok(&db, &["delta", "apply", path, "--playbook", "p"]).contains("already applied"));
    // the same id with other operations is a mistake, named
    std::fs::write(
        &file,
        r#"{"id": "b1", "operations": [{"type": "ADD", "section": "OTHERS", "content": "two"}]}"#,
    )
    .unwrap();
    let err = fails(&db, &["delta", "apply", path, "--playbook", "p"]);
    assert!(err.contains("batch 'b1' was applied before"), "{err}");
    assert!(err.contains("other operations"), "{err}");
    // a misspelt field does not silently do nothing
    std::fs::write(
        &file,
        r#"{"id": "b2", "operations": [{"type": "TAG", "bullet_id": "misc-00001", "harmfull": 3}]}"#,
    )
    .unwrap();
    let err = fails(&db, &["delta", "apply", path, "--playbook", "p"]);
    assert!(
        err.contains("unknown field 'harmfull' in operations[0] (TAG"),
        "{err}"
    );
    let book = ok(&db, &["playbook", "show", "p"]);
    assert!(book.contains("one") && !book.contains("two"), "{book}");
}

#[test]
fn a_queue_edit_that_cannot_apply_is_refused_and_an_edit_shows_as_what_applies() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    ok(&db, &["playbook", "create", "p"]);
    {
        let mut store = Store::open(&db).unwrap();
        store
            .propose(
                "p",
                "k1",
                None,
                "r",
                &[
                    (
                        "c-1".into(),
                        DeltaOp::Add(AddOp::new("OTHERS", "proposed text")),
                    ),
                    ("c-2".into(), DeltaOp::Add(AddOp::new("OTHERS", "second"))),
                ],
                &Provenance::default(),
            )
            .unwrap();
    }
    let op = dir.path().join("op.json");
    std::fs::write(
        &op,
        r#"{"type": "UPDATE", "bullet_id": "misc-00042", "content": "x"}"#,
    )
    .unwrap();
    let err = fails(
        &db,
        &[
            "queue",
            "edit",
            "1",
            "--op",
            "1",
            "--file",
            op.to_str().unwrap(),
        ],
    );
    assert!(err.contains("misc-00042"), "{err}");
    assert!(ok(&db, &["queue", "show", "1"]).contains("[1] pending"));
    // ops are numbered from 1 as queue show lists them
    let err = fails(&db, &["queue", "approve", "1", "--op", "0"]);
    assert!(err.contains("numbered from 1"), "{err}");
    let err = fails(&db, &["queue", "approve", "1", "--op", "3"]);
    assert!(err.contains("has no op 3 (its ops are 1 to 2)"), "{err}");
    std::fs::write(
        &op,
        r#"{"type": "ADD", "section": "OTHERS", "content": "edited text"}"#,
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
        ],
    );
    let shown = ok(&db, &["queue", "show", "1"]);
    assert!(shown.contains("+ (OTHERS) edited text"), "{shown}");
    assert!(shown.contains("edited; proposed:"), "{shown}");
}

#[test]
fn a_foreign_database_is_refused_untouched_and_paths_are_taken_as_meant() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other-app.sqlite");
    {
        let conn = rusqlite::Connection::open(&other).unwrap();
        conn.execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('mine');")
            .unwrap();
    }
    let before = std::fs::read(&other).unwrap();
    for args in [vec!["playbook", "list"], vec!["playbook", "create", "p"]] {
        let err = fails(&other, &args);
        assert!(err.contains("is not an ace database"), "{err}");
    }
    assert_eq!(std::fs::read(&other).unwrap(), before, "not a byte changed");
    let conn = rusqlite::Connection::open(&other).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete", "not switched to WAL");

    // an ace database is marked as one
    let db = dir.path().join("ace.db");
    ok(&db, &["playbook", "create", "p"]);
    let app: i32 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .unwrap();
    assert_eq!(app, ace::store::APPLICATION_ID);
    // private to its owner
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&db).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "database mode {mode:o}");
    }

    // a mistyped path creates nothing for a command that only reads
    let typo = dir.path().join("ace.bd");
    for args in [
        vec!["db", "status"],
        vec!["playbook", "list"],
        vec!["queue", "list"],
    ] {
        let err = fails(&typo, &args);
        assert!(err.contains("no database at"), "{err}");
    }
    assert!(!typo.exists());
    // creating says where
    let fresh = dir.path().join("fresh.db");
    let out = ace(&fresh, &["playbook", "create", "q"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("creating a new database at"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // ACE_DB=~/x.db means the home directory, not a folder named "~"
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let out = Command::new(ACE)
        .current_dir(dir.path())
        .env("HOME", &home)
        .env("ACE_DB", "~/x.db")
        .args(["playbook", "create", "p"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(home.join("x.db").exists());
    assert!(!dir.path().join("~").exists());
}

#[test]
fn a_lesson_the_section_holds_word_for_word_is_never_added_twice() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    ok(&db, &["playbook", "create", "p"]);
    // two runs on one playbook each queue the same lesson; both batches are approved
    {
        let mut store = Store::open(&db).unwrap();
        for key in ["run-1:1:1", "run-2:1:1"] {
            store
                .propose(
                    "p",
                    key,
                    None,
                    "r",
                    &[
                        (
                            "c-1".into(),
                            DeltaOp::Add(AddOp::new("OTHERS", "Round to cents at the end.")),
                        ),
                        (
                            "c-2".into(),
                            DeltaOp::Add(AddOp::new("OTHERS", "Round to cents at the end.")),
                        ),
                    ],
                    &Provenance::default(),
                )
                .unwrap();
        }
    }
    ok(&db, &["queue", "approve", "1"]);
    ok(&db, &["queue", "approve", "2"]);
    let store = Store::open(&db).unwrap();
    let p = store.load_playbook("p").unwrap();
    let copies = p
        .active_bullets()
        .filter(|b| b.content == "Round to cents at the end.")
        .count();
    assert_eq!(copies, 1);
    // the same words in another section are another lesson; an import keeps a file as it is
    let file = dir.path().join("pb.txt");
    std::fs::write(
        &file,
        "## OTHERS\n[misc-00001] helpful=1 harmful=0 :: same\n[misc-00002] helpful=0 harmful=0 :: same\n",
    )
    .unwrap();
    drop(store);
    ok(
        &db,
        &[
            "playbook",
            "import",
            file.to_str().unwrap(),
            "--name",
            "imported",
        ],
    );
    let store = Store::open(&db).unwrap();
    assert_eq!(store.load_playbook("imported").unwrap().bullets.len(), 2);
}

#[test]
fn the_workbench_without_a_terminal_says_so_and_the_demo_keeps_to_its_own_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    ok(&db, &["playbook", "create", "mine"]);
    let out = ace(&db, &["workbench"]);
    assert_eq!(out.status.code(), Some(1), "a clear error, not a panic");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the workbench needs a terminal"), "{err}");
    // the demo, without --db, names a database of its own beside the default one
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let out = Command::new(ACE)
        .env_remove("ACE_DB")
        .env("HOME", &home)
        .env("XDG_DATA_HOME", home.join("data"))
        .arg("demo")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the demo uses its own database"), "{err}");
    assert!(err.contains("demo.db"), "{err}");
    assert!(
        !home.join("data/ace/ace.db").exists(),
        "the user's database is untouched"
    );
}

#[test]
fn an_input_file_over_the_limit_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    ok(&db, &["playbook", "create", "p"]);
    let file = dir.path().join("big.txt");
    std::fs::write(
        &file,
        "## OTHERS\n[misc-00001] helpful=0 harmful=0 :: a lesson\n",
    )
    .unwrap();
    let out = Command::new(ACE)
        .env("ACE_MAX_FILE_BYTES", "20")
        .arg("--db")
        .arg(&db)
        .args([
            "playbook",
            "import",
            file.to_str().unwrap(),
            "--name",
            "big",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the limit is 20 (ACE_MAX_FILE_BYTES)"),
        "{err}"
    );
    assert!(!ok(&db, &["playbook", "list"]).contains("big"));
}

#[test]
fn a_resume_shows_a_stored_command_before_running_it_and_keeps_its_settings() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    ok(&db, &["playbook", "create", "p"]);
    let marker = dir.path().join("pwned");
    let run = {
        let mut store = Store::open(&db).unwrap();
        let config = ace::adaptation::RunConfig {
            playbook: "p".into(),
            dataset: dir.path().join("data.jsonl"),
            env: ace::environment::Environment::parse(&format!("cmd:touch {}", marker.display()))
                .unwrap(),
            ..Default::default()
        };
        store.create_run(&config).unwrap()
    };
    let err = fails(&db, &["train", "--resume", &run]);
    assert!(
        err.contains("checks answers by running this command"),
        "{err}"
    );
    assert!(
        err.contains(&format!("touch {}", marker.display())),
        "{err}"
    );
    assert!(err.contains("--allow-command"), "{err}");
    assert!(!marker.exists(), "nothing ran");
    // a setting given with --resume is refused, not silently ignored
    let err = fails(
        &db,
        &[
            "train",
            "--resume",
            &run,
            "--dataset",
            "other.jsonl",
            "--allow-command",
        ],
    );
    assert!(err.contains("--dataset cannot change them"), "{err}");
}

#[test]
fn a_run_stores_its_dataset_paths_absolute() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    ok(&db, &["playbook", "create", "p"]);
    std::fs::write(dir.path().join("data.jsonl"), "not json\n").unwrap();
    // the run reads its data by the absolute path it keeps (its error names it)
    let out = Command::new(ACE)
        .current_dir(dir.path())
        .env_remove("ACE_DB")
        .env("ACE_BASE_URL", "http://127.0.0.1:9/v1")
        .env("ACE_MODEL", "m")
        .arg("--db")
        .arg(&db)
        .args(["train", "--playbook", "p", "--dataset", "data.jsonl"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let full = dir.path().join("data.jsonl");
    assert!(err.contains(&format!("{}:1:", full.display())), "{err}");
}

#[test]
fn a_database_opened_for_reading_reads_and_refuses_to_write_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    ok(&db, &["playbook", "create", "p"]);
    let mut store = Store::open_read_only(&db).unwrap();
    assert_eq!(store.load_playbook("p").unwrap().sections.len(), 8);
    assert!(
        store.playbook_tokens("p").unwrap() > 0,
        "a cache it cannot write is done without"
    );
    let err = store
        .create_playbook("q", ace::playbook::DEFAULT_SECTIONS)
        .unwrap_err();
    assert!(err.is_unwritable(), "{err}");
    // another application's file is refused read-only too
    let other = dir.path().join("other.sqlite");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let err = match Store::open_read_only(&other) {
        Ok(_) => panic!("a foreign database was opened"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("is not an ace database"), "{err}");
}
