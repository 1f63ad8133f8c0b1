//! Trials: what a proposal would *do*. The Generator answers K samples with the playbook as it is and
//! with the proposal applied in memory (nothing is written to the playbook); the answers are scored
//! and compared. Answers are cached by their exact prompt, so a second trial of the same playbook
//! costs only the side that changed, and a sample whose prompt the proposal does not touch (a
//! bullet retrieval does not show it) is answered once for both sides.
//!
//! Leave-one-out impact of a bullet is a trial of its removal.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::sample::LoopError;
use crate::environment::{Environment, Sample};
use crate::llm::{LlmClient, TraceIds};
use crate::playbook::{Playbook, View};
use crate::prompts::{self, Index, Retrieval};
use crate::roles::{self, GeneratorInput, RoleError};
use crate::shared::{Shared, blocking};

/// One answer, as the cache keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedAnswer {
    pub answer: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: f64,
}

/// Where answers are kept between trials (the store, or memory).
pub trait AnswerCache: Send + 'static {
    type Error: std::fmt::Display + From<crate::shared::JobLost> + Send + 'static;
    fn cached_answer(&self, key: i64) -> Result<Option<CachedAnswer>, Self::Error>;
    fn cache_answer(&mut self, key: i64, answer: &CachedAnswer) -> Result<(), Self::Error>;
}

/// Answers kept in memory only (tests, one-off trials).
#[derive(Debug, Default)]
pub struct MemoryCache(pub std::collections::HashMap<i64, CachedAnswer>);

impl AnswerCache for MemoryCache {
    type Error = crate::shared::JobLost;
    fn cached_answer(&self, key: i64) -> Result<Option<CachedAnswer>, Self::Error> {
        Ok(self.0.get(&key).cloned())
    }
    fn cache_answer(&mut self, key: i64, answer: &CachedAnswer) -> Result<(), Self::Error> {
        self.0.insert(key, answer.clone());
        Ok(())
    }
}

/// A sample whose verdict changed between the sides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flip {
    pub sample_id: String,
    pub question: String,
    pub before: String,
    pub after: String,
}

/// What a trial found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrialReport {
    pub samples: usize,
    /// Where the samples came from (a file and split), as said to the person.
    pub source: String,
    pub before_correct: usize,
    pub after_correct: usize,
    /// Right before, wrong after.
    pub to_wrong: Vec<Flip>,
    /// Wrong before, right after.
    pub to_right: Vec<Flip>,
    /// Prompt tokens over all samples, each side.
    pub prompt_tokens_before: u64,
    pub prompt_tokens_after: u64,
    /// Model calls this trial made (answers not in the cache) and what they cost.
    pub calls: u64,
    pub cached: u64,
    pub cost_usd: f64,
    /// The model calls themselves (for a run's records; not stored with the trial).
    #[serde(skip)]
    pub records: Vec<crate::llm::CallRecord>,
}

impl TrialReport {
    fn pct(n: usize, of: usize) -> f64 {
        100.0 * n as f64 / of.max(1) as f64
    }

    /// Accuracy after minus before, in points.
    pub fn delta_points(&self) -> f64 {
        Self::pct(self.after_correct, self.samples) - Self::pct(self.before_correct, self.samples)
    }

    pub fn summary(&self) -> String {
        format!(
            "accuracy {:.1}% → {:.1}% ({:+.1} points) on {} samples of {}; {} right→wrong, {} wrong→right; prompt tokens {:+}; {} calls (${:.4}), {} answers from the cache",
            Self::pct(self.before_correct, self.samples),
            Self::pct(self.after_correct, self.samples),
            self.delta_points(),
            self.samples,
            self.source,
            self.to_wrong.len(),
            self.to_right.len(),
            self.prompt_tokens_after as i64 - self.prompt_tokens_before as i64,
            self.calls,
            self.cost_usd,
            self.cached,
        )
    }
}

