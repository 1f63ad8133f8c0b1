//! The run loop (see the module docs of [`crate::adaptation`]): starting, resuming and ending a run,
//! and the walk over epochs and batches. What happens inside one batch is in `learn`.

use std::sync::Arc;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::control::{Controls, Gate, Mode};
use super::refining::{Judge, Shown};
use super::sample::{Abandoned, Ctx, LoopError, Outcome, Slot, process, query_of};
use super::{
    Accuracy, Checkpoint, Control, Event, GetModels, RunConfig, RunKind, RunStatus, RunStore, Split,
};
use crate::environment::{Dataset, Sample, dataset};
use crate::llm::CallRecord;
use crate::playbook::{DEFAULT_SECTIONS, Playbook};
use crate::prompts::Index;
use crate::shared::{Shared, blocking};

/// Beyond this many recorded changes since the held copy, the playbook is read whole again.
const REPLAY_LIMIT: usize = 5_000;

/// Runs `job` on the store on a blocking thread; a store error stops the run.
pub(super) async fn db<S: RunStore, T: Send + 'static>(
    store: &Shared<S>,
    job: impl FnOnce(&mut S) -> Result<T, S::Error> + Send + 'static,
) -> Result<T, LoopError> {
    blocking(store, move |s| {
        job(s).map_err(|e| LoopError::Store(e.to_string()))
    })
    .await
}

/// A started run: send controls, read events, await the result (the run id).
pub struct RunHandle {
    pub controls: Controls,
    pub events: UnboundedReceiver<Event>,
    pub cancel: CancellationToken,
    pub task: tokio::task::JoinHandle<Result<String, LoopError>>,
}

