//! The workbench's one state: what every pane shows, which one has the focus, the popup on top.
//! Changed only by `update`; read by the renderers.

use std::collections::{HashMap, VecDeque};

use super::keymap::Layer;
use super::popups::Popup;
use crate::adaptation::{RunConfig, RunRecord, RunStatus, Split};
use crate::approval::PendingBatch;
use crate::playbook::Playbook;
use crate::refine::SizeEffect;
use crate::store::{BulletStory, Revision, RevisionDetail};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Sections,
    Bullets,
    Run,
    Queue,
    Revisions,
}

impl Pane {
    /// The key layers of the pane, its own first: what a key means there, and its footer.
    pub fn layers(self) -> &'static [Layer] {
        match self {
            Pane::Sections => &[Layer::Sections, Layer::Playbook, Layer::Global],
            Pane::Bullets => &[Layer::Bullets, Layer::Playbook, Layer::Global],
            Pane::Run => &[Layer::Run, Layer::Global],
            Pane::Queue => &[Layer::Queue, Layer::Global],
            Pane::Revisions => &[Layer::Revisions, Layer::Global],
        }
    }

    pub const ORDER: [Pane; 5] = [
        Pane::Sections,
        Pane::Bullets,
        Pane::Run,
        Pane::Queue,
        Pane::Revisions,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    Order,
    Id,
    Helpful,
    Harmful,
    Recent,
}

/// A run as the runs list shows it: its record, totals, and whether a process drives it now.
#[derive(Debug, Clone)]
pub struct RunRow {
    pub run: RunRecord,
    pub totals: crate::adaptation::RunTotals,
    pub live: bool,
}

/// A run opened from the runs list: its summary and its latest samples.
#[derive(Debug, Clone)]
pub struct RunDetail {
    pub summary: crate::adaptation::RunSummary,
    /// The latest samples (newest last), as its log of verdicts.
    pub samples: Vec<crate::adaptation::SampleRecord>,
}

/// A run that did not finish, as the resume picker lists it.
#[derive(Debug, Clone)]
pub struct Unfinished {
    pub run: RunRecord,
    /// Another process is driving it right now (it holds the run's lock).
    pub live_elsewhere: bool,
}

/// Where the run this workbench drives stands, as the Run pane says it.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Phase {
    /// No run started in this session.
    #[default]
    Idle,
    /// Asked for; the run has not reported yet.
    Starting,
    Running,
    Resumed,
    Paused,
    /// Waiting for decisions on this queued batch.
    Waiting(i64),
    /// This batch was just decided here; the run goes on.
    Decided(i64),
    /// The run stopped with an error (its `Finished` follows).
    Failed(String),
    /// The run could not start.
    NotStarted(String),
    Ended(RunStatus),
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Phase::Idle => Ok(()),
            Phase::Starting => f.write_str("starting"),
            Phase::Running => f.write_str("running"),
            Phase::Resumed => f.write_str("resumed"),
            Phase::Paused => f.write_str("paused"),
            Phase::Waiting(batch) => write!(f, "waiting for decisions on proposal #{batch}"),
            Phase::Decided(batch) => write!(f, "proposal #{batch} decided; resuming"),
            Phase::Failed(error) => write!(f, "failed: {error}"),
            Phase::NotStarted(error) => write!(f, "not started: {error}"),
            Phase::Ended(status) => write!(f, "{status}"),
        }
    }
}

/// One accuracy figure of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub epoch: u32,
    pub split: Split,
    /// For a validation: after which batch.
    pub after_batch: Option<u64>,
    /// 0..1
    pub accuracy: f64,
}

impl Score {
    /// How the pane names it: `train e1`, `val@12 e2`.
    pub fn label(&self) -> String {
        match self.after_batch {
            Some(step) => format!("{}@{step} e{}", self.split, self.epoch),
            None => format!("{} e{}", self.split, self.epoch),
        }
    }
}

/// What the run pane shows.
#[derive(Debug, Clone, Default)]
pub struct RunView {
    pub active: bool,
    pub run: Option<String>,
    pub phase: Phase,
    pub feedback_mode: String,
    pub epoch: u32,
    pub done: usize,
    pub total: usize,
    /// The samples in flight, one row each (in the order they started).
    pub slots: Vec<SlotView>,
    /// The sample finished last, shown in detail.
    pub last: Option<SlotView>,
    /// Accuracy figures as they came: per epoch, and per validation.
    pub accuracy: Vec<Score>,
    /// First-attempt (correct, seen) in the epoch so far, from the last finished batch.
    pub so_far: Option<(u64, u64)>,
    pub waiting_on: Option<i64>,
    pub log: VecDeque<String>,
    pub tokens: u64,
    pub cost_usd: f64,
    /// The run's cost limit (spend is shown against it).
    pub max_usd: Option<f64>,
}

