//! The Curator: turns reflections into small delta operations, normalised and de-duplicated.
//!
//! Normalisation: whitespace collapsed, section names mapped to the playbook's own (case and
//! punctuation ignored). De-duplication of ADDs, against active bullets and earlier ADDs of the same
//! answer:
//! - an **exact** duplicate (same text after case and whitespace folding) or one with the same set of
//!   content words (lowercased, stop words and a plural `s` removed) becomes a `MERGE` of the lesson
//!   into the existing bullet (one helpful more: the curator re-derived it, which is evidence);
//!   paraphrases are caught later by [`crate::refine::dedup`], with embeddings when available;
//! - a merely **similar** ADD (token-set Jaccard ≥ [`SIMILAR`] over those content words) is kept but
//!   flagged: its metadata gets `similar_to` and `similarity`, so the reviewer sees the pair. Lexical
//!   overlap cannot tell a paraphrase from a different rule ("current ratio = …" vs "quick ratio = …"
//!   share most words; see ../shared/CRATES.md), so it never decides alone.
//!
//! Ops naming unknown or removed bullets, or failing the delta limits, are dropped with a reason; the
//! rest each get a stable idempotency key.

use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{Reflection, RoleError, call_structured, opt_text};
use crate::delta::{AddOp, DeltaBatch, DeltaOp, MergeOp, Source, TagOp, UpdateOp, content_hash};
use crate::llm::{CallRecord, LlmClient, TraceIds};
use crate::playbook::{Playbook, View, normalize_section_key};
use crate::prompts;
use crate::refine;

/// Jaccard similarity at or above which an ADD is flagged as similar to an existing bullet.
pub const SIMILAR: f64 = 0.6;

/// A normalised op with its idempotency key (`c-` + hash of the op's JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CuratedOp {
    pub key: String,
    pub op: DeltaOp,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CuratorOutput {
    pub reasoning: String,
    pub operations: Vec<CuratedOp>,
    /// Ops the curator proposed that were dropped, with the reason.
    pub dropped: Vec<(String, String)>,
    #[serde(skip)]
    pub calls: Vec<CallRecord>,
}

pub struct CuratorInput<'a> {
    pub playbook: &'a Playbook,
    /// The bullets to show (those relevant to the reflections, for a large playbook); `None`: all.
    pub shown: Option<&'a [String]>,
    /// What each reflected sample was about, and its reflection.
    pub reflections: &'a [(String, Reflection)],
    /// The playbook's size in tokens, if known (else it is counted).
    pub size_tokens: Option<u64>,
    /// Token budget of the playbook, shown to the curator against the current size.
    pub token_budget: Option<u64>,
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Token-set Jaccard similarity of content words (see [`crate::refine::lexical`]).
pub fn similarity(a: &str, b: &str) -> f64 {
    refine::lexical(a, b)
}

fn stats(playbook: &Playbook, size: u64, budget: Option<u64>) -> String {
    let active: Vec<_> = playbook.active_bullets().collect();
    let list = |f: &dyn Fn(&&crate::playbook::Bullet) -> bool| {
        let ids: Vec<&str> = active
            .iter()
            .filter(|b| f(b))
            .map(|b| b.id.as_str())
            .take(30)
            .collect();
        if ids.is_empty() {
            "none".to_string()
        } else {
            ids.join(", ")
        }
    };
    let budget = budget.map_or_else(|| "no budget set".to_string(), |b| format!("budget {b}"));
    format!(
        "bullets: {}\nhigh-performing (helpful > harmful, helpful >= 2): {}\nproblematic (harmful > helpful): {}\nunused so far (no tags): {}\nsize: {size} tokens ({budget})",
        active.len(),
        list(&|b| b.helpful > b.harmful && b.helpful >= 2),
        list(&|b| b.harmful > b.helpful),
        list(&|b| b.helpful + b.harmful + b.neutral == 0),
    )
}

fn reflections_text(reflections: &[(String, Reflection)]) -> String {
    reflections
        .iter()
        .enumerate()
        .map(|(i, (about, r))| format!("[{}] task: {}\n{}", i + 1, about.trim(), r.summary()))
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn count(op: &Value, name: &str) -> Result<u64, String> {
    match op.get(name) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| format!("\"{name}\" must be a whole number ≥ 0")),
    }
}

