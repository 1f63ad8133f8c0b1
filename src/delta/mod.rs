//! Deltas: the only way a playbook changes.
//!
//! A [`DeltaBatch`] is a list of [`DeltaOp`]s with an idempotency key (`id`), a [`Source`] and an
//! optional reason. This module holds everything about what a delta means:
//! - the types and the shape checks that need no playbook (`validate`: sizes, empty content, which
//!   fields a source may set);
//! - the rules of each op against a playbook (`apply`, `rules`: unknown or removed bullet ids,
//!   unknown sections, id allocation, section moves), written once against [`PlaybookRows`] and run
//!   the same by the store's writer (one transaction, one revision) and in memory
//!   ([`apply_in_memory`]);
//! - what a change did ([`Change`], [`ChangeSummary`]) and importing a playbook as a batch.

mod apply;
mod change;
mod import;
mod memory;
mod rules;
mod validate;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use apply::{
    Applied, Applier, ApplyError, ApplyOptions, ApplyOutcome, Head, PlaybookRows, SectionPolicy,
    Step,
};
pub use change::{Change, ChangeSummary, Replay, diff};
pub use import::import_batch;
pub use memory::{MemoryOutcome, apply_in_memory};
pub use rules::merge_metadata;
use validate::validate_op;

use crate::playbook::BulletStatus;

/// Longest bullet content accepted, in characters. The longest bullet in the published ACE playbooks
/// is about 700 characters; 4000 leaves room for code snippets without letting one bullet eat a prompt.
pub const MAX_CONTENT_CHARS: usize = 4000;
/// Longest section name accepted, in characters.
pub const MAX_SECTION_CHARS: usize = 200;
/// Largest metadata object accepted, in bytes of compact JSON.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// Largest single counter increment in a TAG.
pub const MAX_TAG_INCREMENT: u64 = 1_000_000;
/// Most operations in one batch.
pub const MAX_BATCH_OPS: usize = 100_000;

/// Who or what produced a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    #[default]
    Human,
    Curator,
    Import,
    Revert,
    Policy,
    AutoPolicy,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Human => "human",
            Source::Curator => "curator",
            Source::Import => "import",
            Source::Revert => "revert",
            Source::Policy => "policy",
            Source::AutoPolicy => "auto-policy",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(Value::String(s.to_string())).ok()
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// ADD a bullet to a section. `id`, the counters, `status` and the timestamps are only accepted from
/// source `import`, which must keep the ids and counters of the file it reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddOp {
    pub section: String,
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helpful: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harmful: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neutral: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<BulletStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

impl AddOp {
    pub fn new(section: impl Into<String>, content: impl Into<String>) -> Self {
        AddOp {
            section: section.into(),
            content: content.into(),
            metadata: None,
            id: None,
            helpful: None,
            harmful: None,
            neutral: None,
            status: None,
            created_at: None,
            updated_at: None,
        }
    }

    fn import_only_field(&self) -> Option<&'static str> {
        [
            (self.id.is_some(), "id"),
            (self.helpful.is_some(), "helpful"),
            (self.harmful.is_some(), "harmful"),
            (self.neutral.is_some(), "neutral"),
            (self.status.is_some(), "status"),
            (self.created_at.is_some(), "created_at"),
            (self.updated_at.is_some(), "updated_at"),
        ]
        .into_iter()
        .find_map(|(set, name)| set.then_some(name))
    }
}

/// UPDATE a bullet's content, section (a move) and/or metadata (shallow merge; a `null` value deletes
/// the key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateOp {
    pub bullet_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// TAG a bullet: add to its counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagOp {
    pub bullet_id: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub helpful: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub harmful: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub neutral: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One change to a playbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeltaOp {
    #[serde(alias = "add")]
    Add(AddOp),
    #[serde(alias = "update")]
    Update(UpdateOp),
    #[serde(alias = "tag")]
    Tag(TagOp),
    /// Soft remove: the bullet's status becomes `removed`; its content stays for history.
    #[serde(alias = "remove")]
    Remove { bullet_id: String },
    /// Create an empty section (appended after the existing ones).
    #[serde(alias = "add_section")]
    AddSection {
        section: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        slug: Option<String>,
    },
    /// Rename a section; its bullets follow (their ids keep the old slug, as ids never change).
    #[serde(alias = "rename_section")]
    RenameSection { section: String, new_name: String },
    /// Move a section to `index` (0 = first) among the playbook's sections.
    #[serde(alias = "move_section")]
    MoveSection { section: String, index: usize },
    /// Soft remove: the section and its active bullets are marked removed; history keeps them.
    #[serde(alias = "remove_section")]
    RemoveSection { section: String },
    /// Fold a near duplicate into the bullet it repeats (see [`MergeOp`]).
    #[serde(alias = "merge")]
    Merge(MergeOp),
}

