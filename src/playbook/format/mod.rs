//! Playbook file formats: the official ACE text, the `ace-framework` skillbook JSON, our lossless
//! JSON, and markdown (export only).
//!
//! Parsing is pure and all-or-nothing: a file with one bad line yields an error naming the file and
//! line, and no playbook.

mod ace;
mod json;
mod skillbook_v2;

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::{Bullet, Playbook, Section, parse_bullet_id, section_slug};

use ace::{export_ace, export_markdown, parse_ace};
use json::{export_json, export_skillbook, parse_json, parse_skillbook};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Official ACE text: `## SECTION` headers, `[id] helpful=X harmful=Y :: content` lines.
    Ace,
    /// Our lossless JSON (all bullets, counters, metadata, status, timestamps).
    Json,
    /// The JSON of the Python `ace-framework` package (`skills`, `sections`, `next_id`; older releases
    /// wrote `bullets` in place of `skills`).
    Skillbook,
    /// The current `ace-framework` skillbook (`"schema_version": "2"`: sections `context` and
    /// `harness`, skills with keywords, issue and insight). Read as `skillbook` too.
    SkillbookV2,
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
            "skillbook-v2" | "skillbook2" => Ok(Format::SkillbookV2),
            "markdown" | "md" => Ok(Format::Markdown),
            other => Err(format!(
                "unknown format '{other}' (use ace, json, skillbook, skillbook-v2 or markdown)"
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
        Format::Skillbook | Format::SkillbookV2 => parse_skillbook(text, file)?,
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
        Format::SkillbookV2 => skillbook_v2::export(playbook).0,
        Format::Markdown => export_markdown(playbook),
    }
}

/// What an export for an agent's prompt shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PromptOptions {
    /// Bullet ids (`[calc-00001]`), for agents asked to cite them.
    pub ids: bool,
    /// helpful/harmful counts.
    pub counters: bool,
    /// Bullets more harmful than helpful, left out unless asked.
    pub harmful: bool,
}

/// The playbook as text to paste into an agent's prompt: active bullets under their sections as
/// markdown list items, without ids or counters unless asked, without harmful-dominated bullets
/// unless asked.
pub fn export_prompt(playbook: &Playbook, options: PromptOptions) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for section in &playbook.sections {
        let bullets: Vec<&Bullet> = playbook
            .section_bullets(&section.name)
            .filter(|b| options.harmful || b.harmful <= b.helpful)
            .collect();
        if bullets.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        let _ = writeln!(out, "## {}\n", section.name);
        for b in bullets {
            let id = if options.ids {
                format!("[{}] ", b.id)
            } else {
                String::new()
            };
            let counters = if options.counters {
                format!(" (helpful {}, harmful {})", b.helpful, b.harmful)
            } else {
                String::new()
            };
            let _ = writeln!(out, "- {id}{}{counters}", b.content.replace('\n', "\n  "));
        }
    }
    out
}

/// [`export`], with what the format could not carry (said to the person exporting).
pub fn export_with_notes(format: Format, playbook: &Playbook) -> (String, Vec<String>) {
    match format {
        Format::SkillbookV2 => skillbook_v2::export(playbook),
        other => (export(other, playbook), Vec::new()),
    }
}

pub(super) fn preview(s: &str) -> String {
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

/// A parsed playbook: its sections in file order (slugs from the ids, see [`slugs_from_ids`]) and
/// its bullets, the id counter past every id and at least `next_at_least`.
pub(super) fn assemble(sections: &[String], bullets: Vec<Bullet>, next_at_least: u64) -> Playbook {
    let slugs = slugs_from_ids(sections, &bullets);
    Playbook {
        name: String::new(),
        sections: sections
            .iter()
            .zip(slugs)
            .enumerate()
            .map(|(i, (name, slug))| Section {
                name: name.clone(),
                slug,
                position: i as i64,
                removed: false,
            })
            .collect(),
        next_bullet_number: next_number(&bullets).max(next_at_least),
        bullets,
        ..Default::default()
    }
}

fn next_number(bullets: &[Bullet]) -> u64 {
    bullets
        .iter()
        .filter_map(|b| parse_bullet_id(&b.id).map(|(_, n)| n + 1))
        .max()
        .unwrap_or(1)
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
        assert_eq!(ace::section_name("Costs (in USD)"), "Costs (in USD)");
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