/// One sample of a run as its events arrive (each event names its sample, so concurrent samples
/// never mix).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlotView {
    pub key: String,
    pub question: String,
    pub answer: String,
    pub verdict: String,
    pub insight: String,
    pub correct: Option<bool>,
}

/// Everything loaded from the store at once (on start and after every change).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub playbooks: Vec<String>,
    pub playbook: Playbook,
    /// The playbook's size in tokens and its budget.
    pub tokens: u64,
    pub token_budget: Option<u64>,
    pub queue: Vec<PendingBatch>,
    /// What approving each pending batch of the shown playbook would do to its size.
    pub effects: HashMap<i64, SizeEffect>,
    /// Trials of the queued batches (`t`, `ace queue trial`), oldest first.
    pub trials: HashMap<i64, Vec<crate::store::StoredTrial>>,
    pub revisions: Vec<Revision>,
}

pub struct State {
    pub db_label: String,
    /// Which model is configured, or how to configure one.
    pub model_label: String,
    pub playbooks: Vec<String>,
    pub playbook: Playbook,
    /// The current playbook's size in tokens and its budget.
    pub tokens: u64,
    pub token_budget: Option<u64>,
    pub focus: Pane,
    pub section: usize,
    pub bullet: usize,
    pub filter: String,
    pub sort: Sort,
    /// Indices into `playbook.bullets` of what the bullets pane lists (active, in the section, filtered,
    /// sorted); recomputed only when one of those changes, so drawing 100k bullets stays cheap.
    pub visible: Vec<usize>,
    /// Per section of the shown playbook: (active bullets, harmful ones); and all active bullets.
    /// Counted once per load, not per frame.
    pub section_stats: Vec<(usize, usize)>,
    pub active_count: usize,
    pub show_detail: bool,
    /// The selected bullet's story, loaded when the detail view opens.
    pub story: Option<BulletStory>,
    pub queue: Vec<PendingBatch>,
    /// What approving each pending batch of the shown playbook would do to its size.
    pub effects: HashMap<i64, SizeEffect>,
    pub trials: HashMap<i64, Vec<crate::store::StoredTrial>>,
    /// The last bullet impact measured (`I`): the bullet and its leave-one-out trial.
    pub impact: Option<(String, crate::adaptation::trial::TrialReport)>,
    pub queue_sel: usize,
    pub op_sel: usize,
    /// In the Queue pane, j/k move over the selected batch's ops (else over the batches).
    pub queue_ops: bool,
    pub revisions: Vec<Revision>,
    pub revision_sel: usize,
    /// Ticks counted while a live list is open (it reloads every few).
    pub ticks: u32,
    pub revision_detail: Option<RevisionDetail>,
    /// The revision marked for a comparison (`c`, then `c` on another).
    pub revision_mark: Option<i64>,
    /// A comparison shown in place of a revision's diff: its title and changes.
    pub comparison: Option<(String, Vec<crate::delta::Change>)>,
    /// `ace playbook show --at` in the workbench: the playbook as of the selected revision.
    pub viewing_at: Option<(i64, Playbook)>,
    pub run: RunView,
    pub popup: Option<Popup>,
    pub message: String,
    /// The revision the last queue decision applied (what `u` reverts).
    pub last_applied: Option<i64>,
    pub default_run: RunConfig,
    pub quit: bool,
    pub no_color: bool,
    /// The section to select after the next load (one just moved or renamed).
    pub follow_section: Option<String>,
    /// Draw for a light background (see [`light_background`]).
    pub light_background: bool,
    /// A playbook asked for (`OpenPlaybook`) and not loaded yet.
    pub opening: Option<String>,
}

impl State {
    pub fn new(db_label: String, model_label: String, default_run: RunConfig) -> Self {
        State {
            db_label,
            model_label,
            playbooks: Vec::new(),
            playbook: Playbook::default(),
            tokens: 0,
            token_budget: None,
            focus: Pane::Sections,
            section: 0,
            bullet: 0,
            filter: String::new(),
            sort: Sort::Order,
            visible: Vec::new(),
            section_stats: Vec::new(),
            active_count: 0,
            show_detail: false,
            story: None,
            queue: Vec::new(),
            effects: HashMap::new(),
            trials: HashMap::new(),
            impact: None,
            queue_sel: 0,
            op_sel: 0,
            queue_ops: false,
            revisions: Vec::new(),
            revision_sel: 0,
            ticks: 0,
            revision_detail: None,
            revision_mark: None,
            comparison: None,
            viewing_at: None,
            run: RunView::default(),
            popup: None,
            message: String::new(),
            last_applied: None,
            default_run,
            quit: false,
            no_color: false,
            follow_section: None,
            light_background: false,
            opening: None,
        }
    }

