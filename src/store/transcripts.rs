//! Model calls as stored. A prompt's playbook text is not stored: a marker stands in its place and
//! the call's `playbook_view` (revision, bullets shown, rendering) rebuilds it exactly, so a run's
//! transcripts grow with its samples and answers, not with the playbook.
//!
//! Nor are the texts the run stores anyway: a message made from a template ([`crate::llm::Recipe`])
//! is kept as the template and its values, and a value names ([`Ref`]) the sample's question,
//! ground truth or feedback, an earlier call's answer or a field of it, or a text of another row the
//! prompt tells of (a curator's batch) instead of holding it. What is written is read back at once
//! and must equal what was sent, else the message is stored as text. Templates, long lines and the
//! messages' JSON go to `blobs` once (long ones compressed), so calls that differ only in what they
//! name share them.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::blobs::{fetch_text, ids_sql, inflate_all, intern_text, unpack_ids};
use super::{Result, Store};
use crate::llm::{CallRecord, Message, PlaybookText, Role, Usage};
use crate::playbook::{Playbook, View};
use crate::prompts;

/// What stands in a stored prompt where the playbook text was.
const MARKER: &str = "\u{1}playbook\u{1}";

/// Message texts longer than this are stored once (see [`super::blobs`]) and referred to.
const SHARED_TEXT: usize = 200;

/// Lines of a filled-in value at least this long are stored once and referred to (a curator's
/// statistics repeat from call to call, line by line).
const SHARED_LINE: usize = 64;

/// A stored prompt (its messages as JSON) longer than this is stored once and the call keeps its
/// key: calls of one role whose texts are all references share one stored prompt.
const SHARED_PROMPT: usize = 48;

/// A stored prompt's list of the rows it names longer than this is stored (compressed) in `blobs`.
const LONG_ROWS: usize = 512;

/// Texts of the run a stored prompt can name instead of holding: they are stored anyway.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Ref {
    /// Another row of the run: its place in the prompt's list of rows (else the call's own row).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k: Option<usize>,
    /// A column of the row: `question`, `answer`, `ground_truth` or `feedback`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<String>,
    /// A text field of the row's reflection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<String>,
    /// The answer of the sample's call N (from 0, in the order they were made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    c: Option<usize>,
    /// A text field of that answer's JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<String>,
    /// Trimmed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    t: bool,
}

/// A piece of a filled-in value: text in place, a stored text, or a text the run holds elsewhere.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum Part {
    Text(String),
    Blob { b: i64 },
    Ref(Ref),
}

/// The texts of a sample's row a prompt may name.
#[derive(Debug, Clone, Default)]
pub(super) struct RowTexts {
    pub question: String,
    pub answer: String,
    pub ground_truth: Option<String>,
    pub feedback: String,
    pub reflection: Option<Value>,
}

const COLUMNS: [&str; 4] = ["question", "answer", "ground_truth", "feedback"];

impl RowTexts {
    /// A hash of the texts a prompt may name: another row named by a prompt carries it, so a row
    /// written again later (a batch redone on resume) no longer passes for what the prompt held.
    fn digest(&self) -> u32 {
        let reflection = self
            .reflection
            .as_ref()
            .map(Value::to_string)
            .unwrap_or_default();
        let text = [
            self.question.as_str(),
            &self.answer,
            self.ground_truth.as_deref().unwrap_or("\u{0}"),
            &self.feedback,
            &reflection,
        ]
        .join("\u{1}");
        crate::delta::content_hash(text.as_bytes()) as u32
    }

    fn column(&self, name: &str) -> Option<&str> {
        match name {
            "question" => Some(&self.question),
            "answer" => Some(&self.answer),
            "ground_truth" => self.ground_truth.as_deref(),
            "feedback" => Some(&self.feedback),
            _ => None,
        }
    }

    fn reflection_field(&self, name: &str) -> Option<&str> {
        self.reflection.as_ref()?.get(name)?.as_str()
    }

