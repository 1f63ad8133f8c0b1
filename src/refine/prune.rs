//! Prunes: the bullets to let go when a proposal would take a playbook over its token budget, each
//! with the reason a reviewer reads. In order: bullets more harmful than helpful (worst first), the
//! duplicate side of near-duplicate pairs, then bullets never cited although shown to many samples
//! (longest unused first). Bullets the batch itself touches are never pruned.

use std::collections::HashSet;

use crate::delta::{DeltaOp, MergeOp};
use crate::playbook::{Bullet, Playbook};
use crate::prompts::bullet_cost;

/// One proposed prune.
#[derive(Debug, Clone, PartialEq)]
pub struct Prune {
    pub op: DeltaOp,
    /// Why, for the reviewer: e.g. `harmful 4 > helpful 1`.
    pub reason: String,
    /// The tokens it frees.
    pub saves: u64,
}

/// How often each bullet was put before the generator (for "never cited").
pub trait Exposure {
    /// Samples shown `bullet` so far, if known.
    fn shown(&self, bullet: &str) -> Option<u64>;
}

/// Nothing known: no bullet counts as unused.
impl Exposure for () {
    fn shown(&self, _: &str) -> Option<u64> {
        None
    }
}

/// Prunes freeing at least `need` tokens if the playbook has them (fewer if not; the caller then
/// holds the batch). `batch` is the proposal they accompany; `merges` are near-duplicate pairs of
/// the playbook (a scan's); a bullet never cited by `unused_after` samples shown it is unused.
pub fn prunes(
    playbook: &Playbook,
    batch: &[DeltaOp],
    need: u64,
    merges: &[MergeOp],
    exposure: &dyn Exposure,
    unused_after: u64,
) -> Vec<Prune> {
    let touched: HashSet<&str> = batch
        .iter()
        .flat_map(super::budget::named_bullets)
        .collect();
    let free = |b: &&Bullet| b.is_active() && !touched.contains(b.id.as_str());
    let mut out: Vec<Prune> = Vec::new();
    let mut gone: HashSet<String> = HashSet::new();
    let mut saved = 0u64;
    let mut take = |prune: Prune, ids: &[&str], out: &mut Vec<Prune>| -> bool {
        if saved >= need || ids.iter().any(|id| gone.contains(*id)) {
            return saved >= need;
        }
        gone.extend(ids.iter().map(|id| id.to_string()));
        saved += prune.saves;
        out.push(prune);
        saved >= need
    };
    // 1. more harmful than helpful, worst first
    let mut harmful: Vec<&Bullet> = playbook
        .bullets
        .iter()
        .filter(free)
        .filter(|b| b.harmful > b.helpful)
        .collect();
    harmful.sort_by_key(|b| {
        (
            std::cmp::Reverse(b.harmful - b.helpful),
            b.helpful,
            b.position,
        )
    });
    for b in harmful {
        let prune = Prune {
            op: DeltaOp::Remove {
                bullet_id: b.id.clone(),
            },
            reason: format!(
                "over budget: [{}] is more harmful than helpful (harmful {} > helpful {})",
                b.id, b.harmful, b.helpful
            ),
            saves: bullet_cost(b),
        };
        if take(prune, &[&b.id], &mut out) {
            return out;
        }
    }
    // 2. near duplicates: the weaker of each pair folds into the other
    for m in merges {
        let Some(dup) = m.duplicate.as_deref().and_then(|d| playbook.bullet(d)) else {
            continue;
        };
        let Some(kept) = playbook.bullet(&m.bullet_id) else {
            continue;
        };
        if !free(&dup) || !free(&kept) {
            continue;
        }
        let prune = Prune {
            op: DeltaOp::Merge(m.clone()),
            reason: format!(
                "over budget: [{}] repeats [{}] (similarity {:.2}); merged into it",
                dup.id,
                kept.id,
                m.similarity.unwrap_or(1.0)
            ),
            saves: bullet_cost(dup),
        };
        if take(prune, &[&dup.id, &kept.id], &mut out) {
            return out;
        }
    }
    // 3. never cited, though shown to at least `unused_after` samples: longest unused first
    let mut unused: Vec<(&Bullet, u64)> = playbook
        .bullets
        .iter()
        .filter(free)
        .filter(|b| b.helpful + b.harmful + b.neutral == 0)
        .filter_map(|b| exposure.shown(&b.id).map(|n| (b, n)))
        .filter(|(_, n)| *n >= unused_after)
        .collect();
    unused.sort_by_key(|(b, n)| (std::cmp::Reverse(*n), b.position));
    for (b, n) in unused {
        let prune = Prune {
            op: DeltaOp::Remove {
                bullet_id: b.id.clone(),
            },
            reason: format!(
                "over budget: [{}] was never cited in {n} samples that were shown it",
                b.id
            ),
            saves: bullet_cost(b),
        };
        if take(prune, &[&b.id], &mut out) {
            return out;
        }
    }
    out
}
