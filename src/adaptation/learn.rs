//! One training batch: answer, score and reflect on its samples, apply the reflector's tags by
//! policy, send the curator's ops to the queue, and (approve mode `wait`) wait for the decisions.

use std::collections::HashMap;
use std::time::Duration;

use super::control::{Gate, Mode};
use super::engine::{Loop, db};
use super::sample::{LoopError, Outcome, Slot};
use super::{ApproveMode, Event, RunStore, Split};
use crate::approval::{DroppedOp, Evidence, Provenance, ReflectionNote};
use crate::delta::{ApplyOptions, DeltaBatch, DeltaOp, Source, TagOp};
use crate::roles::{self, CuratorInput, Reflection, Tag};

impl<S: RunStore> Loop<S> {
    /// One training batch. Returns the queued batch to wait on (approve mode `wait`) and the
    /// batch's first-attempt score (right, seen).
    pub(super) async fn learn_batch(
        &mut self,
        gate: &mut Gate,
        indices: &[usize],
        epoch: u32,
        step: u64,
    ) -> Result<(Option<i64>, (u64, u64)), LoopError> {
        let playbook = self.playbook().await?;
        let index = Some(self.index_for(&playbook).await?);
        if self.token_budget.is_some() {
            self.shown.observe(&playbook);
        }
        let mut outcomes = Vec::new();
        let mut i = 0;
        while i < indices.len() {
            gate.wait().await?;
            let take = gate.chunk(indices.len() - i);
            let items = indices[i..i + take]
                .iter()
                .map(|&idx| {
                    (
                        self.train[idx].clone(),
                        Slot {
                            split: Split::Train,
                            epoch,
                            step,
                            index: idx,
                        },
                    )
                })
                .collect();
            let mut done = self
                .run_samples(playbook.clone(), index.clone(), items, true)
                .await?;
            self.record(&mut done).await?;
            outcomes.extend(done);
            i += take;
            if i < indices.len() {
                gate.finished(Mode::Step);
            }
        }
        // the playbook and index are brought in step again for the curator: let go of this
        // batch's hold on them, so they are updated in place
        drop(index);
        drop(playbook);
        if self.token_budget.is_some() {
            for o in &outcomes {
                self.shown.record(o.record.shown.as_deref());
            }
        }
        let correct = outcomes.iter().filter(|o| o.record.first_correct).count() as u64;
        let score = (correct, outcomes.len() as u64);
        self.apply_tags(&outcomes, epoch, step).await?;
        Ok((self.curate(&outcomes, epoch, step).await?, score))
    }

    /// The reflector's tags, one TAG per bullet per sample, summed per bullet, applied by policy as one
    /// revision whose batch id is fixed by run, epoch and step (so a resumed batch never counts twice).
    async fn apply_tags(
        &self,
        outcomes: &[Outcome],
        epoch: u32,
        step: u64,
    ) -> Result<(), LoopError> {
        let mut sums: Vec<(String, [u64; 3])> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for o in outcomes {
            for t in &o.tags {
                let slot = *index.entry(t.id.clone()).or_insert_with(|| {
                    sums.push((t.id.clone(), [0; 3]));
                    sums.len() - 1
                });
                sums[slot].1[match t.tag {
                    Tag::Helpful => 0,
                    Tag::Harmful => 1,
                    Tag::Neutral => 2,
                }] += 1;
            }
        }
        if sums.is_empty() {
            return Ok(());
        }
        let (name, ids) = (
            self.ctx.config.playbook.clone(),
            sums.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
        );
        let active = db(&self.store, move |s| s.active_ids(&name, &ids)).await?;
        let ops: Vec<DeltaOp> = sums
            .into_iter()
            .filter(|(id, _)| active.contains(id))
            .map(|(id, [h, x, n])| {
                DeltaOp::Tag(TagOp {
                    bullet_id: id,
                    helpful: h,
                    harmful: x,
                    neutral: n,
                })
            })
            .collect();
        if ops.is_empty() {
            return Ok(());
        }
        let count = ops.len();
        let mut batch = DeltaBatch::new(
            format!("{}:tags:{epoch}:{step}", self.ctx.run),
            Source::Policy,
            ops,
        )
        .with_reason(format!(
            "reflector tags, {} epoch {epoch} batch {step}",
            self.ctx.run
        ));
        batch.author = Some("policy".into());
        let pb = self.ctx.config.playbook.clone();
        if self.ctx.config.tags_to_queue {
            // counters from what agents sent wait for a person like any proposal
            let (run, key) = (self.ctx.run.clone(), batch.id.clone());
            let reason = batch.reason.clone().unwrap_or_default();
            let ops = crate::approval::keyed_ops(&key, batch.operations.iter().cloned());
            let provenance = Provenance {
                run: Some(run.clone()),
                epoch: Some(epoch),
                step: Some(step),
                samples: outcomes.iter().map(evidence).collect(),
                ..Provenance::default()
            };
            db(&self.store, move |s| {
                s.propose(&pb, &key, Some(&run), &reason, &ops, &provenance)
            })
            .await?;
            return Ok(());
        }
        match db(&self.store, move |s| {
            s.apply(&pb, &batch, &ApplyOptions::default())
        })
        .await
        {
            Ok(outcome) => self.emit(Event::TagsApplied {
                revision: outcome.revision(),
                ops: count,
            }),
            Err(e) => self.emit(Event::Warning {
                message: format!("tags not applied: {e}"),
            }),
        }
        Ok(())
    }

