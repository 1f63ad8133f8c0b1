//! What agents may do with a playbook, shared by the HTTP API (`ace serve`) and the MCP server
//! (`ace mcp`): read it (rendered for a prompt, searched, one bullet), and send what they did
//! (traces), judgements (feedback) and proposals (deltas). **Nothing an agent sends changes a
//! playbook**: traces wait in the inbox for a learn run whose proposals wait for a person,
//! judgements update counters only where the playbook's agent policy says so, and proposals are
//! validated against the playbook and queued, never applied.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::approval::Provenance;
use crate::delta::{ApplyOptions, DeltaBatch, DeltaOp, Source, TagOp};
use crate::environment::traces;
use crate::playbook::format::{self, Format, PromptOptions};
use crate::playbook::{Bullet, Playbook};
use crate::prompts::{Index, Retrieval};
use crate::shared::{Shared, blocking, shared};
use crate::store::{AgentPolicy, InboxCounts, PlaybookSummary, Store, StoreError};

/// Traces that may wait in the inbox before new ones are refused (429), by default.
pub const DEFAULT_INBOX_LIMIT: u64 = 10_000;

/// Why an agent's request was refused, and what status it maps to.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Full(String),
    #[error("{0}")]
    Unavailable(String),
}

impl From<StoreError> for AgentError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnknownPlaybook { .. }
            | StoreError::UnknownRevision(_)
            | StoreError::UnknownBullet { .. } => AgentError::NotFound(e.to_string()),
            StoreError::Full(m) => AgentError::Full(m),
            StoreError::Locked => AgentError::Unavailable(
                "the database is busy with another process's write; try again".into(),
            ),
            StoreError::Rejected { .. } | StoreError::Queue(_) => {
                AgentError::BadRequest(e.to_string())
            }
            other => AgentError::Unavailable(other.to_string()),
        }
    }
}

