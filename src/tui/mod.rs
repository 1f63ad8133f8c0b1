//! The workbench: a ratatui terminal UI over the store and the loop.
//!
//! One [`state::State`], one [`state::Action`] enum, a pure [`update::update`] and a pure
//! [`ui::render`]. This module owns the terminal and the event loop: input arrives from a reader
//! thread, store work and the adaptation run happen off the render path and report back as actions,
//! and a frame is drawn once per burst of actions (or on a slow tick).

pub mod state;
pub mod ui;
pub mod update;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use ratatui::crossterm::event::{self, Event as TermEvent, MouseEventKind};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::adaptation::{self, Control, Controls, GetModels, Models, RunConfig, RunStatus};
use crate::llm::{Ledger, LlmClient, OpenAiClient, Role};
use crate::playbook::format::{self, Format};
use crate::shared::{Shared, blocking, shared};
use crate::store::Store;
use state::{Action, Effect, Snapshot, State, Unfinished};

/// The bundled sample playbook and dataset (written for this project), loaded on first run.
pub const SAMPLE_PLAYBOOK: &str = include_str!("../../assets/sample/playbook.txt");
pub const SAMPLE_DATASET: &str = include_str!("../../assets/sample/dataset.jsonl");
/// The scripted model of `ace demo`.
pub const DEMO_SCRIPT: &str = include_str!("../../assets/demo/script.json");

/// How the workbench reaches models.
#[derive(Debug, Clone)]
pub enum ModelSource {
    /// From the configuration (docs/CONFIGURATION.md).
    Configured,
    /// A scripted model served on loopback at this base URL (`ace demo`).
    Demo(String),
}

/// Loads the sample playbook into an empty database and writes the sample dataset next to it.
pub fn first_run(store: &mut Store, data_dir: &Path) -> Result<PathBuf> {
    if store.playbooks()?.is_empty() {
        let parsed = format::parse(Format::Ace, SAMPLE_PLAYBOOK, "sample playbook")?;
        store.import_playbook(
            "sample",
            &crate::delta::import_batch(&parsed, "import:sample"),
            parsed.next_bullet_number,
        )?;
    }
    let dataset = data_dir.join("sample-dataset.jsonl");
    if !dataset.exists() {
        std::fs::create_dir_all(data_dir)?;
        std::fs::write(&dataset, SAMPLE_DATASET)?;
    }
    Ok(dataset)
}

/// Everything the panes show, read from the store in one go.
pub fn snapshot(store: &Store, playbook: &str) -> Result<Snapshot, crate::store::StoreError> {
    let playbooks = store.playbook_names()?;
    let name = if playbooks.iter().any(|p| p == playbook) {
        playbook.to_string()
    } else {
        playbooks.first().cloned().unwrap_or_default()
    };
    let playbook = if name.is_empty() {
        Default::default()
    } else {
        store.load_playbook(&name)?
    };
    let mut queue = store.pending(None)?;
    queue.extend(
        store
            .queue(None, false)?
            .into_iter()
            .filter(|b| !b.is_pending())
            .take(20),
    );
    Ok(Snapshot {
        playbooks,
        playbook,
        queue,
        revisions: if name.is_empty() {
            Vec::new()
        } else {
            store.revisions(Some(&name), 500)?
        },
    })
}

async fn models(source: &ModelSource, ledger: &Ledger) -> Result<Models> {
    match source {
        ModelSource::Configured => adaptation::models_from_config(ledger).await,
        ModelSource::Demo(url) => {
            let mut endpoint = crate::llm::EndpointConfig::new(url.clone(), "scripted-demo");
            endpoint.min_backoff = Duration::from_millis(50);
            let client: Arc<dyn LlmClient> = Arc::new(OpenAiClient::new(
                endpoint,
                ledger.clone(),
                Default::default(),
            )?);
            Ok(Models {
                generator: client.clone(),
                reflector: client.clone(),
                curator: client,
                ledger: ledger.clone(),
            })
        }
    }
}

