//! The loop's refine steps: judging the curator's lessons against the playbook (near duplicates
//! become MERGE proposals). The rules are in [`crate::refine`]; this is where the run fetches the
//! vectors they need (cached in the store, embedded once) and falls back to word overlap, saying
//! so, when the embeddings endpoint fails.

use std::collections::HashMap;
use std::sync::Arc;

use super::engine::{Loop, db};
use super::sample::LoopError;
use super::{Event, RunStore};
use tokio_util::sync::CancellationToken;

use crate::approval::{BudgetNote, DroppedOp};
use crate::delta::{DeltaOp, MergeOp};
use crate::llm::Embedder;
use crate::playbook::Playbook;
use crate::prompts::Index;
use crate::refine::prune::{self, Exposure};
use crate::refine::{Method, Similarity, SizeEffect, Vector, dedup, size_change, text_key};
use crate::shared::Shared;

/// How the run judges near duplicates; fixed at the start, lexical for good after a failure.
pub(super) struct Judge {
    pub embedder: Option<Arc<dyn Embedder>>,
    /// Vectors already fetched this run, by text key (the active bullets' and recent lessons').
    pub held: HashMap<u64, Vector>,
}

impl Judge {
    pub fn new(embedder: Option<Arc<dyn Embedder>>) -> Self {
        Judge {
            embedder,
            held: HashMap::new(),
        }
    }
}

impl Judge {
    pub fn method(&self) -> Method {
        match &self.embedder {
            Some(e) => Method::Semantic {
                model: e.model().to_string(),
            },
            None => Method::Lexical,
        }
    }

    /// Said once at the start of a run.
    pub fn notice(&self) -> String {
        match &self.embedder {
            Some(e) => format!(
                "near-duplicate lessons are judged by embeddings ({}); they become merge proposals",
                e.model()
            ),
            None => "near-duplicate lessons are judged by word overlap: no embedding model is configured (ACE_EMBEDDING_MODEL); they become merge proposals".into(),
        }
    }
}

/// Vectors held in memory beyond this many numbers (32 MB; about 5,000 vectors of 1,536
/// dimensions) are let go, all but the ones just asked for.
const HELD_FLOATS: usize = 8 << 20;

