//! What a run leaves behind: its record (status, configuration, checkpoint), one record per sample,
//! accuracy per split, and the totals `ace runs show` reports. The store keeps these; the loop
//! writes them; nothing reads them back as strings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{RunConfig, RunKind};

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    /// Waiting for decisions on a queued batch.
    Waiting,
    Finished,
    Cancelled,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Waiting => "waiting",
            RunStatus::Finished => "finished",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }

    /// Marked as driven by a process (which may have died since: see `Store::run_is_live`).
    pub fn is_live(self) -> bool {
        matches!(self, RunStatus::Running | RunStatus::Waiting)
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Offline => "offline",
            RunKind::Online => "online",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

impl std::fmt::Display for RunKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// What the Reflector was given, said plainly in the run record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeedbackMode {
    /// The Reflector sees the ground truth.
    GroundTruth,
    /// The Reflector sees only the environment's feedback.
    ExecutionFeedbackOnly,
    /// Agents' recorded runs: what their hosts said (success, feedback), and a ground truth where a
    /// trace carries one.
    AgentOutcomes,
}

impl FeedbackMode {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackMode::GroundTruth => "ground-truth",
            FeedbackMode::ExecutionFeedbackOnly => "execution-feedback-only",
            FeedbackMode::AgentOutcomes => "agent-outcomes",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

impl std::fmt::Display for FeedbackMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Which part of the data a sample or an accuracy figure belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
    Test,
    /// Accuracy of an online window, answered before it was learned from.
    Online,
}

impl Split {
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
            Split::Online => "online",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Where a run stands; saved after every batch, so a resumed run goes on from here.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// 1-based epoch in progress.
    pub epoch: u32,
    /// Index (in the epoch's order) of the first sample not yet done.
    pub next: usize,
    /// Batches finished so far.
    pub step: u64,
    /// A queued batch of the batch starting at `next` that the run waits on.
    pub awaiting: Option<i64>,
    pub best_val: Option<f64>,
    /// First-attempt (right, seen) of the epoch's finished batches: kept as the run goes, so
    /// scoring a batch never re-reads the run's samples. Absent in checkpoints of older versions.
    #[serde(default)]
    pub so_far: Option<(u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: String,
    pub playbook: String,
    pub kind: RunKind,
    pub status: RunStatus,
    pub config: RunConfig,
    pub feedback_mode: FeedbackMode,
    pub checkpoint: Option<Checkpoint>,
    pub best_revision: Option<i64>,
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// One sample's outcome in a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRecord {
    /// Unique in the run: `split/epoch/batch/index`.
    pub key: String,
    pub split: Split,
    pub epoch: u32,
    /// The batch of the run, from 1.
    pub step: u64,
    pub sample_id: String,
    pub question: String,
    pub answer: String,
    pub ground_truth: Option<String>,
    /// The final attempt was right.
    pub correct: bool,
    /// The first attempt (the one accuracy counts) was right.
    pub first_correct: bool,
    pub rounds: u32,
    pub feedback: String,
    pub cited: Vec<String>,
    pub reflection: Option<serde_json::Value>,
    /// The bullets the generator was shown; `None`: the whole playbook.
    #[serde(default)]
    pub shown: Option<Vec<String>>,
    /// Ids the answers cited or the reflections tagged that match no bullet the generator was
    /// shown (as written).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown_ids: Vec<String>,
}

/// What a run cost and reached, for a list of runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunTotals {
    pub calls: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: f64,
    /// From its start to its last update, in seconds.
    pub wall_secs: f64,
    /// First-attempt (right, total) of the last training epoch.
    pub train: Option<(u64, u64)>,
    /// The best validation (right, total).
    pub val: Option<(u64, u64)>,
    /// The test (right, total).
    pub test: Option<(u64, u64)>,
    /// Online windows so far (right, total).
    pub online: Option<(u64, u64)>,
}

impl RunTotals {
    /// The accuracy the run learned with: its online windows', else its last training epoch's.
    pub fn learning(&self) -> Option<(u64, u64)> {
        self.online.or(self.train)
    }

    /// A (right, total) as a percentage for a table, `-` when there is none.
    pub fn percent(x: Option<(u64, u64)>) -> String {
        x.map_or_else(
            || "-".into(),
            |(c, n)| format!("{:.1}%", 100.0 * c as f64 / n.max(1) as f64),
        )
    }
}

/// Accuracy of one split after one batch of an epoch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Accuracy {
    pub split: Split,
    pub epoch: u32,
    pub step: u64,
    pub correct: u64,
    pub total: u64,
    /// The playbook revision the figure was measured on.
    pub revision: Option<i64>,
}

impl RunSummary {
    /// What the run's model calls cost in all.
    pub fn cost_usd(&self) -> f64 {
        self.roles.values().map(|r| r.cost_usd).sum()
    }

    /// Validation accuracy at the last measurement minus the first, in points (needs two).
    pub fn accuracy_gain(&self) -> Option<f64> {
        let val: Vec<&Accuracy> = self
            .accuracy
            .iter()
            .filter(|a| a.split == Split::Val && a.total > 0)
            .collect();
        let pct = |a: &Accuracy| 100.0 * a.correct as f64 / a.total as f64;
        match (val.first(), val.last()) {
            (Some(first), Some(last)) if val.len() >= 2 => Some(pct(last) - pct(first)),
            _ => None,
        }
    }
}

impl std::fmt::Display for Accuracy {
    /// `  train  epoch  1 batch   12:    9/12    75.0%  (playbook at revision 7)`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "  {:<6} epoch {:>2} batch {:>4}: {:>4}/{:<4} {:>5.1}%",
            self.split.to_string(),
            self.epoch,
            self.step,
            self.correct,
            self.total,
            100.0 * self.correct as f64 / self.total.max(1) as f64,
        )?;
        if let Some(r) = self.revision {
            write!(f, "  (playbook at revision {r})")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RoleTotals {
    pub calls: u64,
    /// HTTP requests that reached the server for these calls, retries included.
    pub requests: u64,
    /// Of the prompt tokens, those served from the server's prompt cache.
    pub cached_prompt_tokens: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: f64,
}

/// What `ace runs show` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    pub run: RunRecord,
    pub accuracy: Vec<Accuracy>,
    pub samples: u64,
    pub proposed_ops: u64,
    pub approved_ops: u64,
    /// Approved ADD and MERGE ops: bullets the run brought into the playbook.
    pub approved_bullets: u64,
    pub rejected_ops: u64,
    pub pending_ops: u64,
    pub helpful_tags: u64,
    pub harmful_tags: u64,
    /// Ids cited or tagged that matched no bullet shown (summed over samples).
    pub unknown_ids: u64,
    /// From its start to its last update, in seconds.
    pub wall_secs: f64,
    /// Calls by what came of them: ok, repaired, unusable.
    pub outcomes: BTreeMap<String, u64>,
    pub roles: BTreeMap<String, RoleTotals>,
}
