//! JSON forms: our lossless JSON and the `ace-framework` skillbook (and its older shape).

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use super::{FormatError, JSON_FORMAT_TAG, assemble};
use crate::playbook::{Bullet, BulletStatus, Playbook};

pub(super) fn export_json(playbook: &Playbook) -> String {
    let value = json!({
        "format": JSON_FORMAT_TAG,
        "name": playbook.name,
        "next_bullet_number": playbook.next_bullet_number,
        "sections": playbook.sections,
        "bullets": playbook.bullets,
    });
    serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
}

pub(super) fn parse_json(text: &str, file: &str) -> Result<Playbook, FormatError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| FormatError::at(file, e.line(), format!("invalid JSON: {e}")))?;
    if value.get("format").and_then(Value::as_str) != Some(JSON_FORMAT_TAG) {
        return Err(FormatError::whole(
            file,
            format!(
                "not an ace-workbench playbook (expected \"format\": \"{JSON_FORMAT_TAG}\"); an ace-framework skillbook imports with --format skillbook"
            ),
        ));
    }
    let mut playbook: Playbook = serde_json::from_value(value)
        .map_err(|e| FormatError::whole(file, format!("invalid playbook JSON: {e}")))?;
    let names: HashSet<&str> = playbook.sections.iter().map(|s| s.name.as_str()).collect();
    let mut ids = HashSet::new();
    for b in &playbook.bullets {
        // A removed bullet may keep the name of a section that was removed after it.
        if b.is_active() && !names.contains(b.section.as_str()) {
            return Err(FormatError::whole(
                file,
                format!("bullet {} names unknown section '{}'", b.id, b.section),
            ));
        }
        if !ids.insert(b.id.as_str()) {
            return Err(FormatError::whole(
                file,
                format!("bullet id {} appears twice", b.id),
            ));
        }
    }
    playbook.sort();
    Ok(playbook)
}

/// Skillbook fields we map to our own; every other field goes to metadata and back.
const SKILL_OWN_FIELDS: &[&str] = &[
    "id",
    "section",
    "content",
    "helpful",
    "harmful",
    "neutral",
    "status",
    "created_at",
    "updated_at",
];

/// A skillbook's section names and its skills' keys in order: as its `sections` map lists them,
/// then the skills it leaves out (both skillbook versions store them this way).
pub(super) fn skill_order(
    value: &Value,
    skills: &Map<String, Value>,
) -> (Vec<String>, Vec<String>) {
    let mut sections: Vec<String> = Vec::new();
    let mut order: Vec<String> = Vec::new();
    if let Some(map) = value.get("sections").and_then(Value::as_object) {
        for (name, ids) in map {
            sections.push(name.clone());
            for id in ids
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if skills.contains_key(id) && !order.iter().any(|o| o == id) {
                    order.push(id.to_string());
                }
            }
        }
    }
    for id in skills.keys() {
        if !order.contains(id) {
            order.push(id.clone());
        }
    }
    (sections, order)
}

/// A skill's counter: absent or null is 0, anything but a whole number is refused, named.
pub(super) fn whole_number(
    skill: &Map<String, Value>,
    name: &str,
    key: &str,
    file: &str,
) -> Result<u64, FormatError> {
    match skill.get(name) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v.as_u64().ok_or_else(|| {
            FormatError::whole(
                file,
                format!("skill '{key}': '{name}' is not a whole number"),
            )
        }),
    }
}

