//! Helpers shared by the integration tests.

use std::path::PathBuf;

use ace::delta::{AddOp, DeltaBatch, DeltaOp, Source, TagOp, UpdateOp};
use ace::delta::{ApplyOptions, ApplyOutcome};
use ace::playbook::{Bullet, Playbook};
use ace::store::{Store, StoreError};

/// A fixture file under `tests/data/` (provenance and licences in `tests/data/README.md`).
pub fn test_data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

pub fn store_with(name: &str, sections: &[&str]) -> Store {
    let mut store = Store::open_in_memory().unwrap();
    store.create_playbook(name, sections).unwrap();
    store
}

pub fn add(section: &str, content: &str) -> DeltaOp {
    DeltaOp::Add(AddOp::new(section, content))
}

pub fn tag(id: &str, helpful: u64, harmful: u64) -> DeltaOp {
    DeltaOp::Tag(TagOp {
        bullet_id: id.into(),
        helpful,
        harmful,
        neutral: 0,
    })
}

pub fn update_content(id: &str, content: &str) -> DeltaOp {
    DeltaOp::Update(UpdateOp {
        bullet_id: id.into(),
        content: Some(content.into()),
        section: None,
        metadata: None,
    })
}

pub fn move_to_section(id: &str, section: &str) -> DeltaOp {
    DeltaOp::Update(UpdateOp {
        bullet_id: id.into(),
        content: None,
        section: Some(section.into()),
        metadata: None,
    })
}

pub fn remove(id: &str) -> DeltaOp {
    DeltaOp::Remove {
        bullet_id: id.into(),
    }
}

pub fn batch(id: &str, ops: Vec<DeltaOp>) -> DeltaBatch {
    DeltaBatch::new(id, Source::Human, ops)
}

pub fn apply(store: &mut Store, playbook: &str, b: DeltaBatch) -> ApplyOutcome {
    store.apply(playbook, &b, &ApplyOptions::default()).unwrap()
}

pub fn added(outcome: &ApplyOutcome) -> Vec<String> {
    match outcome {
        ApplyOutcome::Applied { added, .. } => added.clone(),
        ApplyOutcome::AlreadyApplied { .. } => panic!("expected a new revision"),
    }
}

/// What a person sees of a playbook: sections in order, every bullet in order with its content,
/// counters, metadata and status. Timestamps are left out (a revert is a new change in time).
pub type View = (
    Vec<(String, String)>,
    Vec<(String, String, String, u64, u64, u64, String, &'static str)>,
);

pub fn view(p: &Playbook) -> View {
    let sections = p
        .sections
        .iter()
        .map(|s| (s.name.clone(), s.slug.clone()))
        .collect();
    let bullets = p
        .bullets
        .iter()
        .map(|b: &Bullet| {
            (
                b.id.clone(),
                b.section.clone(),
                b.content.clone(),
                b.helpful,
                b.harmful,
                b.neutral,
                serde_json::Value::Object(b.metadata.clone()).to_string(),
                b.status.as_str(),
            )
        })
        .collect();
    (sections, bullets)
}

/// A small finance playbook `fin` used by several tests: calc-00001 (current ratio, helpful 3 harmful 1),
/// calc-00002 (ROI), err-00003 (thousands separators), misc-00004 (two decimals).
pub fn finance_store() -> Store {
    let mut store = store_with(
        "fin",
        &[
            "FORMULAS AND CALCULATIONS",
            "COMMON MISTAKES TO AVOID",
            "OTHERS",
        ],
    );
    let ops = vec![
        add(
            "FORMULAS AND CALCULATIONS",
            "Current ratio = current assets / current liabilities.",
        ),
        add("FORMULAS AND CALCULATIONS", "ROI = (gain - cost) / cost."),
        add(
            "COMMON MISTAKES TO AVOID",
            "Strip thousands separators before dividing.",
        ),
        add("OTHERS", "Answer with exactly two decimals."),
    ];
    apply(&mut store, "fin", batch("seed", ops));
    apply(
        &mut store,
        "fin",
        batch("tags", vec![tag("calc-00001", 3, 1)]),
    );
    store
}

/// Another process deciding: a thread that runs `ace queue list --json` and `ace queue approve|reject ID`
/// (real processes) on `db` until `stop`; returns how many batches it decided.
pub fn approver(
    db: PathBuf,
    approve: bool,
    author: &'static str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    use std::process::Command;
    const ACE: &str = env!("CARGO_BIN_EXE_ace");
    std::thread::spawn(move || {
        let mut decided = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let out = Command::new(ACE)
                .arg("--db")
                .arg(&db)
                .args(["queue", "list", "--json"])
                .output()
                .unwrap();
            let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            for b in list.as_array().into_iter().flatten() {
                let verb = if approve { "approve" } else { "reject" };
                let out = Command::new(ACE)
                    .arg("--db")
                    .arg(&db)
                    .args(["queue", verb, &b["id"].to_string(), "--author", author])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                decided += 1;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        decided
    })
}

/// Applies `ops` to `fin` expecting a rejection; checks that nothing was written and no revision
/// made, and returns the message.
pub fn rejected(store: &mut Store, ops: Vec<DeltaOp>) -> String {
    let before = view(&store.load_playbook("fin").unwrap());
    let revisions = store.revisions(None, 1000).unwrap().len();
    let err = store
        .apply("fin", &batch("bad", ops), &ApplyOptions::default())
        .unwrap_err();
    assert!(matches!(err, StoreError::Rejected { .. }), "{err}");
    assert_eq!(
        view(&store.load_playbook("fin").unwrap()),
        before,
        "a rejected batch writes nothing"
    );
    assert_eq!(
        store.revisions(None, 1000).unwrap().len(),
        revisions,
        "a rejected batch makes no revision"
    );
    err.to_string()
}
