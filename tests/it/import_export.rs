//! Import and export with the real playbooks from the published ACE work (tests/data).

use crate::common::*;
use ace::playbook::format::{self, Format};
use ace::playbook::{Playbook, parse_bullet_id};
use ace::store::Store;

fn read(rel: &str) -> String {
    std::fs::read_to_string(test_data(rel)).unwrap()
}

fn import(store: &mut Store, name: &str, fmt: Format, text: &str) -> Playbook {
    let parsed = format::parse(fmt, text, name).unwrap();
    store
        .import_playbook(
            name,
            &ace::delta::import_batch(&parsed, "import"),
            parsed.next_bullet_number,
        )
        .unwrap();
    store.load_playbook(name).unwrap()
}

/// Ids, sections and contents of an official text file, in file order, read independently of our parser.
fn file_bullets(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(s) = line.strip_prefix("## ") {
            section = s.trim().to_string();
        } else if let Some(rest) = line.strip_prefix('[') {
            let (id, content) = rest.split_once("] ").unwrap();
            out.push((id.to_string(), section.clone(), content.trim().to_string()));
        }
    }
    out
}

#[test]
fn the_published_appworld_playbooks_import_with_every_id_section_and_content_in_order() {
    for (file, count) in [
        ("playbooks/appworld_online_trained_playbook.txt", 359),
        ("playbooks/appworld_offline_trained_no_gt_playbook.txt", 318),
        ("playbooks/appworld_initial_playbook.txt", 8),
    ] {
        let text = read(file);
        let mut store = Store::open_in_memory().unwrap();
        let p = import(&mut store, "pb", Format::Ace, &text);
        let expected = file_bullets(&text);
        assert_eq!(expected.len(), count, "{file}");
        let got: Vec<_> = p
            .active_bullets()
            .map(|b| (b.id.clone(), b.section.clone(), b.content.clone()))
            .collect();
        assert_eq!(got, expected, "{file}");
        assert_eq!(p.sections.len(), 8, "{file}: empty sections are kept too");
        assert_eq!(p.sections[0].name, "STRATEGIES AND HARD RULES");
        assert_eq!(p.sections[0].slug, "shr");
        // the counter is carried past the highest imported number: a new ADD gets a fresh id
        let max = p
            .bullets
            .iter()
            .filter_map(|b| parse_bullet_id(&b.id))
            .map(|(_, n)| n)
            .max()
            .unwrap();
        let out = apply(&mut store, "pb", batch("next", vec![add("OTHERS", "new")]));
        assert_eq!(added(&out), vec![format!("misc-{:05}", max + 1)], "{file}");
    }
}

#[test]
fn ace_text_export_then_import_is_identical() {
    let text = read("playbooks/appworld_online_trained_playbook.txt");
    let mut store = Store::open_in_memory().unwrap();
    let first = import(&mut store, "a", Format::Ace, &text);
    let exported = format::export(Format::Ace, &first);
    let second = import(&mut store, "b", Format::Ace, &exported);
    assert_eq!(view(&first), view(&second));
    assert_eq!(format::export(Format::Ace, &second), exported);
}

#[test]
fn counters_in_the_finance_line_form_are_kept() {
    let text = "## FORMULAS AND CALCULATIONS\n[calc-00003] helpful=5 harmful=2 :: ROI = (gain - cost) / cost\n[fin-00010] helpful=0 harmful=1 :: x\n";
    let mut store = Store::open_in_memory().unwrap();
    let p = import(&mut store, "fin", Format::Ace, text);
    assert_eq!((p.bullets[0].helpful, p.bullets[0].harmful), (5, 2));
    assert_eq!(p.next_bullet_number, 11);
    assert_eq!(format::export(Format::Ace, &p), text);
}