/// What the header says about models.
pub async fn model_label(source: &ModelSource) -> String {
    match source {
        ModelSource::Demo(_) => "model: SCRIPTED DEMO (not a real model)".into(),
        ModelSource::Configured => match crate::config::load(&crate::config::process_env) {
            Ok(cfg) => match crate::config::resolve(&cfg).await {
                Ok(endpoints) => {
                    let g = &endpoints[&Role::Generator];
                    format!("model: {} at {}", g.model, g.base_url)
                }
                Err(_) => {
                    "no model configured: export OPENAI_API_KEY=… or ACE_BASE_URL=… ACE_MODEL=…"
                        .into()
                }
            },
            Err(e) => format!("model config error: {e}"),
        },
    }
}

struct Runner {
    store: Shared<Store>,
    tx: UnboundedSender<Action>,
    source: ModelSource,
    controls: Option<Controls>,
    playbook: Arc<Mutex<String>>,
    /// The store's change marker as of the last reload (see [`Store::change_marker`]).
    seen: Arc<Mutex<Option<(i64, i64, i64)>>>,
}

impl Runner {
    /// A store job off the render path; its result comes back as an action.
    fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, crate::store::StoreError> + Send + 'static,
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

    fn run_effect(&mut self, effect: Effect) {
        let author = std::env::var("USER").unwrap_or_else(|_| "human".into());
        match effect {
            Effect::Refresh => self.reload(true),
            Effect::LoadRevision(id) => self.blocking(
                move |s| s.revision(id),
                |d| Action::RevisionLoaded(Box::new(d)),
            ),
            Effect::LoadStory(id) => {
                let name = self.playbook.lock().map(|n| n.clone()).unwrap_or_default();
                self.blocking(
                    move |s| s.bullet_story(&name, &id),
                    |story| Action::StoryLoaded(Box::new(story)),
                );
            }
            Effect::LoadPlaybookAt(id) => self.blocking(
                move |s| s.playbook_at(id),
                move |p| Action::PlaybookAt(id, Box::new(p)),
            ),
            Effect::Decide { batch, decisions } => {
                self.blocking(
                    move |s| s.decide(batch, &decisions, &author),
                    move |o| Action::Decided {
                        batch,
                        revision: o.revision,
                        closed: o.closed,
                    },
                );
            }
            Effect::DecideAll { batch, approve } => {
                self.blocking(
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
                let (store, tx) = (self.store.clone(), self.tx.clone());
                tokio::task::spawn_blocking(move || {
                    let result = store.lock().unwrap_or_else(|e| e.into_inner()).revert(
                        revision,
                        force,
                        Some(&author),
                    );
                    let _ = tx.send(match result {
                        Ok(o) => Action::Reverted {
                            revision,
                            new: o.revision(),
                        },
                        Err(crate::store::StoreError::RevertConflict { detail, .. }) => {
                            Action::RevertConflict { revision, detail }
                        }
                        Err(e) => Action::Failed(e.to_string()),
                    });
                });
            }
            Effect::Apply(batch) => {
                // The write and the reload in one job, so the panes show the result at once.
                let name = self.playbook.lock().map(|n| n.clone()).unwrap_or_default();
                let (store, tx) = (self.store.clone(), self.tx.clone());
                tokio::task::spawn_blocking(move || {
                    let mut s = store.lock().unwrap_or_else(|e| e.into_inner());
                    match s.apply(
                        &name,
                        &batch,
                        &crate::delta::ApplyOptions::create_sections(),
                    ) {
                        Ok(o) => {
                            let _ = tx.send(Action::Info(format!(
                                "applied as revision {} (revertible in 4 Revisions)",
                                o.revision()
                            )));
                            if let Ok(snap) = snapshot(&s, &name) {
                                let _ = tx.send(Action::Loaded(Box::new(snap)));
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Action::Failed(e.to_string()));
                        }
                    }
                });
            }
            Effect::StartRun(config) => self.start_run(*config, None),
            Effect::OpenPlaybook(name) => {
                if let Ok(mut p) = self.playbook.lock() {
                    *p = name;
                }
                self.reload(true);
            }
            Effect::LoadUnfinishedRuns => self.blocking(
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
    /// (another process queued or decided something), so polling a 100k-bullet playbook costs one query.
    fn reload(&self, always: bool) {
        let name = self.playbook.lock().map(|n| n.clone()).unwrap_or_default();
        let (store, tx, seen) = (self.store.clone(), self.tx.clone(), self.seen.clone());
        tokio::task::spawn_blocking(move || {
            let store = store.lock().unwrap_or_else(|e| e.into_inner());
            let result = store.change_marker().and_then(|marker| {
                let mut last = seen.lock().unwrap_or_else(|e| e.into_inner());
                if !always && *last == Some(marker) {
                    return Ok(None); // nothing changed: no action, no frame
                }
                *last = Some(marker);
                snapshot(&store, &name).map(Some)
            });
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
    fn start_run(&mut self, config: RunConfig, resume: Option<String>) {
        let ledger = Ledger::default();
        let (source, for_models) = (self.source.clone(), ledger.clone());
        let models = GetModels::Build(Box::pin(async move { models(&source, &for_models).await }));
        if let Ok(mut p) = self.playbook.lock() {
            *p = config.playbook.clone();
        }
        let mut handle = adaptation::start(self.store.clone(), models, config, resume);
        self.controls = Some(handle.controls.clone());
        let tx = self.tx.clone();
        tokio::spawn(async move {
            while let Some(event) = handle.events.recv().await {
                let total = ledger.total();
                let _ = tx.send(Action::Ledger {
                    tokens: total.prompt_tokens + total.completion_tokens,
                    cost_usd: total.cost_usd,
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

/// The workbench without its terminal: the state, the effects runner and the action channel, on
/// its own tokio runtime. [`run`] drives it from a terminal; tests drive it with keys and read its
/// state and rendered frames, through the same effects, store and model path a person uses.
pub struct Workbench {
    pub state: State,
    runner: Runner,
    rx: UnboundedReceiver<Action>,
    tx: UnboundedSender<Action>,
    ticks: u32,
    // Last: dropped after the runner, so background tasks end with it.
    runtime: tokio::runtime::Runtime,
}

impl Workbench {
    /// Opens the store at `db` (loading the sample playbook and dataset on first run) and starts the
    /// first load of the panes.
    pub fn open(
        db: &Path,
        source: ModelSource,
        default_run: RunConfig,
        label: &str,
    ) -> Result<Self> {
        let mut store = Store::open(db)?;
        let data_dir = db.parent().map(Path::to_path_buf).unwrap_or_default();
        let dataset = first_run(&mut store, &data_dir)?;
        let mut default_run = default_run;
        if default_run.dataset.as_os_str().is_empty() {
            default_run.dataset = dataset;
            default_run.env = crate::environment::Environment::parse("numeric")?;
        }
        // The playbook the run form names, if the database has it, else the first by name.
        let names = store.playbook_names()?;
        let first_playbook = if names.contains(&default_run.playbook) {
            default_run.playbook.clone()
        } else {
            names.first().cloned().unwrap_or_default()
        };
        if default_run.playbook.is_empty() || default_run.playbook == "default" {
            default_run.playbook = first_playbook.clone();
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let model = runtime.block_on(model_label(&source));
        let mut state = State::new(label.to_string(), model, default_run);
        state.no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        state.light_background = state::light_background(
            std::env::var("ACE_THEME").ok().as_deref(),
            std::env::var("COLORFGBG").ok().as_deref(),
        );
        let (tx, rx) = unbounded_channel::<Action>();
        let runner = Runner {
            store: shared(store),
            tx: tx.clone(),
            source,
            controls: None,
            playbook: Arc::new(Mutex::new(first_playbook)),
            seen: Arc::new(Mutex::new(None)),
        };
        let mut wb = Workbench {
            state,
            runner,
            rx,
            tx,
            ticks: 0,
            runtime,
        };
        wb.effect(Effect::Refresh);
        Ok(wb)
    }

    /// A sender for actions from outside (terminal input, timers).
    pub fn sender(&self) -> UnboundedSender<Action> {
        self.tx.clone()
    }

    fn effect(&mut self, effect: Effect) {
        let _entered = self.runtime.enter();
        self.runner.run_effect(effect);
    }

    /// Handles one action: `update`, then its effects. Every second tick also looks for changes
    /// other processes made to the store.
    pub fn handle(&mut self, action: Action) {
        if matches!(action, Action::Tick) {
            self.ticks += 1;
            if self.ticks.is_multiple_of(2) {
                let _entered = self.runtime.enter();
                self.runner.reload(false);
            }
        }
        for effect in update::update(&mut self.state, action) {
            self.effect(effect);
        }
    }

    /// A key press, as from the terminal.
    pub fn press(&mut self, key: ratatui::crossterm::event::KeyEvent) {
        self.handle(Action::Key(key));
    }

    /// Waits up to `timeout` for an action, then handles it and every other one already waiting.
    /// Returns false if none came (a tick is handled instead) or the channel closed.
    pub fn pump(&mut self, timeout: Duration) -> bool {
        let first = self
            .runtime
            .block_on(async { tokio::time::timeout(timeout, self.rx.recv()).await });
        let mut actions = match first {
            Ok(Some(a)) => vec![a],
            Ok(None) => return false,
            Err(_) => {
                self.handle(Action::Tick);
                return false;
            }
        };
        while let Ok(a) = self.rx.try_recv() {
            actions.push(a);
        }
        for action in actions {
            self.handle(action);
        }
        true
    }

    /// Handles actions until `done` holds for the state or `timeout` passes; says which.
    pub fn wait_until(&mut self, timeout: Duration, done: impl Fn(&State) -> bool) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while !done(&self.state) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            self.pump(left.min(Duration::from_millis(200)));
        }
        true
    }
}

impl Drop for Workbench {
    fn drop(&mut self) {
        if let Some(c) = &self.runner.controls {
            let _ = c.send(Control::Cancel);
        }
    }
}

/// Opens the workbench on `db` until the person quits.
pub fn run(db: &Path, source: ModelSource, default_run: RunConfig, label: &str) -> Result<()> {
    let mut wb = Workbench::open(db, source, default_run, label)?;
    let mut terminal = ratatui::init();
    let _ = ratatui::crossterm::execute!(
        std::io::stdout(),
        ratatui::crossterm::event::EnableMouseCapture
    );
    // Input: a reader thread, so the loop never blocks on the terminal.
    let input_tx = wb.sender();
    std::thread::spawn(move || {
        while let Ok(ev) = event::read() {
            let action = match ev {
                TermEvent::Key(k) => Action::Key(k),
                TermEvent::Mouse(m) if m.kind == MouseEventKind::ScrollUp => Action::ScrollUp,
                TermEvent::Mouse(m) if m.kind == MouseEventKind::ScrollDown => Action::ScrollDown,
                TermEvent::Resize(..) => Action::Tick,
                _ => continue,
            };
            if input_tx.send(action).is_err() {
                break;
            }
        }
    });
    // Another process (a headless `ace train`) may queue proposals: look every second.
    let poll_tx = wb.sender();
    wb.runtime.spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if poll_tx.send(Action::Tick).is_err() {
                break;
            }
        }
    });
    let result = (|| -> Result<()> {
        while !wb.state.quit {
            terminal
                .draw(|f| ui::render(&wb.state, f))
                .context("drawing")?;
            wb.pump(Duration::from_millis(500));
        }
        Ok(())
    })();
    let _ = ratatui::crossterm::execute!(
        std::io::stdout(),
        ratatui::crossterm::event::DisableMouseCapture
    );
    ratatui::restore();
    drop(wb);
    result
}
