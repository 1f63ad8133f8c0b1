//! Several `ace` processes applying TAG batches to the same bullets at once: counters add up exactly.

use std::process::Command;

use crate::common::*;
use ace::store::Store;

const ACE: &str = env!("CARGO_BIN_EXE_ace");

#[test]
fn concurrent_processes_tagging_the_same_bullets_add_up_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ace.db");
    let mut store = Store::open(&db).unwrap();
    store.create_playbook("pb", &["OTHERS"]).unwrap();
    apply(
        &mut store,
        "pb",
        batch(
            "seed",
            vec![
                add("OTHERS", "one"),
                add("OTHERS", "two"),
                add("OTHERS", "three"),
            ],
        ),
    );
    drop(store);

    const WORKERS: usize = 4;
    const BATCHES: usize = 15;
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let db = db.clone();
            let dir = dir.path().to_path_buf();
            std::thread::spawn(move || {
                for i in 0..BATCHES {
                    let file = dir.join(format!("tag-{w}-{i}.json"));
                    let body = serde_json::json!({
                        "id": format!("tag-{w}-{i}"),
                        "source": "policy",
                        "operations": [
                            {"type": "TAG", "bullet_id": "misc-00001", "helpful": 1},
                            {"type": "TAG", "bullet_id": "misc-00002", "helpful": 1, "harmful": 2},
                            {"type": "TAG", "bullet_id": "misc-00003", "neutral": 3},
                        ]
                    });
                    std::fs::write(&file, body.to_string()).unwrap();
                    let out = Command::new(ACE)
                        .arg("--db")
                        .arg(&db)
                        .args(["delta", "apply"])
                        .arg(&file)
                        .args(["--playbook", "pb"])
                        .output()
                        .unwrap();
                    assert!(
                        out.status.success(),
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let store = Store::open(&db).unwrap();
    let p = store.load_playbook("pb").unwrap();
    let n = (WORKERS * BATCHES) as u64;
    let counters: Vec<_> = p
        .bullets
        .iter()
        .map(|b| (b.id.as_str(), b.helpful, b.harmful, b.neutral))
        .collect();
    assert_eq!(
        counters,
        [
            ("misc-00001", n, 0, 0),
            ("misc-00002", n, 2 * n, 0),
            ("misc-00003", 0, 0, 3 * n)
        ]
    );
    assert_eq!(
        store.revisions(Some("pb"), 1000).unwrap().len(),
        2 + WORKERS * BATCHES
    );
}
