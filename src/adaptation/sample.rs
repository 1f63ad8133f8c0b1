//! One sample through Generator → Environment → (Reflector, regenerate while wrong).

use std::sync::Arc;

use serde_json::json;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::{Event, Models, RunConfig};
use super::{SampleRecord, Split};
use crate::environment::{Sample, Trace, Verdict};
use crate::llm::{CallRecord, TraceIds};
use crate::playbook::{Bullet, Playbook};
use crate::prompts::{Index, Retrieval};
use crate::roles::{self, BulletTag, GeneratorInput, Reflection, ReflectorInput, RoleError};

/// Where a sample sits in the run.
#[derive(Debug, Clone)]
pub struct Slot {
    pub split: Split,
    pub epoch: u32,
    pub step: u64,
    pub index: usize,
}

impl Slot {
    pub fn key(&self) -> String {
        format!("{}/{}/{}/{}", self.split, self.epoch, self.step, self.index)
    }
}

pub struct Outcome {
    pub record: SampleRecord,
    pub calls: Vec<CallRecord>,
    /// One tag per bullet, from the first reflection that judged it.
    pub tags: Vec<BulletTag>,
    pub reflection: Option<Reflection>,
}

/// A sample that stopped with an error (or was cancelled): the calls it had made still count.
pub struct Abandoned {
    pub key: String,
    pub error: LoopError,
    pub calls: Vec<CallRecord>,
}

/// Shared by the sample tasks of a run.
pub struct Ctx {
    pub run: String,
    pub models: Models,
    pub config: RunConfig,
    pub events: UnboundedSender<Event>,
    pub cancel: CancellationToken,
}

/// Errors that stop the run (a model unreachable, a broken environment, cancellation). An unusable
/// model answer does not: the sample is scored wrong or left without a reflection.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoopError {
    #[error("{0}")]
    Role(RoleError),
    #[error("environment: {0}")]
    Env(String),
    #[error("store: {0}")]
    Store(String),
    #[error("cancelled")]
    Cancelled,
    /// The next model call would pass the run's cost limit: the run stops cleanly (resumable).
    #[error("{0}")]
    OverBudget(String),
    #[error("{0}")]
    Data(String),
}

impl Ctx {
    /// Whether the generator is shown a selection of the playbook (not the whole of it).
    pub fn selects(&self, index: &Index) -> bool {
        let cfg = &self.config;
        match cfg.retrieval {
            Retrieval::Whole => false,
            Retrieval::Auto => index.total_tokens() > cfg.prompt_budget,
            Retrieval::TopK(_) => true,
        }
    }

    /// The bullets to show for `query` under the run's retrieval setting; `None`: the whole
    /// playbook (it fits the prompt budget, or the setting is `whole`). `semantic` is a ranking by
    /// embeddings, fused with BM25's when given.
    pub fn choose(
        &self,
        index: &Index,
        query: &str,
        semantic: Option<&[String]>,
    ) -> Option<Vec<String>> {
        if !self.selects(index) {
            return None;
        }
        let cfg = &self.config;
        // enough candidates to fill the budget with bullets of a few tokens each
        let limit = match cfg.retrieval {
            Retrieval::TopK(k) => k,
            _ => usize::try_from(cfg.prompt_budget / 8).unwrap_or(usize::MAX),
        };
        let Some(semantic) = semantic else {
            return index.select(cfg.retrieval, cfg.prompt_budget, query, limit.max(1));
        };
        let ranked: Vec<String> = index
            .search(query, limit.max(1))
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let ranked = crate::prompts::retrieval::fuse(&[ranked, semantic.to_vec()]);
        index.choose(cfg.retrieval, cfg.prompt_budget, &ranked)
    }

    /// Reports an event (and counts it in the metrics).
    pub fn emit(&self, event: Event) {
        super::metrics::record(&event);
        let _ = self.events.send(event);
    }
}

impl From<crate::shared::JobLost> for LoopError {
    fn from(e: crate::shared::JobLost) -> Self {
        LoopError::Store(e.to_string())
    }
}

impl From<RoleError> for LoopError {
    fn from(e: RoleError) -> Self {
        match e {
            e if e.is_cancelled() => LoopError::Cancelled,
            RoleError::Llm {
                error: error @ crate::llm::LlmError::OverBudget { .. },
                ..
            } => LoopError::OverBudget(error.to_string()),
            e => LoopError::Role(e),
        }
    }
}