/// Starts a run (or resumes `resume`) as a tokio task and returns its handle at once: controls sent
/// through it reach the run directly, in order, from the first moment. Models that still have to
/// be built (resolving the configuration may probe a server) are built inside the run.
pub fn start<S: RunStore>(
    store: Shared<S>,
    models: impl Into<GetModels>,
    config: RunConfig,
    resume: Option<String>,
) -> RunHandle {
    let (control_tx, control_rx) = unbounded_channel();
    let (event_tx, event_rx) = unbounded_channel();
    let cancel = CancellationToken::new();
    let task = tokio::spawn(run(
        store,
        models.into(),
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

/// Everything a run needs once it is claimed, before its first sample.
struct Prepared<C> {
    ctx: Arc<Ctx>,
    checkpoint: Checkpoint,
    train: Vec<Sample>,
    val: Option<Vec<Sample>>,
    test: Option<Vec<Sample>>,
    claim: Option<C>,
    /// Ends the retry announcements (and their hold on the event stream) when dropped.
    retries: tokio_util::sync::DropGuard,
}

/// Runs (or resumes) a whole run; returns its id. The run's status is kept in the store. A run that
/// cannot start (unreadable data, no models, claimed by another process) says so with
/// [`Event::NotStarted`]; one that started always ends with [`Event::Finished`].
pub async fn run<S: RunStore>(
    store: Shared<S>,
    models: GetModels,
    config: RunConfig,
    resume: Option<String>,
    controls: UnboundedReceiver<Control>,
    events: UnboundedSender<Event>,
    cancel: CancellationToken,
) -> Result<String, LoopError> {
    let prepared = match prepare(&store, models, config, resume, &events, &cancel).await {
        Ok(p) => p,
        Err(e) => {
            let _ = events.send(Event::NotStarted {
                error: e.to_string(),
            });
            return Err(e);
        }
    };
    let Prepared {
        ctx,
        checkpoint,
        train,
        val,
        test,
        claim,
        retries,
    } = prepared;
    let run_id = ctx.run.clone();
    let mut gate = Gate::new(controls, events.clone(), cancel.clone());
    let mut lp = Loop {
        ctx: ctx.clone(),
        store: store.clone(),
        ck: checkpoint,
        train,
        val,
        test,
        index: None,
        token_budget: None,
        held: None,
        unindexed: None,
        told_unknown: Default::default(),
        judge: Judge::new(ctx.models.embedder.clone()),
        shown: Shown::default(),
        answers: crate::shared::shared(Default::default()),
    };
    lp.emit(Event::Notice {
        message: lp.judge.notice(),
    });
    let result = lp.go(&mut gate).await;
    let (status, error) = match &result {
        Ok(()) => (RunStatus::Finished, None),
        Err(LoopError::Cancelled) => (RunStatus::Cancelled, None),
        // a cost limit is a clean stop, not a failure: said, kept with the run, resumable
        Err(LoopError::OverBudget(m)) => (RunStatus::Cancelled, Some(m.clone())),
        Err(e) => (RunStatus::Failed, Some(e.to_string())),
    };
    let (id, err) = (run_id.clone(), error.clone());
    db(&store, move |s| {
        s.update_run(&id, status, None, None, err.as_deref())
    })
    .await?;
    // The run is free before anyone hears it ended: whoever resumes it on `Finished` must not find
    // it still claimed by this process.
    drop(claim);
    drop(retries);
    match (status, error) {
        (RunStatus::Cancelled, Some(message)) => {
            let _ = events.send(Event::Warning { message });
        }
        (_, Some(e)) => {
            let _ = events.send(Event::Failed { error: e });
        }
        _ => {}
    }
    let _ = events.send(Event::Finished {
        run: run_id.clone(),
        status,
    });
    result.map(|()| run_id)
}

/// Reads the run's data and models, claims the run (creating it if new) and reports `Started`.
async fn prepare<S: RunStore>(
    store: &Shared<S>,
    models: GetModels,
    config: RunConfig,
    resume: Option<String>,
    events: &UnboundedSender<Event>,
    cancel: &CancellationToken,
) -> Result<Prepared<S::Claim>, LoopError> {
    // Resuming takes the stored configuration; a new run stores its own.
    let (config, run_id, checkpoint) = match &resume {
        Some(id) => {
            let id = id.clone();
            let record = db(store, move |s| s.run(&id)).await?;
            if record.status == RunStatus::Finished {
                return Err(LoopError::Data(format!(
                    "run {} has already finished; nothing to resume",
                    record.id
                )));
            }
            let checkpoint = record.checkpoint.unwrap_or_default();
            (record.config, Some(record.id), checkpoint)
        }
        None => (config, None, Checkpoint::default()),
    };
    // Every dataset is read and checked before any model call.
    let train = if config.traces {
        crate::environment::traces::load(&config.dataset, config.skip_bad)
            .map_err(|e| LoopError::Data(e.to_string()))?
    } else {
        load(&config.dataset, &config)?
    };
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
    if config.env.needs_ground_truth()
        && let Some(s) = train
            .samples
            .iter()
            .find(|s| s.ground_truth.is_none() && s.trace.is_none())
    {
        return Err(LoopError::Data(format!(
            "sample {} has no ground truth, which the {} environment needs",
            s.id,
            config.env.name()
        )));
    }
    if !train.skipped.is_empty() {
        let _ = events.send(Event::Warning {
            message: format!(
                "skipped {} bad lines of {}",
                train.skipped.len(),
                config.dataset.display()
            ),
        });
    }
    let models = tokio::select! {
        m = models.get() => m.map_err(|e| LoopError::Data(format!("cannot reach the models: {e:#}")))?,
        _ = cancel.cancelled() => return Err(LoopError::Cancelled),
    };
    // The run is claimed for this process until it ends (see `RunStore::claim_run`): resuming a
    // run another process is driving fails here, before anything is written.
    let (run_id, claim) = match run_id {
        Some(id) => {
            let id2 = id.clone();
            let claim = db(store, move |s| {
                let claim = s.claim_run(&id2)?;
                s.update_run(&id2, RunStatus::Running, None, None, None)?;
                Ok(claim)
            })
            .await?;
            (id, claim)
        }
        None => {
            let cfg = config.clone();
            db(store, move |s| {
                s.ensure_playbook(&cfg.playbook, DEFAULT_SECTIONS)?;
                let id = s.create_run(&cfg)?;
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
        feedback_mode: config.feedback_mode(),
        train: train.samples.len(),
        val: val.as_ref().map_or(0, |d| d.samples.len()),
        test: test.as_ref().map_or(0, |d| d.samples.len()),
        resumed: resume.is_some(),
    });
    // Retries of model calls are part of the run's story: they go out on the same stream.
    let retries = forward_retries(&models, events.clone());
    Ok(Prepared {
        ctx: Arc::new(Ctx {
            run: run_id,
            models,
            config,
            events: events.clone(),
            cancel: cancel.clone(),
        }),
        checkpoint,
        train: train.samples,
        val: val.map(|d| d.samples),
        test: test.map(|d| d.samples),
        claim,
        retries,
    })
}

/// Announces each retried model call as a warning on the run's event stream until the returned
/// guard is dropped (when the run ends).
fn forward_retries(
    models: &super::Models,
    events: UnboundedSender<Event>,
) -> tokio_util::sync::DropGuard {
    let mut retries = models.ledger.subscribe_retries();
    let stop = CancellationToken::new();
    let cancel = stop.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                notice = retries.recv() => match notice {
                    Ok(n) => {
                        if events.send(Event::Warning { message: n.to_string() }).is_err() {
                            break;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
                _ = cancel.cancelled() => break,
            }
        }
    });
    stop.drop_guard()
}

pub(super) struct Loop<S: RunStore> {
    pub ctx: Arc<Ctx>,
    pub store: Shared<S>,
    pub ck: Checkpoint,
    pub train: Vec<Sample>,
    pub val: Option<Vec<Sample>>,
    pub test: Option<Vec<Sample>>,
    /// The retrieval index of the playbook, kept in step with it between batches.
    pub index: Option<Arc<Index>>,
    /// The playbook's token budget, if it has one.
    pub token_budget: Option<u64>,
    /// The playbook as last read, kept current by [`Loop::playbook`].
    pub held: Option<Arc<Playbook>>,
    /// The changes replayed into `held` since the index was last brought in step (`None`: not
    /// known, the index syncs against the whole playbook).
    pub unindexed: Option<Vec<crate::delta::Change>>,
    /// Whether the run has said that a model named ids no bullet matches (said once, then counted).
    pub(super) told_unknown: std::sync::atomic::AtomicBool,
    /// How near duplicates are judged.
    pub judge: Judge,
    /// How often each bullet was shown this run (tracked while the playbook has a budget).
    pub shown: Shown,
    /// The generator's answers in this run's trials (`--approve gate:…`), by exact prompt.
    pub answers: Shared<super::trial::MemoryCache>,
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

impl<S: RunStore> Loop<S> {
    pub fn emit(&self, e: Event) {
        self.ctx.emit(e);
    }

    /// Metrics after a proposal or decision: deltas by op and decision, queue length, harmful bullets.
    pub async fn observe(&self, pending: i64, decided: bool) -> Result<(), LoopError> {
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

    async fn save(&self, status: RunStatus) -> Result<(), LoopError> {
        let (id, ck) = (self.ctx.run.clone(), self.ck.clone());
        db(&self.store, move |s| {
            s.update_run(&id, status, Some(&ck), None, None)
        })
        .await
    }

    /// The playbook as it stands now. The copy held from the last call is brought up to date with
    /// the changes recorded since (by this run or anyone else), so a large playbook is not read
    /// whole after every batch; it is read whole the first time, or after many changes.
    pub async fn playbook(&mut self) -> Result<Arc<Playbook>, LoopError> {
        let name = self.ctx.config.playbook.clone();
        let since = self.held.as_ref().and_then(|p| p.revision);
        let (replay, budget) = db(&self.store, move |s| {
            let replay = match since {
                Some(rev) => s.changes_since(&name, rev, REPLAY_LIMIT)?,
                None => None,
            };
            Ok((replay, s.token_budget(&name)?))
        })
        .await?;
        self.token_budget = budget;
        if let (Some(replay), Some(held)) = (replay, self.held.as_mut()) {
            if !replay.changes.is_empty() || held.revision != Some(replay.head) {
                // in place when nothing else holds it (else on a copy)
                replay.apply_to(Arc::make_mut(held));
                if let Some(unindexed) = self.unindexed.as_mut() {
                    unindexed.extend(replay.changes);
                }
            }
            return Ok(held.clone());
        }
        self.held = None;
        self.unindexed = None;
        let name = self.ctx.config.playbook.clone();
        let playbook = db(&self.store, move |s| s.load_playbook(&name)).await?;
        let playbook = Arc::new(playbook);
        self.held = Some(playbook.clone());
        Ok(playbook)
    }

    /// The retrieval index of `playbook` (retrieval and near-duplicate candidates use it), brought in
    /// step on a blocking thread: the first build of a large playbook tokenises every bullet.
    pub async fn index_for(&mut self, playbook: &Arc<Playbook>) -> Result<Arc<Index>, LoopError> {
        if let Some(index) = self.index.as_ref().filter(|i| i.is_current(playbook)) {
            return Ok(index.clone());
        }
        let (held, playbook) = (self.index.take(), playbook.clone());
        // the changes since the index's revision, when that is the playbook's before them
        let changes = self.unindexed.replace(Vec::new());
        let index =
            tokio::task::spawn_blocking(move || match held.and_then(|i| Arc::try_unwrap(i).ok()) {
                Some(mut index) => {
                    match changes {
                        Some(changes) if index.is_synced() => {
                            index.apply_changes(&playbook, &changes)
                        }
                        _ => index.sync(&playbook),
                    }
                    Arc::new(index)
                }
                None => Arc::new(Index::build(&playbook)),
            })
            .await
            .map_err(|e| LoopError::Data(format!("indexing the playbook failed: {e}")))?;
        self.index = Some(index.clone());
        Ok(index)
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
            // The epoch's score so far is kept in the checkpoint; a checkpoint of an older version
            // mid-epoch is scored from the store once.
            let mut so_far = match self.ck.so_far {
                Some(s) => s,
                None if self.ck.next == 0 => (0, 0),
                None => self.score(epoch, None).await?,
            };
            while self.ck.next < n {
                let (start, end) = (self.ck.next, (self.ck.next + batch).min(n));
                gate.wait().await?;
                let step = self.ck.step + 1;
                // an online window is labelled with the playbook that answered it, not the one
                // it then taught
                let answering = if cfg.kind == RunKind::Online {
                    Some(self.playbook().await?.revision)
                } else {
                    None
                };
                let (awaiting, batch_score) = match self.ck.awaiting.take() {
                    // resumed while waiting: the batch's samples were scored by the process before
                    Some(id) => (Some(id), self.score(epoch, Some(step)).await?),
                    None => {
                        self.learn_batch(gate, &order[start..end], epoch, step)
                            .await?
                    }
                };
                if let Some(pending) = awaiting {
                    self.ck.awaiting = Some(pending);
                    self.save(RunStatus::Waiting).await?;
                    self.wait_for(gate, pending).await?;
                    self.ck.awaiting = None;
                }
                so_far = (so_far.0 + batch_score.0, so_far.1 + batch_score.1);
                self.ck.next = end;
                self.ck.step = step;
                self.ck.so_far = Some(so_far);
                self.save(RunStatus::Running).await?;
                if cfg.kind == RunKind::Online {
                    self.metric_at(
                        Split::Online,
                        epoch,
                        step,
                        batch_score.0,
                        batch_score.1,
                        answering,
                    )
                    .await?;
                }
                self.emit(Event::BatchFinished {
                    epoch,
                    step,
                    done: end,
                    total: n,
                    correct_so_far: so_far.0,
                    seen_so_far: so_far.1,
                });
                if let Some(k) = cfg.val_every
                    && k > 0
                    && step.is_multiple_of(k)
                {
                    self.validate(epoch, step).await?;
                }
                gate.finished(Mode::ToBatchEnd);
            }
            let (correct, total) = so_far;
            self.metric(Split::Train, epoch, self.ck.step, correct, total)
                .await?;
            self.emit(Event::EpochFinished {
                epoch,
                split: Split::Train,
                correct,
                total,
            });
            if cfg.val_every.is_none() && self.val.is_some() {
                self.validate(epoch, self.ck.step).await?;
            }
            self.ck.epoch += 1;
            self.ck.next = 0;
            self.ck.so_far = None;
            self.save(RunStatus::Running).await?;
            gate.finished(Mode::ToEpochEnd);
        }
        if let Some(test) = self.test.clone() {
            // as the paper's protocol: the test runs on the playbook that validated best
            let best = if self.val.is_some() {
                let run = self.ctx.run.clone();
                db(&self.store, move |s| s.run(&run)).await?.best_revision
            } else {
                None
            };
            let (correct, total, tested) = match best {
                Some(revision) => {
                    let name = self.ctx.config.playbook.clone();
                    let playbook = Arc::new(
                        db(&self.store, move |s| s.load_playbook_at(&name, revision)).await?,
                    );
                    let now = self.playbook().await?.revision;
                    self.emit(Event::Notice {
                        message: format!(
                            "testing the best validation revision, {revision} (the playbook is now at {})",
                            now.map_or_else(|| "none".to_string(), |r| r.to_string())
                        ),
                    });
                    let (c, t) = self
                        .evaluate_on(playbook, Split::Test, &test, epochs, self.ck.step)
                        .await?;
                    (c, t, Some(Some(revision)))
                }
                None => {
                    let (c, t) = self
                        .evaluate(Split::Test, &test, epochs, self.ck.step)
                        .await?;
                    (c, t, None)
                }
            };
            self.metric_at(Split::Test, epochs, self.ck.step, correct, total, tested)
                .await?;
            self.emit(Event::EpochFinished {
                epoch: epochs,
                split: Split::Test,
                correct,
                total,
            });
        }
        Ok(())
    }

    async fn metric(
        &self,
        split: Split,
        epoch: u32,
        step: u64,
        correct: u64,
        total: u64,
    ) -> Result<(), LoopError> {
        self.metric_at(split, epoch, step, correct, total, None)
            .await
    }

    /// A metric measured on `revision` (`Some(None)`: a playbook before any revision; `None`: the
    /// playbook as it is now).
    async fn metric_at(
        &self,
        split: Split,
        epoch: u32,
        step: u64,
        correct: u64,
        total: u64,
        revision: Option<Option<i64>>,
    ) -> Result<(), LoopError> {
        let (run, pb) = (self.ctx.run.clone(), self.ctx.config.playbook.clone());
        db(&self.store, move |s| {
            let revision = match revision {
                Some(r) => r,
                None => s.head_revision(&pb)?,
            };
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

    /// First-attempt accuracy of the training samples of `epoch` (of one batch, if given), from the
    /// store: only when resuming (the loop keeps the score as it goes).
    async fn score(&self, epoch: u32, step: Option<u64>) -> Result<(u64, u64), LoopError> {
        let run = self.ctx.run.clone();
        db(&self.store, move |s| {
            s.first_attempt_score(&run, Split::Train, epoch, step)
        })
        .await
    }

    /// Stores samples with their model calls and citations (one transaction). The calls move to
    /// the store (each generator prompt holds the playbook text shown: not copied, and not kept).
    pub async fn record(&self, done: &mut [Outcome]) -> Result<(), LoopError> {
        if let Some(o) = done.iter().find(|o| !o.record.unknown_ids.is_empty())
            && !self
                .told_unknown
                .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            self.emit(Event::Warning {
                message: format!(
                    "{}: the model named bullet ids that match no bullet it was shown ({}); they are not counted, and `ace runs show` totals them",
                    o.record.key,
                    o.record.unknown_ids.join(", ")
                ),
            });
        }
        let records: Vec<_> = done
            .iter_mut()
            .map(|o| (o.record.clone(), std::mem::take(&mut o.calls)))
            .collect();
        let (run, pb) = (self.ctx.run.clone(), self.ctx.config.playbook.clone());
        db(&self.store, move |s| s.record_samples(&run, &pb, &records)).await
    }

    /// Runs samples concurrently (bounded by the configured concurrency); results in input order.
    pub async fn run_samples(
        &mut self,
        playbook: Arc<Playbook>,
        index: Option<Arc<Index>>,
        items: Vec<(Sample, Slot)>,
        learn: bool,
    ) -> Result<Vec<Outcome>, LoopError> {
        let semantic = match &index {
            Some(ix) => {
                let queries: Vec<String> = items.iter().map(|(s, _)| query_of(s)).collect();
                self.semantic_rankings(&playbook, ix, &queries).await?
            }
            None => vec![None; items.len()],
        };
        let permits = Arc::new(tokio::sync::Semaphore::new(
            self.ctx.config.concurrency.max(1),
        ));
        let mut set = JoinSet::new();
        let count = items.len();
        for (i, ((sample, slot), semantic)) in items.into_iter().zip(semantic).enumerate() {
            let (ctx, pb, permits) = (self.ctx.clone(), playbook.clone(), permits.clone());
            let index = index.clone();
            set.spawn(async move {
                let _permit = permits.acquire_owned().await.map_err(|_| Abandoned {
                    key: slot.key(),
                    error: LoopError::Cancelled,
                    calls: Vec::new(),
                })?;
                process(ctx, pb, index, semantic, sample, slot, learn)
                    .await
                    .map(|o| (i, o))
            });
        }
        let mut out: Vec<Option<Outcome>> = (0..count).map(|_| None).collect();
        let mut first_error = None;
        let mut spent = Vec::new();
        while let Some(joined) = set.join_next().await {
            match joined.map_err(|e| LoopError::Data(format!("a sample task failed: {e}")))? {
                Ok((i, o)) => out[i] = Some(o),
                Err(Abandoned { key, error, calls }) => {
                    spent.push((key, calls));
                    if first_error.is_none() {
                        first_error = Some(error);
                        self.ctx.cancel.cancel();
                    }
                }
            }
        }
        match first_error {
            Some(e) => {
                // the batch is dropped (and redone on resume), but its calls reached a server
                spent.extend(out.into_iter().flatten().map(|o| (o.record.key, o.calls)));
                self.record_abandoned(spent).await;
                Err(e)
            }
            None => Ok(out.into_iter().flatten().collect()),
        }
    }

    /// Keeps the calls of samples (or a curator step) that did not finish, so run totals still
    /// count them; a store error here is only logged (the run is already stopping on another).
    pub(super) async fn record_abandoned(&self, spent: Vec<(String, Vec<CallRecord>)>) {
        let spent: Vec<_> = spent.into_iter().filter(|(_, c)| !c.is_empty()).collect();
        if spent.is_empty() {
            return;
        }
        let run = self.ctx.run.clone();
        let stored = db(&self.store, move |s| {
            spent
                .iter()
                .try_for_each(|(key, calls)| s.record_abandoned_calls(&run, key, calls))
        })
        .await;
        if let Err(e) = stored {
            tracing::warn!(error = %e, "could not record the calls of unfinished samples");
        }
    }

    async fn evaluate(
        &mut self,
        split: Split,
        samples: &[Sample],
        epoch: u32,
        step: u64,
    ) -> Result<(u64, u64), LoopError> {
        let playbook = self.playbook().await?;
        self.evaluate_on(playbook, split, samples, epoch, step)
            .await
    }

    /// [`Self::evaluate`] on a given playbook (an earlier revision, say).
    async fn evaluate_on(
        &mut self,
        playbook: Arc<Playbook>,
        split: Split,
        samples: &[Sample],
        epoch: u32,
        step: u64,
    ) -> Result<(u64, u64), LoopError> {
        let held = self
            .held
            .as_ref()
            .is_some_and(|h| Arc::ptr_eq(h, &playbook));
        let index = Some(if held {
            self.index_for(&playbook).await?
        } else {
            let p = playbook.clone();
            Arc::new(
                tokio::task::spawn_blocking(move || Index::build(&p))
                    .await
                    .map_err(|e| LoopError::Data(format!("indexing the playbook failed: {e}")))?,
            )
        });
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
        let mut done = self.run_samples(playbook, index, items, false).await?;
        self.record(&mut done).await?;
        let correct = done.iter().filter(|o| o.record.correct).count() as u64;
        Ok((correct, done.len() as u64))
    }

    async fn validate(&mut self, epoch: u32, step: u64) -> Result<(), LoopError> {
        let Some(val) = self.val.clone() else {
            return Ok(());
        };
        let (correct, total) = self.evaluate(Split::Val, &val, epoch, step).await?;
        self.metric(Split::Val, epoch, step, correct, total).await?;
        let accuracy = correct as f64 / total.max(1) as f64;
        let best = self.ck.best_val.is_none_or(|b| accuracy > b);
        if best {
            self.ck.best_val = Some(accuracy);
            let (run, pb) = (self.ctx.run.clone(), self.ctx.config.playbook.clone());
            db(&self.store, move |s| {
                let head = s.head_revision(&pb)?;
                s.update_run(&run, RunStatus::Running, None, head, None)
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
