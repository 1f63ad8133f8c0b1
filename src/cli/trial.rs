//! `ace queue trial` and `ace bullet impact`: a proposal (or a bullet's removal) tried on K samples
//! before anyone decides, through `adaptation::trial`. Nothing is written to the playbook.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Result, bail};
use clap::Args;

use crate::adaptation::trial::{SampleSpec, TrialReport, TrialSetup, prepare, trial};
use crate::environment::{Environment, Sample};
use crate::llm::Ledger;
use crate::playbook::Playbook;
use crate::store::Store;

/// Where a trial's samples come from and how it runs.
#[derive(Debug, Args)]
pub struct TrialArgs {
    /// Samples to try on
    #[arg(long, default_value_t = 20)]
    pub samples: usize,
    /// val: the run's validation set; train: its training set, leaving out the proposal's own
    /// samples [default: val when the run has one, else train]
    #[arg(long)]
    pub split: Option<String>,
    /// Samples from this file instead of the run's (needed for proposals no run made)
    #[arg(long, value_name = "FILE.jsonl")]
    pub dataset: Option<PathBuf>,
    /// How answers are scored [default: the run's environment, else exact]
    #[arg(long)]
    pub env: Option<Environment>,
    /// Which samples are chosen (the same seed gives the same samples)
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Model calls at once
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Stop before the trial's calls would cost more than this many US dollars
    #[arg(long, value_name = "USD")]
    pub max_cost: Option<f64>,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

impl TrialArgs {
    fn spec(&self) -> SampleSpec {
        SampleSpec {
            samples: self.samples,
            split: self.split.clone(),
            dataset: self.dataset.clone(),
            env: self.env.clone(),
            seed: self.seed,
        }
    }
}

/// The samples (and how to score them) for a trial in the context of `run` (if any).
fn samples_for(
    store: &Store,
    run: Option<&str>,
    exclude: &[String],
    args: &TrialArgs,
) -> Result<(Vec<Sample>, String, Environment)> {
    let config = match run {
        Some(r) => Some(store.run(r)?.config),
        None => None,
    };
    crate::adaptation::trial::samples_for(config.as_ref(), exclude, &args.spec())
        .map_err(anyhow::Error::msg)
}

/// A generator, a cache and a runtime for one or more trials.
struct Session {
    runtime: tokio::runtime::Runtime,
    cache: crate::shared::Shared<Store>,
    setup: TrialSetup,
    prices: crate::llm::PriceTable,
    model: String,
}

impl Session {
    fn open(db: &Path, env: Environment, args: &TrialArgs) -> Result<Session> {
        if let Environment::Command { command, .. } = &env {
            bail!(
                "the trial would score answers by running this command on this machine:\n    {}\nscore with --env instead",
                crate::text::visible(command)
            );
        }
        let cache = crate::shared::shared(Store::open(db)?);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let ledger = Ledger::default();
        if let Some(max) = args.max_cost {
            ledger.set_budget(max, 0.0);
        }
        let (models, prices) = runtime.block_on(async {
            let cfg = crate::config::load(&crate::config::process_env)?;
            let models = crate::adaptation::models_from_config(&ledger).await?;
            anyhow::Ok((models, cfg.prices))
        })?;
        let model = models.generator.endpoint().model.clone();
        let cancel = tokio_util::sync::CancellationToken::new();
        let stop = cancel.clone();
        runtime.spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.cancel();
            }
        });
        Ok(Session {
            runtime,
            cache,
            setup: TrialSetup {
                generator: models.generator,
                env,
                concurrency: args.concurrency,
                prompt_budget: crate::adaptation::DEFAULT_PROMPT_BUDGET,
                cancel,
            },
            prices,
            model,
        })
    }

    fn trial(
        &self,
        before: &Arc<Playbook>,
        after: Playbook,
        samples: &[Sample],
        source: &str,
    ) -> Result<TrialReport> {
        self.runtime
            .block_on(trial(
                &self.setup,
                &self.cache,
                before.clone(),
                Arc::new(after),
                samples,
                source,
            ))
            .map_err(|e| anyhow::anyhow!("{e}"))
    }
}

