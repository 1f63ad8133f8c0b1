//! The write entry points: apply a batch, create or import a playbook. Each is one `BEGIN
//! IMMEDIATE` transaction and at most one revision; what the ops mean is the core's
//! (`delta::Applier`), the rows it writes are `writer`'s.

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};

use super::writer;
use super::{Result, Store, StoreError, classify, now, validate_playbook_name};
use crate::delta::{ApplyError, ApplyOptions, ApplyOutcome, DeltaBatch, DeltaOp, Source};

impl Store {
    pub(super) fn begin(&mut self) -> Result<Transaction<'_>> {
        self.require_latest()?;
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(classify)
    }

    /// Applies a batch to a playbook as one transaction and one revision. On any invalid op nothing is
    /// written and the error names the op. A batch id applied before is a no-op ([`ApplyOutcome::AlreadyApplied`]).
    pub fn apply(
        &mut self,
        playbook: &str,
        batch: &DeltaBatch,
        options: &ApplyOptions,
    ) -> Result<ApplyOutcome> {
        batch
            .validate_shape()
            .map_err(|error| StoreError::Rejected {
                batch: batch.id.clone(),
                error,
            })?;
        let tx = self.begin()?;
        let playbook_id = super::rows::playbook_id(&tx, playbook)?;
        let outcome = apply_in(&tx, playbook_id, batch, options)?;
        tx.commit().map_err(classify)?;
        Ok(outcome)
    }

    /// Creates an empty playbook with the given sections (in order), as its first revision.
    pub fn create_playbook(&mut self, name: &str, sections: &[&str]) -> Result<i64> {
        let ops: Vec<DeltaOp> = sections
            .iter()
            .map(|s| DeltaOp::AddSection {
                section: (*s).to_string(),
                slug: None,
            })
            .collect();
        let batch = DeltaBatch::new("create", Source::Human, ops)
            .with_reason(format!("create playbook '{name}'"));
        if !sections.is_empty() {
            batch
                .validate_shape()
                .map_err(|error| StoreError::Rejected {
                    batch: batch.id.clone(),
                    error,
                })?;
        }
        let tx = self.begin()?;
        let id = insert_playbook(&tx, name)?;
        if !sections.is_empty() {
            apply_in(&tx, id, &batch, &ApplyOptions::default())?;
        }
        tx.commit().map_err(classify)?;
        Ok(id)
    }

    /// Creates playbook `name` and applies `batch` (source `import`) to it in one transaction: a bad
    /// batch leaves no playbook behind. The id counter ends at least at `next_bullet_number`.
    pub fn import_playbook(
        &mut self,
        name: &str,
        batch: &DeltaBatch,
        next_bullet_number: u64,
    ) -> Result<ApplyOutcome> {
        batch
            .validate_shape()
            .map_err(|error| StoreError::Rejected {
                batch: batch.id.clone(),
                error,
            })?;
        let tx = self.begin()?;
        let id = insert_playbook(&tx, name)?;
        let outcome = apply_in(&tx, id, batch, &ApplyOptions::create_sections())?;
        tx.execute(
            "UPDATE playbooks SET next_bullet_number = max(next_bullet_number, ?2) WHERE id = ?1",
            params![id, i64::try_from(next_bullet_number).unwrap_or(i64::MAX)],
        )?;
        tx.commit().map_err(classify)?;
        Ok(outcome)
    }
}

fn insert_playbook(tx: &Transaction<'_>, name: &str) -> Result<i64> {
    validate_playbook_name(name)?;
    let exists: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM playbooks WHERE name = ?1)",
        [name],
        |r| r.get(0),
    )?;
    if exists {
        return Err(StoreError::PlaybookExists(name.to_string()));
    }
    tx.execute(
        "INSERT INTO playbooks (name, created_at) VALUES (?1, ?2)",
        params![name, now(tx)?],
    )?;
    Ok(tx.last_insert_rowid())
}

