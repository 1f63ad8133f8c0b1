//! `ace train`: the adaptation loop, headless, with a progress bar.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::adaptation::{self, ApproveMode, Event, Fields, RunConfig, RunKind, RunStatus};
use crate::llm::Ledger;
use crate::store::Store;

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Playbook to train (created with the paper's default sections if missing)
    #[arg(long, required_unless_present = "resume")]
    pub playbook: Option<String>,
    /// Training data (JSONL); with --online, the stream of samples (`-` for standard input)
    #[arg(long, required_unless_present = "resume")]
    pub dataset: Option<PathBuf>,
    #[arg(long)]
    pub val: Option<PathBuf>,
    #[arg(long)]
    pub test: Option<PathBuf>,
    /// exact | numeric | contains | regex:PATTERN | json | cmd:COMMAND
    #[arg(long, default_value = "exact")]
    pub env: crate::environment::Environment,
    #[arg(long, default_value_t = 1)]
    pub epochs: u32,
    /// Samples per batch (1 reproduces the paper)
    #[arg(long, default_value_t = 1)]
    pub batch_size: usize,
    /// Samples in flight at once
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// wait: pause on each batch until its deltas are decided; auto: apply all; queue: queue and go
    /// on; gate:POINTS: trial each proposal on held-out samples, apply it if accuracy drops by at
    /// most POINTS, else wait for a person
    #[arg(long, default_value = "wait")]
    pub approve: ApproveMode,
    /// Attempts per sample while wrong (the paper uses up to 5)
    #[arg(long, default_value_t = 3)]
    pub max_rounds: u32,
    /// Refinement rounds of each reflection
    #[arg(long, default_value_t = 1)]
    pub reflector_rounds: u32,
    /// Validate every K batches (default: at the end of each epoch)
    #[arg(long, value_name = "K")]
    pub val_every: Option<u64>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Skip (and count) bad dataset lines instead of failing
    #[arg(long)]
    pub skip_bad: bool,
    #[arg(long)]
    pub question_field: Option<String>,
    #[arg(long)]
    pub context_field: Option<String>,
    #[arg(long)]
    pub answer_field: Option<String>,
    /// The Reflector sees only the environment's feedback, never the ground truth
    #[arg(long)]
    pub no_labels: bool,
    /// Online adaptation: windows of --window samples, answered then learned from, in order
    #[arg(long)]
    pub online: bool,
    #[arg(long, default_value_t = 1)]
    pub window: usize,
    /// Set the playbook's token budget (kept with the playbook; the curator sees it, auto-approval
    /// never exceeds it)
    #[arg(long, value_name = "TOKENS")]
    pub token_budget: Option<u64>,
    /// How the generator's playbook is chosen: whole, topk:K, or auto (whole while it fits
    /// --prompt-budget, else the most relevant bullets that fit)
    #[arg(long, default_value = "auto")]
    pub retrieval: crate::prompts::Retrieval,
    /// Tokens of playbook a generator or curator prompt may carry
    #[arg(long, value_name = "TOKENS", default_value_t = crate::adaptation::DEFAULT_PROMPT_BUDGET)]
    pub prompt_budget: u64,
    /// Similarity (0 to 1) at or above which a proposed lesson repeats a bullet and becomes a merge
    /// proposal [default: 0.85 with embeddings, 0.9 by word overlap]
    #[arg(long, value_name = "X")]
    pub dedup_threshold: Option<f64>,
    /// Over the token budget, a bullet never cited by this many samples shown it may be proposed
    /// for pruning
    #[arg(long, value_name = "N", default_value_t = crate::adaptation::DEFAULT_UNUSED_AFTER)]
    pub prune_unused_after: u64,
    /// Continue a run that stopped (killed, cancelled, failed) where it left off
    #[arg(long, value_name = "RUN")]
    pub resume: Option<String>,
    /// Put a lesson for a section the playbook lacks into OTHERS (default: propose the new section
    /// as its own op, for a person)
    #[arg(long)]
    pub unknown_sections_to_others: bool,
    /// Print the final summary as JSON (the progress stays on stderr)
    #[arg(long)]
    pub json: bool,
    /// Let a resumed run execute the `cmd:` environment stored with it (shown before it runs)
    #[arg(long)]
    pub allow_command: bool,
    /// Serve Prometheus metrics at this address while the run lasts (e.g. 127.0.0.1:9464; off by default)
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Stop cleanly before a model call would take the run's spend past this many US dollars
    /// (estimated from the prompt's tokens and the answer's limit; resumable with a larger one)
    #[arg(long, value_name = "USD")]
    pub max_cost: Option<f64>,
    /// The dataset is a trace file (set by `ace learn`)
    #[arg(skip)]
    pub traces: bool,
}