/// Runs a trial of `after` against `before` with the configured generator.
fn run_trial(
    db: &Path,
    before: Playbook,
    after: Playbook,
    samples: Vec<Sample>,
    source: String,
    env: Environment,
    args: &TrialArgs,
) -> Result<TrialReport> {
    let session = Session::open(db, env, args)?;
    eprintln!(
        "trying on {} samples: up to {} generator calls (answers already seen come from the cache)",
        samples.len(),
        2 * samples.len()
    );
    session.trial(&Arc::new(before), after, &samples, &source)
}

/// `ace playbook impact NAME`: every bullet's leave-one-out impact, ranked; says the calls and an
/// estimated cost first and asks before it spends.
pub fn playbook_impact(
    db: &Path,
    name: &str,
    yes: bool,
    args: TrialArgs,
    out: &mut impl Write,
) -> Result<()> {
    let store = Store::open(db)?;
    let before = Arc::new(store.load_playbook(name)?);
    let run = store.last_run(name)?.map(|r| r.id);
    let (samples, source, env) = samples_for(&store, run.as_deref(), &[], &args)?;
    drop(store);
    let bullets: Vec<crate::playbook::Bullet> = before.active_bullets().cloned().collect();
    if bullets.is_empty() {
        bail!("playbook '{name}' has no bullets");
    }
    let session = Session::open(db, env, &args)?;
    let calls = samples.len() * (bullets.len() + 1);
    let prompt = crate::prompts::playbook_tokens(&before)
        .min(crate::adaptation::DEFAULT_PROMPT_BUDGET)
        + 300;
    let estimate = session.prices.price(&session.model).map(|p| {
        calls as f64 * (prompt as f64 * p.input_per_mtok + 300.0 * p.output_per_mtok) / 1e6
    });
    eprintln!(
        "impact of {} bullets on {} samples of {source}: up to {calls} generator calls of about {prompt} prompt tokens each; estimated cost {}",
        bullets.len(),
        samples.len(),
        estimate.map_or_else(
            || format!("unknown (no price for model '{}')", session.model),
            |c| format!("${c:.4}")
        )
    );
    if !yes {
        use std::io::IsTerminal;
        if !std::io::stdin().is_terminal() {
            bail!("not confirmed; nothing was spent (pass --yes to start)");
        }
        eprint!("start? [y/N] ");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        if !line.trim().eq_ignore_ascii_case("y") {
            bail!("not confirmed; nothing was spent");
        }
    }
    let bar = indicatif::ProgressBar::new(bullets.len() as u64);
    let mut ranked = Vec::new();
    let mut spent = 0.0;
    for b in &bullets {
        let after = without(&before, &b.id)?;
        let report = session.trial(&before, after, &samples, &source)?;
        spent += report.cost_usd;
        bar.inc(1);
        ranked.push((-report.delta_points(), b, report));
    }
    bar.finish_and_clear();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    if args.json {
        let rows: Vec<serde_json::Value> = ranked
            .iter()
            .map(|(impact, b, r)| serde_json::json!({"id": b.id, "impact_points": impact, "helpful": b.helpful, "harmful": b.harmful, "to_wrong_without": r.to_wrong.len(), "to_right_without": r.to_right.len()}))
            .collect();
        return super::print::json(
            out,
            &serde_json::json!({"samples": samples.len(), "source": source, "cost_usd": spent, "bullets": rows}),
        );
    }
    writeln!(
        out,
        "impact (accuracy with the bullet minus without it) on {} samples of {source}; ${spent:.4} spent",
        samples.len()
    )?;
    for (impact, b, _) in &ranked {
        writeln!(out, "{impact:+6.1}  {:<14} {}", b.id, preview(&b.content))?;
    }
    Ok(())
}

/// One line of at most 100 characters, shown escaped.
fn preview(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = line.chars().take(100).collect();
    let cut = if cut.len() < line.len() {
        cut + "…"
    } else {
        cut
    };
    crate::text::visible(&cut).into_owned()
}

