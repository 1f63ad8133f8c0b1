//! What each op does, and when it is refused: ADD, UPDATE, TAG, REMOVE and the section ops. A new
//! op is one more arm in [`Applier::apply_op`] and its function here.

use serde_json::{Map, Value};

use super::apply::{Applier, ApplyError, PlaybookRows, SectionPolicy, Step};
use super::{AddOp, Change, DeltaOp, MergeOp, TagOp, UpdateOp};
use crate::playbook::{Bullet, BulletStatus, Section, format_bullet_id, parse_bullet_id};

impl<R: PlaybookRows> Applier<R> {
    /// Applies one op (the `index`-th of its batch). Returns the id of a bullet it added.
    pub fn apply_op(
        &mut self,
        index: usize,
        op: &DeltaOp,
        policy: SectionPolicy,
    ) -> Step<Option<String>, R::Error> {
        match op {
            DeltaOp::Add(add) => self.add(index, op, add, policy).map(Some),
            DeltaOp::Update(u) => self.update(index, op, u, policy).map(|_| None),
            DeltaOp::Tag(t) => self.tag(index, op, t).map(|_| None),
            DeltaOp::Remove { bullet_id } => {
                let before = self.existing_active(index, op, bullet_id)?;
                let mut after = before.clone();
                after.status = BulletStatus::Removed;
                after.updated_at = self.now.clone();
                Ok(self.record_bullet(index, before, after).map(|_| None)?)
            }
            DeltaOp::AddSection { section, slug } => {
                if self.find_section(section).is_some() {
                    return self.refuse(index, op, format!("section '{section}' already exists"));
                }
                self.create_section(Some(index), section, slug.as_deref(), None)?;
                Ok(None)
            }
            DeltaOp::RenameSection { section, new_name } => self
                .rename_section(index, op, section, new_name)
                .map(|_| None),
            DeltaOp::MoveSection { section, index: to } => {
                self.move_section(index, op, section, *to).map(|_| None)
            }
            DeltaOp::RemoveSection { section } => {
                self.remove_section(index, op, section).map(|_| None)
            }
            DeltaOp::Merge(m) => self.merge(index, op, m).map(|_| None),
        }
    }

    /// The kept bullet takes the duplicate's counters (or one helpful for an absorbed lesson) and
    /// the new content if any; the duplicate is removed, noting where it went.
    fn merge(&mut self, index: usize, op: &DeltaOp, m: &MergeOp) -> Step<(), R::Error> {
        let kept = self.existing_active(index, op, &m.bullet_id)?;
        let gone = match &m.duplicate {
            Some(id) => Some(self.existing_active(index, op, id)?),
            None => None,
        };
        let mut after = kept.clone();
        let (h, x, n) = match &gone {
            Some(g) => (g.helpful, g.harmful, g.neutral),
            None => (1, 0, 0),
        };
        let add = |a: u64, b: u64| a.checked_add(b).filter(|n| *n <= i64::MAX as u64);
        match (
            add(kept.helpful, h),
            add(kept.harmful, x),
            add(kept.neutral, n),
        ) {
            (Some(h), Some(x), Some(n)) => {
                (after.helpful, after.harmful, after.neutral) = (h, x, n)
            }
            _ => return self.refuse(index, op, "a counter would overflow"),
        }
        if let Some(content) = &m.content {
            after.content = content.trim().to_string();
        }
        after.updated_at = self.now.clone();
        self.record_bullet(index, kept, after)?;
        if let Some(before) = gone {
            let mut removed = before.clone();
            removed.status = BulletStatus::Removed;
            removed
                .metadata
                .insert("merged_into".into(), m.bullet_id.clone().into());
            removed.updated_at = self.now.clone();
            self.record_bullet(index, before, removed)?;
        }
        Ok(())
    }

    fn existing_section(&self, index: usize, op: &DeltaOp, name: &str) -> Step<Section, R::Error> {
        match self.find_section(name) {
            Some(s) => Ok(s.clone()),
            None => self.refuse(
                index,
                op,
                format!(
                    "section '{name}' does not exist in playbook '{}'",
                    self.playbook
                ),
            ),
        }
    }