/// `ace learn`: the Reflector and Curator over recorded agent runs, no Generator.
#[derive(Debug, Args)]
pub struct LearnArgs {
    /// Playbook to learn into (created with the paper's default sections if missing)
    #[arg(long, required_unless_present = "resume")]
    pub playbook: Option<String>,
    /// Recorded agent runs, one JSON object a line: {"task", "answer", "feedback"?, "success"?,
    /// "ground_truth"?, "bullet_ids"?, "steps"?} or an OpenAI-style {"messages": [...], "outcome"?}
    /// (`-` for standard input)
    #[arg(long, value_name = "FILE.jsonl", required_unless_present = "resume")]
    pub traces: Option<PathBuf>,
    /// How a trace that carries a ground truth is scored (exact | numeric | contains | regex:PATTERN
    /// | json | cmd:COMMAND); others are judged by their own success and feedback
    #[arg(long, default_value = "exact")]
    pub env: crate::environment::Environment,
    /// Traces per curator batch
    #[arg(long, default_value_t = 1)]
    pub batch_size: usize,
    /// Traces reflected on at once
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// wait: pause on each batch until its deltas are decided; auto: apply all; queue: queue and go on
    #[arg(long, default_value = "wait")]
    pub approve: ApproveMode,
    /// Refinement rounds of each reflection
    #[arg(long, default_value_t = 1)]
    pub reflector_rounds: u32,
    /// Skip (and count) bad trace lines instead of failing
    #[arg(long)]
    pub skip_bad: bool,
    /// The Reflector sees only the feedback, never a trace's ground truth
    #[arg(long)]
    pub no_labels: bool,
    #[arg(long, value_name = "TOKENS")]
    pub token_budget: Option<u64>,
    #[arg(long, value_name = "X")]
    pub dedup_threshold: Option<f64>,
    /// Continue a learn run that stopped where it left off
    #[arg(long, value_name = "RUN")]
    pub resume: Option<String>,
    #[arg(long)]
    pub unknown_sections_to_others: bool,
    /// Print the final summary as JSON (the progress stays on stderr)
    #[arg(long)]
    pub json: bool,
    /// Let a resumed run execute the `cmd:` environment stored with it
    #[arg(long)]
    pub allow_command: bool,
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Stop cleanly before a model call would take the spend past this many US dollars
    #[arg(long, value_name = "USD")]
    pub max_cost: Option<f64>,
}

impl From<LearnArgs> for TrainArgs {
    fn from(a: LearnArgs) -> Self {
        TrainArgs {
            playbook: a.playbook,
            dataset: a.traces,
            val: None,
            test: None,
            env: a.env,
            epochs: 1,
            batch_size: a.batch_size,
            concurrency: a.concurrency,
            approve: a.approve,
            max_rounds: 1,
            reflector_rounds: a.reflector_rounds,
            val_every: None,
            seed: 42,
            skip_bad: a.skip_bad,
            question_field: None,
            context_field: None,
            answer_field: None,
            no_labels: a.no_labels,
            online: false,
            window: 1,
            token_budget: a.token_budget,
            retrieval: crate::prompts::Retrieval::default(),
            prompt_budget: crate::adaptation::DEFAULT_PROMPT_BUDGET,
            dedup_threshold: a.dedup_threshold,
            prune_unused_after: crate::adaptation::DEFAULT_UNUSED_AFTER,
            resume: a.resume,
            unknown_sections_to_others: a.unknown_sections_to_others,
            json: a.json,
            allow_command: a.allow_command,
            metrics_addr: a.metrics_addr,
            max_cost: a.max_cost,
            traces: true,
        }
    }
}

