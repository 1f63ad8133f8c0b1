//! Importing a playbook is a batch like any other: the file's sections and bullets as ops.

use super::{AddOp, DeltaBatch, DeltaOp, Source};
use crate::playbook::Playbook;

/// The batch that imports a parsed playbook: its sections in order, then its bullets with their ids,
/// counters, metadata, status and timestamps kept.
pub fn import_batch(playbook: &Playbook, batch_id: &str) -> DeltaBatch {
    let mut ops: Vec<DeltaOp> = playbook
        .sections
        .iter()
        .map(|s| DeltaOp::AddSection {
            section: s.name.clone(),
            slug: Some(s.slug.clone()),
        })
        .collect();
    for b in &playbook.bullets {
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        ops.push(DeltaOp::Add(AddOp {
            section: b.section.clone(),
            content: b.content.clone(),
            metadata: (!b.metadata.is_empty()).then(|| b.metadata.clone()),
            id: Some(b.id.clone()),
            helpful: Some(b.helpful),
            harmful: Some(b.harmful),
            neutral: Some(b.neutral),
            status: Some(b.status),
            created_at: non_empty(&b.created_at),
            updated_at: non_empty(&b.updated_at),
        }));
    }
    // Bullets of a removed section name a section the list leaves out: it is created for them, then
    // removed again, so the copy hides it as the original does.
    let mut hidden: Vec<&str> = Vec::new();
    for b in &playbook.bullets {
        if !playbook.has_section(&b.section) && !hidden.contains(&b.section.as_str()) {
            hidden.push(&b.section);
        }
    }
    for name in hidden {
        if playbook
            .bullets
            .iter()
            .all(|b| b.section != name || !b.is_active())
        {
            ops.push(DeltaOp::RemoveSection {
                section: name.to_string(),
            });
        }
    }
    DeltaBatch::new(batch_id, Source::Import, ops)
}
