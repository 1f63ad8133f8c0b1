//! A playbook's token budget (a setting, not playbook content) and its size in tokens, counted once
//! per revision: from the nearest revision already counted plus the recorded changes since, so a
//! large playbook is tokenised whole only once.

use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{OP_AFTER, OP_BEFORE, change_columns, parse_change, playbook_id};
use super::{Result, Store, StoreError, classify};
use crate::prompts::{change_cost, playbook_tokens};

/// Beyond this many changes since the nearest counted revision, counting the playbook whole is
/// cheaper than replaying them.
const REPLAY_LIMIT: i64 = 20_000;

/// What the revisions of playbook `id` after `from` up to `to` did to its size, in tokens.
pub(super) fn replay_changes(conn: &Connection, id: i64, from: i64, to: i64) -> Result<i64> {
    let mut stmt = conn.prepare_cached(
        &format!("SELECT o.kind, o.key, {OP_BEFORE}, {OP_AFTER} FROM revision_ops o JOIN revisions r ON r.id = o.revision_id
         WHERE r.playbook_id = ?1 AND r.id > ?2 AND r.id <= ?3 ORDER BY r.id, o.idx"),
    )?;
    let mut total = 0i64;
    for row in stmt.query_map(params![id, from, to], change_columns)? {
        let (kind, key, before, after) = row?;
        total += change_cost(&parse_change(
            &kind,
            key,
            before.as_deref(),
            after.as_deref(),
        )?);
    }
    Ok(total)
}

impl Store {
    /// The playbook's token budget, if it has one.
    pub fn token_budget(&self, playbook: &str) -> Result<Option<u64>> {
        self.require_latest()?;
        let id = playbook_id(&self.conn, playbook)?;
        let budget: Option<i64> = self.conn.query_row(
            "SELECT token_budget FROM playbooks WHERE id = ?1",
            [id],
            |r| r.get(0),
        )?;
        Ok(budget.map(|b| b as u64))
    }

    /// Sets (or, with `None`, clears) the playbook's token budget.
    pub fn set_token_budget(&mut self, playbook: &str, budget: Option<u64>) -> Result<()> {
        if budget == Some(0) {
            return Err(StoreError::Queue(
                "a token budget must be above 0 (use none to clear it)".into(),
            ));
        }
        let tx = self.begin()?;
        let id = playbook_id(&tx, playbook)?;
        let budget = budget.map(|b| i64::try_from(b).unwrap_or(i64::MAX));
        tx.execute(
            "UPDATE playbooks SET token_budget = ?2 WHERE id = ?1",
            params![id, budget],
        )?;
        tx.commit().map_err(classify)
    }

    /// The playbook's size in tokens as the generator sees it whole (see
    /// [`crate::prompts::playbook_tokens`]), as of its newest revision.
    pub fn playbook_tokens(&mut self, playbook: &str) -> Result<u64> {
        self.require_latest()?;
        let id = playbook_id(&self.conn, playbook)?;
        let head: Option<i64> = self.conn.query_row(
            "SELECT max(id) FROM revisions WHERE playbook_id = ?1",
            [id],
            |r| r.get(0),
        )?;
        let Some(head) = head else {
            return Ok(0);
        };
        let base: Option<(i64, i64)> = self
            .conn
            .query_row(
                "SELECT revision_id, tokens FROM playbook_tokens WHERE playbook_id = ?1 AND revision_id <= ?2
                 ORDER BY revision_id DESC LIMIT 1",
                params![id, head],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((revision, tokens)) = base
            && revision == head
        {
            return Ok(tokens as u64);
        }
        let replay = match base {
            Some((revision, _)) => {
                let n: i64 = self.conn.query_row(
                    "SELECT count(*) FROM revision_ops o JOIN revisions r ON r.id = o.revision_id
                     WHERE r.playbook_id = ?1 AND r.id > ?2 AND r.id <= ?3",
                    params![id, revision, head],
                    |r| r.get(0),
                )?;
                n <= REPLAY_LIMIT
            }
            None => false,
        };
        let tokens = match base {
            Some((revision, tokens)) if replay => {
                (tokens + replay_changes(&self.conn, id, revision, head)?).max(0) as u64
            }
            _ => {
                let whole = self.load_playbook(playbook)?;
                // counted as of the revision it was read at (a later one, if a write came between)
                let at = whole.revision.unwrap_or(head);
                let tokens = playbook_tokens(&whole);
                self.cache_tokens(id, at, tokens)?;
                return Ok(tokens);
            }
        };
        self.cache_tokens(id, head, tokens)?;
        Ok(tokens)
    }

    /// A derived cache: written outside any revision, in its own short transaction; a database
    /// opened read-only simply does without it.
    fn cache_tokens(&self, playbook_id: i64, revision: i64, tokens: u64) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        self.conn.execute(
            "INSERT OR REPLACE INTO playbook_tokens (playbook_id, revision_id, tokens) VALUES (?1, ?2, ?3)",
            params![playbook_id, revision, tokens as i64],
        )?;
        Ok(())
    }
}