    async fn curate(
        &mut self,
        outcomes: &[Outcome],
        epoch: u32,
        step: u64,
    ) -> Result<Option<i64>, LoopError> {
        let reflections: Vec<(String, Reflection)> = outcomes
            .iter()
            .filter_map(|o| o.reflection.clone().map(|r| (o.record.question.clone(), r)))
            .collect();
        if reflections.is_empty() {
            self.emit(Event::Proposed {
                pending: None,
                ops: 0,
                dropped: 0,
            });
            return Ok(None);
        }
        // the samples the curator's prompt tells of (their stored texts stand in its stored prompt)
        let related: Vec<String> = outcomes
            .iter()
            .filter(|o| o.reflection.is_some())
            .map(|o| o.record.key.clone())
            .collect();
        let playbook = self.playbook().await?;
        // A large playbook shows the curator the bullets relevant to the batch's lessons.
        let index = self.index_for(&playbook).await?;
        let query: String = reflections
            .iter()
            .map(|(about, r)| format!("{about} {}", r.summary()))
            .collect::<Vec<_>>()
            .join("\n");
        let shown = self.ctx.choose(&index, &query, None);
        let input = CuratorInput {
            playbook: &playbook,
            shown: shown.as_deref(),
            reflections: &reflections,
            size_tokens: Some(index.total_tokens()),
            token_budget: self.token_budget,
        };
        let trace = crate::llm::TraceIds {
            run: Some(self.ctx.run.clone()),
            sample: Some(format!("curator/{epoch}/{step}")),
        };
        let mut out = match roles::curate(
            self.ctx.models.curator.as_ref(),
            &input,
            &trace,
            &self.ctx.cancel,
        )
        .await
        {
            Ok(out) => out,
            Err(roles::RoleError::Unusable {
                error,
                calls: spent,
                ..
            }) => {
                // the calls were made: recorded and counted like any other
                let (run, key) = (self.ctx.run.clone(), format!("curator/{epoch}/{step}"));
                db(&self.store, move |s| {
                    s.record_calls(&run, &key, &spent, &related)
                })
                .await?;
                self.emit(Event::Warning {
                    message: format!(
                        "curator answer unusable, nothing proposed for batch {step}: {error}"
                    ),
                });
                return Ok(None);
            }
            Err(mut e) => {
                let spent = vec![(format!("curator/{epoch}/{step}"), e.take_calls())];
                self.record_abandoned(spent).await;
                return Err(e.into());
            }
        };
        let (run, key) = (self.ctx.run.clone(), format!("curator/{epoch}/{step}"));
        let calls = std::mem::take(&mut out.calls);
        db(&self.store, move |s| {
            s.record_calls(&run, &key, &calls, &related)
        })
        .await?;
        // a lesson the playbook already holds, in other words, is folded into that bullet
        let mut proposed: Vec<DeltaOp> = out.operations.iter().map(|c| c.op.clone()).collect();
        if self.ctx.config.unknown_sections_to_others {
            // by the person's setting: no new sections, their lessons go to OTHERS
            let others = playbook
                .sections
                .iter()
                .find(|s| s.name.eq_ignore_ascii_case("OTHERS"))
                .map_or_else(|| "OTHERS".to_string(), |s| s.name.clone());
            proposed.retain(|op| !matches!(op, DeltaOp::AddSection { .. }));
            for op in &mut proposed {
                if let DeltaOp::Add(a) = op
                    && !playbook.has_section(&a.section)
                {
                    a.section = others.clone();
                }
            }
        }
        let (folded, more_dropped) = self.fold_duplicates(&playbook, &index, proposed).await?;
        // over the token budget, the batch also proposes what to let go
        let (folded, budget) = self.hold_budget(&playbook, &index, folded).await?;
        let mut out = out;
        out.dropped.extend(more_dropped);
        out.operations = roles::curator::keyed(folded);
        let provenance = Provenance {
            run: Some(self.ctx.run.clone()),
            epoch: Some(epoch),
            step: Some(step),
            samples: outcomes.iter().map(evidence).collect(),
            curator_reasoning: Some(out.reasoning.clone()),
            dropped: out
                .dropped
                .iter()
                .map(|(op, reason)| DroppedOp {
                    op: op.clone(),
                    reason: reason.clone(),
                })
                .collect(),
            budget: budget.clone(),
        };
        let ops: Vec<(String, DeltaOp)> = out
            .operations
            .iter()
            .map(|c| (c.key.clone(), c.op.clone()))
            .collect();
        let ops_proposed: Vec<DeltaOp> = ops.iter().map(|(_, op)| op.clone()).collect();
        let (pb, key, run, reasoning, count, dropped) = (
            self.ctx.config.playbook.clone(),
            format!("{}:{epoch}:{step}", self.ctx.run),
            self.ctx.run.clone(),
            out.reasoning.clone(),
            ops.len(),
            out.dropped.len(),
        );
        let pending = db(&self.store, move |s| {
            s.propose(&pb, &key, Some(&run), &reasoning, &ops, &provenance)
        })
        .await?;
        self.emit(Event::Proposed {
            pending,
            ops: count,
            dropped,
        });
        let Some(pending) = pending else {
            return Ok(None);
        };
        self.observe(pending, false).await?;
        match self.ctx.config.approve {
            // a new section is a person's call: such a batch waits for one
            ApproveMode::Auto | ApproveMode::Gate(_) if new_sections(&ops_proposed).is_some() => {
                self.emit(Event::Warning {
                    message: format!(
                        "proposal #{pending} held for a person: it creates section '{}', which the playbook does not have; review it with `ace queue show {pending}` or in the workbench",
                        new_sections(&ops_proposed).unwrap_or_default()
                    ),
                });
                Ok(None)
            }
            ApproveMode::Auto => {
                self.auto_approve(pending, budget).await?;
                Ok(None)
            }
            ApproveMode::Gate(tenths) => {
                let allowed = f64::from(tenths) / 10.0;
                let own: Vec<String> = outcomes
                    .iter()
                    .map(|o| o.record.sample_id.clone())
                    .collect();
                match self.gate_trial(pending, &own).await? {
                    Some(report) if report.delta_points() >= -allowed => {
                        self.emit(Event::Notice {
                            message: format!(
                                "proposal #{pending} passed its trial: {}",
                                report.summary()
                            ),
                        });
                        self.auto_approve(pending, budget).await?;
                        Ok(None)
                    }
                    Some(report) => {
                        self.emit(Event::Warning {
                            message: format!(
                                "proposal #{pending} held for a person: its trial lost more than {allowed} points ({}); review it with `ace queue show {pending}` or in the workbench",
                                report.summary()
                            ),
                        });
                        Ok(Some(pending))
                    }
                    None => {
                        self.emit(Event::Warning {
                            message: format!(
                                "proposal #{pending} held for a person: no held-out samples to try it on (give the run a validation set)"
                            ),
                        });
                        Ok(Some(pending))
                    }
                }
            }
            ApproveMode::Wait => Ok(Some(pending)),
            ApproveMode::Queue => Ok(None),
        }
    }

