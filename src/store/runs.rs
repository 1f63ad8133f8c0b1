//! Runs, their samples and model calls (transcripts), bullet citations and metrics, and the queries
//! that follow the causal chain: sample → answer → reflection → queued delta → revision.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};
use serde_json::Value;

use super::blobs::{ids_sql, store_ids, unpack_ids};
use super::rows::{OP_AFTER, OP_BEFORE, REFLECTION, column, playbook_id};
use super::transcripts::{Interner, RowTexts, Sources, prompt_blobs, stored_prompt};
use super::{Result, Store, StoreError, classify, now};
use crate::adaptation::{
    Accuracy, Checkpoint, RoleTotals, RunConfig, RunRecord, RunStatus, RunSummary, RunTotals,
    SampleRecord, Split,
};
use crate::llm::{CallRecord, Role};

/// Holds a run for this process until dropped (see [`Store::claim_run`]).
#[derive(Debug)]
pub struct RunClaim {
    file: std::fs::File,
    path: std::path::PathBuf,
}

impl Drop for RunClaim {
    /// The lock file goes when the run ends (removed while still locked, so nobody can take a
    /// lock on a file that is about to disappear; see the inode check in `claim_run`).
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
        if let Some(dir) = self.path.parent() {
            // only when empty: another run's lock keeps it
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Whether the open `file` is the one at `path` now.
fn same_file(file: &std::fs::File, path: &std::path::Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
}

fn run_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        id: r.get(0)?,
        playbook: r.get(1)?,
        kind: column(r, 2, false)?,
        status: column(r, 3, false)?,
        config: column(r, 4, true)?,
        feedback_mode: column(r, 5, false)?,
        checkpoint: match r.get_ref(6)? {
            rusqlite::types::ValueRef::Null => None,
            _ => Some(column::<Checkpoint>(r, 6, true)?),
        },
        best_revision: r.get(7)?,
        error: r.get(8)?,
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
    })
}

/// The split of the rows that hold the curator's calls.
const CURATOR_SPLIT: &str = "curator";

const RUN_COLUMNS: &str = "r.id, p.name, r.kind, r.status, r.config, r.feedback_mode, r.checkpoint, r.best_revision, r.error, r.created_at, r.updated_at";

