//! The pending-delta queue: curator proposals wait here until a person (or a policy) approves, edits
//! or rejects each op. When every op of a batch is decided, the approved and edited ops are applied as
//! one revision; a batch with none approved is closed as rejected.

use rusqlite::{OptionalExtension, params};

use super::apply::apply_in;
use super::rows::{column, playbook_id};
use super::{Result, Store, StoreError, classify, now};
use crate::approval::{
    BatchStatus, DecideOutcome, Decision, Evidence, OpStatus, PendingBatch, PendingOp, Provenance,
    ReflectionNote,
};
use crate::delta::{ApplyOptions, DeltaBatch, DeltaOp, Source};
use crate::refine::SizeEffect;

/// A sample behind a proposal as its run recorded it (`None` if the run holds no such sample).
fn recorded_evidence(conn: &rusqlite::Connection, run: &str, key: &str) -> Option<Evidence> {
    conn.prepare_cached(&format!(
        "SELECT sample_id, question, answer, ground_truth, correct, feedback, cited, {}
         FROM run_samples WHERE run_id = ?1 AND key = ?2",
        super::rows::REFLECTION
    ))
    .ok()?
    .query_row(params![run, key], |r| {
        Ok(Evidence {
            key: key.to_string(),
            sample_id: r.get(0)?,
            question: r.get(1)?,
            answer: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
            ground_truth: r.get(3)?,
            correct: r.get::<_, Option<bool>>(4)?.unwrap_or(false),
            feedback: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
            cited: r
                .get::<_, Option<String>>(6)?
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default(),
            reflection: r
                .get::<_, Option<String>>(7)?
                .and_then(|t| serde_json::from_str::<ReflectionNote>(&t).ok()),
        })
    })
    .ok()
}

/// The provenance as stored: a sample exactly as its run recorded it is kept as its key alone (a
/// string in `samples`), so a batch's evidence does not store each sample a second time; the
/// curator's reasoning, when it is the batch's, as `true`.
fn stored_provenance(
    conn: &rusqlite::Connection,
    provenance: &Provenance,
    reasoning: &str,
) -> Result<String> {
    let mut value = serde_json::to_value(provenance)?;
    if provenance.curator_reasoning.as_deref() == Some(reasoning) {
        value["curator_reasoning"] = serde_json::Value::Bool(true);
    }
    if let (Some(run), Some(samples)) = (&provenance.run, value.get_mut("samples")) {
        for (stored, sample) in samples
            .as_array_mut()
            .into_iter()
            .flatten()
            .zip(&provenance.samples)
        {
            if recorded_evidence(conn, run, &sample.key).as_ref() == Some(sample) {
                *stored = serde_json::Value::String(sample.key.clone());
            }
        }
    }
    Ok(value.to_string())
}

/// The provenance read back, each sample kept by key read from its run (a sample whose record is
/// gone shows by its key alone).
fn read_provenance(
    conn: &rusqlite::Connection,
    mut value: serde_json::Value,
    reasoning: &str,
) -> Provenance {
    if value.get("curator_reasoning") == Some(&serde_json::Value::Bool(true)) {
        value["curator_reasoning"] = serde_json::Value::String(reasoning.to_string());
    }
    let run = value
        .get("run")
        .and_then(|r| r.as_str())
        .map(str::to_string);
    if let Some(samples) = value.get_mut("samples").and_then(|s| s.as_array_mut()) {
        for sample in samples {
            if let serde_json::Value::String(key) = sample {
                let evidence = run
                    .as_deref()
                    .and_then(|run| recorded_evidence(conn, run, key))
                    .unwrap_or_else(|| Evidence {
                        key: key.clone(),
                        ..Evidence::default()
                    });
                *sample = serde_json::to_value(evidence).unwrap_or_default();
            }
        }
    }
    serde_json::from_value(value).unwrap_or_default()
}

fn load_batch(conn: &rusqlite::Connection, id: i64) -> Result<PendingBatch> {
    load_batch_with(conn, id, true)
}