impl From<crate::shared::JobLost> for AgentError {
    fn from(e: crate::shared::JobLost) -> Self {
        AgentError::Unavailable(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, AgentError>;

/// How a playbook is rendered for an agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RenderRequest {
    /// `markdown` (default), `text` or `json`.
    pub format: Option<String>,
    /// Show bullet ids (for agents asked to cite them); default true.
    pub ids: Option<bool>,
    /// Show helpful/harmful counters; default false.
    pub counters: Option<bool>,
    /// The playbook as it was at this revision.
    pub revision: Option<i64>,
    /// Only the bullets relevant to this task...
    pub query: Option<String>,
    /// ...that fit this many tokens (default 2,000 with a query).
    pub budget: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rendered {
    pub playbook: String,
    pub revision: Option<i64>,
    pub format: String,
    /// The bullets rendered (all active ones unless a query chose).
    pub bullets: usize,
    pub tokens: usize,
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json: Option<Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub id: String,
    pub section: String,
    pub content: String,
    pub helpful: u64,
    pub harmful: u64,
    pub score: f64,
}

/// A judgement of one bullet by an agent's host.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Judgement {
    pub bullet_id: String,
    /// `helpful`, `harmful` or `neutral`.
    pub tag: String,
}

/// What happened to something an agent sent.
#[derive(Debug, Clone, Serialize)]
pub struct Received {
    /// `queued` (waits for a person), `inbox` (waits for a learn run), `applied` (by the
    /// playbook's agent policy).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposal: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    pub message: String,
}

/// A rendering with its JSON encoding and an entity tag for it (a hash of the bytes, quoted), so a
/// client holding the same bytes is told so instead of sent them again.
#[derive(Clone)]
pub struct Encoded {
    pub rendered: Arc<Rendered>,
    pub body: bytes::Bytes,
    pub etag: String,
}

/// The playbook, its index and renderings, as of one database state.
struct Cached {
    /// The database's change marker and the playbook's row id when this was read.
    marker: ((i64, i64, i64), i64),
    /// The reading connection's data version when the marker was last found unchanged: while it
    /// stays the same nothing was written, and the marker need not be read again.
    checked: i64,
    playbook: Arc<Playbook>,
    index: Option<Arc<Index>>,
    renders: HashMap<RenderRequest, Encoded>,
}

/// The agents' side of one database.
#[derive(Clone)]
pub struct Agents {
    store: Shared<Store>,
    reader: Shared<Store>,
    cache: Arc<Mutex<HashMap<String, Cached>>>,
    pub inbox_limit: u64,
    /// Woken when a trace arrives (the learner waits on it).
    pub arrived: Arc<tokio::sync::Notify>,
}

impl Agents {
    pub fn open(db: &std::path::Path) -> anyhow::Result<Self> {
        let store = Store::open(db)?;
        let reader = Store::open_reading(db)?;
        Ok(Agents {
            store: shared(store),
            reader: shared(reader),
            cache: Arc::default(),
            inbox_limit: DEFAULT_INBOX_LIMIT,
            arrived: Arc::default(),
        })
    }

    pub fn store(&self) -> &Shared<Store> {
        &self.store
    }

    pub async fn playbooks(&self) -> Result<Vec<PlaybookSummary>> {
        Ok(blocking(&self.reader, |s| s.playbooks()).await?)
    }

    pub async fn inbox(&self) -> Result<InboxCounts> {
        Ok(blocking(&self.reader, |s| s.inbox_counts()).await?)
    }

    /// The playbook as of now, from the cache while nothing changed.
    async fn current(&self, name: &str) -> Result<(Arc<Playbook>, Arc<Index>)> {
        // a renamed, deleted or replaced playbook is not served from the cache: its row id is part
        // of the marker
        // nothing committed since the last check: no blocking job, no query of the tables (an
        // uncontended lock and one pragma; a busy reader takes the path below)
        let version = self
            .reader
            .try_lock()
            .ok()
            .and_then(|s| s.data_version().ok());
        if let Some(version) = version
            && let Some(c) = self.cache.lock().unwrap().get(name)
            && c.checked == version
            && let Some(index) = &c.index
        {
            return Ok((c.playbook.clone(), index.clone()));
        }
        let n = name.to_string();
        let (checked, marker) = blocking(&self.reader, move |s| {
            // read first: a write between the two shows as a changed version next time
            let checked = s.data_version()?;
            Ok::<_, StoreError>((checked, (s.change_marker()?, s.playbook_key(&n)?)))
        })
        .await?;
        if let Some(c) = self.cache.lock().unwrap().get_mut(name)
            && c.marker == marker
            && let Some(index) = &c.index
        {
            c.checked = checked;
            return Ok((c.playbook.clone(), index.clone()));
        }
        let n = name.to_string();
        let playbook = Arc::new(blocking(&self.reader, move |s| s.load_playbook(&n)).await?);
        let p = playbook.clone();
        let index = Arc::new(
            tokio::task::spawn_blocking(move || Index::build(&p))
                .await
                .map_err(|e| AgentError::Unavailable(e.to_string()))?,
        );
        self.cache.lock().unwrap().insert(
            name.to_string(),
            Cached {
                marker,
                checked,
                playbook: playbook.clone(),
                index: Some(index.clone()),
                renders: HashMap::new(),
            },
        );
        Ok((playbook, index))
    }

    pub async fn render(&self, name: &str, req: RenderRequest) -> Result<Arc<Rendered>> {
        Ok(self.render_encoded(name, req).await?.rendered)
    }

    /// [`Agents::render`] with its JSON encoding, both kept while the playbook is unchanged (an
    /// API read of a large playbook is then a copy of bytes).
    pub async fn render_encoded(&self, name: &str, req: RenderRequest) -> Result<Encoded> {
        let format = req.format.clone().unwrap_or_else(|| "markdown".into());
        if !["markdown", "text", "json"].contains(&format.as_str()) {
            return Err(AgentError::BadRequest(format!(
                "unknown format '{format}' (use markdown, text or json)"
            )));
        }
        let encode = |r: Rendered| {
            let body = bytes::Bytes::from(serde_json::to_vec(&r).unwrap_or_default());
            Encoded {
                rendered: Arc::new(r),
                etag: format!("\"{:016x}\"", crate::delta::content_hash(&body)),
                body,
            }
        };
        if let Some(rev) = req.revision {
            let n = name.to_string();
            let playbook = blocking(&self.reader, move |s| {
                let p = s.playbook_at(rev)?;
                if p.name != n {
                    return Err(StoreError::UnknownRevision(rev));
                }
                Ok(p)
            })
            .await?;
            let index = Index::build(&playbook);
            return Ok(encode(render(&playbook, &index, &req, format)));
        }
        let (playbook, index) = self.current(name).await?;
        if let Some(hit) = self
            .cache
            .lock()
            .unwrap()
            .get(name)
            .and_then(|c| c.renders.get(&req).cloned())
        {
            return Ok(hit);
        }
        let rendered = encode(render(&playbook, &index, &req, format));
        if let Some(c) = self.cache.lock().unwrap().get_mut(name)
            && Arc::ptr_eq(&c.playbook, &playbook)
        {
            if c.renders.len() >= 64 {
                c.renders.clear();
            }
            c.renders.insert(req, rendered.clone());
        }
        Ok(rendered)
    }

    pub async fn search(&self, name: &str, query: &str, limit: usize) -> Result<Vec<Hit>> {
        if query.trim().is_empty() {
            return Err(AgentError::BadRequest("the query is empty".into()));
        }
        let (playbook, index) = self.current(name).await?;
        Ok(index
            .search(query, limit.clamp(1, 100))
            .into_iter()
            .filter_map(|(id, score)| {
                playbook.bullet(&id).map(|b| Hit {
                    id: b.id.clone(),
                    section: b.section.clone(),
                    content: b.content.clone(),
                    helpful: b.helpful,
                    harmful: b.harmful,
                    score,
                })
            })
            .collect())
    }

    pub async fn bullet(&self, name: &str, id: &str) -> Result<Bullet> {
        let (playbook, _) = self.current(name).await?;
        playbook
            .canonical_id(id)
            .and_then(|id| playbook.bullet(id))
            .cloned()
            .ok_or_else(|| AgentError::NotFound(format!("playbook '{name}' has no bullet '{id}'")))
    }

    /// Keeps what an agent did for a learn run (its lessons then wait for a person).
    pub async fn record_trace(&self, name: &str, trace: Map<String, Value>) -> Result<Received> {
        let sample = traces::from_object(&trace, format!("agent-trace-{}", now_nanos()))
            .map_err(AgentError::BadRequest)?;
        let (n, limit) = (name.to_string(), self.inbox_limit);
        let id = blocking(&self.store, move |s| s.receive_trace(&n, &sample, limit)).await?;
        self.arrived.notify_one();
        Ok(Received {
            status: "inbox",
            trace_id: Some(id),
            proposal: None,
            revision: None,
            message: format!(
                "trace {id} received: the reflector and curator will learn from it; what they propose waits for a person's approval"
            ),
        })
    }

    /// Judgements of bullets: applied as counters if the playbook's agent policy allows it,
    /// otherwise queued as TAG ops for a person.
    pub async fn feedback(&self, name: &str, judgements: Vec<Judgement>) -> Result<Received> {
        if judgements.is_empty() {
            return Err(AgentError::BadRequest("no judgements given".into()));
        }
        if judgements.len() > 1000 {
            return Err(AgentError::BadRequest(
                "at most 1000 judgements a request".into(),
            ));
        }
        let (playbook, _) = self.current(name).await?;
        let mut ops = Vec::new();
        for j in &judgements {
            let id = playbook.canonical_id(&j.bullet_id).ok_or_else(|| {
                AgentError::BadRequest(format!("playbook '{name}' has no bullet '{}'", j.bullet_id))
            })?;
            let (helpful, harmful, neutral) = match j.tag.as_str() {
                "helpful" => (1, 0, 0),
                "harmful" => (0, 1, 0),
                "neutral" => (0, 0, 1),
                other => {
                    return Err(AgentError::BadRequest(format!(
                        "unknown tag '{other}' (use helpful, harmful or neutral)"
                    )));
                }
            };
            ops.push(DeltaOp::Tag(TagOp {
                bullet_id: id.to_string(),
                helpful,
                harmful,
                neutral,
            }));
        }
        let n = name.to_string();
        let key = format!("agent-feedback:{}", now_nanos());
        blocking(&self.store, move |s| {
            if s.agent_policy(&n)? == AgentPolicy::Counters {
                let mut batch = DeltaBatch::new(key, Source::Policy, ops)
                    .with_reason("an agent's feedback (agent policy: counters)");
                batch.author = Some("agent".into());
                let outcome = s.apply(&n, &batch, &ApplyOptions::default())?;
                let revision = outcome.revision();
                return Ok(Received {
                    status: "applied",
                    trace_id: None,
                    proposal: None,
                    revision: Some(revision),
                    message: format!(
                        "counters updated as revision {revision} (the playbook lets agents change counters)"
                    ),
                });
            }
            let keyed = crate::approval::keyed_ops(&key, ops);
            let id = s
                .propose(
                    &n,
                    &key,
                    None,
                    "an agent's feedback on bullets",
                    &keyed,
                    &Provenance::default(),
                )?
                .unwrap_or_default();
            Ok(Received {
                status: "queued",
                trace_id: None,
                proposal: Some(id),
                revision: None,
                message: format!("queued as proposal #{id}; it changes nothing until a person approves it"),
            })
        })
        .await
    }

    /// A delta an agent proposes: checked against the playbook as it is now (by the same rules the
    /// store applies) and queued for a person, never applied.
    pub async fn propose(
        &self,
        name: &str,
        operations: Value,
        reason: Option<String>,
    ) -> Result<Received> {
        let ops: Vec<DeltaOp> = match operations {
            Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    serde_json::from_value(v)
                        .map_err(|e| AgentError::BadRequest(format!("operation {}: {e}", i + 1)))
                })
                .collect::<Result<_>>()?,
            _ => {
                return Err(AgentError::BadRequest(
                    "\"operations\" must be an array of delta operations".into(),
                ));
            }
        };
        if ops.is_empty() {
            return Err(AgentError::BadRequest("no operations given".into()));
        }
        if ops.len() > 100 {
            return Err(AgentError::BadRequest(
                "at most 100 operations a proposal".into(),
            ));
        }
        let (playbook, _) = self.current(name).await?;
        let key = format!("agent-proposal:{}", now_nanos());
        let batch = DeltaBatch::new(key.clone(), Source::Curator, ops.clone());
        let mut trial = (*playbook).clone();
        crate::delta::apply_in_memory(&mut trial, &batch, &ApplyOptions::default(), &now())
            .map_err(|e| AgentError::BadRequest(format!("the proposal cannot apply: {e}")))?;
        let n = name.to_string();
        let reason = reason.unwrap_or_else(|| "proposed by an agent".into());
        let id = blocking(&self.store, move |s| {
            let keyed = crate::approval::keyed_ops(&key, ops);
            s.propose(&n, &key, None, &reason, &keyed, &Provenance::default())
        })
        .await?
        .unwrap_or_default();
        Ok(Received {
            status: "queued",
            trace_id: None,
            proposal: Some(id),
            revision: None,
            message: format!(
                "queued as proposal #{id}; it changes nothing until a person approves it"
            ),
        })
    }
}