/// MERGE a near duplicate into the bullet it repeats. The kept bullet (`bullet_id`) takes the
/// duplicate's counters, one `helpful` more for a proposed lesson it absorbs (re-deriving a lesson
/// is evidence for it), and `content` if given; the duplicate, an existing bullet, is removed. The
/// proposed text and the similarity are there for the reviewer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeOp {
    /// The bullet that stays.
    pub bullet_id: String,
    /// An existing bullet folded in and removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<String>,
    /// A proposed lesson (the text of an ADD) folded in instead of becoming a second bullet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposed: Option<String>,
    /// New content for the kept bullet (else it keeps its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// How alike the two are (cosine of embeddings, or lexical overlap), 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f64>,
}

impl DeltaOp {
    pub fn kind(&self) -> &'static str {
        match self {
            DeltaOp::Add(_) => "ADD",
            DeltaOp::Update(_) => "UPDATE",
            DeltaOp::Tag(_) => "TAG",
            DeltaOp::Remove { .. } => "REMOVE",
            DeltaOp::AddSection { .. } => "ADD_SECTION",
            DeltaOp::RenameSection { .. } => "RENAME_SECTION",
            DeltaOp::MoveSection { .. } => "MOVE_SECTION",
            DeltaOp::RemoveSection { .. } => "REMOVE_SECTION",
            DeltaOp::Merge(_) => "MERGE",
        }
    }

    /// The bullet this op targets, if it names one.
    pub fn bullet_id(&self) -> Option<&str> {
        match self {
            DeltaOp::Add(a) => a.id.as_deref(),
            DeltaOp::Update(u) => Some(&u.bullet_id),
            DeltaOp::Tag(t) => Some(&t.bullet_id),
            DeltaOp::Remove { bullet_id } => Some(bullet_id),
            DeltaOp::Merge(m) => Some(&m.bullet_id),
            DeltaOp::AddSection { .. }
            | DeltaOp::RenameSection { .. }
            | DeltaOp::MoveSection { .. }
            | DeltaOp::RemoveSection { .. } => None,
        }
    }

    /// A one-line description for error messages: kind, target and a content preview.
    pub fn describe(&self) -> String {
        let preview = |s: &str| {
            let mut p: String = s.chars().take(40).collect();
            if s.chars().count() > 40 {
                p.push('…');
            }
            p
        };
        match self {
            DeltaOp::Add(a) => format!("ADD to '{}': \"{}\"", a.section, preview(&a.content)),
            DeltaOp::Update(u) => format!("UPDATE {}", u.bullet_id),
            DeltaOp::Tag(t) => {
                format!(
                    "TAG {} helpful+{} harmful+{} neutral+{}",
                    t.bullet_id, t.helpful, t.harmful, t.neutral
                )
            }
            DeltaOp::Remove { bullet_id } => format!("REMOVE {bullet_id}"),
            DeltaOp::AddSection { section, .. } => format!("ADD_SECTION '{section}'"),
            DeltaOp::RenameSection { section, new_name } => {
                format!("RENAME_SECTION '{section}' to '{new_name}'")
            }
            DeltaOp::MoveSection { section, index } => {
                format!("MOVE_SECTION '{section}' to place {index}")
            }
            DeltaOp::RemoveSection { section } => format!("REMOVE_SECTION '{section}'"),
            DeltaOp::Merge(m) => match (&m.duplicate, &m.proposed) {
                (Some(dup), _) => format!("MERGE {dup} into {}", m.bullet_id),
                (None, Some(text)) => {
                    format!("MERGE \"{}\" into {}", preview(text), m.bullet_id)
                }
                (None, None) => format!("MERGE into {}", m.bullet_id),
            },
        }
    }
}