    /// The playbook the panes show: the current one, or the one as of a revision being viewed.
    pub fn shown(&self) -> &Playbook {
        self.viewing_at.as_ref().map_or(&self.playbook, |(_, p)| p)
    }

    pub fn section_name(&self) -> Option<&str> {
        self.shown()
            .sections
            .get(self.section)
            .map(|s| s.name.as_str())
    }

    pub fn selected_bullet(&self) -> Option<&crate::playbook::Bullet> {
        self.visible
            .get(self.bullet)
            .and_then(|i| self.shown().bullets.get(*i))
    }

    pub fn selected_batch(&self) -> Option<&PendingBatch> {
        self.queue.get(self.queue_sel)
    }

    /// Recounts bullets per section (after the shown playbook changed).
    pub fn recount(&mut self) {
        let pb = self.shown();
        let index: std::collections::HashMap<&str, usize> = pb
            .sections
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        let mut stats = vec![(0, 0); pb.sections.len()];
        let mut active = 0;
        for b in pb.active_bullets() {
            active += 1;
            if let Some(i) = index.get(b.section.as_str()) {
                stats[*i].0 += 1;
                if b.harmful > b.helpful {
                    stats[*i].1 += 1;
                }
            }
        }
        self.section_stats = stats;
        self.active_count = active;
    }

    /// Recomputes `visible` from the section, filter and sort.
    pub fn refilter(&mut self) {
        let pb = self.shown();
        let section = pb.sections.get(self.section).map(|s| s.name.clone());
        let needle = self.filter.to_lowercase();
        let mut v: Vec<usize> = pb
            .bullets
            .iter()
            .enumerate()
            .filter(|(_, b)| b.is_active())
            .filter(|(_, b)| {
                if needle.is_empty() {
                    section.as_deref() == Some(b.section.as_str())
                } else {
                    // a filter searches the whole playbook
                    b.content.to_lowercase().contains(&needle) || b.id.contains(&needle)
                }
            })
            .map(|(i, _)| i)
            .collect();
        let bullets = &pb.bullets;
        match self.sort {
            Sort::Order => {}
            Sort::Id => v.sort_by(|a, b| bullets[*a].id.cmp(&bullets[*b].id)),
            Sort::Helpful => v.sort_by_key(|i| std::cmp::Reverse(bullets[*i].helpful)),
            Sort::Harmful => v.sort_by_key(|i| std::cmp::Reverse(bullets[*i].harmful)),
            Sort::Recent => v.sort_by(|a, b| bullets[*b].updated_at.cmp(&bullets[*a].updated_at)),
        }
        self.visible = v;
        self.bullet = self.bullet.min(self.visible.len().saturating_sub(1));
    }

    pub fn log(&mut self, line: impl Into<String>) {
        self.run.log.push_back(line.into());
        while self.run.log.len() > 200 {
            self.run.log.pop_front();
        }
    }

    /// The key layers in force: the popup's, else the focused pane's.
    pub fn key_layers(&self) -> &'static [Layer] {
        match &self.popup {
            Some(popup) => popup.layers(),
            None => self.focus.layers(),
        }
    }

    pub fn pending_count(&self) -> usize {
        self.queue.iter().filter(|b| b.is_pending()).count()
    }
}

/// Whether to draw for a light background: `ACE_THEME=light` or `dark` decides; otherwise the
/// terminal's `COLORFGBG` ("fg;bg", set by rxvt, Konsole and others) says so with a light background
/// colour (7 or 15). Only named ANSI colours are used, so the terminal's palette does the rest.
pub fn light_background(theme: Option<&str>, colorfgbg: Option<&str>) -> bool {
    match theme.map(str::trim) {
        Some(t) if t.eq_ignore_ascii_case("light") => true,
        Some(t) if t.eq_ignore_ascii_case("dark") => false,
        _ => colorfgbg
            .and_then(|v| v.rsplit(';').next())
            .is_some_and(|bg| matches!(bg.trim(), "7" | "15")),
    }
}
