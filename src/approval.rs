//! Approval: what a model or an agent proposes waits in a queue until a person (or a policy that
//! person set) decides each op. These are the queue's types; the store keeps them, the loop fills
//! them, the command line and the workbench show them.

use serde::{Deserialize, Serialize};

use crate::delta::DeltaOp;

/// Where a queued batch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchStatus {
    /// Some ops are undecided.
    Pending,
    /// Every op is decided and the approved ones were applied as a revision.
    Applied,
    /// Every op is decided and none was approved.
    Rejected,
}

impl BatchStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BatchStatus::Pending => "pending",
            BatchStatus::Applied => "applied",
            BatchStatus::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(BatchStatus::Pending),
            "applied" => Some(BatchStatus::Applied),
            "rejected" => Some(BatchStatus::Rejected),
            _ => None,
        }
    }
}

impl std::fmt::Display for BatchStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// The decision on one queued op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpStatus {
    Pending,
    Approved,
    Rejected,
    /// Approved in a form a person edited.
    Edited,
}

impl OpStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OpStatus::Pending => "pending",
            OpStatus::Approved => "approved",
            OpStatus::Rejected => "rejected",
            OpStatus::Edited => "edited",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(OpStatus::Pending),
            "approved" => Some(OpStatus::Approved),
            "rejected" => Some(OpStatus::Rejected),
            "edited" => Some(OpStatus::Edited),
            _ => None,
        }
    }
}

impl std::fmt::Display for OpStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingOp {
    /// Place in the batch, from 0.
    pub idx: usize,
    /// The proposer's key for the op (stable across a resumed run).
    pub key: String,
    pub op: DeltaOp,
    pub status: OpStatus,
    pub edited: Option<DeltaOp>,
    pub reason: Option<String>,
}

impl PendingOp {
    /// The op that is (or would be) applied: the edited one if a person edited it.
    pub fn effective(&self) -> &DeltaOp {
        self.edited.as_ref().unwrap_or(&self.op)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingBatch {
    pub id: i64,
    pub playbook: String,
    /// Idempotency key: proposing the same key again returns this batch.
    pub key: String,
    pub run_id: Option<String>,
    pub status: BatchStatus,
    pub reasoning: Option<String>,
    /// What led to it.
    pub provenance: Provenance,
    pub created_at: String,
    pub decided_by: Option<String>,
    /// The revision that applied its approved ops.
    pub revision: Option<i64>,
    /// The revision that reverted that one, if it was undone since.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undone_by: Option<i64>,
    pub ops: Vec<PendingOp>,
}

impl PendingBatch {
    /// Its status as a person reads it: an applied batch whose revision was reverted since is
    /// "undone".
    pub fn state(&self) -> String {
        match self.undone_by {
            Some(r) if self.status == BatchStatus::Applied => format!("undone (revision {r})"),
            _ => self.status.to_string(),
        }
    }

    pub fn is_pending(&self) -> bool {
        self.status == BatchStatus::Pending
    }

    /// The samples (answers, verdicts, reflections) recorded as this batch's evidence.
    pub fn samples(&self) -> &[Evidence] {
        &self.provenance.samples
    }

    /// Ops nobody has decided yet.
    pub fn undecided(&self) -> usize {
        self.ops
            .iter()
            .filter(|o| o.status == OpStatus::Pending)
            .count()
    }
}

/// What led to a proposal: the run and batch it came from, the samples with their answers,
/// verdicts and reflections, the curator's reasoning and the ops it dropped. Every field is
/// optional when read, so evidence written by an older version still shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Provenance {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u32>,
    /// The batch of the run, from 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<u64>,
    pub samples: Vec<Evidence>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curator_reasoning: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<DroppedOp>,
    /// Set when the proposal would have taken the playbook over its token budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetNote>,
}

/// A proposal measured against its playbook's token budget, when it did not fit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BudgetNote {
    pub budget: u64,
    /// The playbook's size before the batch.
    pub before: u64,
    /// Its size with the curator's ops alone.
    pub proposed: u64,
    /// Its size with the prunes added to the batch too.
    pub after: u64,
    /// The prunes added, each with why (as `op`, `reason`).
    pub prunes: Vec<DroppedOp>,
}

impl BudgetNote {
    /// E.g. `over budget: 12,380 tokens of 12,000 as proposed; 3 prunes added bring it to 11,950`.
    pub fn describe(&self) -> String {
        let head = format!(
            "over budget as proposed: {} → {} tokens (budget {})",
            self.before, self.proposed, self.budget
        );
        if self.prunes.is_empty() {
            format!("{head}; nothing in the playbook to prune")
        } else {
            format!(
                "{head}; {} prune{} added bring it to {}{}",
                self.prunes.len(),
                if self.prunes.len() == 1 { "" } else { "s" },
                self.after,
                if self.after > self.budget {
                    ", still over"
                } else {
                    ""
                }
            )
        }
    }
}

/// One sample behind a proposal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Evidence {
    /// The sample's place in its run (`split/epoch/batch/index`).
    pub key: String,
    pub sample_id: String,
    pub question: String,
    pub answer: String,
    pub ground_truth: Option<String>,
    pub correct: bool,
    pub feedback: String,
    pub cited: Vec<String>,
    pub reflection: Option<ReflectionNote>,
}

/// The parts of a reflection a reviewer reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReflectionNote {
    pub error_identification: String,
    pub root_cause_analysis: String,
    pub correct_approach: String,
    pub key_insight: String,
}

/// An op the curator proposed that never reached the queue, and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DroppedOp {
    pub op: String,
    pub reason: String,
}

/// A decision on one op.
#[derive(Debug, Clone, PartialEq)]
// A handful exist at a time; boxing the edited op would only add noise at every call site.
#[allow(clippy::large_enum_variant)]
pub enum Decision {
    Approve,
    Reject {
        reason: Option<String>,
    },
    /// Approve this op instead of the proposed one.
    Edit(DeltaOp),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecideOutcome {
    /// Every op of the batch is now decided.
    pub closed: bool,
    /// The revision that applied the approved ops, if the batch closed with any.
    pub revision: Option<i64>,
}

/// Ops keyed for the queue as `KEY:0`, `KEY:1`, … (the key of the batch they come in).
pub fn keyed_ops(key: &str, ops: impl IntoIterator<Item = DeltaOp>) -> Vec<(String, DeltaOp)> {
    ops.into_iter()
        .enumerate()
        .map(|(i, op)| (format!("{key}:{i}"), op))
        .collect()
}
