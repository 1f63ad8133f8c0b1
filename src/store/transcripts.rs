//! Model calls as stored. A prompt's playbook text is not stored: a marker stands in its place and
//! the call's `playbook_view` (revision, bullets shown, rendering) rebuilds it exactly, so a run's
//! transcripts grow with its samples and answers, not with the playbook.

use std::collections::HashMap;

use rusqlite::{Connection, params};
use serde_json::Value;

use super::blobs::{fetch, ids_sql, intern, unpack_ids};
use super::{Result, Store};
use crate::llm::{CallRecord, Message, PlaybookText, Role, Usage};
use crate::playbook::{Playbook, View};
use crate::prompts;

/// What stands in a stored prompt where the playbook text was.
const MARKER: &str = "\u{1}playbook\u{1}";

/// Message texts longer than this are stored once (see [`super::blobs`]) and referred to.
const SHARED_TEXT: usize = 200;

/// A message as stored: its text in place, or a reference to it.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredMessage {
    role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<i64>,
}

/// A view as stored: with its bullets, or saying they are the ones its sample row lists.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredView {
    #[serde(flatten)]
    view: View,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    row: bool,
}

/// A call's prompt as stored: messages as JSON, long texts by reference and the playbook text
/// replaced by [`MARKER`], and its view (the bullets left out when they are `row_shown`, the list
/// its row keeps). A prompt whose playbook text cannot be found where the view says is stored whole.
pub(super) fn stored_prompt(
    conn: &Connection,
    call: &CallRecord,
    row_shown: Option<&[String]>,
) -> Result<(String, Option<String>)> {
    let mut messages = call.messages.clone();
    let mut view = None;
    if let Some(PlaybookText { view: v, text }) = &call.playbook
        && let Some(system) = messages
            .first_mut()
            .filter(|m| m.content.contains(text.as_str()))
    {
        system.content = system.content.replacen(text.as_str(), MARKER, 1);
        let row = v.bullets.is_some() && v.bullets.as_deref() == row_shown;
        let mut v = v.clone();
        if row {
            v.bullets = None;
        }
        view = Some(serde_json::to_string(&StoredView { view: v, row })?);
    }
    let mut stored = Vec::with_capacity(messages.len());
    for m in messages {
        let text = if m.content.len() > SHARED_TEXT {
            intern(conn, m.content.as_bytes())?
        } else {
            None
        };
        stored.push(StoredMessage {
            role: m.role,
            content: text.is_none().then_some(m.content),
            text,
        });
    }
    Ok((serde_json::to_string(&stored)?, view))
}

fn read_messages(conn: &Connection, json: &str) -> Result<Vec<Message>> {
    let stored: Vec<StoredMessage> = serde_json::from_str(json).unwrap_or_default();
    stored
        .into_iter()
        .map(|m| {
            let content = match (m.content, m.text) {
                (Some(c), _) => c,
                (None, Some(hash)) => String::from_utf8_lossy(&fetch(conn, hash)?).into_owned(),
                (None, None) => String::new(),
            };
            Ok(Message {
                role: m.role,
                content,
            })
        })
        .collect()
}

impl Store {
    /// Model calls of a run (all, or one sample's), oldest first, with their prompts as sent: the
    /// playbook text each carried is rebuilt from its revision.
    pub fn run_calls(&self, run: &str, sample_key: Option<&str>) -> Result<Vec<CallRecord>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT c.role, c.prompt_version, c.prompt, c.response, c.model, c.prompt_tokens, c.completion_tokens,
                    c.latency_ms, c.cost_usd, c.attempts, c.playbook_view, {}, c.outcome,
                    coalesce(c.cached_tokens, 0)
             FROM llm_calls c LEFT JOIN run_samples s ON s.run_id = c.run_id AND s.key = c.sample_key
             WHERE c.run_id = ?1 AND (?2 IS NULL OR c.sample_key = ?2) ORDER BY c.id",
            ids_sql("s.shown")
        ))?;
        let rows = stmt.query_map(params![run, sample_key], |r| {
            let role: String = r.get(0)?;
            let view: Option<View> = r
                .get::<_, Option<String>>(10)?
                .and_then(|t| serde_json::from_str::<StoredView>(&t).ok())
                .map(|stored| {
                    let mut view = stored.view;
                    if stored.row {
                        view.bullets = r
                            .get::<_, Option<Vec<u8>>>(11)
                            .ok()
                            .flatten()
                            .and_then(|b| unpack_ids(&b));
                    }
                    view
                });
            Ok((
                CallRecord {
                    role: serde_json::from_value(Value::String(role)).unwrap_or(Role::Generator),
                    prompt_version: r.get(1)?,
                    messages: Vec::new(),
                    response: r.get(3)?,
                    model: r.get(4)?,
                    usage: Usage {
                        prompt_tokens: r.get::<_, i64>(5)? as u64,
                        completion_tokens: r.get::<_, i64>(6)? as u64,
                        cached_prompt_tokens: r.get::<_, i64>(13)? as u64,
                    },
                    latency_ms: r.get::<_, i64>(7)? as u64,
                    cost_usd: r.get(8)?,
                    attempts: r.get(9)?,
                    playbook: view.map(|view| PlaybookText {
                        view,
                        text: String::new(),
                    }),
                    outcome: r.get::<_, Option<String>>(12)?.unwrap_or_default(),
                },
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut calls = Vec::new();
        for row in rows {
            let (mut call, prompt) = row?;
            call.messages = read_messages(&self.conn, &prompt)?;
            calls.push(call);
        }
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
