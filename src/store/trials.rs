//! Trials of proposals and the generator answers they cache (see `adaptation::trial`).

use rusqlite::{OptionalExtension, params};

use super::{Result, Store, StoreError, classify, now};
use crate::adaptation::trial::{AnswerCache, CachedAnswer, TrialReport};

/// A stored trial: of a queued batch (all its ops, or one), or of something else (`subject`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredTrial {
    pub id: i64,
    pub batch_id: Option<i64>,
    /// The op tried alone (from 1, as `queue show` numbers them); `None`: the whole batch.
    pub op: Option<usize>,
    pub subject: String,
    pub created_at: String,
    pub report: TrialReport,
}

impl Store {
    pub fn record_trial(
        &mut self,
        batch: Option<i64>,
        op: Option<usize>,
        subject: &str,
        report: &TrialReport,
    ) -> Result<i64> {
        let tx = self.begin()?;
        tx.execute(
            "INSERT INTO trials (batch_id, op_idx, subject, report, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![batch, op.map(|o| o as i64), subject, serde_json::to_string(report)?, now(&tx)?],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit().map_err(classify)?;
        Ok(id)
    }

    /// The trials of a queued batch, oldest first.
    pub fn trials(&self, batch: i64) -> Result<Vec<StoredTrial>> {
        self.require_latest()?;
        let mut stmt = self.conn.prepare(
            "SELECT id, batch_id, op_idx, subject, created_at, report FROM trials WHERE batch_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([batch], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, batch_id, op, subject, created_at, report) = row?;
            out.push(StoredTrial {
                id,
                batch_id,
                op: op.map(|o| o as usize),
                subject,
                created_at,
                report: serde_json::from_str(&report)?,
            });
        }
        Ok(out)
    }
}

impl AnswerCache for Store {
    type Error = StoreError;

    fn cached_answer(&self, key: i64) -> Result<Option<CachedAnswer>> {
        Ok(self
            .conn
            .query_row(
                "SELECT answer, tokens_in, tokens_out, cost_usd FROM trial_answers WHERE key = ?1",
                [key],
                |r| {
                    Ok(CachedAnswer {
                        answer: r.get(0)?,
                        prompt_tokens: r.get::<_, i64>(1)? as u64,
                        completion_tokens: r.get::<_, i64>(2)? as u64,
                        cost_usd: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    fn cache_answer(&mut self, key: i64, a: &CachedAnswer) -> Result<()> {
        let tx = self.begin()?;
        tx.execute(
            "INSERT OR REPLACE INTO trial_answers (key, answer, tokens_in, tokens_out, cost_usd, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![key, a.answer, a.prompt_tokens as i64, a.completion_tokens as i64, a.cost_usd, now(&tx)?],
        )?;
        tx.commit().map_err(classify)
    }
}
