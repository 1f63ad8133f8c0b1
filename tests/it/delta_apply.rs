//! Applying delta batches: validation, atomicity, idempotency, id allocation.

use crate::common::*;
use ace::delta::{ApplyOptions, ApplyOutcome, SectionPolicy};
use ace::delta::{DeltaBatch, DeltaOp, Source, UpdateOp};
use ace::store::Store;
use serde_json::json;

const SECTIONS: &[&str] = &["FORMULAS AND CALCULATIONS", "OTHERS"];

#[test]
fn add_allocates_published_ids_from_one_counter() {
    let mut store = store_with("fin", SECTIONS);
    let out = apply(
        &mut store,
        "fin",
        batch(
            "b1",
            vec![
                add("FORMULAS AND CALCULATIONS", "ROI = gain / cost"),
                add("OTHERS", "Answer with two decimals"),
            ],
        ),
    );
    assert_eq!(added(&out), vec!["calc-00001", "misc-00002"]);
    let p = store.load_playbook("fin").unwrap();
    assert_eq!(
        p.bullets.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(),
        ["calc-00001", "misc-00002"]
    );
    assert_eq!(p.next_bullet_number, 3);
}

#[test]
fn every_op_kind_changes_what_it_says() {
    let mut store = store_with("fin", SECTIONS);
    apply(
        &mut store,
        "fin",
        batch(
            "b1",
            vec![
                add("OTHERS", "one"),
                add("OTHERS", "two"),
                add("OTHERS", "three"),
            ],
        ),
    );
    let meta = json!({"source": "test", "drop": 1})
        .as_object()
        .unwrap()
        .clone();
    apply(
        &mut store,
        "fin",
        batch(
            "b2",
            vec![
                tag("misc-00001", 2, 1),
                update_content("misc-00002", "  two, better  "),
                DeltaOp::Update(UpdateOp {
                    bullet_id: "misc-00003".into(),
                    content: None,
                    section: Some("formulas and calculations".into()),
                    metadata: Some(meta),
                }),
                remove("misc-00001"),
            ],
        ),
    );
    apply(
        &mut store,
        "fin",
        batch(
            "b3",
            vec![DeltaOp::Update(UpdateOp {
                bullet_id: "misc-00003".into(),
                content: None,
                section: None,
                metadata: Some(json!({"drop": null, "k": "v"}).as_object().unwrap().clone()),
            })],
        ),
    );
    let p = store.load_playbook("fin").unwrap();
    let one = p.bullet("misc-00001").unwrap();
    assert_eq!(
        (one.helpful, one.harmful, one.status.as_str()),
        (2, 1, "removed")
    );
    assert_eq!(
        one.content, "one",
        "a removed bullet keeps its content for history"
    );
    assert_eq!(p.bullet("misc-00002").unwrap().content, "two, better");
    let moved = p.bullet("misc-00003").unwrap();
    assert_eq!(
        moved.section, "FORMULAS AND CALCULATIONS",
        "section names match case-insensitively"
    );
    assert_eq!(
        serde_json::Value::Object(moved.metadata.clone()),
        json!({"source": "test", "k": "v"})
    );
    // the moved bullet now comes first: its section is first
    assert_eq!(
        p.active_bullets()
            .map(|b| b.id.as_str())
            .collect::<Vec<_>>(),
        ["misc-00003", "misc-00002"]
    );
}

#[test]
fn a_bad_op_rejects_the_whole_batch_and_names_it() {
    let mut store = store_with("fin", SECTIONS);
    apply(
        &mut store,
        "fin",
        batch("b1", vec![add("OTHERS", "one"), add("OTHERS", "two")]),
    );
    apply(&mut store, "fin", batch("b2", vec![remove("misc-00002")]));

    let err = rejected(
        &mut store,
        vec![
            add("OTHERS", "fine"),
            tag("misc-00001", 1, 0),
            update_content("calc-00099", "x"),
        ],
    );
    assert_eq!(
        err,
        "batch 'bad' rejected, nothing was written: operations[2] (UPDATE calc-00099): bullet calc-00099 does not exist in playbook 'fin'"
    );
    let err = rejected(
        &mut store,
        vec![tag("misc-00001", 1, 0), tag("misc-00002", 1, 0)],
    );
    assert!(err.contains("operations[1] (TAG misc-00002 helpful+1 harmful+0 neutral+0): bullet misc-00002 is removed"), "{err}");
    let err = rejected(&mut store, vec![add("OTHERS", "ok"), add("OTHERS", " ")]);
    assert!(
        err.contains("operations[1]") && err.contains("content is empty"),
        "{err}"
    );
    let err = rejected(&mut store, vec![add("OTHERS", &"x".repeat(4001))]);
    assert!(
        err.contains("content has 4001 characters; the limit is 4000"),
        "{err}"
    );
    let err = rejected(
        &mut store,
        vec![add("OTHERS", "ok"), add("NEW SECTION", "x")],
    );
    assert!(
        err.contains("operations[1]") && err.contains("section 'NEW SECTION' does not exist"),
        "{err}"
    );
    // the same op inside one batch sees the batch's earlier ops: REMOVE then TAG fails
    let err = rejected(
        &mut store,
        vec![remove("misc-00001"), tag("misc-00001", 1, 0)],
    );
    assert!(
        err.contains("operations[1]") && err.contains("is removed"),
        "{err}"
    );
    let err = rejected(&mut store, vec![remove("misc-00002")]);
    assert!(err.contains("is removed"), "{err}");
}

