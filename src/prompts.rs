//! Versioned prompt templates (files in `assets/prompts/`, compiled in) and their assembly.
//!
//! Each role's prompt is a system message (instructions, then the playbook: the parts that change
//! rarely) and a user message (the question, the attempt, the reflection: the parts that change every
//! call), so consecutive calls share the longest possible prefix for providers' prompt caches. The
//! playbook is rendered in one stable order: sections in their order, bullets in theirs.

use serde_json::Value;

use crate::delta::content_hash;
use crate::llm::{Message, OutputSchema, Role};
use crate::playbook::format::{Format, export};
use crate::playbook::{Bullet, Playbook};

struct Template {
    system: &'static str,
    user: &'static str,
    schema: &'static str,
}

const GENERATOR: Template = Template {
    system: include_str!("../assets/prompts/generator.system.md"),
    user: include_str!("../assets/prompts/generator.user.md"),
    schema: include_str!("../assets/prompts/generator.schema.json"),
};
const REFLECTOR: Template = Template {
    system: include_str!("../assets/prompts/reflector.system.md"),
    user: include_str!("../assets/prompts/reflector.user.md"),
    schema: include_str!("../assets/prompts/reflector.schema.json"),
};
const CURATOR: Template = Template {
    system: include_str!("../assets/prompts/curator.system.md"),
    user: include_str!("../assets/prompts/curator.user.md"),
    schema: include_str!("../assets/prompts/curator.schema.json"),
};
const REPAIR: &str = include_str!("../assets/prompts/repair.md");

fn template(role: Role) -> &'static Template {
    match role {
        Role::Generator => &GENERATOR,
        Role::Reflector => &REFLECTOR,
        Role::Curator => &CURATOR,
    }
}

/// Splits off the `<!-- ace-prompt NAME vN -->` header line; returns (declared version, body).
fn body(text: &'static str) -> (&'static str, &'static str) {
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let version = first
        .trim()
        .strip_prefix("<!-- ace-prompt ")
        .and_then(|s| s.strip_suffix("-->"))
        .and_then(|s| s.split_whitespace().nth(1))
        .unwrap_or("v0");
    (version, rest)
}

/// The version id recorded with every call: role, declared version and a hash of the template text,
/// e.g. `generator-v1-3f2a9c1e`, so an edited template can never pass for the old one.
pub fn version(role: Role) -> String {
    let t = template(role);
    let (declared, _) = body(t.system);
    let hash = content_hash(format!("{}{}{}", t.system, t.user, t.schema).as_bytes());
    format!("{}-{declared}-{:08x}", role.as_str(), hash as u32)
}

/// The JSON schema of a role's answer.
pub fn schema(role: Role) -> OutputSchema {
    let schema: Value = serde_json::from_str(template(role).schema).unwrap_or(Value::Null);
    OutputSchema {
        name: format!("ace_{}", role.as_str()),
        schema,
    }
}

fn fill(text: &str, values: &[(&str, &str)]) -> String {
    let mut out = text.to_string();
    for (key, value) in values {
        out = out.replace(&format!("{{{{{key}}}}}"), value);
    }
    // Optional parts left empty must not leave runs of blank lines behind.
    while out.contains("\n\n\n") {
        out = out.replace("\n\n\n", "\n\n");
    }
    out
}

/// A prompt ready to send: messages, schema and version.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub role: Role,
    pub version: String,
    pub messages: Vec<Message>,
    pub schema: OutputSchema,
}

fn prompt(role: Role, system: &[(&str, &str)], user: &[(&str, &str)]) -> Prompt {
    let t = template(role);
    Prompt {
        role,
        version: version(role),
        messages: vec![
            Message::system(fill(body(t.system).1, system).trim_end().to_string()),
            Message::user(fill(body(t.user).1, user).trim().to_string()),
        ],
        schema: schema(role),
    }
}

/// The playbook as prompt text: `## section` then `[id] helpful=X harmful=Y :: content`, active bullets,
/// stable order (the official ACE text format).
pub fn render_playbook(playbook: &Playbook) -> String {
    if playbook.active_bullets().next().is_none() {
        return "(the playbook is empty so far)".to_string();
    }
    export(Format::Ace, playbook).trim_end().to_string()
}

fn labelled(label: &str, text: Option<&str>) -> String {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => format!("{label}:\n{t}\n\n"),
        None => String::new(),
    }
}

pub fn generator(
    playbook: &str,
    question: &str,
    context: &str,
    reflection: Option<&str>,
) -> Prompt {
    let reflection = labelled(
        "YOUR PREVIOUS ATTEMPT AT THIS TASK WAS WRONG. REFLECTION ON IT",
        reflection,
    );
    let context = if context.trim().is_empty() {
        String::new()
    } else {
        format!("\nCONTEXT:\n{}", context.trim())
    };
    prompt(
        Role::Generator,
        &[("playbook", playbook)],
        &[
            ("reflection", &reflection),
            ("question", question.trim()),
            ("context", &context),
        ],
    )
}

