//! The delta rules live in the core and run the same everywhere: for random playbooks and random
//! batches, valid and not, applying in memory and applying through the store give the same
//! playbook, the same refusal (op index and reason) and the same change list (each change with the
//! op that caused it).

use ace::delta::{
    AddOp, ApplyOptions, ApplyOutcome, Change, DeltaBatch, DeltaOp, MergeOp, SectionPolicy, Source,
    TagOp, UpdateOp, apply_in_memory,
};
use ace::playbook::{Playbook, format_bullet_id};
use ace::store::{Store, StoreError};
use proptest::prelude::*;

/// An op in the abstract: which bullet or section it names is picked from the playbook as it is
/// when the batch is built, from pools that hold live, removed and unknown names alike.
#[derive(Debug, Clone)]
enum Raw {
    Add {
        section: usize,
        content: String,
        id: Option<usize>,
    },
    Update {
        bullet: usize,
        content: Option<String>,
        section: Option<usize>,
        meta: Option<Option<String>>,
    },
    Tag {
        bullet: usize,
        helpful: u64,
        harmful: u64,
    },
    Remove {
        bullet: usize,
    },
    AddSection {
        section: usize,
    },
    Rename {
        section: usize,
        to: usize,
    },
    Move {
        section: usize,
        to: usize,
    },
    RemoveSection {
        section: usize,
    },
    Merge {
        kept: usize,
        duplicate: Option<usize>,
        content: Option<String>,
    },
}

fn content() -> impl Strategy<Value = String> {
    prop_oneof![
        20 => "[A-Za-z0-9][A-Za-z0-9 ,.=%()/-]{0,30}",
        1 => Just("   ".to_string()),
        2 => Just("line one\nline two".to_string()),
    ]
}

fn raw() -> impl Strategy<Value = Raw> {
    prop_oneof![
        4 => (0..12usize, content(), proptest::option::weighted(0.2, 0..12usize))
            .prop_map(|(section, content, id)| Raw::Add { section, content, id }),
        3 => (0..40usize, proptest::option::of(content()), proptest::option::of(0..12usize),
              proptest::option::weighted(0.3, proptest::option::of("[a-z]{1,5}")))
            .prop_map(|(bullet, content, section, meta)| Raw::Update { bullet, content, section, meta }),
        3 => (0..40usize, 0..3u64, 0..3u64).prop_map(|(bullet, helpful, harmful)| Raw::Tag { bullet, helpful: helpful + u64::from(helpful + harmful == 0), harmful }),
        2 => (0..40usize).prop_map(|bullet| Raw::Remove { bullet }),
        1 => (0..12usize).prop_map(|section| Raw::AddSection { section }),
        1 => (0..12usize, 0..12usize).prop_map(|(section, to)| Raw::Rename { section, to }),
        1 => (0..12usize, 0..8usize).prop_map(|(section, to)| Raw::Move { section, to }),
        1 => (0..12usize).prop_map(|section| Raw::RemoveSection { section }),
        2 => (0..40usize, proptest::option::weighted(0.7, 0..40usize), proptest::option::weighted(0.3, content()))
            .prop_map(|(kept, duplicate, content)| Raw::Merge { kept, duplicate, content }),
    ]
}

/// Section names a batch may use: every section the playbook has (active and removed), variants
/// that match one only by case and punctuation, and new names.
fn section_pool(p: &Playbook) -> Vec<String> {
    let mut pool: Vec<String> = p
        .sections
        .iter()
        .chain(&p.removed_sections)
        .map(|s| s.name.clone())
        .collect();
    if let Some(first) = p.sections.first() {
        pool.push(first.name.to_lowercase().replace(' ', "_"));
    }
    pool.extend(
        ["Dates", "Units and Scales", "OTHERS", "dates!"]
            .iter()
            .map(|s| s.to_string()),
    );
    pool
}

/// Bullet ids a batch may use: every bullet (active ones four times as likely as removed ones)
/// and a few that never existed.
fn bullet_pool(p: &Playbook) -> Vec<String> {
    let mut pool: Vec<String> = Vec::new();
    for b in &p.bullets {
        let weight = if b.is_active() { 4 } else { 1 };
        pool.extend(std::iter::repeat_n(b.id.clone(), weight));
    }
    pool.extend(["zz-00001", "nope-00042"].map(String::from));
    pool
}

fn pick<T: Clone>(pool: &[T], i: usize) -> T {
    pool[i % pool.len()].clone()
}

