//! Talking to language models: the [`LlmClient`] trait, one real adapter for the OpenAI-compatible
//! Chat Completions API ([`openai::OpenAiClient`]), tolerant JSON extraction ([`json`]), token and cost
//! accounting ([`ledger`]), and a scripted OpenAI-compatible server for tests and demos ([`mock`]).

pub mod embed;
pub mod json;
pub mod ledger;
pub mod mock;
pub mod openai;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub use embed::{Embedder, OpenAiEmbedder};
pub use ledger::{Ledger, PriceTable, RetryNotice, RoleUsage};
pub use openai::{EndpointConfig, OpenAiClient};

/// Which ACE role a call serves (for per-role models, accounting and tracing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Generator,
    Reflector,
    Curator,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Generator, Role::Reflector, Role::Curator];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Generator => "generator",
            Role::Reflector => "reflector",
            Role::Curator => "curator",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Self {
        Message {
            role: "system".into(),
            content: content.into(),
        }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Message {
            role: "user".into(),
            content: content.into(),
        }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Message {
            role: "assistant".into(),
            content: content.into(),
        }
    }
}

/// One model call as it happened, for transcripts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    pub role: Role,
    pub prompt_version: String,
    pub messages: Vec<Message>,
    pub response: String,
    pub model: String,
    pub usage: Usage,
    pub latency_ms: u64,
    pub cost_usd: f64,
    pub attempts: u32,
    /// The playbook text the prompt carried and how to rebuild it: stored prompts hold a marker in
    /// its place, so they do not grow with the playbook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbook: Option<PlaybookText>,
    /// How each message of the prompt was made (index by index; `None`: not from a template), kept
    /// in memory only: the store keeps the filled values by reference to what it already holds.
    #[serde(skip)]
    pub recipes: Vec<Option<Recipe>>,
    /// What came of it: `ok`, `repaired` (a repair call that worked), `unusable` (its answer could
    /// not be used), `failed` (the server answered with an error or not in time).
    #[serde(default)]
    pub outcome: String,
}

/// A rendered playbook inside a prompt: the text (kept in memory only) and the view it renders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaybookText {
    pub view: crate::playbook::View,
    #[serde(skip)]
    pub text: String,
}

/// A prompt message as it was made: a template (its text after the header line) and the values
/// filled into its `{{name}}` places, in order; [`crate::prompts::rebuild`] makes the text again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    pub template: &'static str,
    pub values: Vec<(&'static str, String)>,
    /// Whitespace trimmed from both ends (user messages), else from the end only (system messages).
    pub trim_start: bool,
}

/// A JSON schema the answer must follow (sent as `response_format` when the server supports it).
#[derive(Debug, Clone, PartialEq)]
pub struct OutputSchema {
    pub name: String,
    pub schema: Value,
}

/// Ids that link a call to a run and sample (for tracing and transcripts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceIds {
    pub run: Option<String>,
    pub sample: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub role: Role,
    pub messages: Vec<Message>,
    pub schema: Option<OutputSchema>,
    pub prompt_version: String,
    pub trace: TraceIds,
    /// A token limit for this call instead of the endpoint's (a re-ask after a cut-off answer).
    pub max_tokens: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Of the prompt tokens, those the server served from its prompt cache (where it says so:
    /// `usage.prompt_tokens_details.cached_tokens`), priced at the cached-input rate.
    #[serde(default)]
    pub cached_prompt_tokens: u64,
}

/// How the answer's format was requested (servers differ in what they accept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputMode {
    JsonSchema,
    JsonObject,
    Plain,
}

#[derive(Debug, Clone)]
pub struct ChatResponse {
    pub content: String,
    pub model: String,
    pub usage: Usage,
    pub latency: Duration,
    pub finish_reason: Option<String>,
    /// HTTP attempts this call took (1 = no retry).
    pub attempts: u32,
    pub mode: OutputMode,
    pub cost_usd: f64,
}

/// Why a model call failed. Messages name the server and say what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LlmError {
    #[error(
        "the server at {url} rejected the API key (HTTP 401); check OPENAI_API_KEY / ACE_API_KEY"
    )]
    Unauthorized { url: String },
    #[error("the server at {url} refused the request (HTTP 403): {message}")]
    Forbidden { url: String, message: String },
    #[error("the server at {url} has no such endpoint or model '{model}' (HTTP 404): {message}")]
    NotFound {
        url: String,
        model: String,
        message: String,
    },
    #[error("the server at {url} rejected the request (HTTP {status}): {message}")]
    Rejected {
        url: String,
        status: u16,
        message: String,
    },
    #[error(
        "the server at {url} kept failing (HTTP {status}) after {attempts} attempts: {message}"
    )]
    ServerError {
        url: String,
        status: u16,
        attempts: u32,
        message: String,
    },
    #[error("no answer from {url} within {timeout_secs} s, {attempts} attempts")]
    Timeout {
        url: String,
        timeout_secs: f64,
        attempts: u32,
    },
    #[error("cannot reach {url} after {attempts} attempts: {detail}")]
    Connection {
        url: String,
        attempts: u32,
        detail: String,
    },
    #[error("the server at {url} answered with something that is not a chat completion: {detail}")]
    Malformed { url: String, detail: String },
    #[error("the call was cancelled")]
    Cancelled,
    #[error(
        "stopped before the cost limit: ${spent_usd:.4} spent, the next call would cost about ${estimate_usd:.4}, the limit is ${max_usd:.4} (resume with a larger --max-cost)"
    )]
    OverBudget {
        spent_usd: f64,
        estimate_usd: f64,
        max_usd: f64,
    },
    #[error("{0}")]
    Config(String),
}

impl LlmError {
    /// How many HTTP attempts of the failed call reached a server (it answered, or took the request
    /// and timed out); `None` when none did (no connection, cancelled, misconfigured).
    pub fn server_attempts(&self) -> Option<u32> {
        match self {
            LlmError::Unauthorized { .. }
            | LlmError::Forbidden { .. }
            | LlmError::NotFound { .. }
            | LlmError::Rejected { .. }
            | LlmError::Malformed { .. } => Some(1),
            LlmError::ServerError { attempts, .. } | LlmError::Timeout { attempts, .. } => {
                Some(*attempts)
            }
            LlmError::Connection { .. }
            | LlmError::Cancelled
            | LlmError::OverBudget { .. }
            | LlmError::Config(_) => None,
        }
    }
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A chat model. Implementations retry what is worth retrying and stop at once when `cancel` fires.
pub trait LlmClient: Send + Sync {
    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>>;

    /// Where calls go (for messages and `ace doctor`).
    fn endpoint(&self) -> &EndpointConfig;
}

/// Installs the TLS crypto provider (ring) once per process; required before any HTTPS client exists.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
