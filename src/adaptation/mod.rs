//! The ACE loop: Generator → Environment → Reflector → Curator → pending queue → (decision) → playbook.
//!
//! A run is a tokio task ([`run`]) that reports every step as an [`Event`] and obeys [`Control`]s
//! (pause, resume, step one sample, run to the end of the batch or epoch, cancel). Offline runs go over
//! a training split in epochs with deterministic shuffling, validate every K batches, mark the best
//! validation revision and test at the end; online runs take windows of samples in order, answering each
//! window with the current playbook (that is the score) and then learning from it. After each batch the
//! reflector's tags are applied by policy (one revision, idempotent), the curator's ops are queued, and —
//! with `approve: wait` — the run waits until a person has decided them, so the next batch always sees
//! the approved playbook. A checkpoint after each batch lets `--resume` continue a killed run without
//! repeating applied ops or counting tags twice.

mod control;
mod engine;
mod learn;
pub mod metrics;
pub mod record;
pub mod refining;
mod run_store;
mod sample;
pub mod trial;

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use control::Controls;
pub use engine::{RunHandle, run, start};
pub use record::{
    Accuracy, Checkpoint, FeedbackMode, RoleTotals, RunRecord, RunStatus, RunSummary, RunTotals,
    SampleRecord, Split,
};
pub use run_store::RunStore;
pub use sample::LoopError;

use crate::environment::{Environment, FieldMap};
use crate::llm::{BoxFuture, Embedder, Ledger, LlmClient};
use crate::prompts::Retrieval;

/// What happens to the curator's proposals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ApproveMode {
    /// Queue them and wait until they are decided before the next batch (the default).
    #[default]
    Wait,
    /// Apply everything at once (source `auto-policy`), for unattended runs.
    Auto,
    /// Queue them and go on without waiting.
    Queue,
    /// Trial each proposal on held-out samples and apply it only if accuracy drops by at most this
    /// many tenths of a point (`gate:0`, `gate:2.5`); one that fails waits for a person, its trial
    /// shown. Counters keep their own policy.
    Gate(u32),
}

impl std::fmt::Display for ApproveMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApproveMode::Wait => f.write_str("wait"),
            ApproveMode::Auto => f.write_str("auto"),
            ApproveMode::Queue => f.write_str("queue"),
            ApproveMode::Gate(tenths) => write!(f, "gate:{}", f64::from(*tenths) / 10.0),
        }
    }
}

impl std::str::FromStr for ApproveMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "wait" => Ok(ApproveMode::Wait),
            "auto" => Ok(ApproveMode::Auto),
            "queue" => Ok(ApproveMode::Queue),
            _ => match s.strip_prefix("gate:").map(|d| d.trim().parse::<f64>()) {
                Some(Ok(points)) if (0.0..=100.0).contains(&points) => {
                    Ok(ApproveMode::Gate((points * 10.0).round() as u32))
                }
                Some(_) => Err(format!(
                    "'{s}': a gate is gate:POINTS, the accuracy drop (0 to 100) a proposal may cause and still be applied"
                )),
                None => Err(format!(
                    "unknown approve mode '{s}' (use wait, auto, queue or gate:POINTS)"
                )),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    #[default]
    Offline,
    Online,
}

/// Field names for datasets of other shapes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fields {
    pub question: Option<String>,
    pub context: Option<String>,
    pub answer: Option<String>,
}

impl Fields {
    pub fn map(&self) -> FieldMap {
        FieldMap {
            question: self.question.clone(),
            context: self.context.clone(),
            answer: self.answer.clone(),
        }
    }
}