impl TrainArgs {
    fn config(&self) -> RunConfig {
        RunConfig {
            playbook: self.playbook.clone().unwrap_or_default(),
            kind: if self.online {
                RunKind::Online
            } else {
                RunKind::Offline
            },
            // stored absolute, so a resume works from any directory
            dataset: self.dataset.as_deref().map(absolute).unwrap_or_default(),
            val: self.val.as_deref().map(absolute),
            test: self.test.as_deref().map(absolute),
            env: self.env.clone(),
            epochs: self.epochs,
            batch_size: if self.online {
                self.window
            } else {
                self.batch_size
            },
            concurrency: self.concurrency,
            approve: self.approve,
            max_rounds: self.max_rounds,
            reflector_rounds: self.reflector_rounds,
            val_every: self.val_every,
            seed: self.seed,
            skip_bad: self.skip_bad,
            fields: Fields {
                question: self.question_field.clone(),
                context: self.context_field.clone(),
                answer: self.answer_field.clone(),
            },
            no_labels: self.no_labels,
            retrieval: self.retrieval,
            prompt_budget: self.prompt_budget,
            dedup_threshold: self.dedup_threshold,
            prune_unused_after: self.prune_unused_after,
            unknown_sections_to_others: self.unknown_sections_to_others,
            traces: self.traces,
            tags_to_queue: false,
            max_cost: self.max_cost,
            gate_samples: crate::adaptation::DEFAULT_GATE_SAMPLES,
            poll_ms: 200,
        }
    }
}

