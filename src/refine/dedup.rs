//! Near duplicates as MERGE proposals: a curator ADD that repeats a bullet is folded into it, ADDs
//! of one batch that repeat each other collapse, and a scan of a whole playbook pairs its
//! duplicates. Candidates come from the retrieval index (bullets sharing the rarer words), so the
//! work stays small on a large playbook; the [`Similarity`] decides.

use std::collections::HashSet;

use super::{Method, Prepared, Similarity, fold};
use crate::delta::{DeltaOp, MergeOp};
use crate::playbook::{Bullet, Playbook};
use crate::prompts::Index;

/// How many neighbours of a text are compared with it, when not every bullet is.
pub const NEIGHBOURS: usize = 8;

/// Up to this many active bullets, embeddings compare a proposed lesson with every bullet (a
/// paraphrase may share no word with the bullet it repeats); above it, with its neighbours.
pub const EXHAUSTIVE_ADDS: usize = 5000;

/// Up to this many active bullets, a scan under embeddings compares every pair.
pub const EXHAUSTIVE_SCAN: usize = 1500;

/// Whether every active bullet is a candidate under `method` (embeddings on a playbook of at most
/// `limit` active bullets).
fn exhaustive(playbook: &Playbook, method: &Method, limit: usize) -> bool {
    matches!(method, Method::Semantic { .. }) && playbook.active_bullets().nth(limit).is_none()
}

/// The bullets `text` is compared with: every active one, or its neighbours in the index.
fn candidates<'a>(
    playbook: &'a Playbook,
    index: &Index,
    text: &str,
    everyone: bool,
) -> Vec<&'a Bullet> {
    if everyone {
        return playbook.active_bullets().collect();
    }
    index
        .neighbours(text, NEIGHBOURS)
        .into_iter()
        .filter_map(|id| playbook.bullet(&id).filter(|b| b.is_active()))
        .collect()
}

fn rounded(score: f64) -> f64 {
    (score * 100.0).round() / 100.0
}

/// The texts whose vectors [`fold_adds`] compares under `method`: each ADD's and its candidates'.
pub fn texts_for_adds(
    playbook: &Playbook,
    index: &Index,
    ops: &[DeltaOp],
    method: &Method,
) -> Vec<String> {
    let everyone = exhaustive(playbook, method, EXHAUSTIVE_ADDS);
    let mut texts = Vec::new();
    for op in ops {
        if let DeltaOp::Add(add) = op {
            texts.push(add.content.clone());
        }
    }
    if everyone {
        texts.extend(playbook.active_bullets().map(|b| b.content.clone()));
        return texts;
    }
    for op in ops {
        if let DeltaOp::Add(add) = op {
            for b in candidates(playbook, index, &add.content, false) {
                texts.push(b.content.clone());
            }
        }
    }
    texts
}

/// Each ADD that repeats an active bullet (similarity ≥ `threshold`) becomes a MERGE of the lesson
/// into the most similar one; an ADD that repeats an earlier ADD of the same batch is dropped, with
/// the reason. Other ops pass unchanged.
pub fn fold_adds(
    playbook: &Playbook,
    index: &Index,
    ops: Vec<DeltaOp>,
    similarity: &Similarity,
    threshold: f64,
) -> (Vec<DeltaOp>, Vec<(String, String)>) {
    let everyone = exhaustive(playbook, &similarity.method, EXHAUSTIVE_ADDS);
    let mut kept: Vec<DeltaOp> = Vec::new();
    let mut dropped = Vec::new();
    for op in ops {
        let DeltaOp::Add(add) = &op else {
            kept.push(op);
            continue;
        };
        let best = candidates(playbook, index, &add.content, everyone)
            .into_iter()
            .map(|b| (b, similarity.score(&b.content, &add.content)))
            .filter(|(_, s)| *s >= threshold)
            .max_by(|x, y| x.1.total_cmp(&y.1));
        if let Some((bullet, score)) = best {
            if kept
                .iter()
                .any(|k| matches!(k, DeltaOp::Merge(m) if m.bullet_id == bullet.id))
            {
                dropped.push((
                    op.describe(),
                    format!(
                        "repeats {} (similarity {score:.2}), which this batch already merges into",
                        bullet.id
                    ),
                ));
                continue;
            }
            let merge = DeltaOp::Merge(MergeOp {
                bullet_id: bullet.id.clone(),
                duplicate: None,
                proposed: Some(add.content.clone()),
                content: None,
                similarity: Some(rounded(score)),
            });
            dropped.push((
                op.describe(),
                format!(
                    "repeats {} (similarity {:.2}); proposed as a MERGE into it instead",
                    bullet.id, score
                ),
            ));
            if !kept.contains(&merge) {
                kept.push(merge);
            }
            continue;
        }
        let earlier = kept.iter().find_map(|k| match k {
            DeltaOp::Add(other) => {
                let s = similarity.score(&other.content, &add.content);
                (s >= threshold).then_some(s)
            }
            _ => None,
        });
        if let Some(score) = earlier {
            dropped.push((
                op.describe(),
                format!("repeats another ADD of this batch (similarity {score:.2})"),
            ));
            continue;
        }
        kept.push(op);
    }
    (kept, dropped)
}