    fn read(conn: &Connection, run: &str, key: &str) -> Result<Option<RowTexts>> {
        Ok(conn
            .prepare_cached(&format!(
                "SELECT question, coalesce(answer, ''), ground_truth, coalesce(feedback, ''), {}
                 FROM run_samples WHERE run_id = ?1 AND key = ?2",
                super::rows::REFLECTION
            ))?
            .query_row(params![run, key], |r| {
                Ok(RowTexts {
                    question: r.get(0)?,
                    answer: r.get(1)?,
                    ground_truth: r.get(2)?,
                    feedback: r.get(3)?,
                    reflection: r
                        .get::<_, Option<String>>(4)?
                        .and_then(|t| serde_json::from_str(&t).ok()),
                })
            })
            .optional()?)
    }
}

/// An earlier call's answer: its text, and the text fields of its JSON object (read once).
pub(super) struct Answer {
    text: String,
    fields: Vec<(String, String)>,
}

impl Answer {
    fn new(text: &str) -> Answer {
        let fields = match crate::llm::json::extract_object(text) {
            Ok(Value::Object(fields)) => fields
                .into_iter()
                .filter_map(|(k, v)| match v {
                    Value::String(s) => Some((k, s)),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        Answer {
            text: text.to_string(),
            fields,
        }
    }

    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What a call's references resolve against: its own row, the other rows its prompt names (by
/// place; `None`: gone or written again since), and the answers of its sample's earlier calls.
struct Context<'a> {
    own: Option<&'a RowTexts>,
    rows: Vec<Option<&'a RowTexts>>,
    responses: &'a [Answer],
}

const BLANK: Ref = Ref {
    k: None,
    s: None,
    r: None,
    c: None,
    p: None,
    t: false,
};

/// The references a row's texts can be named by (`key`: another row's).
fn row_refs(key: Option<usize>, row: &RowTexts) -> Vec<Ref> {
    let mut refs: Vec<Ref> = COLUMNS
        .iter()
        .map(|column| Ref {
            k: key,
            s: Some((*column).into()),
            ..BLANK
        })
        .collect();
    if let Some(Value::Object(fields)) = &row.reflection {
        for (name, value) in fields {
            if value.is_string() {
                refs.push(Ref {
                    k: key,
                    r: Some(name.clone()),
                    ..BLANK
                });
            }
        }
    }
    refs
}

/// The references an answer (the sample's call `n`) can be named by.
fn answer_refs(n: usize, answer: &Answer) -> Vec<Ref> {
    std::iter::once(Ref {
        c: Some(n),
        ..BLANK
    })
    .chain(answer.fields.iter().map(|(name, _)| Ref {
        c: Some(n),
        p: Some(name.clone()),
        ..BLANK
    }))
    .collect()
}

impl Context<'_> {
    fn resolve(&self, r: &Ref) -> Option<String> {
        let text = match (r.c, &r.k) {
            (Some(n), None) => {
                let answer = self.responses.get(n)?;
                match &r.p {
                    None => answer.text.clone(),
                    Some(name) => answer.field(name)?.to_string(),
                }
            }
            (None, key) => {
                let row = match key {
                    Some(at) => (*self.rows.get(*at)?)?,
                    None => self.own?,
                };
                match (&r.s, &r.r) {
                    (Some(column), None) => row.column(column)?.to_string(),
                    (None, Some(field)) => row.reflection_field(field)?.to_string(),
                    _ => return None,
                }
            }
            _ => return None,
        };
        Some(if r.t { text.trim().to_string() } else { text })
    }

    /// The texts `refs` name here (empty ones left out), each with its reference; trimmed forms too.
    fn named(&self, refs: Vec<Ref>) -> Vec<(Ref, String)> {
        let mut out = Vec::new();
        for r in refs {
            let Some(text) = self.resolve(&r) else {
                continue;
            };
            if text.trim().is_empty() {
                continue;
            }
            if text.trim() != text {
                let trimmed = Ref {
                    t: true,
                    ..r.clone()
                };
                out.push((trimmed, text.trim().to_string()));
            }
            out.push((r, text));
        }
        out
    }
}

/// Where `needle` stands in `hay` as a reference may take it: anywhere if it is long, else only
/// as whole lines (a short text inside other words is left alone).
fn occurrences(hay: &str, needle: &str) -> Vec<usize> {
    hay.match_indices(needle)
        .map(|(at, _)| at)
        .filter(|&at| {
            needle.len() >= 16
                || ((at == 0 || hay.as_bytes()[at - 1] == b'\n')
                    && (at + needle.len() == hay.len()
                        || hay.as_bytes()[at + needle.len()] == b'\n'))
        })
        .collect()
}

/// A filled-in value as stored: the texts the run holds elsewhere named, long lines stored once.
fn encode_value(
    conn: &Connection,
    blobs: &mut Interner,
    value: &str,
    candidates: &[(Ref, String)],
) -> Result<Vec<Part>> {
    if value.is_empty() {
        return Ok(Vec::new());
    }
    if let Some((r, _)) = candidates.iter().find(|(_, text)| text == value) {
        return Ok(vec![Part::Ref(r.clone())]);
    }
    let mut parts = vec![Part::Text(value.to_string())];
    for (r, text) in candidates {
        let mut next = Vec::with_capacity(parts.len());
        for part in parts {
            let Part::Text(hay) = &part else {
                next.push(part);
                continue;
            };
            if text.len() > hay.len() {
                next.push(part);
                continue;
            }
            let found = occurrences(hay, text);
            if found.is_empty() {
                next.push(part);
                continue;
            }
            // matches do not overlap
            let mut from = 0;
            for at in found {
                if at > from {
                    next.push(Part::Text(hay[from..at].to_string()));
                }
                next.push(Part::Ref(r.clone()));
                from = at + text.len();
            }
            if from < hay.len() {
                next.push(Part::Text(hay[from..].to_string()));
            }
        }
        parts = next;
    }
    // long lines of what is left are stored once
    let mut out: Vec<Part> = Vec::with_capacity(parts.len());
    for part in parts {
        let Part::Text(text) = part else {
            out.push(part);
            continue;
        };
        for line in text.split_inclusive('\n') {
            let shared = if line.len() >= SHARED_LINE {
                blobs.intern(conn, line)?
            } else {
                None
            };
            match (shared, out.last_mut()) {
                (Some(b), _) => out.push(Part::Blob { b }),
                (None, Some(Part::Text(before))) => before.push_str(line),
                (None, _) => out.push(Part::Text(line.to_string())),
            }
        }
    }
    Ok(out)
}

/// Blobs read while decoding, by hash.
type BlobCache = HashMap<i64, String>;

/// Texts stored in `blobs` by one writer (a transaction): each is written once, and a prompt is
/// checked against them without reading them back.
#[derive(Default)]
pub(super) struct Interner {
    texts: BlobCache,
}

impl Interner {
    fn intern(&mut self, conn: &Connection, text: &str) -> Result<Option<i64>> {
        let hash = crate::delta::content_hash(text.as_bytes()) as i64;
        if self.texts.get(&hash).is_some_and(|t| t == text) {
            return Ok(Some(hash));
        }
        let key = intern_text(conn, text)?;
        if let Some(key) = key {
            self.texts.insert(key, text.to_string());
        }
        Ok(key)
    }
}

fn blob_text(conn: &Connection, cache: &mut BlobCache, hash: i64) -> Result<String> {
    if let Some(text) = cache.get(&hash) {
        return Ok(text.clone());
    }
    let text = fetch_text(conn, hash)?;
    cache.insert(hash, text.clone());
    Ok(text)
}

fn decode_value(
    conn: &Connection,
    cache: &mut BlobCache,
    parts: &[Part],
    cx: &Context<'_>,
) -> Result<Option<String>> {
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Text(t) => out.push_str(t),
            Part::Blob { b } => out.push_str(&blob_text(conn, cache, *b)?),
            Part::Ref(r) => match cx.resolve(r) {
                Some(t) => out.push_str(&t),
                None => return Ok(None),
            },
        }
    }
    Ok(Some(out))
}

