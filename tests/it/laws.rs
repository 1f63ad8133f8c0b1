//! The store's laws as property tests: revert undoes exactly, batches are idempotent, export then
//! import is the identity.

use crate::common::*;
use ace::delta::ApplyOptions;
use ace::delta::{AddOp, DeltaBatch, DeltaOp, Source, TagOp, UpdateOp};
use ace::playbook::format::{self, Format};
use ace::playbook::normalize_section_key;
use ace::store::Store;
use proptest::prelude::*;

const SECTIONS: &[&str] = &[
    "FORMULAS AND CALCULATIONS",
    "COMMON MISTAKES TO AVOID",
    "OTHERS",
];

#[derive(Debug, Clone)]
enum Op {
    Add {
        section: usize,
        content: String,
        meta: Option<String>,
    },
    NewSection {
        name: String,
        content: String,
    },
    Update {
        bullet: usize,
        content: Option<String>,
        section: Option<usize>,
        meta: Option<String>,
    },
    Tag {
        bullet: usize,
        helpful: u64,
        harmful: u64,
        neutral: u64,
    },
    Remove {
        bullet: usize,
    },
    RenameSection {
        section: usize,
        name: String,
    },
    MoveSection {
        section: usize,
        to: usize,
    },
    RemoveSection {
        section: usize,
    },
}

fn content() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9 ,.=%()/-]{0,40}"
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..SECTIONS.len(), content(), proptest::option::of("[a-z]{1,6}"))
            .prop_map(|(section, content, meta)| Op::Add { section, content, meta }),
        1 => ("[A-Z][a-z]{2,8}( [A-Z][a-z]{2,8})?", content()).prop_map(|(name, content)| Op::NewSection { name, content }),
        2 => (0..40usize, proptest::option::of(content()), proptest::option::of(0..SECTIONS.len()), proptest::option::of("[a-z]{1,6}"))
            .prop_map(|(bullet, content, section, meta)| Op::Update { bullet, content, section, meta }),
        3 => (0..40usize, 0..3u64, 0..3u64, 0..2u64).prop_map(|(bullet, helpful, harmful, neutral)| Op::Tag { bullet, helpful, harmful, neutral }),
        1 => (0..40usize).prop_map(|bullet| Op::Remove { bullet }),
        1 => (0..8usize, "[A-Z][a-z]{2,8}( [a-z]{2,6})?").prop_map(|(section, name)| Op::RenameSection { section, name }),
        1 => (0..8usize, 0..8usize).prop_map(|(section, to)| Op::MoveSection { section, to }),
        1 => (0..8usize).prop_map(|section| Op::RemoveSection { section }),
    ]
}

fn meta(v: &Option<String>) -> Option<serde_json::Map<String, serde_json::Value>> {
    v.as_ref().map(|v| {
        let mut m = serde_json::Map::new();
        m.insert("note".into(), v.clone().into());
        m
    })
}

/// Active sections in order and the exact names of removed ones, as the batch so far leaves them.
struct Sections {
    active: Vec<String>,
    removed: Vec<String>,
}

impl Sections {
    fn of(store: &Store) -> Self {
        let p = store.load_playbook("pb").unwrap();
        let mut stmt = store
            .connection()
            .prepare("SELECT name FROM sections WHERE status = 'removed'")
            .unwrap();
        let removed = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        Sections {
            active: p.sections.iter().map(|s| s.name.clone()).collect(),
            removed,
        }
    }

    fn find(&self, name: &str) -> Option<usize> {
        let key = normalize_section_key(name);
        self.active.iter().position(|s| s == name).or_else(|| {
            self.active
                .iter()
                .position(|s| normalize_section_key(s) == key)
        })
    }

    /// An ADD or UPDATE naming `name` creates the section (or brings a removed one back) if needed.
    fn touch(&mut self, name: &str) -> String {
        match self.find(name) {
            Some(i) => self.active[i].clone(),
            None => {
                self.removed.retain(|r| r != name);
                self.active.push(name.to_string());
                name.to_string()
            }
        }
    }
}

