//! The run loop (see the module docs of [`crate::adaptation`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::sample::{Ctx, LoopError, Outcome, Slot, process};
use super::{ApproveMode, Control, Event, Models, RunConfig, RunKind};
use crate::delta::{DeltaBatch, DeltaOp, Source, TagOp};
use crate::environment::{Dataset, Environment, Sample, dataset};
use crate::playbook::{DEFAULT_SECTIONS, Playbook};
use crate::roles::{self, CuratorInput, Tag};
use crate::store::{Accuracy, ApplyOptions, Store, StoreError};

/// Where a run stands; saved after every batch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Checkpoint {
    /// 1-based epoch in progress.
    epoch: u32,
    /// Index (in the epoch's order) of the first sample not yet done.
    next: usize,
    /// Batches finished so far.
    step: u64,
    /// A queued batch of the batch starting at `next` that the run waits on.
    awaiting: Option<i64>,
    best_val: Option<f64>,
}

type Db = Arc<Mutex<Store>>;

async fn db<T: Send + 'static>(
    store: &Db,
    f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, LoopError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let mut s = store.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut s)
    })
    .await
    .map_err(|e| LoopError::Store(e.to_string()))?
    .map_err(|e| LoopError::Store(e.to_string()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Running,
    Paused,
    Step,
    ToBatchEnd,
    ToEpochEnd,
}

/// Turns controls into when the loop may go on.
struct Gate {
    mode: Mode,
    controls: UnboundedReceiver<Control>,
    events: UnboundedSender<Event>,
    cancel: CancellationToken,
    attached: bool,
}

impl Gate {
    fn absorb(&mut self, c: Control) {
        self.mode = match c {
            Control::Pause => Mode::Paused,
            Control::Resume => Mode::Running,
            Control::Step => Mode::Step,
            Control::RunToBatchEnd => Mode::ToBatchEnd,
            Control::RunToEpochEnd => Mode::ToEpochEnd,
            Control::Cancel => {
                self.cancel.cancel();
                self.mode
            }
            Control::Wake => self.mode,
        };
    }

    fn drain(&mut self) {
        while let Ok(c) = self.controls.try_recv() {
            self.absorb(c);
        }
    }

    /// Returns when the loop may process more; errors when cancelled.
    async fn wait(&mut self) -> Result<(), LoopError> {
        self.drain();
        if self.mode == Mode::Paused {
            let _ = self.events.send(Event::Paused);
            while self.mode == Mode::Paused && self.attached {
                tokio::select! {
                    c = self.controls.recv() => match c {
                        Some(c) => self.absorb(c),
                        None => self.attached = false,
                    },
                    _ = self.cancel.cancelled() => return Err(LoopError::Cancelled),
                }
            }
            if !self.attached {
                self.mode = Mode::Running;
            }
            let _ = self.events.send(Event::Resumed);
        }
        if self.cancel.is_cancelled() {
            Err(LoopError::Cancelled)
        } else {
            Ok(())
        }
    }

    fn chunk(&self, left: usize) -> usize {
        if self.mode == Mode::Step { 1 } else { left }
    }

    fn finished(&mut self, level: Mode) {
        self.drain();
        if self.mode == level || (level == Mode::ToBatchEnd && self.mode == Mode::Step) {
            self.mode = Mode::Paused;
        }
    }
}

/// Sends controls to a run, in order. The loop reads them between samples; `Cancel` also fires the
/// run's cancellation token at once, so model calls in flight stop. When every clone is dropped the
/// loop goes on by itself (detached).
#[derive(Debug, Clone)]
pub struct Controls {
    tx: UnboundedSender<Control>,
    cancel: CancellationToken,
}

impl Controls {
    /// Fails only if the run has ended. A cancel always succeeds: the token fires at once, and the
    /// run may be gone before the control itself could be queued.
    pub fn send(
        &self,
        control: Control,
    ) -> Result<(), tokio::sync::mpsc::error::SendError<Control>> {
        if control == Control::Cancel {
            self.cancel.cancel();
            let _ = self.tx.send(control);
            return Ok(());
        }
        self.tx.send(control)
    }
}

/// A started run: send controls, read events, await the result (the run id).
pub struct RunHandle {
    pub controls: Controls,
    pub events: UnboundedReceiver<Event>,
    pub cancel: CancellationToken,
    pub task: tokio::task::JoinHandle<Result<String, LoopError>>,
}

/// Starts a run (or resumes `resume`) as a tokio task.
pub fn start(store: Db, models: Models, config: RunConfig, resume: Option<String>) -> RunHandle {
    let (control_tx, control_rx) = unbounded_channel();
    let (event_tx, event_rx) = unbounded_channel();
    let cancel = CancellationToken::new();
    let task = tokio::spawn(run(
        store,
        models,
        config,
        resume,
        control_rx,
        event_tx,
        cancel.clone(),
    ));
    RunHandle {
        controls: Controls {
            tx: control_tx,
            cancel: cancel.clone(),
        },
        events: event_rx,
        cancel,
        task,
    }
}

fn load(path: &std::path::Path, config: &RunConfig) -> Result<Dataset, LoopError> {
    dataset::load(path, &config.fields.map(), config.skip_bad)
        .map_err(|e| LoopError::Data(e.to_string()))
}

/// Runs (or resumes) a whole run; returns its id. The run's status is kept in the store.
pub async fn run(
    store: Db,
    models: Models,
    config: RunConfig,
    resume: Option<String>,
    controls: UnboundedReceiver<Control>,
    events: UnboundedSender<Event>,
    cancel: CancellationToken,
) -> Result<String, LoopError> {
    // Resuming takes the stored configuration; a new run stores its own.
    let (config, run_id, checkpoint) = match &resume {
        Some(id) => {
            let id = id.clone();
            let record = db(&store, move |s| s.run(&id)).await?;
            let config: RunConfig = serde_json::from_value(record.config.clone()).map_err(|e| {
                LoopError::Data(format!("run {} has an unreadable config: {e}", record.id))
            })?;
            let ck: Checkpoint = record
                .checkpoint
                .clone()
                .and_then(|c| serde_json::from_value(c).ok())
                .unwrap_or_default();
            (config, Some(record.id), ck)
        }
        None => (config, None, Checkpoint::default()),
    };
    let env = Environment::parse(&config.env).map_err(|e| LoopError::Data(e.to_string()))?;
    // Every dataset is read and checked before any model call.
    let train = load(&config.dataset, &config)?;
    let val = config
        .val
        .as_deref()
        .map(|p| load(p, &config))
        .transpose()?;
    let test = config
        .test
        .as_deref()
        .map(|p| load(p, &config))
        .transpose()?;
    if env.needs_ground_truth()
        && let Some(s) = train.samples.iter().find(|s| s.ground_truth.is_none())
    {
        return Err(LoopError::Data(format!(
            "sample {} has no ground truth, which the {} environment needs",
            s.id,
            env.name()
        )));
    }
    for (data, name) in [(&train, &config.dataset)] {
        if !data.skipped.is_empty() {
            let _ = events.send(Event::Warning {
                message: format!(
                    "skipped {} bad lines of {}",
                    data.skipped.len(),
                    name.display()
                ),
            });
        }
    }
    // The run is claimed for this process until this function returns (see `Store::claim_run`):
    // resuming a run another process is driving fails here, before anything is written.
    let (run_id, claim) = match run_id {
        Some(id) => {
            let id2 = id.clone();
            let claim = db(&store, move |s| {
                let claim = s.claim_run(&id2)?;
                s.update_run(&id2, "running", None, None, None)?;
                Ok(claim)
            })
            .await?;
            (id, claim)
        }
        None => {
            let (pb, kind, cfg, mode) = (
                config.playbook.clone(),
                config.kind,
                json!(config),
                config.feedback_mode(),
            );
            db(&store, move |s| {
                if s.resolve_playbook(Some(&pb)).is_err() {
                    s.create_playbook(&pb, DEFAULT_SECTIONS)?;
                }
                let id = s.create_run(
                    &pb,
                    if kind == RunKind::Online {
                        "online"
                    } else {
                        "offline"
                    },
                    &cfg,
                    mode,
                )?;
                let claim = s.claim_run(&id)?;
                Ok((id, claim))
            })
            .await?
        }
    };
    let _ = events.send(Event::Started {
        run: run_id.clone(),
        playbook: config.playbook.clone(),
        kind: config.kind,
        feedback_mode: config.feedback_mode().into(),
        train: train.samples.len(),
        val: val.as_ref().map_or(0, |d| d.samples.len()),
        test: test.as_ref().map_or(0, |d| d.samples.len()),
        resumed: resume.is_some(),
    });
    let ctx = Arc::new(Ctx {
        run: run_id.clone(),
        models,
        env,
        config,
        events: events.clone(),
        cancel: cancel.clone(),
    });
    let mut gate = Gate {
        mode: Mode::Running,
        controls,
        events: events.clone(),
        cancel: cancel.clone(),
        attached: true,
    };
    let mut lp = Loop {
        ctx: ctx.clone(),
        store: store.clone(),
        ck: checkpoint,
        train: train.samples,
        val: val.map(|d| d.samples),
        test: test.map(|d| d.samples),
    };
    let result = lp.go(&mut gate).await;
    let (status, error) = match &result {
        Ok(()) => ("finished", None),
        Err(LoopError::Cancelled) => ("cancelled", None),
        Err(e) => ("failed", Some(e.to_string())),
    };
    let (id, err) = (run_id.clone(), error.clone());
    db(&store, move |s| {
        s.update_run(&id, status, None, None, err.as_deref())
    })
    .await?;
    // The run is free before anyone hears it ended: whoever resumes it on `Finished` must not find
    // it still claimed by this process.
    drop(claim);
    if let Some(e) = error {
        let _ = events.send(Event::Failed { error: e });
    }
    let _ = events.send(Event::Finished {
        run: run_id.clone(),
        status: status.into(),
    });
    result.map(|()| run_id)
}

struct Loop {
    ctx: Arc<Ctx>,
    store: Db,
    ck: Checkpoint,
    train: Vec<Sample>,
    val: Option<Vec<Sample>>,
    test: Option<Vec<Sample>>,
}

/// A deterministic shuffle of `0..n` for an epoch (xorshift seeded by seed and epoch).
fn order(n: usize, seed: u64, epoch: u32, shuffle: bool) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    if !shuffle {
        return v;
    }
    let mut x = seed ^ (u64::from(epoch).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

impl Loop {
    fn emit(&self, e: Event) {
        self.ctx.emit(e);
    }

    /// Metrics after a proposal or decision: deltas by op and decision, queue length, harmful bullets.
    async fn observe(&self, pending: i64, decided: bool) -> Result<(), LoopError> {
        let pb = self.ctx.config.playbook.clone();
        let (batch, (queued, harmful)) = db(&self.store, move |s| {
            Ok((s.pending_batch(pending)?, s.gauges(&pb)?))
        })
        .await?;
        super::metrics::deltas(&batch, decided);
        super::metrics::queue_length(queued);
        super::metrics::harmful_bullets(harmful);
        Ok(())
    }

    async fn save(&self, status: &str) -> Result<(), LoopError> {
        let (id, ck, status) = (self.ctx.run.clone(), json!(self.ck), status.to_string());
        db(&self.store, move |s| {
            s.update_run(&id, &status, Some(&ck), None, None)
        })
        .await
    }

    async fn playbook(&self) -> Result<Arc<Playbook>, LoopError> {
        let name = self.ctx.config.playbook.clone();
        Ok(Arc::new(
            db(&self.store, move |s| s.load_playbook(&name)).await?,
        ))
    }

    async fn go(&mut self, gate: &mut Gate) -> Result<(), LoopError> {
        let cfg = self.ctx.config.clone();
        let epochs = if cfg.kind == RunKind::Online {
            1
        } else {
            cfg.epochs.max(1)
        };
        let n = self.train.len();
        let batch = cfg.batch_size.max(1);
        if self.ck.epoch == 0 {
            self.ck.epoch = 1;
        }
        while self.ck.epoch <= epochs {
            let epoch = self.ck.epoch;
            let order = order(n, cfg.seed, epoch, cfg.kind == RunKind::Offline);
            while self.ck.next < n {
                let (start, end) = (self.ck.next, (self.ck.next + batch).min(n));
                gate.wait().await?;
                let step = self.ck.step + 1;
                let awaiting = match self.ck.awaiting.take() {
                    Some(id) => Some(id),
                    None => {
                        self.learn_batch(gate, &order[start..end], epoch, step)
                            .await?
                    }
                };
                if let Some(pending) = awaiting {
                    self.ck.awaiting = Some(pending);
                    self.save("waiting").await?;
                    self.wait_for(gate, pending).await?;
                    self.ck.awaiting = None;
                }
                self.ck.next = end;
                self.ck.step = step;
                self.save("running").await?;
                let (correct, seen) = self.score(epoch, None).await?;
                if cfg.kind == RunKind::Online {
                    let window = self.score(epoch, Some(step)).await?;
                    self.metric("online", epoch, step, window.0, window.1)
                        .await?;
                }
                self.emit(Event::BatchFinished {
                    epoch,
                    step,
                    done: end,
                    total: n,
                    correct_so_far: correct,
                    seen_so_far: seen,
                });
                if let Some(k) = cfg.val_every
                    && k > 0
                    && step.is_multiple_of(k)
                {
                    self.validate(epoch, step).await?;
                }
                gate.finished(Mode::ToBatchEnd);
            }
            let (correct, total) = self.score(epoch, None).await?;
            self.metric("train", epoch, self.ck.step, correct, total)
                .await?;
            self.emit(Event::EpochFinished {
                epoch,
                split: "train".into(),
                correct,
                total,
            });
            if cfg.val_every.is_none() && self.val.is_some() {
                self.validate(epoch, self.ck.step).await?;
            }
            self.ck.epoch += 1;
            self.ck.next = 0;
            self.save("running").await?;
            gate.finished(Mode::ToEpochEnd);
        }
        if let Some(test) = self.test.clone() {
            let (correct, total) = self.evaluate("test", &test, epochs, self.ck.step).await?;
            self.metric("test", epochs, self.ck.step, correct, total)
                .await?;
            self.emit(Event::EpochFinished {
                epoch: epochs,
                split: "test".into(),
                correct,
                total,
            });
        }
        Ok(())
    }

    async fn metric(
        &self,
        split: &str,
        epoch: u32,
        step: u64,
        correct: u64,
        total: u64,
    ) -> Result<(), LoopError> {
        let (run, pb) = (self.ctx.run.clone(), self.ctx.config.playbook.clone());
        let split = split.to_string();
        db(&self.store, move |s| {
            let revision = s.head_revision(&pb)?;
            s.record_metric(
                &run,
                &Accuracy {
                    split,
                    epoch,
                    step,
                    correct,
                    total,
                    revision,
                },
            )
        })
        .await
    }

    /// First-attempt accuracy of the training samples done so far in `epoch` (in one batch, if given).
    async fn score(&self, epoch: u32, step: Option<u64>) -> Result<(u64, u64), LoopError> {
        let run = self.ctx.run.clone();
        db(&self.store, move |s| {
            s.first_attempt_score(&run, "train", epoch, step)
        })
        .await
    }

    /// Stores samples with their model calls and citations (one transaction).
    async fn record(&self, done: &[Outcome]) -> Result<(), LoopError> {
        let records: Vec<_> = done
            .iter()
            .map(|o| (o.record.clone(), o.calls.clone()))
            .collect();
        let (run, pb) = (self.ctx.run.clone(), self.ctx.config.playbook.clone());
        db(&self.store, move |s| s.record_samples(&run, &pb, &records)).await
    }

    /// Runs samples concurrently (bounded by the configured concurrency); results in input order.
    async fn run_samples(
        &self,
        playbook: Arc<Playbook>,
        items: Vec<(Sample, Slot)>,
        learn: bool,
    ) -> Result<Vec<Outcome>, LoopError> {
        let permits = Arc::new(tokio::sync::Semaphore::new(
            self.ctx.config.concurrency.max(1),
        ));
        let mut set = JoinSet::new();
        let count = items.len();
        for (i, (sample, slot)) in items.into_iter().enumerate() {
            let (ctx, pb, permits) = (self.ctx.clone(), playbook.clone(), permits.clone());
            set.spawn(async move {
                let _permit = permits
                    .acquire_owned()
                    .await
                    .map_err(|_| LoopError::Cancelled)?;
                process(ctx, pb, sample, slot, learn).await.map(|o| (i, o))
            });
        }
        let mut out: Vec<Option<Outcome>> = (0..count).map(|_| None).collect();
        let mut first_error = None;
        while let Some(joined) = set.join_next().await {
            match joined.map_err(|e| LoopError::Data(format!("a sample task failed: {e}")))? {
                Ok((i, o)) => out[i] = Some(o),
                Err(e) => {
                    if first_error.is_none() {
                        first_error = Some(e);
                        self.ctx.cancel.cancel();
                    }
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(out.into_iter().flatten().collect()),
        }
    }

    /// One training batch: answer, score, reflect; tags by policy; curator ops to the queue. Returns
    /// the queued batch to wait on (approve mode `wait`).
    async fn learn_batch(
        &mut self,
        gate: &mut Gate,
        indices: &[usize],
        epoch: u32,
        step: u64,
    ) -> Result<Option<i64>, LoopError> {
        let playbook = self.playbook().await?;
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
                            split: "train",
                            epoch,
                            step,
                            index: idx,
                        },
                    )
                })
                .collect();
            let done = self.run_samples(playbook.clone(), items, true).await?;
            self.record(&done).await?;
            outcomes.extend(done);
            i += take;
            if i < indices.len() {
                gate.finished(Mode::Step);
            }
        }
        self.apply_tags(&outcomes, epoch, step).await?;
        self.curate(&outcomes, epoch, step).await
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
        &self,
        outcomes: &[Outcome],
        epoch: u32,
        step: u64,
    ) -> Result<Option<i64>, LoopError> {
        let reflections: Vec<(String, roles::Reflection)> = outcomes
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
        let playbook = self.playbook().await?;
        let input = CuratorInput {
            playbook: &playbook,
            reflections: &reflections,
            token_budget: self.ctx.config.token_budget,
        };
        let trace = crate::llm::TraceIds {
            run: Some(self.ctx.run.clone()),
            sample: Some(format!("curator/{epoch}/{step}")),
        };
        let out = match roles::curate(
            self.ctx.models.curator.as_ref(),
            &input,
            &trace,
            &self.ctx.cancel,
        )
        .await
        {
            Ok(out) => out,
            Err(roles::RoleError::Unusable { error, .. }) => {
                self.emit(Event::Warning {
                    message: format!(
                        "curator answer unusable, nothing proposed for batch {step}: {error}"
                    ),
                });
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let (run, key) = (self.ctx.run.clone(), format!("curator/{epoch}/{step}"));
        let calls = out.calls.clone();
        db(&self.store, move |s| s.record_calls(&run, &key, &calls)).await?;
        let provenance = json!({
            "run": self.ctx.run, "epoch": epoch, "step": step,
            "samples": outcomes.iter().map(|o| json!({
                "key": o.record.key, "sample_id": o.record.sample_id, "question": o.record.question,
                "answer": o.record.answer, "ground_truth": o.record.ground_truth, "correct": o.record.correct,
                "feedback": o.record.feedback, "cited": o.record.cited,
                "reflection": o.reflection.as_ref().map(|r| json!({"error_identification": r.error_identification,
                    "root_cause_analysis": r.root_cause_analysis, "correct_approach": r.correct_approach, "key_insight": r.key_insight})),
            })).collect::<Vec<Value>>(),
            "curator_reasoning": out.reasoning,
            "dropped": out.dropped.iter().map(|(op, why)| json!({"op": op, "reason": why})).collect::<Vec<Value>>(),
        });
        let ops: Vec<(String, DeltaOp)> = out
            .operations
            .iter()
            .map(|c| (c.key.clone(), c.op.clone()))
            .collect();
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
            ApproveMode::Auto => {
                let outcome = db(&self.store, move |s| {
                    s.decide_all_as(pending, true, None, "auto-policy", Source::AutoPolicy)
                })
                .await;
                match outcome {
                    Ok(o) => {
                        self.observe(pending, true).await?;
                        self.emit(Event::Applied {
                            pending,
                            revision: o.revision,
                        });
                    }
                    Err(e) => self.emit(Event::Warning {
                        message: format!("queued batch {pending} could not be applied: {e}"),
                    }),
                }
                Ok(None)
            }
            ApproveMode::Wait => Ok(Some(pending)),
            ApproveMode::Queue => Ok(None),
        }
    }

    /// Waits until a queued batch is decided (by the workbench or `ace queue` in any process).
    async fn wait_for(&self, gate: &mut Gate, pending: i64) -> Result<(), LoopError> {
        self.emit(Event::WaitingForApproval { pending });
        let poll = Duration::from_millis(self.ctx.config.poll_ms.max(10));
        loop {
            let batch = db(&self.store, move |s| s.pending_batch(pending)).await?;
            if batch.status != "pending" {
                self.observe(pending, true).await?;
                self.emit(Event::Applied {
                    pending,
                    revision: batch.revision,
                });
                return Ok(());
            }
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                c = gate.controls.recv(), if gate.attached => match c {
                    Some(c) => gate.absorb(c),
                    None => gate.attached = false,
                },
                _ = self.ctx.cancel.cancelled() => return Err(LoopError::Cancelled),
            }
        }
    }

    async fn evaluate(
        &self,
        split: &'static str,
        samples: &[Sample],
        epoch: u32,
        step: u64,
    ) -> Result<(u64, u64), LoopError> {
        let playbook = self.playbook().await?;
        let items = samples
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (
                    s.clone(),
                    Slot {
                        split,
                        epoch,
                        step,
                        index: i,
                    },
                )
            })
            .collect();
        let done = self.run_samples(playbook, items, false).await?;
        self.record(&done).await?;
        let correct = done.iter().filter(|o| o.record.correct).count() as u64;
        Ok((correct, done.len() as u64))
    }

    async fn validate(&mut self, epoch: u32, step: u64) -> Result<(), LoopError> {
        let Some(val) = self.val.clone() else {
            return Ok(());
        };
        let (correct, total) = self.evaluate("val", &val, epoch, step).await?;
        self.metric("val", epoch, step, correct, total).await?;
        let accuracy = correct as f64 / total.max(1) as f64;
        let best = self.ck.best_val.is_none_or(|b| accuracy > b);
        if best {
            self.ck.best_val = Some(accuracy);
            let (run, pb) = (self.ctx.run.clone(), self.ctx.config.playbook.clone());
            db(&self.store, move |s| {
                let head = s.head_revision(&pb)?;
                s.update_run(&run, "running", None, head, None)
            })
            .await?;
        }
        self.emit(Event::Validated {
            step,
            correct,
            total,
            best,
        });
        Ok(())
    }
}