/// `path` made absolute against the current directory (`-`, standard input, stays as it is).
fn absolute(path: &Path) -> PathBuf {
    if path.as_os_str() == "-" {
        return path.to_path_buf();
    }
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn say(bar: &ProgressBar, line: String) {
    // model text in a log line is shown, never acted on by the terminal
    let line = crate::text::visible(&line).into_owned();
    if bar.is_hidden() {
        eprintln!("{line}")
    } else {
        bar.println(line)
    }
}

pub fn run(db: &Path, args: TrainArgs, out: &mut impl std::io::Write) -> Result<()> {
    let mut store = Store::open(db)?;
    if let Some(id) = &args.resume {
        let run = store.run(id)?;
        if run.status == RunStatus::Finished {
            bail!("run {id} has already finished; nothing to resume");
        }
        // a resumed run keeps the settings it was started with: a different one is not silently ignored
        for (flag, given) in [
            ("--playbook", args.playbook.is_some()),
            ("--dataset", args.dataset.is_some()),
            ("--val", args.val.is_some()),
            ("--test", args.test.is_some()),
        ] {
            if given {
                bail!(
                    "--resume continues run {id} with the settings it was started with; {flag} cannot change them (start a new run instead)"
                );
            }
        }
        // whoever can write a shared database could plant a command: show it, run it only if asked
        if let crate::environment::Environment::Command { command, .. } = &run.config.env
            && !args.allow_command
        {
            bail!(
                "run {id} checks answers by running this command on this machine:\n    {}\nresume with --allow-command to run it",
                crate::text::visible(command)
            );
        }
    }
    if let (Some(budget), Some(name)) = (args.token_budget, &args.playbook) {
        if store.resolve_playbook(Some(name)).is_err() {
            store.create_playbook(name, crate::playbook::DEFAULT_SECTIONS)?;
        }
        store.set_token_budget(name, Some(budget))?;
    }
    let ledger = Ledger::default();
    // a cost limit: the one given, else the one the resumed run was started with; a resumed run's
    // earlier calls count against it
    let stored = match &args.resume {
        Some(id) => Some((store.run(id)?.config.max_cost, store.run_summary(id)?)),
        None => None,
    };
    if let Some(max) = args.max_cost.or(stored.as_ref().and_then(|(m, _)| *m)) {
        if !(max.is_finite() && max >= 0.0) {
            bail!("--max-cost must be a number of US dollars, 0 or more");
        }
        let carried: f64 = stored
            .as_ref()
            .map_or(0.0, |(_, s)| s.roles.values().map(|r| r.cost_usd).sum());
        ledger.set_budget(max, carried);
        eprintln!("note: cost limit ${max:.4}; ${carried:.4} spent so far");
    }
    let store = crate::shared::shared(store);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        if let Some(addr) = args.metrics_addr {
            if !addr.ip().is_loopback() {
                eprintln!("note: serving metrics on {addr}, which is not a loopback address");
            }
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .with_http_listener(addr)
                .install()
                .with_context(|| format!("cannot serve metrics on {addr}"))?;
        }
        let models = adaptation::models_from_config(&ledger).await?;
        let mut handle = adaptation::start(store.clone(), models, args.config(), args.resume.clone());
        let bar = ProgressBar::new(0);
        bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()));
        let cancel = handle.cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        });
        let (mut epochs, mut run_id) = (args.epochs.max(1) as u64, String::new());
        // One stream per run: progress, decisions, warnings and retried model calls, in order.
        while let Some(event) = handle.events.recv().await {
            let total = ledger.total();
            let cost = format!("{} tok, ${:.4}", total.prompt_tokens + total.completion_tokens, total.cost_usd);
            match event {
                Event::Started { run, train, resumed, feedback_mode, .. } => {
                    if args.online {
                        epochs = 1;
                    }
                    bar.set_length(train as u64 * epochs);
                    run_id = run.clone();
                    let what = if args.traces { "traces" } else { "training samples" };
                    say(&bar, format!("{} {run}: {train} {what}, feedback: {feedback_mode}", if resumed { "resuming" } else { "started" }));
                }
                // each training sample moves the bar (its batch's end then sets it exactly)
                Event::Evaluated { key, round: 1, .. }
                    if (key.starts_with("train/") || key.starts_with("online/"))
                        && bar.position() < bar.length().unwrap_or(u64::MAX) =>
                {
                    bar.inc(1);
                }
                Event::BatchFinished { epoch, done, correct_so_far, seen_so_far, .. } => {
                    bar.set_position((u64::from(epoch) - 1) * bar.length().unwrap_or(0) / epochs + done as u64);
                    bar.set_message(format!("epoch {epoch} · accuracy {correct_so_far}/{seen_so_far} · {cost}"));
                }
                Event::WaitingForApproval { pending } => say(
                    &bar,
                    format!("waiting for decisions on proposal #{pending}: `ace queue show {pending}`, then `ace queue approve {pending}` or `ace queue reject {pending}` (or use the workbench)"),
                ),
                Event::Applied { pending, revision } => say(&bar, match revision {
                    Some(r) => format!("queued batch {pending} applied as revision {r}"),
                    None => format!("queued batch {pending} closed with nothing approved"),
                }),
                Event::EpochFinished { epoch, split, correct, total } => {
                    say(&bar, format!("epoch {epoch} {split} accuracy: {correct}/{total} ({:.1}%)", 100.0 * correct as f64 / total.max(1) as f64))
                }
                Event::Validated { step, correct, total, best } => say(
                    &bar,
                    format!("validation after batch {step}: {correct}/{total}{}", if best { " (best so far)" } else { "" }),
                ),
                Event::Warning { message } => say(&bar, format!("warning: {message}")),
                Event::Notice { message } => say(&bar, format!("note: {message}")),
                Event::Failed { error } | Event::NotStarted { error } => say(&bar, format!("failed: {error}")),
                Event::Finished { status, .. } => {
                    bar.finish_and_clear();
                    say(&bar, format!("{run_id} {status}"));
                }
                _ => {}
            }
        }
        let result = handle.task.await.context("the run task panicked")?;
        anyhow::Ok((result, run_id))
    });
    let (result, run_id) = result?;
    let store = store.lock().unwrap_or_else(|e| e.into_inner());
    if !run_id.is_empty() {
        let summary = store.run_summary(&run_id)?;
        if args.json {
            super::print::json(out, &summary)?;
        } else {
            super::print::run_summary(out, &summary)?;
        }
    }
    match result {
        Ok(_) => Ok(()),
        Err(e) => {
            if !run_id.is_empty() {
                writeln!(out, "resume with: ace train --resume {run_id}")?;
            }
            Err(anyhow::anyhow!("{e}"))
        }
    }
}
