//! Grow and refine: keeping a playbook compact as it grows. Every step reads a playbook and
//! proposes ops for the queue; none writes anything itself.
//!
//! - [`dedup`]: a lesson said again in other words becomes a MERGE into the bullet it repeats,
//!   judged by embeddings when a model serves them ([`Method::Semantic`]) and by word overlap
//!   otherwise ([`Method::Lexical`]);
//! - [`budget`]: what a batch would do to a playbook's size ([`SizeEffect`]);
//! - [`prune`]: when a proposal would take a playbook over its token budget, the bullets to let go
//!   (more harmful than helpful, duplicates, never cited).

pub mod budget;
pub mod dedup;
pub mod prune;

pub use budget::{SizeEffect, size_change};

use std::collections::{BTreeSet, HashMap};

use crate::delta::content_hash;

/// How near duplicates are judged.
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    /// Cosine similarity of embeddings from this model.
    Semantic { model: String },
    /// Overlap of content words (token-set Jaccard): no model needed, but blind to paraphrase.
    Lexical,
}

impl Method {
    /// The similarity at or above which two texts are duplicates, unless configured otherwise.
    pub fn default_threshold(&self) -> f64 {
        match self {
            Method::Semantic { .. } => 0.85,
            Method::Lexical => 0.9,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Method::Semantic { model } => format!("embeddings ({model})"),
            Method::Lexical => "word overlap (no embedding model)".into(),
        }
    }
}

const STOP: &[&str] = &[
    "a", "an", "the", "and", "or", "of", "to", "in", "on", "for", "with", "is", "are", "be", "it",
    "that", "this", "as", "by", "at", "when", "always", "before",
];

/// The content words of a text: lowercase, stop words and a plural `s` dropped.
pub fn content_words(s: &str) -> BTreeSet<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|w| !w.is_empty() && !STOP.contains(&w.as_str()))
        .map(|w| {
            if w.len() > 3 && w.ends_with('s') {
                w[..w.len() - 1].to_string()
            } else {
                w
            }
        })
        .collect()
}

/// Token-set Jaccard similarity of two texts' content words.
pub fn lexical(a: &str, b: &str) -> f64 {
    let (a, b) = (content_words(a), content_words(b));
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let common = a.intersection(&b).count() as f64;
    common / a.union(&b).count() as f64
}

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        (dot / (na.sqrt() * nb.sqrt())).clamp(-1.0, 1.0)
    }
}

/// The key a text's vector is cached under.
pub fn text_key(text: &str) -> u64 {
    content_hash(text.as_bytes())
}

/// An embedding, shared without copying.
pub type Vector = std::sync::Arc<[f32]>;

/// Similarity under one method, with the vectors it needs (by [`text_key`]) already fetched.
pub struct Similarity {
    pub method: Method,
    pub vectors: HashMap<u64, Vector>,
}

impl Similarity {
    pub fn lexical() -> Self {
        Similarity {
            method: Method::Lexical,
            vectors: HashMap::new(),
        }
    }

    /// How alike two texts are, 0 to 1. Texts equal after folding case and spaces are 1 by any
    /// method; under embeddings a text without a vector is compared by word overlap.
    pub fn score(&self, a: &str, b: &str) -> f64 {
        self.score_prepared(&self.prepare(a), &self.prepare(b))
    }

    /// What [`Similarity::score_prepared`] needs of a text, worked out once.
    pub fn prepare(&self, text: &str) -> Prepared {
        let mut words: Vec<u64> = content_words(text)
            .iter()
            .map(|w| content_hash(w.as_bytes()))
            .collect();
        words.sort_unstable();
        words.dedup();
        Prepared {
            folded: content_hash(fold(text).as_bytes()),
            words,
            vector: match &self.method {
                Method::Semantic { .. } => self.vectors.get(&text_key(text)).cloned(),
                Method::Lexical => None,
            },
        }
    }

    /// [`Similarity::score`] of two prepared texts.
    pub fn score_prepared(&self, a: &Prepared, b: &Prepared) -> f64 {
        if a.folded == b.folded {
            return 1.0;
        }
        match (&a.vector, &b.vector) {
            (Some(x), Some(y)) => cosine(x, y).max(0.0),
            _ => jaccard(&a.words, &b.words),
        }
    }
}

/// A text made ready for comparison: its folded form's hash, its content words' hashes (sorted),
/// its vector if the method uses one.
#[derive(Debug, Clone)]
pub struct Prepared {
    folded: u64,
    words: Vec<u64>,
    vector: Option<Vector>,
}

/// Jaccard similarity of two sorted, deduplicated sets.
fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    common as f64 / (a.len() + b.len() - common) as f64
}

/// A text with case and runs of whitespace folded: two bullets equal under it are the same bullet.
pub fn fold(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}
