//! Retrieval: which bullets of a large playbook go into the generator's prompt.
//!
//! Under its prompt budget the whole playbook goes in, as the paper does. Over it, the bullets most
//! relevant to the task do: BM25 over an in-memory inverted index of the playbook ([`Index`], kept
//! in step with the playbook between batches instead of rebuilt), optionally fused with embedding
//! similarity (reciprocal rank fusion, [`fuse`]), taken in rank order while they fit the budget and
//! shown in playbook order under their sections.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::render::{bullet_cost, section_cost};
use crate::delta::{Change, content_hash};
use crate::playbook::Playbook;

/// How the generator's playbook is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Retrieval {
    /// The whole playbook, always.
    Whole,
    /// The `K` most relevant bullets (within the prompt budget).
    TopK(usize),
    /// The whole playbook while it fits the prompt budget, else the most relevant bullets that fit.
    #[default]
    Auto,
}

impl std::fmt::Display for Retrieval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Retrieval::Whole => f.write_str("whole"),
            Retrieval::TopK(k) => write!(f, "topk:{k}"),
            Retrieval::Auto => f.write_str("auto"),
        }
    }
}

impl std::str::FromStr for Retrieval {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "whole" => Ok(Retrieval::Whole),
            "auto" => Ok(Retrieval::Auto),
            other => other
                .strip_prefix("topk:")
                .and_then(|k| k.parse::<usize>().ok())
                .filter(|k| *k > 0)
                .map(Retrieval::TopK)
                .ok_or_else(|| {
                    format!("unknown retrieval '{other}' (use whole, topk:K with K > 0, or auto)")
                }),
        }
    }
}

impl Serialize for Retrieval {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Retrieval {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Hashing of ids and words (short keys from our own playbooks): FNV-1a.
/// A fast hasher for keys the playbook holds (bullet ids, words of bullets).
pub type Fast = std::hash::BuildHasherDefault<super::render::Fnv>;

/// A postings list as (doc, term frequency): runs of equal entries.
fn runs(list: &[u32]) -> impl Iterator<Item = (u32, u32)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let slot = *list.get(i)?;
        let start = i;
        while list.get(i) == Some(&slot) {
            i += 1;
        }
        Some((slot, (i - start) as u32))
    })
}

const K1: f64 = 1.2;
const B: f64 = 0.75;

/// Words of a text as the index sees them: lowercase letters and digits, two characters or more, a
/// plural `s` dropped.
fn terms(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() > 1)
        .map(|w| {
            let w = w.to_lowercase();
            if w.len() > 3 && w.ends_with('s') && !w.ends_with("ss") {
                w[..w.len() - 1].to_string()
            } else {
                w
            }
        })
}

struct Doc {
    id: String,
    hash: u64,
    /// Words in the bullet (BM25's document length).
    len: u32,
    /// The bullet's line in the generator's rendering, in tokens.
    tokens: u32,
    alive: bool,
}

/// An inverted index of a playbook's active bullets, with each bullet's size in tokens.
#[derive(Default)]
pub struct Index {
    docs: Vec<Doc>,
    by_id: HashMap<String, usize, Fast>,
    vocabulary: HashMap<String, u32, Fast>,
    /// Per term: the docs holding it, a doc once per occurrence (its entries adjacent, so a run's
    /// length is the term's frequency there: 4 bytes an occurrence). Entries of dead docs stay
    /// until the next compaction.
    postings: Vec<Vec<u32>>,
    /// Per term: live docs holding it (recounted after a sync that dropped docs).
    df: Vec<u32>,
    df_stale: bool,
    live: usize,
    live_len: u64,
    live_tokens: u64,
    /// Tokens of the section headers of the last synced playbook, in all and by section.
    header_tokens: u64,
    section_tokens: HashMap<String, u64, Fast>,
    revision: Option<i64>,
    synced: bool,
    /// Built for search only: bullets are not sized (see [`Index::words_only`]).
    unsized_: bool,
}

impl Index {
    pub fn build(playbook: &Playbook) -> Index {
        let mut index = Index::default();
        index.sync(playbook);
        index
    }

    /// An index for searching words only (near-duplicate scans): bullets are not tokenised, so
    /// [`Index::total_tokens`] and [`Index::choose`] know no sizes. Cheaper to build.
    pub fn words_only(playbook: &Playbook) -> Index {
        let mut index = Index {
            unsized_: true,
            ..Index::default()
        };
        index.sync(playbook);
        index
    }

