//! Numbered up/down schema scripts; the schema version is SQLite's `PRAGMA user_version`.

use rusqlite::{Connection, TransactionBehavior};

use super::{StoreError, classify};

/// A step of a down migration written in Rust (run inside the migration's transaction).
pub type Hook = fn(&Connection) -> Result<(), StoreError>;

pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub up: &'static str,
    pub down: &'static str,
    /// What the down script cannot do in SQL, run first in the same transaction.
    pub before_down: Option<Hook>,
}

/// All migrations, in order. Version N is reached by running `up` scripts 1..=N.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "playbooks, sections, bullets",
        up: include_str!("migrations/0001_playbooks.up.sql"),
        down: include_str!("migrations/0001_playbooks.down.sql"),
        before_down: None,
    },
    Migration {
        version: 2,
        name: "revisions and their ops",
        up: include_str!("migrations/0002_revisions.up.sql"),
        down: include_str!("migrations/0002_revisions.down.sql"),
        before_down: None,
    },
    Migration {
        version: 3,
        name: "runs, transcripts and the pending-delta queue",
        up: include_str!("migrations/0003_runs_queue.up.sql"),
        down: include_str!("migrations/0003_runs_queue.down.sql"),
        before_down: None,
    },
    Migration {
        version: 4,
        name: "removable sections",
        up: include_str!("migrations/0004_section_status.up.sql"),
        down: include_str!("migrations/0004_section_status.down.sql"),
        before_down: None,
    },
    Migration {
        version: 5,
        name: "budgets, token and embedding caches, shown bullets, prompts by reference",
        up: include_str!("migrations/0005_refine.up.sql"),
        down: include_str!("migrations/0005_refine.down.sql"),
        before_down: None,
    },
    Migration {
        version: 6,
        name: "what each revision's batch said (a reused batch id is refused)",
        up: include_str!("migrations/0006_trust.up.sql"),
        down: include_str!("migrations/0006_trust.down.sql"),
        before_down: None,
    },
    Migration {
        version: 7,
        name: "agents' traces waiting to be learned from, and what agents may change",
        up: include_str!("migrations/0007_agents.up.sql"),
        down: include_str!("migrations/0007_agents.down.sql"),
        before_down: None,
    },
    Migration {
        version: 8,
        name: "trials of proposals and the answers they cached",
        up: include_str!("migrations/0008_trials.up.sql"),
        down: include_str!("migrations/0008_trials.down.sql"),
        before_down: None,
    },
    Migration {
        version: 9,
        name: "prompts by template and reference, changes as patches",
        up: include_str!("migrations/0009_compact.up.sql"),
        down: include_str!("migrations/0009_compact.down.sql"),
        before_down: Some(super::transcripts::prompts_to_version_8),
    },
    Migration {
        version: 10,
        name: "texts in arrival order, states and reflections by what differs",
        up: include_str!("migrations/0010_lean.up.sql"),
        down: include_str!("migrations/0010_lean.down.sql"),
        before_down: None,
    },
];

/// The schema version this binary writes and understands.
pub const LATEST_VERSION: u32 = MIGRATIONS[MIGRATIONS.len() - 1].version;

pub fn schema_version(conn: &Connection) -> Result<u32, StoreError> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(classify)
}

/// Moves the schema to `target`, up or down, one migration per transaction. Returns the versions
/// passed through (e.g. `[1, 2]` going up from 0, `[2]` going down from 2 to 1). Each step re-reads the
/// version inside its own write transaction, so two processes opening a new database at once never run
/// the same step twice.
pub fn migrate_to(conn: &mut Connection, target: u32) -> Result<Vec<u32>, StoreError> {
    if target > LATEST_VERSION {
        return Err(StoreError::Migration(format!(
            "version {target} does not exist; this binary knows versions 0 to {LATEST_VERSION}"
        )));
    }
    let mut done = Vec::new();
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(classify)?;
        let version = schema_version(&tx)?;
        if version > LATEST_VERSION {
            return Err(StoreError::TooNew {
                found: version,
                supported: LATEST_VERSION,
            });
        }
        let step = if target > version {
            MIGRATIONS
                .iter()
                .find(|m| m.version == version + 1)
                .map(|m| (m.up, m.version, m.name, m.version, None))
        } else if target < version {
            MIGRATIONS
                .iter()
                .find(|m| m.version == version)
                .map(|m| (m.down, m.version - 1, m.name, m.version, m.before_down))
        } else {
            None
        };
        let Some((sql, new_version, name, passed, before)) = step else {
            tx.commit().map_err(classify)?;
            return Ok(done);
        };
        if let Some(before) = before {
            before(&tx)
                .map_err(|e| StoreError::Migration(format!("migration '{name}' failed: {e}")))?;
        }
        tx.execute_batch(sql)
            .map_err(|e| StoreError::Migration(format!("migration '{name}' failed: {e}")))?;
        tx.pragma_update(None, "user_version", new_version)
            .map_err(classify)?;
        tx.commit().map_err(classify)?;
        done.push(passed);
    }
}