/// What the Reflector sees of one attempt.
pub struct ReflectorPrompt<'a> {
    pub question: &'a str,
    pub context: &'a str,
    pub reasoning: &'a str,
    pub answer: &'a str,
    pub ground_truth: Option<&'a str>,
    pub feedback: &'a str,
    pub used: &'a [Bullet],
    /// The previous round's reflection (JSON), when refining.
    pub previous: Option<&'a str>,
}

pub fn reflector(p: &ReflectorPrompt<'_>) -> Prompt {
    let used = if p.used.is_empty() {
        "(none cited)".to_string()
    } else {
        p.used
            .iter()
            .map(|b| {
                format!(
                    "[{}] helpful={} harmful={} :: {}",
                    b.id, b.helpful, b.harmful, b.content
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let previous = p
        .previous
        .map(|r| format!("\nYOUR PREVIOUS REFLECTION (refine it: correct mistakes, sharpen the key insight):\n{r}"))
        .unwrap_or_default();
    let context = if p.context.trim().is_empty() {
        String::new()
    } else {
        format!("CONTEXT:\n{}", p.context.trim())
    };
    prompt(
        Role::Reflector,
        &[],
        &[
            ("question", p.question.trim()),
            ("context", &context),
            ("reasoning", p.reasoning.trim()),
            ("answer", p.answer.trim()),
            ("ground_truth", &labelled("CORRECT ANSWER", p.ground_truth)),
            ("feedback", p.feedback.trim()),
            ("used_bullets", &used),
            ("previous", &previous),
        ],
    )
}

pub fn curator(playbook: &str, stats: &str, reflections: &str) -> Prompt {
    prompt(
        Role::Curator,
        &[("playbook", playbook)],
        &[("stats", stats), ("reflections", reflections)],
    )
}

/// The follow-up message of the one repair re-ask, quoting why the answer could not be used.
pub fn repair(error: &str) -> Message {
    Message::user(fill(body(REPAIR).1, &[("error", error)]).trim().to_string())
}

/// Rough token count (4 characters a token), enough for budgets and statistics.
pub fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}

/// For large playbooks: the `k` bullets most relevant to `query` (BM25 over an in-memory SQLite FTS5
/// index, `porter unicode61` tokenizer), cut to `token_budget`, returned in playbook order with every
/// section header kept. Bullets are never reordered, so the rendering stays stable.
pub fn retrieve(
    playbook: &Playbook,
    query: &str,
    k: usize,
    token_budget: usize,
) -> rusqlite::Result<Playbook> {
    let conn = rusqlite::Connection::open_in_memory()?;
    conn.execute_batch(
        "CREATE VIRTUAL TABLE b USING fts5(idx UNINDEXED, content, tokenize = 'porter unicode61')",
    )?;
    let active: Vec<&Bullet> = playbook.active_bullets().collect();
    {
        let mut insert = conn.prepare("INSERT INTO b (idx, content) VALUES (?1, ?2)")?;
        for (i, bullet) in active.iter().enumerate() {
            insert.execute(rusqlite::params![i as i64, bullet.content])?;
        }
    }
    // Quote every word so user text can never be read as FTS5 syntax; OR them for recall.
    let terms: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() > 1)
        .map(|w| format!("\"{}\"", w.to_lowercase()))
        .collect();
    let mut chosen: Vec<usize> = Vec::new();
    if !terms.is_empty() {
        let mut stmt =
            conn.prepare("SELECT idx FROM b WHERE b MATCH ?1 ORDER BY bm25(b) LIMIT ?2")?;
        let mut used = 0usize;
        for idx in stmt.query_map(rusqlite::params![terms.join(" OR "), k as i64], |r| {
            r.get::<_, i64>(0)
        })? {
            let i = idx? as usize;
            let cost = estimate_tokens(&active[i].content) + 8;
            if used + cost > token_budget {
                continue;
            }
            used += cost;
            chosen.push(i);
        }
    }
    chosen.sort_unstable();
    let mut subset = Playbook {
        bullets: chosen.into_iter().map(|i| active[i].clone()).collect(),
        ..playbook.clone()
    };
    subset.bullets.retain(|b| b.is_active());
    Ok(subset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_name_role_declared_version_and_hash() {
        let v = version(Role::Generator);
        assert!(v.starts_with("generator-v1-"), "{v}");
        assert_eq!(v.len(), "generator-v1-".len() + 8);
        assert_ne!(version(Role::Generator), version(Role::Curator));
    }

    #[test]
    fn schemas_parse_and_are_strict() {
        for role in Role::ALL {
            let s = schema(role);
            assert_eq!(s.schema["additionalProperties"], false, "{role}");
            assert!(s.schema["required"].as_array().unwrap().len() >= 2);
        }
    }
}