    /// Resolves a section for an ADD / UPDATE, creating it if the policy allows.
    fn resolve_section(
        &mut self,
        index: usize,
        op: &DeltaOp,
        name: &str,
        policy: SectionPolicy,
    ) -> Step<Section, R::Error> {
        if let Some(s) = self.find_section(name) {
            return Ok(s.clone());
        }
        match policy {
            SectionPolicy::Create => Ok(self.create_section(Some(index), name, None, None)?),
            SectionPolicy::Reject => {
                let known = self.section_names().join(", ");
                self.refuse(
                    index,
                    op,
                    format!("section '{name}' does not exist (sections: {known})"),
                )
            }
        }
    }

    fn existing_active(&mut self, index: usize, op: &DeltaOp, id: &str) -> Step<Bullet, R::Error> {
        match self.load_bullet(id)? {
            None => {
                let reason = format!("bullet {id} does not exist in playbook '{}'", self.playbook);
                self.refuse(index, op, reason)
            }
            Some(b) if !b.is_active() => self.refuse(index, op, format!("bullet {id} is removed")),
            Some(b) => Ok(b),
        }
    }

    fn add(
        &mut self,
        index: usize,
        op: &DeltaOp,
        add: &AddOp,
        policy: SectionPolicy,
    ) -> Step<String, R::Error> {
        let section = self.resolve_section(index, op, &add.section, policy)?;
        // A lesson the section already holds word for word is never added twice, whoever
        // proposed it and whenever it is approved (two runs on one playbook learn the same thing).
        // An import (it names its ids) keeps a file's bullets as they are.
        if add.id.is_none()
            && let Some(existing) = self
                .rows
                .active_with_content(&section.name, add.content.trim())?
        {
            return Ok(existing);
        }
        let id = match &add.id {
            Some(id) => {
                if self.load_bullet(id)?.is_some() {
                    return self.refuse(index, op, format!("bullet id {id} already exists"));
                }
                if let Some((_, n)) = parse_bullet_id(id) {
                    self.next_number = self.next_number.max(n.saturating_add(1));
                }
                id.clone()
            }
            // The counter is always past every id of this form ever stored, so a fresh id is unused;
            // writing it as new fails rather than overwrites if not.
            None => {
                let id = format_bullet_id(&section.slug, self.next_number);
                self.next_number += 1;
                id
            }
        };
        let bullet = Bullet {
            id: id.clone(),
            section: section.name,
            content: add.content.trim().to_string(),
            helpful: add.helpful.unwrap_or(0),
            harmful: add.harmful.unwrap_or(0),
            neutral: add.neutral.unwrap_or(0),
            metadata: add.metadata.clone().unwrap_or_default(),
            status: add.status.unwrap_or_default(),
            position: self.take_position(),
            created_at: add.created_at.clone().unwrap_or_else(|| self.now.clone()),
            updated_at: add
                .updated_at
                .clone()
                .or_else(|| add.created_at.clone())
                .unwrap_or_else(|| self.now.clone()),
        };
        self.rows.put_bullet(&bullet, true)?;
        self.changes.push((
            Some(index),
            Change::Bullet {
                id: id.clone(),
                before: None,
                after: Some(bullet),
            },
        ));
        Ok(id)
    }

    fn update(
        &mut self,
        index: usize,
        op: &DeltaOp,
        u: &UpdateOp,
        policy: SectionPolicy,
    ) -> Step<(), R::Error> {
        let before = self.existing_active(index, op, &u.bullet_id)?;
        let mut after = before.clone();
        if let Some(content) = &u.content {
            after.content = content.trim().to_string();
        }
        if let Some(section) = &u.section {
            let section = self.resolve_section(index, op, section, policy)?;
            if section.name != before.section {
                after.section = section.name;
                after.position = self.take_position();
            }
        }
        if let Some(patch) = &u.metadata {
            merge_metadata(&mut after.metadata, patch);
        }
        after.updated_at = self.now.clone();
        Ok(self.record_bullet(index, before, after)?)
    }