/// How a recorded agent run went: the environment's verdict when the trace carries a ground truth,
/// its own `success` and `feedback` otherwise (both, when it has both).
async fn judge_trace(ctx: &Ctx, sample: &Sample, t: &Trace) -> Result<Verdict, LoopError> {
    let given = t.feedback.clone().unwrap_or_default();
    if sample.ground_truth.is_some() {
        let mut v = ctx
            .config
            .env
            .evaluate(sample, &t.answer)
            .await
            .map_err(|e| LoopError::Env(e.to_string()))?;
        if !given.is_empty() {
            v.feedback = format!("{}\nthe agent's host said: {given}", v.feedback);
        }
        return Ok(v);
    }
    let correct = t.success == Some(true);
    let outcome = match t.success {
        Some(true) => "the agent's host reports success",
        Some(false) => "the agent's host reports failure",
        None => "the agent's host did not say whether it succeeded",
    };
    Ok(Verdict {
        correct,
        score: if correct { 1.0 } else { 0.0 },
        feedback: if given.is_empty() {
            outcome.to_string()
        } else {
            format!("{outcome}: {given}")
        },
    })
}

/// What retrieval ranks bullets against for a sample: its question and context.
pub fn query_of(sample: &Sample) -> String {
    format!("{}\n{}", sample.question, sample.context)
}

fn used_bullets(playbook: &Playbook, ids: &[String]) -> Vec<Bullet> {
    ids.iter()
        .filter_map(|id| playbook.bullet(id).cloned())
        .collect()
}

/// Runs one sample. With `learn`, reflects and (while wrong, up to `max_rounds` attempts) regenerates
/// with the reflection; without, only answers and scores (validation, test). A sample that fails
/// hands back the calls it made.
pub async fn process(
    ctx: Arc<Ctx>,
    playbook: Arc<Playbook>,
    index: Option<Arc<Index>>,
    semantic: Option<Vec<String>>,
    sample: Sample,
    slot: Slot,
    learn: bool,
) -> Result<Outcome, Abandoned> {
    let key = slot.key();
    let mut calls = Vec::new();
    let result = attempt(
        ctx, playbook, index, semantic, sample, slot, learn, &mut calls,
    )
    .await;
    result.map_err(|error| Abandoned { key, error, calls })
}