/// Everything a run needs to start or resume; stored with the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub playbook: String,
    pub kind: RunKind,
    /// Training data (offline) or the stream of samples (online; `-` is standard input).
    pub dataset: PathBuf,
    pub val: Option<PathBuf>,
    pub test: Option<PathBuf>,
    /// Scores the answers; stored as its spec (`numeric`, `regex:PATTERN`, `cmd:COMMAND`, …).
    pub env: Environment,
    pub epochs: u32,
    /// Samples per batch (offline) or window (online).
    pub batch_size: usize,
    /// Samples in flight at once.
    pub concurrency: usize,
    pub approve: ApproveMode,
    /// Attempts per sample: while wrong, regenerate with the reflection (the paper uses up to 5).
    pub max_rounds: u32,
    /// Refinement rounds of each reflection.
    pub reflector_rounds: u32,
    /// Validate every this many batches (else at the end of each epoch).
    pub val_every: Option<u64>,
    pub seed: u64,
    pub skip_bad: bool,
    pub fields: Fields,
    /// Keep the ground truth from the Reflector: it sees only the environment's feedback.
    pub no_labels: bool,
    /// How the generator's playbook is chosen: `whole`, `topk:K` or `auto` (whole while it fits
    /// `prompt_budget`, else the most relevant bullets that fit).
    #[serde(default)]
    pub retrieval: Retrieval,
    /// Tokens of playbook the generator's (and curator's) prompt may carry.
    #[serde(default = "default_prompt_budget")]
    pub prompt_budget: u64,
    /// Similarity at or above which a proposed lesson is a duplicate of a bullet (default: 0.85
    /// for embeddings' cosine, 0.9 for word overlap, which cannot tell a paraphrase from a related rule).
    #[serde(default)]
    pub dedup_threshold: Option<f64>,
    /// When a proposal would take the playbook over its token budget, a bullet never cited by this
    /// many samples that were shown it (in this run) may be pruned.
    #[serde(default = "default_unused_after")]
    pub prune_unused_after: u64,
    /// A lesson for a section the playbook lacks goes to `OTHERS` (else the new section is its own
    /// op, for a person to decide).
    #[serde(default)]
    pub unknown_sections_to_others: bool,
    /// The training file holds recorded agent runs ([`crate::environment::traces`]): the loop
    /// reflects on each instead of answering it (`ace learn`).
    #[serde(default)]
    pub traces: bool,
    /// The reflector's helpful/harmful tags wait in the queue instead of being applied by policy
    /// (learn runs over agents' traces, unless the playbook lets agents change counters).
    #[serde(default)]
    pub tags_to_queue: bool,
    /// Samples each proposal is tried on under `--approve gate:…`.
    #[serde(default = "default_gate_samples")]
    pub gate_samples: usize,
    /// The run's cost limit in US dollars, as started (a resume may raise it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost: Option<f64>,
    /// How often to look for decisions while waiting (ms).
    pub poll_ms: u64,
}

/// Tokens of playbook a prompt carries by default: about 1,500 bullets of the published playbooks'
/// size, well inside the context of today's models; larger playbooks are retrieved from.
pub const DEFAULT_PROMPT_BUDGET: u64 = 60_000;

fn default_prompt_budget() -> u64 {
    DEFAULT_PROMPT_BUDGET
}

/// Samples a proposal is tried on under `--approve gate:…`, by default.
pub const DEFAULT_GATE_SAMPLES: usize = 20;

fn default_gate_samples() -> usize {
    DEFAULT_GATE_SAMPLES
}

/// Samples shown a bullet without it being cited, by default, before it counts as unused.
pub const DEFAULT_UNUSED_AFTER: u64 = 50;

fn default_unused_after() -> u64 {
    DEFAULT_UNUSED_AFTER
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            playbook: "default".into(),
            kind: RunKind::Offline,
            dataset: PathBuf::new(),
            val: None,
            test: None,
            env: Environment::Exact,
            epochs: 1,
            batch_size: 1,
            concurrency: 4,
            approve: ApproveMode::Wait,
            max_rounds: 3,
            reflector_rounds: 1,
            val_every: None,
            seed: 42,
            skip_bad: false,
            fields: Fields::default(),
            no_labels: false,
            retrieval: Retrieval::Auto,
            prompt_budget: DEFAULT_PROMPT_BUDGET,
            dedup_threshold: None,
            prune_unused_after: DEFAULT_UNUSED_AFTER,
            unknown_sections_to_others: false,
            traces: false,
            tags_to_queue: false,
            max_cost: None,
            gate_samples: DEFAULT_GATE_SAMPLES,
            poll_ms: 200,
        }
    }
}

impl RunConfig {
    /// What the Reflector was given, said plainly in the run record.
    pub fn feedback_mode(&self) -> FeedbackMode {
        if self.traces {
            FeedbackMode::AgentOutcomes
        } else if self.no_labels {
            FeedbackMode::ExecutionFeedbackOnly
        } else {
            FeedbackMode::GroundTruth
        }
    }
}

/// The models of the three roles, and the ledger their calls are counted in (and their retries
/// announced on).
#[derive(Clone)]
pub struct Models {
    pub generator: Arc<dyn LlmClient>,
    pub reflector: Arc<dyn LlmClient>,
    pub curator: Arc<dyn LlmClient>,
    /// Embeddings for judging near duplicates; without, word overlap judges them.
    pub embedder: Option<Arc<dyn Embedder>>,
    pub ledger: Ledger,
}

