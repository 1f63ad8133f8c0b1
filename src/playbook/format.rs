//! Playbook file formats: the official ACE text, the `ace-framework` skillbook JSON, our lossless
//! JSON, and markdown (export only).
//!
//! Parsing is pure and all-or-nothing: a file with one bad line yields an error naming the file and
//! line, and no playbook.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use super::{Bullet, BulletStatus, Playbook, Section, parse_bullet_id, section_slug};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Official ACE text: `## SECTION` headers, `[id] helpful=X harmful=Y :: content` lines.
    Ace,
    /// Our lossless JSON (all bullets, counters, metadata, status, timestamps).
    Json,
    /// The JSON of the Python `ace-framework` package (`skills`, `sections`, `next_id`; older releases
    /// wrote `bullets` in place of `skills`).
    Skillbook,
    /// Readable markdown for a system prompt (export only).
    Markdown,
}

/// Tag of our own JSON format.
pub const JSON_FORMAT_TAG: &str = "ace-workbench-playbook/1";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct FormatError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl FormatError {
    fn at(file: &str, line: usize, message: impl Into<String>) -> Self {
        FormatError {
            file: file.to_string(),
            line: Some(line),
            message: message.into(),
        }
    }

    fn whole(file: &str, message: impl Into<String>) -> Self {
        FormatError {
            file: file.to_string(),
            line: None,
            message: message.into(),
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "ace" | "txt" | "text" => Ok(Format::Ace),
            "json" => Ok(Format::Json),
            "skillbook" => Ok(Format::Skillbook),
            "markdown" | "md" => Ok(Format::Markdown),
            other => Err(format!(
                "unknown format '{other}' (use ace, json, skillbook or markdown)"
            )),
        }
    }
}

impl Format {
    /// Guesses the format of a file from its content: JSON with `skills` (or a `bullets` map) is a
    /// skillbook, other JSON is ours, anything else is ACE text.
    pub fn detect(text: &str) -> Format {
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') {
            if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(trimmed)
                && (map.contains_key("skills") || map.get("bullets").is_some_and(Value::is_object))
            {
                return Format::Skillbook;
            }
            return Format::Json;
        }
        Format::Ace
    }
}

/// Parses a playbook file. `file` names it in errors.
pub fn parse(format: Format, text: &str, file: &str) -> Result<Playbook, FormatError> {
    let playbook = match format {
        Format::Ace => parse_ace(text, file)?,
        Format::Json => parse_json(text, file)?,
        Format::Skillbook => parse_skillbook(text, file)?,
        Format::Markdown => {
            return Err(FormatError::whole(
                file,
                "markdown is an export-only format",
            ));
        }
    };
    Ok(playbook)
}

/// Renders a playbook in a format. ACE text and markdown show active bullets only.
pub fn export(format: Format, playbook: &Playbook) -> String {
    match format {
        Format::Ace => export_ace(playbook),
        Format::Json => export_json(playbook),
        Format::Skillbook => export_skillbook(playbook),
        Format::Markdown => export_markdown(playbook),
    }
}

struct BulletLine<'a> {
    id: &'a str,
    helpful: u64,
    harmful: u64,
    neutral: u64,
    content: &'a str,
}

/// Parses `[id] helpful=X harmful=Y [neutral=Z] :: content` or `[id] content`.
fn parse_bullet_line(line: &str) -> Result<BulletLine<'_>, String> {
    let rest = line
        .strip_prefix('[')
        .ok_or("a bullet line starts with '['")?;
    let (id, rest) = rest
        .split_once(']')
        .ok_or("the bullet id has no closing ']'")?;
    let id = id.trim();
    if !super::is_valid_bullet_id(id) {
        return Err(format!("'{id}' is not a valid bullet id"));
    }
    let rest = rest.trim_start();
    let mut out = BulletLine {
        id,
        helpful: 0,
        harmful: 0,
        neutral: 0,
        content: rest,
    };
    if rest.starts_with("helpful=") {
        let (counters, content) = rest
            .split_once("::")
            .ok_or("counters must be followed by ' :: content'")?;
        for field in counters.split_whitespace() {
            let (name, value) = field
                .split_once('=')
                .ok_or_else(|| format!("'{field}' is not name=value"))?;
            let value: u64 = value
                .parse()
                .map_err(|_| format!("counter '{field}' is not a whole number"))?;
            match name {
                "helpful" => out.helpful = value,
                "harmful" => out.harmful = value,
                "neutral" => out.neutral = value,
                _ => return Err(format!("unknown counter '{name}'")),
            }
        }
        out.content = content.trim_start();
    } else if let Some((content, counters)) = framework_counters(rest) {
        (out.helpful, out.harmful, out.neutral) = counters;
        out.content = content;
    }
    if out.content.trim().is_empty() {
        return Err(format!("bullet {id} has no content"));
    }
    Ok(out)
}

