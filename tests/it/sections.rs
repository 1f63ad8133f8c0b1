//! Sections changed by hand: rename, move and remove, each a revertible revision that time travel
//! (`playbook_at`) replays exactly.

use crate::common::*;
use ace::delta::DeltaOp;

fn rename(section: &str, new_name: &str) -> DeltaOp {
    DeltaOp::RenameSection {
        section: section.into(),
        new_name: new_name.into(),
    }
}

fn move_to(section: &str, index: usize) -> DeltaOp {
    DeltaOp::MoveSection {
        section: section.into(),
        index,
    }
}

fn remove_section(section: &str) -> DeltaOp {
    DeltaOp::RemoveSection {
        section: section.into(),
    }
}

fn names(store: &ace::store::Store) -> Vec<String> {
    store
        .load_playbook("fin")
        .unwrap()
        .sections
        .iter()
        .map(|s| s.name.clone())
        .collect()
}

#[test]
fn a_renamed_section_keeps_its_bullets_ids_and_slug_and_the_revert_restores_it() {
    let mut store = finance_store();
    let before = view(&store.load_playbook("fin").unwrap());
    let r = apply(
        &mut store,
        "fin",
        batch("r", vec![rename("FORMULAS AND CALCULATIONS", "Formulas")]),
    );
    let p = store.load_playbook("fin").unwrap();
    assert_eq!(p.sections[0].name, "Formulas");
    assert_eq!(
        p.sections[0].slug, "calc",
        "the slug stays, so new ids match the old ones"
    );
    let moved: Vec<&str> = p
        .section_bullets("Formulas")
        .map(|b| b.id.as_str())
        .collect();
    assert_eq!(moved, ["calc-00001", "calc-00002"]);
    let out = apply(
        &mut store,
        "fin",
        batch("a", vec![add("Formulas", "EBITDA margin")]),
    );
    assert_eq!(added(&out), ["calc-00005"]);

    // the diff names the rename; time travel shows the old name before it and the new one after
    let detail = store.revision(r.revision()).unwrap();
    assert_eq!(
        detail.changes[0].section_line().unwrap(),
        (
            '~',
            "section 'FORMULAS AND CALCULATIONS' renamed to 'Formulas'".to_string()
        )
    );
    assert_eq!(view(&store.playbook_at(r.revision() - 1).unwrap()), before);
    assert_eq!(
        store
            .playbook_at(r.revision())
            .unwrap()
            .bullet("calc-00001")
            .unwrap()
            .section,
        "Formulas"
    );

    // reverting the ADD, then the rename, gives back the playbook exactly
    store.revert(out.revision(), false, None).unwrap();
    store.revert(r.revision(), false, None).unwrap();
    assert_eq!(view(&store.load_playbook("fin").unwrap()), before);
}

#[test]
fn reverting_an_older_change_after_a_rename_keeps_the_new_name() {
    let mut store = finance_store();
    let tagged = apply(&mut store, "fin", batch("t", vec![tag("calc-00001", 2, 0)]));
    apply(
        &mut store,
        "fin",
        batch("r", vec![rename("FORMULAS AND CALCULATIONS", "Formulas")]),
    );
    store.revert(tagged.revision(), false, None).unwrap();
    let p = store.load_playbook("fin").unwrap();
    let b = p.bullet("calc-00001").unwrap();
    assert_eq!((b.section.as_str(), b.helpful), ("Formulas", 3));
    assert_eq!(
        names(&store),
        ["Formulas", "COMMON MISTAKES TO AVOID", "OTHERS"],
        "no section of the old name comes back"
    );
}

