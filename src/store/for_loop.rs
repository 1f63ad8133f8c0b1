//! The store as the loop sees it: [`RunStore`], written in the core, implemented here by the
//! inherent methods of [`Store`].

use std::collections::HashSet;

use super::{RunClaim, Store, StoreError};
use crate::adaptation::{
    Accuracy, Checkpoint, RunConfig, RunRecord, RunStatus, RunStore, SampleRecord, Split,
};
use crate::approval::{DecideOutcome, PendingBatch, Provenance};
use crate::delta::{ApplyOptions, ApplyOutcome, DeltaBatch, DeltaOp, Source};
use crate::llm::CallRecord;
use crate::playbook::Playbook;
use crate::refine::SizeEffect;

impl RunStore for Store {
    type Error = StoreError;
    type Claim = RunClaim;

    fn ensure_playbook(&mut self, name: &str, sections: &[&str]) -> Result<(), StoreError> {
        if !self.playbook_names()?.iter().any(|n| n == name) {
            self.create_playbook(name, sections)?;
        }
        Ok(())
    }

    fn load_playbook(&self, name: &str) -> Result<Playbook, StoreError> {
        // the loop keeps the playbook in memory and current from its changes
        Store::load_playbook_lean(self, name)
    }

    fn load_playbook_at(&self, name: &str, revision: i64) -> Result<Playbook, StoreError> {
        let mut playbook = Store::playbook_at(self, revision)?;
        if playbook.name != name {
            return Err(StoreError::UnknownRevision(revision));
        }
        playbook.revision = Some(revision);
        Ok(playbook)
    }

    fn active_ids(&self, playbook: &str, ids: &[String]) -> Result<HashSet<String>, StoreError> {
        Store::active_ids(self, playbook, ids)
    }

    fn head_revision(&self, playbook: &str) -> Result<Option<i64>, StoreError> {
        Store::head_revision(self, playbook)
    }

    fn changes_since(
        &self,
        playbook: &str,
        since: i64,
        limit: usize,
    ) -> Result<Option<crate::delta::Replay>, StoreError> {
        Store::changes_since(self, playbook, since, limit)
    }

    fn apply(
        &mut self,
        playbook: &str,
        batch: &DeltaBatch,
        options: &ApplyOptions,
    ) -> Result<ApplyOutcome, StoreError> {
        Store::apply(self, playbook, batch, options)
    }

    fn token_budget(&self, playbook: &str) -> Result<Option<u64>, StoreError> {
        Store::token_budget(self, playbook)
    }

    fn cached_vectors(
        &self,
        model: &str,
        keys: &[u64],
    ) -> Result<std::collections::HashMap<u64, Vec<f32>>, StoreError> {
        Store::cached_vectors(self, model, keys)
    }

    fn cache_vectors(
        &mut self,
        model: &str,
        vectors: &[(u64, Vec<f32>)],
    ) -> Result<(), StoreError> {
        Store::cache_vectors(self, model, vectors)
    }

    fn gauges(&self, playbook: &str) -> Result<(usize, usize), StoreError> {
        Store::gauges(self, playbook)
    }

    fn propose(
        &mut self,
        playbook: &str,
        key: &str,
        run: Option<&str>,
        reasoning: &str,
        ops: &[(String, DeltaOp)],
        provenance: &Provenance,
    ) -> Result<Option<i64>, StoreError> {
        Store::propose(self, playbook, key, run, reasoning, ops, provenance)
    }

    fn pending_batch(&self, id: i64) -> Result<PendingBatch, StoreError> {
        Store::pending_batch(self, id)
    }

    fn decide_all(
        &mut self,
        id: i64,
        approve: bool,
        author: &str,
        source: Source,
    ) -> Result<DecideOutcome, StoreError> {
        Store::decide_all_as(self, id, approve, None, author, source)
    }

    fn approve_within_budget(
        &mut self,
        id: i64,
        author: &str,
        source: Source,
    ) -> Result<Result<DecideOutcome, SizeEffect>, StoreError> {
        match Store::approve_within_budget(self, id, author, source) {
            Ok(outcome) => Ok(Ok(outcome)),
            Err(StoreError::OverBudget { effect, .. }) => Ok(Err(effect)),
            Err(e) => Err(e),
        }
    }

    fn create_run(&mut self, config: &RunConfig) -> Result<String, StoreError> {
        Store::create_run(self, config)
    }

    fn run(&self, id: &str) -> Result<RunRecord, StoreError> {
        Store::run(self, id)
    }

    fn claim_run(&self, id: &str) -> Result<Option<RunClaim>, StoreError> {
        Store::claim_run(self, id)
    }

    fn update_run(
        &mut self,
        id: &str,
        status: RunStatus,
        checkpoint: Option<&Checkpoint>,
        best_revision: Option<i64>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        Store::update_run(self, id, status, checkpoint, best_revision, error)
    }

    fn record_samples(
        &mut self,
        run: &str,
        playbook: &str,
        samples: &[(SampleRecord, Vec<CallRecord>)],
    ) -> Result<(), StoreError> {
        Store::record_samples(self, run, playbook, samples)
    }

    fn record_calls(
        &mut self,
        run: &str,
        key: &str,
        calls: &[CallRecord],
        related: &[String],
    ) -> Result<(), StoreError> {
        Store::record_calls(self, run, key, calls, related)
    }

    fn record_abandoned_calls(
        &mut self,
        run: &str,
        key: &str,
        calls: &[CallRecord],
    ) -> Result<(), StoreError> {
        Store::record_abandoned_calls(self, run, key, calls)
    }

    fn record_trial(
        &mut self,
        batch: i64,
        subject: &str,
        report: &crate::adaptation::trial::TrialReport,
    ) -> Result<(), StoreError> {
        Store::record_trial(self, Some(batch), None, subject, report).map(|_| ())
    }

    fn record_metric(&mut self, run: &str, accuracy: &Accuracy) -> Result<(), StoreError> {
        Store::record_metric(self, run, accuracy)
    }

    fn first_attempt_score(
        &self,
        run: &str,
        split: Split,
        epoch: u32,
        step: Option<u64>,
    ) -> Result<(u64, u64), StoreError> {
        Store::first_attempt_score(self, run, split, epoch, step)
    }
}
