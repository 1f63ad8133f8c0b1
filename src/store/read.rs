//! Reading playbooks and revisions, and the playbook as it stood after any revision.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::rows::{
    BULLET_ROW_COLUMNS, OP_AFTER, OP_BEFORE, SECTION_COLUMNS, bullet_from_row, change_columns,
    column, load_changes, parse_change, playbook_id, section_from_row,
};
use super::{CACHE_KIB, Result, Store, StoreError};
use crate::delta::{Change, ChangeSummary, Replay, Source};
use crate::playbook::{Bullet, Playbook, Section};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlaybookSummary {
    pub id: i64,
    pub name: String,
    pub created_at: String,
    pub sections: u64,
    pub active_bullets: u64,
    pub removed_bullets: u64,
    pub revisions: u64,
    pub next_bullet_number: u64,
    pub token_budget: Option<u64>,
    /// The playbook's size in tokens, when asked for ([`Store::playbook_tokens`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Revision {
    pub id: i64,
    pub playbook: String,
    pub parent: Option<i64>,
    pub batch_id: String,
    pub source: Source,
    pub author: Option<String>,
    pub reason: Option<String>,
    pub reverts: Option<i64>,
    pub created_at: String,
    pub summary: ChangeSummary,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RevisionDetail {
    #[serde(flatten)]
    pub revision: Revision,
    pub changes: Vec<Change>,
}

const REVISION_COLUMNS: &str = "r.id, p.name, r.parent_id, r.batch_id, r.source, r.author, \
     coalesce(r.reason, (SELECT b.reasoning FROM pending_batches b WHERE r.batch_id LIKE 'queue-%' \
       AND b.id = CAST(substr(r.batch_id, 7) AS INTEGER) AND b.revision_id = r.id)), r.reverts, \
     r.created_at, r.n_added, r.n_changed, r.n_removed, r.n_tagged, r.n_sections";

fn revision_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Revision> {
    Ok(Revision {
        id: r.get(0)?,
        playbook: r.get(1)?,
        parent: r.get(2)?,
        batch_id: r.get(3)?,
        source: column(r, 4, false)?,
        author: r.get(5)?,
        reason: r.get(6)?,
        reverts: r.get(7)?,
        created_at: r.get(8)?,
        summary: ChangeSummary {
            added: r.get::<_, i64>(9)? as u64,
            changed: r.get::<_, i64>(10)? as u64,
            removed: r.get::<_, i64>(11)? as u64,
            tagged: r.get::<_, i64>(12)? as u64,
            sections: r.get::<_, i64>(13)? as u64,
        },
    })
}

/// [`Store::load_playbook`] inside a transaction (or on a plain connection).
pub(super) fn load_playbook_in(conn: &Connection, name: &str) -> Result<Playbook> {
    let id = playbook_id(conn, name)?;
    let (next, next_position, revision): (i64, i64, Option<i64>) = conn.query_row(
        "SELECT next_bullet_number, next_position, (SELECT max(id) FROM revisions WHERE playbook_id = ?1)
         FROM playbooks WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT id, {SECTION_COLUMNS} FROM sections WHERE playbook_id = ?1"
    ))?;
    let rows = stmt
        .query_map([id], |r| Ok((r.get::<_, i64>(0)?, section_from_row(r, 1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    // NOT INDEXED: a straight scan of the table beats one index probe plus one row lookup per bullet.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {BULLET_ROW_COLUMNS} FROM bullets b NOT INDEXED WHERE b.playbook_id = ?1"
    ))?;
    let count: i64 = conn.query_row(
        "SELECT count(*) FROM bullets WHERE playbook_id = ?1",
        [id],
        |r| r.get(0),
    )?;
    let mut bullets = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let mut cursor = stmt.query([id])?;
    while let Some(r) = cursor.next()? {
        let section_id: i64 = r.get(1)?;
        let mut b = bullet_from_row(r)?;
        if let Some((_, s)) = rows.iter().find(|(id, _)| *id == section_id) {
            b.section.clone_from(&s.name);
        }
        bullets.push(b);
    }
    let (removed_sections, sections) = rows.into_iter().map(|(_, s)| s).partition(|s| s.removed);
    let mut playbook = Playbook {
        name: name.to_string(),
        sections,
        bullets,
        next_bullet_number: next as u64,
        next_position,
        removed_sections,
        revision,
    };
    playbook.sort();
    Ok(playbook)
}

impl Store {
    pub fn playbooks(&self) -> Result<Vec<PlaybookSummary>> {
        self.require_latest()?;
        let mut stmt = self.conn.prepare(
            "SELECT p.id, p.name, p.created_at, p.next_bullet_number, p.token_budget,
                    (SELECT count(*) FROM sections s WHERE s.playbook_id = p.id AND s.status = 'active'),
                    (SELECT count(*) FROM bullets b WHERE b.playbook_id = p.id AND b.status = 'active'),
                    (SELECT count(*) FROM bullets b WHERE b.playbook_id = p.id AND b.status = 'removed'),
                    (SELECT count(*) FROM revisions r WHERE r.playbook_id = p.id)
             FROM playbooks p WHERE p.deleted_at IS NULL ORDER BY p.name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(PlaybookSummary {
                id: r.get(0)?,
                name: r.get(1)?,
                created_at: r.get(2)?,
                next_bullet_number: r.get::<_, i64>(3)? as u64,
                token_budget: r.get::<_, Option<i64>>(4)?.map(|b| b as u64),
                sections: r.get::<_, i64>(5)? as u64,
                active_bullets: r.get::<_, i64>(6)? as u64,
                removed_bullets: r.get::<_, i64>(7)? as u64,
                revisions: r.get::<_, i64>(8)? as u64,
                tokens: None,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Changes when anything the workbench shows changes: the newest revision, the newest queued batch,
    /// and how many queued ops are undecided. Cheap, for polling.
    /// SQLite's `PRAGMA data_version` on this connection: it changes when another connection
    /// (this process's or another's) commits, so an unchanged value means nothing was written
    /// since it was last read. One read of the WAL index; no table is touched.
    pub fn data_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    pub fn change_marker(&self) -> Result<(i64, i64, i64)> {
        self.require_latest()?;
        Ok(self.conn.query_row(
            "SELECT (SELECT coalesce(max(id), 0) FROM revisions), (SELECT coalesce(max(id), 0) FROM pending_batches),
                    (SELECT count(*) FROM pending_ops WHERE status = 'pending')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?)
    }

    /// Which of `ids` are active bullets of `playbook`: one index probe each, no playbook load.
    pub fn active_ids(
        &self,
        playbook: &str,
        ids: &[String],
    ) -> Result<std::collections::HashSet<String>> {
        self.require_latest()?;
        let pid = playbook_id(&self.conn, playbook)?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT 1 FROM bullets WHERE playbook_id = ?1 AND bullet_id = ?2 AND status = 'active'",
        )?;
        let mut found = std::collections::HashSet::new();
        for id in ids {
            if stmt.exists(rusqlite::params![pid, id])? {
                found.insert(id.clone());
            }
        }
        Ok(found)
    }

    /// Playbook names, sorted (cheap: no counting).
    pub fn playbook_names(&self) -> Result<Vec<String>> {
        self.require_latest()?;
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name FROM playbooks WHERE deleted_at IS NULL ORDER BY name")?;
        Ok(stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Resolves the playbook a command acts on: the given name, or the only playbook if there is one.
    /// The row id of the (not deleted) playbook called `name`: changes when it is deleted and
    /// another takes its name, so a cache can tell the two apart.
    pub fn playbook_key(&self, name: &str) -> Result<i64> {
        self.require_latest()?;
        playbook_id(&self.conn, name)
    }

    pub fn resolve_playbook(&self, name: Option<&str>) -> Result<String> {
        if let Some(name) = name {
            playbook_id(&self.conn, name)?;
            return Ok(name.to_string());
        }
        let all = self.playbook_names()?;
        match all.as_slice() {
            [only] => Ok(only.clone()),
            _ => Err(StoreError::UnknownPlaybook {
                name: "(none given)".into(),
                available: if all.is_empty() {
                    "none yet; create one with `ace playbook create NAME` or `ace playbook import FILE`".into()
                } else {
                    format!("{}; pick one with --playbook", all.join(", "))
                },
            }),
        }
    }

    /// Loads a whole playbook (sections and all bullets, active and removed) in display order, as of
    /// its newest revision (read in one transaction, so the two agree).
    pub fn load_playbook(&self, name: &str) -> Result<Playbook> {
        self.require_latest()?;
        let tx = self.conn.unchecked_transaction()?;
        let playbook = load_playbook_in(&tx, name)?;
        tx.commit()?;
        Ok(playbook)
    }

    /// Revisions, newest first; of one playbook or of all.
    pub fn revisions(&self, playbook: Option<&str>, limit: usize) -> Result<Vec<Revision>> {
        self.require_latest()?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = format!(
            "SELECT {REVISION_COLUMNS} FROM revisions r JOIN playbooks p ON p.id = r.playbook_id
             WHERE ?1 IS NULL OR p.name = ?1 ORDER BY r.id DESC LIMIT ?2"
        );
        if let Some(name) = playbook {
            playbook_id(&self.conn, name)?;
        }
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params![playbook, limit], revision_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    pub fn revision(&self, id: i64) -> Result<RevisionDetail> {
        self.require_latest()?;
        let sql = format!(
            "SELECT {REVISION_COLUMNS} FROM revisions r JOIN playbooks p ON p.id = r.playbook_id WHERE r.id = ?1"
        );
        let revision = self
            .conn
            .query_row(&sql, [id], revision_from_row)
            .optional()?
            .ok_or(StoreError::UnknownRevision(id))?;
        let changes = load_changes(&self.conn, id)?;
        Ok(RevisionDetail { revision, changes })
    }

    /// The playbook as it stood right after revision `id`, rebuilt by replaying the recorded states of
    /// every earlier revision of the same playbook.
    pub fn playbook_at(&self, id: i64) -> Result<Playbook> {
        let target = self.revision(id)?.revision;
        let mut stmt = self.conn.prepare(&format!(
            // a bullet's state before is not needed (a section's is never a patch of another op's)
            "SELECT o.kind, o.key, CASE WHEN o.kind = 'section' THEN o.before END, {OP_AFTER}
             FROM revision_ops o JOIN revisions r ON r.id = o.revision_id
             WHERE r.playbook_id = (SELECT playbook_id FROM revisions WHERE id = ?1) AND r.id <= ?1
             ORDER BY r.id, o.idx"
        ))?;
        let mut sections: HashMap<String, Section> = HashMap::new();
        let mut bullets: HashMap<String, Bullet> = HashMap::new();
        let rows = stmt.query_map([id], change_columns)?;
        for row in rows {
            // a bullet's state before is not read (NULL), a section's is (renames)
            let (kind, key, before, after) = row?;
            match parse_change(&kind, key, before.as_deref(), after.as_deref())? {
                Change::Section {
                    name,
                    before,
                    after: Some(s),
                } => {
                    // A rename: bullets point at the section row, so they carry the new name along.
                    if let Some(old) = before.filter(|b| b.name != s.name) {
                        sections.remove(&old.name);
                        for b in bullets.values_mut().filter(|b| b.section == old.name) {
                            b.section.clone_from(&s.name);
                        }
                    }
                    sections.insert(name, s);
                }
                Change::Section {
                    name, after: None, ..
                } => {
                    sections.remove(&name);
                }
                Change::Bullet {
                    id, after: Some(b), ..
                } => {
                    bullets.insert(id, b);
                }
                Change::Bullet {
                    id, after: None, ..
                } => {
                    bullets.remove(&id);
                }
            }
        }
        let next_bullet_number = bullets
            .keys()
            .filter_map(|id| crate::playbook::parse_bullet_id(id).map(|(_, n)| n + 1))
            .max()
            .unwrap_or(1);
        let (removed_sections, sections) = sections.into_values().partition(|s| s.removed);
        let mut playbook = Playbook {
            name: target.playbook,
            sections,
            bullets: bullets.into_values().collect(),
            next_bullet_number,
            // the order-key counter of that time is not recorded; applying ops to this copy
            // starts past every key in it
            next_position: 0,
            removed_sections,
            revision: Some(id),
        };
        playbook.sort();
        Ok(playbook)
    }
}

impl Store {
    /// Writes a consistent copy of the whole database to `path` (a new file), readable by its
    /// owner only.
    pub fn backup_to(&self, path: &Path) -> Result<()> {
        let target = path.to_str().ok_or_else(|| StoreError::Open {
            path: path.display().to_string(),
            detail: "the path is not valid UTF-8".into(),
        })?;
        self.conn.execute("VACUUM INTO ?1", [target])?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        Ok(())
    }

    /// [`Store::load_playbook`] through a small page cache: for a process that keeps the playbook
    /// in memory from then on (an adaptation run), the pages read need not be kept as well, nor
    /// interleave with the playbook in memory.
    pub fn load_playbook_lean(&self, name: &str) -> Result<Playbook> {
        self.conn
            .execute_batch("PRAGMA shrink_memory; PRAGMA cache_size=-1024;")?;
        let playbook = self.load_playbook(name);
        self.conn
            .execute_batch(&format!("PRAGMA cache_size=-{CACHE_KIB};"))?;
        playbook
    }

    /// What playbook `name` went through after revision `since`, if that is at most `limit` recorded
    /// changes (else `None`: reading it whole is the better way). The loop keeps its copy current
    /// with it instead of reading a large playbook whole after every batch.
    pub fn changes_since(&self, name: &str, since: i64, limit: usize) -> Result<Option<Replay>> {
        self.require_latest()?;
        let pb = playbook_id(&self.conn, name)?;
        let (head, next_number, next_position): (Option<i64>, i64, i64) = self.conn.query_row(
            "SELECT (SELECT max(id) FROM revisions WHERE playbook_id = p.id), next_bullet_number, next_position
             FROM playbooks p WHERE p.id = ?1",
            [pb],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let Some(head) = head.filter(|h| *h >= since) else {
            return Ok(None);
        };
        let count: i64 = self.conn.query_row(
            "SELECT count(*) FROM revision_ops o JOIN revisions r ON r.id = o.revision_id
             WHERE r.playbook_id = ?1 AND r.id > ?2 AND r.id <= ?3",
            params![pb, since, head],
            |r| r.get(0),
        )?;
        if count as usize > limit {
            return Ok(None);
        }
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT o.kind, o.key, {OP_BEFORE}, {OP_AFTER} FROM revision_ops o JOIN revisions r ON r.id = o.revision_id
             WHERE r.playbook_id = ?1 AND r.id > ?2 AND r.id <= ?3 ORDER BY r.id, o.idx"
        ))?;
        let mut changes = Vec::with_capacity(count as usize);
        for row in stmt.query_map(params![pb, since, head], change_columns)? {
            let (kind, key, before, after) = row?;
            // a bullet's before state is not needed; a section's is (renames)
            let before = if kind == "section" { before } else { None };
            changes.push(parse_change(
                &kind,
                key,
                before.as_deref(),
                after.as_deref(),
            )?);
        }
        Ok(Some(Replay {
            head,
            changes,
            next_bullet_number: next_number as u64,
            next_position,
        }))
    }
}
