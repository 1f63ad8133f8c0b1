//! Recorded agent runs ("traces"): what an agent was asked, what it answered or ended in, which
//! bullets it used, and what came of it. The loop reflects on a trace instead of answering itself
//! (`ace learn`, `POST …/traces`, the MCP `record_outcome` tool).
//!
//! Two shapes are read, one JSON object a line:
//! - ours: `{"task" | "question", "context"?, "answer" | "final_state", "ground_truth"?, "feedback"?,
//!   "success"?, "bullet_ids"?, "steps"? | "messages"?, "id"?}`;
//! - an OpenAI-style chat transcript: `{"messages": [{"role", "content"}, …], "outcome" | "feedback"?,
//!   "success"?, "ground_truth"?, "bullet_ids"?}` — the task is the first user message, the answer the
//!   last assistant message, and without `bullet_ids` the `[id]`s the assistant wrote are its citations.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::dataset::{self, Dataset, DatasetError, Sample};

/// What an agent did, as the Reflector is shown it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// Its answer or final state.
    pub answer: String,
    /// The bullet ids it says it used (as written; matched against the playbook when reflected on).
    #[serde(default)]
    pub bullet_ids: Vec<String>,
    /// Its steps or messages, as text.
    #[serde(default)]
    pub steps: String,
    /// What the world said about it (a test result, a user's judgement).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
    /// Whether it succeeded, when the agent's host knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
}

/// Caps on what one trace may carry (a runaway transcript is named, not sent to a model).
pub const MAX_STEPS_CHARS: usize = 200_000;

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        // structured content (a final state, content parts) is kept as its JSON text
        other => Some(other.to_string()),
    }
}

/// A chat message's text: a string, or the text parts of a content array.
fn message_text(m: &Value) -> String {
    match m.get("content") {
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        Some(v) => text(v).unwrap_or_default(),
        None => String::new(),
    }
}

fn role(m: &Value) -> &str {
    m.get("role").and_then(Value::as_str).unwrap_or("")
}

/// The `[id]`s written in `text` (what an agent cites when it follows the playbook's format).
pub fn bracketed_ids(text: &str) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('[') {
        rest = &rest[start + 1..];
        let Some(end) = rest.find(']') else { break };
        let id = rest[..end].trim();
        if crate::playbook::parse_bullet_id(id).is_some() && !ids.iter().any(|x| x == id) {
            ids.push(id.to_string());
        }
        rest = &rest[end + 1..];
    }
    ids
}

fn string_list(v: Option<&Value>, name: &str) -> Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("\"{name}\" must be an array of strings"))
            })
            .collect(),
        Some(_) => Err(format!("\"{name}\" must be an array of strings")),
    }
}

fn steps_text(steps: &Value) -> String {
    match steps {
        Value::Array(items) => items
            .iter()
            .map(|m| {
                if m.get("role").is_some() {
                    format!("{}: {}", role(m), message_text(m))
                } else {
                    text(m).unwrap_or_default()
                }
            })
            .collect::<Vec<_>>()
            .join("\n"),
        other => text(other).unwrap_or_default(),
    }
}

const KNOWN: &[&str] = &[
    "id",
    "task",
    "question",
    "context",
    "answer",
    "final_state",
    "ground_truth",
    "feedback",
    "outcome",
    "success",
    "bullet_ids",
    "steps",
    "messages",
    "metadata",
];

