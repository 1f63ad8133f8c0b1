//! The SQLite side of applying: [`SqlRows`] gives the core's rules (`delta::Applier`) row-level
//! access to one playbook inside a write transaction, and a revision is opened and closed around
//! them. Bullets are read and written one index probe at a time, so a 100k-bullet playbook is
//! never loaded to change a few.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;
use serde_json::Value;

use super::rows::{BULLET_ROW_COLUMNS, SECTION_COLUMNS, bullet_from_row, section_from_row};
use super::{Result, StoreError, now};
use crate::delta::{Applied, Applier, Change, ChangeSummary, DeltaBatch, Head, PlaybookRows};
use crate::playbook::{Bullet, Section};

/// One playbook's rows inside a write transaction, stamped with the revision being written.
pub(super) struct SqlRows<'t> {
    tx: &'t Transaction<'t>,
    playbook_id: i64,
    /// The revision this transaction writes: every bullet row written carries it (`last_revision`).
    pub revision: i64,
    /// Row ids of the playbook's sections by name (removed ones too).
    section_ids: HashMap<String, i64>,
}

/// The applier over a write transaction.
pub(super) type Writer<'t> = Applier<SqlRows<'t>>;

/// Opens a revision for `batch` on playbook `playbook_id` (its row is inserted now, so its id can
/// be stamped on what it writes) and returns the applier to write it with.
pub(super) fn begin<'t>(
    tx: &'t Transaction<'t>,
    playbook_id: i64,
    batch: &DeltaBatch,
    reverts: Option<i64>,
) -> Result<Writer<'t>> {
    let (name, next_number, next_position): (String, i64, i64) = tx.query_row(
        "SELECT name, next_bullet_number, next_position FROM playbooks WHERE id = ?1",
        [playbook_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT id, {SECTION_COLUMNS} FROM sections WHERE playbook_id = ?1"
    ))?;
    let rows = stmt
        .query_map([playbook_id], |r| {
            Ok((r.get::<_, i64>(0)?, section_from_row(r, 1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let now = now(tx)?;
    let parent: Option<i64> = tx.query_row(
        "SELECT max(id) FROM revisions WHERE playbook_id = ?1",
        [playbook_id],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO revisions (playbook_id, parent_id, batch_id, source, author, reason, reverts, created_at, ops_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![playbook_id, parent, batch.id, batch.source.as_str(), batch.author, batch.reason, reverts, now, batch.ops_hash()],
    )?;
    let rows_of = SqlRows {
        tx,
        playbook_id,
        revision: tx.last_insert_rowid(),
        section_ids: rows.iter().map(|(id, s)| (s.name.clone(), *id)).collect(),
    };
    let head = Head {
        name,
        next_bullet_number: next_number as u64,
        next_position,
        sections: rows.into_iter().map(|(_, s)| s).collect(),
    };
    Ok(Applier::new(rows_of, head, now))
}

/// Closes the revision: its counts, its changes (full before and after states, which make revert
/// and time travel exact) and the playbook's counters. Returns the revision id and its summary.
pub(super) fn finish(applied: Applied<SqlRows<'_>>) -> Result<(i64, ChangeSummary)> {
    let summary = applied.summary();
    let rows = &applied.rows;
    let revision = rows.revision;
    rows.tx.execute(
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
    let mut stmt = rows.tx.prepare_cached(
        "INSERT INTO revision_ops (revision_id, idx, kind, key, op_index, before, after) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for (idx, (op_index, change)) in applied.changes.iter().enumerate() {
        let op_index = op_index.map(|i| i as i64);
        let (before, after) = match change {
            Change::Bullet {
                id, before, after, ..
            } => stored_states(before, after, || creation(rows.tx, rows.playbook_id, id))?,
            Change::Section { before, after, .. } => stored_states(before, after, || Ok(None))?,
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
    rows.tx.execute(
        "UPDATE playbooks SET next_bullet_number = ?2, next_position = ?3 WHERE id = ?1",
        params![
            rows.playbook_id,
            i64::try_from(applied.next_bullet_number).unwrap_or(i64::MAX),
            applied.next_position
        ],
    )?;
    Ok((revision, summary))
}

/// `new` as a JSON merge patch (RFC 7396) of `old`, marked with `mark` (e.g. `"~":1`, then any other
/// fields the reader needs), when that is shorter than `new` whole and makes it again exactly
/// (checked as SQLite's `json_patch` applies it). Readers take the marked fields off after
/// patching, so `old` must hold none of them.
pub(super) fn marked_patch(old: &Value, new: &Value, mark: &str, marks: &[&str]) -> Option<String> {
    let (Value::Object(old_fields), Value::Object(new_fields)) = (old, new) else {
        return None;
    };
    if marks
        .iter()
        .any(|m| old_fields.contains_key(*m) || new_fields.contains_key(*m))
    {
        return None;
    }
    let mut patch = serde_json::Map::new();
    for (key, value) in new_fields {
        if old_fields.get(key) != Some(value) {
            patch.insert(key.clone(), value.clone());
        }
    }
    for key in old_fields.keys() {
        if !new_fields.contains_key(key) {
            patch.insert(key.clone(), Value::Null);
        }
    }
    let body = serde_json::to_string(&patch).ok()?;
    let stored = format!(
        "{{{mark}{}{}",
        if patch.is_empty() { "" } else { "," },
        &body[1..]
    );
    // a patch this short is shorter than any state worth patching; else measure the whole
    if stored.len() > SHORT_PATCH && stored.len() >= serde_json::to_vec(new).ok()?.len() {
        return None;
    }
    // a patch setting no object and no null makes `new` again by construction (each differing
    // field replaced, each missing one removed); else it is applied and compared
    let plain = new_fields
        .iter()
        .filter(|(key, value)| old_fields.get(*key) != Some(*value))
        .all(|(_, value)| !value.is_null() && !value.is_object());
    if !plain {
        let mut made = old.clone();
        merge_patch(&mut made, &Value::Object(patch));
        if made != *new {
            return None;
        }
    }
    Some(stored)
}

/// A patch at most this long is taken without measuring the whole it stands for.
const SHORT_PATCH: usize = 48;

/// RFC 7396 merge patch, as SQLite's `json_patch` applies it: a patch object merges key by key
/// (objects recursively, `null` removes), anything else replaces.
pub(super) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(fields) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(into) = target {
        for (key, value) in fields {
            if value.is_null() {
                into.remove(key);
            } else {
                merge_patch(into.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Where a bullet's state was first recorded whole: the op that created it (its revision, index and
/// state after, which is never stored as a patch), if this playbook's history holds one.
fn creation(
    tx: &Transaction<'_>,
    playbook_id: i64,
    key: &str,
) -> Result<Option<(i64, i64, Value)>> {
    let found: Option<(i64, i64, String)> = tx
        .prepare_cached(
            // the values come through a subquery: a parameter compared in a WHERE that a partial
            // index answers makes SQLite prepare the statement again at every new value
            "WITH v(key, playbook) AS (SELECT ?1, ?2)
             SELECT o.revision_id, o.idx, o.after FROM revision_ops o JOIN revisions r ON r.id = o.revision_id
             WHERE o.key = (SELECT key FROM v) AND o.before IS NULL AND o.kind = 'bullet'
               AND r.playbook_id = (SELECT playbook FROM v)
             ORDER BY o.revision_id DESC, o.idx DESC LIMIT 1",
        )?
        .query_row(params![key, playbook_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    Ok(match found {
        Some((revision, idx, after_text)) => serde_json::from_str(&after_text)
            .ok()
            .map(|after| (revision, idx, after)),
        None => None,
    })
}

/// A change's states as stored, JSON: a bullet's state before as what differs from the state it was
/// created with (`{"~":2,"@":[revision, idx],…}`, see `rows::OP_BEFORE`), the state after as what
/// differs from the state before (`{"~":1,…}`, see `rows::OP_AFTER`), each only where that is
/// shorter and exact; else whole.
fn stored_states<T: Serialize>(
    before: &Option<T>,
    after: &Option<T>,
    created: impl FnOnce() -> Result<Option<(i64, i64, Value)>>,
) -> Result<(Option<String>, Option<String>)> {
    Ok(match (before, after) {
        (Some(before), Some(after)) => {
            let before = serde_json::to_value(before)?;
            let after = serde_json::to_value(after)?;
            let stored_after = match marked_patch(&before, &after, "\"~\":1", &["~"]) {
                Some(patch) => patch,
                None => serde_json::to_string(&after)?,
            };
            let stored_before = created()?
                .and_then(|(revision, idx, base)| {
                    marked_patch(
                        &base,
                        &before,
                        &format!("\"~\":2,\"@\":[{revision},{idx}]"),
                        &["~", "@"],
                    )
                })
                .map_or_else(|| serde_json::to_string(&before), Ok)?;
            (Some(stored_before), Some(stored_after))
        }
        _ => (
            before.as_ref().map(serde_json::to_string).transpose()?,
            after.as_ref().map(serde_json::to_string).transpose()?,
        ),
    })
}

impl SqlRows<'_> {
    fn section_id(&self, name: &str) -> Result<i64> {
        self.section_ids
            .get(name)
            .copied()
            .ok_or_else(|| StoreError::Migration(format!("internal: section '{name}' missing")))
    }

    fn section_name(&self, section_id: i64) -> String {
        self.section_ids
            .iter()
            .find(|(_, id)| **id == section_id)
            .map(|(name, _)| name.clone())
            .unwrap_or_default()
    }
}

impl PlaybookRows for SqlRows<'_> {
    type Error = StoreError;

    fn bullet(&mut self, id: &str) -> Result<Option<Bullet>> {
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
            bullet.section = self.section_name(section_id);
            bullet
        }))
    }

    fn put_bullet(&mut self, bullet: &Bullet, new: bool) -> Result<()> {
        let section_id = self.section_id(&bullet.section)?;
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
        // A new bullet is a plain INSERT: an id that exists after all fails on the unique index
        // rather than overwriting.
        let mut stmt = if new {
            self.tx.prepare_cached(INSERT)?
        } else {
            self.tx.prepare_cached(&format!("{INSERT}{UPSERT}"))?
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

    fn put_counters(&mut self, bullet: &Bullet) -> Result<()> {
        let changed = self
            .tx
            .prepare_cached(
                "UPDATE bullets SET helpful = ?3, harmful = ?4, neutral = ?5, updated_at = ?6, last_revision = ?7
                 WHERE playbook_id = ?1 AND bullet_id = ?2",
            )?
            .execute(params![
                self.playbook_id,
                bullet.id,
                bullet.helpful as i64,
                bullet.harmful as i64,
                bullet.neutral as i64,
                bullet.updated_at,
                self.revision,
            ])?;
        if changed == 1 {
            Ok(())
        } else {
            self.put_bullet(bullet, false)
        }
    }

    fn delete_bullet(&mut self, id: &str) -> Result<()> {
        let mut stmt = self
            .tx
            .prepare_cached("DELETE FROM bullets WHERE playbook_id = ?1 AND bullet_id = ?2")?;
        stmt.execute(params![self.playbook_id, id])?;
        Ok(())
    }

    fn active_ids_in(&mut self, section: &str) -> Result<Vec<String>> {
        let section_id = self.section_id(section)?;
        let mut stmt = self.tx.prepare_cached(
            "SELECT bullet_id FROM bullets WHERE section_id = ?1 AND status = 'active' ORDER BY position",
        )?;
        Ok(stmt
            .query_map([section_id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn active_with_content(&mut self, section: &str, content: &str) -> Result<Option<String>> {
        let section_id = self.section_id(section)?;
        // through the index on the content's first characters (schema 6)
        Ok(self
            .tx
            .prepare_cached(
                "SELECT bullet_id FROM bullets
                 WHERE section_id = ?1 AND status = 'active' AND substr(content, 1, 32) = substr(?2, 1, 32)
                   AND content = ?2",
            )?
            .query_row(params![section_id, content], |r| r.get(0))
            .optional()?)
    }

    fn section_has_bullets(&mut self, section: &str) -> Result<bool> {
        let section_id = self.section_id(section)?;
        Ok(self.tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM bullets WHERE section_id = ?1)",
            [section_id],
            |r| r.get(0),
        )?)
    }

    fn insert_section(&mut self, section: &Section) -> Result<()> {
        self.tx.execute(
            "INSERT INTO sections (playbook_id, name, slug, position) VALUES (?1, ?2, ?3, ?4)",
            params![
                self.playbook_id,
                section.name,
                section.slug,
                section.position
            ],
        )?;
        self.section_ids
            .insert(section.name.clone(), self.tx.last_insert_rowid());
        Ok(())
    }

    fn update_section(&mut self, name: &str, section: &Section) -> Result<()> {
        let id = self.section_id(name)?;
        self.tx.execute(
            "UPDATE sections SET name = ?2, slug = ?3, position = ?4, status = ?5 WHERE id = ?1",
            params![
                id,
                section.name,
                section.slug,
                section.position,
                if section.removed { "removed" } else { "active" }
            ],
        )?;
        self.section_ids.remove(name);
        self.section_ids.insert(section.name.clone(), id);
        Ok(())
    }

    fn delete_section(&mut self, name: &str) -> Result<()> {
        let id = self.section_id(name)?;
        self.tx
            .execute("DELETE FROM sections WHERE id = ?1", [id])?;
        self.section_ids.remove(name);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn made(old: &Value, stored: &str, marks: &[&str]) -> Value {
        let mut v = old.clone();
        merge_patch(&mut v, &serde_json::from_str(stored).unwrap());
        for m in marks {
            v.as_object_mut().unwrap().remove(*m);
        }
        v
    }

    #[test]
    fn a_patch_is_kept_only_when_it_makes_the_state_again() {
        let old = json!({"id": "s-00001", "content": "a long enough lesson to be worth a patch", "helpful": 1,
                         "metadata": {"a": 1, "b": 2}, "note": "x"});
        // counters and a removed field: plain, kept
        let new = json!({"id": "s-00001", "content": "a long enough lesson to be worth a patch", "helpful": 2,
                         "metadata": {"a": 1, "b": 2}});
        let stored = marked_patch(&old, &new, "\"~\":1", &["~"]).unwrap();
        assert_eq!(made(&old, &stored, &["~"]), new);
        // a nested object losing a field: merging would keep it, so no patch
        let mut nested = new.clone();
        nested["metadata"] = json!({"a": 1});
        assert_eq!(marked_patch(&old, &nested, "\"~\":1", &["~"]), None);
        // a nested object gaining one merges right: kept, and checked
        let mut gained = new.clone();
        gained["metadata"] = json!({"a": 1, "b": 2, "c": 3});
        let stored = marked_patch(&old, &gained, "\"~\":1", &["~"]).unwrap();
        assert_eq!(made(&old, &stored, &["~"]), gained);
        // a field set to null would be removed by the patch: no patch
        let mut null = new.clone();
        null["content"] = Value::Null;
        assert_eq!(marked_patch(&old, &null, "\"~\":1", &["~"]), None);
        // a state holding a mark's name is never patched
        let mut marked = new.clone();
        marked["~"] = json!(1);
        assert_eq!(marked_patch(&old, &marked, "\"~\":1", &["~"]), None);
        // a patch longer than a short mark and no shorter than the whole is not used
        let long = "y".repeat(60);
        assert_eq!(
            marked_patch(&json!({"b": 2}), &json!({ "a": long }), "\"~\":1", &["~"]),
            None
        );
    }
}
