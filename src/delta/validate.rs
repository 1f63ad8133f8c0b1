//! Shape checks: everything about a batch that can be judged without the playbook (sizes, empty
//! content, TAG increments, which fields a source may set).

use serde_json::{Map, Value};

use super::{
    DeltaOp, MAX_CONTENT_CHARS, MAX_METADATA_BYTES, MAX_SECTION_CHARS, MAX_TAG_INCREMENT, Source,
};
use crate::playbook::is_valid_bullet_id;

fn validate_content(content: &str) -> Result<(), String> {
    if content.trim().is_empty() {
        return Err("content is empty".into());
    }
    if let Some(at) = crate::text::hidden_char(content) {
        return Err(format!(
            "content has a control or bidirectional character ({at}); content keeps line breaks and tabs only"
        ));
    }
    let chars = content.chars().count();
    if chars > MAX_CONTENT_CHARS {
        return Err(format!(
            "content has {chars} characters; the limit is {MAX_CONTENT_CHARS}"
        ));
    }
    Ok(())
}

fn validate_section_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("section name is empty".into());
    }
    if name.chars().count() > MAX_SECTION_CHARS {
        return Err(format!(
            "section name is longer than {MAX_SECTION_CHARS} characters"
        ));
    }
    if name.contains('\n') {
        return Err("section name contains a line break".into());
    }
    if let Some(at) = crate::text::hidden_char(name) {
        return Err(format!(
            "section name has a control or bidirectional character ({at})"
        ));
    }
    Ok(())
}

fn validate_metadata(metadata: &Map<String, Value>) -> Result<(), String> {
    let size = serde_json::to_string(metadata)
        .map(|s| s.len())
        .unwrap_or(usize::MAX);
    if size > MAX_METADATA_BYTES {
        return Err(format!(
            "metadata is {size} bytes; the limit is {MAX_METADATA_BYTES}"
        ));
    }
    Ok(())
}

fn validate_bullet_ref(id: &str) -> Result<(), String> {
    if is_valid_bullet_id(id) {
        Ok(())
    } else {
        Err(format!("'{id}' is not a valid bullet id"))
    }
}

pub(super) fn validate_op(op: &DeltaOp, source: Source) -> Result<(), String> {
    match op {
        DeltaOp::Add(add) => {
            validate_section_name(&add.section)?;
            validate_content(&add.content)?;
            if let Some(m) = &add.metadata {
                validate_metadata(m)?;
            }
            if let Some(field) = add.import_only_field()
                && source != Source::Import
            {
                return Err(format!(
                    "field '{field}' on ADD is only accepted from source 'import'"
                ));
            }
            if let Some(id) = &add.id {
                validate_bullet_ref(id)?;
            }
            Ok(())
        }
        DeltaOp::Update(u) => {
            validate_bullet_ref(&u.bullet_id)?;
            if u.content.is_none() && u.section.is_none() && u.metadata.is_none() {
                return Err("UPDATE changes nothing: give content, section or metadata".into());
            }
            if let Some(c) = &u.content {
                validate_content(c)?;
            }
            if let Some(s) = &u.section {
                validate_section_name(s)?;
            }
            if let Some(m) = &u.metadata {
                validate_metadata(m)?;
            }
            Ok(())
        }
        DeltaOp::Tag(t) => {
            validate_bullet_ref(&t.bullet_id)?;
            if t.helpful == 0 && t.harmful == 0 && t.neutral == 0 {
                return Err("TAG adds nothing: give helpful, harmful or neutral".into());
            }
            if [t.helpful, t.harmful, t.neutral]
                .iter()
                .any(|n| *n > MAX_TAG_INCREMENT)
            {
                return Err(format!(
                    "a TAG increment is larger than {MAX_TAG_INCREMENT}"
                ));
            }
            Ok(())
        }
        DeltaOp::Remove { bullet_id } => validate_bullet_ref(bullet_id),
        DeltaOp::AddSection { section, slug } => {
            validate_section_name(section)?;
            if let Some(slug) = slug
                && (slug.is_empty() || !slug.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            {
                return Err(format!("slug '{slug}' must be letters, digits or '_'"));
            }
            Ok(())
        }
        DeltaOp::RenameSection { section, new_name } => {
            validate_section_name(section)?;
            validate_section_name(new_name)?;
            if section == new_name {
                return Err("RENAME_SECTION keeps the same name".into());
            }
            Ok(())
        }
        DeltaOp::MoveSection { section, .. } | DeltaOp::RemoveSection { section } => {
            validate_section_name(section)
        }
        DeltaOp::Merge(m) => {
            validate_bullet_ref(&m.bullet_id)?;
            if let Some(dup) = &m.duplicate {
                validate_bullet_ref(dup)?;
                if *dup == m.bullet_id {
                    return Err("MERGE folds a bullet into itself".into());
                }
            }
            if m.duplicate.is_some() == m.proposed.is_some() {
                return Err(
                    "MERGE folds in either an existing bullet (duplicate) or a proposed lesson (proposed)".into(),
                );
            }
            if let Some(text) = &m.proposed {
                validate_content(text)?;
            }
            if let Some(c) = &m.content {
                validate_content(c)?;
            }
            if let Some(s) = m.similarity
                && !(0.0..=1.0).contains(&s)
            {
                return Err(format!("similarity {s} is not between 0 and 1"));
            }
            Ok(())
        }
    }
}