    fn tag(&mut self, index: usize, op: &DeltaOp, t: &TagOp) -> Step<(), R::Error> {
        let before = self.existing_active(index, op, &t.bullet_id)?;
        let mut after = before.clone();
        let add = |a: u64, b: u64| a.checked_add(b).filter(|n| *n <= i64::MAX as u64);
        match (
            add(before.helpful, t.helpful),
            add(before.harmful, t.harmful),
            add(before.neutral, t.neutral),
        ) {
            (Some(h), Some(x), Some(n)) => {
                (after.helpful, after.harmful, after.neutral) = (h, x, n)
            }
            _ => return self.refuse(index, op, "a counter would overflow"),
        }
        after.updated_at = self.now.clone();
        Ok(self.record_bullet(index, before, after)?)
    }

    fn rename_section(
        &mut self,
        index: usize,
        op: &DeltaOp,
        name: &str,
        new_name: &str,
    ) -> Step<(), R::Error> {
        let current = self.existing_section(index, op, name)?;
        let new_name = new_name.trim();
        if let Some(other) = self.find_section(new_name)
            && other.name != current.name
        {
            let taken = other.name.clone();
            return self.refuse(index, op, format!("section '{taken}' already exists"));
        }
        if self.section(new_name).is_some_and(|s| s.removed) {
            return self.refuse(
                index,
                op,
                format!(
                    "a removed section is called '{new_name}' (it keeps removed bullets); choose another name or add that section back"
                ),
            );
        }
        let renamed = Section {
            name: new_name.to_string(),
            ..current.clone()
        };
        Ok(self.set_section(Some(index), &current.name, renamed)?)
    }

    /// Moves a section to place `to`. The sections between its old and new place trade their order
    /// keys among themselves, so only they change (two for a move by one place), each recorded.
    fn move_section(
        &mut self,
        index: usize,
        op: &DeltaOp,
        name: &str,
        to: usize,
    ) -> Step<(), R::Error> {
        let current = self.existing_section(index, op, name)?;
        let mut order = self.ordered_sections();
        if to >= order.len() {
            return self.refuse(
                index,
                op,
                format!(
                    "place {to} is past the last section (places 0 to {})",
                    order.len() - 1
                ),
            );
        }
        let from = order
            .iter()
            .position(|s| s.name == current.name)
            .unwrap_or(0);
        if from == to {
            return self.refuse(
                index,
                op,
                format!("section '{}' is already at place {to}", current.name),
            );
        }
        let (lo, hi) = (from.min(to), from.max(to));
        let keys: Vec<i64> = order[lo..=hi].iter().map(|s| s.position).collect();
        let moved = order.remove(from);
        order.insert(to, moved);
        for (section, key) in order[lo..=hi].iter().zip(keys) {
            if section.position != key {
                let renumbered = Section {
                    position: key,
                    ..section.clone()
                };
                self.set_section(Some(index), &section.name, renumbered)?;
            }
        }
        Ok(())
    }

    /// Soft-removes a section and every active bullet in it (each recorded), so a revert brings all
    /// of them back.
    fn remove_section(&mut self, index: usize, op: &DeltaOp, name: &str) -> Step<(), R::Error> {
        let current = self.existing_section(index, op, name)?;
        for id in self.rows.active_ids_in(&current.name)? {
            if let Some(before) = self.load_bullet(&id)? {
                let mut after = before.clone();
                after.status = BulletStatus::Removed;
                after.updated_at = self.now.clone();
                self.record_bullet(index, before, after)?;
            }
        }
        let removed = Section {
            removed: true,
            ..current.clone()
        };
        Ok(self.set_section(Some(index), &current.name, removed)?)
    }
}

/// Shallow merge: keys in `patch` replace those in `target`; a `null` value deletes the key.
pub fn merge_metadata(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        if v.is_null() {
            target.remove(k);
        } else {
            target.insert(k.clone(), v.clone());
        }
    }
}

impl<E: std::fmt::Display> std::fmt::Display for ApplyError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApplyError::Refused(e) => e.fmt(f),
            ApplyError::Rows(e) => e.fmt(f),
        }
    }
}