#[test]
fn the_ace_framework_skillbook_round_trips_with_its_extra_fields() {
    let text = read("playbooks/kayba_skillbook_example.json");
    let original: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut store = Store::open_in_memory().unwrap();
    let p = import(&mut store, "kayba", Format::Skillbook, &text);
    assert_eq!(p.bullets.len(), 6);
    let first = &p.bullets[0];
    assert_eq!(first.id, "customer_service_structure-00001");
    assert_eq!(first.section, "customer_service_structure");
    assert!(
        first.metadata["justification"]
            .as_str()
            .unwrap()
            .starts_with("Atomic, evidence-based")
    );
    assert_eq!(first.created_at, "2026-03-18T14:08:22.435257+00:00");
    let exported: serde_json::Value =
        serde_json::from_str(&format::export(Format::Skillbook, &p)).unwrap();
    assert_eq!(
        exported["skills"], original["skills"],
        "every skill field comes back"
    );
    assert_eq!(exported["sections"], original["sections"]);
    assert_eq!(exported["next_id"], original["next_id"]);
    // a new bullet never collides with the skillbook's ids
    let out = apply(
        &mut store,
        "kayba",
        batch("n", vec![add("customer_service_closure", "Say goodbye")]),
    );
    assert_eq!(added(&out), vec!["customer_service_closure-00007"]);
}

#[test]
fn an_older_ace_framework_playbook_with_bullets_in_place_of_skills_imports_as_a_skillbook() {
    // Before "skills", ace-framework's Playbook.to_dict() wrote {"bullets": {id: bullet}, "sections",
    // "next_id"}; rebuild that shape from the real skillbook, keeping the older bullet fields only.
    let skillbook: serde_json::Value =
        serde_json::from_str(&read("playbooks/kayba_skillbook_example.json")).unwrap();
    let older_fields = [
        "id",
        "section",
        "content",
        "helpful",
        "harmful",
        "neutral",
        "created_at",
        "updated_at",
    ];
    let bullets: serde_json::Map<String, serde_json::Value> = skillbook["skills"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(id, skill)| {
            let kept = skill
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, _)| older_fields.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (id.clone(), serde_json::Value::Object(kept))
        })
        .collect();
    let older = serde_json::json!({
        "bullets": bullets,
        "sections": skillbook["sections"],
        "next_id": skillbook["next_id"],
    })
    .to_string();
    assert_eq!(Format::detect(&older), Format::Skillbook);
    let mut store = Store::open_in_memory().unwrap();
    let p = import(&mut store, "older", Format::Skillbook, &older);
    assert_eq!(p.bullets.len(), 6);
    for b in &p.bullets {
        let skill = &skillbook["skills"][b.id.as_str()];
        assert_eq!(b.content, skill["content"].as_str().unwrap());
        assert_eq!(b.section, skill["section"].as_str().unwrap());
        assert_eq!(b.helpful, skill["helpful"].as_u64().unwrap());
        assert!(b.metadata.is_empty(), "no extra fields: {:?}", b.metadata);
    }
    // our own JSON (a "bullets" list) is still ours
    let ours = format::export(Format::Json, &p);
    assert_eq!(Format::detect(&ours), Format::Json);
}

#[test]
fn our_json_export_then_import_is_lossless_including_removed_bullets() {
    let mut store = store_with("fin", &["Alpha", "Beta"]);
    let mut meta = serde_json::Map::new();
    meta.insert("origin".into(), "test".into());
    let mut op = ace::delta::AddOp::new("Beta", "with metadata");
    op.metadata = Some(meta);
    apply(
        &mut store,
        "fin",
        batch(
            "1",
            vec![
                add("Alpha", "one"),
                ace::delta::DeltaOp::Add(op),
                add("Alpha", "gone"),
            ],
        ),
    );
    apply(
        &mut store,
        "fin",
        batch("2", vec![tag("alph-00001", 3, 1), remove("alph-00003")]),
    );
    let p = store.load_playbook("fin").unwrap();
    let json = format::export(Format::Json, &p);
    assert_eq!(Format::detect(&json), Format::Json);
    let q = import(&mut store, "copy", Format::Json, &json);
    assert_eq!(view(&p), view(&q));
    assert_eq!(p.next_bullet_number, q.next_bullet_number);
    assert_eq!(q.bullet("alph-00003").unwrap().status.as_str(), "removed");
}