/// A queued batch with its ops; its evidence too when `evidence` (deciding needs the ops alone, and
/// the evidence reads every sample's record).
fn load_batch_with(conn: &rusqlite::Connection, id: i64, evidence: bool) -> Result<PendingBatch> {
    let row = conn
        .query_row(
            "SELECT b.id, p.name, b.key, b.run_id, b.status, b.reasoning, b.provenance, b.created_at, b.decided_by, b.revision_id,
                    (SELECT max(x.id) FROM revisions x WHERE x.reverts = b.revision_id)
             FROM pending_batches b JOIN playbooks p ON p.id = b.playbook_id WHERE b.id = ?1",
            [id],
            |r| {
                Ok(PendingBatch {
                    id: r.get(0)?,
                    playbook: r.get(1)?,
                    key: r.get(2)?,
                    run_id: r.get(3)?,
                    status: column(r, 4, false)?,
                    reasoning: r.get(5)?,
                    // Evidence is for people: unreadable evidence shows as none rather than hiding the batch.
                    provenance: if evidence {
                        r.get::<_, Option<String>>(6)?.and_then(|t| serde_json::from_str(&t).ok()).map(|v| read_provenance(conn, v, &r.get::<_, String>(5).unwrap_or_default())).unwrap_or_default()
                    } else {
                        Provenance::default()
                    },
                    created_at: r.get(7)?,
                    decided_by: r.get(8)?,
                    revision: r.get(9)?,
                    undone_by: r.get(10)?,
                    ops: Vec::new(),
                })
            },
        )
        .optional()?;
    let mut batch = row.ok_or(StoreError::UnknownPending(id))?;
    let mut stmt = conn.prepare_cached("SELECT idx, op_key, op, status, edited_op, reason FROM pending_ops WHERE batch_id = ?1 ORDER BY idx")?;
    let rows = stmt.query_map([id], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, Option<String>>(5)?,
        ))
    })?;
    for row in rows {
        let (idx, key, op, status, edited, reason) = row?;
        batch.ops.push(PendingOp {
            idx: idx as usize,
            key,
            op: serde_json::from_str(&op)?,
            status: OpStatus::parse(&status).ok_or_else(|| {
                StoreError::Corrupt(format!("queued batch {id} op {idx} has status '{status}'"))
            })?,
            edited: edited.map(|e| serde_json::from_str(&e)).transpose()?,
            reason,
        });
    }
    Ok(batch)
}

/// The size a guarded approval starts from: the playbook's tokens as of revision `at`.
#[derive(Debug, Clone, Copy)]
struct Guard {
    at: i64,
    before: u64,
    budget: u64,
}

