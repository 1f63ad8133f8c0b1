//! The Generator: answers a task with the playbook and names the bullets it used.

use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{RoleError, call_structured, cited_ids, opt_text, text_field};
use crate::llm::{CallRecord, LlmClient, TraceIds};
use crate::playbook::{Playbook, View};
use crate::prompts;

pub struct GeneratorInput<'a> {
    pub playbook: &'a Playbook,
    /// The bullets to show (chosen by [`prompts::retrieval`]); `None`: the whole playbook.
    pub shown: Option<&'a [String]>,
    pub question: &'a str,
    pub context: &'a str,
    /// The reflection on a previous wrong attempt at the same task, if any.
    pub reflection: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GeneratorOutput {
    pub reasoning: String,
    /// Ids the answer cited that exist (active) in the playbook: the JSON field first, then citations
    /// in the text, without repeats.
    pub bullet_ids: Vec<String>,
    /// Cited ids the playbook does not have, or the generator was not shown (dropped from
    /// `bullet_ids`).
    pub unknown_ids: Vec<String>,
    pub final_answer: String,
    #[serde(skip)]
    pub calls: Vec<CallRecord>,
}

struct Parsed {
    reasoning: String,
    ids: Vec<String>,
    final_answer: String,
}

fn parse(v: &Value) -> Result<Parsed, String> {
    let final_answer = text_field(v, "final_answer")?;
    let reasoning = opt_text(v, "reasoning")?;
    let mut ids: Vec<String> = Vec::new();
    match v.get("bullet_ids") {
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::String(s) => {
                        ids.extend(cited_ids(&format!("[{}]", s.trim_matches(['[', ']']))))
                    }
                    _ => return Err("\"bullet_ids\" must be an array of strings".into()),
                }
            }
        }
        Some(Value::String(s)) => {
            ids.extend(cited_ids(&format!("[{}]", s.trim_matches(['[', ']']))))
        }
        None | Some(Value::Null) => {}
        Some(_) => return Err("\"bullet_ids\" must be an array of strings".into()),
    }
    ids.extend(cited_ids(&reasoning));
    ids.extend(cited_ids(&final_answer));
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(id.clone()));
    Ok(Parsed {
        reasoning,
        ids,
        final_answer: final_answer.trim().to_string(),
    })
}

pub async fn generate(
    client: &dyn LlmClient,
    input: &GeneratorInput<'_>,
    trace: &TraceIds,
    cancel: &CancellationToken,
) -> Result<GeneratorOutput, RoleError> {
    let view = View {
        revision: input.playbook.revision,
        bullets: input.shown.map(<[String]>::to_vec),
        counters: false,
    };
    let prompt = prompts::generator(
        input.playbook,
        view,
        input.question,
        input.context,
        input.reflection,
    );
    let (parsed, calls) = call_structured(client, &prompt, trace, cancel, parse).await?;
    // a bullet counts as used only if the generator was shown it (with retrieval, a selection)
    // ids are matched as a model writes them (any case, brackets or punctuation around them)
    let mut bullet_ids: Vec<String> = Vec::new();
    let mut unknown_ids: Vec<String> = Vec::new();
    for raw in parsed.ids {
        let known = input.playbook.canonical_id(&raw).filter(|id| {
            input.shown.is_none_or(|s| s.iter().any(|x| x == id))
                && input.playbook.bullet(id).is_some_and(|b| b.is_active())
        });
        match known {
            Some(id) if !bullet_ids.iter().any(|x| x == id) => bullet_ids.push(id.to_string()),
            Some(_) => {}
            None if !unknown_ids.contains(&raw) => unknown_ids.push(raw),
            None => {}
        }
    }
    Ok(GeneratorOutput {
        reasoning: parsed.reasoning,
        bullet_ids,
        unknown_ids,
        final_answer: parsed.final_answer,
        calls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_from_the_field_then_the_text() {
        let p = parse(&json!({"reasoning": "use [ab-00002] and [calc-00001]", "bullet_ids": ["calc-00001", "[x-00009]"], "final_answer": 2.5})).unwrap();
        assert_eq!(p.ids, ["calc-00001", "x-00009", "ab-00002"]);
        assert_eq!(p.final_answer, "2.5");
        let p =
            parse(&json!({"bullet_ids": "calc-00001, fin-00002", "final_answer": "x"})).unwrap();
        assert_eq!(p.ids, ["calc-00001", "fin-00002"]);
    }

    #[test]
    fn a_missing_answer_is_an_error() {
        assert_eq!(
            parse(&json!({"reasoning": "r"})).err().unwrap(),
            "the field \"final_answer\" is missing"
        );
        assert!(parse(&json!({"final_answer": "x", "bullet_ids": [1]})).is_err());
    }
}