fn concrete(p: &Playbook, raws: &[Raw], import: bool) -> Vec<DeltaOp> {
    let (sections, bullets) = (section_pool(p), bullet_pool(p));
    raws.iter()
        .map(|r| match r {
            Raw::Add {
                section,
                content,
                id,
            } => {
                let mut add = AddOp::new(pick(&sections, *section), content.clone());
                if import && let Some(i) = id {
                    // an id from the pool (taken) or a fresh one past the counter
                    add.id = Some(if i % 2 == 0 {
                        pick(&bullets, *i)
                    } else {
                        format_bullet_id("imp", 500 + *i as u64)
                    });
                    add.helpful = Some(*i as u64);
                }
                DeltaOp::Add(add)
            }
            Raw::Update {
                bullet,
                content,
                section,
                meta,
            } => DeltaOp::Update(UpdateOp {
                bullet_id: pick(&bullets, *bullet),
                // mostly an update that changes something; sometimes one that changes nothing
                content: content.clone().or_else(|| {
                    (section.is_none() && meta.is_none() && bullet % 5 != 0)
                        .then(|| "Rewritten".into())
                }),
                section: section.map(|s| pick(&sections, s)),
                metadata: meta.as_ref().map(|m| {
                    let mut map = serde_json::Map::new();
                    map.insert(
                        "note".into(),
                        m.clone().map_or(serde_json::Value::Null, Into::into),
                    );
                    map
                }),
            }),
            Raw::Tag {
                bullet,
                helpful,
                harmful,
            } => DeltaOp::Tag(TagOp {
                bullet_id: pick(&bullets, *bullet),
                helpful: *helpful,
                harmful: *harmful,
                neutral: 0,
            }),
            Raw::Remove { bullet } => DeltaOp::Remove {
                bullet_id: pick(&bullets, *bullet),
            },
            Raw::AddSection { section } => DeltaOp::AddSection {
                section: pick(&sections, *section),
                slug: None,
            },
            Raw::Rename { section, to } => DeltaOp::RenameSection {
                section: pick(&sections, *section),
                new_name: pick(&sections, *to),
            },
            Raw::Move { section, to } => DeltaOp::MoveSection {
                section: pick(&sections, *section),
                index: *to,
            },
            Raw::RemoveSection { section } => DeltaOp::RemoveSection {
                section: pick(&sections, *section),
            },
            Raw::Merge {
                kept,
                duplicate,
                content,
            } => DeltaOp::Merge(MergeOp {
                bullet_id: pick(&bullets, *kept),
                duplicate: duplicate.map(|d| pick(&bullets, d)),
                proposed: duplicate
                    .is_none()
                    .then(|| "A lesson said again in other words".to_string()),
                content: content.clone(),
                similarity: Some(0.9),
            }),
        })
        .collect()
}

/// A store holding playbook `pb`: three sections and a few bullets, one removed, and a removed
/// section (so removed names are in play from the start).
fn seeded() -> Store {
    let mut store = Store::open_in_memory().unwrap();
    store
        .create_playbook("pb", &["FORMULAS AND CALCULATIONS", "OTHERS", "Old Notes"])
        .unwrap();
    let ops = vec![
        DeltaOp::Add(AddOp::new("FORMULAS AND CALCULATIONS", "ROI = gain / cost")),
        DeltaOp::Add(AddOp::new("FORMULAS AND CALCULATIONS", "Round at the end")),
        DeltaOp::Add(AddOp::new("OTHERS", "Answer in the unit asked for")),
        DeltaOp::Add(AddOp::new("Old Notes", "An old note")),
        DeltaOp::Remove {
            bullet_id: "misc-00003".into(),
        },
        DeltaOp::RemoveSection {
            section: "Old Notes".into(),
        },
    ];
    store
        .apply(
            "pb",
            &DeltaBatch::new("seed", Source::Human, ops),
            &ApplyOptions::default(),
        )
        .unwrap();
    store
}