/// A timestamp for the in-memory trial of a proposal (it is never stored).
fn now() -> String {
    format!("unix:{}", now_nanos() / 1_000_000_000)
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// `playbook` rendered as asked: the bullets a query chose within its budget, or all active ones.
fn render(playbook: &Playbook, index: &Index, req: &RenderRequest, format: String) -> Rendered {
    let chosen: Option<Vec<String>> =
        req.query
            .as_deref()
            .filter(|q| !q.trim().is_empty())
            .map(|q| {
                let budget = req.budget.unwrap_or(2_000);
                // the bullets the query matches, best first, while they fit the budget
                index
                    .select(Retrieval::TopK(usize::MAX), budget, q, usize::MAX)
                    .unwrap_or_default()
            });
    let view: std::borrow::Cow<'_, Playbook> = match &chosen {
        Some(ids) => {
            // only the chosen bullets are copied (not the whole playbook), in playbook order
            let keep: std::collections::HashSet<&str, crate::prompts::retrieval::Fast> =
                ids.iter().map(String::as_str).collect();
            std::borrow::Cow::Owned(Playbook {
                name: playbook.name.clone(),
                sections: playbook.sections.clone(),
                bullets: playbook
                    .bullets
                    .iter()
                    .filter(|b| keep.contains(b.id.as_str()))
                    .cloned()
                    .collect(),
                next_bullet_number: playbook.next_bullet_number,
                next_position: playbook.next_position,
                removed_sections: Vec::new(),
                revision: playbook.revision,
            })
        }
        None => std::borrow::Cow::Borrowed(playbook),
    };
    let options = PromptOptions {
        ids: req.ids.unwrap_or(true),
        counters: req.counters.unwrap_or(false),
        harmful: true,
    };
    let (text, json) = match format.as_str() {
        "json" => (
            None,
            serde_json::from_str(&format::export(Format::Json, &view)).ok(),
        ),
        "text" => (Some(plain_text(&view, options)), None),
        _ => (Some(format::export_prompt(&view, options)), None),
    };
    // a query's selection is counted from the index's per-bullet counts (tokenising every
    // answer again was most of a query's cost); a whole rendering is counted once and cached
    let tokens = match (&chosen, text.as_deref()) {
        (Some(ids), Some(_)) => {
            let sections: std::collections::HashSet<&str, crate::prompts::retrieval::Fast> =
                view.active_bullets().map(|b| b.section.as_str()).collect();
            (ids.iter()
                .filter_map(|id| index.bullet_tokens(id))
                .sum::<u64>()
                + sections
                    .iter()
                    .map(|s| {
                        index
                            .section_tokens(s)
                            .unwrap_or_else(|| crate::prompts::section_cost(s))
                    })
                    .sum::<u64>()) as usize
        }
        (None, Some(t)) => crate::prompts::tokens(t),
        (_, None) => 0,
    };
    Rendered {
        playbook: playbook.name.clone(),
        revision: playbook.revision,
        format,
        bullets: view.active_bullets().count(),
        tokens,
        text,
        json,
    }
}

