//! The effects runner: does what `update` asks, off the render path. Store jobs run on blocking
//! threads through [`crate::shared::blocking`]; the run is a tokio task whose one event stream
//! comes back as actions. Here, not in `update`, live the clock (batch ids), the user's name
//! (authors) and the file system (the run form's files).

use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::UnboundedSender;

use super::action::{Action, Effect, HandEdit, Manage};
use super::state::Unfinished;
use super::{ModelSource, models, snapshot};
use crate::adaptation::{self, Controls, GetModels, RunConfig, RunStatus};
use crate::delta::{ApplyOptions, DeltaBatch, Source};
use crate::llm::Ledger;
use crate::shared::{Shared, blocking};
use crate::store::{Store, StoreError};

pub(super) struct Runner {
    pub store: Shared<Store>,
    pub tx: UnboundedSender<Action>,
    pub source: ModelSource,
    /// The controls of the run this workbench started, held from the moment it starts.
    pub controls: Option<Controls>,
    /// The playbook shown (what reloads read).
    pub playbook: Arc<Mutex<String>>,
    /// The store's change marker as of the last reload (see [`Store::change_marker`]).
    pub seen: Arc<Mutex<Option<(i64, i64, i64)>>>,
}

/// Who decides, as recorded on revisions and decisions.
fn author() -> String {
    std::env::var("USER").unwrap_or_else(|_| "human".into())
}

/// A hand edit as a batch: a fresh id from the clock, the person as author, source `human`.
/// OSC 52: `ESC ] 52 ; c ; base64 BEL` sets the clipboard; inside tmux it is wrapped in tmux's
/// passthrough so it reaches the outer terminal.
pub fn write_clipboard(out: &mut impl std::io::Write, text: &str) -> std::io::Result<()> {
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    let sequence = format!("\x1b]52;c;{data}\x07");
    if std::env::var_os("TMUX").is_some() {
        write!(
            out,
            "\x1bPtmux;{}\x1b\\",
            sequence.replace('\x1b', "\x1b\x1b")
        )?;
    } else {
        out.write_all(sequence.as_bytes())?;
    }
    out.flush()
}

fn hand_batch(edit: HandEdit) -> DeltaBatch {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut batch = DeltaBatch::new(
        format!("tui-{}-{nanos:x}", edit.what),
        Source::Human,
        edit.ops,
    )
    .with_reason(edit.reason);
    batch.author = Some(author());
    batch
}

/// The first file of the run's configuration that does not exist, as the form field it came from.
fn missing_file(config: &RunConfig) -> Option<(&'static str, String)> {
    let files = [
        ("dataset", Some(config.dataset.as_path())),
        ("val", config.val.as_deref()),
        ("test", config.test.as_deref()),
    ];
    files.into_iter().find_map(|(field, path)| {
        path.filter(|p| !p.is_file())
            .map(|p: &Path| (field, format!("{field}: no file at {}", p.display())))
    })
}

impl Runner {
    fn name(&self) -> String {
        self.playbook.lock().map(|n| n.clone()).unwrap_or_default()
    }

