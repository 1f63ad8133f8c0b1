//! `ace mcp`: the playbooks as Model Context Protocol tools over stdio (the official SDK, `rmcp`),
//! a layer over [`crate::agent`]. Reading tools always; with writing allowed, `record_outcome`
//! (a trace, learned from; its lessons wait for a person) and `propose_delta` (validated, queued,
//! never applied).

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ErrorData, ServerHandler, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::agent::{AgentError, Agents, RenderRequest};

/// The tools that write (left out with `--read-only`).
pub const WRITING_TOOLS: &[&str] = &["record_outcome", "propose_delta"];

const INSTRUCTIONS: &str = "Playbooks of strategies curated by people (ACE). Read the playbook (or the \
bullets relevant to your task) before you work; each bullet has an id like [calc-00001]. When a bullet \
guided you, cite its id, and after the task call record_outcome with the ids you used and how it went: \
the lessons learned from it wait for a person's approval before they reach the playbook.";

#[derive(Clone)]
pub struct PlaybookTools {
    agents: Agents,
    playbook: Option<String>,
    tool_router: ToolRouter<Self>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct GetPlaybook {
    /// The playbook's name (default: the server's playbook)
    pub playbook: Option<String>,
    /// Only the bullets relevant to this task
    pub query: Option<String>,
    /// Tokens the chosen bullets may take (with a query; default 2000)
    pub budget: Option<u64>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SearchBullets {
    pub playbook: Option<String>,
    /// What to look for
    pub query: String,
    /// At most this many bullets (default 10)
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct GetBullet {
    pub playbook: Option<String>,
    /// The bullet id, e.g. calc-00001
    pub id: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct RecordOutcome {
    pub playbook: Option<String>,
    /// The task you were given
    pub task: String,
    /// Your final answer or the final state
    pub answer: String,
    /// The ids of the bullets you used (e.g. ["calc-00001"])
    #[serde(default)]
    pub bullet_ids: Vec<String>,
    /// Whether the task succeeded, if you know
    pub success: Option<bool>,
    /// What the user, a test or the environment said about the result
    pub feedback: Option<String>,
    /// The correct answer, if known
    pub ground_truth: Option<String>,
    /// Your steps, briefly
    pub steps: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ProposeDelta {
    pub playbook: Option<String>,
    /// Delta operations: {"type": "ADD", "section", "content"}, {"type": "UPDATE", "bullet_id",
    /// "content"}, {"type": "TAG", "bullet_id", "helpful"|"harmful": 1}, {"type": "REMOVE", "bullet_id"}
    pub operations: Vec<Value>,
    /// Why
    pub reason: Option<String>,
}

fn failed(e: AgentError) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(
        crate::text::visible(&e.to_string()).into_owned(),
    )])
}

/// A tool's outcome as the agent reads it: the value as JSON, or the refusal as an error result
/// (not a protocol error: the agent sees why).
fn reply(result: Result<impl serde::Serialize, AgentError>) -> Result<CallToolResult, ErrorData> {
    match result {
        Ok(value) => Ok(CallToolResult::success(vec![ContentBlock::json(value)?])),
        Err(e) => Ok(failed(e)),
    }
}

#[tool_router]
impl PlaybookTools {
    pub fn new(agents: Agents, playbook: Option<String>, read_only: bool) -> Self {
        let mut tool_router = Self::tool_router();
        if read_only {
            for name in WRITING_TOOLS {
                tool_router.remove_route(name);
            }
        }
        PlaybookTools {
            agents,
            playbook,
            tool_router,
        }
    }

    async fn name(&self, given: Option<String>) -> Result<String, AgentError> {
        if let Some(n) = given.or_else(|| self.playbook.clone()) {
            return Ok(n);
        }
        let all = self.agents.playbooks().await?;
        match all.as_slice() {
            [one] => Ok(one.name.clone()),
            _ => Err(AgentError::BadRequest(format!(
                "name the playbook (one of: {})",
                all.iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    #[tool(
        description = "The playbook as markdown, each bullet with its id in brackets, e.g. [calc-00001]. Give a query (your task) to get only the relevant bullets within a token budget. Cite the ids of bullets you use."
    )]
    async fn get_playbook(
        &self,
        Parameters(p): Parameters<GetPlaybook>,
    ) -> Result<CallToolResult, ErrorData> {
        let rendered = async {
            let name = self.name(p.playbook).await?;
            let req = RenderRequest {
                query: p.query,
                budget: p.budget,
                ..RenderRequest::default()
            };
            self.agents.render(&name, req).await
        }
        .await;
        match rendered {
            Ok(r) => Ok(CallToolResult::success(vec![ContentBlock::text(
                r.text.clone().unwrap_or_default(),
            )])),
            Err(e) => Ok(failed(e)),
        }
    }

    #[tool(
        description = "Bullets of the playbook relevant to a query, best first, with their ids and helpful/harmful counts."
    )]
    async fn search_bullets(
        &self,
        Parameters(p): Parameters<SearchBullets>,
    ) -> Result<CallToolResult, ErrorData> {
        reply(
            async {
                let name = self.name(p.playbook).await?;
                let hits = self
                    .agents
                    .search(&name, &p.query, p.limit.unwrap_or(10))
                    .await?;
                Ok(json!({ "bullets": hits }))
            }
            .await,
        )
    }

    #[tool(description = "One bullet by its id (e.g. calc-00001): section, content, counters.")]
    async fn get_bullet(
        &self,
        Parameters(p): Parameters<GetBullet>,
    ) -> Result<CallToolResult, ErrorData> {
        reply(
            async {
                let name = self.name(p.playbook).await?;
                self.agents.bullet(&name, &p.id).await
            }
            .await,
        )
    }

    #[tool(
        description = "After a task: record what you did and how it went, with the ids of the bullets you used. A reflector and curator learn from it; what they propose waits for a person's approval. Nothing changes the playbook now."
    )]
    async fn record_outcome(
        &self,
        Parameters(p): Parameters<RecordOutcome>,
    ) -> Result<CallToolResult, ErrorData> {
        let mut trace = Map::new();
        trace.insert("task".into(), json!(p.task));
        trace.insert("answer".into(), json!(p.answer));
        trace.insert("bullet_ids".into(), json!(p.bullet_ids));
        for (k, v) in [
            ("success", p.success.map(Value::Bool)),
            ("feedback", p.feedback.map(Value::String)),
            ("ground_truth", p.ground_truth.map(Value::String)),
            ("steps", p.steps.map(Value::String)),
        ] {
            if let Some(v) = v {
                trace.insert(k.into(), v);
            }
        }
        reply(
            async {
                let name = self.name(p.playbook).await?;
                self.agents.record_trace(&name, trace).await
            }
            .await,
        )
    }

    #[tool(
        description = "Propose a change to the playbook. It is checked against the playbook and queued for a person's approval; it is never applied by this call."
    )]
    async fn propose_delta(
        &self,
        Parameters(p): Parameters<ProposeDelta>,
    ) -> Result<CallToolResult, ErrorData> {
        reply(
            async {
                let name = self.name(p.playbook).await?;
                self.agents
                    .propose(&name, Value::Array(p.operations), p.reason)
                    .await
            }
            .await,
        )
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for PlaybookTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("ace", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }
}