#[test]
fn unknown_sections_are_created_only_when_the_policy_says_so() {
    let mut store = store_with("fin", SECTIONS);
    let options = ApplyOptions {
        sections: SectionPolicy::Create,
    };
    let out = store
        .apply(
            "fin",
            &batch("b1", vec![add("Date Handling", "Use ISO dates")]),
            &options,
        )
        .unwrap();
    assert_eq!(added(&out), vec!["dh-00001"]);
    let p = store.load_playbook("fin").unwrap();
    assert_eq!(p.sections.last().unwrap().name, "Date Handling");
}

#[test]
fn the_same_batch_id_twice_is_a_noop_that_says_so() {
    let mut store = store_with("fin", SECTIONS);
    let b = batch("b1", vec![add("OTHERS", "one")]);
    let first = apply(&mut store, "fin", b.clone());
    let second = apply(&mut store, "fin", b);
    assert_eq!(
        second,
        ApplyOutcome::AlreadyApplied {
            revision: first.revision()
        }
    );
    assert_eq!(store.load_playbook("fin").unwrap().bullets.len(), 1);
    // a batch file without an id gets a content-derived id: still idempotent
    let text = r#"{"source": "human", "operations": [{"type": "ADD", "section": "OTHERS", "content": "two"}]}"#;
    let b = DeltaBatch::from_json(text).unwrap();
    apply(&mut store, "fin", b.clone());
    assert!(matches!(
        apply(&mut store, "fin", DeltaBatch::from_json(text).unwrap()),
        ApplyOutcome::AlreadyApplied { .. }
    ));
    assert_eq!(store.load_playbook("fin").unwrap().bullets.len(), 2);
}

#[test]
fn ids_are_never_reused_after_remove_revert_or_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ace.db");
    let mut store = Store::open(&path).unwrap();
    store.create_playbook("fin", SECTIONS).unwrap();
    let r1 = apply(
        &mut store,
        "fin",
        batch("b1", vec![add("OTHERS", "one"), add("OTHERS", "two")]),
    );
    apply(&mut store, "fin", batch("b2", vec![remove("misc-00002")]));
    store.revert(r1.revision() + 1, false, None).unwrap(); // undo the remove
    let r3 = apply(&mut store, "fin", batch("b3", vec![add("OTHERS", "three")]));
    assert_eq!(added(&r3), vec!["misc-00003"]);
    store.revert(r3.revision(), false, None).unwrap(); // the ADD is undone: misc-00003 is gone
    assert!(
        store
            .load_playbook("fin")
            .unwrap()
            .bullet("misc-00003")
            .is_none()
    );
    drop(store);
    let mut store = Store::open(&path).unwrap();
    let r4 = apply(&mut store, "fin", batch("b4", vec![add("OTHERS", "four")]));
    assert_eq!(
        added(&r4),
        vec!["misc-00004"],
        "the counter survives revert and restart"
    );
}

#[test]
fn import_only_fields_are_refused_from_other_sources() {
    let mut store = store_with("fin", SECTIONS);
    let text = r#"{"id": "x", "source": "curator", "operations": [{"type": "ADD", "section": "OTHERS", "content": "c", "id": "misc-00500"}]}"#;
    let err = store
        .apply(
            "fin",
            &DeltaBatch::from_json(text).unwrap(),
            &ApplyOptions::default(),
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("field 'id' on ADD is only accepted from source 'import'"),
        "{err}"
    );
    let mut b = DeltaBatch::from_json(text).unwrap();
    b.source = Source::Import;
    apply(&mut store, "fin", b);
    let out = apply(
        &mut store,
        "fin",
        batch("next", vec![add("OTHERS", "after import")]),
    );
    assert_eq!(
        added(&out),
        vec!["misc-00501"],
        "the counter moves past explicit ids"
    );
}

