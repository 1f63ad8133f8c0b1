//! The Reflector: diagnoses an attempt and tags the bullets it used.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{RoleError, call_structured, opt_text, text_field};
use crate::llm::{CallRecord, LlmClient, TraceIds};
use crate::playbook::Bullet;
use crate::prompts::{self, ReflectorPrompt};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tag {
    Helpful,
    Harmful,
    Neutral,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulletTag {
    pub id: String,
    pub tag: Tag,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reflection {
    pub reasoning: String,
    pub error_identification: String,
    pub root_cause_analysis: String,
    pub correct_approach: String,
    pub key_insight: String,
    /// Tags for bullets the attempt used (tags for other ids are dropped).
    pub bullet_tags: Vec<BulletTag>,
    /// Tagged ids that match none of the bullets the attempt used (reported, not applied).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown_ids: Vec<String>,
}

impl Reflection {
    /// The reflection as the text the Generator (retry) and Curator read.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        for (label, text) in [
            ("Error", &self.error_identification),
            ("Root cause", &self.root_cause_analysis),
            ("Correct approach", &self.correct_approach),
            ("Key insight", &self.key_insight),
        ] {
            if !text.trim().is_empty() {
                s.push_str(&format!("{label}: {}\n", text.trim()));
            }
        }
        s.trim_end().to_string()
    }
}

pub struct ReflectorInput<'a> {
    pub question: &'a str,
    pub context: &'a str,
    pub reasoning: &'a str,
    pub answer: &'a str,
    /// `None` in no-label mode: only the environment's feedback is known.
    pub ground_truth: Option<&'a str>,
    pub feedback: &'a str,
    pub used: &'a [Bullet],
}

fn parse(v: &Value, used: &[Bullet]) -> Result<Reflection, String> {
    let mut tags = Vec::new();
    let mut unknown_ids = Vec::new();
    match v.get("bullet_tags") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                let id = text_field(item, "id").map_err(|e| format!("in bullet_tags: {e}"))?;
                let tag = match text_field(item, "tag")?
                    .trim()
                    .to_ascii_lowercase()
                    .as_str()
                {
                    "helpful" => Tag::Helpful,
                    "harmful" => Tag::Harmful,
                    "neutral" => Tag::Neutral,
                    other => {
                        return Err(format!(
                            "bullet tag '{other}' must be helpful, harmful or neutral"
                        ));
                    }
                };
                // Only bullets the attempt used can be judged by it (matched as a model writes
                // ids); one tag per bullet.
                match crate::playbook::canonical_in(used.iter(), &id) {
                    Some(id) => {
                        if !tags.iter().any(|t: &BulletTag| t.id == id) {
                            tags.push(BulletTag {
                                id: id.to_string(),
                                tag,
                            });
                        }
                    }
                    None => {
                        if !unknown_ids.contains(&id) {
                            unknown_ids.push(id);
                        }
                    }
                }
            }
        }
        Some(_) => return Err("\"bullet_tags\" must be an array".into()),
    }
    Ok(Reflection {
        reasoning: opt_text(v, "reasoning")?,
        error_identification: opt_text(v, "error_identification")?,
        root_cause_analysis: opt_text(v, "root_cause_analysis")?,
        correct_approach: opt_text(v, "correct_approach")?,
        key_insight: text_field(v, "key_insight")?,
        bullet_tags: tags,
        unknown_ids,
    })
}

/// Reflects on an attempt in up to `rounds` rounds (the paper uses up to 5), each refining the previous
/// reflection; stops early when a round changes nothing. Returns the last reflection.
pub async fn reflect(
    client: &dyn LlmClient,
    input: &ReflectorInput<'_>,
    rounds: u32,
    trace: &TraceIds,
    cancel: &CancellationToken,
) -> Result<(Reflection, Vec<CallRecord>), RoleError> {
    let mut calls = Vec::new();
    let mut current: Option<Reflection> = None;
    for _ in 0..rounds.max(1) {
        let previous = current
            .as_ref()
            .map(|r| serde_json::to_string_pretty(r).unwrap_or_default());
        let prompt = prompts::reflector(&ReflectorPrompt {
            question: input.question,
            context: input.context,
            reasoning: input.reasoning,
            answer: input.answer,
            ground_truth: input.ground_truth,
            feedback: input.feedback,
            used: input.used,
            previous: previous.as_deref(),
        });
        let (reflection, mut round_calls) =
            call_structured(client, &prompt, trace, cancel, |v| parse(v, input.used)).await?;
        calls.append(&mut round_calls);
        let settled = current.as_ref() == Some(&reflection);
        current = Some(reflection);
        if settled {
            break;
        }
    }
    Ok((current.expect("at least one round"), calls))
}
