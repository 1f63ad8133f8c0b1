//! The command line as clap sees it: every command, subcommand and argument, each with its help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use super::train;
use crate::playbook::format::Format;

#[derive(Debug, Parser)]
#[command(
    name = "ace",
    version,
    about = "A workbench for ACE (Agentic Context Engineering) playbooks"
)]
pub struct Cli {
    /// Database file [default: the platform data dir, e.g. ~/.local/share/ace/ace.db]
    #[arg(long, global = true, env = "ACE_DB")]
    pub db: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
// Parsed once per process; boxing the big variant buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Create, list, show, import and export playbooks
    #[command(subcommand)]
    Playbook(PlaybookCmd),
    /// Apply a delta batch (JSON) to a playbook
    #[command(subcommand)]
    Delta(DeltaCmd),
    /// Browse and revert the history of changes
    #[command(subcommand)]
    Revisions(RevisionsCmd),
    /// Schema migrations
    #[command(subcommand)]
    Db(DbCmd),
    /// Measure store speed and memory on a scratch database (see docs/BENCHMARKS.md)
    Bench(BenchArgs),
    /// Show the model configuration (keys masked) and reach each role's endpoint
    Doctor {
        /// Print the settings and checks as JSON
        #[arg(long)]
        json: bool,
    },
    /// Run the ACE loop over a dataset (offline epochs or online windows)
    Train(train::TrainArgs),
    /// Learn from recorded agent runs (traces): Reflector and Curator, no Generator
    Learn(train::LearnArgs),
    /// Review curator proposals waiting for a decision
    #[command(subcommand)]
    Queue(QueueCmd),
    /// Adaptation runs and their results
    #[command(subcommand)]
    Runs(RunsCmd),
    /// A bullet's story: origin, counters over time, runs that cited it
    #[command(subcommand)]
    Bullet(BulletCmd),
    /// Serve a scripted OpenAI-compatible model on loopback (tests, demos; see docs/MOCK_MODEL.md)
    MockModel(MockModelArgs),
    /// Serve the playbooks to agents over HTTP (token-guarded; what agents send only queues;
    /// see docs/AGENTS.md)
    Serve(super::serve::ServeArgs),
    /// Serve the playbooks as MCP tools over stdio, for agent hosts (see docs/AGENTS.md)
    Mcp(super::serve::McpArgs),
    /// Print shell completions (e.g. `ace completions bash > ~/.local/share/bash-completion/completions/ace`)
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
    /// Open the workbench (what `ace` with no arguments does on a terminal)
    Workbench {
        /// The playbook to show first (else the first by name; `P` switches in the workbench)
        #[arg(long)]
        playbook: Option<String>,
    },
    /// Open the workbench against a bundled scripted demo model on loopback
    Demo,
}

#[derive(Debug, Args)]
pub struct MockModelArgs {
    /// Script file (JSON): model name and reply rules
    #[arg(long)]
    pub script: PathBuf,
    /// Extra latency added to every response
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    #[arg(long, default_value_t = 8089)]
    pub port: u16,
    /// Address to listen on (loopback by default)
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
}

