//! The workbench around `update` and `render`: the state, the effects runner and the action
//! channel on their own tokio runtime ([`Workbench`], which tests drive without a terminal), and
//! the terminal loop ([`run`]): input from a reader thread, a frame per burst of actions.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use ratatui::crossterm::event::{self, Event as TermEvent, MouseEventKind};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::action::{Action, Effect};
use super::runner::Runner;
use super::state::{self, State};
use super::{ModelSource, first_run, model_label, render, update};
use crate::adaptation::{Control, RunConfig};
use crate::shared::shared;
use crate::store::Store;
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
                TermEvent::Mouse(m) if m.kind == MouseEventKind::Down(event::MouseButton::Left) => {
                    let (width, height) = ratatui::crossterm::terminal::size().unwrap_or((80, 24));
                    Action::Click {
                        x: m.column,
                        y: m.row,
                        width,
                        height,
                    }
                }
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
                .draw(|f| render::render(&wb.state, f))
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