/// The texts a [`scan`] compares: every active bullet's.
pub fn texts_for_scan(playbook: &Playbook) -> Vec<String> {
    playbook
        .active_bullets()
        .map(|b| b.content.clone())
        .collect()
}

/// Every pair of active bullets at or above `threshold`, as MERGE ops, most similar first; a bullet
/// is merged away once at most, and a kept bullet is never merged away. The bullet with the better record (helpful minus harmful, then
/// the older) is kept and takes the other's counters.
pub fn scan(
    playbook: &Playbook,
    index: &Index,
    similarity: &Similarity,
    threshold: f64,
) -> Vec<MergeOp> {
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    let active: Vec<_> = playbook.active_bullets().collect();
    let slot: std::collections::HashMap<&str, usize> = active
        .iter()
        .enumerate()
        .map(|(i, b)| (b.id.as_str(), i))
        .collect();
    // equal texts first: found by their folded form, whatever the index says
    let mut by_text: std::collections::HashMap<String, usize> = Default::default();
    for (i, b) in active.iter().enumerate() {
        if let Some(&first) = by_text.get(&fold(&b.content)) {
            pairs.push((1.0, first, i));
        } else {
            by_text.insert(fold(&b.content), i);
        }
    }
    let everyone = exhaustive(playbook, &similarity.method, EXHAUSTIVE_SCAN);
    let prepared: Vec<Prepared> = active
        .iter()
        .map(|b| similarity.prepare(&b.content))
        .collect();
    for (i, b) in active.iter().enumerate() {
        let others: Vec<usize> = if everyone {
            (i + 1..active.len()).collect()
        } else {
            index
                .neighbours(&b.content, NEIGHBOURS)
                .iter()
                .filter_map(|id| slot.get(id.as_str()).copied())
                .collect()
        };
        for j in others {
            // each unordered pair once
            if j <= i {
                continue;
            }
            let score = similarity.score_prepared(&prepared[i], &prepared[j]);
            if score >= threshold {
                pairs.push((score, i, j));
            }
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
    // a bullet merged away takes no further part; a kept one may absorb several duplicates (three
    // copies of one bullet end as one), but two kept bullets are not merged into each other
    let mut kept: HashSet<usize> = HashSet::new();
    let mut gone: HashSet<usize> = HashSet::new();
    let mut merges = Vec::new();
    for (score, i, j) in pairs {
        if gone.contains(&i) || gone.contains(&j) || (kept.contains(&i) && kept.contains(&j)) {
            continue;
        }
        let record = |k: usize| active[k].helpful as i64 - active[k].harmful as i64;
        // a keeper stays the keeper; else the better record, and on a tie the earlier bullet
        let (keep, drop) = if kept.contains(&i) {
            (i, j)
        } else if kept.contains(&j) || record(j) > record(i) {
            (j, i)
        } else {
            (i, j)
        };
        kept.insert(keep);
        gone.insert(drop);
        merges.push(MergeOp {
            bullet_id: active[keep].id.clone(),
            duplicate: Some(active[drop].id.clone()),
            proposed: None,
            content: None,
            similarity: Some(rounded(score)),
        });
    }
    merges
}
