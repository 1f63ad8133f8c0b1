//! The current `ace-framework` skillbook (`"schema_version": "2"`): two sections, `context` and
//! `harness`; a skill is an `issue` with an optional `insight`, `keywords`, counters named
//! `helpful_count` / `harmful_count` / `neutral_count`, `used_count`, `occurrences` (where it was
//! learned) and `active`.
//!
//! Read: a skill's content is its issue, then its insight on a line of its own (the insight alone
//! when the two are the same); keywords, issue, insight, occurrences and the use count are kept in
//! the bullet's metadata, so writing it back gives the same skill. Written: a bullet of another
//! section goes to `context` with its section's name as its first keyword; a content with no
//! issue/insight of its own is both. What cannot be carried is said, never dropped silently.

use serde_json::{Map, Value, json};

use super::FormatError;
use crate::playbook::{Bullet, BulletStatus, Playbook};

pub const SCHEMA_VERSION: &str = "2";
const SECTIONS: [&str; 2] = ["context", "harness"];
/// Metadata keys that carry a v2 skill's own fields through a round trip.
const KEPT: [&str; 5] = ["keywords", "issue", "insight", "occurrences", "used_count"];

fn content_of(issue: &str, insight: Option<&str>) -> String {
    match insight {
        Some(i) if !i.trim().is_empty() && i.trim() != issue.trim() => {
            format!("{}\n{}", issue.trim(), i.trim())
        }
        _ => issue.trim().to_string(),
    }
}

pub(super) fn is_v2(value: &Value) -> bool {
    value.get("schema_version").and_then(Value::as_str) == Some(SCHEMA_VERSION)
}

pub(super) fn parse(value: &Value, file: &str) -> Result<Playbook, FormatError> {
    let skills = value
        .get("skills")
        .and_then(Value::as_object)
        .ok_or_else(|| FormatError::whole(file, "a v2 skillbook needs a \"skills\" object"))?;
    let (sections, order) = super::json::skill_order(value, skills);
    let mut bullets = Vec::new();
    for key in &order {
        let skill = skills[key.as_str()]
            .as_object()
            .ok_or_else(|| FormatError::whole(file, format!("skill '{key}' is not an object")))?;
        let text = |name: &str| skill.get(name).and_then(Value::as_str).map(str::to_string);
        let count = |name: &str| super::json::whole_number(skill, name, key, file);
        let issue = text("issue")
            .filter(|i| !i.trim().is_empty())
            .ok_or_else(|| FormatError::whole(file, format!("skill '{key}' has no issue")))?;
        let insight = text("insight");
        let section = text("section").unwrap_or_else(|| "context".into());
        let mut metadata = Map::new();
        for name in KEPT {
            match skill.get(name) {
                None | Some(Value::Null) => {}
                Some(Value::Array(a)) if a.is_empty() => {}
                Some(v) => {
                    metadata.insert(name.to_string(), v.clone());
                }
            }
        }
        let active = skill.get("active").and_then(Value::as_bool).unwrap_or(true);
        bullets.push(Bullet {
            id: text("id").unwrap_or_else(|| key.clone()),
            section,
            content: content_of(&issue, insight.as_deref()),
            helpful: count("helpful_count")?,
            harmful: count("harmful_count")?,
            neutral: count("neutral_count")?,
            metadata,
            status: if active {
                BulletStatus::Active
            } else {
                BulletStatus::Removed
            },
            position: bullets.len() as i64,
            created_at: text("created_at").unwrap_or_default(),
            updated_at: text("updated_at").unwrap_or_default(),
        });
    }
    super::json::finish_skillbook(value, sections, bullets, file)
}

/// A section name as a v2 keyword: lower case, spaces as `_`.
fn keyword(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join("_")
        .to_lowercase()
}

/// The playbook as a v2 skillbook, and what it had to change or leave out.
pub(super) fn export(playbook: &Playbook) -> (String, Vec<String>) {
    let mut skills = Map::new();
    let mut by_section: Map<String, Value> = Map::new();
    let mut moved = Vec::new();
    let mut dropped_keys = std::collections::BTreeSet::new();
    let mut dropped_bullets = 0;
    for b in &playbook.bullets {
        let own = SECTIONS
            .iter()
            .find(|s| s.eq_ignore_ascii_case(b.section.trim()))
            .copied();
        let section = own.unwrap_or("context");
        let mut keywords: Vec<String> = b
            .metadata
            .get("keywords")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if own.is_none() {
            let k = keyword(&b.section);
            if !keywords.contains(&k) {
                keywords.insert(0, k);
            }
            if !moved.contains(&b.section) {
                moved.push(b.section.clone());
            }
        }
        if keywords.is_empty() {
            keywords.push(section.to_string());
        }
        // the skill's own issue and insight when the content is still what they make
        let issue = b.metadata.get("issue").and_then(Value::as_str);
        let insight = b.metadata.get("insight").and_then(Value::as_str);
        let (issue, insight) = match issue {
            Some(i) if content_of(i, insight) == b.content => {
                (i.to_string(), insight.map(str::to_string))
            }
            // a context skill needs an insight: the content is both, as ace-framework does for
            // skills of older, free-form sections
            _ => (
                b.content.clone(),
                (section == "context").then(|| b.content.clone()),
            ),
        };
        let extra: Vec<&String> = b
            .metadata
            .keys()
            .filter(|k| !KEPT.contains(&k.as_str()))
            .collect();
        if !extra.is_empty() {
            dropped_bullets += 1;
            dropped_keys.extend(extra.into_iter().cloned());
        }
        let skill = json!({
            "id": b.id,
            "section": section,
            "keywords": keywords,
            "issue": issue,
            "insight": insight,
            "occurrences": b.metadata.get("occurrences").cloned().unwrap_or_else(|| json!([])),
            "active": b.is_active(),
            "used_count": b.metadata.get("used_count").cloned().unwrap_or_else(|| json!(0)),
            "helpful_count": b.helpful,
            "harmful_count": b.harmful,
            "neutral_count": b.neutral,
            "created_at": b.created_at,
            "updated_at": b.updated_at,
        });
        skills.insert(b.id.clone(), skill);
        if let Value::Array(ids) = by_section
            .entry(section.to_string())
            .or_insert_with(|| json!([]))
        {
            ids.push(json!(b.id));
        }
    }
    let mut notes = Vec::new();
    if !moved.is_empty() {
        notes.push(format!(
            "a v2 skillbook has the sections context and harness only: the bullets of {} went to context, each section's name kept as their first keyword",
            moved
                .iter()
                .map(|s| format!("'{s}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if dropped_bullets > 0 {
        notes.push(format!(
            "metadata a v2 skill has no field for was left out ({} of {dropped_bullets} bullet(s))",
            dropped_keys.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    let value = json!({
        "schema_version": SCHEMA_VERSION,
        "skills": skills,
        "sections": by_section,
        "next_id": playbook.next_bullet_number.saturating_sub(1),
        "similarity_decisions": {},
    });
    (
        serde_json::to_string_pretty(&value).unwrap_or_default() + "\n",
        notes,
    )
}
