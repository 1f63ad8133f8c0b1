//! The three ACE roles: [`generator`], [`reflector`] and [`curator`], each with typed input and output.
//!
//! A role call sends its prompt, extracts and validates the JSON answer, and if that fails asks once
//! more quoting the error; a second failure is a [`RoleError::Unusable`] that carries the raw text.
//! Nothing half-parsed is ever returned.

pub mod curator;
pub mod generator;
pub mod reflector;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::llm::{CallRecord, ChatRequest, LlmClient, LlmError, Message, Role, TraceIds};
use crate::prompts::{self, Prompt};

pub use curator::{CuratedOp, CuratorInput, CuratorOutput, curate};
pub use generator::{GeneratorInput, GeneratorOutput, generate};
pub use reflector::{BulletTag, Reflection, ReflectorInput, Tag, reflect};

#[derive(Debug, Clone, thiserror::Error)]
pub enum RoleError {
    #[error("{role} call failed: {error}")]
    Llm {
        role: Role,
        error: LlmError,
        /// The calls made before it and the failed call itself (outcome `failed`, when a server was
        /// reached): they count even though nothing came of them.
        calls: Vec<CallRecord>,
    },
    #[error("the {role}'s answer could not be used, even after one repair request: {error}")]
    Unusable {
        role: Role,
        error: String,
        raw: String,
        /// The calls made (the first answer and its repair): they reached a server and count.
        calls: Vec<CallRecord>,
    },
}

impl RoleError {
    /// The calls this role made before it gave up: recorded and counted like any other.
    pub fn take_calls(&mut self) -> Vec<CallRecord> {
        match self {
            RoleError::Llm { calls, .. } | RoleError::Unusable { calls, .. } => {
                std::mem::take(calls)
            }
        }
    }

    pub fn is_cancelled(&self) -> bool {
        matches!(
            self,
            RoleError::Llm {
                error: LlmError::Cancelled,
                ..
            }
        )
    }
}

/// Sends `prompt`, parses the answer with `parse`; on a parse error asks once more quoting it.
pub(crate) async fn call_structured<T>(
    client: &dyn LlmClient,
    prompt: &Prompt,
    trace: &TraceIds,
    cancel: &CancellationToken,
    parse: impl Fn(&Value) -> Result<T, String>,
) -> Result<(T, Vec<CallRecord>), RoleError> {
    let role = prompt.role;
    let mut messages = prompt.messages.clone();
    let mut calls = Vec::new();
    let mut last_error = String::new();
    // after an answer cut off at the token limit, the re-ask may write twice as much (at most 16k)
    let mut max_tokens: Option<u32> = None;
    for round in 0..2 {
        let request = ChatRequest {
            role,
            messages: messages.clone(),
            schema: Some(prompt.schema.clone()),
            prompt_version: match (round, max_tokens) {
                (0, _) => prompt.version.clone(),
                (_, Some(n)) => format!("{}+repair(max_tokens={n})", prompt.version),
                _ => format!("{}+repair", prompt.version),
            },
            trace: trace.clone(),
            max_tokens,
        };
        let response = match client.chat(&request, cancel).await {
            Ok(response) => response,
            Err(error) => {
                if let Some(attempts) = error.server_attempts() {
                    calls.push(CallRecord {
                        role,
                        prompt_version: request.prompt_version.clone(),
                        messages: request.messages,
                        response: error.to_string(),
                        model: client.endpoint().model.clone(),
                        usage: Default::default(),
                        latency_ms: 0,
                        cost_usd: 0.0,
                        attempts,
                        playbook: prompt.playbook.clone(),
                        recipes: prompt.recipes.clone(),
                        outcome: "failed".into(),
                    });
                }
                return Err(RoleError::Llm { role, error, calls });
            }
        };
        calls.push(CallRecord {
            role,
            prompt_version: request.prompt_version.clone(),
            messages: request.messages,
            response: response.content.clone(),
            model: response.model.clone(),
            usage: response.usage,
            latency_ms: response.latency.as_millis() as u64,
            cost_usd: response.cost_usd,
            attempts: response.attempts,
            playbook: prompt.playbook.clone(),
            recipes: prompt.recipes.clone(),
            outcome: "unusable".into(),
        });
        let parsed = crate::llm::json::extract_object(&response.content).and_then(|v| parse(&v));
        match parsed {
            Ok(value) => {
                if let Some(last) = calls.last_mut() {
                    last.outcome = if round == 0 { "ok" } else { "repaired" }.into();
                }
                return Ok((value, calls));
            }
            Err(error) => {
                let error = match response.finish_reason.as_deref() {
                    Some("length") => {
                        let used =
                            u32::try_from(response.usage.completion_tokens).unwrap_or(u32::MAX);
                        let more = used.saturating_mul(2).clamp(256, 16_384);
                        max_tokens = Some(more);
                        tracing::warn!(
                            role = role.as_str(),
                            used,
                            more,
                            "answer cut off at the token limit; asking again with a larger limit and for a shorter answer"
                        );
                        format!(
                            "{error} (the answer hit the token limit after {used} tokens: answer again, shorter; up to {more} tokens are allowed now)"
                        )
                    }
                    _ => error,
                };
                tracing::warn!(role = role.as_str(), round, error = %error, "unusable answer");
                last_error = error;
                messages.push(Message::assistant(response.content));
                messages.push(prompts::repair(&last_error));
            }
        }
    }
    let raw = calls.last().map(|c| c.response.clone()).unwrap_or_default();
    Err(RoleError::Unusable {
        role,
        error: last_error,
        raw,
        calls,
    })
}

/// A required text field: strings as they are, numbers and booleans as written.
pub(crate) fn text_field(v: &Value, name: &str) -> Result<String, String> {
    match v.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::Bool(b)) => Ok(b.to_string()),
        Some(Value::Null) | None => Err(format!("the field \"{name}\" is missing")),
        Some(_) => Err(format!("the field \"{name}\" must be a string")),
    }
}

/// An optional text field ("" when absent or null).
pub(crate) fn opt_text(v: &Value, name: &str) -> Result<String, String> {
    match v.get(name) {
        None | Some(Value::Null) => Ok(String::new()),
        _ => text_field(v, name),
    }
}

/// Bullet-id citations in text: `[slug-digits]`, any slug length (letters, digits, `_`, `-`).
pub fn cited_ids(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        rest = &rest[open + 1..];
        let Some(close) = rest.find(']') else { break };
        // a citation list like [calc-00001, fin-00002] counts too
        for candidate in rest[..close]
            .split([',', ' ', ';'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            // quotes, parentheses, a full stop around an id are not part of it
            let candidate = candidate.trim_matches(|c: char| !c.is_alphanumeric());
            if crate::playbook::parse_bullet_id(candidate).is_some()
                && !out.iter().any(|o| o == candidate)
            {
                out.push(candidate.to_string());
            }
        }
        rest = &rest[close..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn citations_of_any_slug_length() {
        let text = "Per [ab-00001] and [calc-00012], also [x-00003]; see [customer_service-00004], [not an id], [a-b], [fin-00001, ctx-00002]";
        assert_eq!(
            cited_ids(text),
            [
                "ab-00001",
                "calc-00012",
                "x-00003",
                "customer_service-00004",
                "fin-00001",
                "ctx-00002"
            ]
        );
    }
}