/// A revision's changes, each with the index of the op that caused it (as recorded).
fn changes_of(store: &Store, revision: i64) -> Vec<(Option<usize>, Change)> {
    let mut stmt = store
        .connection()
        .prepare("SELECT op_index FROM revision_ops WHERE revision_id = ?1 ORDER BY idx")
        .unwrap();
    let ops: Vec<Option<usize>> = stmt
        .query_map([revision], |r| r.get::<_, Option<i64>>(0))
        .unwrap()
        .map(|i| i.unwrap().map(|i| i as usize))
        .collect();
    let changes = store.revision(revision).unwrap().changes;
    ops.into_iter().zip(changes).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn memory_and_store_apply_the_same_rules(
        batches in proptest::collection::vec(
            (proptest::collection::vec(raw(), 1..5), any::<bool>(), 0..4u8),
            1..8,
        ),
    ) {
        let mut store = seeded();
        // a copy kept current by replaying the recorded changes, as the loop keeps its playbook
        let mut replayed = store.load_playbook("pb").unwrap();
        for (n, (raws, create, kind)) in batches.iter().enumerate() {
            let before = store.load_playbook("pb").unwrap();
            let import = *kind == 0;
            let source = if import { Source::Import } else { Source::Curator };
            let batch = DeltaBatch::new(format!("b{n}"), source, concrete(&before, raws, import));
            let options = ApplyOptions {
                sections: if *create { SectionPolicy::Create } else { SectionPolicy::Reject },
            };
            let mut memory = before.clone();
            match store.apply("pb", &batch, &options) {
                Ok(ApplyOutcome::Applied { revision, added, summary }) => {
                    let now = store.revision(revision).unwrap().revision.created_at;
                    let outcome = apply_in_memory(&mut memory, &batch, &options, &now)
                        .unwrap_or_else(|e| panic!("the store applied {batch:?} but memory refused: {e}"));
                    prop_assert_eq!(outcome.changes, changes_of(&store, revision));
                    prop_assert_eq!(outcome.added, added);
                    prop_assert_eq!(outcome.summary, summary);
                }
                Ok(ApplyOutcome::AlreadyApplied { .. }) => unreachable!("batch ids are unique"),
                Err(StoreError::Rejected { error, .. }) => {
                    let refused = apply_in_memory(&mut memory, &batch, &options, "2026-01-01T00:00:00.000Z");
                    prop_assert_eq!(refused, Err(error));
                    prop_assert_eq!(&memory, &before, "a refused batch changes nothing in memory");
                }
                Err(other) => panic!("the store failed: {other}"),
            }
            let stored = store.load_playbook("pb").unwrap();
            if let Some(since) = replayed.revision {
                store
                    .changes_since("pb", since, usize::MAX)
                    .unwrap()
                    .expect("changes since a known revision")
                    .apply_to(&mut replayed);
                prop_assert_eq!(&replayed, &stored, "replayed changes rebuild the playbook");
            }
            memory.revision = stored.revision; // in memory a playbook is as of no stored revision
            prop_assert_eq!(&memory, &stored);
        }
    }
}

#[test]
fn a_refused_op_in_memory_names_the_op_and_leaves_the_playbook_as_it_was() {
    let store = seeded();
    let mut p = store.load_playbook("pb").unwrap();
    let before = p.clone();
    let batch = DeltaBatch::new(
        "b",
        Source::Human,
        vec![
            DeltaOp::Add(AddOp::new("OTHERS", "kept only if all goes well")),
            DeltaOp::RenameSection {
                section: "OTHERS".into(),
                new_name: "Misc".into(),
            },
            DeltaOp::Tag(TagOp {
                bullet_id: "misc-00003".into(),
                helpful: 1,
                harmful: 0,
                neutral: 0,
            }),
        ],
    );
    let err = apply_in_memory(&mut p, &batch, &ApplyOptions::default(), "now").unwrap_err();
    assert_eq!(
        err.to_string(),
        "operations[2] (TAG misc-00003 helpful+1 harmful+0 neutral+0): bullet misc-00003 is removed"
    );
    assert_eq!(p, before);
}

#[test]
fn a_playbook_read_from_a_file_takes_ops_in_memory() {
    let text =
        "## FORMULAS AND CALCULATIONS\n[calc-00007] helpful=2 harmful=0 :: ROI = gain / cost\n";
    let mut p =
        ace::playbook::format::parse(ace::playbook::format::Format::Ace, text, "f.txt").unwrap();
    let batch = DeltaBatch::new(
        "b",
        Source::Curator,
        vec![DeltaOp::Add(AddOp::new(
            "formulas and calculations",
            "Margin = profit / revenue",
        ))],
    );
    let out = apply_in_memory(&mut p, &batch, &ApplyOptions::default(), "now").unwrap();
    assert_eq!(out.added, vec!["calc-00008".to_string()]);
    let added = p.bullet("calc-00008").unwrap();
    assert_eq!(added.section, "FORMULAS AND CALCULATIONS");
    assert!(added.position > p.bullet("calc-00007").unwrap().position);
}