#[derive(Debug, Subcommand)]
pub enum PlaybookCmd {
    /// List playbooks
    List {
        #[arg(long)]
        json: bool,
        /// List the deleted playbooks instead (`ace playbook restore NAME` brings one back)
        #[arg(long)]
        deleted: bool,
    },
    /// Rename a playbook (its history, runs and queue follow)
    Rename { name: String, new_name: String },
    /// Copy a playbook under a new name (bullets with their ids, counters, metadata and removed
    /// bullets; the copy's history starts at the copy), e.g. to try a run on the copy
    Copy { name: String, new_name: String },
    /// Delete a playbook: hidden with its history, runs and queue, and its name freed; `ace
    /// playbook restore NAME` brings it back
    Delete {
        name: String,
        /// Do not ask for confirmation (needed when not on a terminal)
        #[arg(long)]
        yes: bool,
    },
    /// Bring back a deleted playbook
    Restore { name: String },
    /// Create an empty playbook (with the paper's default sections unless --empty)
    Create {
        /// Name of the new playbook
        name: String,
        /// Create it without sections
        #[arg(long)]
        empty: bool,
        /// Its token budget (see `ace playbook budget`)
        #[arg(long, value_name = "TOKENS")]
        budget: Option<u64>,
    },
    /// Set or clear a playbook's token budget: its size (in cl100k tokens, as the generator sees it)
    /// that auto-approval never exceeds and proposals are measured against
    Budget {
        /// The playbook
        name: String,
        /// Tokens, or `none` to clear it
        tokens: String,
    },
    /// Show or set what agents (ace serve, ace mcp) may change without a person: `queue` (nothing,
    /// the default) or `counters` (their helpful/harmful judgements update counters at once)
    Agents {
        /// The playbook
        name: String,
        /// queue | counters
        #[arg(long)]
        policy: Option<crate::store::AgentPolicy>,
    },
    /// Every bullet's leave-one-out impact on K samples, ranked (says the calls and an estimated
    /// cost first, and asks)
    Impact {
        name: String,
        /// Start without asking
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        trial: super::trial::TrialArgs,
    },
    /// Scan a playbook for near duplicates and queue them as MERGE proposals (nothing changes
    /// until they are approved, in the workbench or with `ace queue approve`)
    Dedup {
        /// The playbook
        name: String,
        /// Similarity (0 to 1] at or above which two bullets are duplicates [default: 0.85 by
        /// embeddings, 0.9 by word overlap]
        #[arg(long)]
        threshold: Option<f64>,
        /// Judge by word overlap even when an embedding model is configured
        #[arg(long)]
        lexical: bool,
        /// List the pairs only; queue nothing
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Show a playbook, now or as it stood after revision N
    Show {
        name: Option<String>,
        /// Show the playbook as it stood right after this revision
        #[arg(long, value_name = "N")]
        at: Option<i64>,
        /// Include removed bullets
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Import a playbook file (ACE text, skillbook JSON or ace JSON; detected from content)
    Import {
        /// The file to read
        file: PathBuf,
        /// Name of the new playbook [default: the file name without extension]
        #[arg(long)]
        name: Option<String>,
        /// Force a format: ace, json or skillbook (any ace-framework version, v2 included)
        #[arg(long)]
        format: Option<Format>,
        /// The new playbook's token budget
        #[arg(long, value_name = "TOKENS")]
        budget: Option<u64>,
    },
    /// Export a playbook: ace, json, skillbook or markdown
    Export {
        /// The playbook to export
        name: String,
        /// ace (official text), json (lossless), skillbook (ace-framework, older releases), skillbook-v2 (ace-framework schema 2) or markdown
        #[arg(long, default_value = "ace")]
        format: Format,
        /// Write to this file instead of standard output
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// The playbook as text for an agent's prompt (no ids or counters, no harmful-dominated
    /// bullets unless asked), printed or written into an instruction file (AGENTS.md, CLAUDE.md,
    /// .cursorrules) as a managed block between markers; the token count is said on stderr
    Prompt {
        name: String,
        /// Show bullet ids (for agents asked to cite them)
        #[arg(long)]
        ids: bool,
        /// Show helpful/harmful counts
        #[arg(long)]
        counters: bool,
        /// Keep bullets that were more harmful than helpful
        #[arg(long)]
        include_harmful: bool,
        /// Write (or replace) the playbook's block in this file, leaving the rest of it as it is
        #[arg(long, value_name = "FILE")]
        into: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeltaCmd {
    /// Apply a batch file: {"id", "source", "reason", "operations": [...]} (see docs/STORE.md)
    Apply {
        /// The batch file (JSON)
        file: PathBuf,
        /// The playbook to change
        #[arg(long)]
        playbook: String,
        /// What to do when an op names a section the playbook lacks
        #[arg(long, value_enum, default_value = "reject")]
        new_sections: NewSections,
        /// Print the outcome as JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum NewSections {
    Create,
    Reject,
}

#[derive(Debug, Subcommand)]
pub enum RevisionsCmd {
    /// List revisions, newest first
    List {
        #[arg(long)]
        playbook: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Show one revision as a diff
    Show {
        /// The revision (`ace revisions list`)
        id: i64,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Compare a playbook as it stood after revision A with B (default: the playbook now)
    Diff {
        /// The earlier revision
        a: i64,
        /// The later revision [default: the playbook now]
        b: Option<i64>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Revert a revision with a new revision that applies its exact inverse
    Revert {
        /// The revision to undo
        id: i64,
        /// Revert even if later revisions changed the same bullets
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum QueueCmd {
    /// Queued batches waiting for decisions (oldest first)
    List {
        /// Only this playbook's batches
        #[arg(long)]
        playbook: Option<String>,
        /// Include decided batches
        #[arg(long)]
        all: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// One queued batch: its ops as a diff, and the samples and reflections behind them
    Show {
        /// The queued batch (`ace queue list`)
        id: i64,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Approve a whole batch, or some ops of it (--op N, repeatable)
    Approve {
        /// The queued batch (`ace queue list`)
        id: i64,
        /// Only this op, by its number in `ace queue show` (from 1); repeatable
        #[arg(long = "op")]
        ops: Vec<usize>,
        /// Who decides (recorded on the revision)
        #[arg(long, env = "USER", default_value = "human")]
        author: String,
    },
    /// Reject a whole batch, or some ops of it
    Reject {
        /// The queued batch (`ace queue list`)
        id: i64,
        /// Only this op, by its number in `ace queue show` (from 1); repeatable
        #[arg(long = "op")]
        ops: Vec<usize>,
        /// Why (kept with the decision)
        #[arg(long)]
        reason: Option<String>,
        /// Who decides (recorded on the revision)
        #[arg(long, env = "USER", default_value = "human")]
        author: String,
    },
    /// Try a proposal before deciding: the Generator answers K samples with the playbook as it is
    /// and with the proposal applied in memory; accuracy before → after, the samples that flipped,
    /// the change in prompt tokens and the trial's cost (kept with the proposal)
    Trial {
        /// The queued batch (`ace queue list`)
        id: i64,
        /// Try only this op (its number in `ace queue show`, from 1)
        #[arg(long = "op")]
        op: Option<usize>,
        #[command(flatten)]
        trial: super::trial::TrialArgs,
    },
    /// Approve an edited version of one op (a JSON op from a file, e.g. {"type": "ADD", ...})
    Edit {
        /// The queued batch (`ace queue list`)
        id: i64,
        /// The op to replace, by its number in `ace queue show` (from 1)
        #[arg(long = "op")]
        op: usize,
        /// JSON file with the replacement op
        #[arg(long)]
        file: PathBuf,
        /// Who decides (recorded on the revision)
        #[arg(long, env = "USER", default_value = "human")]
        author: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RunsCmd {
    List {
        #[arg(long)]
        json: bool,
    },
    /// Accuracy per epoch and split, deltas proposed / approved / rejected, tags, tokens and cost per role
    Show {
        /// The run (`ace runs list`)
        run: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// The model calls of a run as they were sent and answered, rebuilt from what is stored
    Calls {
        /// The run (`ace runs list`)
        run: String,
        /// Only this sample's calls (its key, e.g. `train/1/3/0`, or `curator/1/3`)
        #[arg(long)]
        sample: Option<String>,
        /// Print the playbook text of each prompt too (else one line says what it held)
        #[arg(long)]
        full: bool,
        /// Print JSON (the playbook text included)
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum BulletCmd {
    /// Where a bullet came from, its counters over time and the runs that cited it
    Story {
        /// The bullet id, e.g. calc-00012
        id: String,
        #[arg(long)]
        playbook: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Leave-one-out: accuracy on K samples with and without the bullet (in memory, nothing
    /// written); the samples come from the run that last cited it, or --dataset
    Impact {
        /// The bullet id, e.g. calc-00012
        id: String,
        #[arg(long)]
        playbook: Option<String>,
        #[command(flatten)]
        trial: super::trial::TrialArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum DbCmd {
    /// Migrate the schema to the latest version
    Migrate,
    /// Roll the schema back to version N (drops what later versions added; a copy of the database
    /// is written first)
    Rollback {
        #[arg(long)]
        to: u32,
        /// Do not ask for confirmation (needed when not on a terminal)
        #[arg(long)]
        yes: bool,
    },
    /// Show the schema version
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Delete the model-call records (prompts and answers) of runs that ended more than N days
    /// ago, or of one run; samples, accuracy and the playbook's history stay
    Prune {
        /// Runs that ended more than this many days ago
        #[arg(long, default_value_t = 30)]
        older_than: u32,
        /// One run instead (ended or not driven by any process)
        #[arg(long)]
        run: Option<String>,
        /// Say what would be freed; delete nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Give the space freed by deletions back to the file system (rewrites the file)
    Vacuum,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Bullets to add (in batches of 100)
    #[arg(long, default_value_t = 100_000)]
    pub bullets: usize,
    /// TAG ops to apply for the throughput figure (in batches of 100)
    #[arg(long, default_value_t = 20_000)]
    pub tags: usize,
    /// Measure the adaptation loop instead (against an in-process scripted model on loopback)
    #[arg(long = "loop")]
    pub run_loop: bool,
    /// Measure grow and refine at scale instead: retrieval, dedup scans and a run on a synthetic
    /// playbook of --bullets bullets (use with --samples, --batch-size, --concurrency)
    #[arg(long, conflicts_with = "run_loop")]
    pub refine: bool,
    /// Measure the HTTP API instead: GETs of the rendered playbook (--bullets) from --concurrency
    /// clients, --samples requests in all, then a burst of --traces trace POSTs
    #[arg(long, conflicts_with_all = ["run_loop", "refine"])]
    pub serve: bool,
    /// Measure a trial instead: --samples samples (use 50), --latency-ms per call, --concurrency at once,
    /// then a second trial whose baseline is cached
    #[arg(long, conflicts_with_all = ["run_loop", "refine", "serve"])]
    pub trial: bool,
    /// Serve: trace POSTs in the burst
    #[arg(long, default_value_t = 1000)]
    pub traces: usize,
    /// Refine: the part of the benchmark that runs in its own process (its memory measured alone):
    /// the scratch directory and the scripted model's URL
    #[arg(long, num_args = 2, value_names = ["DIR", "URL"], hide = true)]
    pub refine_run: Option<Vec<String>>,
    /// Refine: tokens of playbook a generator or curator prompt may carry
    #[arg(long, default_value_t = crate::adaptation::DEFAULT_PROMPT_BUDGET)]
    pub prompt_budget: u64,
    /// Loop: samples in the epoch
    #[arg(long, default_value_t = 2000)]
    pub samples: usize,
    /// Loop: latency the scripted model adds to every response
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Loop: samples in flight at once
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Loop: samples per batch
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
}