/// A message as stored: its text in place, a reference to it, or the template it was made from
/// with its values (see [`Part`]).
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredMessage {
    role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<i64>,
    /// The template (a stored text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tpl: Option<i64>,
    /// The values filled in, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    v: Option<Vec<(String, Vec<Part>)>>,
    /// Trimmed at the start too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    ts: bool,
}

impl StoredMessage {
    /// A message kept as its text: by `key` in `blobs` when it was stored there, else in place.
    fn text(m: Message, key: Option<i64>) -> StoredMessage {
        StoredMessage {
            role: m.role,
            content: key.is_none().then_some(m.content),
            text: key,
            tpl: None,
            v: None,
            ts: false,
        }
    }
}

fn decode_message(
    conn: &Connection,
    cache: &mut BlobCache,
    m: &StoredMessage,
    cx: &Context<'_>,
) -> Result<Option<String>> {
    if let Some(c) = &m.content {
        return Ok(Some(c.clone()));
    }
    if let (Some(tpl), Some(values)) = (m.tpl, &m.v) {
        let template = blob_text(conn, cache, tpl)?;
        let mut filled = Vec::with_capacity(values.len());
        for (name, parts) in values {
            match decode_value(conn, cache, parts, cx)? {
                Some(text) => filled.push((name.as_str(), text)),
                None => return Ok(None),
            }
        }
        let filled: Vec<(&str, &str)> = filled.iter().map(|(k, v)| (*k, v.as_str())).collect();
        return Ok(Some(prompts::rebuild(&template, &filled, m.ts)));
    }
    match m.text {
        Some(hash) => blob_text(conn, cache, hash).map(Some),
        None => Ok(Some(String::new())),
    }
}