/// The ace-framework prompt form puts counters last: `content (✓5 ✗0 ~1)`.
fn framework_counters(line: &str) -> Option<(&str, (u64, u64, u64))> {
    let start = line.rfind(" (✓")?;
    let inner = line[start + 2..].strip_suffix(')')?;
    let mut parts = inner.split(' ');
    let mut number = |mark: char| -> Option<u64> { parts.next()?.strip_prefix(mark)?.parse().ok() };
    let counters = (number('✓')?, number('✗')?, number('~')?);
    parts
        .next()
        .is_none()
        .then_some((line[..start].trim_end(), counters))
}

/// A section header without the bullet count some tools append: `reasoning (3 bullets)`.
fn section_name(header: &str) -> &str {
    let name = header.trim();
    if let Some(open) = name.rfind(" (")
        && let Some(count) = name[open + 2..]
            .strip_suffix(" bullets)")
            .or_else(|| name[open + 2..].strip_suffix(" bullet)"))
        && !count.is_empty()
        && count.chars().all(|c| c.is_ascii_digit())
    {
        return name[..open].trim_end();
    }
    name
}

fn parse_ace(text: &str, file: &str) -> Result<Playbook, FormatError> {
    let mut sections: Vec<String> = Vec::new();
    let mut bullets: Vec<Bullet> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    // A plain text line right after a bullet continues it (multi-line content from other tools).
    let mut continuing = false;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim_end();
        if line.trim().is_empty() {
            continuing = false;
            continue;
        }
        if let Some(name) = line.strip_prefix("## ") {
            let name = section_name(name);
            if name.is_empty() {
                return Err(FormatError::at(
                    file,
                    line_no,
                    "section header without a name",
                ));
            }
            if sections.iter().any(|s| s == name) {
                return Err(FormatError::at(
                    file,
                    line_no,
                    format!("section '{name}' appears twice"),
                ));
            }
            sections.push(name.to_string());
            continuing = false;
            continue;
        }
        // Some tools write bullets as list items: `- [id] …` or `* [id] …`.
        let bullet = line.trim_start();
        let bullet = bullet
            .strip_prefix("- ")
            .or_else(|| bullet.strip_prefix("* "))
            .unwrap_or(bullet);
        if bullet.starts_with('[') {
            let parsed =
                parse_bullet_line(bullet.trim()).map_err(|m| FormatError::at(file, line_no, m))?;
            let Some(section) = sections.last() else {
                return Err(FormatError::at(
                    file,
                    line_no,
                    "bullet before any '## SECTION' header",
                ));
            };
            if let Some(first) = seen.insert(parsed.id.to_string(), line_no) {
                return Err(FormatError::at(
                    file,
                    line_no,
                    format!("bullet id {} already used on line {first}", parsed.id),
                ));
            }
            bullets.push(Bullet {
                id: parsed.id.to_string(),
                section: section.clone(),
                content: parsed.content.trim().to_string(),
                helpful: parsed.helpful,
                harmful: parsed.harmful,
                neutral: parsed.neutral,
                metadata: Map::new(),
                status: BulletStatus::Active,
                position: bullets.len() as i64,
                created_at: String::new(),
                updated_at: String::new(),
            });
            continuing = true;
            continue;
        }
        match bullets.last_mut() {
            Some(last) if continuing => {
                last.content.push('\n');
                last.content.push_str(line);
            }
            // A markdown title (`# Playbook`) or an HTML comment (section templates of other tools)
            // outside a bullet carries nothing to keep.
            _ if line.starts_with("# ")
                || (bullet.starts_with("<!--") && line.ends_with("-->")) => {}
            _ => {
                return Err(FormatError::at(
                    file,
                    line_no,
                    format!(
                        "expected '## SECTION' or '[id] content', found \"{}\"",
                        preview(line)
                    ),
                ));
            }
        }
    }
    if sections.is_empty() {
        return Err(FormatError::whole(
            file,
            "no '## SECTION' header found; is this an ACE playbook?",
        ));
    }
    let slugs = slugs_from_ids(&sections, &bullets);
    Ok(Playbook {
        name: String::new(),
        sections: sections
            .iter()
            .enumerate()
            .map(|(i, name)| Section {
                name: name.clone(),
                slug: slugs[i].clone(),
                position: i as i64,
                removed: false,
            })
            .collect(),
        next_bullet_number: next_number(&bullets),
        bullets,
        ..Default::default()
    })
}