    /// A store job off the render path; its result comes back as an action.
    fn job<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
        done: impl FnOnce(T) -> Action + Send + 'static,
    ) {
        let (store, tx) = (self.store.clone(), self.tx.clone());
        tokio::spawn(async move {
            let _ = tx.send(match blocking(&store, f).await {
                Ok(v) => done(v),
                Err(e) => Action::Failed(e.to_string()),
            });
        });
    }

    /// A write and the reload in one job, so the panes show the result at once: `job` returns
    /// what to say and the snapshot to show (`None`: nothing changed, nothing to reload). The
    /// message goes first: by the time the panes show the result, it is said.
    fn write_and_show(
        &self,
        job: impl FnOnce(&mut Store) -> Result<(String, Option<super::state::Snapshot>), StoreError>
        + Send
        + 'static,
    ) {
        let (store, tx) = (self.store.clone(), self.tx.clone());
        tokio::spawn(async move {
            match blocking(&store, job).await {
                Ok((message, snap)) => {
                    let _ = tx.send(Action::Info(message));
                    if let Some(snap) = snap {
                        let _ = tx.send(Action::Loaded(Box::new(snap)));
                    }
                }
                Err(e) => {
                    let _ = tx.send(Action::Failed(e.to_string()));
                }
            }
        });
    }

    /// Tries a queued proposal on 20 samples of its run (as `ace queue trial` does), keeps the
    /// trial with it and says what it found; the workbench stays usable meanwhile.
    fn trial(&self, batch: i64, op: Option<usize>) {
        use crate::adaptation::trial::{SampleSpec, TrialSetup, prepare, trial};
        let (store, tx, source) = (self.store.clone(), self.tx.clone(), self.source.clone());
        tokio::spawn(async move {
            let result: Result<String, String> = async {
                let (pending, before, run) = blocking(&store, move |s| {
                    let pending = s.pending_batch(batch)?;
                    let before = s.load_playbook(&pending.playbook)?;
                    let run = match &pending.run_id {
                        Some(r) => Some(s.run(r)?.config),
                        None => None,
                    };
                    Ok::<_, StoreError>((pending, before, run))
                })
                .await
                .map_err(|e| e.to_string())?;
                let spec = SampleSpec {
                    samples: 20,
                    seed: 7,
                    ..SampleSpec::default()
                };
                let prepared = prepare(&pending, op, &before, run.as_ref(), &spec)?;
                if matches!(prepared.env, crate::environment::Environment::Command { .. }) {
                    return Err("this run scores answers with a command; try it with `ace queue trial` and --env".into());
                }
                let models = super::models(&source, &Ledger::default())
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                let setup = TrialSetup {
                    generator: models.generator,
                    env: prepared.env,
                    concurrency: 8,
                    prompt_budget: crate::adaptation::DEFAULT_PROMPT_BUDGET,
                    cancel: tokio_util::sync::CancellationToken::new(),
                };
                let report = trial(
                    &setup,
                    &store,
                    Arc::new(before),
                    Arc::new(prepared.after),
                    &prepared.samples,
                    &prepared.source,
                )
                .await
                .map_err(|e| e.to_string())?;
                let subject = match op {
                    Some(n) => format!("proposal #{batch}, op {n}"),
                    None => format!("proposal #{batch}"),
                };
                let said = format!("{subject}: {}", report.summary());
                blocking(&store, move |s| s.record_trial(Some(batch), op, &subject, &report))
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(said)
            }
            .await;
            let _ = tx.send(match result {
                Ok(said) => Action::Info(said),
                Err(e) => Action::Failed(format!("trial of proposal #{batch}: {e}")),
            });
            // the pane shows the stored trial
            let _ = tx.send(Action::TrialDone);
        });
    }

    /// A bullet's leave-one-out impact on 20 samples of its playbook's last run (as `ace bullet
    /// impact` does); nothing is written.
    fn impact(&self, id: String) {
        use crate::adaptation::trial::{SampleSpec, TrialSetup, samples_for, trial, without};
        let (store, tx, source, name) = (
            self.store.clone(),
            self.tx.clone(),
            self.source.clone(),
            self.name(),
        );
        tokio::spawn(async move {
            let result: Result<crate::adaptation::trial::TrialReport, String> = async {
                let (before, run) = blocking(&store, move |s| {
                    let before = s.load_playbook(&name)?;
                    let run = s.last_run(&name)?.map(|r| r.config);
                    Ok::<_, StoreError>((before, run))
                })
                .await
                .map_err(|e| e.to_string())?;
                let after = without(&before, &id)?;
                let spec = SampleSpec {
                    samples: 20,
                    seed: 7,
                    ..SampleSpec::default()
                };
                let (samples, from, env) = samples_for(run.as_ref(), &[], &spec)
                    .map_err(|e| format!("{e} (`ace bullet impact --dataset FILE` names one)"))?;
                if matches!(env, crate::environment::Environment::Command { .. }) {
                    return Err(
                        "the last run scores answers with a command; use `ace bullet impact --env`"
                            .into(),
                    );
                }
                let models = super::models(&source, &Ledger::default())
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                let setup = TrialSetup {
                    generator: models.generator,
                    env,
                    concurrency: 8,
                    prompt_budget: crate::adaptation::DEFAULT_PROMPT_BUDGET,
                    cancel: tokio_util::sync::CancellationToken::new(),
                };
                trial(
                    &setup,
                    &store,
                    Arc::new(before),
                    Arc::new(after),
                    &samples,
                    &from,
                )
                .await
                .map_err(|e| e.to_string())
            }
            .await;
            let _ = tx.send(match result {
                Ok(report) => Action::ImpactFound(id, Box::new(report)),
                Err(e) => Action::Failed(format!("impact of {id}: {e}")),
            });
        });
    }

    pub fn run_effect(&mut self, effect: Effect) {
        match effect {
            Effect::Refresh => self.reload(true),
            Effect::LoadRevision(id) => self.job(
                move |s| s.revision(id),
                |d| Action::RevisionLoaded(Box::new(d)),
            ),
            Effect::LoadStory(id) => {
                let name = self.name();
                self.job(
                    move |s| s.bullet_story(&name, &id),
                    |story| Action::StoryLoaded(Box::new(story)),
                );
            }
            Effect::Trial { batch, op } => self.trial(batch, op),
            Effect::Impact(id) => self.impact(id),
            Effect::LoadPlaybookAt(id) => self.job(
                move |s| s.playbook_at(id),
                move |p| Action::PlaybookAt(id, Box::new(p)),
            ),
            Effect::Decide { batch, decisions } => {
                let author = author();
                self.job(
                    move |s| s.decide(batch, &decisions, &author),
                    move |o| Action::Decided {
                        batch,
                        revision: o.revision,
                        closed: o.closed,
                    },
                );
            }
            Effect::DecideAll { batch, approve } => {
                let author = author();
                self.job(
                    move |s| s.decide_all(batch, approve, None, &author),
                    move |o| Action::Decided {
                        batch,
                        revision: o.revision,
                        closed: o.closed,
                    },
                );
            }
            Effect::Revert { revision, force } => {
                // A conflict is not just an error: the person is told why and may force it.
                let (store, tx, author) = (self.store.clone(), self.tx.clone(), author());
                tokio::spawn(async move {
                    let result =
                        blocking(&store, move |s| s.revert(revision, force, Some(&author))).await;
                    let _ = tx.send(match result {
                        Ok(o) => Action::Reverted {
                            revision,
                            new: o.revision(),
                        },
                        Err(StoreError::RevertConflict { detail, .. }) => {
                            Action::RevertConflict { revision, detail }
                        }
                        Err(e) => Action::Failed(e.to_string()),
                    });
                });
            }
            Effect::ManagePlaybook(op) => {
                let (shown, current) = (self.name(), self.playbook.clone());
                self.write_and_show(move |s| {
                    let (message, show) = match op {
                        Manage::Rename { name, new_name } => {
                            s.rename_playbook(&name, &new_name)?;
                            let show = (name == shown).then(|| new_name.clone());
                            (format!("renamed playbook '{name}' to '{new_name}'"), show)
                        }
                        Manage::Copy { name, new_name } => {
                            s.copy_playbook(&name, &new_name)?;
                            (
                                format!("copied playbook '{name}' to '{new_name}'"),
                                Some(new_name),
                            )
                        }
                        Manage::Delete { name } => {
                            s.delete_playbook(&name)?;
                            let show = (name == shown)
                                .then(|| s.playbook_names().ok()?.into_iter().next())
                                .flatten();
                            (
                                format!(
                                    "deleted playbook '{name}' (`ace playbook restore {name}` brings it back)"
                                ),
                                show,
                            )
                        }
                    };
                    // the workbench follows a renamed or copied playbook, or shows another
                    if let (Some(name), Ok(mut p)) = (&show, current.lock()) {
                        *p = name.clone();
                    }
                    let name = show.unwrap_or(shown);
                    Ok((message, Some(snapshot(s, &name)?)))
                });
            }
            Effect::Compare { a, b } => {
                let name = self.name();
                self.job(
                    move |s| {
                        let before = s.playbook_at(a)?;
                        let (after, label) = match b {
                            Some(b) => (s.playbook_at(b)?, format!("revision {b}")),
                            None => (s.load_playbook(&name)?, "the playbook now".to_string()),
                        };
                        Ok((
                            format!("revision {a} → {label}"),
                            crate::delta::diff(&before, &after),
                        ))
                    },
                    |(title, changes)| Action::Compared(title, changes),
                );
            }
            Effect::Copy(text) => {
                // the terminal (or tmux, or the ssh client's terminal) puts it on the clipboard
                let _ = write_clipboard(&mut std::io::stdout(), &text);
            }
            Effect::UndoLastEdit => {
                let (name, author) = (self.name(), author());
                self.write_and_show(move |s| {
                    let Some(last) = s.last_hand_edit(&name, "tui-")? else {
                        return Ok(("no hand edit of this playbook to undo".into(), None));
                    };
                    let revision = s.revert(last, false, Some(&author))?.revision();
                    Ok((
                        format!("undone: revision {last} reverted as revision {revision}"),
                        Some(snapshot(s, &name)?),
                    ))
                });
            }
            Effect::Apply(edit) => {
                let (name, batch) = (self.name(), hand_batch(edit));
                self.write_and_show(move |s| {
                    let outcome = s.apply(&name, &batch, &ApplyOptions::create_sections())?;
                    Ok((
                        format!(
                            "applied as revision {} (revertible in 4 Revisions)",
                            outcome.revision()
                        ),
                        Some(snapshot(s, &name)?),
                    ))
                });
            }
            Effect::StartRun(config) => match missing_file(&config) {
                Some((field, message)) => {
                    let _ = self.tx.send(Action::RunRefused {
                        field: Some(field),
                        message,
                    });
                }
                None => {
                    let _ = self.tx.send(Action::RunAccepted);
                    self.start_run(*config, None);
                }
            },
            Effect::OpenPlaybook(name) => {
                if let Ok(mut p) = self.playbook.lock() {
                    *p = name;
                }
                self.reload(true);
            }
            Effect::LoadRuns => self.job(
                |s| {
                    let totals = s.run_totals()?;
                    let mut rows = Vec::new();
                    for run in s.runs()? {
                        let live = matches!(run.status, RunStatus::Running | RunStatus::Waiting)
                            && s.run_is_live(&run.id)?;
                        rows.push(super::state::RunRow {
                            totals: totals.get(&run.id).cloned().unwrap_or_default(),
                            run,
                            live,
                        });
                    }
                    Ok(rows)
                },
                Action::Runs,
            ),
            Effect::LoadRunSummary(id) => self.job(
                move |s| {
                    let summary = s.run_summary(&id)?;
                    let mut samples = s.run_samples(&id)?;
                    // the latest ones, by when they were recorded
                    samples
                        .sort_by(|a, b| (a.epoch, a.step, &a.key).cmp(&(b.epoch, b.step, &b.key)));
                    let keep = samples.len().saturating_sub(12);
                    samples.drain(..keep);
                    Ok(super::state::RunDetail { summary, samples })
                },
                |detail| Action::RunSummaryLoaded(Box::new(detail)),
            ),
            Effect::LoadUnfinishedRuns => self.job(
                |s| {
                    let mut out = Vec::new();
                    for run in s
                        .runs()?
                        .into_iter()
                        .filter(|r| r.status != RunStatus::Finished)
                    {
                        let live_elsewhere = s.run_is_live(&run.id)?;
                        out.push(Unfinished {
                            run,
                            live_elsewhere,
                        });
                    }
                    Ok(out)
                },
                Action::UnfinishedRuns,
            ),
            Effect::ResumeRun { run, playbook } => self.start_run(
                RunConfig {
                    playbook,
                    ..RunConfig::default()
                },
                Some(run),
            ),
            Effect::Control(c) => {
                if let Some(controls) = &self.controls {
                    let _ = controls.send(c);
                }
            }
        }
    }

    /// Reloads the panes from the store; unless `always`, only if the store's change marker moved
    /// (another process queued or decided something), so polling a 100k-bullet playbook costs one
    /// query.
    pub fn reload(&self, always: bool) {
        let (name, store, tx, seen) = (
            self.name(),
            self.store.clone(),
            self.tx.clone(),
            self.seen.clone(),
        );
        tokio::spawn(async move {
            let result = blocking(&store, move |s| {
                let marker = s.change_marker()?;
                let mut last = seen.lock().unwrap_or_else(|e| e.into_inner());
                if !always && *last == Some(marker) {
                    return Ok(None); // nothing changed: no action, no frame
                }
                *last = Some(marker);
                snapshot(s, &name).map(Some)
            })
            .await;
            match result {
                Ok(Some(snap)) => drop(tx.send(Action::Loaded(Box::new(snap)))),
                Ok(None) => {}
                Err(e) => drop(tx.send(Action::Failed(e.to_string()))),
            }
        });
    }

    /// Starts a run, or resumes `resume` (whose stored configuration wins; `config` then only names
    /// the playbook to show). The run's controls are held at once, so a key pressed right after
    /// the start reaches the run itself, in order; its one event stream comes back as actions.
    fn start_run(&mut self, mut config: RunConfig, resume: Option<String>) {
        // paths are stored absolute, so the run resumes from anywhere (the CLI does the same)
        let absolute =
            |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        if config.dataset.as_os_str() != "-" && !config.dataset.as_os_str().is_empty() {
            config.dataset = absolute(&config.dataset);
        }
        config.val = config.val.as_deref().map(absolute);
        config.test = config.test.as_deref().map(absolute);
        let ledger = Ledger::default();
        let (source, for_models) = (self.source.clone(), ledger.clone());
        // a cost limit: the form's, or (resuming) the one the run was started with, its earlier
        // spend counted
        let (store, limit, resumed) = (self.store.clone(), config.max_cost, resume.clone());
        let models = GetModels::Build(Box::pin(async move {
            let stored = match resumed {
                Some(id) => blocking(&store, move |s| {
                    let max = s.run(&id)?.config.max_cost;
                    let spent: f64 = s.run_summary(&id)?.cost_usd();
                    Ok::<_, StoreError>((max, spent))
                })
                .await
                .ok(),
                None => None,
            };
            if let Some(max) = limit.or(stored.and_then(|(m, _)| m)) {
                for_models.set_budget(max, stored.map_or(0.0, |(_, spent)| spent));
            }
            models(&source, &for_models).await
        }));
        if let Ok(mut p) = self.playbook.lock() {
            *p = config.playbook.clone();
        }
        let mut handle = adaptation::start(self.store.clone(), models, config, resume);
        self.controls = Some(handle.controls.clone());
        let tx = self.tx.clone();
        tokio::spawn(async move {
            while let Some(event) = handle.events.recv().await {
                let total = ledger.total();
                let budget = ledger.budget();
                let _ = tx.send(Action::Ledger {
                    tokens: total.prompt_tokens + total.completion_tokens,
                    cost_usd: budget.map_or(total.cost_usd, |(_, spent)| spent),
                    max_usd: budget.map(|(max, _)| max),
                });
                let _ = tx.send(Action::Run(Box::new(event)));
            }
            // A cancel the person asked for is not an error (the run pane says "cancelled").
            if let Ok(Err(e)) = handle.task.await
                && !matches!(e, adaptation::LoopError::Cancelled)
            {
                let _ = tx.send(Action::Failed(e.to_string()));
            }
        });
    }
}
