//! The official ACE text (`## SECTION` headers, `[id] helpful=X harmful=Y :: content` lines, and
//! the forms other tools write) and markdown.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::Map;

use super::{FormatError, assemble, preview};
use crate::playbook::{Bullet, BulletStatus, Playbook};

/// How a content's second and later lines start in the ACE text.
const CONTINUATION: &str = "    ";

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
    if !crate::playbook::is_valid_bullet_id(id) {
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
pub(super) fn section_name(header: &str) -> &str {
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

pub(super) fn parse_ace(text: &str, file: &str) -> Result<Playbook, FormatError> {
    let mut sections: Vec<String> = Vec::new();
    let mut bullets: Vec<Bullet> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    // A plain text line right after a bullet continues it (multi-line content from other tools).
    let mut continuing = false;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        // Our continuation lines: indented by four spaces, taken as they are (a `## X` or
        // `[id] helpful=9` there is content, not a section or a bullet; "    " alone is an empty
        // line of content).
        if continuing && let Some(rest) = raw.strip_prefix(CONTINUATION) {
            if let Some(last) = bullets.last_mut() {
                last.content.push('\n');
                last.content.push_str(rest);
            }
            continue;
        }
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
            // the first line's trailing spaces belong to a content that goes on below
            let trailing = &raw[line.len()..];
            bullets.push(Bullet {
                id: parsed.id.to_string(),
                section: section.clone(),
                content: format!("{}{trailing}", parsed.content.trim()),
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
    Ok(assemble(&sections, bullets, 1))
}

pub(super) fn export_ace(playbook: &Playbook) -> String {
    let mut out = String::new();
    for (i, section) in playbook.sections.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "## {}", section.name);
        for b in playbook.section_bullets(&section.name) {
            // a content of several lines goes on in indented lines (read back exactly)
            let mut lines = b.content.split('\n');
            let _ = writeln!(
                out,
                "[{}] helpful={} harmful={} :: {}",
                b.id,
                b.helpful,
                b.harmful,
                lines.next().unwrap_or_default()
            );
            for line in lines {
                let _ = writeln!(out, "{CONTINUATION}{line}");
            }
        }
    }
    out
}

pub(super) fn export_markdown(playbook: &Playbook) -> String {
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