/// Section names as plain lines, then one line a bullet (`[id] content`), no markdown.
fn plain_text(playbook: &Playbook, options: PromptOptions) -> String {
    let mut out = String::new();
    for section in &playbook.sections {
        let bullets: Vec<&Bullet> = playbook.section_bullets(&section.name).collect();
        if bullets.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&section.name);
        out.push('\n');
        for b in bullets {
            if options.ids {
                out.push_str(&format!("[{}] ", b.id));
            }
            out.push_str(&b.content.replace('\n', "\n    "));
            if options.counters {
                out.push_str(&format!(" (helpful {}, harmful {})", b.helpful, b.harmful));
            }
            out.push('\n');
        }
    }
    out
}

/// How the inbox learner runs.
#[derive(Debug, Clone)]
pub struct LearnerConfig {
    /// Where the traces of a learn run are spooled (a JSONL file a run, removed when it is done).
    pub spool: PathBuf,
    /// Traces a learn run takes (one curator batch).
    pub batch: usize,
    pub concurrency: usize,
    /// How often to look for traces another process received.
    pub poll: std::time::Duration,
}

/// A trace as a line of a trace file (what [`traces::parse`] reads back).
fn trace_line(sample: &crate::environment::Sample) -> Value {
    let t = sample.trace.clone().unwrap_or_default();
    serde_json::json!({
        "id": sample.id,
        "task": sample.question,
        "context": sample.context,
        "answer": t.answer,
        "ground_truth": sample.ground_truth,
        "feedback": t.feedback,
        "success": t.success,
        "bullet_ids": t.bullet_ids,
        "steps": t.steps,
        "metadata": sample.metadata,
    })
}