impl Models {
    /// One model for all three roles, counted in `ledger`, no embeddings.
    pub fn one(client: Arc<dyn LlmClient>, ledger: Ledger) -> Models {
        Models {
            generator: client.clone(),
            reflector: client.clone(),
            curator: client,
            embedder: None,
            ledger,
        }
    }

    pub fn with_embedder(mut self, embedder: Option<Arc<dyn Embedder>>) -> Models {
        self.embedder = embedder;
        self
    }
}

/// The models a run uses: ready, or built when the run starts (resolving the configuration may
/// probe a server, which must not hold up whoever starts the run).
pub enum GetModels {
    Ready(Models),
    Build(BoxFuture<'static, anyhow::Result<Models>>),
}

impl GetModels {
    async fn get(self) -> anyhow::Result<Models> {
        match self {
            GetModels::Ready(models) => Ok(models),
            GetModels::Build(future) => future.await,
        }
    }
}

impl From<Models> for GetModels {
    fn from(models: Models) -> Self {
        GetModels::Ready(models)
    }
}

/// Commands a person (or a script) sends to a running loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Pause,
    Resume,
    /// Process one sample, then pause.
    Step,
    /// Finish the current batch, then pause.
    RunToBatchEnd,
    /// Finish the current epoch, then pause.
    RunToEpochEnd,
    Cancel,
    /// Look at the queue now: a batch the run may be waiting on was just decided (in this
    /// process). Without it the loop still notices within `poll_ms`; this only saves the wait.
    Wake,
}

/// What the loop reports, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run could not start (unreadable data, no models, claimed by another process); nothing
    /// else follows.
    NotStarted {
        error: String,
    },
    Started {
        run: String,
        playbook: String,
        kind: RunKind,
        feedback_mode: FeedbackMode,
        train: usize,
        val: usize,
        test: usize,
        resumed: bool,
    },
    SampleStarted {
        key: String,
        question: String,
    },
    Generated {
        key: String,
        answer: String,
        cited: Vec<String>,
    },
    /// One attempt's verdict: round 1 is the sample's first answer (what accuracy counts); later
    /// rounds are regenerations after a reflection.
    Evaluated {
        key: String,
        round: u32,
        correct: bool,
        feedback: String,
    },
    Reflected {
        key: String,
        key_insight: String,
        rounds: u32,
    },
    /// TAG counters applied by policy.
    TagsApplied {
        revision: i64,
        ops: usize,
    },
    /// Curator ops queued (pending batch id), and ops dropped as duplicates or invalid.
    Proposed {
        pending: Option<i64>,
        ops: usize,
        dropped: usize,
    },
    Applied {
        pending: i64,
        revision: Option<i64>,
    },
    WaitingForApproval {
        pending: i64,
    },
    Paused,
    Resumed,
    BatchFinished {
        epoch: u32,
        step: u64,
        done: usize,
        total: usize,
        correct_so_far: u64,
        seen_so_far: u64,
    },
    EpochFinished {
        epoch: u32,
        split: Split,
        correct: u64,
        total: u64,
    },
    Validated {
        step: u64,
        correct: u64,
        total: u64,
        best: bool,
    },
    Warning {
        message: String,
    },
    /// Something a person should know once about how the run works (e.g. how duplicates are
    /// judged).
    Notice {
        message: String,
    },
    Failed {
        error: String,
    },
    Finished {
        run: String,
        status: RunStatus,
    },
}

/// The three role clients from the model configuration (docs/CONFIGURATION.md), sharing one ledger.
pub async fn models_from_config(ledger: &Ledger) -> anyhow::Result<Models> {
    use crate::llm::{OpenAiClient, OpenAiEmbedder, Role};
    let cfg = crate::config::load(&crate::config::process_env)?;
    let endpoints = crate::config::resolve(&cfg).await?;
    let client = |role: Role| -> anyhow::Result<Arc<dyn LlmClient>> {
        Ok(Arc::new(OpenAiClient::new(
            endpoints[&role].clone(),
            ledger.clone(),
            cfg.prices.clone(),
        )?))
    };
    Ok(Models {
        generator: client(Role::Generator)?,
        reflector: client(Role::Reflector)?,
        curator: client(Role::Curator)?,
        embedder: match &cfg.embedding {
            Some(endpoint) => Some(Arc::new(OpenAiEmbedder::new(endpoint.clone())?)),
            None => None,
        },
        ledger: ledger.clone(),
    })
}
