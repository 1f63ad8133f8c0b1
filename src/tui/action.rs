//! What changes the state ([`Action`]: keys and background reports) and what `update` asks the
//! effects runner to do ([`Effect`]: store jobs, runs, controls). Effects carry no clock, user name
//! or file check: the runner adds those where it runs them, and answers with actions.

use ratatui::crossterm::event::KeyEvent;

use super::state::{Snapshot, Unfinished};
use crate::adaptation::{Control, Event, RunConfig};
use crate::approval::Decision;
use crate::delta::DeltaOp;
use crate::playbook::Playbook;
use crate::store::{BulletStory, RevisionDetail};

pub enum Action {
    Key(KeyEvent),
    ScrollUp,
    ScrollDown,
    Tick,
    /// A left click at a cell, with the screen's size (to find what is there as the frame drew it).
    Click {
        x: u16,
        y: u16,
        width: u16,
        height: u16,
    },
    Loaded(Box<Snapshot>),
    RevisionLoaded(Box<RevisionDetail>),
    StoryLoaded(Box<BulletStory>),
    PlaybookAt(i64, Box<Playbook>),
    Run(Box<Event>),
    Ledger {
        tokens: u64,
        cost_usd: f64,
        /// The run's cost limit, if it has one.
        max_usd: Option<f64>,
    },
    /// Runs that did not finish, newest first (answer to `LoadUnfinishedRuns`).
    UnfinishedRuns(Vec<Unfinished>),
    /// Every run, newest first, with totals (answer to `LoadRuns`).
    Runs(Vec<super::state::RunRow>),
    /// Two states of the playbook compared (answer to `Compare`): a title and the changes.
    Compared(String, Vec<crate::delta::Change>),
    /// One run's summary (answer to `LoadRunSummary`).
    RunSummaryLoaded(Box<super::state::RunDetail>),
    /// The run form's settings are usable (its files exist); the run is starting.
    RunAccepted,
    /// The run form names something the run cannot use: the field (a form key) and why.
    RunRefused {
        field: Option<&'static str>,
        message: String,
    },
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
    /// A trial ended (stored with its proposal): reload to show it.
    TrialDone,
    /// A bullet's leave-one-out impact (answer to `Impact`).
    ImpactFound(String, Box<crate::adaptation::trial::TrialReport>),
}

/// A change a person made by hand, as ops. The runner makes it a batch: a fresh id from `what`
/// and the clock, the person's name as author, source `human`.
#[derive(Debug, Clone, PartialEq)]
pub struct HandEdit {
    /// What kind of edit (`add`, `edit`, `section-move`, …): part of the batch id.
    pub what: &'static str,
    pub reason: String,
    pub ops: Vec<DeltaOp>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Refresh,
    /// Revert the newest hand edit of the open playbook not reverted yet.
    UndoLastEdit,
    /// Rename, copy or (soft) delete a playbook.
    ManagePlaybook(Manage),
    /// The playbook after revision `a` against revision `b` (or the playbook now).
    Compare {
        a: i64,
        b: Option<i64>,
    },
    /// Put text on the clipboard of the terminal (OSC 52: works over ssh and in tmux).
    Copy(String),
    LoadRevision(i64),
    LoadStory(String),
    /// A bullet's leave-one-out impact on samples of its playbook's last run, in the background.
    Impact(String),
    /// Try a queued proposal (all of it, or its op `op`, from 1) on samples, in the background.
    Trial {
        batch: i64,
        op: Option<usize>,
    },
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
    Apply(HandEdit),
    /// Checks the run's files, then starts it (answers `RunAccepted` or `RunRefused`).
    StartRun(Box<RunConfig>),
    /// Shows another playbook (loads it and its revisions).
    OpenPlaybook(String),
    /// Lists the runs that did not finish (for `R`).
    LoadUnfinishedRuns,
    /// Every run of the database, with totals (the runs list; reloaded while it is open).
    LoadRuns,
    LoadRunSummary(String),
    /// Resumes a run with its stored configuration (`ace train --resume`).
    ResumeRun {
        run: String,
        playbook: String,
    },
    Control(Control),
}

/// What `P`'s list does to a playbook.
#[derive(Debug, Clone, PartialEq)]
pub enum Manage {
    Rename { name: String, new_name: String },
    Copy { name: String, new_name: String },
    Delete { name: String },
}
