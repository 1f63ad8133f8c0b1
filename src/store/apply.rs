//! Applying a delta batch: one `BEGIN IMMEDIATE` transaction, one revision.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;
use serde_json::{Map, Value};

use super::rows::{BULLET_ROW_COLUMNS, SECTION_COLUMNS, bullet_from_row, section_from_row};
use super::{Result, Store, StoreError, classify, now, validate_playbook_name};
use crate::delta::{
    AddOp, ApplyOptions, ApplyOutcome, Change, ChangeSummary, DeltaBatch, DeltaError, DeltaOp,
    SectionPolicy, Source, TagOp, UpdateOp,
};
use crate::playbook::{
    Bullet, BulletStatus, Section, format_bullet_id, normalize_section_key, parse_bullet_id,
    section_slug,
};

#[derive(Debug, Clone)]
pub(super) struct SectionRow {
    pub id: i64,
    pub section: Section,
}

/// The state of one playbook inside a write transaction.
pub(super) struct Writer<'t> {
    pub tx: &'t Transaction<'t>,
    pub playbook_id: i64,
    /// The revision this transaction writes (its row is inserted by `begin`, its counts by `finish`).
    pub revision: i64,
    pub playbook_name: String,
    pub now: String,
    next_number: u64,
    next_position: i64,
    sections: HashMap<String, SectionRow>,
    /// Changes in order, each with the index of the op that caused it.
    pub changes: Vec<(Option<usize>, Change)>,
}