#[test]
fn unknown_playbook_is_a_clear_error() {
    let mut store = store_with("fin", SECTIONS);
    let err = store
        .apply(
            "nope",
            &batch("b", vec![add("OTHERS", "x")]),
            &ApplyOptions::default(),
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "no playbook named 'nope' (playbooks: fin)");
}

fn merge(kept: &str, duplicate: Option<&str>, proposed: Option<&str>) -> DeltaOp {
    DeltaOp::Merge(ace::delta::MergeOp {
        bullet_id: kept.into(),
        duplicate: duplicate.map(str::to_string),
        proposed: proposed.map(str::to_string),
        content: None,
        similarity: Some(0.93),
    })
}

#[test]
fn merge_folds_a_duplicate_in_with_its_counters_and_reverts_exactly() {
    let mut store = finance_store();
    apply(
        &mut store,
        "fin",
        batch(
            "dup",
            vec![
                add(
                    "OTHERS",
                    "Current ratio is current assets over current liabilities.",
                ),
                tag("misc-00005", 2, 0),
            ],
        ),
    );
    let before = store.load_playbook("fin").unwrap();
    let out = apply(
        &mut store,
        "fin",
        batch("m", vec![merge("calc-00001", Some("misc-00005"), None)]),
    );
    let p = store.load_playbook("fin").unwrap();
    let kept = p.bullet("calc-00001").unwrap();
    assert_eq!(
        (kept.helpful, kept.harmful),
        (3 + 2, 1),
        "counters combined"
    );
    let gone = p.bullet("misc-00005").unwrap();
    assert!(!gone.is_active());
    assert_eq!(gone.metadata["merged_into"], "calc-00001");
    // a proposed lesson folded in: one helpful more, and new wording if given
    let mut with_text = merge(
        "calc-00002",
        None,
        Some("ROI is gain minus cost over cost."),
    );
    if let DeltaOp::Merge(m) = &mut with_text {
        m.content = Some("ROI = (gain - cost) / cost, as a percentage.".into());
    }
    apply(&mut store, "fin", batch("m2", vec![with_text]));
    let p = store.load_playbook("fin").unwrap();
    let roi = p.bullet("calc-00002").unwrap();
    assert_eq!(roi.helpful, 1);
    assert_eq!(roi.content, "ROI = (gain - cost) / cost, as a percentage.");
    // the merge's revert brings both bullets back as they were
    store.revert(out.revision() + 1, false, None).unwrap();
    store.revert(out.revision(), false, None).unwrap();
    let after = store.load_playbook("fin").unwrap();
    assert_eq!(view(&after), view(&before));
}

#[test]
fn a_merge_that_cannot_apply_is_refused_with_its_reason() {
    let mut store = finance_store();
    let refused = |store: &mut Store, op: DeltaOp| {
        store
            .apply("fin", &batch("x", vec![op]), &ApplyOptions::default())
            .unwrap_err()
            .to_string()
    };
    let e = refused(&mut store, merge("calc-00001", Some("calc-00001"), None));
    assert!(e.contains("MERGE folds a bullet into itself"), "{e}");
    let e = refused(&mut store, merge("calc-00001", None, None));
    assert!(e.contains("either an existing bullet"), "{e}");
    let e = refused(&mut store, merge("calc-00001", Some("zz-00009"), None));
    assert!(e.contains("bullet zz-00009 does not exist"), "{e}");
    apply(&mut store, "fin", batch("rm", vec![remove("misc-00004")]));
    let e = refused(&mut store, merge("calc-00001", Some("misc-00004"), None));
    assert!(e.contains("bullet misc-00004 is removed"), "{e}");
    let mut bad = merge("calc-00001", None, Some("x"));
    if let DeltaOp::Merge(m) = &mut bad {
        m.similarity = Some(1.5);
    }
    assert!(refused(&mut store, bad).contains("not between 0 and 1"));
    // a file may say it too
    let parsed = DeltaBatch::from_json(
        r#"{"id": "f", "operations": [{"type": "MERGE", "bullet_id": "calc-00001", "duplicate": "calc-00002", "similarity": 0.97}]}"#,
    )
    .unwrap();
    assert!(matches!(parsed.operations[0], DeltaOp::Merge(_)));
}