/// A view as stored: with its bullets, or saying they are the ones its sample row lists. Short
/// names since schema 10 (`{"r":7,"row":true}`); the long ones version 9 wrote still read.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredView {
    #[serde(rename = "r", alias = "revision", default)]
    revision: Option<i64>,
    #[serde(
        rename = "b",
        alias = "bullets",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    bullets: Option<Vec<String>>,
    #[serde(
        rename = "c",
        alias = "counters",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    counters: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    row: bool,
}

impl StoredView {
    fn view(self) -> View {
        View {
            revision: self.revision,
            bullets: self.bullets,
            counters: self.counters,
        }
    }
}

/// What a sample's calls are stored against: its row's texts, the rows its prompts drew on (a
/// curator's batch), and the answers of its calls so far; the texts they can name, longest first
/// (a reference stands for the longest text it can).
pub(super) struct Sources {
    own: RowTexts,
    /// The other rows, by key in order: a reference names a row by its place here.
    rows: Vec<(String, RowTexts)>,
    answers: Vec<Answer>,
    candidates: Vec<(Ref, String)>,
}

impl Sources {
    pub(super) fn new(own: RowTexts, rows: Vec<(String, RowTexts)>) -> Sources {
        let mut sources = Sources {
            own,
            rows,
            answers: Vec::new(),
            candidates: Vec::new(),
        };
        let mut refs = row_refs(None, &sources.own);
        for (at, (_, row)) in sources.rows.iter().enumerate() {
            refs.extend(row_refs(Some(at), row));
        }
        let named = sources.context().named(refs);
        sources.add(named);
        sources
    }

    /// The rows of `keys` in the run, as stored.
    pub(super) fn rows(
        conn: &Connection,
        run: &str,
        keys: &[String],
    ) -> Result<Vec<(String, RowTexts)>> {
        let mut keys = keys.to_vec();
        keys.sort();
        keys.dedup();
        let mut rows = Vec::new();
        for key in keys {
            if let Some(row) = RowTexts::read(conn, run, &key)? {
                rows.push((key, row));
            }
        }
        Ok(rows)
    }

    /// The other rows as a stored prompt lists them: key and digest.
    fn listed(&self) -> Vec<(String, u32)> {
        self.rows
            .iter()
            .map(|(key, row)| (key.clone(), row.digest()))
            .collect()
    }

    /// Notes a call's answer once it is stored: later calls of the sample may name it.
    pub(super) fn push_response(&mut self, response: &str) {
        let n = self.answers.len();
        self.answers.push(Answer::new(response));
        let refs = answer_refs(n, &self.answers[n]);
        let named = self.context().named(refs);
        self.add(named);
    }