/// Why a delta file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DeltaParseError {
    #[error("{0}")]
    Json(serde_json::Error),
    #[error("unknown field {0}")]
    UnknownField(String),
}

/// The fields of a batch, and of each op by its type: what a delta file may say.
const BATCH_FIELDS: &[&str] = &["id", "source", "reason", "author", "operations"];

fn op_fields(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind.to_ascii_uppercase().as_str() {
        "ADD" => &[
            "type",
            "section",
            "content",
            "metadata",
            "id",
            "helpful",
            "harmful",
            "neutral",
            "status",
            "created_at",
            "updated_at",
        ],
        "UPDATE" => &["type", "bullet_id", "content", "section", "metadata"],
        "TAG" => &["type", "bullet_id", "helpful", "harmful", "neutral"],
        "REMOVE" => &["type", "bullet_id"],
        "ADD_SECTION" => &["type", "section", "slug"],
        "RENAME_SECTION" => &["type", "section", "new_name"],
        "MOVE_SECTION" => &["type", "section", "index"],
        "REMOVE_SECTION" => &["type", "section"],
        "MERGE" => &[
            "type",
            "bullet_id",
            "duplicate",
            "proposed",
            "content",
            "similarity",
        ],
        _ => return None,
    })
}

/// The first field of a batch (or of one of its ops) that the format does not have, as
/// `'harmfull' in operations[2] (TAG)`.
fn unknown_field(batch: &Value) -> Option<String> {
    let object = batch.as_object()?;
    if let Some(key) = object.keys().find(|k| !BATCH_FIELDS.contains(&k.as_str())) {
        return Some(format!(
            "'{key}' in the batch (fields: {})",
            BATCH_FIELDS.join(", ")
        ));
    }
    let ops = object.get("operations")?.as_array()?;
    ops.iter().enumerate().find_map(|(i, op)| {
        let op = op.as_object()?;
        let kind = op.get("type")?.as_str()?;
        let fields = op_fields(kind)?;
        op.keys()
            .find(|k| !fields.contains(&k.as_str()))
            .map(|key| {
                format!(
                    "'{key}' in operations[{i}] ({}; fields: {})",
                    kind.to_ascii_uppercase(),
                    fields.join(", ")
                )
            })
    })
}

/// A batch of ops applied together as one revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeltaBatch {
    /// Idempotency key: a batch id already applied to the playbook is not applied again.
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub source: Source,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who decided (a user name, `auto-policy`, …); recorded on the revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub operations: Vec<DeltaOp>,
}

impl DeltaBatch {
    pub fn new(id: impl Into<String>, source: Source, operations: Vec<DeltaOp>) -> Self {
        DeltaBatch {
            id: id.into(),
            source,
            reason: None,
            author: None,
            operations,
        }
    }

    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Parses the JSON batch format. A batch without an `id` gets one derived from its content, so
    /// applying the same file twice is still a no-op. A field the format does not have is refused,
    /// named (a misspelt `harmfull` must not silently do nothing).
    pub fn from_json(text: &str) -> Result<Self, DeltaParseError> {
        let value: Value = serde_json::from_str(text).map_err(DeltaParseError::Json)?;
        if let Some(field) = unknown_field(&value) {
            return Err(DeltaParseError::UnknownField(field));
        }
        let mut batch: DeltaBatch = serde_json::from_value(value).map_err(DeltaParseError::Json)?;
        if batch.id.trim().is_empty() {
            batch.id = batch.content_id();
        }
        Ok(batch)
    }

    /// What the batch says, as a number: FNV-1a over its operations' JSON (stored with its revision).
    pub fn ops_hash(&self) -> i64 {
        let json = serde_json::to_string(&self.operations).unwrap_or_default();
        content_hash(json.as_bytes()) as i64
    }

    /// A stable id derived from source and operations (FNV-1a over their JSON).
    pub fn content_id(&self) -> String {
        let json = serde_json::to_string(&(&self.source, &self.operations)).unwrap_or_default();
        format!("auto-{:016x}", content_hash(json.as_bytes()))
    }