    /// Applies a proposal by policy (source `auto-policy`), never over the playbook's token budget.
    async fn auto_approve(
        &self,
        pending: i64,
        budget: Option<crate::approval::BudgetNote>,
    ) -> Result<(), LoopError> {
        // never over the token budget: checked again as the batch is written
        let outcome = db(&self.store, move |s| {
            s.approve_within_budget(pending, "auto-policy", Source::AutoPolicy)
        })
        .await;
        match outcome {
            Ok(Ok(o)) => {
                self.observe(pending, true).await?;
                if let Some(note) = budget.filter(|n| !n.prunes.is_empty()) {
                    self.emit(Event::Notice {
                        message: format!(
                            "batch {pending} would have taken the playbook over its token budget ({} → {} of {}); applied with {} prune{} ({} tokens now)",
                            note.before,
                            note.proposed,
                            note.budget,
                            note.prunes.len(),
                            if note.prunes.len() == 1 { "" } else { "s" },
                            note.after
                        ),
                    });
                }
                self.emit(Event::Applied {
                    pending,
                    revision: o.revision,
                });
            }
            Ok(Err(effect)) => self.emit(Event::Warning {
                message: format!(
                    "queued batch {pending} held for a person: approving it would take the playbook over its token budget ({}), even with the prunes it proposes; review it with `ace queue show {pending}` or in the workbench",
                    effect.describe()
                ),
            }),
            Err(e) => self.emit(Event::Warning {
                message: format!("queued batch {pending} could not be applied: {e}"),
            }),
        }
        Ok(())
    }