/// Vectors of `texts` under `embedder`'s model: those already in `held`, cached ones from the
/// store, the rest embedded now and cached; all of them are then held too. Keyed by [`text_key`].
pub async fn vectors<S: RunStore>(
    store: &Shared<S>,
    embedder: &Arc<dyn Embedder>,
    texts: Vec<String>,
    held: &mut HashMap<u64, Vector>,
    cancel: &CancellationToken,
) -> Result<HashMap<u64, Vector>, String> {
    let model = embedder.model().to_string();
    let mut wanted: HashMap<u64, String> = HashMap::new();
    let mut found: HashMap<u64, Vector> = HashMap::new();
    for t in texts {
        let key = text_key(&t);
        if let Some(v) = held.get(&key) {
            found.insert(key, v.clone());
        } else if !found.contains_key(&key) {
            wanted.entry(key).or_insert(t);
        }
    }
    if !wanted.is_empty() {
        let keys: Vec<u64> = wanted.keys().copied().collect();
        let m = model.clone();
        let cached = db(store, move |s| s.cached_vectors(&m, &keys))
            .await
            .map_err(|e| e.to_string())?;
        let missing: Vec<(u64, String)> = wanted
            .into_iter()
            .filter(|(k, _)| !cached.contains_key(k))
            .collect();
        found.extend(cached.into_iter().map(|(k, v)| (k, Vector::from(v))));
        if !missing.is_empty() {
            let texts: Vec<String> = missing.iter().map(|(_, t)| t.clone()).collect();
            let vectors = embedder
                .embed(&texts, cancel)
                .await
                .map_err(|e| e.to_string())?;
            let fresh: Vec<(u64, Vec<f32>)> =
                missing.iter().map(|(k, _)| *k).zip(vectors).collect();
            found.extend(fresh.iter().map(|(k, v)| (*k, Vector::from(v.as_slice()))));
            db(store, move |s| s.cache_vectors(&model, &fresh))
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    let floats = |m: &HashMap<u64, Vector>| m.values().map(|v| v.len()).sum::<usize>();
    if floats(held) + floats(&found) > HELD_FLOATS {
        held.clear();
    }
    held.extend(found.iter().map(|(k, v)| (*k, v.clone())));
    Ok(found)
}

/// What a scan of a playbook for near duplicates found.
#[derive(Debug, Clone)]
pub struct Scan {
    /// How it judged (word overlap when no embedding model is configured or it failed).
    pub method: Method,
    pub threshold: f64,
    /// The playbook's active bullets.
    pub bullets: usize,
    pub merges: Vec<MergeOp>,
    /// Why embeddings were not used although a model is configured.
    pub warning: Option<String>,
}

/// Scans playbook `name` for near duplicates: every pair at or above `threshold` (the method's
/// default if none) as a MERGE of the weaker bullet into the stronger. Reads only; queueing the
/// merges is the caller's choice.
pub async fn scan<S: RunStore>(
    store: &Shared<S>,
    embedder: Option<Arc<dyn Embedder>>,
    name: &str,
    threshold: Option<f64>,
    cancel: &CancellationToken,
) -> Result<Scan, String> {
    let n = name.to_string();
    let playbook = db(store, move |s| s.load_playbook(&n))
        .await
        .map_err(|e| e.to_string())?;
    let playbook = Arc::new(playbook);
    let mut similarity = Similarity::lexical();
    let mut warning = None;
    if let Some(embedder) = embedder {
        let texts = dedup::texts_for_scan(&playbook);
        match vectors(store, &embedder, texts, &mut HashMap::new(), cancel).await {
            Ok(vectors) => {
                similarity = Similarity {
                    method: Method::Semantic {
                        model: embedder.model().to_string(),
                    },
                    vectors,
                }
            }
            Err(_) if cancel.is_cancelled() => return Err("cancelled".into()),
            Err(e) => {
                warning = Some(format!(
                    "the embeddings endpoint failed ({e}); judged by word overlap instead"
                ))
            }
        }
    }
    let threshold = threshold.unwrap_or_else(|| similarity.method.default_threshold());
    let pb = playbook.clone();
    let (merges, method) = tokio::task::spawn_blocking(move || {
        let index = Index::words_only(&pb);
        let merges = dedup::scan(&pb, &index, &similarity, threshold);
        (merges, similarity.method)
    })
    .await
    .map_err(|e| format!("the scan failed: {e}"))?;
    Ok(Scan {
        method,
        threshold,
        bullets: playbook.active_bullets().count(),
        merges,
        warning,
    })
}

/// How often each bullet was put before the generator in this run (for "never cited"): samples
/// that saw the whole playbook since the bullet was first seen, plus those it was retrieved for.
#[derive(Default)]
pub(super) struct Shown {
    whole: u64,
    since: HashMap<String, u64>,
    picked: HashMap<String, u64>,
}

impl Shown {
    /// Notes the bullets of `playbook` not seen before (before the batch that shows them).
    pub fn observe(&mut self, playbook: &Playbook) {
        for b in playbook.active_bullets() {
            if !self.since.contains_key(&b.id) {
                self.since.insert(b.id.clone(), self.whole);
            }
        }
    }

    /// One sample was shown `shown` (`None`: the whole playbook).
    pub fn record(&mut self, shown: Option<&[String]>) {
        match shown {
            None => self.whole += 1,
            Some(ids) => {
                for id in ids {
                    *self.picked.entry(id.clone()).or_insert(0) += 1;
                }
            }
        }
    }
}

impl Exposure for Shown {
    fn shown(&self, bullet: &str) -> Option<u64> {
        let since = self.since.get(bullet)?;
        Some(self.whole - since + self.picked.get(bullet).copied().unwrap_or(0))
    }
}

/// Beyond [`dedup::EXHAUSTIVE_ADDS`] active bullets, embeddings re-rank this many of BM25's best
/// candidates for each task.
const RERANK: usize = 200;

impl<S: RunStore> Loop<S> {
    /// For each query, the bullets ranked by embedding similarity (fused with BM25's ranking when
    /// the generator is shown a selection). `None`s when there is no embedding model or the whole
    /// playbook goes in. Task texts are embedded each time (one request per batch) and not
    /// cached; bullets' vectors are. An embeddings failure leaves retrieval to BM25, with a warning.
    pub(super) async fn semantic_rankings(
        &mut self,
        playbook: &Playbook,
        index: &Index,
        queries: &[String],
    ) -> Result<Vec<Option<Vec<String>>>, LoopError> {
        let none = vec![None; queries.len()];
        let Some(embedder) = self.judge.embedder.clone() else {
            return Ok(none);
        };
        if queries.is_empty() || !self.ctx.selects(index) {
            return Ok(none);
        }
        let everyone = playbook
            .active_bullets()
            .nth(dedup::EXHAUSTIVE_ADDS)
            .is_none();
        let candidates: Vec<Vec<&crate::playbook::Bullet>> = if everyone {
            let all: Vec<_> = playbook.active_bullets().collect();
            vec![all; queries.len()]
        } else {
            let by_id: HashMap<&str, &crate::playbook::Bullet> = playbook
                .active_bullets()
                .map(|b| (b.id.as_str(), b))
                .collect();
            queries
                .iter()
                .map(|q| {
                    index
                        .search(q, RERANK)
                        .into_iter()
                        .filter_map(|(id, _)| by_id.get(id.as_str()).copied())
                        .collect()
                })
                .collect()
        };
        let mut texts: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for b in candidates.iter().flatten() {
            if seen.insert(b.id.as_str()) {
                texts.push(b.content.clone());
            }
        }
        let fetched = async {
            let bullets = vectors(
                &self.store,
                &embedder,
                texts,
                &mut self.judge.held,
                &self.ctx.cancel,
            )
            .await?;
            let tasks = embedder
                .embed(queries, &self.ctx.cancel)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((bullets, tasks))
        };
        let (bullets, tasks) = match fetched.await {
            Ok(v) => v,
            Err(_) if self.ctx.cancel.is_cancelled() => return Err(LoopError::Cancelled),
            Err(e) => {
                self.judge.embedder = None;
                self.emit(Event::Warning {
                    message: format!(
                        "the embeddings endpoint failed ({e}); bullets are retrieved by BM25 alone and near duplicates judged by word overlap from now on"
                    ),
                });
                return Ok(none);
            }
        };
        Ok(candidates
            .iter()
            .zip(&tasks)
            .map(|(cands, task)| {
                let mut scored: Vec<(f64, &str)> = cands
                    .iter()
                    .filter_map(|b| {
                        let v = bullets.get(&text_key(&b.content))?;
                        Some((crate::refine::cosine(task, v), b.id.as_str()))
                    })
                    .collect();
                scored.sort_by(|a, b| b.0.total_cmp(&a.0));
                scored.truncate(RERANK.max(self.ctx.config.prompt_budget as usize / 8));
                Some(scored.into_iter().map(|(_, id)| id.to_string()).collect())
            })
            .collect())
    }

    /// When the batch would take the playbook over its token budget: prunes added to it (harmful
    /// bullets, then near duplicates, then unused ones) and the note the reviewer reads. Within
    /// budget, or with no budget, the ops pass unchanged.
    pub(super) async fn hold_budget(
        &mut self,
        playbook: &Arc<Playbook>,
        index: &Arc<Index>,
        mut ops: Vec<DeltaOp>,
    ) -> Result<(Vec<DeltaOp>, Option<BudgetNote>), LoopError> {
        let Some(budget) = self.token_budget else {
            return Ok((ops, None));
        };
        let before = index.total_tokens();
        let change = match size_change(playbook, &ops) {
            Ok(change) => change,
            Err(e) => {
                self.emit(Event::Warning {
                    message: format!(
                        "cannot measure the proposal against the token budget ({e}); approval checks it again"
                    ),
                });
                return Ok((ops, None));
            }
        };
        let proposed = SizeEffect::new(before, change, Some(budget));
        if !proposed.over() {
            return Ok((ops, None));
        }
        let need = proposed.excess();
        let unused_after = self.ctx.config.prune_unused_after;
        let mut prunes = prune::prunes(playbook, &ops, need, &[], &self.shown, unused_after);
        if prunes.iter().map(|p| p.saves).sum::<u64>() < need {
            // near duplicates next: a scan by word overlap over the index's candidates
            let (pb, ix) = (playbook.clone(), index.clone());
            let threshold = Method::Lexical.default_threshold();
            let merges = tokio::task::spawn_blocking(move || {
                dedup::scan(&pb, &ix, &Similarity::lexical(), threshold)
            })
            .await
            .map_err(|e| LoopError::Data(format!("the duplicate scan failed: {e}")))?;
            prunes = prune::prunes(playbook, &ops, need, &merges, &self.shown, unused_after);
        }
        let mut note = BudgetNote {
            budget,
            before,
            proposed: proposed.after,
            after: proposed.after,
            prunes: Vec::new(),
        };
        let mut with: Vec<DeltaOp> = ops.clone();
        with.extend(prunes.iter().map(|p| p.op.clone()));
        match size_change(playbook, &with) {
            Ok(change) => {
                note.after = before.saturating_add_signed(change);
                note.prunes = prunes
                    .iter()
                    .map(|p| DroppedOp {
                        op: p.op.describe(),
                        reason: p.reason.clone(),
                    })
                    .collect();
                ops = with;
            }
            Err(e) => self.emit(Event::Warning {
                message: format!("the prunes for the token budget do not apply ({e}); none added"),
            }),
        }
        Ok((ops, Some(note)))
    }
    /// The curator's ops with near-duplicate ADDs folded into MERGE proposals, and what was
    /// dropped. An embeddings failure switches the run to word overlap, with a warning.
    pub(super) async fn fold_duplicates(
        &mut self,
        playbook: &Playbook,
        index: &Index,
        ops: Vec<DeltaOp>,
    ) -> Result<(Vec<DeltaOp>, Vec<(String, String)>), LoopError> {
        if !ops.iter().any(|op| matches!(op, DeltaOp::Add(_))) {
            return Ok((ops, Vec::new()));
        }
        let mut similarity = Similarity::lexical();
        if let Some(embedder) = self.judge.embedder.clone() {
            let texts = dedup::texts_for_adds(playbook, index, &ops, &self.judge.method());
            let held = &mut self.judge.held;
            match vectors(&self.store, &embedder, texts, held, &self.ctx.cancel).await {
                Ok(vectors) => {
                    similarity = Similarity {
                        method: self.judge.method(),
                        vectors,
                    }
                }
                Err(_) if self.ctx.cancel.is_cancelled() => return Err(LoopError::Cancelled),
                Err(e) => {
                    self.judge.embedder = None;
                    self.emit(Event::Warning {
                        message: format!(
                            "the embeddings endpoint failed ({e}); near duplicates are judged by word overlap from now on"
                        ),
                    });
                }
            }
        }
        let threshold = self
            .ctx
            .config
            .dedup_threshold
            .unwrap_or_else(|| similarity.method.default_threshold());
        Ok(dedup::fold_adds(
            playbook,
            index,
            ops,
            &similarity,
            threshold,
        ))
    }
}
