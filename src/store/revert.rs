//! Revert: a new revision that applies the exact inverse of an earlier one.
//!
//! Each recorded change is undone in reverse order: a bullet goes back to its `before` state (deleted
//! if it did not exist), counters move by the inverse of the recorded increment, a created section is
//! deleted once empty, a renamed, moved or removed section gets its old state back. If a later
//! revision touched the same bullet or section, the revert is refused with the names of both, unless
//! forced. Either way only the fields this revision changed go back to their old values, and counters
//! lose only this revision's increments, so later changes to other fields are kept.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, params};

use super::rows::{OP_AFTER, OP_BEFORE, SECTION_COLUMNS, load_changes, section_from_row};
use super::writer;
use super::{Result, Store, StoreError, classify};
use crate::delta::{ApplyOutcome, Change, DeltaBatch, Source};
use crate::playbook::{Bullet, Section};

fn counter(current: u64, before: u64, after: u64) -> u64 {
    let v = i128::from(current) + i128::from(before) - i128::from(after);
    v.clamp(0, i128::from(i64::MAX)) as u64
}

impl Store {
    /// Reverts revision `id` (see the module docs). `author` is recorded on the new revision.
    /// The newest revision of `playbook` made by hand (its batch id starting with `prefix`) that no
    /// revision has reverted yet.
    pub fn last_hand_edit(&self, playbook: &str, prefix: &str) -> Result<Option<i64>> {
        let id = super::rows::playbook_id(&self.conn, playbook)?;
        Ok(self
            .conn
            .query_row(
                "SELECT r.id FROM revisions r
                 WHERE r.playbook_id = ?1 AND r.source = 'human' AND substr(r.batch_id, 1, length(?2)) = ?2
                   AND NOT EXISTS (SELECT 1 FROM revisions x WHERE x.reverts = r.id)
                 ORDER BY r.id DESC LIMIT 1",
                params![id, prefix],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn revert(&mut self, id: i64, force: bool, author: Option<&str>) -> Result<ApplyOutcome> {
        let tx = self.begin()?;
        let (playbook_id, previous_reverts): (i64, i64) = tx
            .query_row(
                "SELECT playbook_id, (SELECT count(*) FROM revisions x WHERE x.reverts = r.id) FROM revisions r WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or(StoreError::UnknownRevision(id))?;
        let changes = load_changes(&tx, id)?;
        if !force {
            let conflicts = later_changes(&tx, playbook_id, id, &changes)?;
            if !conflicts.is_empty() {
                return Err(StoreError::RevertConflict {
                    revision: id,
                    detail: format!("{}; use --force to revert anyway", conflicts.join("; ")),
                });
            }
        }
        let mut batch = DeltaBatch::new(
            format!("revert-{id}-{}", previous_reverts + 1),
            Source::Revert,
            Vec::new(),
        )
        .with_reason(format!(
            "revert of revision {id}{}",
            if force { " (forced)" } else { "" }
        ));
        batch.author = author.map(str::to_string);
        let mut writer = writer::begin(&tx, playbook_id, &batch, Some(id))?;
        let mut renames: HashMap<String, Option<String>> = HashMap::new();
        // reverted before, or forced past conflicts: what is already undone is not written again
        let again = force || previous_reverts > 0;
        for change in changes.iter().rev() {
            match change {
                Change::Bullet {
                    id: bullet_id,
                    before,
                    after,
                } => {
                    let current = writer.load_bullet(bullet_id)?;
                    let mut target = before
                        .as_ref()
                        .map(|b| restored(b, current.as_ref(), after.as_ref(), &writer.now));
                    // A bullet going back to a section renamed since goes to it by its new name
                    // (looked up once per old name: a revert may move thousands of bullets back).
                    if let Some(t) = target.as_mut()
                        && writer.section(&t.section).is_none()
                    {
                        if !renames.contains_key(&t.section) {
                            let now = renamed_since(&tx, playbook_id, id, &t.section)?;
                            renames.insert(t.section.clone(), now);
                        }
                        if let Some(Some(now)) = renames.get(&t.section)
                            && writer.section(now).is_some()
                        {
                            t.section.clone_from(now);
                        }
                    }
                    // already as it should be (its time stamp aside): nothing to write, when
                    // the revision was reverted before or the revert is forced
                    let unchanged = again
                        && match (&current, &target) {
                            (Some(c), Some(t)) => {
                                let mut t = t.clone();
                                t.updated_at.clone_from(&c.updated_at);
                                *c == t
                            }
                            (None, None) => true,
                            _ => false,
                        };
                    if unchanged {
                        continue;
                    }
                    match &target {
                        Some(t) => {
                            writer.ensure_section_for(&t.section)?;
                            writer.write_bullet(t)?;
                        }
                        None => writer.delete_bullet(bullet_id)?,
                    }
                    if current != target {
                        writer.changes.push((
                            None,
                            Change::Bullet {
                                id: bullet_id.clone(),
                                before: current,
                                after: target,
                            },
                        ));
                    }
                }
                Change::Section {
                    name, before: None, ..
                } => {
                    if writer.section_has_bullets(name)? {
                        if !force {
                            return Err(StoreError::RevertConflict {
                                revision: id,
                                detail: format!(
                                    "section '{name}' was created by it but holds bullets added later; use --force to keep the section"
                                ),
                            });
                        }
                    } else {
                        writer.delete_section(name)?;
                    }
                }
                Change::Section {
                    name,
                    before: Some(section),
                    after: None,
                } => {
                    if writer.section(name).is_none() {
                        writer.create_section(
                            None,
                            name,
                            Some(&section.slug),
                            Some(section.position),
                        )?;
                    }
                }
                Change::Section {
                    before: Some(before),
                    after: Some(after),
                    ..
                } => {
                    // Renamed, moved, removed or brought back: the row goes back to its old state.
                    if before.name != after.name && writer.section(&before.name).is_some() {
                        return Err(StoreError::RevertConflict {
                            revision: id,
                            detail: format!(
                                "it renamed section '{}' to '{}', and a section named '{}' exists again",
                                before.name, after.name, before.name
                            ),
                        });
                    }
                    let current = writer.section(&after.name).cloned();
                    if let Some(current) = current {
                        if current != *before {
                            writer.set_section(None, &after.name, before.clone())?;
                        }
                    } else if writer.section(&before.name).is_none() {
                        writer.create_section(
                            None,
                            &before.name,
                            Some(&before.slug),
                            Some(before.position),
                        )?;
                    }
                }
            }
        }
        let applied = writer.finish();
        if again && applied.changes.is_empty() {
            // nothing left to undo (reverted before, or changed back by hand): no empty revision
            return Err(StoreError::RevertConflict {
                revision: id,
                detail: "the playbook already is as it was before it; nothing to revert, nothing written"
                    .into(),
            });
        }
        let (revision, summary) = writer::finish(applied)?;
        tx.commit().map_err(classify)?;
        Ok(ApplyOutcome::Applied {
            revision,
            added: Vec::new(),
            summary,
        })
    }
}

/// The name a section called `name` just after revision `id` carries now, if later revisions renamed
/// it (following every rename in order); `None` if none did.
fn renamed_since(
    tx: &rusqlite::Transaction<'_>,
    playbook_id: i64,
    id: i64,
    name: &str,
) -> Result<Option<String>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {OP_BEFORE}, {OP_AFTER} FROM revision_ops o JOIN revisions r ON r.id = o.revision_id
          WHERE r.playbook_id = ?1 AND o.revision_id > ?2 AND o.kind = 'section'
            AND o.before IS NOT NULL AND o.after IS NOT NULL
          ORDER BY o.revision_id, o.idx"
    ))?;
    let rows = stmt.query_map(params![playbook_id, id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut current = name.to_string();
    for row in rows {
        let (before, after) = row?;
        let before: Section = serde_json::from_str(&before)?;
        let after: Section = serde_json::from_str(&after)?;
        if before.name == current && after.name != current {
            current = after.name;
        }
    }
    Ok((current != name).then_some(current))
}

/// The state a bullet returns to: each field this revision changed goes back to `before`, the
/// fields it left alone keep their current value (so a section renamed since is kept), and counters
/// move by the inverse of this revision's increment. With nothing changed since, this is `before`.
fn restored(
    before: &Bullet,
    current: Option<&Bullet>,
    after: Option<&Bullet>,
    now: &str,
) -> Bullet {
    let mut t = before.clone();
    if let (Some(cur), Some(aft)) = (current, after) {
        t.helpful = counter(cur.helpful, before.helpful, aft.helpful);
        t.harmful = counter(cur.harmful, before.harmful, aft.harmful);
        t.neutral = counter(cur.neutral, before.neutral, aft.neutral);
        if before.content == aft.content {
            t.content.clone_from(&cur.content);
        }
        if (&before.section, before.position) == (&aft.section, aft.position) {
            t.section.clone_from(&cur.section);
            t.position = cur.position;
        }
        if before.metadata == aft.metadata {
            t.metadata.clone_from(&cur.metadata);
        }
        if before.status == aft.status {
            t.status = cur.status;
        }
    }
    t.updated_at = now.to_string();
    t
}

/// What a later revision did to what revision `id` touched, as messages. Each bullet row carries the
/// last revision that wrote it; a bullet revision `id` left in place but that is gone now was deleted
/// by a later revert.
fn later_changes(
    tx: &rusqlite::Transaction<'_>,
    playbook_id: i64,
    id: i64,
    changes: &[Change],
) -> Result<Vec<String>> {
    // The newest revert of `id`, if it has not been reverted in turn, means `id` is undone already.
    let undone: Option<i64> = tx
        .query_row(
            "SELECT r.id FROM revisions r WHERE r.reverts = ?1
               AND NOT EXISTS (SELECT 1 FROM revisions x WHERE x.reverts = r.id)
             ORDER BY r.id DESC LIMIT 1",
            [id],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(rev) = undone {
        return Ok(vec![format!("it was already reverted by revision {rev}")]);
    }
    let mut last = tx.prepare_cached(
        "SELECT last_revision FROM bullets WHERE playbook_id = ?1 AND bullet_id = ?2",
    )?;
    let mut describe = tx.prepare_cached("SELECT source FROM revisions WHERE id = ?1")?;
    let mut messages = Vec::new();
    let mut section = tx.prepare_cached(&format!(
        "SELECT {SECTION_COLUMNS} FROM sections WHERE playbook_id = ?1 AND name = ?2"
    ))?;
    for (i, change) in changes.iter().enumerate() {
        let Change::Section { name, after, .. } = change else {
            continue;
        };
        // Only the last state this revision gave a section is what a later one may have changed.
        if changes[i + 1..].iter().any(|c| {
            matches!(c, Change::Section { name: n, before, .. }
                if n == name || before.as_ref().is_some_and(|b| &b.name == name))
        }) {
            continue;
        }
        let now: Option<Section> = section
            .query_row(params![playbook_id, name], |r| section_from_row(r, 0))
            .optional()?;
        match (after, now) {
            (Some(a), Some(n)) if *a != n => messages.push(format!(
                "section '{name}' was {} later",
                if n.removed != a.removed {
                    if n.removed { "removed" } else { "brought back" }
                } else {
                    "moved"
                }
            )),
            (Some(_), None) => {
                messages.push(format!("section '{name}' was renamed or deleted later"))
            }
            (None, Some(_)) => messages.push(format!("section '{name}' was created again later")),
            _ => {}
        }
    }
    for change in changes {
        let Change::Bullet {
            id: bullet_id,
            after,
            ..
        } = change
        else {
            continue;
        };
        let last_revision: Option<Option<i64>> = last
            .query_row(params![playbook_id, bullet_id], |r| r.get(0))
            .optional()?;
        let later = match (last_revision, after) {
            (Some(Some(rev)), _) if rev > id => rev,
            (None, Some(_)) => {
                messages.push(format!("bullet {bullet_id} was deleted later by a revert"));
                continue;
            }
            _ => continue,
        };
        let source: String = describe.query_row([later], |r| r.get(0))?;
        messages.push(format!(
            "bullet {bullet_id} was changed later by revision {later} ({source})"
        ));
    }
    Ok(messages)
}
