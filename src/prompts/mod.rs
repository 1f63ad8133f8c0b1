//! Versioned prompt templates (files in `assets/prompts/`, compiled in) and their assembly.
//!
//! Each role's prompt is a system message (instructions, then the playbook: the parts that change
//! rarely) and a user message (the question, the attempt, the reflection: the parts that change every
//! call), so consecutive calls share the longest possible prefix for providers' prompt caches. The
//! playbook is rendered in one stable order ([`render`]), for the generator without the counters
//! that change after every batch; a large playbook is cut to the bullets relevant to the task
//! ([`retrieval`]). Sizes are counted in real BPE tokens ([`tokens`]).

mod render;
pub mod retrieval;

use serde_json::Value;

use crate::delta::content_hash;
use crate::llm::{Message, OutputSchema, PlaybookText, Recipe, Role};
use crate::playbook::{Bullet, Playbook, View};

pub use render::{
    bullet_cost, bullet_line, change_cost, playbook_tokens, render, section_cost, tokens,
};
pub use retrieval::{Index, Retrieval};

struct Template {
    system: &'static str,
    user: &'static str,
    schema: &'static str,
}

const GENERATOR: Template = Template {
    system: include_str!("../../assets/prompts/generator.system.md"),
    user: include_str!("../../assets/prompts/generator.user.md"),
    schema: include_str!("../../assets/prompts/generator.schema.json"),
};
const REFLECTOR: Template = Template {
    system: include_str!("../../assets/prompts/reflector.system.md"),
    user: include_str!("../../assets/prompts/reflector.user.md"),
    schema: include_str!("../../assets/prompts/reflector.schema.json"),
};
const CURATOR: Template = Template {
    system: include_str!("../../assets/prompts/curator.system.md"),
    user: include_str!("../../assets/prompts/curator.user.md"),
    schema: include_str!("../../assets/prompts/curator.schema.json"),
};
const REPAIR: &str = include_str!("../../assets/prompts/repair.md");

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
/// e.g. `generator-v2-3f2a9c1e`, so an edited template can never pass for the old one.
pub fn version(role: Role) -> String {
    compiled(role).version.clone()
}

/// What each role's templates give once: the version id and the answer's schema.
struct Compiled {
    version: String,
    schema: Value,
}

fn compiled(role: Role) -> &'static Compiled {
    static COMPILED: std::sync::OnceLock<Vec<Compiled>> = std::sync::OnceLock::new();
    let all = COMPILED.get_or_init(|| {
        Role::ALL
            .iter()
            .map(|&role| {
                let t = template(role);
                let (declared, _) = body(t.system);
                let hash = content_hash(format!("{}{}{}", t.system, t.user, t.schema).as_bytes());
                Compiled {
                    version: format!("{}-{declared}-{:08x}", role.as_str(), hash as u32),
                    schema: serde_json::from_str(t.schema).unwrap_or(Value::Null),
                }
            })
            .collect()
    });
    &all[Role::ALL.iter().position(|r| *r == role).unwrap_or(0)]
}

/// The JSON schema of a role's answer.
pub fn schema(role: Role) -> OutputSchema {
    OutputSchema {
        name: format!("ace_{}", role.as_str()),
        schema: compiled(role).schema.clone(),
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
    /// The playbook text the system message carries, and how to rebuild it.
    pub playbook: Option<PlaybookText>,
    /// How each message was made (see [`Recipe`]).
    pub recipes: Vec<Option<Recipe>>,
}

/// The text of a message made by `template` filled with `values` (see [`Recipe`]): how a prompt is
/// made, and how a stored one is made again.
pub fn rebuild(template: &str, values: &[(&str, &str)], trim_start: bool) -> String {
    let text = fill(template, values);
    if trim_start {
        text.trim().to_string()
    } else {
        text.trim_end().to_string()
    }
}

fn message(template: &'static str, values: &[(&'static str, &str)], trim_start: bool) -> Recipe {
    Recipe {
        template,
        values: values.iter().map(|(k, v)| (*k, (*v).to_string())).collect(),
        trim_start,
    }
}

fn prompt(role: Role, system: &[(&'static str, &str)], user: &[(&'static str, &str)]) -> Prompt {
    let t = template(role);
    let user = message(body(t.user).1, user, true);
    let values: Vec<(&str, &str)> = user.values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let user_text = rebuild(user.template, &values, true);
    Prompt {
        role,
        version: version(role),
        messages: vec![
            Message::system(rebuild(body(t.system).1, system, false)),
            Message::user(user_text),
        ],
        schema: schema(role),
        playbook: None,
        // the system message holds only the playbook (stored by its view) and fixed text
        recipes: vec![
            system
                .is_empty()
                .then(|| message(body(t.system).1, &[], false)),
            Some(user),
        ],
    }
}

/// `playbook` rendered for `view`, ready to fill a template and to be recorded by reference.
fn playbook_text(playbook: &Playbook, view: View) -> PlaybookText {
    PlaybookText {
        text: render(playbook, &view),
        view,
    }
}

fn labelled(label: &str, text: Option<&str>) -> String {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => format!("{label}:\n{t}\n\n"),
        None => String::new(),
    }
}

/// The generator's prompt: the playbook as `view` shows it (no counters), then the task.
pub fn generator(
    playbook: &Playbook,
    view: View,
    question: &str,
    context: &str,
    reflection: Option<&str>,
) -> Prompt {
    let shown = playbook_text(playbook, view);
    let reflection = labelled(
        "YOUR PREVIOUS ATTEMPT AT THIS TASK WAS WRONG. REFLECTION ON IT",
        reflection,
    );
    let context = if context.trim().is_empty() {
        String::new()
    } else {
        format!("\nCONTEXT:\n{}", context.trim())
    };
    let mut p = prompt(
        Role::Generator,
        &[("playbook", &shown.text)],
        &[
            ("reflection", &reflection),
            ("question", question.trim()),
            ("context", &context),
        ],
    );
    p.playbook = Some(shown);
    p
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

/// The curator's prompt: the playbook as `view` shows it (with counters), its statistics, and the
/// batch's reflections.
pub fn curator(playbook: &Playbook, view: View, stats: &str, reflections: &str) -> Prompt {
    let shown = playbook_text(playbook, view);
    let mut p = prompt(
        Role::Curator,
        &[("playbook", &shown.text)],
        &[("stats", stats), ("reflections", reflections)],
    );
    p.playbook = Some(shown);
    p
}

/// The follow-up message of the one repair re-ask, quoting why the answer could not be used.
pub fn repair(error: &str) -> Message {
    Message::user(fill(body(REPAIR).1, &[("error", error)]).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_name_role_declared_version_and_hash() {
        let v = version(Role::Generator);
        assert!(v.starts_with("generator-v2-"), "{v}");
        assert_eq!(v.len(), "generator-v2-".len() + 8);
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