/// Learns from the inbox until `cancel`: takes the waiting traces of one playbook at a time and
/// runs the Reflector and Curator over them (`approve: queue`, so every lesson waits for a person;
/// the reflector's counters too unless the playbook's agent policy is `counters`). A run that
/// fails for want of a model puts its traces back and waits before trying again; none is lost.
pub async fn learner(
    agents: Agents,
    models: crate::adaptation::Models,
    config: LearnerConfig,
    cancel: tokio_util::sync::CancellationToken,
) {
    use crate::adaptation::{self, ApproveMode, LoopError, RunConfig};
    let _ = blocking(&agents.store, |s| s.release_taken_traces()).await;
    if let Err(e) = std::fs::create_dir_all(&config.spool) {
        tracing::error!(error = %e, spool = %config.spool.display(), "the trace learner cannot spool traces; it is off");
        return;
    }
    let mut backoff = std::time::Duration::from_secs(1);
    loop {
        let token = format!("inbox-{}", now_nanos());
        let (t, limit) = (token.clone(), config.batch.max(1));
        let taken = blocking(&agents.store, move |s| s.take_traces(limit, &t)).await;
        let (playbook, traces) = match taken {
            Ok(Some(taken)) => taken,
            Ok(None) => {
                tokio::select! {
                    _ = agents.arrived.notified() => {}
                    _ = tokio::time::sleep(config.poll) => {}
                    _ = cancel.cancelled() => return,
                }
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the trace inbox");
                tokio::select! {
                    _ = tokio::time::sleep(config.poll) => {}
                    _ = cancel.cancelled() => return,
                }
                continue;
            }
        };
        let file = config.spool.join(format!("{token}.jsonl"));
        let text: String = traces
            .iter()
            .map(|(_, s)| trace_line(s).to_string() + "\n")
            .collect();
        let n = traces.len();
        if let Err(e) = std::fs::write(&file, text) {
            tracing::error!(error = %e, "cannot spool traces");
            let _ = blocking(&agents.store, move |s| {
                s.settle_traces(&token, None, crate::store::TraceOutcome::Again)
            })
            .await;
            tokio::time::sleep(backoff).await;
            continue;
        }
        let pb = playbook.clone();
        let policy = blocking(&agents.store, move |s| s.agent_policy(&pb))
            .await
            .unwrap_or_default();
        let run_config = RunConfig {
            playbook: playbook.clone(),
            dataset: file.clone(),
            epochs: 1,
            batch_size: n,
            concurrency: config.concurrency.max(1),
            approve: ApproveMode::Queue,
            max_rounds: 1,
            traces: true,
            tags_to_queue: policy != AgentPolicy::Counters,
            ..RunConfig::default()
        };
        let handle = adaptation::start(agents.store.clone(), models.clone(), run_config, None);
        let stop = handle.cancel.clone();
        let result = tokio::select! {
            r = handle.task => r,
            _ = cancel.cancelled() => {
                stop.cancel();
                let _ = blocking(&agents.store, move |s| s.settle_traces(&token, None, crate::store::TraceOutcome::Again)).await;
                return;
            }
        };
        let t = token.clone();
        let settled = match result {
            Ok(Ok(run)) => {
                backoff = std::time::Duration::from_secs(1);
                tracing::info!(run = %run, traces = n, playbook = %playbook, "learned from traces");
                let _ = std::fs::remove_file(&file);
                blocking(&agents.store, move |s| {
                    s.settle_traces(&t, Some(&run), crate::store::TraceOutcome::Done)
                })
                .await
            }
            Ok(Err(LoopError::Data(e))) => {
                tracing::warn!(error = %e, "traces could not be learned from");
                blocking(&agents.store, move |s| {
                    s.settle_traces(&t, None, crate::store::TraceOutcome::Failed(&e))
                })
                .await
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, retry_in_s = backoff.as_secs(), "a learn run over traces stopped; its traces wait again");
                let r = blocking(&agents.store, move |s| {
                    s.settle_traces(&t, None, crate::store::TraceOutcome::Again)
                })
                .await;
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = cancel.cancelled() => return,
                }
                backoff = (backoff * 2).min(std::time::Duration::from_secs(60));
                r
            }
            Err(e) => {
                tracing::error!(error = %e, "a learn run panicked");
                blocking(&agents.store, move |s| {
                    s.settle_traces(&t, None, crate::store::TraceOutcome::Again)
                })
                .await
            }
        };
        if let Err(e) = settled {
            tracing::warn!(error = %e, "cannot mark the traces of a learn run");
        }
    }
}
