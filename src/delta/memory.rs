//! Applying a batch to a playbook in memory, by the same rules as the store: a trial of a proposal,
//! a merge of two playbooks, a what-if, with no database. A refused batch changes nothing.

use std::collections::HashMap;
use std::convert::Infallible;

use super::apply::{Applied, Applier, ApplyError, ApplyOptions, Head, PlaybookRows};
use super::{Change, ChangeSummary, DeltaBatch, DeltaError};
use crate::playbook::{Bullet, Playbook, Section, parse_bullet_id};

/// What an in-memory application did.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryOutcome {
    /// Changes in order, each with the index of the op that caused it.
    pub changes: Vec<(Option<usize>, Change)>,
    pub added: Vec<String>,
    pub summary: ChangeSummary,
}

/// Applies `batch` to `playbook` in memory, stamping `now` on what it writes. On a refused op the
/// playbook is left exactly as it was and the error names the op, as the store's would.
pub fn apply_in_memory(
    playbook: &mut Playbook,
    batch: &DeltaBatch,
    options: &ApplyOptions,
    now: &str,
) -> Result<MemoryOutcome, DeltaError> {
    batch.validate_shape()?;
    let head = head_of(playbook);
    let rows = MemoryRows::new(playbook);
    let mut applier = Applier::new(rows, head, now.to_string());
    let refused = match applier.apply_batch(batch, options.sections) {
        Ok(()) => None,
        Err(ApplyError::Refused(e)) => Some(e),
        Err(ApplyError::Rows(never)) => match never {},
    };
    let applied = applier.finish();
    if let Some(error) = refused {
        let Applied {
            mut rows, changes, ..
        } = applied;
        rows.undo(&changes);
        return Err(error);
    }
    let summary = applied.summary();
    let added = applied.added();
    let Applied {
        changes,
        next_bullet_number,
        next_position,
        sections,
        ..
    } = applied;
    playbook.next_bullet_number = next_bullet_number;
    playbook.next_position = next_position;
    let (removed, active): (Vec<Section>, Vec<Section>) =
        sections.into_iter().partition(|s| s.removed);
    playbook.sections = active;
    playbook.removed_sections = removed;
    // no longer the playbook of a stored revision
    playbook.revision = None;
    playbook.sort();
    Ok(MemoryOutcome {
        changes,
        added,
        summary,
    })
}

/// The rules' view of a playbook in memory. A playbook read from a file knows no order-key
/// counter; it then starts past every key the playbook holds.
fn head_of(playbook: &Playbook) -> Head {
    let sections: Vec<Section> = playbook
        .sections
        .iter()
        .chain(&playbook.removed_sections)
        .cloned()
        .collect();
    let past_keys = sections
        .iter()
        .map(|s| s.position)
        .chain(playbook.bullets.iter().map(|b| b.position))
        .max()
        .map_or(1, |p| p + 1);
    // Likewise the id counter is past every id of the `{slug}-{n}` form, so a fresh id is unused.
    let past_ids = playbook
        .bullets
        .iter()
        .filter_map(|b| parse_bullet_id(&b.id).map(|(_, n)| n.saturating_add(1)))
        .max()
        .unwrap_or(1);
    Head {
        name: playbook.name.clone(),
        next_bullet_number: playbook.next_bullet_number.max(past_ids),
        next_position: playbook.next_position.max(past_keys),
        sections,
    }
}

/// Bullets by id over the playbook's list; sections live in the applier until it finishes.
struct MemoryRows<'a> {
    playbook: &'a mut Playbook,
    index: HashMap<String, usize>,
}

impl<'a> MemoryRows<'a> {
    fn new(playbook: &'a mut Playbook) -> Self {
        let index = playbook
            .bullets
            .iter()
            .enumerate()
            .map(|(i, b)| (b.id.clone(), i))
            .collect();
        MemoryRows { playbook, index }
    }

    fn rename_bullets(&mut self, from: &str, to: &str) {
        for b in self
            .playbook
            .bullets
            .iter_mut()
            .filter(|b| b.section == from)
        {
            b.section = to.to_string();
        }
    }

    /// Puts every recorded state back, newest first: the playbook's bullets are as before.
    fn undo(&mut self, changes: &[(Option<usize>, Change)]) {
        for (_, change) in changes.iter().rev() {
            match change {
                Change::Bullet { id, before, .. } => match before {
                    Some(b) => self.put(b.clone()),
                    None => self.remove(id),
                },
                Change::Section {
                    before: Some(b),
                    after: Some(a),
                    ..
                } if a.name != b.name => self.rename_bullets(&a.name, &b.name),
                Change::Section { .. } => {}
            }
        }
    }

    fn put(&mut self, bullet: Bullet) {
        match self.index.get(&bullet.id) {
            Some(&i) => self.playbook.bullets[i] = bullet,
            None => {
                self.index
                    .insert(bullet.id.clone(), self.playbook.bullets.len());
                self.playbook.bullets.push(bullet);
            }
        }
    }

    fn remove(&mut self, id: &str) {
        if let Some(i) = self.index.remove(id) {
            self.playbook.bullets.swap_remove(i);
            if let Some(moved) = self.playbook.bullets.get(i) {
                self.index.insert(moved.id.clone(), i);
            }
        }
    }
}

impl PlaybookRows for MemoryRows<'_> {
    type Error = Infallible;

    fn bullet(&mut self, id: &str) -> Result<Option<Bullet>, Infallible> {
        Ok(self
            .index
            .get(id)
            .map(|&i| self.playbook.bullets[i].clone()))
    }

    fn put_bullet(&mut self, bullet: &Bullet, new: bool) -> Result<(), Infallible> {
        debug_assert!(!new || !self.index.contains_key(&bullet.id));
        self.put(bullet.clone());
        Ok(())
    }

    fn delete_bullet(&mut self, id: &str) -> Result<(), Infallible> {
        self.remove(id);
        Ok(())
    }

    fn active_ids_in(&mut self, section: &str) -> Result<Vec<String>, Infallible> {
        let mut found: Vec<&Bullet> = self
            .playbook
            .bullets
            .iter()
            .filter(|b| b.section == section && b.is_active())
            .collect();
        found.sort_by_key(|b| b.position);
        Ok(found.into_iter().map(|b| b.id.clone()).collect())
    }

    fn active_with_content(
        &mut self,
        section: &str,
        content: &str,
    ) -> Result<Option<String>, Infallible> {
        Ok(self
            .playbook
            .bullets
            .iter()
            .find(|b| b.section == section && b.is_active() && b.content == content)
            .map(|b| b.id.clone()))
    }

    fn section_has_bullets(&mut self, section: &str) -> Result<bool, Infallible> {
        Ok(self.playbook.bullets.iter().any(|b| b.section == section))
    }

    fn insert_section(&mut self, _: &Section) -> Result<(), Infallible> {
        Ok(())
    }

    fn update_section(&mut self, name: &str, section: &Section) -> Result<(), Infallible> {
        if section.name != name {
            self.rename_bullets(name, &section.name);
        }
        Ok(())
    }

    fn delete_section(&mut self, _: &str) -> Result<(), Infallible> {
        Ok(())
    }
}
