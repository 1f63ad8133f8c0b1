//! Revisions: listing, diffs, revert (and its conflicts), and the playbook as of a revision.

use crate::common::*;
use ace::delta::Change;
use ace::store::StoreError;

const SECTIONS: &[&str] = &["FORMULAS AND CALCULATIONS", "OTHERS"];

#[test]
fn each_batch_is_a_revision_with_parent_and_before_after_states() {
    let mut store = store_with("fin", SECTIONS);
    let r1 = apply(
        &mut store,
        "fin",
        batch("b1", vec![add("OTHERS", "one")]).with_reason("seed"),
    );
    let r2 = apply(
        &mut store,
        "fin",
        batch(
            "b2",
            vec![tag("misc-00001", 1, 0), update_content("misc-00001", "uno")],
        ),
    );
    let list = store.revisions(Some("fin"), 10).unwrap();
    assert_eq!(
        list.iter().map(|r| r.id).collect::<Vec<_>>(),
        [r2.revision(), r1.revision(), 1]
    );
    assert_eq!(list[0].parent, Some(r1.revision()));
    assert_eq!(list[1].reason.as_deref(), Some("seed"));
    assert_eq!(list[0].summary.to_string(), "+0 ~1 -0 tag×1");
    let detail = store.revision(r2.revision()).unwrap();
    assert_eq!(detail.changes.len(), 2);
    let Change::Bullet {
        before: Some(b),
        after: Some(a),
        ..
    } = &detail.changes[0]
    else {
        panic!()
    };
    assert_eq!((b.helpful, a.helpful), (0, 1));
    let Change::Bullet {
        before: Some(b),
        after: Some(a),
        ..
    } = &detail.changes[1]
    else {
        panic!()
    };
    assert_eq!((b.content.as_str(), a.content.as_str()), ("one", "uno"));
}

#[test]
fn revert_restores_exactly_and_is_itself_revertible() {
    let mut store = store_with("fin", SECTIONS);
    apply(
        &mut store,
        "fin",
        batch(
            "b1",
            vec![
                add("OTHERS", "one"),
                add("OTHERS", "two"),
                add("FORMULAS AND CALCULATIONS", "f"),
            ],
        ),
    );
    let before = view(&store.load_playbook("fin").unwrap());
    let ops = vec![
        add("OTHERS", "three"),
        tag("misc-00001", 3, 1),
        update_content("misc-00002", "two!"),
        move_to_section("calc-00003", "OTHERS"),
        remove("misc-00001"),
    ];
    let r = apply(&mut store, "fin", batch("b2", ops));
    let after = view(&store.load_playbook("fin").unwrap());
    let undo = store.revert(r.revision(), false, Some("tester")).unwrap();
    assert_eq!(view(&store.load_playbook("fin").unwrap()), before);
    let rev = store.revision(undo.revision()).unwrap().revision;
    assert_eq!(
        (rev.source.as_str(), rev.reverts, rev.author.as_deref()),
        ("revert", Some(r.revision()), Some("tester"))
    );
    store.revert(undo.revision(), false, None).unwrap();
    assert_eq!(
        view(&store.load_playbook("fin").unwrap()),
        after,
        "reverting the revert re-applies the change"
    );
}

#[test]
fn revert_refuses_when_a_later_revision_changed_the_same_bullet() {
    let mut store = store_with("fin", SECTIONS);
    apply(&mut store, "fin", batch("b1", vec![add("OTHERS", "one")]));
    let r2 = apply(
        &mut store,
        "fin",
        batch("b2", vec![update_content("misc-00001", "v2")]),
    );
    let r3 = apply(
        &mut store,
        "fin",
        batch("b3", vec![tag("misc-00001", 5, 0)]),
    );
    let before = view(&store.load_playbook("fin").unwrap());
    let err = store.revert(r2.revision(), false, None).unwrap_err();
    assert!(matches!(err, StoreError::RevertConflict { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "cannot revert revision {}: bullet misc-00001 was changed later by revision {} (human); use --force to revert anyway",
            r2.revision(),
            r3.revision()
        )
    );
    assert_eq!(
        view(&store.load_playbook("fin").unwrap()),
        before,
        "a refused revert changes nothing"
    );
    // forced: content goes back, the later TAG's increments stay
    store.revert(r2.revision(), true, None).unwrap();
    let b = store
        .load_playbook("fin")
        .unwrap()
        .bullet("misc-00001")
        .unwrap()
        .clone();
    assert_eq!((b.content.as_str(), b.helpful), ("one", 5));
}

#[test]
fn reverting_twice_says_it_was_already_reverted() {
    let mut store = store_with("fin", SECTIONS);
    let r = apply(&mut store, "fin", batch("b1", vec![add("OTHERS", "one")]));
    let undo = store.revert(r.revision(), false, None).unwrap();
    let err = store
        .revert(r.revision(), false, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("already reverted by revision {}", undo.revision())),
        "{err}"
    );
}

#[test]
fn forced_tag_revert_subtracts_only_its_own_increments() {
    let mut store = store_with("fin", SECTIONS);
    apply(&mut store, "fin", batch("b1", vec![add("OTHERS", "one")]));
    let r2 = apply(
        &mut store,
        "fin",
        batch("b2", vec![tag("misc-00001", 2, 1)]),
    );
    apply(
        &mut store,
        "fin",
        batch("b3", vec![tag("misc-00001", 10, 0)]),
    );
    store.revert(r2.revision(), true, None).unwrap();
    let b = store
        .load_playbook("fin")
        .unwrap()
        .bullet("misc-00001")
        .unwrap()
        .clone();
    assert_eq!((b.helpful, b.harmful), (10, 0));
}

#[test]
fn a_section_created_by_a_revision_goes_away_with_its_revert() {
    let mut store = store_with("fin", SECTIONS);
    let options = ace::delta::ApplyOptions::create_sections();
    let before = view(&store.load_playbook("fin").unwrap());
    let r = store
        .apply(
            "fin",
            &batch("b1", vec![add("Dates", "ISO 8601")]),
            &options,
        )
        .unwrap();
    store.revert(r.revision(), false, None).unwrap();
    assert_eq!(view(&store.load_playbook("fin").unwrap()), before);
}

#[test]
fn playbook_at_shows_each_past_state() {
    let mut store = store_with("fin", SECTIONS);
    let r1 = apply(
        &mut store,
        "fin",
        batch("b1", vec![add("OTHERS", "one"), add("OTHERS", "two")]),
    );
    let v1 = view(&store.load_playbook("fin").unwrap());
    let r2 = apply(
        &mut store,
        "fin",
        batch(
            "b2",
            vec![
                update_content("misc-00001", "uno"),
                remove("misc-00002"),
                tag("misc-00001", 1, 0),
            ],
        ),
    );
    let v2 = view(&store.load_playbook("fin").unwrap());
    let r3 = store.revert(r1.revision(), true, None).unwrap();
    let v3 = view(&store.load_playbook("fin").unwrap());
    assert_eq!(view(&store.playbook_at(r1.revision()).unwrap()), v1);
    assert_eq!(view(&store.playbook_at(r2.revision()).unwrap()), v2);
    assert_eq!(view(&store.playbook_at(r3.revision()).unwrap()), v3);
    // another playbook's revisions do not leak in
    store.create_playbook("other", &["X"]).unwrap();
    apply(&mut store, "other", batch("o1", vec![add("X", "x")]));
    assert_eq!(view(&store.playbook_at(r2.revision()).unwrap()), v2);
    assert!(matches!(
        store.playbook_at(9999),
        Err(StoreError::UnknownRevision(9999))
    ));
}