/// Turns generated ops into real ones against the playbook's active bullets and sections (skipping
/// ops that would be invalid, e.g. tagging with nothing or touching a bullet an earlier op of the
/// batch removed, or renaming onto a name in use).
fn to_batch(store: &Store, id: &str, ops: &[Op]) -> DeltaBatch {
    let p = store.load_playbook("pb").unwrap();
    let ids: Vec<String> = p.active_bullets().map(|b| b.id.clone()).collect();
    let mut home: std::collections::HashMap<String, String> = p
        .active_bullets()
        .map(|b| (b.id.clone(), b.section.clone()))
        .collect();
    let mut sections = Sections::of(store);
    let mut removed = std::collections::HashSet::new();
    let mut out = Vec::new();
    for op in ops {
        let pick = |i: &usize| {
            (!ids.is_empty())
                .then(|| ids[i % ids.len()].clone())
                .filter(|b| !removed.contains(b))
        };
        match op {
            Op::Add {
                section,
                content,
                meta: m,
            } => {
                sections.touch(SECTIONS[*section]);
                let mut add = AddOp::new(SECTIONS[*section], content.clone());
                add.metadata = meta(m);
                out.push(DeltaOp::Add(add));
            }
            Op::NewSection { name, content } => {
                sections.touch(name);
                out.push(DeltaOp::Add(AddOp::new(name.clone(), content.clone())))
            }
            Op::Update {
                bullet,
                content,
                section,
                meta: m,
            } => {
                if let Some(id) = pick(bullet)
                    && (content.is_some() || section.is_some() || m.is_some())
                {
                    if let Some(s) = section {
                        let name = sections.touch(SECTIONS[*s]);
                        home.insert(id.clone(), name);
                    }
                    out.push(DeltaOp::Update(UpdateOp {
                        bullet_id: id,
                        content: content.clone(),
                        section: section.map(|s| SECTIONS[s].to_string()),
                        metadata: meta(m),
                    }));
                }
            }
            Op::Tag {
                bullet,
                helpful,
                harmful,
                neutral,
            } => {
                if let Some(id) = pick(bullet)
                    && helpful + harmful + neutral > 0
                {
                    out.push(DeltaOp::Tag(TagOp {
                        bullet_id: id,
                        helpful: *helpful,
                        harmful: *harmful,
                        neutral: *neutral,
                    }));
                }
            }
            Op::Remove { bullet } => {
                if let Some(id) = pick(bullet) {
                    removed.insert(id.clone());
                    out.push(DeltaOp::Remove { bullet_id: id });
                }
            }
            Op::RenameSection { section, name } => {
                if sections.active.is_empty() {
                    continue;
                }
                let i = section % sections.active.len();
                let key = normalize_section_key(name);
                let clash = sections
                    .active
                    .iter()
                    .any(|s| normalize_section_key(s) == key)
                    || sections.removed.contains(name);
                if !clash {
                    let old = std::mem::replace(&mut sections.active[i], name.clone());
                    for h in home.values_mut().filter(|h| **h == old) {
                        h.clone_from(name);
                    }
                    out.push(DeltaOp::RenameSection {
                        section: old,
                        new_name: name.clone(),
                    });
                }
            }
            Op::MoveSection { section, to } => {
                let n = sections.active.len();
                if n > 1 && section % n != to % n {
                    let s = sections.active.remove(section % n);
                    sections.active.insert(to % n, s.clone());
                    out.push(DeltaOp::MoveSection {
                        section: s,
                        index: to % n,
                    });
                }
            }
            Op::RemoveSection { section } => {
                if sections.active.is_empty() {
                    continue;
                }
                let name = sections.active.remove(section % sections.active.len());
                for (id, h) in &home {
                    if *h == name {
                        removed.insert(id.clone());
                    }
                }
                sections.removed.push(name.clone());
                out.push(DeltaOp::RemoveSection { section: name });
            }
        }
    }
    if out.is_empty() {
        out.push(DeltaOp::Add(AddOp::new("OTHERS", "filler")));
    }
    DeltaBatch::new(id, Source::Human, out)
}