    /// Tries a queued proposal on held-out samples (the validation set, else training samples that
    /// are not its own), records the trial with it, and returns it; `None` when there are no samples.
    async fn gate_trial(
        &mut self,
        pending: i64,
        own: &[String],
    ) -> Result<Option<super::trial::TrialReport>, LoopError> {
        use super::trial::{TrialSetup, choose_samples, trial};
        let ctx = self.ctx.clone();
        let cfg = &ctx.config;
        let (pool, source) = match &self.val {
            Some(val) => (val.as_slice(), "the validation set"),
            None => (self.train.as_slice(), "held-out training samples"),
        };
        let exclude: &[String] = if self.val.is_some() { &[] } else { own };
        let samples = choose_samples(pool, cfg.gate_samples, cfg.seed, exclude);
        if samples.is_empty() {
            return Ok(None);
        }
        let batch = db(&self.store, move |s| s.pending_batch(pending)).await?;
        let before = self.playbook().await?;
        let after = match super::trial::with_proposal(&before, &batch, None) {
            Ok(after) => after,
            Err(e) => {
                self.emit(Event::Warning {
                    message: format!("proposal #{pending} cannot be tried: {e}"),
                });
                return Ok(None);
            }
        };
        let setup = TrialSetup {
            generator: ctx.models.generator.clone(),
            env: cfg.env.clone(),
            concurrency: cfg.concurrency,
            prompt_budget: cfg.prompt_budget,
            cancel: ctx.cancel.child_token(),
        };
        let report = trial(
            &setup,
            &self.answers,
            before,
            std::sync::Arc::new(after),
            &samples,
            source,
        )
        .await?;
        let (subject, stored) = (format!("proposal #{pending} (gate)"), report.clone());
        let (run, key, calls) = (
            ctx.run.clone(),
            format!("trial/{pending}"),
            report.records.clone(),
        );
        // the trial's calls are the run's too: counted in its totals
        db(&self.store, move |s| {
            s.record_trial(pending, &subject, &stored)?;
            s.record_calls(&run, &key, &calls, &[])
        })
        .await?;
        Ok(Some(report))
    }

    /// Waits until a queued batch is decided (by the workbench or `ace queue` in any process).
    pub(super) async fn wait_for(&self, gate: &mut Gate, pending: i64) -> Result<(), LoopError> {
        self.emit(Event::WaitingForApproval { pending });
        let poll = Duration::from_millis(self.ctx.config.poll_ms.max(10));
        loop {
            let batch = db(&self.store, move |s| s.pending_batch(pending)).await?;
            if !batch.is_pending() {
                self.observe(pending, true).await?;
                self.emit(Event::Applied {
                    pending,
                    revision: batch.revision,
                });
                return Ok(());
            }
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                more = gate.next() => if more.is_none() {
                    return Err(LoopError::Cancelled);
                },
            }
        }
    }
}

/// A sample as the evidence a reviewer reads beside the proposal.
/// The sections a proposal would create, named (`None`: it creates none).
fn new_sections(ops: &[DeltaOp]) -> Option<String> {
    let names: Vec<&str> = ops
        .iter()
        .filter_map(|op| match op {
            DeltaOp::AddSection { section, .. } => Some(section.as_str()),
            _ => None,
        })
        .collect();
    (!names.is_empty()).then(|| names.join("', '"))
}

fn evidence(o: &Outcome) -> Evidence {
    Evidence {
        key: o.record.key.clone(),
        sample_id: o.record.sample_id.clone(),
        question: o.record.question.clone(),
        answer: o.record.answer.clone(),
        ground_truth: o.record.ground_truth.clone(),
        correct: o.record.correct,
        feedback: o.record.feedback.clone(),
        cited: o.record.cited.clone(),
        reflection: o.reflection.as_ref().map(|r| ReflectionNote {
            error_identification: r.error_identification.clone(),
            root_cause_analysis: r.root_cause_analysis.clone(),
            correct_approach: r.correct_approach.clone(),
            key_insight: r.key_insight.clone(),
        }),
    }
}