    fn cost(&self, bullet: &crate::playbook::Bullet) -> u64 {
        if self.unsized_ {
            0
        } else {
            bullet_cost(bullet)
        }
    }

    /// Whether the index was ever brought in step with a playbook.
    pub fn is_synced(&self) -> bool {
        self.synced
    }

    /// Whether the index is in step with `playbook` (the same stored revision).
    pub fn is_current(&self, playbook: &Playbook) -> bool {
        self.synced && playbook.revision.is_some() && playbook.revision == self.revision
    }

    /// Brings the index in step with `playbook`: new and changed bullets are indexed, gone ones
    /// dropped; unchanged ones cost a hash each. A playbook at the revision already synced costs
    /// nothing.
    pub fn sync(&mut self, playbook: &Playbook) {
        if self.is_current(playbook) {
            return;
        }
        let mut seen = vec![false; self.docs.len()];
        for b in playbook.active_bullets() {
            let hash = content_hash(b.content.as_bytes());
            match self.by_id.get(&b.id) {
                Some(&slot) if self.docs[slot].hash == hash => seen[slot] = true,
                Some(&slot) => {
                    self.kill(slot);
                    let cost = self.cost(b);
                    self.add(&b.id, hash, cost, &b.content);
                    seen.push(true);
                }
                None => {
                    let cost = self.cost(b);
                    self.add(&b.id, hash, cost, &b.content);
                    seen.push(true);
                }
            }
        }
        for (slot, seen) in seen.into_iter().enumerate() {
            if !seen && self.docs[slot].alive {
                self.kill(slot);
            }
        }
        self.settle(playbook);
    }

    /// Brings an index that was in step with the playbook before `changes` (as recorded, each
    /// holding the bullet after it) in step with `playbook`, which is after them: only the bullets
    /// the changes name are looked at.
    pub fn apply_changes(&mut self, playbook: &Playbook, changes: &[Change]) {
        for change in changes {
            let Change::Bullet { id, after, .. } = change else {
                continue;
            };
            let slot = self.by_id.get(id).copied();
            match after.as_ref().filter(|b| b.is_active()) {
                Some(b) => {
                    let hash = content_hash(b.content.as_bytes());
                    match slot {
                        Some(s) if self.docs[s].hash == hash => {}
                        Some(s) => {
                            self.kill(s);
                            let cost = self.cost(b);
                            self.add(&b.id, hash, cost, &b.content);
                        }
                        None => {
                            let cost = self.cost(b);
                            self.add(&b.id, hash, cost, &b.content);
                        }
                    }
                }
                None => {
                    if let Some(s) = slot {
                        self.kill(s);
                    }
                }
            }
        }
        self.settle(playbook);
    }

    /// After docs were added and dropped: section headers, document frequencies, compaction.
    fn settle(&mut self, playbook: &Playbook) {
        if !self.unsized_ {
            self.section_tokens = playbook
                .sections
                .iter()
                .map(|s| (s.name.clone(), section_cost(&s.name)))
                .collect();
            self.header_tokens = self.section_tokens.values().sum();
        }
        if self.docs.len() > 2 * self.live.max(1000) {
            self.compact();
        }
        if self.df_stale {
            for (t, list) in self.postings.iter().enumerate() {
                self.df[t] = runs(list)
                    .filter(|(slot, _)| self.docs[*slot as usize].alive)
                    .count() as u32;
            }
            self.df_stale = false;
        }
        self.revision = playbook.revision;
        self.synced = true;
    }

    fn add(&mut self, id: &str, hash: u64, cost: u64, content: &str) {
        let slot = self.docs.len() as u32;
        let mut counts: HashMap<u32, u16> = HashMap::new();
        let mut len = 0u32;
        for term in terms(content) {
            len += 1;
            let next = self.vocabulary.len() as u32;
            let t = *self.vocabulary.entry(term).or_insert(next);
            if t as usize == self.postings.len() {
                self.postings.push(Vec::new());
                self.df.push(0);
            }
            let c = counts.entry(t).or_insert(0);
            *c = c.saturating_add(1);
        }
        for (t, tf) in counts {
            let list = &mut self.postings[t as usize];
            list.extend(std::iter::repeat_n(slot, usize::from(tf)));
            self.df[t as usize] += 1;
        }
        let line_tokens = u32::try_from(cost).unwrap_or(u32::MAX);
        self.docs.push(Doc {
            id: id.to_string(),
            hash,
            len,
            tokens: line_tokens,
            alive: true,
        });
        self.by_id.insert(id.to_string(), slot as usize);
        self.live += 1;
        self.live_len += u64::from(len);
        self.live_tokens += u64::from(line_tokens);
    }