/// Reads the answer's operations; an op that is not even an object with a known type makes the whole
/// answer unusable (so the repair request can fix it).
fn parse(v: &Value) -> Result<(String, Vec<DeltaOp>), String> {
    let reasoning = opt_text(v, "reasoning")?;
    let items = match v.get("operations") {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => return Err("the field \"operations\" is missing".into()),
        Some(_) => return Err("\"operations\" must be an array".into()),
    };
    let mut ops = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let kind = item
            .get("type")
            .and_then(Value::as_str)
            .map(|s| s.trim().to_ascii_uppercase());
        let text = |name: &str| {
            item.get(name)
                .and_then(Value::as_str)
                .map(collapse)
                .filter(|s| !s.is_empty())
        };
        let id = || text("bullet_id").map(|s| s.trim_matches(|c| c == '[' || c == ']').to_string());
        let op = match kind.as_deref() {
            Some("ADD") => DeltaOp::Add(AddOp::new(
                text("section").unwrap_or_else(|| "OTHERS".into()),
                text("content").unwrap_or_default(),
            )),
            Some("UPDATE") => DeltaOp::Update(UpdateOp {
                bullet_id: id().unwrap_or_default(),
                content: text("content"),
                section: text("section"),
                metadata: None,
            }),
            Some("TAG") => DeltaOp::Tag(TagOp {
                bullet_id: id().unwrap_or_default(),
                helpful: count(item, "helpful")?,
                harmful: count(item, "harmful")?,
                neutral: count(item, "neutral")?,
            }),
            Some("REMOVE") => DeltaOp::Remove {
                bullet_id: id().unwrap_or_default(),
            },
            Some(other) => {
                return Err(format!(
                    "operations[{i}] has unknown type '{other}' (use ADD, UPDATE, TAG or REMOVE)"
                ));
            }
            None => return Err(format!("operations[{i}] has no \"type\"")),
        };
        ops.push(op);
    }
    Ok((reasoning, ops))
}

/// Normalises and de-duplicates proposed ops against the playbook (see the module docs).
pub fn normalize(
    playbook: &Playbook,
    proposed: Vec<DeltaOp>,
) -> (Vec<CuratedOp>, Vec<(String, String)>) {
    let mut kept: Vec<DeltaOp> = Vec::new();
    let mut dropped = Vec::new();
    let section_name = |name: &str| {
        let key = normalize_section_key(name);
        playbook
            .sections
            .iter()
            .find(|s| normalize_section_key(&s.name) == key)
            .map_or_else(|| name.trim().to_string(), |s| s.name.clone())
    };
    for op in proposed {
        let desc = op.describe();
        let mut op = op;
        // ids as a model writes them (any case, brackets or punctuation) name their bullets
        canonical_targets(playbook, &mut op);
        // Targets must exist and be active.
        if let Some(id) = op.bullet_id().map(str::to_string)
            && !matches!(op, DeltaOp::Add(_))
            && !playbook.bullet(&id).is_some_and(|b| b.is_active())
        {
            let reason = if id.is_empty() {
                "no bullet_id given".to_string()
            } else {
                format!("bullet {id} is not in the playbook")
            };
            dropped.push((desc, reason));
            continue;
        }
        // a field that repeats the prompt's own placeholder (`<one new, specific, reusable lesson>`)
        // is a model copying the example, not a lesson
        if let Some(text) = placeholder_field(&op) {
            dropped.push((
                desc,
                format!("repeats the prompt's placeholder '{text}' instead of a lesson"),
            ));
            continue;
        }
        match &mut op {
            DeltaOp::Add(add) => {
                add.content = collapse(&add.content);
                add.section = section_name(&add.section);
                // a section the playbook lacks is not created on the side: it is its own op,
                // for a person to decide (auto-approval holds such a batch)
                if !playbook.has_section(&add.section) {
                    let new = DeltaOp::AddSection {
                        section: add.section.clone(),
                        slug: None,
                    };
                    if !kept.contains(&new) {
                        kept.push(new);
                    }
                }
                // A lesson the playbook has already (the same text, or the same content words)
                // becomes a MERGE into that bullet: evidence for it, reviewable, not a second copy.
                let folded = refine::fold(&add.content);
                let words = refine::content_words(&add.content);
                let same = playbook
                    .active_bullets()
                    .find(|b| refine::fold(&b.content) == folded)
                    .map(|b| (b, "exact duplicate"))
                    .or_else(|| {
                        playbook
                            .active_bullets()
                            .find(|b| refine::content_words(&b.content) == words)
                            .map(|b| (b, "same content words as"))
                    });
                if let Some((b, how)) = same {
                    if kept
                        .iter()
                        .any(|k| matches!(k, DeltaOp::Merge(m) if m.bullet_id == b.id))
                    {
                        dropped.push((
                            desc,
                            format!("{how} {}, which this answer already merges into", b.id),
                        ));
                        continue;
                    }
                    let merge = DeltaOp::Merge(MergeOp {
                        bullet_id: b.id.clone(),
                        duplicate: None,
                        proposed: Some(add.content.clone()),
                        content: None,
                        similarity: Some(1.0),
                    });
                    dropped.push((
                        desc,
                        format!("{how} {}; proposed as a MERGE into it instead", b.id),
                    ));
                    if !kept.contains(&merge) {
                        kept.push(merge);
                    }
                    continue;
                }
                let repeat = kept.iter().any(
                    |k| matches!(k, DeltaOp::Add(o) if refine::content_words(&o.content) == words),
                );
                if repeat {
                    dropped.push((desc, "repeats another ADD of this answer".into()));
                    continue;
                }
                if let Some((b, s)) = playbook
                    .active_bullets()
                    .map(|b| (b, similarity(&b.content, &add.content)))
                    .filter(|(_, s)| *s >= SIMILAR)
                    .max_by(|x, y| x.1.total_cmp(&y.1))
                {
                    let meta = add.metadata.get_or_insert_with(Default::default);
                    meta.insert("similar_to".into(), b.id.clone().into());
                    meta.insert("similarity".into(), ((s * 100.0).round() / 100.0).into());
                }
            }
            DeltaOp::Update(u) => {
                u.content = u.content.as_deref().map(collapse);
                u.section = u.section.as_deref().map(section_name);
            }
            _ => {}
        }
        if let Err(e) = DeltaBatch::new("check", Source::Curator, vec![op.clone()]).validate_shape()
        {
            let reason = match e {
                crate::delta::DeltaError::Op { reason, .. } => reason,
                other => other.to_string(),
            };
            dropped.push((desc, reason));
            continue;
        }
        if kept.contains(&op) {
            dropped.push((desc, "repeats another op of this answer".into()));
            continue;
        }
        kept.push(op);
    }
    (keyed(kept), dropped)
}