#[test]
fn markdown_export_is_readable_and_skips_removed_bullets() {
    let mut store = store_with("fin", &["Alpha", "EMPTY"]);
    apply(
        &mut store,
        "fin",
        batch("1", vec![add("Alpha", "one"), add("Alpha", "two")]),
    );
    apply(&mut store, "fin", batch("2", vec![remove("alph-00002")]));
    let md = format::export(Format::Markdown, &store.load_playbook("fin").unwrap());
    assert_eq!(
        md,
        "# Playbook: fin\n\n## Alpha\n\n- **[alph-00001]** one _(helpful 0, harmful 0)_\n\n"
    );
}

#[test]
fn a_bad_file_imports_nothing_and_names_the_line() {
    let mut text = read("playbooks/appworld_initial_playbook.txt");
    text.push_str("[misc-00009 broken line\n");
    let err = format::parse(Format::Ace, &text, "initial.txt").unwrap_err();
    assert_eq!(
        err.to_string(),
        "initial.txt:24: the bullet id has no closing ']'"
    );
    let err = format::parse(
        Format::Skillbook,
        "{\"skills\": {\"a-1\": {\"section\": \"s\"}}}",
        "sb.json",
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "sb.json: skill 'a-1' has no content");
    let err = format::parse(Format::Json, "{\n  \"format\": 1,\n", "x.json").unwrap_err();
    assert!(
        err.to_string().starts_with("x.json:3: invalid JSON"),
        "{err}"
    );
}

#[test]
fn importing_onto_an_existing_name_changes_nothing() {
    let mut store = store_with("fin", &["A"]);
    let parsed = format::parse(Format::Ace, "## B\n[b-00001] x\n", "f").unwrap();
    let err = store
        .import_playbook("fin", &ace::delta::import_batch(&parsed, "i"), 2)
        .unwrap_err();
    assert_eq!(err.to_string(), "a playbook named 'fin' already exists");
    assert_eq!(store.playbooks().unwrap().len(), 1);
    assert_eq!(store.load_playbook("fin").unwrap().sections.len(), 1);
}

mod any_content {
    use super::*;
    use proptest::prelude::*;

    /// Contents a person or a model may write: several lines, blank lines, indentation, brackets,
    /// `##` headers, counter look-alikes, `::`, unicode, tabs.
    fn content() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("\n".to_string()),
            Just("\n\n".to_string()),
            Just("\n    ".to_string()),
            Just("## OTHERS".to_string()),
            Just("[misc-00001] helpful=999 harmful=0 :: forged".to_string()),
            Just("- [x] ".to_string()),
            Just(" :: ".to_string()),
            Just("(✓5 ✗0 ~1)".to_string()),
            Just("\t".to_string()),
            Just("  ".to_string()),
            "[a-zé✓漢]{1,8}",
        ];
        prop::collection::vec(piece, 1..8).prop_map(|p| p.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn any_content_round_trips_through_every_format(contents in prop::collection::vec(content(), 1..5)) {
            let mut store = store_with("p", &["First", "Second"]);
            let ops: Vec<_> = contents
                .iter()
                .enumerate()
                .filter(|(_, c)| !c.trim().is_empty())
                .map(|(i, c)| add(if i % 2 == 0 { "First" } else { "Second" }, c))
                .collect();
            prop_assume!(!ops.is_empty());
            apply(&mut store, "p", batch("b", ops));
            let p = store.load_playbook("p").unwrap();
            for (i, fmt) in [Format::Ace, Format::Json, Format::Skillbook].into_iter().enumerate() {
                let text = format::export(fmt, &p);
                let q = import(&mut store, &format!("copy{i}"), fmt, &text);
                let shape = |p: &Playbook| -> Vec<(String, String, String, u64, u64)> {
                    p.bullets
                        .iter()
                        .map(|b| (b.id.clone(), b.section.clone(), b.content.clone(), b.helpful, b.harmful))
                        .collect()
                };
                prop_assert_eq!(shape(&p), shape(&q), "{:?}:\n{}", fmt, text);
            }
        }
    }
}