/// Up to `k` samples chosen by `seed` (the same seed and set give the same choice, whatever their
/// order), leaving out the ids in `exclude`.
pub fn choose_samples(samples: &[Sample], k: usize, seed: u64, exclude: &[String]) -> Vec<Sample> {
    let mut keyed: Vec<(u64, &Sample)> = samples
        .iter()
        .filter(|s| !exclude.contains(&s.id))
        .map(|s| (fnv(seed, s.id.as_bytes()), s))
        .collect();
    keyed.sort_by_key(|(h, _)| *h);
    keyed.into_iter().take(k).map(|(_, s)| s.clone()).collect()
}

fn fnv(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// How a trial runs.
#[derive(Clone)]
pub struct TrialSetup {
    pub generator: Arc<dyn LlmClient>,
    pub env: Environment,
    pub concurrency: usize,
    /// Tokens of playbook a generator prompt may carry (larger playbooks are retrieved from).
    pub prompt_budget: u64,
    pub cancel: CancellationToken,
}

struct Answered {
    correct: bool,
    answer: String,
    prompt_tokens: u64,
    fresh: Option<f64>,
    records: Vec<crate::llm::CallRecord>,
}

/// The generator's answer to `sample` with `playbook` (from the cache when this exact prompt was
/// answered before), scored.
async fn answer<C: AnswerCache>(
    setup: &TrialSetup,
    cache: &Shared<C>,
    playbook: &Playbook,
    index: &Index,
    sample: &Sample,
) -> Result<Answered, LoopError> {
    let query = super::sample::query_of(sample);
    let shown = if index.total_tokens() > setup.prompt_budget {
        index.select(Retrieval::Auto, setup.prompt_budget, &query, usize::MAX)
    } else {
        None
    };
    let view = View {
        revision: None,
        bullets: shown.clone(),
        counters: false,
    };
    let prompt = prompts::generator(playbook, view, &sample.question, &sample.context, None);
    let mut h = fnv(0, setup.generator.endpoint().model.as_bytes());
    for m in &prompt.messages {
        h = fnv(h, m.role.as_bytes());
        h = fnv(h, m.content.as_bytes());
    }
    let key = h as i64;
    let hit = blocking(cache, move |c| c.cached_answer(key))
        .await
        .map_err(|e| LoopError::Store(e.to_string()))?;
    let mut records = Vec::new();
    let (cached, fresh) =
        match hit {
            Some(a) => (a, None),
            None => {
                let input = GeneratorInput {
                    playbook,
                    shown: shown.as_deref(),
                    question: &sample.question,
                    context: &sample.context,
                    reflection: None,
                };
                let trace = TraceIds {
                    run: None,
                    sample: Some(format!("trial/{}", sample.id)),
                };
                let (answer, calls) =
                    match roles::generate(setup.generator.as_ref(), &input, &trace, &setup.cancel)
                        .await
                    {
                        Ok(out) => (out.final_answer, out.calls),
                        // an unusable answer is a wrong one (its calls still cost)
                        Err(RoleError::Unusable { calls, .. }) => (String::new(), calls),
                        Err(e) => return Err(e.into()),
                    };
                let a = CachedAnswer {
                    answer,
                    prompt_tokens: calls.iter().map(|c| c.usage.prompt_tokens).sum(),
                    completion_tokens: calls.iter().map(|c| c.usage.completion_tokens).sum(),
                    cost_usd: calls.iter().map(|c| c.cost_usd).sum(),
                };
                let stored = a.clone();
                blocking(cache, move |c| c.cache_answer(key, &stored))
                    .await
                    .map_err(|e| LoopError::Store(e.to_string()))?;
                let cost = a.cost_usd;
                records = calls;
                (a, Some(cost))
            }
        };
    let verdict = setup
        .env
        .evaluate(sample, &cached.answer)
        .await
        .map_err(|e| LoopError::Env(e.to_string()))?;
    Ok(Answered {
        correct: verdict.correct,
        answer: cached.answer,
        prompt_tokens: cached.prompt_tokens,
        fresh,
        records,
    })
}

/// Answers every sample with `before` and with `after`, `concurrency` at a time, and compares.
pub async fn trial<C: AnswerCache>(
    setup: &TrialSetup,
    cache: &Shared<C>,
    before: Arc<Playbook>,
    after: Arc<Playbook>,
    samples: &[Sample],
    source: &str,
) -> Result<TrialReport, LoopError> {
    let (b, a) = (before.clone(), after.clone());
    let (index_before, index_after) = tokio::task::spawn_blocking(move || {
        (Arc::new(Index::build(&b)), Arc::new(Index::build(&a)))
    })
    .await
    .map_err(|e| LoopError::Data(format!("indexing failed: {e}")))?;
    let permits = Arc::new(tokio::sync::Semaphore::new(setup.concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, sample) in samples.iter().enumerate() {
        for side in [false, true] {
            let (setup, cache, permits, sample) = (
                setup.clone(),
                cache.clone(),
                permits.clone(),
                sample.clone(),
            );
            let (playbook, index) = if side {
                (after.clone(), index_after.clone())
            } else {
                (before.clone(), index_before.clone())
            };
            set.spawn(async move {
                let _p = permits
                    .acquire_owned()
                    .await
                    .map_err(|_| LoopError::Cancelled)?;
                answer(&setup, &cache, &playbook, &index, &sample)
                    .await
                    .map(|a| (i, side, a))
            });
        }
    }
    let mut results: Vec<[Option<Answered>; 2]> = samples.iter().map(|_| [None, None]).collect();
    let mut first_error = None;
    while let Some(joined) = set.join_next().await {
        match joined.map_err(|e| LoopError::Data(format!("a trial task failed: {e}")))? {
            Ok((i, side, a)) => results[i][usize::from(side)] = Some(a),
            Err(e) => {
                if first_error.is_none() {
                    setup.cancel.cancel();
                    first_error = Some(e);
                }
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let mut report = TrialReport {
        samples: samples.len(),
        source: source.to_string(),
        ..TrialReport::default()
    };
    for (sample, [b, a]) in samples.iter().zip(results) {
        let (Some(mut b), Some(mut a)) = (b, a) else {
            return Err(LoopError::Data("a trial answer is missing".into()));
        };
        report.records.append(&mut b.records);
        report.records.append(&mut a.records);
        report.before_correct += usize::from(b.correct);
        report.after_correct += usize::from(a.correct);
        report.prompt_tokens_before += b.prompt_tokens;
        report.prompt_tokens_after += a.prompt_tokens;
        for fresh in [b.fresh, a.fresh] {
            match fresh {
                Some(cost) => {
                    report.calls += 1;
                    report.cost_usd += cost;
                }
                None => report.cached += 1,
            }
        }
        if b.correct != a.correct {
            let flip = Flip {
                sample_id: sample.id.clone(),
                question: sample.question.clone(),
                before: b.answer,
                after: a.answer,
            };
            if b.correct {
                report.to_wrong.push(flip);
            } else {
                report.to_right.push(flip);
            }
        }
    }
    Ok(report)
}

/// Where a trial's samples come from.
#[derive(Debug, Clone, Default)]
pub struct SampleSpec {
    pub samples: usize,
    /// `val` or `train`; `None`: val when the run has one, else train.
    pub split: Option<String>,
    /// A file instead of the run's data.
    pub dataset: Option<std::path::PathBuf>,
    /// How answers are scored; `None`: the run's environment, else exact.
    pub env: Option<Environment>,
    pub seed: u64,
}

/// What a trial of a queued proposal needs: the playbook with the proposal applied in memory, the
/// samples (the run's validation set, else its training samples without the proposal's own, or a
/// file), where they came from, and how to score them.
pub struct Prepared {
    pub after: Playbook,
    pub samples: Vec<Sample>,
    pub source: String,
    pub env: Environment,
}

/// Prepares the trial of `batch` (or its op `op`, from 1) against `playbook` (the batch's playbook
/// as it is now); `run` is the configuration of the run that proposed it, if any.
pub fn prepare(
    batch: &crate::approval::PendingBatch,
    op: Option<usize>,
    playbook: &Playbook,
    run: Option<&super::RunConfig>,
    spec: &SampleSpec,
) -> Result<Prepared, String> {
    let after = with_proposal(playbook, batch, op)?;
    let own: Vec<String> = batch
        .provenance
        .samples
        .iter()
        .map(|e| e.sample_id.clone())
        .collect();
    let (samples, source, env) = samples_for(run, &own, spec)?;
    Ok(Prepared {
        after,
        samples,
        source,
        env,
    })
}

/// `playbook` with queued `batch` (or its op `op`, from 1; an edited op as edited) applied in
/// memory. A new section the proposal names is created, as it would be on approval.
pub fn with_proposal(
    playbook: &Playbook,
    batch: &crate::approval::PendingBatch,
    op: Option<usize>,
) -> Result<Playbook, String> {
    use crate::delta::{ApplyOptions, DeltaBatch, Source};
    let chosen = |o: &crate::approval::PendingOp| o.edited.clone().unwrap_or_else(|| o.op.clone());
    let ops = match op {
        Some(0) => return Err("ops are numbered from 1, as `ace queue show` lists them".into()),
        Some(n) => vec![batch.ops.get(n - 1).map(chosen).ok_or_else(|| {
            format!(
                "proposal #{} has {} ops; there is no op {n}",
                batch.id,
                batch.ops.len()
            )
        })?],
        None => batch.ops.iter().map(chosen).collect(),
    };
    let mut after = playbook.clone();
    crate::delta::apply_in_memory(
        &mut after,
        &DeltaBatch::new(format!("trial-{}", batch.id), Source::Curator, ops),
        &ApplyOptions::create_sections(),
        "trial",
    )
    .map_err(|e| {
        format!(
            "proposal #{} cannot apply to playbook '{}' as it is now: {e}",
            batch.id, batch.playbook
        )
    })?;
    Ok(after)
}

/// The samples for a trial in the context of a run (if any), and how to score them.
pub fn samples_for(
    run: Option<&super::RunConfig>,
    exclude: &[String],
    spec: &SampleSpec,
) -> Result<(Vec<Sample>, String, Environment), String> {
    let env = spec
        .env
        .clone()
        .or_else(|| run.map(|c| c.env.clone()))
        .unwrap_or(Environment::Exact);
    let (path, split) = match (&spec.dataset, run, spec.split.as_deref()) {
        (Some(p), _, _) => (p.clone(), "file"),
        (None, Some(c), Some("val") | None) if c.val.is_some() => {
            (c.val.clone().unwrap_or_default(), "val")
        }
        (None, Some(_), Some("val")) => {
            return Err(
                "the run has no validation set: use --split train or --dataset FILE".into(),
            );
        }
        (None, Some(c), Some("train") | None) if !c.traces => (c.dataset.clone(), "train"),
        (None, Some(_), Some(other)) if other != "train" => {
            return Err(format!("--split is val or train, not '{other}'"));
        }
        _ => {
            return Err(
                "no samples to try on: this proposal has no run with a dataset; give --dataset FILE"
                    .into(),
            );
        }
    };
    let all = crate::environment::dataset::load(&path, &Default::default(), false)
        .map_err(|e| format!("reading the trial's samples: {e}"))?
        .samples;
    let exclude: &[String] = if split == "train" { exclude } else { &[] };
    let chosen = choose_samples(&all, spec.samples, spec.seed, exclude);
    if chosen.is_empty() {
        return Err(format!("no samples left to try on in {}", path.display()));
    }
    Ok((chosen, format!("{} ({split})", path.display()), env))
}

/// The playbook without bullet `id` (in memory): the other side of a leave-one-out trial.
pub fn without(playbook: &Playbook, id: &str) -> Result<Playbook, String> {
    use crate::delta::{ApplyOptions, DeltaBatch, DeltaOp, Source};
    let mut after = playbook.clone();
    let removal = DeltaBatch::new(
        "impact",
        Source::Human,
        vec![DeltaOp::Remove {
            bullet_id: id.to_string(),
        }],
    );
    crate::delta::apply_in_memory(&mut after, &removal, &ApplyOptions::default(), "impact")
        .map_err(|e| e.to_string())?;
    Ok(after)
}