fn preview(s: &str) -> String {
    let p: String = s.chars().take(60).collect();
    if s.chars().count() > 60 {
        format!("{p}…")
    } else {
        p
    }
}

/// Section slugs for formats that do not store them (ACE text, skillbook): a section takes the most
/// common id prefix among its bullets, unless a section with more such bullets claimed that prefix
/// first (bullets moved between sections keep their ids); otherwise the slug comes from its name.
fn slugs_from_ids(sections: &[String], bullets: &[Bullet]) -> Vec<String> {
    let best: Vec<Option<(String, usize)>> = sections
        .iter()
        .map(|name| {
            let mut counts: HashMap<&str, usize> = HashMap::new();
            for b in bullets.iter().filter(|b| &b.section == name) {
                if let Some((slug, _)) = parse_bullet_id(&b.id) {
                    *counts.entry(slug).or_default() += 1;
                }
            }
            counts
                .into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
                .map(|(s, n)| (s.to_string(), n))
        })
        .collect();
    let mut order: Vec<usize> = (0..sections.len()).collect();
    order.sort_by_key(|i| std::cmp::Reverse(best[*i].as_ref().map_or(0, |(_, n)| *n)));
    let mut claimed = HashSet::new();
    let mut slugs = vec![String::new(); sections.len()];
    for i in order {
        slugs[i] = match &best[i] {
            Some((slug, _)) if claimed.insert(slug.clone()) => slug.clone(),
            _ => section_slug(&sections[i]),
        };
    }
    slugs
}

fn next_number(bullets: &[Bullet]) -> u64 {
    bullets
        .iter()
        .filter_map(|b| parse_bullet_id(&b.id).map(|(_, n)| n + 1))
        .max()
        .unwrap_or(1)
}

fn export_ace(playbook: &Playbook) -> String {
    let mut out = String::new();
    for (i, section) in playbook.sections.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "## {}", section.name);
        for b in playbook.section_bullets(&section.name) {
            let _ = writeln!(
                out,
                "[{}] helpful={} harmful={} :: {}",
                b.id, b.helpful, b.harmful, b.content
            );
        }
    }
    out
}

fn export_markdown(playbook: &Playbook) -> String {
    let mut out = String::new();
    if !playbook.name.is_empty() {
        let _ = writeln!(out, "# Playbook: {}\n", playbook.name);
    }
    for section in &playbook.sections {
        let bullets: Vec<&Bullet> = playbook.section_bullets(&section.name).collect();
        if bullets.is_empty() {
            continue;
        }
        let _ = writeln!(out, "## {}\n", section.name);
        for b in bullets {
            let content = b.content.replace('\n', "\n  ");
            let _ = writeln!(
                out,
                "- **[{}]** {} _(helpful {}, harmful {})_",
                b.id, content, b.helpful, b.harmful
            );
        }
        out.push('\n');
    }
    out
}

fn export_json(playbook: &Playbook) -> String {
    let value = json!({
        "format": JSON_FORMAT_TAG,
        "name": playbook.name,
        "next_bullet_number": playbook.next_bullet_number,
        "sections": playbook.sections,
        "bullets": playbook.bullets,
    });
    serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
}

fn parse_json(text: &str, file: &str) -> Result<Playbook, FormatError> {
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

fn parse_skillbook(text: &str, file: &str) -> Result<Playbook, FormatError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| FormatError::at(file, e.line(), format!("invalid JSON: {e}")))?;
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
    let mut bullets = Vec::new();
    for key in &order {
        let skill = skills[key.as_str()]
            .as_object()
            .ok_or_else(|| FormatError::whole(file, format!("skill '{key}' is not an object")))?;
        let text_field = |name: &str| skill.get(name).and_then(Value::as_str).map(str::to_string);
        let count = |name: &str| -> Result<u64, FormatError> {
            match skill.get(name) {
                None | Some(Value::Null) => Ok(0),
                Some(v) => v.as_u64().ok_or_else(|| {
                    FormatError::whole(
                        file,
                        format!("skill '{key}': '{name}' is not a whole number"),
                    )
                }),
            }
        };
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
    // Sections the `sections` map leaves out come from the skills; a removed skill's section alone
    // is a removed section, so it is not listed.
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
    let slugs = slugs_from_ids(&sections, &bullets);
    Ok(Playbook {
        name: String::new(),
        sections: sections
            .iter()
            .enumerate()
            .map(|(i, name)| Section {
                name: name.clone(),
                slug: slugs[i].clone(),
                position: i as i64,
                removed: false,
            })
            .collect(),
        next_bullet_number: next_number(&bullets).max(next_id + 1),
        bullets,
        ..Default::default()
    })
}

