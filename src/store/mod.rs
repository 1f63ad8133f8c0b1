//! The SQLite store: playbooks, revisions, the approval queue, runs, samples and transcripts. It
//! speaks the core's types and depends on the core, never the other way.
//!
//! Every change to a playbook goes through [`Store::apply`] (or [`Store::revert`], which restores
//! recorded states with the same writer): one `BEGIN IMMEDIATE` transaction in which the core's
//! rules (`delta::Applier`) check each op against the current state and `writer` writes it, and
//! one revision records each bullet's and section's state before and after.
//!
//! By job: `rows` (row mappers and lookups), `writer` (the rows under the rules, opening and closing
//! a revision), `apply` (write entry points), `revert`, `read` (playbooks, revisions, time travel),
//! `queue` (proposals and decisions), `runs` (runs, samples, metrics), `story` (a bullet's
//! history), `for_loop` (the loop's `RunStore`), `migrations`.

mod apply;
pub mod blobs;

/// `PRAGMA application_id` of an ace database ("ACEw"): another application's SQLite file is
/// never taken for one.
pub const APPLICATION_ID: i32 = 0x4143_4577;

/// Creates the database file readable by its owner only (SQLite gives its WAL and shared-memory
/// files the same mode), if it does not exist yet.
fn create_private(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Open {
            path: path.display().to_string(),
            detail: e.to_string(),
        }),
    }
}

/// `file:` URI of a path (percent-encoding what a URI reserves).
fn url_path(path: &Path) -> std::result::Result<String, String> {
    let absolute = std::path::absolute(path).map_err(|e| e.to_string())?;
    let text = absolute
        .to_str()
        .ok_or_else(|| "the path is not valid UTF-8".to_string())?;
    let mut out = String::from("file:");
    for b in text.bytes() {
        match b {
            b'?' | b'#' | b'%' | 0x80.. => out.push_str(&format!("%{b:02X}")),
            _ => out.push(char::from(b)),
        }
    }
    Ok(out)
}

/// The page cache of a connection, in KiB (reads of a large playbook come from it when repeated).
pub(crate) const CACHE_KIB: u32 = 32_768;
mod budget;
mod for_loop;
mod inbox;
pub mod migrations;
mod queue;
mod read;
mod revert;
mod rows;
mod runs;
mod story;
mod transcripts;
mod trials;
mod vectors;

pub use inbox::{AgentPolicy, InboxCounts, TraceOutcome};
pub use trials::StoredTrial;
mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

pub use migrations::{LATEST_VERSION, MIGRATIONS};
pub use read::{PlaybookSummary, Revision, RevisionDetail};
pub use runs::RunClaim;
pub use story::{BulletStory, CounterPoint, Exposure};

use crate::delta::DeltaError;

/// How long a writer waits for another writer's transaction before giving up.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {path}: {detail}")]
    Open { path: String, detail: String },
    #[error(
        "the database is not an ace database or is corrupt ({0}); restore it from a backup or point --db / ACE_DB elsewhere"
    )]
    Corrupt(String),
    #[error(
        "the database is locked by another writer and stayed locked past the busy timeout; try again when the other process has finished"
    )]
    Locked,
    #[error(
        "the database has schema version {found}, newer than this ace binary supports ({supported}); upgrade ace (it is never downgraded silently)"
    )]
    TooNew { found: u32, supported: u32 },
    #[error(
        "the database has schema version {found}; run `ace db migrate` to bring it to version {latest}"
    )]
    TooOld { found: u32, latest: u32 },
    #[error("{0}")]
    Migration(String),
    #[error("no playbook named '{name}' (playbooks: {available})")]
    UnknownPlaybook { name: String, available: String },
    #[error("a playbook named '{0}' already exists")]
    PlaybookExists(String),
    #[error("invalid playbook name '{0}': use 1 to 100 characters without line breaks")]
    InvalidName(String),
    #[error("no revision {0}")]
    UnknownRevision(i64),
    #[error("batch '{batch}' rejected, nothing was written: {error}")]
    Rejected { batch: String, error: DeltaError },
    #[error("cannot revert revision {revision}: {detail}")]
    RevertConflict { revision: i64, detail: String },
    #[error(
        "batch '{batch}' was applied before, as revision {revision}, with other operations; nothing was written (give this batch a new id)"
    )]
    BatchIdReused { batch: String, revision: i64 },
    #[error(
        "{path} is not an ace database: {detail}; nothing was changed (point --db or ACE_DB at an ace database, or at a new file)"
    )]
    Foreign { path: String, detail: String },
    #[error(
        "the database cannot be written here ({0}): its file or folder is read-only; commands that only read still work"
    )]
    ReadOnly(String),
    #[error("no queued batch {0}")]
    UnknownPending(i64),
    #[error(
        "approving queued batch {batch} would take playbook '{playbook}' over its token budget ({}); nothing was decided",
        effect.describe()
    )]
    OverBudget {
        batch: i64,
        playbook: String,
        effect: crate::refine::SizeEffect,
    },
    #[error("{0}")]
    Queue(String),
    /// Too much is waiting already (the trace inbox is full): try again later.
    #[error("{0}")]
    Full(String),
    #[error("no run '{0}'")]
    UnknownRun(String),
    #[error(
        "run {0} is being run by another process right now (it holds {1}); wait for it, or stop it first"
    )]
    RunBusy(String, String),
    #[error("no bullet {id} in the history of playbook '{playbook}'")]
    UnknownBullet { playbook: String, id: String },
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    #[error("stored JSON could not be read: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    JobLost(#[from] crate::shared::JobLost),
}