#[allow(clippy::too_many_arguments)]
async fn attempt(
    ctx: Arc<Ctx>,
    playbook: Arc<Playbook>,
    index: Option<Arc<Index>>,
    semantic: Option<Vec<String>>,
    sample: Sample,
    slot: Slot,
    learn: bool,
    calls: &mut Vec<CallRecord>,
) -> Result<Outcome, LoopError> {
    // What the generator is shown: chosen once per sample, by the task (not the reflections).
    let shown = index
        .as_deref()
        .and_then(|ix| ctx.choose(ix, &query_of(&sample), semantic.as_deref()));
    let key = slot.key();
    let trace = TraceIds {
        run: Some(ctx.run.clone()),
        sample: Some(key.clone()),
    };
    ctx.emit(Event::SampleStarted {
        key: key.clone(),
        question: sample.question.clone(),
    });
    let mut reflection_text: Option<String> = None;
    let mut tags: Vec<BulletTag> = Vec::new();
    let mut last_reflection: Option<Reflection> = None;
    let mut first_correct = false;
    let mut cited_all: Vec<String> = Vec::new();
    // ids cited or tagged that match no bullet (shown to it): counted, never dropped silently
    let mut unknown: Vec<String> = Vec::new();
    let mut rounds = 0;
    let (mut answer, mut verdict);
    loop {
        rounds += 1;
        let input = GeneratorInput {
            playbook: &playbook,
            shown: shown.as_deref(),
            question: &sample.question,
            context: &sample.context,
            reflection: reflection_text.as_deref(),
        };
        let (reasoning, cited) = if let Some(t) = &sample.trace {
            // a recorded agent run: its answer and citations stand in for the generator's
            answer = t.answer.clone();
            let mut cited = Vec::new();
            for raw in &t.bullet_ids {
                match playbook.canonical_id(raw) {
                    Some(id) if !cited.iter().any(|c| c == id) => cited.push(id.to_string()),
                    Some(_) => {}
                    None if !unknown.contains(raw) => unknown.push(raw.clone()),
                    None => {}
                }
            }
            (t.steps.clone(), cited)
        } else {
            match roles::generate(ctx.models.generator.as_ref(), &input, &trace, &ctx.cancel).await
            {
                Ok(mut out) => {
                    calls.append(&mut out.calls);
                    answer = out.final_answer.clone();
                    for id in out.unknown_ids {
                        if !unknown.contains(&id) {
                            unknown.push(id);
                        }
                    }
                    (out.reasoning, out.bullet_ids)
                }
                Err(RoleError::Unusable {
                    error,
                    raw,
                    calls: spent,
                    ..
                }) => {
                    // unusable, but the calls were made: they are recorded and counted
                    calls.extend(spent);
                    ctx.emit(Event::Warning {
                        message: format!("{key}: generator answer unusable: {error}"),
                    });
                    answer = String::new();
                    (raw, Vec::new())
                }
                Err(mut e) => {
                    calls.extend(e.take_calls());
                    return Err(e.into());
                }
            }
        };
        for id in &cited {
            if !cited_all.contains(id) {
                cited_all.push(id.clone());
            }
        }
        ctx.emit(Event::Generated {
            key: key.clone(),
            answer: answer.clone(),
            cited: cited.clone(),
        });
        verdict = match &sample.trace {
            Some(t) => judge_trace(&ctx, &sample, t).await?,
            None => ctx
                .config
                .env
                .evaluate(&sample, &answer)
                .await
                .map_err(|e| LoopError::Env(e.to_string()))?,
        };
        if rounds == 1 {
            first_correct = verdict.correct;
        }
        ctx.emit(Event::Evaluated {
            key: key.clone(),
            round: rounds,
            correct: verdict.correct,
            feedback: verdict.feedback.clone(),
        });
        if !learn {
            break;
        }
        let used = used_bullets(&playbook, &cited);
        let input = ReflectorInput {
            question: &sample.question,
            context: &sample.context,
            reasoning: &reasoning,
            answer: &answer,
            ground_truth: if ctx.config.no_labels {
                None
            } else {
                sample.ground_truth.as_deref()
            },
            feedback: &verdict.feedback,
            used: &used,
        };
        match roles::reflect(
            ctx.models.reflector.as_ref(),
            &input,
            ctx.config.reflector_rounds,
            &trace,
            &ctx.cancel,
        )
        .await
        {
            Ok((reflection, reflect_calls)) => {
                calls.extend(reflect_calls);
                for id in &reflection.unknown_ids {
                    if !unknown.contains(id) {
                        unknown.push(id.clone());
                    }
                }
                for t in &reflection.bullet_tags {
                    if !tags.iter().any(|x| x.id == t.id) {
                        tags.push(t.clone());
                    }
                }
                reflection_text = Some(reflection.summary());
                last_reflection = Some(reflection);
            }
            Err(RoleError::Unusable {
                error,
                calls: spent,
                ..
            }) => {
                calls.extend(spent);
                ctx.emit(Event::Warning {
                    message: format!("{key}: reflector answer unusable: {error}"),
                });
            }
            Err(mut e) => {
                calls.extend(e.take_calls());
                return Err(e.into());
            }
        }
        if verdict.correct
            || rounds >= ctx.config.max_rounds.max(1)
            || reflection_text.is_none()
            || sample.trace.is_some()
        {
            break;
        }
    }
    if let Some(r) = &last_reflection {
        ctx.emit(Event::Reflected {
            key: key.clone(),
            key_insight: r.key_insight.clone(),
            rounds,
        });
    }
    let record = SampleRecord {
        key,
        split: slot.split,
        epoch: slot.epoch,
        step: slot.step,
        sample_id: sample.id.clone(),
        question: sample.question.clone(),
        answer,
        ground_truth: sample.ground_truth.clone(),
        correct: verdict.correct,
        first_correct,
        rounds,
        feedback: verdict.feedback.clone(),
        cited: cited_all,
        reflection: last_reflection.as_ref().map(|r| json!(r)),
        shown,
        unknown_ids: unknown,
    };
    Ok(Outcome {
        record,
        calls: std::mem::take(calls),
        tags,
        reflection: last_reflection,
    })
}