fn export_skillbook(playbook: &Playbook) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_official_line_forms() {
        let text = "## FORMULAS\n[calc-00001] helpful=3 harmful=1 :: Use ROI = gain / cost\n[calc-00002] Bare bullet\n\n## OTHERS\n";
        let p = parse(Format::Ace, text, "f.txt").unwrap();
        assert_eq!(p.sections.len(), 2);
        assert_eq!(p.sections[0].slug, "calc");
        assert_eq!(p.sections[1].slug, "misc");
        assert_eq!((p.bullets[0].helpful, p.bullets[0].harmful), (3, 1));
        assert_eq!(p.bullets[0].content, "Use ROI = gain / cost");
        assert_eq!(p.bullets[1].content, "Bare bullet");
        assert_eq!(p.next_bullet_number, 3);
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let err = parse(Format::Ace, "## A\n[a-00001] ok\n\njunk here\n", "pb.txt").unwrap_err();
        assert_eq!(
            err.to_string(),
            "pb.txt:4: expected '## SECTION' or '[id] content', found \"junk here\""
        );
        let err = parse(Format::Ace, "## A\n[a-00001 helpful=1\n", "pb.txt").unwrap_err();
        assert_eq!(err.line, Some(2));
        let err = parse(
            Format::Ace,
            "## A\n[a-1] helpful=x harmful=0 :: c\n",
            "pb.txt",
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("pb.txt:2: counter 'helpful=x'"));
        let err = parse(Format::Ace, "[a-1] c\n", "pb.txt").unwrap_err();
        assert!(err.to_string().contains("before any"));
        let err = parse(Format::Ace, "## A\n[a-1] c\n[a-1] d\n", "pb.txt").unwrap_err();
        assert_eq!(
            err.to_string(),
            "pb.txt:3: bullet id a-1 already used on line 2"
        );
    }

    #[test]
    fn list_item_bullets_are_bullets() {
        let p = parse(
            Format::Ace,
            "## A\n- [a-00001] helpful=2 harmful=0 :: first\n* [a-00002] second\n",
            "f",
        )
        .unwrap();
        assert_eq!(p.bullets.len(), 2);
        assert_eq!(
            (p.bullets[0].content.as_str(), p.bullets[0].helpful),
            ("first", 2)
        );
        assert_eq!(p.bullets[1].content, "second");
    }

    #[test]
    fn continuation_lines_join_the_previous_bullet() {
        let p = parse(Format::Ace, "## A\n[a-00001] first\n  second line\n", "f").unwrap();
        assert_eq!(p.bullets[0].content, "first\n  second line");
    }

    #[test]
    fn the_ace_framework_prompt_and_markdown_forms_read_with_their_counters() {
        let text = "# Playbook (3 bullets)\n## reasoning (2 bullets)\n\
                    - [reasoning-00001] Break questions into sub-questions (✓5 ✗0 ~1)\n\
                    - [reasoning-00002] Check units (twice) (✓0 ✗2 ~0)\n\
                    ## tools (1 bullet)\n- [tools-00003] Keep the (✓ mark) as text\n";
        let p = parse(Format::Ace, text, "f").unwrap();
        let names: Vec<_> = p.sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["reasoning", "tools"]);
        let b = &p.bullets;
        assert_eq!(b[0].content, "Break questions into sub-questions");
        assert_eq!((b[0].helpful, b[0].harmful, b[0].neutral), (5, 0, 1));
        assert_eq!(b[1].content, "Check units (twice)");
        assert_eq!((b[1].helpful, b[1].harmful), (0, 2));
        assert_eq!(b[2].content, "Keep the (✓ mark) as text", "not counters");
        assert_eq!(section_name("Costs (in USD)"), "Costs (in USD)");
    }

    #[test]
    fn a_title_and_comments_outside_bullets_are_skipped_but_kept_inside_them() {
        let text = "# Agent Playbook\n\n## Tools\n<!-- best practices for tools -->\n\
                    [tool-00001] A snippet:\n# compute the ratio\nr = a / b\n\n## Empty\n<!-- none yet -->\n";
        let p = parse(Format::Ace, text, "f").unwrap();
        let names: Vec<_> = p.sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["Tools", "Empty"]);
        assert_eq!(p.bullets.len(), 1);
        assert_eq!(
            p.bullets[0].content,
            "A snippet:\n# compute the ratio\nr = a / b"
        );
        // anything else outside a bullet is still an error
        let err = parse(Format::Ace, "# Title\n## A\n\n<!-- open\n", "pb.txt").unwrap_err();
        assert_eq!(err.line, Some(4));
    }
}