/// One trace from a JSON object (a line of a trace file, or the body of `POST …/traces`).
/// Unknown fields are refused by name: a misspelt `feedbak` would otherwise be lost silently.
pub fn from_object(obj: &Map<String, Value>, default_id: String) -> Result<Sample, String> {
    if let Some(k) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(format!(
            "unknown field \"{k}\" (a trace has: {})",
            KNOWN.join(", ")
        ));
    }
    let get = |name: &str| obj.get(name).and_then(text);
    let messages = match obj.get("messages") {
        None | Some(Value::Null) => None,
        Some(Value::Array(m)) => Some(m.as_slice()),
        Some(_) => return Err("\"messages\" must be an array of chat messages".into()),
    };
    let question = get("task")
        .or_else(|| get("question"))
        .or_else(|| messages.and_then(|m| m.iter().find(|m| role(m) == "user").map(message_text)))
        .unwrap_or_default();
    if question.trim().is_empty() {
        return Err(
            "no task: give \"task\" or \"question\", or \"messages\" with a user message".into(),
        );
    }
    let answer = get("answer")
        .or_else(|| get("final_state"))
        .or_else(|| {
            messages.and_then(|m| {
                m.iter()
                    .rev()
                    .find(|m| role(m) == "assistant")
                    .map(message_text)
            })
        })
        .unwrap_or_default();
    if answer.trim().is_empty() {
        return Err(
            "no answer: give \"answer\" or \"final_state\", or \"messages\" with an assistant message"
                .into(),
        );
    }
    let steps = obj
        .get("steps")
        .or(obj.get("messages"))
        .map(steps_text)
        .unwrap_or_default();
    if steps.chars().count() > MAX_STEPS_CHARS {
        return Err(format!(
            "the steps are {} characters; the limit is {MAX_STEPS_CHARS}",
            steps.chars().count()
        ));
    }
    let mut bullet_ids = string_list(obj.get("bullet_ids"), "bullet_ids")?;
    if obj.get("bullet_ids").is_none()
        && let Some(m) = messages
    {
        for m in m.iter().filter(|m| role(m) == "assistant") {
            for id in bracketed_ids(&message_text(m)) {
                if !bullet_ids.contains(&id) {
                    bullet_ids.push(id);
                }
            }
        }
    }
    let success = match obj.get("success") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err("\"success\" must be true or false".into()),
    };
    Ok(Sample {
        id: get("id").unwrap_or(default_id),
        question,
        context: get("context").unwrap_or_default(),
        ground_truth: get("ground_truth"),
        metadata: obj.get("metadata").cloned().unwrap_or(Value::Null),
        trace: Some(Trace {
            answer,
            bullet_ids,
            steps,
            feedback: get("feedback").or_else(|| get("outcome")),
            success,
        }),
    })
}

fn parse_line(line: &str, id: String) -> Result<Sample, String> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(obj)) => from_object(&obj, id),
        Ok(_) => Err("the line is not a JSON object".into()),
        Err(e) => Err(format!("not valid JSON: {e}")),
    }
}

/// Parses trace lines (see the module's documentation), naming a bad line.
pub fn parse(
    text: &str,
    file: &str,
    skip_bad: bool,
    max_line: usize,
) -> Result<Dataset, DatasetError> {
    dataset::parse_lines(text, file, skip_bad, max_line, parse_line)
}

/// Loads a trace file (`-` reads standard input).
pub fn load(path: &std::path::Path, skip_bad: bool) -> Result<Dataset, DatasetError> {
    dataset::load_with(path, |text, name, max_line| {
        parse(text, name, skip_bad, max_line)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_lines_and_chat_transcripts() {
        let text = concat!(
            r#"{"task": "sum 2 and 3", "answer": "5", "bullet_ids": ["calc-00001"], "feedback": "tests passed", "success": true}"#,
            "\n",
            r#"{"messages": [{"role": "system", "content": "play"}, {"role": "user", "content": "book a flight"}, {"role": "assistant", "content": "Using [shr-00002] I booked it"}], "outcome": "the user cancelled"}"#,
            "\n"
        );
        let d = parse(text, "t.jsonl", false, 1 << 20).unwrap();
        let t = d.samples[0].trace.as_ref().unwrap();
        assert_eq!(d.samples[0].question, "sum 2 and 3");
        assert_eq!((t.answer.as_str(), t.success), ("5", Some(true)));
        assert_eq!(t.bullet_ids, ["calc-00001"]);
        let chat = &d.samples[1];
        let t = chat.trace.as_ref().unwrap();
        assert_eq!(chat.question, "book a flight");
        assert_eq!(t.answer, "Using [shr-00002] I booked it");
        assert_eq!(t.bullet_ids, ["shr-00002"]);
        assert_eq!(t.feedback.as_deref(), Some("the user cancelled"));
        assert!(t.steps.starts_with("system: play\nuser: book a flight"));
    }

    #[test]
    fn bad_lines_are_named() {
        let e = parse("{\"task\": \"x\"}\n", "t.jsonl", false, 1 << 20).unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.reason.contains("no answer"), "{e}");
        let e = parse(
            "{\"task\": \"x\", \"answer\": \"y\"}\n{\"task\": \"x\", \"answer\": \"y\", \"feedbak\": \"z\"}\n",
            "t.jsonl",
            false,
            1 << 20,
        )
        .unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("\"feedbak\""), "{e}");
    }
}