/// Rewrites the bullet ids an op names to the playbook's own spelling, where one matches.
fn canonical_targets(playbook: &Playbook, op: &mut DeltaOp) {
    let fix = |id: &mut String| {
        if let Some(c) = playbook.canonical_id(id) {
            *id = c.to_string();
        }
    };
    match op {
        DeltaOp::Update(u) => fix(&mut u.bullet_id),
        DeltaOp::Tag(t) => fix(&mut t.bullet_id),
        DeltaOp::Remove { bullet_id } => fix(bullet_id),
        DeltaOp::Merge(m) => {
            fix(&mut m.bullet_id);
            if let Some(d) = m.duplicate.as_mut() {
                fix(d);
            }
        }
        _ => {}
    }
}

/// Whether a text is one of the prompt's placeholders: `<…>` alone, nothing else.
fn is_placeholder(text: &str) -> bool {
    let t = text.trim();
    t.len() > 2 && t.starts_with('<') && t.ends_with('>') && !t[1..t.len() - 1].contains(['<', '>'])
}

/// The first field of an op that is a placeholder of the prompt, if any.
fn placeholder_field(op: &DeltaOp) -> Option<String> {
    let texts: Vec<&str> = match op {
        DeltaOp::Add(a) => vec![&a.section, &a.content],
        DeltaOp::Update(u) => [
            u.content.as_deref(),
            u.section.as_deref(),
            Some(&u.bullet_id),
        ]
        .into_iter()
        .flatten()
        .collect(),
        DeltaOp::Tag(t) => vec![&t.bullet_id],
        DeltaOp::Remove { bullet_id } => vec![bullet_id],
        _ => Vec::new(),
    };
    texts
        .into_iter()
        .find(|t| is_placeholder(t))
        .map(|t| t.trim().to_string())
}

/// Ops with their idempotency keys (`c-` + a hash of the op's JSON).
pub fn keyed(ops: Vec<DeltaOp>) -> Vec<CuratedOp> {
    ops.into_iter()
        .map(|op| {
            let json = serde_json::to_string(&op).unwrap_or_default();
            CuratedOp {
                key: format!("c-{:016x}", content_hash(json.as_bytes())),
                op,
            }
        })
        .collect()
}