impl Store {
    /// Queues curator ops for a playbook. Idempotent by `key`: proposing the same key again returns the
    /// existing batch (so a resumed run never queues a batch twice). Returns `None` for no ops.
    pub fn propose(
        &mut self,
        playbook: &str,
        key: &str,
        run_id: Option<&str>,
        reasoning: &str,
        ops: &[(String, DeltaOp)],
        provenance: &Provenance,
    ) -> Result<Option<i64>> {
        // what waits for a person must be something that could be applied as shown
        if !ops.is_empty() {
            DeltaBatch::new(
                key,
                Source::Curator,
                ops.iter().map(|(_, op)| op.clone()).collect(),
            )
            .validate_shape()
            .map_err(|error| StoreError::Rejected {
                batch: key.to_string(),
                error,
            })?;
        }
        let tx = self.begin()?;
        let pb = playbook_id(&tx, playbook)?;
        let existing: Option<i64> = tx
            .query_row(
                "SELECT id FROM pending_batches WHERE playbook_id = ?1 AND key = ?2",
                params![pb, key],
                |r| r.get(0),
            )
            .optional()?;
        if existing.is_some() || ops.is_empty() {
            return Ok(existing);
        }
        tx.execute(
            "INSERT INTO pending_batches (playbook_id, key, run_id, status, reasoning, provenance, created_at)
             VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6)",
            params![pb, key, run_id, reasoning, stored_provenance(&tx, provenance, reasoning)?, now(&tx)?],
        )?;
        let id = tx.last_insert_rowid();
        for (idx, (op_key, op)) in ops.iter().enumerate() {
            tx.execute(
                "INSERT INTO pending_ops (batch_id, idx, op_key, op, status) VALUES (?1, ?2, ?3, ?4, 'pending')",
                params![id, idx as i64, op_key, serde_json::to_string(op)?],
            )?;
        }
        tx.commit().map_err(classify)?;
        Ok(Some(id))
    }

    /// Batches waiting for decisions (oldest first), of one playbook or all.
    pub fn pending(&self, playbook: Option<&str>) -> Result<Vec<PendingBatch>> {
        self.queue(playbook, true)
    }

    /// Every queued batch, decided or not (newest first).
    pub fn queue(&self, playbook: Option<&str>, only_pending: bool) -> Result<Vec<PendingBatch>> {
        self.require_latest()?;
        if let Some(name) = playbook {
            playbook_id(&self.conn, name)?;
        }
        let order = if only_pending { "ASC" } else { "DESC" };
        let mut stmt = self.conn.prepare(&format!(
            "SELECT b.id FROM pending_batches b JOIN playbooks p ON p.id = b.playbook_id
             WHERE (?1 IS NULL OR p.name = ?1) AND (?2 = 0 OR b.status = 'pending') ORDER BY b.id {order}"
        ))?;
        let ids = stmt
            .query_map(params![playbook, only_pending], |r| r.get::<_, i64>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        ids.into_iter()
            .map(|id| load_batch(&self.conn, id))
            .collect()
    }

    pub fn pending_batch(&self, id: i64) -> Result<PendingBatch> {
        self.require_latest()?;
        load_batch(&self.conn, id)
    }

    /// Records decisions on ops of a pending batch. When the last op is decided, the approved and
    /// edited ops are applied as one revision (source curator, `author` recorded) in the same
    /// transaction; if applying fails (say, a bullet was removed meanwhile), nothing is recorded and
    /// the error names the op.
    pub fn decide(
        &mut self,
        id: i64,
        decisions: &[(usize, Decision)],
        author: &str,
    ) -> Result<DecideOutcome> {
        self.decide_as(id, decisions, author, Source::Curator)
    }

    /// As [`Store::decide`], recording `source` on the revision (`auto-policy` for unattended runs).
    pub fn decide_as(
        &mut self,
        id: i64,
        decisions: &[(usize, Decision)],
        author: &str,
        source: Source,
    ) -> Result<DecideOutcome> {
        self.decide_guarded(id, decisions, author, source, None)
    }

    /// Approves every still-pending op of batch `id`, unless that would take its playbook over its
    /// token budget: then nothing at all is decided or written and the error says by how much
    /// ([`StoreError::OverBudget`]). The size is checked inside the writing transaction, so no
    /// concurrent change slips between the check and the write. Without a budget, as
    /// [`Store::decide_all_as`].
    pub fn approve_within_budget(
        &mut self,
        id: i64,
        author: &str,
        source: Source,
    ) -> Result<DecideOutcome> {
        self.require_latest()?;
        let batch = load_batch_with(&self.conn, id, false)?;
        let Some(budget) = self.token_budget(&batch.playbook)? else {
            return self.decide_all_as(id, true, None, author, source);
        };
        let at = self.head_revision(&batch.playbook)?.unwrap_or(0);
        let before = self.playbook_tokens(&batch.playbook)?;
        let decisions: Vec<(usize, Decision)> = batch
            .ops
            .iter()
            .filter(|o| o.status == OpStatus::Pending)
            .map(|o| (o.idx, Decision::Approve))
            .collect();
        let guard = Guard { at, before, budget };
        self.decide_guarded(id, &decisions, author, source, Some(guard))
    }

    fn decide_guarded(
        &mut self,
        id: i64,
        decisions: &[(usize, Decision)],
        author: &str,
        source: Source,
        guard: Option<Guard>,
    ) -> Result<DecideOutcome> {
        let tx = self.begin()?;
        let batch = load_batch_with(&tx, id, false)?;
        if batch.status != BatchStatus::Pending {
            return Err(StoreError::Queue(format!(
                "queued batch {id} was already decided ({})",
                batch.status
            )));
        }
        let at = now(&tx)?;
        for (idx, decision) in decisions {
            if *idx >= batch.ops.len() {
                return Err(StoreError::Queue(format!(
                    "queued batch {id} has no op {} (its ops are 1 to {})",
                    idx + 1,
                    batch.ops.len()
                )));
            }
            let (status, edited, reason) = match decision {
                Decision::Approve => (OpStatus::Approved, None, None),
                Decision::Reject { reason } => (OpStatus::Rejected, None, reason.clone()),
                Decision::Edit(op) => {
                    // an edit must apply to the playbook as it is now: checked in memory when made
                    let mut playbook = super::read::load_playbook_in(&tx, &batch.playbook)?;
                    crate::delta::apply_in_memory(
                        &mut playbook,
                        &DeltaBatch::new("edit", Source::Human, vec![op.clone()]),
                        &ApplyOptions::create_sections(),
                        &at,
                    )
                    .map_err(|error| StoreError::Rejected {
                        batch: format!("queue {id} op {}", idx + 1),
                        error,
                    })?;
                    (OpStatus::Edited, Some(serde_json::to_string(op)?), None)
                }
            };
            tx.execute(
                "UPDATE pending_ops SET status = ?3, edited_op = ?4, reason = ?5, decided_by = ?6, decided_at = ?7 WHERE batch_id = ?1 AND idx = ?2",
                params![id, *idx as i64, status.as_str(), edited, reason, author, at],
            )?;
        }
        let batch = load_batch_with(&tx, id, false)?;
        if batch.ops.iter().any(|o| o.status == OpStatus::Pending) {
            tx.commit().map_err(classify)?;
            return Ok(DecideOutcome {
                closed: false,
                revision: None,
            });
        }
        let approved: Vec<DeltaOp> = batch
            .ops
            .iter()
            .filter_map(|o| match o.status {
                OpStatus::Approved => Some(o.op.clone()),
                OpStatus::Edited => o.edited.clone(),
                _ => None,
            })
            .collect();
        let mut revision = None;
        if !approved.is_empty() {
            let mut delta = DeltaBatch::new(format!("queue-{id}"), source, approved).with_reason(
                batch
                    .reasoning
                    .clone()
                    .unwrap_or_else(|| format!("queued batch {id}")),
            );
            delta.author = Some(author.to_string());
            delta
                .validate_shape()
                .map_err(|error| StoreError::Rejected {
                    batch: delta.id.clone(),
                    error,
                })?;
            let pb = playbook_id(&tx, &batch.playbook)?;
            let applied = apply_in(&tx, pb, &delta, &ApplyOptions::create_sections())?.revision();
            if let Some(g) = guard {
                let change = super::budget::replay_changes(&tx, pb, g.at, applied)?;
                let effect = SizeEffect::new(g.before, change, Some(g.budget));
                if effect.over() {
                    // dropping the transaction rolls back the decisions and the write
                    return Err(StoreError::OverBudget {
                        batch: id,
                        playbook: batch.playbook.clone(),
                        effect,
                    });
                }
            }
            revision = Some(applied);
        }
        if let Some(revision) = revision {
            // the revision's reason is the batch's reasoning: stored once, read from the batch
            // (`read::REVISION_COLUMNS`)
            tx.execute(
                "UPDATE revisions SET reason = NULL WHERE id = ?1 AND reason = ?2",
                params![revision, batch.reasoning],
            )?;
        }
        tx.execute(
            "UPDATE pending_batches SET status = ?2, decided_at = ?3, decided_by = ?4, revision_id = ?5 WHERE id = ?1",
            params![
                id,
                if revision.is_some() { BatchStatus::Applied } else { BatchStatus::Rejected }.as_str(),
                at,
                author,
                revision
            ],
        )?;
        tx.commit().map_err(classify)?;
        Ok(DecideOutcome {
            closed: true,
            revision,
        })
    }

    /// Approves or rejects every still-pending op of a batch.
    pub fn decide_all(
        &mut self,
        id: i64,
        approve: bool,
        reason: Option<&str>,
        author: &str,
    ) -> Result<DecideOutcome> {
        self.decide_all_as(id, approve, reason, author, Source::Curator)
    }

    pub fn decide_all_as(
        &mut self,
        id: i64,
        approve: bool,
        reason: Option<&str>,
        author: &str,
        source: Source,
    ) -> Result<DecideOutcome> {
        self.require_latest()?;
        let batch = load_batch_with(&self.conn, id, false)?;
        let decisions: Vec<(usize, Decision)> = batch
            .ops
            .iter()
            .filter(|o| o.status == OpStatus::Pending)
            .map(|o| {
                (
                    o.idx,
                    if approve {
                        Decision::Approve
                    } else {
                        Decision::Reject {
                            reason: reason.map(str::to_string),
                        }
                    },
                )
            })
            .collect();
        self.decide_as(id, &decisions, author, source)
    }

    /// The queued batch a revision applied, if it came from the queue (for "what led to this revision").
    pub fn revision_provenance(&self, revision: i64) -> Result<Option<PendingBatch>> {
        self.require_latest()?;
        let id: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM pending_batches WHERE revision_id = ?1",
                [revision],
                |r| r.get(0),
            )
            .optional()?;
        id.map(|id| load_batch(&self.conn, id)).transpose()
    }
}