    /// Adds texts to name; a text already named keeps its first reference.
    fn add(&mut self, named: Vec<(Ref, String)>) {
        for (r, text) in named {
            if !self.candidates.iter().any(|(_, t)| *t == text) {
                self.candidates.push((r, text));
            }
        }
        self.candidates
            .sort_by_key(|(_, text)| std::cmp::Reverse(text.len()));
    }

    fn context(&self) -> Context<'_> {
        Context {
            own: Some(&self.own),
            rows: self.rows.iter().map(|(_, row)| Some(row)).collect(),
            responses: &self.answers,
        }
    }
}

/// A call's prompt as stored: messages as JSON, the playbook text replaced by [`MARKER`] (with its
/// view: the bullets left out when they are `row_shown`, the list its row keeps), a message made
/// from a template kept as the template and its values, naming the texts the run holds elsewhere
/// (checked: a message that would not come back exactly is stored as text), long texts by
/// reference; the whole by reference when it is long.
pub(super) fn stored_prompt(
    conn: &Connection,
    call: &CallRecord,
    row_shown: Option<&[String]>,
    sources: &Sources,
    blobs: &mut Interner,
) -> Result<(String, Option<String>)> {
    let mut messages = call.messages.clone();
    let mut view = None;
    let mut holds_playbook = None;
    if let Some(PlaybookText { view: v, text }) = &call.playbook
        && let Some(system) = messages
            .first_mut()
            .filter(|m| m.content.contains(text.as_str()))
    {
        system.content = system.content.replacen(text.as_str(), MARKER, 1);
        holds_playbook = Some(0);
        let row = v.bullets.is_some() && v.bullets.as_deref() == row_shown;
        let mut v = v.clone();
        if row {
            v.bullets = None;
        }
        view = Some(serde_json::to_string(&StoredView {
            revision: v.revision,
            bullets: v.bullets,
            counters: v.counters,
            row,
        })?);
    }
    let cx = sources.context();
    let mut stored = Vec::with_capacity(messages.len());
    for (i, m) in messages.into_iter().enumerate() {
        let recipe = call
            .recipes
            .get(i)
            .and_then(Option::as_ref)
            .filter(|_| holds_playbook != Some(i));
        if let Some(recipe) = recipe {
            let mut values = Vec::with_capacity(recipe.values.len());
            for (name, value) in &recipe.values {
                values.push((
                    name.to_string(),
                    encode_value(conn, blobs, value, &sources.candidates)?,
                ));
            }
            let message = StoredMessage {
                role: m.role.clone(),
                content: None,
                text: None,
                tpl: blobs.intern(conn, recipe.template)?,
                v: Some(values),
                ts: recipe.trim_start,
            };
            if message.tpl.is_some()
                && decode_message(conn, &mut blobs.texts, &message, &cx)?.as_deref()
                    == Some(m.content.as_str())
            {
                stored.push(message);
                continue;
            }
        }
        let key = if m.content.len() > SHARED_TEXT {
            blobs.intern(conn, &m.content)?
        } else {
            None
        };
        stored.push(StoredMessage::text(m, key));
    }
    let names_rows = stored.iter().any(|m| {
        m.v.iter()
            .flatten()
            .flat_map(|(_, parts)| parts)
            .any(|p| matches!(p, Part::Ref(Ref { k: Some(_), .. })))
    });
    // the messages are stored once (calls that name only texts held elsewhere share them); the
    // rows a call names are its own, kept in place
    let json = serde_json::to_string(&stored)?;
    let shared = if json.len() > SHARED_PROMPT {
        blobs.intern(conn, &json)?
    } else {
        None
    };
    Ok(match (names_rows, shared) {
        (false, Some(hash)) => (hash.to_string(), view),
        (false, None) => (json, view),
        (true, shared) => {
            let with = serde_json::to_string(&WithRows {
                rows: sources.listed(),
                m: match shared {
                    Some(hash) => Messages::Stored(hash),
                    None => Messages::InPlace(stored),
                },
            })?;
            // a large batch's list of rows is stored compressed
            match (with.len() > LONG_ROWS).then(|| blobs.intern(conn, &with)) {
                Some(Ok(Some(hash))) => (hash.to_string(), view),
                Some(Err(e)) => return Err(e),
                _ => (with, view),
            }
        }
    })
}