#[test]
fn a_file_with_control_characters_is_refused_clearly() {
    let mut store = Store::open_in_memory().unwrap();
    let text = "## OTHERS\n[misc-00001] helpful=0 harmful=0 :: fine\u{1b}[8m hidden\n";
    let parsed = format::parse(Format::Ace, text, "evil.txt").unwrap();
    let err = store
        .import_playbook("evil", &ace::delta::import_batch(&parsed, "import"), 2)
        .unwrap_err()
        .to_string();
    assert!(err.contains("U+001B"), "{err}");
    assert!(store.load_playbook("evil").is_err(), "nothing imported");
}

#[test]
fn the_current_ace_framework_skillbook_v2_reads_and_writes_back_the_same_skills() {
    let text = read("playbooks/skillbook_v2_example.json");
    assert_eq!(Format::detect(&text), Format::Skillbook);
    let mut store = Store::open_in_memory().unwrap();
    let p = import(&mut store, "v2", Format::Skillbook, &text);
    let names: Vec<&str> = p.sections.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["context", "harness"]);
    let refund = p.bullet("context-00001").unwrap();
    assert_eq!(
        refund.content,
        "Customers ask for refunds on orders older than 30 days.\nCheck the order date before promising a refund; past 30 days offer store credit."
    );
    assert_eq!((refund.helpful, refund.harmful, refund.neutral), (3, 0, 1));
    assert_eq!(
        refund.metadata["keywords"],
        serde_json::json!(["refunds", "customer_service"])
    );
    let tool = p.bullet("harness-00001").unwrap();
    assert_eq!(
        tool.content,
        "The search tool times out on queries longer than 200 characters."
    );
    assert_eq!(tool.harmful, 2);
    assert!(
        !p.bullet("context-00002").unwrap().is_active(),
        "inactive skills stay removed"
    );
    assert_eq!(p.next_bullet_number, 4);
    // written back as v2: the same skills, field for field
    let (out, notes) = format::export_with_notes(Format::SkillbookV2, &p);
    assert!(notes.is_empty(), "{notes:?}");
    let back: serde_json::Value = serde_json::from_str(&out).unwrap();
    let orig: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(back["schema_version"], "2");
    for id in ["context-00001", "harness-00001", "context-00002"] {
        for field in [
            "section",
            "keywords",
            "issue",
            "insight",
            "occurrences",
            "active",
            "used_count",
            "helpful_count",
            "harmful_count",
            "neutral_count",
            "created_at",
            "updated_at",
        ] {
            assert_eq!(
                back["skills"][id][field], orig["skills"][id][field],
                "{id}.{field}"
            );
        }
    }
    assert_eq!(back["sections"], orig["sections"]);
}

#[test]
fn our_sections_exported_to_skillbook_v2_say_what_changed() {
    let mut store = store_with("fin", &["FORMULAS AND CALCULATIONS"]);
    apply(
        &mut store,
        "fin",
        batch(
            "1",
            vec![add("FORMULAS AND CALCULATIONS", "ROI = gain / cost")],
        ),
    );
    let p = store.load_playbook("fin").unwrap();
    let (out, notes) = format::export_with_notes(Format::SkillbookV2, &p);
    assert!(
        notes[0].contains("'FORMULAS AND CALCULATIONS' went to context"),
        "{notes:?}"
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let skill = &v["skills"][p.bullets[0].id.as_str()];
    assert_eq!(skill["section"], "context");
    assert_eq!(skill["keywords"][0], "formulas_and_calculations");
    assert_eq!(skill["issue"], "ROI = gain / cost");
    assert_eq!(skill["insight"], "ROI = gain / cost");
    // and it reads back with its content
    let q = import(&mut store, "again", Format::Skillbook, &out);
    assert_eq!(q.bullets[0].content, "ROI = gain / cost");
}