#[test]
fn reverting_a_bullet_move_follows_the_renames_of_the_section_it_came_from() {
    let mut store = finance_store();
    let moved = apply(
        &mut store,
        "fin",
        batch("m", vec![move_to_section("calc-00001", "OTHERS")]),
    );
    apply(
        &mut store,
        "fin",
        batch("r1", vec![rename("FORMULAS AND CALCULATIONS", "Formulas")]),
    );
    apply(
        &mut store,
        "fin",
        batch("r2", vec![rename("Formulas", "Maths")]),
    );
    store.revert(moved.revision(), false, None).unwrap();
    let p = store.load_playbook("fin").unwrap();
    assert_eq!(p.bullet("calc-00001").unwrap().section, "Maths");
    assert_eq!(
        names(&store),
        ["Maths", "COMMON MISTAKES TO AVOID", "OTHERS"],
        "the bullet goes back to its section under today's name; no old name comes back"
    );
}

#[test]
fn a_moved_section_changes_place_and_the_revert_puts_it_back() {
    let mut store = finance_store();
    let before = view(&store.load_playbook("fin").unwrap());
    let r = apply(&mut store, "fin", batch("m", vec![move_to("OTHERS", 0)]));
    assert_eq!(
        names(&store),
        [
            "OTHERS",
            "FORMULAS AND CALCULATIONS",
            "COMMON MISTAKES TO AVOID"
        ]
    );
    // bullets follow their section's place
    let p = store.load_playbook("fin").unwrap();
    assert_eq!(p.active_bullets().next().unwrap().id, "misc-00004");
    assert_eq!(view(&store.playbook_at(r.revision()).unwrap()), view(&p));
    apply(
        &mut store,
        "fin",
        batch("m2", vec![move_to("FORMULAS AND CALCULATIONS", 2)]),
    );
    assert_eq!(
        names(&store),
        [
            "OTHERS",
            "COMMON MISTAKES TO AVOID",
            "FORMULAS AND CALCULATIONS"
        ]
    );
    // the first move cannot be reverted cleanly once a later one moved the same sections
    let err = store
        .revert(r.revision(), false, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("was moved later"), "{err}");
    let last = store.revisions(Some("fin"), 1).unwrap()[0].id;
    store.revert(last, false, None).unwrap();
    store.revert(r.revision(), false, None).unwrap();
    assert_eq!(view(&store.load_playbook("fin").unwrap()), before);
}

#[test]
fn moves_to_the_same_place_or_past_the_end_are_rejected() {
    let mut store = finance_store();
    let err = rejected(&mut store, vec![move_to("OTHERS", 2)]);
    assert!(err.contains("already at place 2"), "{err}");
    let err = rejected(&mut store, vec![move_to("OTHERS", 3)]);
    assert!(
        err.contains("place 3 is past the last section (places 0 to 2)"),
        "{err}"
    );
    let err = rejected(&mut store, vec![move_to("Nope", 0)]);
    assert!(err.contains("section 'Nope' does not exist"), "{err}");
}

#[test]
fn a_removed_section_hides_with_its_bullets_and_comes_back_with_the_revert() {
    let mut store = finance_store();
    let before = view(&store.load_playbook("fin").unwrap());
    let r = apply(
        &mut store,
        "fin",
        batch("x", vec![remove_section("FORMULAS AND CALCULATIONS")]),
    );
    let p = store.load_playbook("fin").unwrap();
    assert_eq!(names(&store), ["COMMON MISTAKES TO AVOID", "OTHERS"]);
    let gone = p.bullet("calc-00001").unwrap();
    assert!(!gone.is_active(), "its bullets are removed too");
    assert_eq!(
        gone.content,
        "Current ratio = current assets / current liabilities."
    );
    assert_eq!(
        store.revisions(Some("fin"), 1).unwrap()[0]
            .summary
            .to_string(),
        "+0 ~0 -2 tag×0 §1"
    );
    // a removed section takes no new bullets unless sections may be created, which brings it back
    let err = rejected(&mut store, vec![add("FORMULAS AND CALCULATIONS", "x")]);
    assert!(err.contains("does not exist"), "{err}");
    assert_eq!(view(&store.playbook_at(r.revision()).unwrap()), view(&p));

    store.revert(r.revision(), false, None).unwrap();
    assert_eq!(view(&store.load_playbook("fin").unwrap()), before);
}

