//! A bullet's story: the revision (and queued batch, run) it came from, its counters after each
//! revision that touched it, and the runs that cited it.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::rows::{OP_AFTER, OP_BEFORE, column, playbook_id};
use super::{Result, Store, StoreError};
use crate::delta::Source;
use crate::playbook::BulletStatus;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CounterPoint {
    pub revision: i64,
    pub created_at: String,
    pub source: Source,
    pub helpful: u64,
    pub harmful: u64,
    pub neutral: u64,
    /// `None`: the revision deleted the row (a revert of the ADD that created it).
    pub status: Option<BulletStatus>,
    /// Who made the revision (a person who edited a curator's op is credited as its editor).
    pub author: Option<String>,
    /// What else changed: `content`, a move (`moved 'A' → 'B'`), `metadata`.
    pub changed: Vec<String>,
    /// The content after it, when it changed.
    pub content: Option<String>,
}

/// Where a bullet came from and what happened to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BulletStory {
    pub bullet_id: String,
    pub origin_revision: Option<i64>,
    /// The queued batch (with its samples and reflections) that proposed it, if it came from a run.
    pub origin_batch: Option<i64>,
    pub origin_run: Option<String>,
    pub history: Vec<CounterPoint>,
    /// Runs that cited it, with how many samples each.
    pub cited_by: Vec<(String, u64)>,
}

impl Store {
    /// A bullet's story: the revision (and queued batch, run) it came from, its counters after each
    /// revision that touched it, and the runs that cited it.
    pub fn bullet_story(&self, playbook: &str, bullet_id: &str) -> Result<BulletStory> {
        let pb = playbook_id(&self.conn, playbook)?;
        let mut stmt = self.conn.prepare(&format!(
            "SELECT r.id, r.created_at, r.source, o.before IS NULL, {OP_AFTER}, {OP_BEFORE}, r.author,
                    (SELECT b.decided_by FROM pending_batches b JOIN pending_ops po ON po.batch_id = b.id
                      WHERE b.revision_id = r.id AND po.status = 'edited'
                        AND (json_extract(po.edited_op, '$.bullet_id') = o.key
                             OR (o.before IS NULL AND json_extract(po.edited_op, '$.content') = json_extract(o.after, '$.content')))
                      LIMIT 1)
             FROM revision_ops o JOIN revisions r ON r.id = o.revision_id
             WHERE r.playbook_id = ?1 AND o.kind = 'bullet' AND o.key = ?2 ORDER BY r.id, o.idx"
        ))?;
        let mut origin = None;
        let mut history: Vec<CounterPoint> = Vec::new();
        let rows = stmt.query_map(params![pb, bullet_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                column::<Source>(r, 2, false)?,
                r.get::<_, bool>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, Option<String>>(7)?,
            ))
        })?;
        for row in rows {
            let (revision, created_at, source, created, after, before, author, editor) = row?;
            let before: Option<crate::playbook::Bullet> =
                before.and_then(|b| serde_json::from_str(&b).ok());
            if created && origin.is_none() {
                origin = Some(revision);
            }
            let after: Option<crate::playbook::Bullet> =
                after.and_then(|a| serde_json::from_str(&a).ok());
            let mut changed = Vec::new();
            let mut content = None;
            if let (Some(b), Some(a)) = (&before, &after) {
                if b.content != a.content {
                    changed.push("content".to_string());
                    content = Some(a.content.clone());
                }
                if b.section != a.section {
                    changed.push(format!("moved '{}' → '{}'", b.section, a.section));
                }
                if b.metadata != a.metadata {
                    changed.push("metadata".to_string());
                }
            }
            // an op a person edited before approving is theirs
            let author = editor
                .map(|e| format!("{e} (edited the proposal)"))
                .or(author);
            let point = match after {
                Some(b) => CounterPoint {
                    revision,
                    created_at,
                    source,
                    helpful: b.helpful,
                    harmful: b.harmful,
                    neutral: b.neutral,
                    status: Some(b.status),
                    author,
                    changed,
                    content,
                },
                None => CounterPoint {
                    revision,
                    created_at,
                    source,
                    helpful: 0,
                    harmful: 0,
                    neutral: 0,
                    status: None,
                    author,
                    changed,
                    content,
                },
            };
            match history.last_mut() {
                Some(last) if last.revision == revision => *last = point,
                _ => history.push(point),
            }
        }
        if history.is_empty() {
            return Err(StoreError::UnknownBullet {
                playbook: playbook.to_string(),
                id: bullet_id.to_string(),
            });
        }
        let (origin_batch, origin_run) = match origin {
            Some(rev) => self
                .conn
                .query_row(
                    "SELECT id, run_id FROM pending_batches WHERE revision_id = ?1",
                    [rev],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?)),
                )
                .optional()?
                .map_or((None, None), |(b, r)| (Some(b), r)),
            None => (None, None),
        };
        let mut stmt = self.conn.prepare(
            "SELECT run_id, count(*) FROM bullet_citations WHERE playbook_id = ?1 AND bullet_id = ?2 GROUP BY run_id ORDER BY run_id",
        )?;
        let cited_by = stmt
            .query_map(params![pb, bullet_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(BulletStory {
            bullet_id: bullet_id.to_string(),
            origin_revision: origin,
            origin_batch,
            origin_run,
            history,
            cited_by,
        })
    }
}

/// How often a bullet was in front of the Generator: samples answered since it was added, those
/// shown it (a sample shown the whole playbook counts), and those that cited it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Exposure {
    pub samples: u64,
    pub shown: u64,
    pub cited: u64,
}

impl Store {
    /// [`Exposure`] of bullet `id` over every run of `playbook` (reads each sample's shown list).
    pub fn bullet_exposure(&self, playbook: &str, id: &str) -> Result<Exposure> {
        let pb = playbook_id(&self.conn, playbook)?;
        let since: Option<String> = self
            .conn
            .query_row(
                "SELECT created_at FROM bullets WHERE playbook_id = ?1 AND bullet_id = ?2",
                params![pb, id],
                |r| r.get(0),
            )
            .optional()?;
        let Some(since) = since else {
            return Ok(Exposure::default());
        };
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {}, s.cited FROM run_samples s JOIN runs r ON r.id = s.run_id
             WHERE r.playbook_id = ?1 AND s.split != 'curator' AND s.created_at >= ?2",
            super::blobs::ids_sql("s.shown")
        ))?;
        let mut e = Exposure::default();
        let rows = stmt.query_map(params![pb, since], |r| {
            Ok((
                r.get::<_, Option<Vec<u8>>>(0)?,
                r.get::<_, Option<String>>(1)?,
            ))
        })?;
        let quoted = format!("\"{id}\"");
        for row in rows {
            let (shown, cited) = row?;
            e.samples += 1;
            match shown.and_then(|b| super::blobs::unpack_ids(&b)) {
                None => e.shown += 1,
                Some(ids) if ids.iter().any(|x| x == id) => e.shown += 1,
                Some(_) => {}
            }
            if cited.is_some_and(|c| c.contains(&quoted)) {
                e.cited += 1;
            }
        }
        Ok(e)
    }
}