    fn kill(&mut self, slot: usize) {
        let doc = &mut self.docs[slot];
        if doc.alive {
            self.df_stale = true;
            doc.alive = false;
            self.live -= 1;
            self.live_len -= u64::from(doc.len);
            self.live_tokens -= u64::from(doc.tokens);
            if self.by_id.get(&doc.id) == Some(&slot) {
                self.by_id.remove(&doc.id);
            }
        }
    }

    /// Drops dead docs and their postings, renumbering the live ones.
    fn compact(&mut self) {
        let mut renumber = vec![u32::MAX; self.docs.len()];
        let mut docs = Vec::with_capacity(self.live);
        for (slot, doc) in std::mem::take(&mut self.docs).into_iter().enumerate() {
            if doc.alive {
                renumber[slot] = docs.len() as u32;
                docs.push(doc);
            }
        }
        for list in &mut self.postings {
            list.retain_mut(|slot| {
                let new = renumber[*slot as usize];
                *slot = new;
                new != u32::MAX
            });
        }
        self.by_id = docs
            .iter()
            .enumerate()
            .map(|(i, d)| (d.id.clone(), i))
            .collect();
        self.docs = docs;
    }

    /// The playbook's size in the generator's rendering, in tokens (each bullet's line and each
    /// section's header).
    /// A section header's size in tokens, as counted when the index was last synced.
    pub fn section_tokens(&self, name: &str) -> Option<u64> {
        self.section_tokens.get(name).copied()
    }

    pub fn total_tokens(&self) -> u64 {
        self.live_tokens + self.header_tokens
    }

    /// The size of one bullet's line, if it is indexed.
    pub fn bullet_tokens(&self, id: &str) -> Option<u64> {
        self.by_id
            .get(id)
            .map(|&slot| u64::from(self.docs[slot].tokens))
    }

    /// The `limit` bullets most relevant to `query` by BM25, best first, with their scores.
    pub fn search(&self, query: &str, limit: usize) -> Vec<(String, f64)> {
        self.named(self.rank(query, limit, usize::MAX))
    }

    fn named(&self, ranked: Vec<(u32, f64)>) -> Vec<(String, f64)> {
        ranked
            .into_iter()
            .map(|(slot, score)| (self.docs[slot as usize].id.clone(), score))
            .collect()
    }

    /// [`Index::search`] then [`Index::choose`] in one step, without naming the candidates that
    /// are not chosen: what the generator is shown for `query`.
    pub fn select(
        &self,
        mode: Retrieval,
        budget: u64,
        query: &str,
        limit: usize,
    ) -> Option<Vec<String>> {
        let most = self.selection_limit(mode, budget)?;
        let candidates = self
            .rank(query, limit, usize::MAX)
            .into_iter()
            .map(|(slot, _)| {
                let doc = &self.docs[slot as usize];
                (doc.id.as_str(), u64::from(doc.tokens))
            });
        Some(self.fill(most, budget, candidates))
    }

    /// How many bullets `mode` allows within `budget`: `None` when the whole playbook is shown.
    fn selection_limit(&self, mode: Retrieval, budget: u64) -> Option<usize> {
        match mode {
            Retrieval::Whole => None,
            Retrieval::Auto if self.total_tokens() <= budget => None,
            Retrieval::Auto => Some(usize::MAX),
            Retrieval::TopK(k) => Some(k),
        }
    }

    /// Candidates (id, tokens) taken in order while they fit `budget` (a candidate that does not fit
    /// is passed over for smaller ones after it), at most `most` of them.
    fn fill<'a>(
        &self,
        most: usize,
        budget: u64,
        candidates: impl Iterator<Item = (&'a str, u64)>,
    ) -> Vec<String> {
        let mut used = self.header_tokens;
        let mut chosen = Vec::new();
        for (id, cost) in candidates {
            if chosen.len() >= most {
                break;
            }
            if used + cost > budget {
                continue;
            }
            used += cost;
            chosen.push(id.to_string());
        }
        chosen
    }

