//! Row mappers: how a stored row becomes a core value. Every reader and the writer use these, so a
//! column is read one way everywhere.

use rusqlite::{Connection, OptionalExtension};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{Result, StoreError};
use crate::delta::Change;
use crate::playbook::{Bullet, BulletStatus, Section};

/// A typed value from a text column: a word (`status`, `kind`) or JSON (`config`, `checkpoint`).
/// Anything else is a database this binary did not write, said with the column and the value.
pub(super) fn column<T: DeserializeOwned>(
    r: &rusqlite::Row<'_>,
    i: usize,
    json: bool,
) -> rusqlite::Result<T> {
    let text: String = r.get(i)?;
    let parsed = if json {
        serde_json::from_str(&text)
    } else {
        serde_json::from_value(Value::String(text.clone()))
    };
    parsed.map_err(|e| {
        let name = r.as_ref().column_name(i).unwrap_or("?").to_string();
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("column {name} holds '{}': {e}", preview(&text)).into(),
        )
    })
}

fn preview(text: &str) -> String {
    let mut p: String = text.chars().take(60).collect();
    if text.chars().count() > 60 {
        p.push('…');
    }
    p
}

/// Section columns, read by [`section_from_row`].
pub(super) const SECTION_COLUMNS: &str = "name, slug, position, status";

/// Reads a section from [`SECTION_COLUMNS`] starting at column `first`.
pub(super) fn section_from_row(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Section> {
    Ok(Section {
        name: r.get(first)?,
        slug: r.get(first + 1)?,
        position: r.get(first + 2)?,
        removed: r.get::<_, String>(first + 3)? == "removed",
    })
}

/// Bullet columns, with the section id where the section name goes.
pub(super) const BULLET_ROW_COLUMNS: &str = "b.bullet_id, b.section_id, b.content, b.helpful, b.harmful, b.neutral, b.metadata, \
     b.status, b.position, b.created_at, b.updated_at";

/// Reads a bullet from a row of [`BULLET_ROW_COLUMNS`]; `section` is left empty for the caller to fill
/// in from the section id. Borrowed reads keep a 100k-row load cheap.
pub(super) fn bullet_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Bullet> {
    use rusqlite::types::ValueRef;
    let text = |i: usize| -> rusqlite::Result<&[u8]> {
        match r.get_ref(i)? {
            ValueRef::Text(t) => Ok(t),
            _ => Ok(b""),
        }
    };
    let metadata = text(6)?;
    Ok(Bullet {
        id: r.get(0)?,
        section: String::new(),
        content: r.get(2)?,
        helpful: r.get::<_, i64>(3)? as u64,
        harmful: r.get::<_, i64>(4)? as u64,
        neutral: r.get::<_, i64>(5)? as u64,
        metadata: if metadata == b"{}" {
            Map::new()
        } else {
            serde_json::from_slice(metadata).unwrap_or_default()
        },
        status: if text(7)? == b"active" {
            BulletStatus::Active
        } else {
            BulletStatus::Removed
        },
        position: r.get(8)?,
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
    })
}

/// The row id of playbook `name`; an unknown name is refused with the names there are.
pub(super) fn playbook_id(conn: &Connection, name: &str) -> Result<i64> {
    let id = conn
        .query_row(
            "SELECT id FROM playbooks WHERE name = ?1 AND deleted_at IS NULL",
            [name],
            |r| r.get(0),
        )
        .optional()?;
    match id {
        Some(id) => Ok(id),
        None => {
            let mut stmt =
                conn.prepare("SELECT name FROM playbooks WHERE deleted_at IS NULL ORDER BY name")?;
            let names = stmt
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let available = if names.is_empty() {
                "none yet".to_string()
            } else {
                names.join(", ")
            };
            Err(StoreError::UnknownPlaybook {
                name: name.to_string(),
                available,
            })
        }
    }
}

/// A bullet's state before a change made whole from the state it was created with, its marks
/// (`"~"`, `"@"`) still on: the readers below take them off once.
macro_rules! op_before_marked {
    () => {
        r#"(CASE WHEN substr(o.before, 1, 6) = '{"~":2' THEN json_patch((SELECT c.after FROM revision_ops c WHERE c.revision_id = json_extract(o.before, '$."@"[0]') AND c.idx = json_extract(o.before, '$."@"[1]')), o.before) ELSE o.before END)"#
    };
}

/// The state before a recorded change (`revision_ops o`), in SQL: a bullet's state that kept most
/// of the state it was created with is stored as what differs from it (a JSON merge patch marked
/// `{"~":2,"@":[revision, idx],` naming the op that created the bullet, whose state after is always
/// whole; see `writer`), and made whole here.
pub(super) const OP_BEFORE: &str = concat!(
    r#"(CASE WHEN substr(o.before, 1, 6) = '{"~":2' THEN json_remove("#,
    op_before_marked!(),
    r#", '$."~"', '$."@"') ELSE o.before END)"#
);

/// The state after a recorded change (`revision_ops o`), in SQL: a change that kept most of a
/// state is stored as what changed (a JSON merge patch of the state before, marked `{"~":1,`; see
/// `writer`), and made whole here (with the state before, in one pass).
pub(super) const OP_AFTER: &str = concat!(
    r#"(CASE WHEN substr(o.after, 1, 6) = '{"~":1' THEN json_remove(json_patch("#,
    op_before_marked!(),
    r#", o.after), '$."~"', '$."@"') ELSE o.after END)"#
);

/// A sample's reflection (a `run_samples` row), in SQL: one stored as what differs from the answer
/// of the sample's reflector call (marked `{"~":3,"~c":ID,`, the call's row id; see `runs`) is made
/// whole here.
pub(super) const REFLECTION: &str = r#"(CASE WHEN substr(run_samples.reflection, 1, 6) = '{"~":3' THEN json_remove(json_patch((SELECT c.response FROM llm_calls c WHERE c.id = json_extract(run_samples.reflection, '$."~c"') AND c.run_id = run_samples.run_id AND c.sample_key = run_samples.key), run_samples.reflection), '$."~"', '$."~c"') ELSE run_samples.reflection END)"#;

/// The recorded changes of a revision, in order.
pub(super) fn load_changes(conn: &Connection, revision: i64) -> Result<Vec<Change>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT o.kind, o.key, {OP_BEFORE}, {OP_AFTER} FROM revision_ops o WHERE o.revision_id = ?1 ORDER BY o.idx"
    ))?;
    let rows = stmt.query_map([revision], change_columns)?;
    let mut changes = Vec::new();
    for row in rows {
        let (kind, key, before, after) = row?;
        changes.push(parse_change(
            &kind,
            key,
            before.as_deref(),
            after.as_deref(),
        )?);
    }
    Ok(changes)
}

/// A recorded change as stored: kind, key, the before and after states as JSON.
pub(super) type ChangeColumns = (String, String, Option<String>, Option<String>);

/// Reads [`ChangeColumns`] from `kind, key, before, after`.
pub(super) fn change_columns(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChangeColumns> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

pub(super) fn parse_change(
    kind: &str,
    key: String,
    before: Option<&str>,
    after: Option<&str>,
) -> Result<Change> {
    Ok(if kind == "section" {
        Change::Section {
            name: key,
            before: before.map(serde_json::from_str::<Section>).transpose()?,
            after: after.map(serde_json::from_str::<Section>).transpose()?,
        }
    } else {
        Change::Bullet {
            id: key,
            before: before.map(serde_json::from_str::<Bullet>).transpose()?,
            after: after.map(serde_json::from_str::<Bullet>).transpose()?,
        }
    })
}
