//! The workbench's one state struct, the actions that change it and the effects it asks for.

use std::collections::VecDeque;

use ratatui::crossterm::event::KeyEvent;
use ratatui_textarea::TextArea;

use crate::adaptation::RunRecord;
use crate::adaptation::{Control, Event, RunConfig};
use crate::approval::{Decision, PendingBatch};
use crate::delta::DeltaBatch;
use crate::playbook::Playbook;
use crate::store::{Revision, RevisionDetail};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Sections,
    Bullets,
    Run,
    Queue,
    Revisions,
}

impl Pane {
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

/// What a confirmed action does.
#[derive(Debug, Clone, PartialEq)]
pub enum Confirmed {
    Quit,
    Revert { revision: i64, force: bool },
    DecideAll { batch: i64, approve: bool },
    RemoveBullet(String),
    RemoveSection(String),
    CancelRun,
}

/// What a one-line input is for.
#[derive(Debug, Clone, PartialEq)]
pub enum InputFor {
    Filter,
    RejectReason { batch: i64, op: usize },
    AddBullet { section: String },
    EditBullet { id: String },
    RenameSection { section: String },
}

impl InputFor {
    /// Bullet content may span lines (code snippets): Alt-Enter or Ctrl-j starts a new one.
    pub fn multiline(&self) -> bool {
        match self {
            InputFor::EditBullet { .. } => true,
            // with no section the input names a new section
            InputFor::AddBullet { section } => !section.is_empty(),
            _ => false,
        }
    }
}

/// A run that did not finish, as the resume picker lists it.
#[derive(Debug, Clone)]
pub struct Unfinished {
    pub run: RunRecord,
    /// Another process is driving it right now (it holds the run's lock).
    pub live_elsewhere: bool,
}

pub enum Popup {
    /// The key list, scrolled down by `scroll` lines.
    Help {
        scroll: u16,
    },
    Confirm {
        message: String,
        action: Confirmed,
    },
    /// Editing a queued op as JSON (Ctrl-s saves and approves it).
    EditOp {
        batch: i64,
        op: usize,
        editor: TextArea<'static>,
    },
    Input {
        purpose: InputFor,
        title: String,
        editor: TextArea<'static>,
    },
    /// The form that starts a run: one line per field.
    RunForm(RunForm),
    /// Picking the playbook to show (j/k, Enter).
    PickPlaybook {
        names: Vec<String>,
        sel: usize,
    },
    /// Picking an unfinished run to resume (j/k, Enter).
    ResumeRun {
        runs: Vec<Unfinished>,
        sel: usize,
    },
    /// Picking the section a bullet moves to (j/k, Enter).
    MoveTo {
        bullet: String,
        sections: Vec<String>,
        sel: usize,
    },
}

/// One field of the run form.
pub struct FormField {
    /// The [`parse_run_fields`](super::update::parse_run_fields) key (`dataset`, `epochs`, …).
    pub key: &'static str,
    pub label: &'static str,
    pub hint: &'static str,
    pub editor: TextArea<'static>,
}

impl FormField {
    pub fn value(&self) -> String {
        self.editor.lines().join(" ").trim().to_string()
    }
}

/// The start-a-run form: Tab / arrows move between fields, Enter starts, Esc cancels. A field the
/// run cannot use keeps the form open with the reason and the cursor on that field.
pub struct RunForm {
    pub fields: Vec<FormField>,
    pub focus: usize,
    pub error: Option<String>,
}

/// What the run pane shows.
#[derive(Debug, Clone, Default)]
pub struct RunView {
    pub active: bool,
    pub run: Option<String>,
    pub status: String,
    pub feedback_mode: String,
    pub epoch: u32,
    pub done: usize,
    pub total: usize,
    pub question: String,
    pub answer: String,
    pub verdict: String,
    pub insight: String,
    /// (epoch, split, accuracy 0..1)
    pub accuracy: Vec<(u32, String, f64)>,
    /// First-attempt (correct, seen) in the epoch so far, from the last finished batch.
    pub so_far: Option<(u64, u64)>,
    pub waiting_on: Option<i64>,
    pub log: VecDeque<String>,
    pub tokens: u64,
    pub cost_usd: f64,
}

/// Everything loaded from the store at once (on start and after every change).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub playbooks: Vec<String>,
    pub playbook: Playbook,
    pub queue: Vec<PendingBatch>,
    pub revisions: Vec<Revision>,
}

pub struct State {
    pub db_label: String,
    /// Which model is configured, or how to configure one.
    pub model_label: String,
    pub playbooks: Vec<String>,
    pub playbook: Playbook,
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
    pub story: Option<crate::store::BulletStory>,
    pub queue: Vec<PendingBatch>,
    pub queue_sel: usize,
    pub op_sel: usize,
    pub revisions: Vec<Revision>,
    pub revision_sel: usize,
    pub revision_detail: Option<RevisionDetail>,
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

pub enum Action {
    Key(KeyEvent),
    ScrollUp,
    ScrollDown,
    Tick,
    Loaded(Box<Snapshot>),
    RevisionLoaded(Box<RevisionDetail>),
    StoryLoaded(Box<crate::store::BulletStory>),
    PlaybookAt(i64, Box<Playbook>),
    Run(Box<Event>),
    Ledger {
        tokens: u64,
        cost_usd: f64,
    },
    /// Runs that did not finish, newest first (answer to `LoadUnfinishedRuns`).
    UnfinishedRuns(Vec<Unfinished>),
    Decided {
        batch: i64,
        revision: Option<i64>,
        closed: bool,
    },
    Reverted {
        revision: i64,
        new: i64,
    },
    /// A revert refused because later revisions changed the same bullets.
    RevertConflict {
        revision: i64,
        detail: String,
    },
    Failed(String),
    Info(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Refresh,
    LoadRevision(i64),
    LoadStory(String),
    LoadPlaybookAt(i64),
    Decide {
        batch: i64,
        decisions: Vec<(usize, Decision)>,
    },
    DecideAll {
        batch: i64,
        approve: bool,
    },
    Revert {
        revision: i64,
        force: bool,
    },
    Apply(DeltaBatch),
    StartRun(Box<RunConfig>),
    /// Shows another playbook (loads it and its revisions).
    OpenPlaybook(String),
    /// Lists the runs that did not finish (for `R`).
    LoadUnfinishedRuns,
    /// Resumes a run with its stored configuration (`ace train --resume`).
    ResumeRun {
        run: String,
        playbook: String,
    },
    Control(Control),
}

impl State {
    pub fn new(db_label: String, model_label: String, default_run: RunConfig) -> Self {
        State {
            db_label,
            model_label,
            playbooks: Vec::new(),
            playbook: Playbook::default(),
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
            queue_sel: 0,
            op_sel: 0,
            revisions: Vec::new(),
            revision_sel: 0,
            revision_detail: None,
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