/// The stored messages of a prompt (in place, or by reference to a stored text).
/// A stored prompt that names other rows of the run: the rows (key and [`RowTexts::digest`], in
/// the order references name them) and the messages.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct WithRows {
    rows: Vec<(String, u32)>,
    m: Messages,
}

/// A prompt's messages, in place or as the key of their JSON in `blobs`.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum Messages {
    InPlace(Vec<StoredMessage>),
    Stored(i64),
}

impl Default for Messages {
    fn default() -> Self {
        Messages::InPlace(Vec::new())
    }
}

/// A stored prompt read: the other rows it names and its messages.
struct Read {
    rows: Vec<(String, u32)>,
    m: Vec<StoredMessage>,
    /// The stored texts the prompt's own structure is kept in.
    held_in: Vec<i64>,
}

/// The other rows a stored prompt names, and its messages (in place, or by reference to a stored
/// text; a list of messages alone, or [`WithRows`]).
fn read_stored(conn: &Connection, prompt: &str) -> Result<Read> {
    let mut held_in = Vec::new();
    let text = match prompt.parse::<i64>() {
        Ok(hash) => {
            held_in.push(hash);
            fetch_text(conn, hash)?
        }
        Err(_) => prompt.to_string(),
    };
    if !text.trim_start().starts_with('{') {
        return Ok(Read {
            rows: Vec::new(),
            m: serde_json::from_str(&text).unwrap_or_default(),
            held_in,
        });
    }
    let with: WithRows = serde_json::from_str(&text).unwrap_or_default();
    let m = match with.m {
        Messages::InPlace(m) => m,
        Messages::Stored(hash) => {
            held_in.push(hash);
            serde_json::from_str(&fetch_text(conn, hash)?).unwrap_or_default()
        }
    };
    Ok(Read {
        rows: with.rows,
        m,
        held_in,
    })
}

/// Every stored text a prompt refers to, at any depth.
pub(super) fn prompt_blobs(conn: &Connection, prompt: &str, out: &mut Vec<i64>) -> Result<()> {
    let read = read_stored(conn, prompt)?;
    out.extend(read.held_in);
    for m in read.m {
        out.extend(m.text);
        out.extend(m.tpl);
        for (_, parts) in m.v.iter().flatten() {
            out.extend(parts.iter().filter_map(|p| match p {
                Part::Blob { b } => Some(*b),
                _ => None,
            }));
        }
    }
    Ok(())
}

/// Reads a run's stored prompts back, call by call in the order they were made: references
/// resolve against the sample's row, rows of the run by key, and the answers of the sample's
/// earlier calls. The playbook text stays a [`MARKER`].
pub(super) struct Decoder<'c> {
    conn: &'c Connection,
    run: String,
    texts: HashMap<String, RowTexts>,
    answers: HashMap<String, Vec<Answer>>,
    cache: BlobCache,
}