#[test]
fn adding_a_removed_section_again_brings_it_back_empty_and_revertibly() {
    let mut store = finance_store();
    apply(
        &mut store,
        "fin",
        batch("x", vec![remove_section("OTHERS")]),
    );
    let without = view(&store.load_playbook("fin").unwrap());
    let back = apply(
        &mut store,
        "fin",
        batch(
            "back",
            vec![DeltaOp::AddSection {
                section: "OTHERS".into(),
                slug: None,
            }],
        ),
    );
    let p = store.load_playbook("fin").unwrap();
    assert_eq!(p.sections.last().unwrap().name, "OTHERS");
    assert_eq!(
        p.section_bullets("OTHERS").count(),
        0,
        "its old bullets stay removed"
    );
    assert_eq!(
        store.revision(back.revision()).unwrap().changes[0]
            .section_line()
            .unwrap()
            .1,
        "section 'OTHERS' brought back"
    );
    store.revert(back.revision(), false, None).unwrap();
    assert_eq!(view(&store.load_playbook("fin").unwrap()), without);
}

#[test]
fn renames_onto_names_in_use_are_rejected() {
    let mut store = finance_store();
    let err = rejected(
        &mut store,
        vec![rename("OTHERS", "common mistakes to avoid")],
    );
    assert!(
        err.contains("section 'COMMON MISTAKES TO AVOID' already exists"),
        "{err}"
    );
    apply(
        &mut store,
        "fin",
        batch("x", vec![remove_section("OTHERS")]),
    );
    let err = rejected(
        &mut store,
        vec![rename("COMMON MISTAKES TO AVOID", "OTHERS")],
    );
    assert!(
        err.contains("a removed section is called 'OTHERS'"),
        "{err}"
    );
    // a change of case only is a rename of the section onto itself, which is allowed
    apply(
        &mut store,
        "fin",
        batch(
            "case",
            vec![rename(
                "COMMON MISTAKES TO AVOID",
                "Common mistakes to avoid",
            )],
        ),
    );
    assert_eq!(
        names(&store),
        ["FORMULAS AND CALCULATIONS", "Common mistakes to avoid"]
    );
}

#[test]
fn a_rename_cannot_be_reverted_cleanly_once_the_section_was_removed() {
    let mut store = finance_store();
    let r = apply(
        &mut store,
        "fin",
        batch("r", vec![rename("OTHERS", "Misc")]),
    );
    apply(&mut store, "fin", batch("x", vec![remove_section("Misc")]));
    let err = store
        .revert(r.revision(), false, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("section 'Misc' was removed later"), "{err}");
}

#[test]
fn section_ops_from_json_use_the_documented_names() {
    let b = ace::delta::DeltaBatch::from_json(
        r#"{"id": "s", "source": "human", "operations": [
            {"type": "RENAME_SECTION", "section": "OTHERS", "new_name": "Misc"},
            {"type": "MOVE_SECTION", "section": "Misc", "index": 0},
            {"type": "REMOVE_SECTION", "section": "COMMON MISTAKES TO AVOID"}]}"#,
    )
    .unwrap();
    let mut store = finance_store();
    apply(&mut store, "fin", b);
    assert_eq!(names(&store), ["Misc", "FORMULAS AND CALCULATIONS"]);
}

#[test]
fn a_move_by_one_place_changes_only_the_two_sections_that_swap() {
    let mut store = finance_store();
    let r = apply(&mut store, "fin", batch("m", vec![move_to("OTHERS", 1)]));
    assert_eq!(
        names(&store),
        [
            "FORMULAS AND CALCULATIONS",
            "OTHERS",
            "COMMON MISTAKES TO AVOID"
        ]
    );
    let lines: Vec<String> = store
        .revision(r.revision())
        .unwrap()
        .changes
        .iter()
        .filter_map(|c| c.section_line().map(|l| l.1))
        .collect();
    assert_eq!(
        lines,
        [
            "section 'OTHERS' moved",
            "section 'COMMON MISTAKES TO AVOID' moved"
        ]
    );
}
