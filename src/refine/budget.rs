//! A token budget that holds: what a batch of ops would do to a playbook's size, measured by
//! applying it to a copy in memory under the store's own rules.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::delta::{ApplyOptions, DeltaBatch, DeltaError, DeltaOp, apply_in_memory};
use crate::playbook::Playbook;
use crate::prompts::change_cost;

/// A batch's effect on its playbook's size, in tokens of the generator's rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeEffect {
    pub before: u64,
    pub after: u64,
    pub budget: Option<u64>,
}

impl SizeEffect {
    pub fn new(before: u64, change: i64, budget: Option<u64>) -> Self {
        SizeEffect {
            before,
            after: before.saturating_add_signed(change),
            budget,
        }
    }

    /// Whether approving would take the playbook over its budget. A batch that does not grow a
    /// playbook already over budget (its budget was lowered) is not held against it.
    pub fn over(&self) -> bool {
        self.budget
            .is_some_and(|b| self.after > b && self.after > self.before)
    }

    /// Tokens to let go for the batch to fit (0 if it fits).
    pub fn excess(&self) -> u64 {
        match self.budget {
            Some(b) if self.over() => self.after - b,
            _ => 0,
        }
    }

    /// E.g. `12,004 → 12,380 tokens (budget 12,000: over by 380)`.
    pub fn describe(&self) -> String {
        let size = format!("{} → {} tokens", self.before, self.after);
        match self.budget {
            None => size,
            Some(b) if self.over() => format!("{size} (budget {b}: over by {})", self.after - b),
            Some(b) => format!("{size} (budget {b}: within it)"),
        }
    }
}

/// How many tokens applying `ops` would add to `playbook` (negative: remove). Ops the rules would
/// refuse make it an error, as approving them would be. Only the bullets the ops name are copied,
/// unless an op changes whole sections.
pub fn size_change(playbook: &Playbook, ops: &[DeltaOp]) -> Result<i64, DeltaError> {
    if ops.is_empty() {
        return Ok(0);
    }
    let whole = ops.iter().any(|op| {
        matches!(
            op,
            DeltaOp::RenameSection { .. } | DeltaOp::RemoveSection { .. }
        )
    });
    let mut copy = if whole {
        playbook.clone()
    } else {
        let named: HashSet<&str> = ops.iter().flat_map(named_bullets).collect();
        Playbook {
            bullets: playbook
                .bullets
                .iter()
                .filter(|b| named.contains(b.id.as_str()))
                .cloned()
                .collect(),
            sections: playbook.sections.clone(),
            removed_sections: playbook.removed_sections.clone(),
            name: playbook.name.clone(),
            next_bullet_number: playbook.next_bullet_number,
            next_position: playbook.next_position,
            revision: playbook.revision,
        }
    };
    let batch = DeltaBatch::new("size", crate::delta::Source::Curator, ops.to_vec());
    let outcome = apply_in_memory(
        &mut copy,
        &batch,
        &ApplyOptions::create_sections(),
        "1970-01-01T00:00:00Z",
    )?;
    Ok(outcome.changes.iter().map(|(_, c)| change_cost(c)).sum())
}

/// The bullet ids an op reads or changes.
pub fn named_bullets(op: &DeltaOp) -> Vec<&str> {
    match op {
        DeltaOp::Update(u) => vec![u.bullet_id.as_str()],
        DeltaOp::Tag(t) => vec![t.bullet_id.as_str()],
        DeltaOp::Remove { bullet_id } => vec![bullet_id.as_str()],
        DeltaOp::Merge(m) => std::iter::once(m.bullet_id.as_str())
            .chain(m.duplicate.as_deref())
            .collect(),
        _ => Vec::new(),
    }
}

/// What approving the rest of a queued batch (its undecided, approved and edited ops) would do to
/// `playbook`, whose size is `before` tokens; `None` if the batch is closed or its ops would be
/// refused as they stand.
pub fn queued_effect(
    batch: &crate::approval::PendingBatch,
    playbook: &Playbook,
    before: u64,
    budget: Option<u64>,
) -> Option<SizeEffect> {
    use crate::approval::OpStatus;
    if !batch.is_pending() {
        return None;
    }
    let ops: Vec<DeltaOp> = batch
        .ops
        .iter()
        .filter_map(|o| match o.status {
            OpStatus::Pending | OpStatus::Approved => Some(o.op.clone()),
            OpStatus::Edited => o.edited.clone(),
            _ => None,
        })
        .collect();
    let change = size_change(playbook, &ops).ok()?;
    Some(SizeEffect::new(before, change, budget))
}
