//! The loop's refine steps: judging the curator's lessons against the playbook (near duplicates
//! become MERGE proposals). The rules are in [`crate::refine`]; this is where the run fetches the
//! vectors they need (cached in the store, embedded once) and falls back to word overlap, saying
//! so, when the embeddings endpoint fails.

use std::collections::HashMap;
use std::sync::Arc;

use super::engine::{Loop, db};
use super::sample::LoopError;
use super::{Event, RunStore};
use crate::delta::DeltaOp;
use crate::llm::Embedder;
use crate::playbook::Playbook;
use crate::prompts::Index;
use crate::refine::{Method, Similarity, dedup, text_key};

/// How the run judges near duplicates; fixed at the start, lexical for good after a failure.
pub(super) struct Judge {
    pub embedder: Option<Arc<dyn Embedder>>,
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

impl<S: RunStore> Loop<S> {
    /// Vectors of `texts` under the run's embedding model: cached ones from the store, the rest
    /// embedded now and cached.
    async fn vectors(
        &self,
        embedder: &Arc<dyn Embedder>,
        texts: Vec<String>,
    ) -> Result<HashMap<u64, Vec<f32>>, String> {
        let model = embedder.model().to_string();
        let mut wanted: HashMap<u64, String> = HashMap::new();
        for t in texts {
            wanted.entry(text_key(&t)).or_insert(t);
        }
        let keys: Vec<u64> = wanted.keys().copied().collect();
        let m = model.clone();
        let mut found = db(&self.store, move |s| s.cached_vectors(&m, &keys))
            .await
            .map_err(|e| e.to_string())?;
        let missing: Vec<(u64, String)> = wanted
            .into_iter()
            .filter(|(k, _)| !found.contains_key(k))
            .collect();
        if !missing.is_empty() {
            let texts: Vec<String> = missing.iter().map(|(_, t)| t.clone()).collect();
            let vectors = embedder
                .embed(&texts, &self.ctx.cancel)
                .await
                .map_err(|e| e.to_string())?;
            let fresh: Vec<(u64, Vec<f32>)> =
                missing.iter().map(|(k, _)| *k).zip(vectors).collect();
            let cached = fresh.clone();
            db(&self.store, move |s| s.cache_vectors(&model, &cached))
                .await
                .map_err(|e| e.to_string())?;
            found.extend(fresh);
        }
        Ok(found)
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
            let texts = dedup::texts_for_adds(playbook, index, &ops);
            match self.vectors(&embedder, texts).await {
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