impl Store {
    /// Creates a run of `config` (status running) and returns its id (`run-N`, numbered in this
    /// database).
    pub fn create_run(&mut self, config: &RunConfig) -> Result<String> {
        let tx = self.begin()?;
        let pb = playbook_id(&tx, &config.playbook)?;
        let at = now(&tx)?;
        let n: i64 = tx.query_row("SELECT count(*) FROM runs", [], |r| r.get(0))?;
        let mut id = format!("run-{}", n + 1);
        while tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM runs WHERE id = ?1)",
            [&id],
            |r| r.get::<_, bool>(0),
        )? {
            id = format!("{id}x");
        }
        tx.execute(
            "INSERT INTO runs (id, playbook_id, kind, status, config, feedback_mode, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
            params![
                id,
                pb,
                config.kind.as_str(),
                RunStatus::Running.as_str(),
                serde_json::to_string(config)?,
                config.feedback_mode().as_str(),
                at
            ],
        )?;
        tx.commit().map_err(classify)?;
        Ok(id)
    }

    /// Updates a run's status and, if given, its checkpoint, best revision and error.
    pub fn update_run(
        &mut self,
        id: &str,
        status: RunStatus,
        checkpoint: Option<&Checkpoint>,
        best_revision: Option<i64>,
        error: Option<&str>,
    ) -> Result<()> {
        let tx = self.begin()?;
        let checkpoint = checkpoint.map(serde_json::to_string).transpose()?;
        let n = tx.execute(
            "UPDATE runs SET status = ?2, checkpoint = coalesce(?3, checkpoint), best_revision = coalesce(?4, best_revision),
                             error = ?5, updated_at = ?6 WHERE id = ?1",
            params![id, status.as_str(), checkpoint, best_revision, error, now(&tx)?],
        )?;
        if n == 0 {
            return Err(StoreError::UnknownRun(id.to_string()));
        }
        tx.commit().map_err(classify)
    }

    pub fn run(&self, id: &str) -> Result<RunRecord> {
        self.require_latest()?;
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs r JOIN playbooks p ON p.id = r.playbook_id WHERE r.id = ?1"
        );
        self.conn
            .query_row(&sql, [id], run_from_row)
            .optional()?
            .ok_or_else(|| StoreError::UnknownRun(id.to_string()))
    }

    /// Claims a run for this process: an exclusive OS lock on `<db>.locks/<run>.lock`, held while
    /// the returned guard lives and released by the OS when the process ends in any way (kill -9
    /// included), so a killed run can be resumed at once but a live one is never driven twice.
    /// An in-memory store has no other process to fear and returns no guard.
    pub fn claim_run(&self, id: &str) -> Result<Option<RunClaim>> {
        let Some(db) = self.path() else {
            return Ok(None);
        };
        let mut dir = db.as_os_str().to_owned();
        dir.push(".locks");
        let dir = std::path::PathBuf::from(dir);
        let path = dir.join(format!("{id}.lock"));
        let io = |e: std::io::Error| StoreError::Open {
            path: path.display().to_string(),
            detail: e.to_string(),
        };
        // private to the user, like the database
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        let mut options = std::fs::OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
            builder.mode(0o700);
            options.mode(0o600);
        }
        for _ in 0..8 {
            builder.create(&dir).map_err(io)?;
            let file = options.open(&path).map_err(io)?;
            match file.try_lock() {
                Ok(()) => {
                    // the file locked must still be the one at the path (an ending run removes
                    // its lock file; a lock on the removed file would claim nothing)
                    if same_file(&file, &path) {
                        return Ok(Some(RunClaim { file, path }));
                    }
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(StoreError::RunBusy(
                        id.to_string(),
                        path.display().to_string(),
                    ));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
            }
        }
        Err(io(std::io::Error::other(
            "the lock file kept changing under this process",
        )))
    }

    /// Whether another process is driving run `id` right now (it holds the run's claim). Probing
    /// takes the claim and drops it at once.
    pub fn run_is_live(&self, id: &str) -> Result<bool> {
        match self.claim_run(id) {
            Ok(_) => Ok(false),
            Err(StoreError::RunBusy(..)) => Ok(true),
            Err(e) => Err(e),
        }
    }

    pub fn runs(&self) -> Result<Vec<RunRecord>> {
        self.require_latest()?;
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs r JOIN playbooks p ON p.id = r.playbook_id ORDER BY r.created_at DESC, r.id DESC"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        Ok(stmt
            .query_map([], run_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The newest run of `playbook` that answered samples of a dataset (not a run learning from
    /// agents' traces): where a trial or an impact takes its samples from.
    pub fn last_run(&self, playbook: &str) -> Result<Option<RunRecord>> {
        Ok(self
            .runs()?
            .into_iter()
            .find(|r| r.playbook == playbook && !r.config.traces))
    }

    /// Every run's calls, tokens, cost, wall time and accuracy (last train epoch, best validation,
    /// test, online so far), by run id.
    pub fn run_totals(&self) -> Result<std::collections::HashMap<String, RunTotals>> {
        self.require_latest()?;
        let mut out: std::collections::HashMap<String, RunTotals> = Default::default();
        let mut stmt = self.conn.prepare(
            "SELECT r.id, (julianday(r.updated_at) - julianday(r.created_at)) * 86400.0,
                    coalesce(c.calls, 0), coalesce(c.pt, 0), coalesce(c.ct, 0), coalesce(c.cost, 0.0)
             FROM runs r LEFT JOIN (
                 SELECT run_id, count(*) AS calls, sum(prompt_tokens) AS pt, sum(completion_tokens) AS ct,
                        sum(cost_usd) AS cost
                 FROM llm_calls GROUP BY run_id) c ON c.run_id = r.id",
        )?;
        for row in stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                RunTotals {
                    wall_secs: r.get::<_, Option<f64>>(1)?.unwrap_or(0.0).max(0.0),
                    calls: r.get::<_, i64>(2)? as u64,
                    prompt_tokens: r.get::<_, i64>(3)? as u64,
                    completion_tokens: r.get::<_, i64>(4)? as u64,
                    cost_usd: r.get(5)?,
                    ..Default::default()
                },
            ))
        })? {
            let (id, totals) = row?;
            out.insert(id, totals);
        }
        // per split: the train figure of the last epoch, the best validation, the last test, the
        // online windows summed
        let mut stmt = self.conn.prepare(
            "SELECT run_id, split, epoch, step, correct, total FROM run_metrics ORDER BY run_id, epoch, step",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(4)? as u64,
                r.get::<_, i64>(5)? as u64,
            ))
        })?;
        for row in rows {
            let (id, split, correct, total) = row?;
            let t = out.entry(id).or_default();
            let rate = |x: Option<(u64, u64)>| x.map(|(c, n)| c as f64 / n.max(1) as f64);
            match split.as_str() {
                "train" => t.train = Some((correct, total)),
                "val"
                    if rate(t.val)
                        .is_none_or(|best| correct as f64 / total.max(1) as f64 > best) =>
                {
                    t.val = Some((correct, total));
                }
                "test" => t.test = Some((correct, total)),
                "online" => {
                    let (c, n) = t.online.unwrap_or((0, 0));
                    t.online = Some((c + correct, n + total));
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Stores samples with their model calls and citations, in one transaction (upserts by key, so a
    /// resumed run that repeats a batch overwrites rather than duplicates).
    pub fn record_samples(
        &mut self,
        run: &str,
        playbook: &str,
        samples: &[(SampleRecord, Vec<CallRecord>)],
    ) -> Result<()> {
        self.write_samples(
            run,
            playbook,
            samples
                .iter()
                .map(|(s, calls)| (s.split.as_str(), s, calls.as_slice(), &[][..])),
        )
    }

    /// Writes sample rows under the split given with each (the curator's calls hang off a row of
    /// their own, split [`CURATOR_SPLIT`], which no sample listing shows).
    fn write_samples<'a>(
        &mut self,
        run: &str,
        playbook: &str,
        samples: impl Iterator<Item = (&'a str, &'a SampleRecord, &'a [CallRecord], &'a [String])>,
    ) -> Result<()> {
        let tx = self.begin()?;
        let pb = playbook_id(&tx, playbook)?;
        let at = now(&tx)?;
        {
            let mut sample_stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO run_samples (run_id, key, split, epoch, step, sample_id, question, answer, ground_truth,
                     correct, first_correct, rounds, feedback, cited, reflection, created_at, shown, unknown_ids)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
            )?;
            let mut clear_calls =
                tx.prepare_cached("DELETE FROM llm_calls WHERE run_id = ?1 AND sample_key = ?2")?;
            let mut call_stmt = tx.prepare_cached(
                "INSERT INTO llm_calls (run_id, sample_key, role, prompt_version, prompt, response, model, prompt_tokens,
                     completion_tokens, latency_ms, cost_usd, attempts, created_at, playbook_view, outcome, cached_tokens)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            )?;
            let mut blobs = Interner::default();
            let mut cite = tx.prepare_cached("INSERT OR IGNORE INTO bullet_citations (playbook_id, bullet_id, run_id, sample_key) VALUES (?1, ?2, ?3, ?4)")?;
            for (split, s, calls, related) in samples {
                // the row keeps the list of bullets shown (the sample's, or its calls' first
                // selection); calls that showed the same list refer to it
                let shown: Option<Vec<String>> = s.shown.clone().or_else(|| {
                    calls
                        .iter()
                        .find_map(|c| c.playbook.as_ref().and_then(|p| p.view.bullets.clone()))
                });
                clear_calls.execute(params![run, s.key])?;
                let own = RowTexts {
                    question: s.question.clone(),
                    answer: s.answer.clone(),
                    ground_truth: s.ground_truth.clone(),
                    feedback: s.feedback.clone(),
                    reflection: s.reflection.clone(),
                };
                let mut sources = Sources::new(own, Sources::rows(&tx, run, related)?);
                let mut call_ids = Vec::with_capacity(calls.len());
                for c in calls {
                    let (prompt, view) =
                        stored_prompt(&tx, c, shown.as_deref(), &sources, &mut blobs)?;
                    sources.push_response(&c.response);
                    call_stmt.execute(params![
                        run,
                        s.key,
                        c.role.as_str(),
                        c.prompt_version,
                        prompt,
                        c.response,
                        c.model,
                        c.usage.prompt_tokens as i64,
                        c.usage.completion_tokens as i64,
                        c.latency_ms as i64,
                        c.cost_usd,
                        c.attempts,
                        at,
                        view,
                        (!c.outcome.is_empty()).then_some(c.outcome.as_str()),
                        (c.usage.cached_prompt_tokens > 0)
                            .then_some(c.usage.cached_prompt_tokens as i64),
                    ])?;
                    call_ids.push(tx.last_insert_rowid());
                }
                // the reflection as what differs from the answer of the reflector call it came
                // from, where that reads back exactly (else whole)
                let reflection = match &s.reflection {
                    Some(r) => Some(match reflection_patch(&tx, calls, &call_ids, r)? {
                        Some(patch) => patch,
                        None => r.to_string(),
                    }),
                    None => None,
                };
                sample_stmt.execute(params![
                    run,
                    s.key,
                    split,
                    s.epoch,
                    s.step as i64,
                    s.sample_id,
                    s.question,
                    s.answer,
                    s.ground_truth,
                    s.correct,
                    s.first_correct,
                    s.rounds,
                    s.feedback,
                    serde_json::to_string(&s.cited)?,
                    reflection,
                    at,
                    shown
                        .as_deref()
                        .map(|ids| store_ids(&tx, ids))
                        .transpose()?,
                    (!s.unknown_ids.is_empty())
                        .then(|| serde_json::to_string(&s.unknown_ids))
                        .transpose()?,
                ])?;
                for id in &s.cited {
                    cite.execute(params![pb, id, run, s.key])?;
                }
            }
        }
        tx.commit().map_err(classify)
    }

    /// Stores model calls that belong to no single sample (the curator's, for a batch).
    pub fn record_calls(
        &mut self,
        run: &str,
        key: &str,
        calls: &[CallRecord],
        related: &[String],
    ) -> Result<()> {
        let record = SampleRecord {
            key: key.to_string(),
            split: Split::Train,
            epoch: 0,
            step: 0,
            sample_id: key.to_string(),
            question: String::new(),
            answer: String::new(),
            ground_truth: None,
            correct: false,
            first_correct: false,
            rounds: 0,
            feedback: String::new(),
            cited: Vec::new(),
            reflection: None,
            shown: None,
            unknown_ids: Vec::new(),
        };
        let playbook = self.run(run)?.playbook;
        self.write_samples(
            run,
            &playbook,
            std::iter::once((CURATOR_SPLIT, &record, calls, related)),
        )
    }

    /// Calls of an unfinished sample or step, under `KEY~abandoned-N` (N counts from 1 per key), so a
    /// redo of `KEY` replaces none of them.
    pub fn record_abandoned_calls(
        &mut self,
        run: &str,
        key: &str,
        calls: &[CallRecord],
    ) -> Result<()> {
        let prefix = format!("{key}~abandoned-");
        let earlier: i64 = self.conn.query_row(
            "SELECT count(*) FROM run_samples WHERE run_id = ?1 AND substr(key, 1, length(?2)) = ?2",
            params![run, prefix],
            |r| r.get(0),
        )?;
        self.record_calls(run, &format!("{prefix}{}", earlier + 1), calls, &[])
    }

    pub fn record_metric(&mut self, run: &str, a: &Accuracy) -> Result<()> {
        let tx = self.begin()?;
        tx.execute(
            "INSERT OR REPLACE INTO run_metrics (run_id, split, epoch, step, correct, total, revision_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![run, a.split.as_str(), a.epoch, a.step as i64, a.correct as i64, a.total as i64, a.revision],
        )?;
        tx.commit().map_err(classify)
    }

    /// Queued batches waiting for decisions (all playbooks), and the playbook's active bullets marked
    /// more harmful than helpful: the gauges of the metrics.
    pub fn gauges(&self, playbook: &str) -> Result<(usize, usize)> {
        let pb = playbook_id(&self.conn, playbook)?;
        let (queued, harmful): (i64, i64) = self.conn.query_row(
            "SELECT (SELECT count(*) FROM pending_batches WHERE status = 'pending'),
                    (SELECT count(*) FROM bullets WHERE playbook_id = ?1 AND status = 'active' AND harmful > helpful)",
            [pb],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((queued as usize, harmful as usize))
    }

    /// The newest revision of a playbook.
    pub fn head_revision(&self, playbook: &str) -> Result<Option<i64>> {
        let pb = playbook_id(&self.conn, playbook)?;
        Ok(self.conn.query_row(
            "SELECT max(id) FROM revisions WHERE playbook_id = ?1",
            [pb],
            |r| r.get(0),
        )?)
    }

    /// First-attempt accuracy of a run's samples in one split and epoch (and batch, if given):
    /// (right on the first attempt, total).
    pub fn first_attempt_score(
        &self,
        run: &str,
        split: Split,
        epoch: u32,
        step: Option<u64>,
    ) -> Result<(u64, u64)> {
        let (correct, total): (i64, i64) = self.conn.query_row(
            "SELECT coalesce(sum(first_correct), 0), count(*) FROM run_samples
             WHERE run_id = ?1 AND split = ?2 AND epoch = ?3 AND (?4 IS NULL OR step = ?4)",
            params![run, split.as_str(), epoch, step.map(|s| s as i64)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((correct as u64, total as u64))
    }

    pub fn run_samples(&self, run: &str) -> Result<Vec<SampleRecord>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT key, split, epoch, step, sample_id, question, answer, ground_truth, correct, first_correct, rounds, feedback, cited, {}, {}, unknown_ids
             FROM run_samples WHERE run_id = ?1 AND split != 'curator' ORDER BY split, epoch, step, key",
            REFLECTION,
            ids_sql("shown")
        ))?;
        let rows = stmt.query_map([run], |r| {
            Ok(SampleRecord {
                key: r.get(0)?,
                split: column(r, 1, false)?,
                epoch: r.get(2)?,
                step: r.get::<_, i64>(3)? as u64,
                sample_id: r.get(4)?,
                question: r.get(5)?,
                answer: r.get::<_, Option<String>>(6)?.unwrap_or_default(),
                ground_truth: r.get(7)?,
                correct: r.get::<_, Option<bool>>(8)?.unwrap_or(false),
                first_correct: r.get::<_, Option<bool>>(9)?.unwrap_or(false),
                rounds: r.get::<_, Option<u32>>(10)?.unwrap_or(0),
                feedback: r.get::<_, Option<String>>(11)?.unwrap_or_default(),
                cited: r
                    .get::<_, Option<String>>(12)?
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or_default(),
                reflection: r
                    .get::<_, Option<String>>(13)?
                    .and_then(|t| serde_json::from_str(&t).ok()),
                shown: r
                    .get::<_, Option<Vec<u8>>>(14)?
                    .and_then(|b| unpack_ids(&b)),
                unknown_ids: r
                    .get::<_, Option<String>>(15)?
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    pub fn run_summary(&self, id: &str) -> Result<RunSummary> {
        let run = self.run(id)?;
        let mut stmt = self.conn.prepare("SELECT split, epoch, step, correct, total, revision_id FROM run_metrics WHERE run_id = ?1 ORDER BY epoch, step, split")?;
        let accuracy = stmt
            .query_map([id], |r| {
                Ok(Accuracy {
                    split: column(r, 0, false)?,
                    epoch: r.get(1)?,
                    step: r.get::<_, i64>(2)? as u64,
                    correct: r.get::<_, i64>(3)? as u64,
                    total: r.get::<_, i64>(4)? as u64,
                    revision: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let samples: i64 = self.conn.query_row(
            "SELECT count(*) FROM run_samples WHERE run_id = ?1 AND split = 'train'",
            [id],
            |r| r.get(0),
        )?;
        let count = |status: &str| -> Result<u64> {
            Ok(self.conn.query_row(
                "SELECT count(*) FROM pending_ops o JOIN pending_batches b ON b.id = o.batch_id WHERE b.run_id = ?1 AND (?2 = '' OR o.status = ?2)",
                params![id, status],
                |r| r.get::<_, i64>(0),
            )? as u64)
        };
        // The run's TAG revisions have batch ids `{run}:tags:{batch}`; sum their counter moves.
        let (helpful, harmful): (i64, i64) = self.conn.query_row(
            &format!("SELECT coalesce(sum(json_extract({OP_AFTER}, '$.helpful') - json_extract({OP_BEFORE}, '$.helpful')), 0),
                    coalesce(sum(json_extract({OP_AFTER}, '$.harmful') - json_extract({OP_BEFORE}, '$.harmful')), 0)
             FROM revision_ops o JOIN revisions r ON r.id = o.revision_id
             WHERE r.batch_id >= ?1 AND r.batch_id < ?2 AND o.kind = 'bullet' AND o.before IS NOT NULL AND o.after IS NOT NULL"),
            params![format!("{id}:tags:"), format!("{id}:tags;")],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let wall_secs: f64 = self.conn.query_row(
            "SELECT coalesce((julianday(updated_at) - julianday(created_at)) * 86400.0, 0) FROM runs WHERE id = ?1",
            [id],
            |r| r.get(0),
        )?;
        let mut outcomes = BTreeMap::new();
        let mut stmt = self.conn.prepare(
            "SELECT coalesce(outcome, 'ok'), count(*) FROM llm_calls WHERE run_id = ?1 GROUP BY 1",
        )?;
        for row in stmt.query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            let (outcome, n) = row?;
            outcomes.insert(outcome, n as u64);
        }
        let unknown_ids: i64 = self.conn.query_row(
            "SELECT coalesce(sum(json_array_length(unknown_ids)), 0) FROM run_samples WHERE run_id = ?1",
            [id],
            |r| r.get(0),
        )?;
        let mut roles = BTreeMap::new();
        let mut stmt = self.conn.prepare(
            "SELECT role, count(*), sum(prompt_tokens), sum(completion_tokens), sum(cost_usd), sum(attempts), coalesce(sum(cached_tokens), 0) FROM llm_calls WHERE run_id = ?1 GROUP BY role",
        )?;
        for row in stmt.query_map([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                RoleTotals {
                    calls: r.get::<_, i64>(1)? as u64,
                    requests: r.get::<_, i64>(5)? as u64,
                    cached_prompt_tokens: r.get::<_, i64>(6)? as u64,
                    prompt_tokens: r.get::<_, i64>(2)? as u64,
                    completion_tokens: r.get::<_, i64>(3)? as u64,
                    cost_usd: r.get(4)?,
                },
            ))
        })? {
            let (role, totals) = row?;
            roles.insert(role, totals);
        }
        Ok(RunSummary {
            run,
            accuracy,
            samples: samples as u64,
            proposed_ops: count("")?,
            approved_ops: count("approved")? + count("edited")?,
            approved_bullets: self.conn.query_row(
                "SELECT count(*) FROM pending_ops o JOIN pending_batches b ON b.id = o.batch_id
                 WHERE b.run_id = ?1 AND o.status IN ('approved', 'edited')
                   AND json_extract(coalesce(o.edited_op, o.op), '$.type') IN ('ADD', 'MERGE')",
                [id],
                |r| r.get::<_, i64>(0),
            )? as u64,
            rejected_ops: count("rejected")?,
            pending_ops: count("pending")?,
            helpful_tags: helpful as u64,
            harmful_tags: harmful as u64,
            unknown_ids: unknown_ids as u64,
            wall_secs: wall_secs.max(0.0),
            outcomes,
            roles,
        })
    }
}

/// What `Store::prune_calls` deleted (or would).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Pruned {
    pub runs: u64,
    pub calls: u64,
    /// Prompt and answer text of those calls, and stored texts no call refers to any more.
    pub bytes: u64,
}

impl Store {
    /// Deletes the model-call records of the runs that ended before `cutoff` (an ISO time), or of
    /// `run`; stored texts only they referred to go too. Samples, metrics and revisions stay.
    pub fn prune_calls(
        &mut self,
        cutoff: Option<&str>,
        run: Option<&str>,
        dry_run: bool,
    ) -> Result<Pruned> {
        let tx = self.begin()?;
        tx.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS prune_runs (id TEXT PRIMARY KEY); DELETE FROM prune_runs;",
        )?;
        match run {
            Some(run) => {
                tx.execute(
                    "INSERT INTO prune_runs SELECT id FROM runs WHERE id = ?1",
                    [run],
                )?;
            }
            None => {
                tx.execute(
                    "INSERT INTO prune_runs SELECT id FROM runs
                     WHERE status IN ('finished', 'cancelled', 'failed') AND updated_at < ?1",
                    [cutoff.unwrap_or("")],
                )?;
            }
        }
        let (runs, calls, bytes): (i64, i64, i64) = tx.query_row(
            "SELECT (SELECT count(*) FROM prune_runs), count(*), coalesce(sum(length(prompt) + length(response)), 0)
             FROM llm_calls WHERE run_id IN (SELECT id FROM prune_runs)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        // reflections stored as what differs from a call's answer are made whole first
        tx.execute(
            &format!(
                "UPDATE run_samples SET reflection = {} WHERE run_id IN (SELECT id FROM prune_runs)
                 AND substr(reflection, 1, 6) = '{{\"~\":3'",
                REFLECTION
            ),
            [],
        )?;
        tx.execute(
            "DELETE FROM llm_calls WHERE run_id IN (SELECT id FROM prune_runs)",
            [],
        )?;
        // stored texts no prompt and no sample refers to any more
        tx.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS prune_keep (hash INTEGER PRIMARY KEY); DELETE FROM prune_keep;
             INSERT OR IGNORE INTO prune_keep SELECT shown FROM run_samples WHERE typeof(shown) = 'integer';",
        )?;
        {
            let mut prompts = tx.prepare("SELECT DISTINCT prompt FROM llm_calls")?;
            let mut keep = tx.prepare("INSERT OR IGNORE INTO prune_keep (hash) VALUES (?1)")?;
            let mut hashes = Vec::new();
            let mut rows = prompts.query([])?;
            while let Some(row) = rows.next()? {
                prompt_blobs(&tx, &row.get::<_, String>(0)?, &mut hashes)?;
                for hash in hashes.drain(..) {
                    keep.execute([hash])?;
                }
            }
        }
        let blob_bytes: i64 = tx.query_row(
            "SELECT coalesce(sum(length(body)), 0) FROM blobs WHERE hash NOT IN (SELECT hash FROM prune_keep)",
            [],
            |r| r.get(0),
        )?;
        tx.execute(
            "DELETE FROM blobs WHERE hash NOT IN (SELECT hash FROM prune_keep)",
            [],
        )?;
        let pruned = Pruned {
            runs: runs as u64,
            calls: calls as u64,
            bytes: (bytes + blob_bytes) as u64,
        };
        if dry_run {
            drop(tx);
        } else {
            tx.commit().map_err(classify)?;
        }
        Ok(pruned)
    }

    /// Rewrites the database file without its free pages; its size before and after, in bytes.
    pub fn vacuum(&mut self) -> Result<(u64, u64)> {
        let size = |conn: &rusqlite::Connection| -> Result<u64> {
            Ok(conn.query_row(
                "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size",
                [],
                |r| r.get::<_, i64>(0),
            )? as u64)
        };
        let before = size(&self.conn)?;
        self.conn.execute_batch("VACUUM")?;
        Ok((before, size(&self.conn)?))
    }
}

/// A reflection as what differs from the answer of the sample's reflector call it came from (the
/// last one whose answer is a JSON object), marked `{"~":3,"~c":ID,…}` with the call's row id (see
/// `rows::REFLECTION`); `None` when no such answer makes it shorter, or when SQLite's
/// `json_patch` would not make it again exactly from that answer.
fn reflection_patch(
    conn: &rusqlite::Connection,
    calls: &[CallRecord],
    ids: &[i64],
    reflection: &Value,
) -> Result<Option<String>> {
    for (c, id) in calls.iter().zip(ids).rev() {
        if c.role != Role::Reflector {
            continue;
        }
        // an answer that names a field twice is read one way by serde and maybe another by SQLite
        let Ok(answer) = serde_json::from_str::<Value>(&c.response) else {
            continue;
        };
        if serde_json::from_str::<Distinct>(&c.response).is_err() {
            continue;
        }
        let Some(patch) = super::writer::marked_patch(
            &answer,
            reflection,
            &format!("\"~\":3,\"~c\":{id}"),
            &["~", "~c"],
        ) else {
            continue;
        };
        // as the readers make it whole (`rows::REFLECTION`)
        let made: Option<String> = conn
            .prepare_cached(r#"SELECT json_remove(json_patch(?1, ?2), '$."~"', '$."~c"')"#)?
            .query_row(params![c.response, patch], |r| r.get(0))
            .ok()
            .flatten();
        if made
            .and_then(|m| serde_json::from_str::<Value>(&m).ok())
            .as_ref()
            == Some(reflection)
        {
            return Ok(Some(patch));
        }
    }
    Ok(None)
}

/// JSON whose objects name each field once, at any depth (deserializing fails otherwise).
struct Distinct;

impl<'de> serde::Deserialize<'de> for Distinct {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Distinct;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Distinct, A::Error> {
                let mut seen = std::collections::HashSet::new();
                while let Some(key) = map.next_key::<String>()? {
                    if !seen.insert(key) {
                        return Err(serde::de::Error::custom("a field named twice"));
                    }
                    map.next_value::<Distinct>()?;
                }
                Ok(Distinct)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Distinct, A::Error> {
                while seq.next_element::<Distinct>()?.is_some() {}
                Ok(Distinct)
            }
            fn visit_bool<E>(self, _: bool) -> std::result::Result<Distinct, E> {
                Ok(Distinct)
            }
            fn visit_i64<E>(self, _: i64) -> std::result::Result<Distinct, E> {
                Ok(Distinct)
            }
            fn visit_u64<E>(self, _: u64) -> std::result::Result<Distinct, E> {
                Ok(Distinct)
            }
            fn visit_f64<E>(self, _: f64) -> std::result::Result<Distinct, E> {
                Ok(Distinct)
            }
            fn visit_str<E>(self, _: &str) -> std::result::Result<Distinct, E> {
                Ok(Distinct)
            }
            fn visit_unit<E>(self) -> std::result::Result<Distinct, E> {
                Ok(Distinct)
            }
        }
        d.deserialize_any(Visit)
    }
}
