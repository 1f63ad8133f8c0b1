//! Numbered up/down schema scripts; the schema version is SQLite's `PRAGMA user_version`.

use rusqlite::{Connection, TransactionBehavior};

use super::{StoreError, classify};

pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub up: &'static str,
    pub down: &'static str,
}

/// All migrations, in order. Version N is reached by running `up` scripts 1..=N.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "playbooks, sections, bullets",
        up: include_str!("migrations/0001_playbooks.up.sql"),
        down: include_str!("migrations/0001_playbooks.down.sql"),
    },
    Migration {
        version: 2,
        name: "revisions and their ops",
        up: include_str!("migrations/0002_revisions.up.sql"),
        down: include_str!("migrations/0002_revisions.down.sql"),
    },
    Migration {
        version: 3,
        name: "runs, transcripts and the pending-delta queue",
        up: include_str!("migrations/0003_runs_queue.up.sql"),
        down: include_str!("migrations/0003_runs_queue.down.sql"),
    },
];

/// The schema version this binary writes and understands.
pub const LATEST_VERSION: u32 = MIGRATIONS[MIGRATIONS.len() - 1].version;

pub fn schema_version(conn: &Connection) -> Result<u32, StoreError> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(classify)
}

/// Moves the schema to `target`, up or down, one migration per transaction. Returns the versions
/// passed through (e.g. `[1, 2]` going up from 0, `[2]` going down from 2 to 1).
pub fn migrate_to(conn: &mut Connection, target: u32) -> Result<Vec<u32>, StoreError> {
    let current = schema_version(conn)?;
    if target > LATEST_VERSION {
        return Err(StoreError::Migration(format!(
            "version {target} does not exist; this binary knows versions 0 to {LATEST_VERSION}"
        )));
    }
    if current > LATEST_VERSION {
        return Err(StoreError::TooNew {
            found: current,
            supported: LATEST_VERSION,
        });
    }
    let mut done = Vec::new();
    if target > current {
        for m in MIGRATIONS
            .iter()
            .filter(|m| m.version > current && m.version <= target)
        {
            run(conn, m.up, m.version, m.name)?;
            done.push(m.version);
        }
    } else {
        for m in MIGRATIONS
            .iter()
            .rev()
            .filter(|m| m.version <= current && m.version > target)
        {
            run(conn, m.down, m.version - 1, m.name)?;
            done.push(m.version);
        }
    }
    Ok(done)
}

fn run(conn: &mut Connection, sql: &str, new_version: u32, name: &str) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(classify)?;
    tx.execute_batch(sql)
        .map_err(|e| StoreError::Migration(format!("migration '{name}' failed: {e}")))?;
    tx.pragma_update(None, "user_version", new_version)
        .map_err(classify)?;
    tx.commit().map_err(classify)
}
