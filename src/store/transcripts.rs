//! Model calls as stored. A prompt's playbook text is not stored: a marker stands in its place and
//! the call's `playbook_view` (revision, bullets shown, rendering) rebuilds it exactly, so a run's
//! transcripts grow with its samples and answers, not with the playbook.

use std::collections::HashMap;

use rusqlite::params;
use serde_json::Value;

use super::{Result, Store};
use crate::llm::{CallRecord, Message, PlaybookText, Role, Usage};
use crate::playbook::{Playbook, View};
use crate::prompts;

/// What stands in a stored prompt where the playbook text was.
const MARKER: &str = "\u{1}playbook\u{1}";

/// A call's prompt as stored (messages as JSON, the playbook text replaced by [`MARKER`]) and its
/// view. A prompt whose text cannot be found where the view says is stored whole.
pub(super) fn stored_prompt(call: &CallRecord) -> Result<(String, Option<String>)> {
    let Some(PlaybookText { view, text }) = &call.playbook else {
        return Ok((serde_json::to_string(&call.messages)?, None));
    };
    let mut messages = call.messages.clone();
    let Some(system) = messages
        .first_mut()
        .filter(|m| m.content.contains(text.as_str()))
    else {
        return Ok((serde_json::to_string(&call.messages)?, None));
    };
    system.content = system.content.replacen(text.as_str(), MARKER, 1);
    Ok((
        serde_json::to_string(&messages)?,
        Some(serde_json::to_string(view)?),
    ))
}

impl Store {
    /// Model calls of a run (all, or one sample's), oldest first, with their prompts as sent: the
    /// playbook text each carried is rebuilt from its revision.
    pub fn run_calls(&self, run: &str, sample_key: Option<&str>) -> Result<Vec<CallRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT role, prompt_version, prompt, response, model, prompt_tokens, completion_tokens, latency_ms, cost_usd,
                    attempts, playbook_view
             FROM llm_calls WHERE run_id = ?1 AND (?2 IS NULL OR sample_key = ?2) ORDER BY id",
        )?;
        let rows = stmt.query_map(params![run, sample_key], |r| {
            let role: String = r.get(0)?;
            let view: Option<View> = r
                .get::<_, Option<String>>(10)?
                .and_then(|t| serde_json::from_str(&t).ok());
            Ok(CallRecord {
                role: serde_json::from_value(Value::String(role)).unwrap_or(Role::Generator),
                prompt_version: r.get(1)?,
                messages: serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or_default(),
                response: r.get(3)?,
                model: r.get(4)?,
                usage: Usage {
                    prompt_tokens: r.get::<_, i64>(5)? as u64,
                    completion_tokens: r.get::<_, i64>(6)? as u64,
                },
                latency_ms: r.get::<_, i64>(7)? as u64,
                cost_usd: r.get(8)?,
                attempts: r.get(9)?,
                playbook: view.map(|view| PlaybookText {
                    view,
                    text: String::new(),
                }),
            })
        })?;
        let mut calls = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        let mut playbooks: HashMap<Option<i64>, Playbook> = HashMap::new();
        for call in &mut calls {
            let Some(shown) = call.playbook.as_mut() else {
                continue;
            };
            let playbook = match playbooks.entry(shown.view.revision) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(match shown.view.revision {
                        Some(revision) => self.playbook_at(revision)?,
                        None => Playbook::default(),
                    })
                }
            };
            shown.text = prompts::render(playbook, &shown.view);
            if let Some(Message { content, .. }) = call.messages.first_mut() {
                *content = content.replacen(MARKER, &shown.text, 1);
            }
        }
        Ok(calls)
    }
}