pub(super) fn apply_in(
    tx: &Transaction<'_>,
    playbook_id: i64,
    batch: &DeltaBatch,
    options: &ApplyOptions,
) -> Result<ApplyOutcome> {
    let applied: Option<(i64, Option<i64>)> = tx
        .query_row(
            "SELECT id, ops_hash FROM revisions WHERE playbook_id = ?1 AND batch_id = ?2",
            params![playbook_id, batch.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((revision, said)) = applied {
        // A person's file or an import that reuses an id with other operations is a mistake to
        // name; the loop's batches (keyed by run and step) are meant to be no-ops when repeated.
        let from_outside = matches!(batch.source, Source::Human | Source::Import);
        if from_outside && said.is_some_and(|h| h != batch.ops_hash()) {
            return Err(StoreError::BatchIdReused {
                batch: batch.id.clone(),
                revision,
            });
        }
        return Ok(ApplyOutcome::AlreadyApplied { revision });
    }
    let mut writer = writer::begin(tx, playbook_id, batch, None)?;
    writer
        .apply_batch(batch, options.sections)
        .map_err(|e| match e {
            ApplyError::Refused(error) => StoreError::Rejected {
                batch: batch.id.clone(),
                error,
            },
            ApplyError::Rows(e) => e,
        })?;
    let applied = writer.finish();
    let added = applied.added();
    let (revision, summary) = writer::finish(applied)?;
    Ok(ApplyOutcome::Applied {
        revision,
        added,
        summary,
    })
}

impl Store {
    /// Renames a playbook (its revisions, runs and queue follow: they refer to it by id).
    pub fn rename_playbook(&mut self, name: &str, new_name: &str) -> Result<()> {
        validate_playbook_name(new_name)?;
        let tx = self.begin()?;
        let id = super::rows::playbook_id(&tx, name)?;
        let taken: bool = tx.query_row(
            "SELECT count(*) > 0 FROM playbooks WHERE name = ?1",
            [new_name],
            |r| r.get(0),
        )?;
        if taken {
            return Err(StoreError::PlaybookExists(new_name.to_string()));
        }
        tx.execute(
            "UPDATE playbooks SET name = ?2 WHERE id = ?1",
            params![id, new_name],
        )?;
        tx.commit().map_err(classify)
    }

    /// A copy of playbook `name` as `new_name`: its bullets (ids, counters, metadata, removed
    /// ones), sections and budget, through the lossless JSON; the copy's history starts here.
    /// Returns how many bullets it has.
    pub fn copy_playbook(&mut self, name: &str, new_name: &str) -> Result<usize> {
        use crate::playbook::format::{self, Format};
        let source = self.load_playbook(name)?;
        let text = format::export(Format::Json, &source);
        let parsed = format::parse(Format::Json, &text, name)
            .map_err(|e| StoreError::Corrupt(format!("playbook '{name}' does not copy: {e}")))?;
        let batch = crate::delta::import_batch(&parsed, &format!("copy:{name}"));
        self.import_playbook(new_name, &batch, parsed.next_bullet_number)?;
        if let Some(budget) = self.token_budget(name)? {
            self.set_token_budget(new_name, Some(budget))?;
        }
        Ok(source.bullets.len())
    }

    /// Soft delete: the playbook (with its history, runs and queue) is kept but hidden, its name
    /// freed; [`Store::restore_playbook`] brings it back.
    pub fn delete_playbook(&mut self, name: &str) -> Result<()> {
        let tx = self.begin()?;
        let id = super::rows::playbook_id(&tx, name)?;
        let at = now(&tx)?;
        tx.execute(
            "UPDATE playbooks SET deleted_at = ?2, deleted_name = name, name = name || ' (deleted ' || id || ')' WHERE id = ?1",
            params![id, at],
        )?;
        tx.commit().map_err(classify)
    }

    /// Brings back the most recently deleted playbook named `name`, under that name.
    pub fn restore_playbook(&mut self, name: &str) -> Result<()> {
        let tx = self.begin()?;
        let id: Option<i64> = tx
            .query_row(
                "SELECT id FROM playbooks WHERE deleted_at IS NOT NULL AND deleted_name = ?1 ORDER BY deleted_at DESC, id DESC LIMIT 1",
                [name],
                |r| r.get(0),
            )
            .optional()?;
        let Some(id) = id else {
            return Err(StoreError::Queue(format!(
                "no deleted playbook named '{name}' (deleted ones: `ace playbook list --deleted`)"
            )));
        };
        let taken: bool = tx.query_row(
            "SELECT count(*) > 0 FROM playbooks WHERE name = ?1",
            [name],
            |r| r.get(0),
        )?;
        if taken {
            return Err(StoreError::PlaybookExists(name.to_string()));
        }
        tx.execute(
            "UPDATE playbooks SET name = deleted_name, deleted_at = NULL, deleted_name = NULL WHERE id = ?1",
            [id],
        )?;
        tx.commit().map_err(classify)
    }

    /// Deleted playbooks: (name it had, when it was deleted).
    pub fn deleted_playbooks(&self) -> Result<Vec<(String, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT deleted_name, deleted_at FROM playbooks WHERE deleted_at IS NOT NULL ORDER BY deleted_at DESC",
        )?;
        Ok(stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?)
    }
}