impl<'c> Decoder<'c> {
    pub(super) fn new(conn: &'c Connection, run: &str) -> Decoder<'c> {
        Decoder {
            conn,
            run: run.to_string(),
            texts: HashMap::new(),
            answers: HashMap::new(),
            cache: BlobCache::new(),
        }
    }

    /// The messages of the next call of sample `key` (stored as `prompt`, answered `response`).
    pub(super) fn messages(
        &mut self,
        prompt: &str,
        key: &str,
        response: &str,
    ) -> Result<Vec<Message>> {
        let Read {
            rows, m: stored, ..
        } = read_stored(self.conn, prompt)?;
        for k in std::iter::once(key).chain(rows.iter().map(|(k, _)| k.as_str())) {
            if !self.texts.contains_key(k)
                && let Some(row) = RowTexts::read(self.conn, &self.run, k)?
            {
                self.texts.insert(k.to_string(), row);
            }
        }
        let earlier = self.answers.entry(key.to_string()).or_default();
        // a row written again since (a batch redone on resume) is not what the prompt named
        let cx = Context {
            own: self.texts.get(key),
            rows: rows
                .iter()
                .map(|(k, digest)| self.texts.get(k).filter(|row| row.digest() == *digest))
                .collect(),
            responses: earlier,
        };
        let mut messages = Vec::with_capacity(stored.len());
        for m in &stored {
            // a batch redone on resume writes its samples' rows again; a prompt of the first try
            // that named them is not shown with texts it never held
            let content = decode_message(self.conn, &mut self.cache, m, &cx)?.unwrap_or_else(|| {
                format!(
                    "[not shown: this message named texts of run {}, sample {key} and its batch, that were written again after it was sent (a batch redone on resume)]",
                    self.run
                )
            });
            messages.push(Message {
                role: m.role.clone(),
                content,
            });
        }
        earlier.push(Answer::new(response));
        Ok(messages)
    }
}

/// Schema 9 → 8: every prompt stored by template and references gets its messages back as text
/// (long ones by reference, the playbook as its marker) and no stored text stays compressed: the
/// form version 8 reads.
pub(super) fn prompts_to_version_8(conn: &Connection) -> Result<()> {
    // version 8 reads stored texts as they are: none compressed
    inflate_all(conn)?;
    let runs: Vec<Option<String>> = conn
        .prepare("SELECT DISTINCT run_id FROM llm_calls")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut update = conn.prepare("UPDATE llm_calls SET prompt = ?1 WHERE id = ?2")?;
    for run in runs {
        let run = run.unwrap_or_default();
        let rows: Vec<(i64, String, String, String)> = conn
            .prepare(
                "SELECT id, prompt, coalesce(sample_key, ''), response FROM llm_calls
                 WHERE coalesce(run_id, '') = ?1 ORDER BY id",
            )?
            .query_map([&run], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut decoder = Decoder::new(conn, &run);
        for (id, prompt, key, response) in rows {
            let messages = decoder.messages(&prompt, &key, &response)?;
            let mut stored = Vec::with_capacity(messages.len());
            for m in messages {
                let key = if m.content.len() > SHARED_TEXT {
                    super::blobs::intern(conn, m.content.as_bytes())?
                } else {
                    None
                };
                stored.push(StoredMessage::text(m, key));
            }
            update.execute(params![serde_json::to_string(&stored)?, id])?;
        }
    }
    Ok(())
}

impl Store {
    /// Model calls of a run (all, or one sample's), oldest first, with their prompts as sent: the
    /// playbook text each carried is rebuilt from its revision.
    pub fn run_calls(&self, run: &str, sample_key: Option<&str>) -> Result<Vec<CallRecord>> {
        Ok(self
            .run_transcript(run, sample_key)?
            .into_iter()
            .map(|(_, call)| call)
            .collect())
    }

    /// [`Store::run_calls`], each call with the key of the sample (or curator step) it belongs to.
    pub fn run_transcript(
        &self,
        run: &str,
        sample_key: Option<&str>,
    ) -> Result<Vec<(String, CallRecord)>> {
        self.run(run)?;
        let mut stmt = self.conn.prepare(&format!(
            "SELECT c.role, c.prompt_version, c.prompt, c.response, c.model, c.prompt_tokens, c.completion_tokens,
                    c.latency_ms, c.cost_usd, c.attempts, c.playbook_view, {}, c.outcome,
                    coalesce(c.cached_tokens, 0), c.sample_key
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
                    let row = stored.row;
                    let mut view = stored.view();
                    if row {
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
                    recipes: Vec::new(),
                    outcome: r.get::<_, Option<String>>(12)?.unwrap_or_default(),
                },
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(14)?.unwrap_or_default(),
            ))
        })?;
        let rows = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        let mut decoder = Decoder::new(&self.conn, run);
        let mut calls = Vec::with_capacity(rows.len());
        for (mut call, prompt, key) in rows {
            call.messages = decoder.messages(&prompt, &key, &call.response)?;
            calls.push((key, call));
        }
        let mut playbooks: HashMap<Option<i64>, Playbook> = HashMap::new();
        for (_, call) in &mut calls {
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