    /// Checks everything that needs no database. The store checks ids and sections when applying.
    pub fn validate_shape(&self) -> Result<(), DeltaError> {
        if self.id.trim().is_empty() || self.id.len() > 200 {
            return Err(DeltaError::Batch(
                "the batch id must be 1 to 200 characters".into(),
            ));
        }
        if self.operations.is_empty() {
            return Err(DeltaError::Batch(format!(
                "batch '{}' has no operations",
                self.id
            )));
        }
        // An import is as large as the playbook it brings (the file bounds it); other batches are capped.
        if self.operations.len() > MAX_BATCH_OPS && self.source != Source::Import {
            return Err(DeltaError::Batch(format!(
                "batch '{}' has {} operations; at most {MAX_BATCH_OPS} are accepted",
                self.id,
                self.operations.len()
            )));
        }
        for (index, op) in self.operations.iter().enumerate() {
            validate_op(op, self.source).map_err(|reason| DeltaError::op(index, op, reason))?;
        }
        Ok(())
    }
}

/// A stable 64-bit hash (FNV-1a) for idempotency keys and prompt versions; not for security.
pub fn content_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Why a batch was rejected. Nothing of a rejected batch is written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeltaError {
    #[error("operations[{index}] ({op}): {reason}")]
    Op {
        index: usize,
        op: String,
        reason: String,
    },
    #[error("{0}")]
    Batch(String),
}

