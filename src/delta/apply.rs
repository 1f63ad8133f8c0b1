//! Applying a batch: the one place that says what each op does to a playbook and when it is
//! refused. The rules ([`Applier`], with the ops themselves in `rules`) are written once against
//! [`PlaybookRows`], row-level access to a playbook being changed, which the store implements over
//! its write transaction and [`super::memory`] over a [`crate::playbook::Playbook`] in memory.

use serde::Serialize;

use super::{Change, ChangeSummary, DeltaBatch, DeltaError, DeltaOp};
use crate::playbook::{Bullet, Section, normalize_section_key, section_slug};

/// What to do with an ADD or UPDATE naming a section the playbook does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SectionPolicy {
    /// Create the section (appended after the others); the creation is part of the revision.
    Create,
    /// Reject the batch.
    #[default]
    Reject,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyOptions {
    pub sections: SectionPolicy,
}

impl ApplyOptions {
    pub fn create_sections() -> Self {
        ApplyOptions {
            sections: SectionPolicy::Create,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ApplyOutcome {
    Applied {
        revision: i64,
        added: Vec<String>,
        summary: ChangeSummary,
    },
    /// The batch id was applied before, as this revision; nothing was written now.
    AlreadyApplied { revision: i64 },
}

impl ApplyOutcome {
    pub fn revision(&self) -> i64 {
        match self {
            ApplyOutcome::Applied { revision, .. } | ApplyOutcome::AlreadyApplied { revision } => {
                *revision
            }
        }
    }
}

/// Row-level access to one playbook while it changes. The rules decide; these only read and
/// write. Section state (names, slugs, order, removal) is kept by the [`Applier`] and written
/// through here; bullets are read and written one at a time, so a 100k-bullet playbook in a
/// database is never loaded whole.
pub trait PlaybookRows {
    type Error;
    /// A bullet by id, active or removed.
    fn bullet(&mut self, id: &str) -> Result<Option<Bullet>, Self::Error>;
    /// Writes a bullet's whole state. With `new` the id must not exist yet: never a silent overwrite.
    fn put_bullet(&mut self, bullet: &Bullet, new: bool) -> Result<(), Self::Error>;
    /// Writes a bullet of which only the counters and `updated_at` changed (a store may write
    /// fewer columns, and touch fewer indexes, than [`PlaybookRows::put_bullet`]).
    fn put_counters(&mut self, bullet: &Bullet) -> Result<(), Self::Error> {
        self.put_bullet(bullet, false)
    }
    fn delete_bullet(&mut self, id: &str) -> Result<(), Self::Error>;
    /// Ids of a section's active bullets, in order.
    fn active_ids_in(&mut self, section: &str) -> Result<Vec<String>, Self::Error>;
    /// The active bullet of `section` whose content is exactly `content`, if there is one.
    fn active_with_content(
        &mut self,
        section: &str,
        content: &str,
    ) -> Result<Option<String>, Self::Error>;
    /// Whether the section holds any bullet, active or removed.
    fn section_has_bullets(&mut self, section: &str) -> Result<bool, Self::Error>;
    fn insert_section(&mut self, section: &Section) -> Result<(), Self::Error>;
    /// Gives the section now named `name` a new state; its bullets follow a rename.
    fn update_section(&mut self, name: &str, section: &Section) -> Result<(), Self::Error>;
    fn delete_section(&mut self, name: &str) -> Result<(), Self::Error>;
}

/// What the rules need of a playbook besides its rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Head {
    /// The playbook's name (for messages).
    pub name: String,
    /// The id counter: the next number handed out; never decreases.
    pub next_bullet_number: u64,
    /// The order-key counter for new bullets and sections.
    pub next_position: i64,
    /// Every section, removed ones too (a removed section keeps its name and slug).
    pub sections: Vec<Section>,
}

/// Why applying stopped: an op the rules refuse (nothing of the batch may be kept), or the rows
/// failed underneath.
#[derive(Debug)]
pub enum ApplyError<E> {
    Refused(DeltaError),
    Rows(E),
}

impl<E> From<E> for ApplyError<E> {
    fn from(e: E) -> Self {
        ApplyError::Rows(e)
    }
}

pub type Step<T, E> = Result<T, ApplyError<E>>;

/// What a finished application did.
#[derive(Debug)]
pub struct Applied<R> {
    pub rows: R,
    /// Changes in order, each with the index of the op that caused it (`None`: not an op's, e.g. a
    /// revert's).
    pub changes: Vec<(Option<usize>, Change)>,
    pub next_bullet_number: u64,
    pub next_position: i64,
    /// Every section after the changes, removed ones too.
    pub sections: Vec<Section>,
}

impl<R> Applied<R> {
    pub fn summary(&self) -> ChangeSummary {
        ChangeSummary::of(self.changes.iter().map(|(_, c)| c))
    }

    /// Ids of the bullets the changes created.
    pub fn added(&self) -> Vec<String> {
        self.changes
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
}

/// Applies ops to one playbook by the rules, recording every change with its before and after
/// state. The primitives (`create_section`, `write_bullet`, …) are public for revert, which
/// restores recorded states rather than applying ops.
pub struct Applier<R: PlaybookRows> {
    pub rows: R,
    pub playbook: String,
    /// The time stamped on what this application writes.
    pub now: String,
    pub(super) next_number: u64,
    pub(super) next_position: i64,
    sections: Vec<Section>,
    pub changes: Vec<(Option<usize>, Change)>,
}

impl<R: PlaybookRows> Applier<R> {
    pub fn new(rows: R, head: Head, now: String) -> Self {
        Applier {
            rows,
            playbook: head.name,
            now,
            next_number: head.next_bullet_number,
            next_position: head.next_position,
            sections: head.sections,
            changes: Vec::new(),
        }
    }

    /// Applies every op of `batch` in order; the first refusal names its op and stops.
    pub fn apply_batch(&mut self, batch: &DeltaBatch, policy: SectionPolicy) -> Step<(), R::Error> {
        for (index, op) in batch.operations.iter().enumerate() {
            self.apply_op(index, op, policy)?;
        }
        Ok(())
    }

    pub fn finish(self) -> Applied<R> {
        Applied {
            rows: self.rows,
            changes: self.changes,
            next_bullet_number: self.next_number,
            next_position: self.next_position,
            sections: self.sections,
        }
    }

    pub(super) fn refuse<T>(
        &self,
        index: usize,
        op: &DeltaOp,
        reason: impl Into<String>,
    ) -> Step<T, R::Error> {
        Err(ApplyError::Refused(DeltaError::op(index, op, reason)))
    }

    /// The exact-named section, removed or not.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// Finds a section by exact name, else by normalised name (case, punctuation) if that is unique.
    /// Removed sections are not found.
    pub fn find_section(&self, name: &str) -> Option<&Section> {
        if let Some(s) = self.section(name).filter(|s| !s.removed) {
            return Some(s);
        }
        let key = normalize_section_key(name);
        let mut matches = self
            .sections
            .iter()
            .filter(|s| !s.removed && normalize_section_key(&s.name) == key);
        match (matches.next(), matches.next()) {
            (Some(s), None) => Some(s),
            _ => None,
        }
    }

    /// Names of the active sections in display order (for messages).
    pub(super) fn section_names(&self) -> Vec<String> {
        self.ordered_sections()
            .into_iter()
            .map(|s| s.name)
            .collect()
    }

    /// Active sections in display order.
    pub(super) fn ordered_sections(&self) -> Vec<Section> {
        let mut list: Vec<Section> = self
            .sections
            .iter()
            .filter(|s| !s.removed)
            .cloned()
            .collect();
        list.sort_by_key(|s| s.position);
        list
    }

    pub(super) fn take_position(&mut self) -> i64 {
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
    ) -> Result<Section, R::Error> {
        let position = position.unwrap_or_else(|| self.take_position());
        if let Some(old) = self.section(name).filter(|s| s.removed).cloned() {
            let back = Section {
                removed: false,
                position,
                ..old
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
        self.rows.insert_section(&section)?;
        self.sections.push(section.clone());
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
    /// change keyed by the new name. Its bullets follow a rename.
    pub fn set_section(
        &mut self,
        op_index: Option<usize>,
        name: &str,
        new: Section,
    ) -> Result<(), R::Error> {
        let Some(i) = self.sections.iter().position(|s| s.name == name) else {
            // Callers look the section up first; a missing one is a bug, and writes nothing.
            debug_assert!(false, "section '{name}' missing");
            return Ok(());
        };
        self.rows.update_section(name, &new)?;
        let before = std::mem::replace(&mut self.sections[i], new.clone());
        self.changes.push((
            op_index,
            Change::Section {
                name: new.name.clone(),
                before: Some(before),
                after: Some(new),
            },
        ));
        Ok(())
    }

    /// Deletes a section (recorded as a change); callers make sure it holds no bullets.
    pub fn delete_section(&mut self, name: &str) -> Result<(), R::Error> {
        if let Some(i) = self.sections.iter().position(|s| s.name == name) {
            self.rows.delete_section(name)?;
            let before = self.sections.remove(i);
            self.changes.push((
                None,
                Change::Section {
                    name: name.to_string(),
                    before: Some(before),
                    after: None,
                },
            ));
        }
        Ok(())
    }

    pub fn section_has_bullets(&mut self, name: &str) -> Result<bool, R::Error> {
        if self.section(name).is_none() {
            return Ok(false);
        }
        self.rows.section_has_bullets(name)
    }

    /// Ensures a section named in a restored bullet state exists (recreating it at its old place).
    pub fn ensure_section_for(&mut self, section: &str) -> Result<(), R::Error> {
        if self.section(section).is_none_or(|s| s.removed) {
            self.create_section(None, section, None, None)?;
        }
        Ok(())
    }

    pub fn load_bullet(&mut self, id: &str) -> Result<Option<Bullet>, R::Error> {
        self.rows.bullet(id)
    }

    /// Writes a bullet's full state, inserting or replacing (revert).
    pub fn write_bullet(&mut self, bullet: &Bullet) -> Result<(), R::Error> {
        self.rows.put_bullet(bullet, false)
    }

    pub fn delete_bullet(&mut self, id: &str) -> Result<(), R::Error> {
        self.rows.delete_bullet(id)
    }

    /// Writes `after` and records the change from `before`.
    pub(super) fn record_bullet(
        &mut self,
        index: usize,
        before: Bullet,
        after: Bullet,
    ) -> Result<(), R::Error> {
        let counters_only = before.section == after.section
            && before.position == after.position
            && before.content == after.content
            && before.metadata == after.metadata
            && before.status == after.status
            && before.created_at == after.created_at;
        if counters_only {
            self.rows.put_counters(&after)?;
        } else {
            self.rows.put_bullet(&after, false)?;
        }
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
}