fn seeded(seed_ops: &[Op]) -> Store {
    let mut store = store_with("pb", SECTIONS);
    let b = to_batch(&store, "seed", seed_ops);
    store
        .apply("pb", &b, &ApplyOptions::create_sections())
        .unwrap();
    store
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn apply_then_revert_restores_the_playbook_exactly(seed in prop::collection::vec(op(), 1..15), ops in prop::collection::vec(op(), 1..15)) {
        let mut store = seeded(&seed);
        let before = view(&store.load_playbook("pb").unwrap());
        let b = to_batch(&store, "change", &ops);
        let out = store.apply("pb", &b, &ApplyOptions::create_sections()).unwrap();
        store.revert(out.revision(), false, None).unwrap();
        prop_assert_eq!(view(&store.load_playbook("pb").unwrap()), before);
    }

    #[test]
    fn applying_a_batch_twice_equals_applying_it_once(seed in prop::collection::vec(op(), 1..15), ops in prop::collection::vec(op(), 1..15)) {
        let mut store = seeded(&seed);
        let b = to_batch(&store, "change", &ops);
        store.apply("pb", &b, &ApplyOptions::create_sections()).unwrap();
        let once = view(&store.load_playbook("pb").unwrap());
        let revisions = store.revisions(None, 1000).unwrap().len();
        store.apply("pb", &b, &ApplyOptions::create_sections()).unwrap();
        prop_assert_eq!(view(&store.load_playbook("pb").unwrap()), once);
        prop_assert_eq!(store.revisions(None, 1000).unwrap().len(), revisions);
    }

    #[test]
    fn export_then_import_is_the_identity(seed in prop::collection::vec(op(), 1..20), ops in prop::collection::vec(op(), 0..15)) {
        let mut store = seeded(&seed);
        if !ops.is_empty() {
            let b = to_batch(&store, "change", &ops);
            store.apply("pb", &b, &ApplyOptions::create_sections()).unwrap();
        }
        let p = store.load_playbook("pb").unwrap();
        // every section removed and no bullet ever: an empty file, which import refuses
        let empty = p.sections.is_empty() && p.bullets.is_empty();
        for (n, fmt) in [Format::Json, Format::Skillbook].into_iter().enumerate().filter(|_| !empty) {
            let text = format::export(fmt, &p);
            let parsed = format::parse(fmt, &text, "x").unwrap();
            let name = format!("copy{n}");
            store.import_playbook(&name, &ace::delta::import_batch(&parsed, "i"), parsed.next_bullet_number).unwrap();
            let q = store.load_playbook(&name).unwrap();
            if fmt == Format::Json {
                prop_assert_eq!(view(&p), view(&q));
            } else {
                // a skillbook has no place for section slugs (they are re-derived); all else must match
                prop_assert_eq!(view(&p).1, view(&q).1);
                let names = |p: &ace::playbook::Playbook| p.sections.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
                prop_assert_eq!(names(&p), names(&q));
            }
            prop_assert_eq!(p.next_bullet_number, q.next_bullet_number);
        }
        // the official text keeps active bullets, their sections, ids, content and helpful/harmful
        if p.sections.is_empty() {
            return Ok(());
        }
        let text = format::export(Format::Ace, &p);
        let q = format::parse(Format::Ace, &text, "x").unwrap();
        let strip = |p: &ace::playbook::Playbook| p.active_bullets().map(|b| (b.id.clone(), b.section.clone(), b.content.clone(), b.helpful, b.harmful)).collect::<Vec<_>>();
        prop_assert_eq!(strip(&p), strip(&q));
        prop_assert_eq!(format::export(Format::Ace, &q), text);
    }
}
