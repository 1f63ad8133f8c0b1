//! Agents' traces waiting to be learned from (`trace_inbox`), and what agents may change without a
//! person (`playbooks.agent_policy`).

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::rows::playbook_id;
use super::{Result, Store, StoreError, classify, now};
use crate::environment::Sample;

/// What agents may change in a playbook without a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AgentPolicy {
    /// Nothing: every judgement and proposal waits in the queue.
    #[default]
    Queue,
    /// Helpful/harmful judgements update the counters at once; content still waits.
    Counters,
}

impl std::str::FromStr for AgentPolicy {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "queue" | "none" => Ok(AgentPolicy::Queue),
            "counters" => Ok(AgentPolicy::Counters),
            _ => Err(format!(
                "unknown agent policy '{s}' (use queue or counters)"
            )),
        }
    }
}

/// Traces by status, for health and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct InboxCounts {
    pub pending: u64,
    pub taken: u64,
    pub done: u64,
    pub failed: u64,
}

impl Store {
    pub fn agent_policy(&self, playbook: &str) -> Result<AgentPolicy> {
        self.require_latest()?;
        let id = playbook_id(&self.conn, playbook)?;
        let policy: Option<String> = self.conn.query_row(
            "SELECT agent_policy FROM playbooks WHERE id = ?1",
            [id],
            |r| r.get(0),
        )?;
        Ok(match policy.as_deref() {
            Some("counters") => AgentPolicy::Counters,
            _ => AgentPolicy::Queue,
        })
    }

    pub fn set_agent_policy(&mut self, playbook: &str, policy: AgentPolicy) -> Result<()> {
        let tx = self.begin()?;
        let id = playbook_id(&tx, playbook)?;
        let value = match policy {
            AgentPolicy::Queue => None,
            AgentPolicy::Counters => Some("counters"),
        };
        tx.execute(
            "UPDATE playbooks SET agent_policy = ?2 WHERE id = ?1",
            params![id, value],
        )?;
        tx.commit().map_err(classify)
    }

    /// Keeps a trace for a learn run; refused (nothing stored) when `limit` traces already wait.
    pub fn receive_trace(&mut self, playbook: &str, trace: &Sample, limit: u64) -> Result<i64> {
        if trace.trace.is_none() {
            return Err(StoreError::Queue("not a trace: it has no answer".into()));
        }
        let tx = self.begin()?;
        let id = playbook_id(&tx, playbook)?;
        let waiting: i64 = tx.query_row(
            "SELECT count(*) FROM trace_inbox WHERE status IN ('pending', 'taken')",
            [],
            |r| r.get(0),
        )?;
        if waiting as u64 >= limit {
            return Err(StoreError::Full(format!(
                "{waiting} traces are waiting to be learned from (the limit is {limit}); try again later"
            )));
        }
        tx.execute(
            "INSERT INTO trace_inbox (playbook_id, trace, received_at) VALUES (?1, ?2, ?3)",
            params![id, serde_json::to_string(trace)?, now(&tx)?],
        )?;
        let trace_id = tx.last_insert_rowid();
        tx.commit().map_err(classify)?;
        Ok(trace_id)
    }

    pub fn inbox_counts(&self) -> Result<InboxCounts> {
        self.require_latest()?;
        let mut counts = InboxCounts::default();
        let mut stmt = self
            .conn
            .prepare("SELECT status, count(*) FROM trace_inbox GROUP BY status")?;
        for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            let (status, n) = row?;
            let n = n as u64;
            match status.as_str() {
                "pending" => counts.pending = n,
                "taken" => counts.taken = n,
                "done" => counts.done = n,
                _ => counts.failed += n,
            }
        }
        Ok(counts)
    }

    /// Takes up to `limit` waiting traces of the playbook that has waited longest, for a learn run
    /// (`token` marks them until the run has an id): the playbook's name and the traces, oldest first.
    pub fn take_traces(&mut self, limit: usize, token: &str) -> Result<Option<TakenTraces>> {
        let tx = self.begin()?;
        let first: Option<(i64, String)> = tx
            .query_row(
                "SELECT t.playbook_id, p.name FROM trace_inbox t JOIN playbooks p ON p.id = t.playbook_id
                 WHERE t.status = 'pending' AND p.deleted_at IS NULL ORDER BY t.id LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((pb, name)) = first else {
            return Ok(None);
        };
        let rows: Vec<(i64, String)> = {
            let mut stmt = tx.prepare(
                "SELECT id, trace FROM trace_inbox WHERE status = 'pending' AND playbook_id = ?1 ORDER BY id LIMIT ?2",
            )?;
            stmt.query_map(params![pb, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?
        };
        let mut taken = Vec::with_capacity(rows.len());
        for (id, text) in rows {
            tx.execute(
                "UPDATE trace_inbox SET status = 'taken', run_id = ?2 WHERE id = ?1",
                params![id, token],
            )?;
            taken.push((id, serde_json::from_str(&text)?));
        }
        tx.commit().map_err(classify)?;
        Ok(Some((name, taken)))
    }

    /// Marks the traces a learn run (`token`) had: `done`, or back to `pending` to be taken again
    /// (the run stopped before it reflected on them), or `failed` with the error.
    pub fn settle_traces(
        &mut self,
        token: &str,
        run: Option<&str>,
        outcome: TraceOutcome<'_>,
    ) -> Result<()> {
        let tx = self.begin()?;
        match outcome {
            TraceOutcome::Done => tx.execute(
                "UPDATE trace_inbox SET status = 'done', run_id = coalesce(?2, run_id) WHERE run_id = ?1 AND status = 'taken'",
                params![token, run],
            )?,
            TraceOutcome::Again => tx.execute(
                "UPDATE trace_inbox SET status = 'pending', run_id = NULL WHERE run_id = ?1 AND status = 'taken'",
                params![token],
            )?,
            TraceOutcome::Failed(error) => tx.execute(
                "UPDATE trace_inbox SET status = 'failed', run_id = coalesce(?2, run_id), error = ?3 WHERE run_id = ?1 AND status = 'taken'",
                params![token, run, error],
            )?,
        };
        tx.commit().map_err(classify)
    }

    /// Traces taken by learn runs of a process that is gone go back to waiting (at a server's start).
    pub fn release_taken_traces(&mut self) -> Result<usize> {
        let tx = self.begin()?;
        let n = tx.execute(
            "UPDATE trace_inbox SET status = 'pending', run_id = NULL WHERE status = 'taken'",
            [],
        )?;
        tx.commit().map_err(classify)?;
        Ok(n)
    }
}

/// A playbook's name and the traces taken from its inbox (id, trace), oldest first.
pub type TakenTraces = (String, Vec<(i64, Sample)>);

/// What came of the traces a learn run took.
#[derive(Debug, Clone, Copy)]
pub enum TraceOutcome<'a> {
    Done,
    Again,
    Failed(&'a str),
}