impl<'t> Writer<'t> {
    pub fn begin(
        tx: &'t Transaction<'t>,
        playbook_id: i64,
        batch: &DeltaBatch,
        reverts: Option<i64>,
    ) -> Result<Self> {
        let (name, next_number, next_position): (String, i64, i64) = tx.query_row(
            "SELECT name, next_bullet_number, next_position FROM playbooks WHERE id = ?1",
            [playbook_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT id, {SECTION_COLUMNS} FROM sections WHERE playbook_id = ?1"
        ))?;
        let sections = stmt
            .query_map([playbook_id], |r| {
                Ok(SectionRow {
                    id: r.get(0)?,
                    section: section_from_row(r, 1)?,
                })
            })?
            .map(|r| r.map(|row| (row.section.name.clone(), row)))
            .collect::<rusqlite::Result<HashMap<_, _>>>()?;
        let now = now(tx)?;
        let parent: Option<i64> = tx.query_row(
            "SELECT max(id) FROM revisions WHERE playbook_id = ?1",
            [playbook_id],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO revisions (playbook_id, parent_id, batch_id, source, author, reason, reverts, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![playbook_id, parent, batch.id, batch.source.as_str(), batch.author, batch.reason, reverts, now],
        )?;
        Ok(Writer {
            tx,
            playbook_id,
            revision: tx.last_insert_rowid(),
            playbook_name: name,
            now,
            next_number: next_number as u64,
            next_position,
            sections,
            changes: Vec::new(),
        })
    }

    pub fn load_bullet(&self, id: &str) -> Result<Option<Bullet>> {
        // No JOIN: section names come from the in-memory map, which keeps this a single index probe.
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {BULLET_ROW_COLUMNS} FROM bullets b WHERE b.playbook_id = ?1 AND b.bullet_id = ?2"
        ))?;
        let row = stmt
            .query_row(params![self.playbook_id, id], |r| {
                Ok((r.get::<_, i64>(1)?, bullet_from_row(r)?))
            })
            .optional()?;
        Ok(row.map(|(section_id, mut bullet)| {
            bullet.section = self.section_name(section_id).unwrap_or_default();
            bullet
        }))
    }

    fn section_name(&self, section_id: i64) -> Option<String> {
        self.sections
            .values()
            .find(|row| row.id == section_id)
            .map(|row| row.section.name.clone())
    }

    /// Finds a section by exact name, else by normalised name (case, punctuation) if that is unique.
    /// Removed sections are not found.
    pub fn find_section(&self, name: &str) -> Option<&SectionRow> {
        if let Some(row) = self.sections.get(name).filter(|r| !r.section.removed) {
            return Some(row);
        }
        let key = normalize_section_key(name);
        let mut matches = self
            .sections
            .values()
            .filter(|row| !row.section.removed && normalize_section_key(&row.section.name) == key);
        match (matches.next(), matches.next()) {
            (Some(row), None) => Some(row),
            _ => None,
        }
    }

    fn take_position(&mut self) -> i64 {
        let p = self.next_position;
        self.next_position += 1;
        p
    }

    /// Creates a section (recorded as a change) and returns it. A removed section of the same name
    /// is brought back instead (at the end, or at `position`), keeping its slug.
    pub fn create_section(
        &mut self,
        op_index: Option<usize>,
        name: &str,
        slug: Option<&str>,
        position: Option<i64>,
    ) -> Result<Section> {
        let position = position.unwrap_or_else(|| self.take_position());
        if let Some(row) = self.sections.get(name).filter(|r| r.section.removed) {
            let back = Section {
                removed: false,
                position,
                ..row.section.clone()
            };
            self.set_section(op_index, name, back.clone())?;
            return Ok(back);
        }
        let section = Section {
            name: name.to_string(),
            slug: slug.map_or_else(|| section_slug(name), str::to_string),
            position,
            removed: false,
        };
        self.tx.execute(
            "INSERT INTO sections (playbook_id, name, slug, position) VALUES (?1, ?2, ?3, ?4)",
            params![
                self.playbook_id,
                section.name,
                section.slug,
                section.position
            ],
        )?;
        let id = self.tx.last_insert_rowid();
        self.sections.insert(
            section.name.clone(),
            SectionRow {
                id,
                section: section.clone(),
            },
        );
        self.changes.push((
            op_index,
            Change::Section {
                name: section.name.clone(),
                before: None,
                after: Some(section.clone()),
            },
        ));
        Ok(section)
    }

    /// Gives the section now named `name` a new state (name, slug, position, status), recorded as a
    /// change keyed by the new name. Its bullets follow a rename: they point at the row, not the name.
    pub fn set_section(&mut self, op_index: Option<usize>, name: &str, new: Section) -> Result<()> {
        let Some(row) = self.sections.remove(name) else {
            return Err(StoreError::Migration(format!(
                "internal: section '{name}' missing"
            )));
        };
        self.tx.execute(
            "UPDATE sections SET name = ?2, slug = ?3, position = ?4, status = ?5 WHERE id = ?1",
            params![
                row.id,
                new.name,
                new.slug,
                new.position,
                if new.removed { "removed" } else { "active" }
            ],
        )?;
        self.sections.insert(
            new.name.clone(),
            SectionRow {
                id: row.id,
                section: new.clone(),
            },
        );
        self.changes.push((
            op_index,
            Change::Section {
                name: new.name.clone(),
                before: Some(row.section),
                after: Some(new),
            },
        ));
        Ok(())
    }

    /// The exact-named section row, removed or not.
    pub fn section_row(&self, name: &str) -> Option<&SectionRow> {
        self.sections.get(name)
    }

    /// Deletes an empty section (recorded as a change).
    pub fn delete_section(&mut self, name: &str) -> Result<()> {
        if let Some(row) = self.sections.remove(name) {
            self.tx
                .execute("DELETE FROM sections WHERE id = ?1", [row.id])?;
            self.changes.push((
                None,
                Change::Section {
                    name: name.to_string(),
                    before: Some(row.section),
                    after: None,
                },
            ));
        }
        Ok(())
    }

    pub fn section_has_bullets(&self, name: &str) -> Result<bool> {
        let Some(row) = self.sections.get(name) else {
            return Ok(false);
        };
        Ok(self.tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM bullets WHERE section_id = ?1)",
            [row.id],
            |r| r.get(0),
        )?)
    }

    /// Resolves a section for an ADD / UPDATE, creating it if the policy allows.
    fn resolve_section(
        &mut self,
        index: usize,
        op: &DeltaOp,
        name: &str,
        policy: SectionPolicy,
    ) -> Result<Section> {
        if let Some(row) = self.find_section(name) {
            return Ok(row.section.clone());
        }
        match policy {
            SectionPolicy::Create => self.create_section(Some(index), name, None, None),
            SectionPolicy::Reject => {
                let known: Vec<&str> = self.sections.keys().map(String::as_str).collect();
                Err(self.reject(
                    index,
                    op,
                    format!(
                        "section '{name}' does not exist (sections: {})",
                        known.join(", ")
                    ),
                ))
            }
        }
    }

    fn reject(&self, index: usize, op: &DeltaOp, reason: impl Into<String>) -> StoreError {
        StoreError::Rejected {
            batch: String::new(),
            error: DeltaError::op(index, op, reason),
        }
    }

    /// Writes a bullet's full state: insert, or update if `upsert` and the id exists. Without `upsert`
    /// an existing id is a constraint error, never a silent overwrite.
    pub fn write_bullet(&mut self, bullet: &Bullet) -> Result<()> {
        self.store_bullet(bullet, true)
    }

    fn store_bullet(&mut self, bullet: &Bullet, upsert: bool) -> Result<()> {
        let section_id = match self.sections.get(&bullet.section) {
            Some(row) => row.id,
            None => {
                return Err(StoreError::Migration(format!(
                    "internal: section '{}' missing",
                    bullet.section
                )));
            }
        };
        let metadata = serde_json::to_string(&bullet.metadata)?;
        const INSERT: &str =
            "INSERT INTO bullets (playbook_id, bullet_id, section_id, position, content, helpful, \
             harmful, neutral, metadata, status, created_at, updated_at, last_revision)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
        const UPSERT: &str = " ON CONFLICT (playbook_id, bullet_id) DO UPDATE SET
               section_id = excluded.section_id, position = excluded.position, content = excluded.content,
               helpful = excluded.helpful, harmful = excluded.harmful, neutral = excluded.neutral,
               metadata = excluded.metadata, status = excluded.status, created_at = excluded.created_at,
               updated_at = excluded.updated_at, last_revision = excluded.last_revision";
        let mut stmt = if upsert {
            self.tx.prepare_cached(&format!("{INSERT}{UPSERT}"))?
        } else {
            self.tx.prepare_cached(INSERT)?
        };
        stmt.execute(params![
            self.playbook_id,
            bullet.id,
            section_id,
            bullet.position,
            bullet.content,
            bullet.helpful as i64,
            bullet.harmful as i64,
            bullet.neutral as i64,
            metadata,
            bullet.status.as_str(),
            bullet.created_at,
            bullet.updated_at,
            self.revision,
        ])?;
        Ok(())
    }

    pub fn delete_bullet(&mut self, id: &str) -> Result<()> {
        let mut stmt = self
            .tx
            .prepare_cached("DELETE FROM bullets WHERE playbook_id = ?1 AND bullet_id = ?2")?;
        stmt.execute(params![self.playbook_id, id])?;
        Ok(())
    }

    /// Ensures a section named in a restored bullet state exists (recreating it at its old place).
    pub fn ensure_section_for(&mut self, section: &str) -> Result<()> {
        if self
            .sections
            .get(section)
            .is_none_or(|row| row.section.removed)
        {
            self.create_section(None, section, None, None)?;
        }
        Ok(())
    }

    pub fn apply_op(
        &mut self,
        index: usize,
        op: &DeltaOp,
        policy: SectionPolicy,
    ) -> Result<Option<String>> {
        match op {
            DeltaOp::Add(add) => self.add(index, op, add, policy).map(Some),
            DeltaOp::Update(u) => self.update(index, op, u, policy).map(|_| None),
            DeltaOp::Tag(t) => self.tag(index, op, t).map(|_| None),
            DeltaOp::Remove { bullet_id } => {
                let before = self.existing_active(index, op, bullet_id)?;
                let mut after = before.clone();
                after.status = BulletStatus::Removed;
                after.updated_at = self.now.clone();
                self.record_bullet(index, before, after).map(|_| None)
            }
            DeltaOp::AddSection { section, slug } => {
                if self.find_section(section).is_some() {
                    return Err(self.reject(
                        index,
                        op,
                        format!("section '{section}' already exists"),
                    ));
                }
                self.create_section(Some(index), section, slug.as_deref(), None)
                    .map(|_| None)
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
        }
    }

    fn existing_section(&self, index: usize, op: &DeltaOp, name: &str) -> Result<Section> {
        match self.find_section(name) {
            Some(row) => Ok(row.section.clone()),
            None => Err(self.reject(
                index,
                op,
                format!(
                    "section '{name}' does not exist in playbook '{}'",
                    self.playbook_name
                ),
            )),
        }
    }

    fn rename_section(
        &mut self,
        index: usize,
        op: &DeltaOp,
        name: &str,
        new_name: &str,
    ) -> Result<()> {
        let current = self.existing_section(index, op, name)?;
        let new_name = new_name.trim();
        if let Some(other) = self.find_section(new_name)
            && other.section.name != current.name
        {
            let taken = other.section.name.clone();
            return Err(self.reject(index, op, format!("section '{taken}' already exists")));
        }
        if self
            .sections
            .get(new_name)
            .is_some_and(|r| r.section.removed)
        {
            return Err(self.reject(
                index,
                op,
                format!(
                    "a removed section is called '{new_name}' (it keeps removed bullets); choose another name or add that section back"
                ),
            ));
        }
        let renamed = Section {
            name: new_name.to_string(),
            ..current.clone()
        };
        self.set_section(Some(index), &current.name, renamed)
    }

    /// Active sections in display order.
    fn ordered_sections(&self) -> Vec<Section> {
        let mut list: Vec<Section> = self
            .sections
            .values()
            .filter(|r| !r.section.removed)
            .map(|r| r.section.clone())
            .collect();
        list.sort_by_key(|s| s.position);
        list
    }

    /// Moves a section to place `to`. The sections between its old and new place trade their order
    /// keys among themselves, so only they change (two for a move by one place), each recorded.
    fn move_section(&mut self, index: usize, op: &DeltaOp, name: &str, to: usize) -> Result<()> {
        let current = self.existing_section(index, op, name)?;
        let mut order = self.ordered_sections();
        if to >= order.len() {
            return Err(self.reject(
                index,
                op,
                format!(
                    "place {to} is past the last section (places 0 to {})",
                    order.len() - 1
                ),
            ));
        }
        let from = order
            .iter()
            .position(|s| s.name == current.name)
            .unwrap_or(0);
        if from == to {
            return Err(self.reject(
                index,
                op,
                format!("section '{}' is already at place {to}", current.name),
            ));
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
    fn remove_section(&mut self, index: usize, op: &DeltaOp, name: &str) -> Result<()> {
        let current = self.existing_section(index, op, name)?;
        let section_id = self.sections[&current.name].id;
        let ids: Vec<String> = {
            let mut stmt = self.tx.prepare_cached(
                "SELECT bullet_id FROM bullets WHERE section_id = ?1 AND status = 'active' ORDER BY position",
            )?;
            stmt.query_map([section_id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        for id in ids {
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
        self.set_section(Some(index), &current.name, removed)
    }

    fn existing_active(&self, index: usize, op: &DeltaOp, id: &str) -> Result<Bullet> {
        match self.load_bullet(id)? {
            None => Err(self.reject(
                index,
                op,
                format!(
                    "bullet {id} does not exist in playbook '{}'",
                    self.playbook_name
                ),
            )),
            Some(b) if !b.is_active() => {
                Err(self.reject(index, op, format!("bullet {id} is removed")))
            }
            Some(b) => Ok(b),
        }
    }

    fn record_bullet(&mut self, index: usize, before: Bullet, after: Bullet) -> Result<()> {
        self.write_bullet(&after)?;
        self.changes.push((
            Some(index),
            Change::Bullet {
                id: after.id.clone(),
                before: Some(before),
                after: Some(after),
            },
        ));
        Ok(())
    }

    fn add(
        &mut self,
        index: usize,
        op: &DeltaOp,
        add: &AddOp,
        policy: SectionPolicy,
    ) -> Result<String> {
        let section = self.resolve_section(index, op, &add.section, policy)?;
        let id = match &add.id {
            Some(id) => {
                if self.load_bullet(id)?.is_some() {
                    return Err(self.reject(index, op, format!("bullet id {id} already exists")));
                }
                if let Some((_, n)) = parse_bullet_id(id) {
                    self.next_number = self.next_number.max(n.saturating_add(1));
                }
                id.clone()
            }
            // The counter is always past every id of this form ever stored, so a fresh id is unused;
            // the plain INSERT below would fail on the unique index rather than overwrite if not.
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
        self.store_bullet(&bullet, false)?;
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
    ) -> Result<()> {
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
        self.record_bullet(index, before, after)
    }

    fn tag(&mut self, index: usize, op: &DeltaOp, t: &TagOp) -> Result<()> {
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
            _ => return Err(self.reject(index, op, "a counter would overflow")),
        }
        after.updated_at = self.now.clone();
        self.record_bullet(index, before, after)
    }

    /// Writes the revision row and its ops, and the playbook's counters. Returns the revision id.
    pub fn finish(self) -> Result<(i64, ChangeSummary)> {
        let summary = ChangeSummary::of(self.changes.iter().map(|(_, c)| c));
        let revision = self.revision;
        self.tx.execute(
            "UPDATE revisions SET n_added = ?2, n_changed = ?3, n_removed = ?4, n_tagged = ?5, n_sections = ?6
             WHERE id = ?1",
            params![
                revision,
                summary.added as i64,
                summary.changed as i64,
                summary.removed as i64,
                summary.tagged as i64,
                summary.sections as i64,
            ],
        )?;
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO revision_ops (revision_id, idx, kind, key, op_index, before, after) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for (idx, (op_index, change)) in self.changes.iter().enumerate() {
            let op_index = op_index.map(|i| i as i64);
            let (before, after) = match change {
                Change::Bullet { before, after, .. } => (to_json(before)?, to_json(after)?),
                Change::Section { before, after, .. } => (to_json(before)?, to_json(after)?),
            };
            stmt.execute(params![
                revision,
                idx as i64,
                change.kind(),
                change.key(),
                op_index,
                before,
                after
            ])?;
        }
        self.tx.execute(
            "UPDATE playbooks SET next_bullet_number = ?2, next_position = ?3 WHERE id = ?1",
            params![
                self.playbook_id,
                self.next_number as i64,
                self.next_position
            ],
        )?;
        Ok((revision, summary))
    }
}

fn to_json<T: Serialize>(v: &Option<T>) -> Result<Option<String>> {
    Ok(v.as_ref().map(serde_json::to_string).transpose()?)
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

fn added_ids(changes: &[(Option<usize>, Change)]) -> Vec<String> {
    changes
        .iter()
        .filter_map(|(_, c)| match c {
            Change::Bullet {
                id,
                before: None,
                after: Some(_),
            } => Some(id.clone()),
            _ => None,
        })
        .collect()
}

impl Store {
    pub(super) fn begin(&mut self) -> Result<Transaction<'_>> {
        self.require_latest()?;
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(classify)
    }

    /// Applies a batch to a playbook as one transaction and one revision. On any invalid op nothing is
    /// written and the error names the op. A batch id applied before is a no-op ([`ApplyOutcome::AlreadyApplied`]).
    pub fn apply(
        &mut self,
        playbook: &str,
        batch: &DeltaBatch,
        options: &ApplyOptions,
    ) -> Result<ApplyOutcome> {
        batch
            .validate_shape()
            .map_err(|error| StoreError::Rejected {
                batch: batch.id.clone(),
                error,
            })?;
        let tx = self.begin()?;
        let playbook_id = super::read::playbook_id(&tx, playbook)?;
        let outcome = apply_in(&tx, playbook_id, batch, options)?;
        tx.commit().map_err(classify)?;
        Ok(outcome)
    }

    /// Creates an empty playbook with the given sections (in order), as its first revision.
    pub fn create_playbook(&mut self, name: &str, sections: &[&str]) -> Result<i64> {
        let ops: Vec<DeltaOp> = sections
            .iter()
            .map(|s| DeltaOp::AddSection {
                section: (*s).to_string(),
                slug: None,
            })
            .collect();
        let batch = DeltaBatch::new("create", Source::Human, ops)
            .with_reason(format!("create playbook '{name}'"));
        if !sections.is_empty() {
            batch
                .validate_shape()
                .map_err(|error| StoreError::Rejected {
                    batch: batch.id.clone(),
                    error,
                })?;
        }
        let tx = self.begin()?;
        let id = insert_playbook(&tx, name)?;
        if !sections.is_empty() {
            apply_in(&tx, id, &batch, &ApplyOptions::default())?;
        }
        tx.commit().map_err(classify)?;
        Ok(id)
    }

    /// Creates playbook `name` and applies `batch` (source `import`) to it in one transaction: a bad
    /// batch leaves no playbook behind. The id counter ends at least at `next_bullet_number`.
    pub fn import_playbook(
        &mut self,
        name: &str,
        batch: &DeltaBatch,
        next_bullet_number: u64,
    ) -> Result<ApplyOutcome> {
        batch
            .validate_shape()
            .map_err(|error| StoreError::Rejected {
                batch: batch.id.clone(),
                error,
            })?;
        let tx = self.begin()?;
        let id = insert_playbook(&tx, name)?;
        let outcome = apply_in(&tx, id, batch, &ApplyOptions::create_sections())?;
        tx.execute(
            "UPDATE playbooks SET next_bullet_number = max(next_bullet_number, ?2) WHERE id = ?1",
            params![id, i64::try_from(next_bullet_number).unwrap_or(i64::MAX)],
        )?;
        tx.commit().map_err(classify)?;
        Ok(outcome)
    }
}

fn insert_playbook(tx: &Transaction<'_>, name: &str) -> Result<i64> {
    validate_playbook_name(name)?;
    let exists: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM playbooks WHERE name = ?1)",
        [name],
        |r| r.get(0),
    )?;
    if exists {
        return Err(StoreError::PlaybookExists(name.to_string()));
    }
    tx.execute(
        "INSERT INTO playbooks (name, created_at) VALUES (?1, ?2)",
        params![name, now(tx)?],
    )?;
    Ok(tx.last_insert_rowid())
}

pub(super) fn apply_in(
    tx: &Transaction<'_>,
    playbook_id: i64,
    batch: &DeltaBatch,
    options: &ApplyOptions,
) -> Result<ApplyOutcome> {
    let applied: Option<i64> = tx
        .query_row(
            "SELECT id FROM revisions WHERE playbook_id = ?1 AND batch_id = ?2",
            params![playbook_id, batch.id],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(revision) = applied {
        return Ok(ApplyOutcome::AlreadyApplied { revision });
    }
    let mut writer = Writer::begin(tx, playbook_id, batch, None)?;
    for (index, op) in batch.operations.iter().enumerate() {
        writer
            .apply_op(index, op, options.sections)
            .map_err(|e| match e {
                StoreError::Rejected { error, .. } => StoreError::Rejected {
                    batch: batch.id.clone(),
                    error,
                },
                other => other,
            })?;
    }
    let added = added_ids(&writer.changes);
    let (revision, summary) = writer.finish()?;
    Ok(ApplyOutcome::Applied {
        revision,
        added,
        summary,
    })
}