impl DeltaError {
    pub fn op(index: usize, op: &DeltaOp, reason: impl Into<String>) -> Self {
        DeltaError::Op {
            index,
            op: op.describe(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_import_may_exceed_the_op_limit() {
        let ops = vec![
            DeltaOp::Remove {
                bullet_id: "misc-00001".into()
            };
            MAX_BATCH_OPS + 1
        ];
        let mut b = DeltaBatch::new("big", Source::Human, ops);
        let err = b.validate_shape().unwrap_err().to_string();
        assert!(err.contains("at most 100000 are accepted"), "{err}");
        b.source = Source::Import;
        assert!(
            b.validate_shape().is_ok(),
            "a 100k-bullet playbook can be imported"
        );
    }

    #[test]
    fn parses_the_documented_format() {
        let text = r#"{"id": "b-1", "source": "human", "reason": "why", "operations": [
            {"type": "ADD", "section": "formulas", "content": "Use ROI = gain / cost"},
            {"type": "TAG", "bullet_id": "calc-00003", "helpful": 1},
            {"type": "UPDATE", "bullet_id": "calc-00003", "content": "new"},
            {"type": "REMOVE", "bullet_id": "calc-00004"}]}"#;
        let batch = DeltaBatch::from_json(text).unwrap();
        assert_eq!(batch.id, "b-1");
        assert_eq!(batch.operations.len(), 4);
        assert_eq!(
            batch.operations[1],
            DeltaOp::Tag(TagOp {
                bullet_id: "calc-00003".into(),
                helpful: 1,
                harmful: 0,
                neutral: 0
            })
        );
        batch.validate_shape().unwrap();
    }

    #[test]
    fn missing_id_is_derived_from_content_and_stable() {
        let text = r#"{"operations": [{"type": "ADD", "section": "s", "content": "c"}]}"#;
        let a = DeltaBatch::from_json(text).unwrap();
        let b = DeltaBatch::from_json(text).unwrap();
        assert!(a.id.starts_with("auto-"));
        assert_eq!(a.id, b.id);
    }

    #[test]
    fn shape_errors_name_index_op_and_reason() {
        let batch = DeltaBatch::new(
            "b",
            Source::Human,
            vec![
                DeltaOp::Add(AddOp::new("s", "ok")),
                DeltaOp::Add(AddOp::new("s", "   ")),
            ],
        );
        let err = batch.validate_shape().unwrap_err().to_string();
        assert_eq!(err, "operations[1] (ADD to 's': \"   \"): content is empty");

        let long = "x".repeat(MAX_CONTENT_CHARS + 1);
        let batch = DeltaBatch::new(
            "b",
            Source::Human,
            vec![DeltaOp::Add(AddOp::new("s", long))],
        );
        assert!(
            batch
                .validate_shape()
                .unwrap_err()
                .to_string()
                .contains("the limit is 4000")
        );

        let mut add = AddOp::new("s", "c");
        add.id = Some("x-00001".into());
        let batch = DeltaBatch::new("b", Source::Curator, vec![DeltaOp::Add(add)]);
        assert!(
            batch
                .validate_shape()
                .unwrap_err()
                .to_string()
                .contains("only accepted from source 'import'")
        );

        let batch = DeltaBatch::new(
            "b",
            Source::Human,
            vec![DeltaOp::Tag(TagOp {
                bullet_id: "a-1".into(),
                helpful: 0,
                harmful: 0,
                neutral: 0,
            })],
        );
        assert!(
            batch
                .validate_shape()
                .unwrap_err()
                .to_string()
                .contains("TAG adds nothing")
        );
    }

    #[test]
    fn negative_tag_is_a_parse_error() {
        let text = r#"{"id": "x", "operations": [{"type": "TAG", "bullet_id": "a-00001", "helpful": -1}]}"#;
        assert!(DeltaBatch::from_json(text).is_err());
    }

    #[test]
    fn an_unknown_field_is_refused_by_name() {
        let text = r#"{"id": "x", "operations": [{"type": "TAG", "bullet_id": "a-00001", "harmfull": 1}]}"#;
        let err = DeltaBatch::from_json(text).unwrap_err().to_string();
        assert!(err.contains("'harmfull' in operations[0] (TAG"), "{err}");
        let text = r#"{"id": "x", "reasons": "r", "operations": []}"#;
        let err = DeltaBatch::from_json(text).unwrap_err().to_string();
        assert!(err.contains("'reasons' in the batch"), "{err}");
        // lower-case types are read too
        let text = r#"{"operations": [{"type": "remove", "bullet_id": "a-00001"}]}"#;
        assert!(DeltaBatch::from_json(text).is_ok());
    }

    #[test]
    fn every_field_an_op_writes_is_a_field_a_file_may_give() {
        let mut meta = Map::new();
        meta.insert("k".into(), Value::from(1));
        let add = AddOp {
            section: "S".into(),
            content: "c".into(),
            metadata: Some(meta.clone()),
            id: Some("s-00001".into()),
            helpful: Some(1),
            harmful: Some(1),
            neutral: Some(1),
            status: Some(BulletStatus::Active),
            created_at: Some("t".into()),
            updated_at: Some("t".into()),
        };
        let ops = vec![
            DeltaOp::Add(add),
            DeltaOp::Update(UpdateOp {
                bullet_id: "s-00001".into(),
                content: Some("c".into()),
                section: Some("S".into()),
                metadata: Some(meta),
            }),
            DeltaOp::Tag(TagOp {
                bullet_id: "s-00001".into(),
                helpful: 1,
                harmful: 1,
                neutral: 1,
            }),
            DeltaOp::Remove {
                bullet_id: "s-00001".into(),
            },
            DeltaOp::AddSection {
                section: "S".into(),
                slug: Some("s".into()),
            },
            DeltaOp::RenameSection {
                section: "S".into(),
                new_name: "T".into(),
            },
            DeltaOp::MoveSection {
                section: "S".into(),
                index: 1,
            },
            DeltaOp::RemoveSection {
                section: "S".into(),
            },
            DeltaOp::Merge(MergeOp {
                bullet_id: "s-00001".into(),
                duplicate: Some("s-00002".into()),
                proposed: Some("p".into()),
                content: Some("c".into()),
                similarity: Some(0.9),
            }),
        ];
        let mut batch = DeltaBatch::new("b", Source::Import, ops).with_reason("r");
        batch.author = Some("a".into());
        let value = serde_json::to_value(&batch).unwrap();
        assert_eq!(unknown_field(&value), None);
        for op in value["operations"].as_array().unwrap() {
            let fields = op_fields(op["type"].as_str().unwrap()).unwrap();
            assert_eq!(op.as_object().unwrap().len(), fields.len(), "{op}");
        }
    }
}