fn print_report(out: &mut impl Write, report: &TrialReport) -> Result<()> {
    writeln!(out, "{}", report.summary())?;
    for (label, flips) in [
        ("right → wrong", &report.to_wrong),
        ("wrong → right", &report.to_right),
    ] {
        for f in flips {
            writeln!(
                out,
                "  {label}: {} — {:?} → {:?}\n      {}",
                f.sample_id,
                f.before,
                f.after,
                preview(&f.question)
            )?;
        }
    }
    Ok(())
}

/// `ace queue trial ID [--op N]`.
pub fn queue_trial(
    db: &Path,
    id: i64,
    op: Option<usize>,
    args: TrialArgs,
    out: &mut impl Write,
) -> Result<()> {
    let mut store = Store::open(db)?;
    let batch = store.pending_batch(id)?;
    let before = store.load_playbook(&batch.playbook)?;
    let run = match &batch.run_id {
        Some(r) => Some(store.run(r)?.config),
        None => None,
    };
    let prepared =
        prepare(&batch, op, &before, run.as_ref(), &args.spec()).map_err(anyhow::Error::msg)?;
    let report = run_trial(
        db,
        before,
        prepared.after,
        prepared.samples,
        prepared.source,
        prepared.env,
        &args,
    )?;
    let subject = match op {
        Some(n) => format!("proposal #{id}, op {n}"),
        None => format!("proposal #{id}"),
    };
    store.record_trial(Some(id), op, &subject, &report)?;
    if args.json {
        return super::print::json(out, &report);
    }
    writeln!(out, "{subject}:")?;
    print_report(out, &report)
}

fn without(playbook: &Playbook, id: &str) -> Result<Playbook> {
    crate::adaptation::trial::without(playbook, id).map_err(anyhow::Error::msg)
}

/// `ace bullet impact ID`: leave-one-out, a trial of the bullet's removal (nothing is written).
pub fn bullet_impact(
    db: &Path,
    id: &str,
    playbook: Option<&str>,
    args: TrialArgs,
    out: &mut impl Write,
) -> Result<()> {
    let store = Store::open(db)?;
    let name = store.resolve_playbook(playbook)?;
    let before = store.load_playbook(&name)?;
    let Some(bullet) = before
        .canonical_id(id)
        .and_then(|i| before.bullet(i))
        .cloned()
    else {
        bail!("playbook '{name}' has no bullet '{id}'");
    };
    let after = without(&before, &bullet.id)?;
    // the run that last cited it gives the samples, unless a file is named
    let story = store.bullet_story(&name, &bullet.id)?;
    let exposure = store.bullet_exposure(&name, &bullet.id)?;
    let run = story
        .cited_by
        .last()
        .map(|(r, _)| r.clone())
        .or_else(|| story.origin_run.clone());
    let (samples, source, env) = samples_for(&store, run.as_deref(), &[], &args)?;
    drop(store);
    let report = run_trial(db, before, after, samples, source, env, &args)?;
    if args.json {
        return super::print::json(
            out,
            &serde_json::json!({"bullet": bullet, "without_it": report, "cited_by": story.cited_by, "counters": story.history, "exposure": exposure}),
        );
    }
    writeln!(
        out,
        "bullet {} (helpful {}, harmful {}): {}",
        bullet.id,
        bullet.helpful,
        bullet.harmful,
        preview(&bullet.content)
    )?;
    writeln!(out, "without it (leave-one-out):")?;
    print_report(out, &report)?;
    let delta = -report.delta_points();
    writeln!(
        out,
        "impact: {delta:+.1} points of accuracy with the bullet than without it; cited by {} samples in {} runs",
        story.cited_by.iter().map(|(_, n)| n).sum::<u64>(),
        story.cited_by.len()
    )?;
    writeln!(
        out,
        "since it was added: shown to {} of {} samples, cited by {}",
        exposure.shown, exposure.samples, exposure.cited
    )?;
    let points: Vec<String> = story
        .history
        .iter()
        .rev()
        .take(8)
        .rev()
        .map(|p| format!("r{} {}/{}", p.revision, p.helpful, p.harmful))
        .collect();
    if !points.is_empty() {
        writeln!(
            out,
            "counters over time (helpful/harmful after each revision): {}",
            points.join(", ")
        )?;
    }
    Ok(())
}
