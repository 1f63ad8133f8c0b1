//! Near duplicates as MERGE proposals: a curator ADD that repeats a bullet is folded into it, ADDs
//! of one batch that repeat each other collapse, and a scan of a whole playbook pairs its
//! duplicates. Candidates come from the retrieval index (bullets sharing the rarer words), so the
//! work stays small on a large playbook; the [`Similarity`] decides.

use std::collections::HashSet;

use super::{Similarity, fold};
use crate::delta::{DeltaOp, MergeOp};
use crate::playbook::Playbook;
use crate::prompts::Index;

/// How many neighbours of a text are compared with it.
pub const NEIGHBOURS: usize = 8;

fn rounded(score: f64) -> f64 {
    (score * 100.0).round() / 100.0
}

/// The texts whose vectors [`fold_adds`] compares: each ADD's and its neighbours'.
pub fn texts_for_adds(playbook: &Playbook, index: &Index, ops: &[DeltaOp]) -> Vec<String> {
    let mut texts = Vec::new();
    for op in ops {
        if let DeltaOp::Add(add) = op {
            texts.push(add.content.clone());
            for id in index.neighbours(&add.content, NEIGHBOURS) {
                if let Some(b) = playbook.bullet(&id) {
                    texts.push(b.content.clone());
                }
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
    let mut kept: Vec<DeltaOp> = Vec::new();
    let mut dropped = Vec::new();
    for op in ops {
        let DeltaOp::Add(add) = &op else {
            kept.push(op);
            continue;
        };
        let best = index
            .neighbours(&add.content, NEIGHBOURS)
            .into_iter()
            .filter_map(|id| playbook.bullet(&id).filter(|b| b.is_active()))
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
/// takes part in one merge at most. The bullet with the better record (helpful minus harmful, then
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
    for (i, b) in active.iter().enumerate() {
        for id in index.neighbours(&b.content, NEIGHBOURS) {
            let Some(&j) = slot.get(id.as_str()) else {
                continue;
            };
            // each unordered pair once
            if j <= i {
                continue;
            }
            let score = similarity.score(&b.content, &active[j].content);
            if score >= threshold {
                pairs.push((score, i, j));
            }
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
    let mut used = HashSet::new();
    let mut merges = Vec::new();
    for (score, i, j) in pairs {
        if used.contains(&i) || used.contains(&j) {
            continue;
        }
        used.insert(i);
        used.insert(j);
        let record = |k: usize| active[k].helpful as i64 - active[k].harmful as i64;
        // ties keep the earlier bullet (i comes first in playbook order)
        let (keep, gone) = if record(j) > record(i) {
            (j, i)
        } else {
            (i, j)
        };
        merges.push(MergeOp {
            bullet_id: active[keep].id.clone(),
            duplicate: Some(active[gone].id.clone()),
            proposed: None,
            content: None,
            similarity: Some(rounded(score)),
        });
    }
    merges
}