/// Maps SQLite errors a user can act on to clear variants.
pub(crate) fn classify(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Locked,
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            StoreError::Corrupt(e.to_string())
        }
        Some(ErrorCode::ReadOnly) => StoreError::ReadOnly(e.to_string()),
        _ => StoreError::Sqlite(e),
    }
}

impl StoreError {
    /// The file or its directory cannot be written (read-only media, permissions).
    pub fn is_unwritable(&self) -> bool {
        match self {
            StoreError::ReadOnly(_) => true,
            StoreError::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied)
            ),
            StoreError::Open { detail, .. } => {
                detail.contains("Permission denied")
                    || detail.contains("Read-only")
                    || detail.contains("readonly")
            }
            _ => false,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        classify(e)
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A connection to one database file.
pub struct Store {
    conn: Connection,
    path: Option<PathBuf>,
    /// Opened for reading only (a read-only file or directory): derived caches are not written.
    read_only: bool,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it to the latest schema.
    pub fn open(path: &Path) -> Result<Store> {
        let mut store = Self::open_unmigrated(path)?;
        retry_while_locked(|| store.ensure_latest())?;
        Ok(store)
    }

    /// Opens without touching the schema (for `ace db …`). Refuses a database newer than this binary.
    pub fn open_unmigrated(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                detail: format!("cannot create directory {}: {e}", dir.display()),
            })?;
        }
        create_private(path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
        let store = Store {
            conn,
            path: Some(path.to_path_buf()),
            read_only: false,
        };
        // Several processes opening a new file at once race to switch it to WAL and to read the
        // first WAL index; SQLite answers some of those races with SQLITE_BUSY without calling the
        // busy handler, so the opening steps are retried for up to the busy timeout.
        retry_while_locked(|| {
            store.configure()?;
            store.check_not_newer()
        })?;
        Ok(store)
    }

    /// Opens for a command that only reads: as [`Store::open`], else — when the file or its
    /// directory cannot be written — read-only (then the schema must be this binary's: nothing can
    /// migrate it).
    pub fn open_reading(path: &Path) -> Result<Store> {
        match Store::open(path) {
            Err(e) if e.is_unwritable() && path.exists() => Store::open_read_only(path),
            other => other,
        }
    }

    /// Opens read-only, writing nothing. A WAL database needs its shared-memory file; where that
    /// cannot be created (a read-only directory, where no writer can work either) the file is read
    /// as immutable.
    pub fn open_read_only(path: &Path) -> Result<Store> {
        let opened = Self::read_only_with(path, false).and_then(|s| {
            s.check_ours()?;
            Ok(s)
        });
        let store = match opened {
            Err(e) if e.is_unwritable() => Self::read_only_with(path, true)?,
            other => other?,
        };
        store
            .conn
            .busy_timeout(DEFAULT_BUSY_TIMEOUT)
            .map_err(classify)?;
        store.check_ours()?;
        store.check_not_newer()?;
        store.require_latest()?;
        store
            .conn
            .execute_batch("PRAGMA foreign_keys=ON; PRAGMA query_only=ON;")
            .map_err(classify)?;
        Ok(store)
    }

    fn read_only_with(path: &Path, immutable: bool) -> Result<Store> {
        let failed = |detail: String| StoreError::Open {
            path: path.display().to_string(),
            detail,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let mut uri = url_path(path).map_err(failed)?;
        if immutable {
            uri.push_str("?immutable=1");
        }
        let conn = Connection::open_with_flags(&uri, flags).map_err(|e| failed(e.to_string()))?;
        Ok(Store {
            conn,
            path: Some(path.to_path_buf()),
            read_only: true,
        })
    }

    /// A private in-memory database at the latest schema (tests, benchmarks).
    pub fn open_in_memory() -> Result<Store> {
        let conn = Connection::open_in_memory()?;
        let mut store = Store {
            conn,
            path: None,
            read_only: false,
        };
        store.configure()?;
        store.ensure_latest()?;
        Ok(store)
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Sets how long a writer waits for a lock held by another process.
    pub fn set_busy_timeout(&self, timeout: Duration) -> Result<()> {
        self.conn.busy_timeout(timeout).map_err(classify)
    }

    fn configure(&self) -> Result<()> {
        self.conn
            .busy_timeout(DEFAULT_BUSY_TIMEOUT)
            .map_err(classify)?;
        // before anything writes: another application's database is left exactly as it is
        let mark = self.check_ours()?;
        // journal_mode is the first statement that reads the file, so a non-database fails here.
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(classify)?;
        if mode != "wal" && mode != "memory" {
            return Err(StoreError::Open {
                path: self.describe(),
                detail: format!("cannot enable WAL (got {mode})"),
            });
        }
        // NORMAL in WAL mode: a commit survives a killed process; only power loss may drop the last ones.
        // A 32 MiB page cache keeps a 100k-bullet playbook off the read syscalls (mmap would too, but
        // counts the mapped file in RSS); a larger autocheckpoint batches the WAL copy-back and its fsync.
        self.conn
            .execute_batch(&format!(
                "PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-{CACHE_KIB}; \
                 PRAGMA wal_autocheckpoint=4000; PRAGMA temp_store=MEMORY;"
            ))
            .map_err(classify)?;
        if mark {
            self.conn
                .execute_batch(&format!("PRAGMA application_id={APPLICATION_ID}"))
                .map_err(classify)?;
        }
        Ok(())
    }

    /// Whether this is an ace database: marked as one, or (unmarked) empty or holding ace's tables
    /// from before the mark (both are marked: `true`). Anything else is refused untouched.
    fn check_ours(&self) -> Result<bool> {
        let (app, version, tables, playbooks): (i64, i64, i64, i64) = self
            .conn
            .query_row(
                "SELECT (SELECT application_id FROM pragma_application_id),
                        (SELECT user_version FROM pragma_user_version),
                        (SELECT count(*) FROM sqlite_schema),
                        (SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'playbooks')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .map_err(classify)?;
        if app == i64::from(APPLICATION_ID) {
            return Ok(false);
        }
        if app == 0 && (tables == 0 || (version > 0 && playbooks == 1)) {
            return Ok(true);
        }
        Err(StoreError::Foreign {
            path: self.describe(),
            detail: if app != 0 {
                format!("it is marked as another application's (application_id {app:#x})")
            } else {
                format!("it holds {tables} tables and schema objects that are not ace's")
            },
        })
    }

    fn describe(&self) -> String {
        self.path
            .as_ref()
            .map_or_else(|| ":memory:".into(), |p| p.display().to_string())
    }

    fn check_not_newer(&self) -> Result<()> {
        let found = migrations::schema_version(&self.conn)?;
        if found > LATEST_VERSION {
            return Err(StoreError::TooNew {
                found,
                supported: LATEST_VERSION,
            });
        }
        Ok(())
    }

    fn ensure_latest(&mut self) -> Result<()> {
        if migrations::schema_version(&self.conn)? < LATEST_VERSION {
            migrations::migrate_to(&mut self.conn, LATEST_VERSION)?;
        }
        Ok(())
    }

    pub fn schema_version(&self) -> Result<u32> {
        migrations::schema_version(&self.conn)
    }

    /// Moves the schema to `target` (see [`migrations::migrate_to`]).
    pub fn migrate_to(&mut self, target: u32) -> Result<Vec<u32>> {
        migrations::migrate_to(&mut self.conn, target)
    }

    /// Errors unless the schema is at the version this binary writes.
    fn require_latest(&self) -> Result<()> {
        let found = self.schema_version()?;
        match found.cmp(&LATEST_VERSION) {
            std::cmp::Ordering::Less => Err(StoreError::TooOld {
                found,
                latest: LATEST_VERSION,
            }),
            std::cmp::Ordering::Greater => Err(StoreError::TooNew {
                found,
                supported: LATEST_VERSION,
            }),
            std::cmp::Ordering::Equal => Ok(()),
        }
    }

    /// Raw access for tests and diagnostics (schema checks). Writes must go through `apply`.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// Runs `step` again while it fails with [`StoreError::Locked`], for up to [`DEFAULT_BUSY_TIMEOUT`],
/// with a short growing pause between tries.
fn retry_while_locked<T>(mut step: impl FnMut() -> Result<T>) -> Result<T> {
    let deadline = std::time::Instant::now() + DEFAULT_BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(2);
    loop {
        match step() {
            Err(StoreError::Locked) if std::time::Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// The current time as RFC 3339 UTC with milliseconds, from SQLite's clock.
pub(crate) fn now(conn: &Connection) -> Result<String> {
    conn.query_row("SELECT strftime('%Y-%m-%dT%H:%M:%fZ','now')", [], |r| {
        r.get(0)
    })
    .map_err(classify)
}

pub(crate) fn validate_playbook_name(name: &str) -> Result<()> {
    let n = name.chars().count();
    if n == 0 || n > 100 || name.trim() != name || name.chars().any(char::is_control) {
        return Err(StoreError::InvalidName(name.to_string()));
    }
    Ok(())
}