pub async fn curate(
    client: &dyn LlmClient,
    input: &CuratorInput<'_>,
    trace: &TraceIds,
    cancel: &CancellationToken,
) -> Result<CuratorOutput, RoleError> {
    let size = input.size_tokens.unwrap_or_else(|| {
        let whole = View {
            revision: input.playbook.revision,
            bullets: None,
            counters: false,
        };
        prompts::tokens(&prompts::render(input.playbook, &whole)) as u64
    });
    let view = View {
        revision: input.playbook.revision,
        bullets: input.shown.map(<[String]>::to_vec),
        counters: true,
    };
    let prompt = prompts::curator(
        input.playbook,
        view,
        &stats(input.playbook, size, input.token_budget),
        &reflections_text(input.reflections),
    );
    let ((reasoning, proposed), calls) =
        call_structured(client, &prompt, trace, cancel, parse).await?;
    let (operations, dropped) = normalize(input.playbook, proposed);
    Ok(CuratorOutput {
        reasoning,
        operations,
        dropped,
        calls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::{Bullet, BulletStatus, Section};

    /// A one-section playbook with one bullet.
    fn playbook_with(id: &str, content: &str) -> Playbook {
        let section = "FORMULAS AND CALCULATIONS";
        let bullet = Bullet {
            id: id.into(),
            section: section.into(),
            content: content.into(),
            helpful: 0,
            harmful: 0,
            neutral: 0,
            metadata: Default::default(),
            status: BulletStatus::Active,
            position: 0,
            created_at: String::new(),
            updated_at: String::new(),
        };
        let section = Section {
            name: section.into(),
            slug: "calc".into(),
            position: 0,
            removed: false,
        };
        Playbook {
            name: "p".into(),
            sections: vec![section],
            bullets: vec![bullet],
            next_bullet_number: 2,
            ..Default::default()
        }
    }

    fn playbook() -> Playbook {
        playbook_with(
            "calc-00001",
            "Strip thousands separators before dividing numbers.",
        )
    }

    #[test]
    fn similarity_is_jaccard_over_content_words() {
        assert_eq!(
            similarity(
                "Strip commas before dividing",
                "strip commas before dividing."
            ),
            1.0
        );
        assert_eq!(
            similarity(
                "Strip thousands separators before dividing numbers.",
                "Always strip the thousands separators before dividing number"
            ),
            1.0,
            "only stop words and a plural differ"
        );
        assert!(
            similarity(
                "Current ratio = current assets / current liabilities.",
                "Quick ratio = quick assets / current liabilities."
            ) < 1.0
        );
        assert!(
            similarity(
                "Strip thousands separators",
                "Round the final answer to two decimals"
            ) < 0.2
        );
    }

    #[test]
    fn duplicates_unknown_ids_and_sections_are_normalised() {
        let ops = vec![
            DeltaOp::Add(AddOp::new(
                "formulas_and_calculations",
                "  Strip thousands   separators before dividing numbers. ",
            )),
            DeltaOp::Add(AddOp::new(
                "FORMULAS AND CALCULATIONS",
                "Always strip the thousands separators before dividing number",
            )),
            DeltaOp::Add(AddOp::new(
                "Formulas and Calculations",
                "Round only the final answer to two decimals.",
            )),
            DeltaOp::Add(AddOp::new(
                "FORMULAS AND CALCULATIONS",
                "Round only the final answer to two decimals.",
            )),
            DeltaOp::Tag(TagOp {
                bullet_id: "calc-00099".into(),
                helpful: 1,
                harmful: 0,
                neutral: 0,
            }),
            DeltaOp::Remove {
                bullet_id: String::new(),
            },
        ];
        let (kept, dropped) = normalize(&playbook(), ops);
        let kinds: Vec<String> = kept.iter().map(|k| k.op.describe()).collect();
        assert_eq!(
            kinds,
            [
                "MERGE \"Strip thousands separators before dividi…\" into calc-00001",
                "ADD to 'FORMULAS AND CALCULATIONS': \"Round only the final answer to two decim…\""
            ]
        );
        assert_eq!(dropped.len(), 5);
        assert!(
            dropped[0]
                .1
                .starts_with("exact duplicate calc-00001; proposed as a MERGE")
        );
        assert!(
            dropped[1]
                .1
                .starts_with("same content words as calc-00001, which this answer already merges")
        );
        assert!(dropped[2].1.contains("repeats another"));
        assert_eq!(dropped[3].1, "bullet calc-00099 is not in the playbook");
        assert_eq!(dropped[4].1, "no bullet_id given");
        // keys are stable
        let (again, _) = normalize(
            &playbook(),
            vec![DeltaOp::Add(AddOp::new(
                "FORMULAS AND CALCULATIONS",
                "Round only the final answer to two decimals.",
            ))],
        );
        assert_eq!(again[0].key, kept[1].key);
    }

    #[test]
    fn similar_but_different_rules_are_kept_and_flagged_for_the_reviewer() {
        let pb = playbook_with(
            "calc-00001",
            "LESSON: Current Ratio - apply the formula as given, then round to two decimals.",
        );
        let add = AddOp::new(
            "FORMULAS AND CALCULATIONS",
            "LESSON: Treynor Ratio - apply the formula as given, then round to two decimals.",
        );
        let (kept, dropped) = normalize(&pb, vec![DeltaOp::Add(add)]);
        assert!(dropped.is_empty(), "{dropped:?}");
        let DeltaOp::Add(add) = &kept[0].op else {
            panic!("{kept:?}")
        };
        let meta = add.metadata.as_ref().unwrap();
        assert_eq!(meta["similar_to"], "calc-00001");
        assert!(meta["similarity"].as_f64().unwrap() >= SIMILAR);
    }
}