    /// Bullets that share the rarer words of `text` (words in at most one bullet in fifty, or 64),
    /// most alike first: candidates for near duplicates, found without walking the long lists of
    /// common words, so cheap even on a large playbook.
    pub fn neighbours(&self, text: &str, limit: usize) -> Vec<String> {
        let cap = (self.live / 50).max(64);
        self.named(self.rank(text, limit, cap))
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    /// BM25 ranking over the query's words that occur in at most `max_df` bullets.
    fn rank(&self, query: &str, limit: usize, max_df: usize) -> Vec<(u32, f64)> {
        if self.live == 0 || limit == 0 {
            return Vec::new();
        }
        let n = self.live as f64;
        let avg = (self.live_len as f64 / n).max(1.0);
        let mut query_terms: Vec<u32> = terms(query)
            .filter_map(|t| self.vocabulary.get(&t).copied())
            .collect();
        query_terms.sort_unstable();
        query_terms.dedup();
        // scores in a dense array (a doc's slot indexes it): no hashing in the inner loop
        let mut scores: Vec<f64> = vec![0.0; self.docs.len()];
        let mut touched: Vec<u32> = Vec::new();
        for t in query_terms {
            let df = self.df[t as usize] as usize;
            if df == 0 || df > max_df {
                continue;
            }
            let df = df as f64;
            let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
            for (slot, tf) in runs(&self.postings[t as usize]) {
                let doc = &self.docs[slot as usize];
                if !doc.alive {
                    continue;
                }
                let tf = f64::from(tf);
                let norm = K1 * (1.0 - B + B * f64::from(doc.len) / avg);
                let score = &mut scores[slot as usize];
                if *score == 0.0 {
                    touched.push(slot);
                }
                *score += idf * tf * (K1 + 1.0) / (tf + norm);
            }
        }
        let mut ranked: Vec<(u32, f64)> = touched
            .into_iter()
            .map(|slot| (slot, scores[slot as usize]))
            .collect();
        // best first; ties by slot (lower first), so the choice is deterministic
        let order = |a: &(u32, f64), b: &(u32, f64)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if ranked.len() > limit {
            ranked.select_nth_unstable_by(limit - 1, order);
            ranked.truncate(limit);
        }
        ranked.sort_unstable_by(order);
        ranked
    }

    /// The bullets the generator is shown: `None` for the whole playbook, else the ids chosen by
    /// rank from `ranked` (most relevant first) while they fit `budget` tokens (and, for `TopK`,
    /// at most K of them).
    pub fn choose(&self, mode: Retrieval, budget: u64, ranked: &[String]) -> Option<Vec<String>> {
        let most = self.selection_limit(mode, budget)?;
        let candidates = ranked
            .iter()
            .filter_map(|id| Some((id.as_str(), self.bullet_tokens(id)?)));
        Some(self.fill(most, budget, candidates))
    }
}

/// Reciprocal rank fusion of several rankings (best first): each id scores Σ 1 / (60 + rank), so an
/// item high in any list rises, and no list's raw scores need to be comparable.
pub fn fuse(rankings: &[Vec<String>]) -> Vec<String> {
    const C: f64 = 60.0;
    let mut scores: HashMap<&str, f64> = HashMap::new();
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    let mut order = 0;
    for ranking in rankings {
        for (rank, id) in ranking.iter().enumerate() {
            *scores.entry(id).or_insert(0.0) += 1.0 / (C + rank as f64 + 1.0);
            first_seen.entry(id).or_insert_with(|| {
                order += 1;
                order
            });
        }
    }
    let mut fused: Vec<(&str, f64)> = scores.into_iter().collect();
    fused.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then(first_seen[a.0].cmp(&first_seen[b.0]))
    });
    fused.into_iter().map(|(id, _)| id.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mode_is_written_and_read_as_a_word() {
        for text in ["whole", "topk:12", "auto"] {
            let mode: Retrieval = text.parse().unwrap();
            assert_eq!(mode.to_string(), text);
            let json = serde_json::to_value(mode).unwrap();
            assert_eq!(serde_json::from_value::<Retrieval>(json).unwrap(), mode);
        }
        assert!("topk:0".parse::<Retrieval>().is_err());
        assert!("most".parse::<Retrieval>().is_err());
    }

    #[test]
    fn fusion_rewards_agreement() {
        let a = vec!["x".to_string(), "y".into(), "z".into()];
        let b = vec!["z".to_string(), "y".into(), "x".into()];
        let c = vec!["y".to_string()];
        assert_eq!(fuse(&[a, b, c])[0], "y");
    }
}
