//! What the loop needs from persistence, as a trait: the loop is written against it and the SQLite
//! store implements it (`store::Store`), so the core never names the store's types.

use std::collections::HashSet;

use super::{Accuracy, Checkpoint, RunConfig, RunRecord, RunStatus, SampleRecord, Split};
use crate::approval::{DecideOutcome, PendingBatch, Provenance};
use crate::delta::{ApplyOptions, ApplyOutcome, DeltaBatch, DeltaOp, Source};
use crate::llm::CallRecord;
use crate::playbook::Playbook;
use crate::refine::SizeEffect;

/// Runs, samples, the queue and the playbook, as the loop reads and writes them. Every write is
/// one transaction; several processes may share what is behind it.
pub trait RunStore: Send + 'static {
    type Error: std::error::Error + Send + 'static;
    /// Held while a process drives a run (see [`RunStore::claim_run`]).
    type Claim: Send + 'static;

    /// Creates playbook `name` with `sections` unless it exists.
    fn ensure_playbook(&mut self, name: &str, sections: &[&str]) -> Result<(), Self::Error>;
    /// The playbook whole (the loop reads it once, then keeps it current from its changes: a store
    /// need not cache what it read).
    fn load_playbook(&self, name: &str) -> Result<Playbook, Self::Error>;
    /// The playbook as it stood right after `revision` (the best validation revision, for a test).
    fn load_playbook_at(&self, name: &str, revision: i64) -> Result<Playbook, Self::Error>;
    /// Which of `ids` are active bullets of `playbook`.
    fn active_ids(&self, playbook: &str, ids: &[String]) -> Result<HashSet<String>, Self::Error>;
    fn head_revision(&self, playbook: &str) -> Result<Option<i64>, Self::Error>;
    /// The changes after revision `since`, if at most `limit` (see [`crate::delta::Replay`]).
    fn changes_since(
        &self,
        playbook: &str,
        since: i64,
        limit: usize,
    ) -> Result<Option<crate::delta::Replay>, Self::Error>;
    /// The playbook's token budget, if it has one.
    fn token_budget(&self, playbook: &str) -> Result<Option<u64>, Self::Error>;
    /// Cached embedding vectors of `model` by text key (see [`crate::refine::text_key`]).
    fn cached_vectors(
        &self,
        model: &str,
        keys: &[u64],
    ) -> Result<std::collections::HashMap<u64, Vec<f32>>, Self::Error>;
    fn cache_vectors(
        &mut self,
        model: &str,
        vectors: &[(u64, Vec<f32>)],
    ) -> Result<(), Self::Error>;
    /// Applies a batch as one revision (the policy's TAG counters).
    fn apply(
        &mut self,
        playbook: &str,
        batch: &DeltaBatch,
        options: &ApplyOptions,
    ) -> Result<ApplyOutcome, Self::Error>;
    /// Queued batches waiting for decisions (all playbooks), and the playbook's active bullets
    /// marked more harmful than helpful.
    fn gauges(&self, playbook: &str) -> Result<(usize, usize), Self::Error>;

    /// Queues ops for a person; idempotent by `key`. `None` for no ops.
    fn propose(
        &mut self,
        playbook: &str,
        key: &str,
        run: Option<&str>,
        reasoning: &str,
        ops: &[(String, DeltaOp)],
        provenance: &Provenance,
    ) -> Result<Option<i64>, Self::Error>;
    fn pending_batch(&self, id: i64) -> Result<PendingBatch, Self::Error>;
    /// Approves or rejects every undecided op of a batch, recording `source` on the revision.
    fn decide_all(
        &mut self,
        id: i64,
        approve: bool,
        author: &str,
        source: Source,
    ) -> Result<DecideOutcome, Self::Error>;

    /// Approves every undecided op of a batch unless that would take the playbook over its token
    /// budget; then nothing is decided and the inner error holds the size it would have reached.
    fn approve_within_budget(
        &mut self,
        id: i64,
        author: &str,
        source: Source,
    ) -> Result<Result<DecideOutcome, SizeEffect>, Self::Error>;

    fn create_run(&mut self, config: &RunConfig) -> Result<String, Self::Error>;
    fn run(&self, id: &str) -> Result<RunRecord, Self::Error>;
    /// Claims a run for this process until the claim is dropped; fails if another process holds it.
    fn claim_run(&self, id: &str) -> Result<Option<Self::Claim>, Self::Error>;
    fn update_run(
        &mut self,
        id: &str,
        status: RunStatus,
        checkpoint: Option<&Checkpoint>,
        best_revision: Option<i64>,
        error: Option<&str>,
    ) -> Result<(), Self::Error>;
    /// Stores samples with their model calls and citations (upserts by key).
    fn record_samples(
        &mut self,
        run: &str,
        playbook: &str,
        samples: &[(SampleRecord, Vec<CallRecord>)],
    ) -> Result<(), Self::Error>;
    /// Stores model calls that belong to no single sample (the curator's), with the keys of the
    /// samples their prompts drew on (stored prompts name their texts instead of holding them).
    fn record_calls(
        &mut self,
        run: &str,
        key: &str,
        calls: &[CallRecord],
        related: &[String],
    ) -> Result<(), Self::Error>;
    /// Stores the calls of a sample or curator step that did not finish (an error, a cancel):
    /// kept under a key of their own, beside any later redo of `key`.
    fn record_abandoned_calls(
        &mut self,
        run: &str,
        key: &str,
        calls: &[CallRecord],
    ) -> Result<(), Self::Error>;
    fn record_metric(&mut self, run: &str, accuracy: &Accuracy) -> Result<(), Self::Error>;
    /// Keeps a trial with the queued batch it tried (`--approve gate:…`).
    fn record_trial(
        &mut self,
        batch: i64,
        subject: &str,
        report: &super::trial::TrialReport,
    ) -> Result<(), Self::Error>;
    /// First-attempt (right, total) of a run's samples in a split and epoch (and batch).
    fn first_attempt_score(
        &self,
        run: &str,
        split: Split,
        epoch: u32,
        step: Option<u64>,
    ) -> Result<(u64, u64), Self::Error>;
}