pub(super) fn parse_skillbook(text: &str, file: &str) -> Result<Playbook, FormatError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| FormatError::at(file, e.line(), format!("invalid JSON: {e}")))?;
    if super::skillbook_v2::is_v2(&value) {
        return super::skillbook_v2::parse(&value, file);
    }
    // Older ace-framework releases (the "Playbook" class) wrote the same shape under "bullets".
    let skills = value
        .get("skills")
        .or_else(|| value.get("bullets"))
        .and_then(Value::as_object)
        .ok_or_else(|| {
            FormatError::whole(
                file,
                "a skillbook needs a \"skills\" object (or \"bullets\", as older ace-framework releases wrote)",
            )
        })?;
    let (sections, order) = skill_order(&value, skills);
    let mut bullets = Vec::new();
    for key in &order {
        let skill = skills[key.as_str()]
            .as_object()
            .ok_or_else(|| FormatError::whole(file, format!("skill '{key}' is not an object")))?;
        let text_field = |name: &str| skill.get(name).and_then(Value::as_str).map(str::to_string);
        let count = |name: &str| whole_number(skill, name, key, file);
        let id = text_field("id").unwrap_or_else(|| key.clone());
        let section = text_field("section")
            .ok_or_else(|| FormatError::whole(file, format!("skill '{key}' has no section")))?;
        let content = text_field("content").filter(|c| !c.trim().is_empty());
        let content = content
            .ok_or_else(|| FormatError::whole(file, format!("skill '{key}' has no content")))?;
        let status_text = text_field("status").unwrap_or_else(|| "active".into());
        // `embedding: null` and `sources: []` are the package's defaults, which export writes back.
        let is_default = |k: &str, v: &Value| {
            (k == "embedding" && v.is_null()) || (k == "sources" && v == &json!([]))
        };
        let mut metadata: Map<String, Value> = skill
            .iter()
            .filter(|(k, v)| !SKILL_OWN_FIELDS.contains(&k.as_str()) && !is_default(k, v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let status = if status_text == "active" {
            BulletStatus::Active
        } else {
            BulletStatus::Removed
        };
        if status_text != "active" && status_text != "removed" {
            metadata.insert("skillbook_status".into(), Value::String(status_text));
        }
        bullets.push(Bullet {
            id,
            section,
            content,
            helpful: count("helpful")?,
            harmful: count("harmful")?,
            neutral: count("neutral")?,
            metadata,
            status,
            position: bullets.len() as i64,
            created_at: text_field("created_at").unwrap_or_default(),
            updated_at: text_field("updated_at").unwrap_or_default(),
        });
    }
    finish_skillbook(&value, sections, bullets, file)
}

/// The end of reading either skillbook version: sections the `sections` map leaves out come from
/// the skills (a removed skill's section alone is a removed section, so it is not listed); an id
/// used twice is refused; the id counter goes past `next_id`.
pub(super) fn finish_skillbook(
    value: &Value,
    mut sections: Vec<String>,
    bullets: Vec<Bullet>,
    file: &str,
) -> Result<Playbook, FormatError> {
    for b in bullets.iter().filter(|b| b.is_active()) {
        if !sections.contains(&b.section) {
            sections.push(b.section.clone());
        }
    }
    let mut ids = HashSet::new();
    if let Some(dup) = bullets.iter().find(|b| !ids.insert(b.id.as_str())) {
        return Err(FormatError::whole(
            file,
            format!("skill id {} appears twice", dup.id),
        ));
    }
    let next_id = value.get("next_id").and_then(Value::as_u64).unwrap_or(0);
    Ok(assemble(&sections, bullets, next_id + 1))
}

pub(super) fn export_skillbook(playbook: &Playbook) -> String {
    let mut skills = Map::new();
    for b in &playbook.bullets {
        let mut skill = Map::new();
        skill.insert("id".into(), json!(b.id));
        skill.insert("section".into(), json!(b.section));
        skill.insert("content".into(), json!(b.content));
        let mut extra = b.metadata.clone();
        let status = match extra.remove("skillbook_status") {
            Some(Value::String(s)) => s,
            _ => b.status.as_str().to_string(),
        };
        for key in ["justification", "evidence"] {
            if let Some(v) = extra.remove(key) {
                skill.insert(key.into(), v);
            }
        }
        skill.insert("helpful".into(), json!(b.helpful));
        skill.insert("harmful".into(), json!(b.harmful));
        skill.insert("neutral".into(), json!(b.neutral));
        skill.insert("created_at".into(), json!(b.created_at));
        skill.insert("updated_at".into(), json!(b.updated_at));
        skill.insert(
            "embedding".into(),
            extra.remove("embedding").unwrap_or(Value::Null),
        );
        skill.insert("status".into(), json!(status));
        skill.insert(
            "sources".into(),
            extra.remove("sources").unwrap_or_else(|| json!([])),
        );
        skill.extend(extra);
        skills.insert(b.id.clone(), Value::Object(skill));
    }
    let mut sections = Map::new();
    for s in &playbook.sections {
        let ids: Vec<&str> = playbook
            .bullets
            .iter()
            .filter(|b| b.section == s.name)
            .map(|b| b.id.as_str())
            .collect();
        sections.insert(s.name.clone(), json!(ids));
    }
    let value = json!({
        "skills": skills,
        "sections": sections,
        "next_id": playbook.next_bullet_number.saturating_sub(1),
        "similarity_decisions": {},
    });
    serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
}
