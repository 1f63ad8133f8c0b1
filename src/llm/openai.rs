//! The OpenAI-compatible Chat Completions adapter (OpenAI, Ollama, vLLM, llama.cpp server, LiteLLM).
//!
//! Retries 5xx, 408, 429, timeouts and broken connections with exponential backoff and jitter
//! (`backon`), honouring `Retry-After` (capped); never retries 400/401/403/404. Structured output is
//! asked for with `response_format: json_schema`; a server that refuses it gets `json_object`, then plain
//! text, and the client remembers what worked.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant, SystemTime};

use backon::{BackoffBuilder, ExponentialBuilder};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{
    BoxFuture, ChatRequest, ChatResponse, Ledger, LlmClient, LlmError, OutputMode, PriceTable,
    RetryNotice, Usage,
};

/// One endpoint and model. The API key is never printed or serialised.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointConfig {
    pub base_url: String,
    #[serde(skip_serializing, default)]
    pub api_key: Option<String>,
    pub model: String,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
    /// The other OpenAI-compatible sampling fields, sent when set.
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub frequency_penalty: Option<f64>,
    #[serde(default)]
    pub presence_penalty: Option<f64>,
    #[serde(default)]
    pub seed: Option<i64>,
    /// Fields a server accepts beyond the OpenAI API (e.g. llama.cpp's `repeat_penalty`), merged
    /// into every request's body as they are.
    #[serde(default)]
    pub extra_body: Option<serde_json::Map<String, Value>>,
    /// Per attempt.
    pub timeout: Duration,
    /// Calls in flight at once on this endpoint.
    pub concurrency: usize,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff delay (doubles each retry, with jitter, up to 10 s).
    pub min_backoff: Duration,
    /// Longest `Retry-After` honoured.
    pub retry_after_cap: Duration,
    /// User and password taken out of the base URL (sent as basic auth; never serialised).
    #[serde(skip)]
    pub basic_auth: Option<(String, Option<String>)>,
    /// The largest response body read (a runaway or hostile server is cut off with a clear error).
    #[serde(default = "default_max_answer_bytes")]
    pub max_answer_bytes: usize,
}

/// `https://user:pass@host/v1` → (`https://host/v1`, user and password); other URLs unchanged.
fn split_credentials(url: String) -> (String, Option<(String, Option<String>)>) {
    let Ok(mut parsed) = reqwest::Url::parse(&url) else {
        return (url, None);
    };
    if parsed.username().is_empty() && parsed.password().is_none() {
        return (url, None);
    }
    let user = percent_decode(parsed.username());
    let password = parsed.password().map(percent_decode);
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    let mut clean = parsed.to_string();
    // Url adds a slash to a bare host; keep the form the user gave otherwise
    if !url.ends_with('/') && clean.ends_with('/') {
        clean.pop();
    }
    (clean, Some((user, password)))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// 4 MiB: a completion of 32k tokens is about 130 KB.
pub const DEFAULT_MAX_ANSWER_BYTES: usize = 4 << 20;

fn default_max_answer_bytes() -> usize {
    DEFAULT_MAX_ANSWER_BYTES
}

/// Reads a response body of at most `limit` bytes: `Ok(None)` when it is larger (nothing more is
/// read).
pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Option<String>, reqwest::Error> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(String::from_utf8_lossy(&body).into_owned()))
}

impl std::fmt::Debug for EndpointConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_deref().map(mask_key))
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl EndpointConfig {
    /// Credentials written into the URL (`https://user:pass@host/v1`) are taken out of it: they
    /// are sent as HTTP basic auth and never printed, logged or stored with the URL.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        let (base_url, basic_auth) = split_credentials(base_url.into());
        EndpointConfig {
            basic_auth,
            base_url,
            api_key: None,
            model: model.into(),
            temperature: None,
            max_tokens: None,
            top_p: None,
            frequency_penalty: None,
            presence_penalty: None,
            seed: None,
            extra_body: None,
            timeout: Duration::from_secs(120),
            concurrency: 8,
            max_retries: 4,
            min_backoff: Duration::from_millis(500),
            retry_after_cap: Duration::from_secs(60),
            max_answer_bytes: DEFAULT_MAX_ANSWER_BYTES,
        }
    }

    pub fn chat_url(&self) -> String {
        format!("{}/chat/completions", self.base_url.trim_end_matches('/'))
    }
}

/// `sk-abc…xyz` style masking for display.
pub fn mask_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "****".into();
    }
    format!(
        "{}…{}",
        chars[..3].iter().collect::<String>(),
        chars[chars.len() - 4..].iter().collect::<String>()
    )
}

pub struct OpenAiClient {
    config: EndpointConfig,
    http: reqwest::Client,
    permits: Arc<Semaphore>,
    mode: AtomicU8,
    ledger: Ledger,
    prices: PriceTable,
}

/// What one HTTP attempt came to.
enum Attempt {
    Done(ChatResponse),
    /// The server refused the `response_format`; try the next simpler mode.
    FormatRefused,
    Retry {
        error: LlmError,
        retry_after: Option<Duration>,
    },
    Fatal(LlmError),
}

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    model: String,
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<UsageJson>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<ChoiceMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct UsageJson {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: u64,
}

fn mode_from(n: u8) -> OutputMode {
    match n {
        0 => OutputMode::JsonSchema,
        1 => OutputMode::JsonObject,
        _ => OutputMode::Plain,
    }
}

/// The error text a server put in its body (`{"error": {"message": …}}` and variants), else the body.
pub(super) fn server_message(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let found = parsed.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("error"))
            .or_else(|| v.get("message"))
            .or_else(|| v.get("detail"))
            .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_string))
    });
    let text = found.unwrap_or_else(|| body.trim().to_string());
    let mut short: String = text.chars().take(300).collect();
    if text.chars().count() > 300 {
        short.push('…');
    }
    if short.is_empty() {
        "(empty body)".into()
    } else {
        short
    }
}

pub(super) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

fn mentions_format(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "response_format",
        "json_schema",
        "json_object",
        "schema",
        "format",
        "guided",
    ]
    .iter()
    .any(|k| m.contains(k))
}

impl OpenAiClient {
    pub fn new(
        config: EndpointConfig,
        ledger: Ledger,
        prices: PriceTable,
    ) -> Result<Self, LlmError> {
        super::install_crypto_provider();
        if config.base_url.trim().is_empty() {
            return Err(LlmError::Config("the endpoint has no base URL".into()));
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| LlmError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(OpenAiClient {
            permits: Arc::new(Semaphore::new(config.concurrency.max(1))),
            config,
            http,
            mode: AtomicU8::new(0),
            ledger,
            prices,
        })
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The structured-output mode this client currently uses.
    pub fn mode(&self) -> OutputMode {
        mode_from(self.mode.load(Ordering::Relaxed))
    }

    fn body(&self, request: &ChatRequest, mode: OutputMode) -> Value {
        let mut body = json!({ "model": self.config.model, "messages": request.messages });
        if let Some(t) = self.config.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(n) = request.max_tokens.or(self.config.max_tokens) {
            body["max_tokens"] = json!(n);
        }
        if let Some(x) = self.config.top_p {
            body["top_p"] = json!(x);
        }
        if let Some(x) = self.config.frequency_penalty {
            body["frequency_penalty"] = json!(x);
        }
        if let Some(x) = self.config.presence_penalty {
            body["presence_penalty"] = json!(x);
        }
        if let Some(x) = self.config.seed {
            body["seed"] = json!(x);
        }
        // server-specific fields, verbatim (they never replace the model, messages or format)
        for (k, v) in self.config.extra_body.iter().flatten() {
            if !matches!(k.as_str(), "model" | "messages" | "response_format") {
                body[k] = v.clone();
            }
        }
        if let Some(schema) = &request.schema {
            match mode {
                OutputMode::JsonSchema => {
                    body["response_format"] = json!({
                        "type": "json_schema",
                        "json_schema": {"name": schema.name, "strict": true, "schema": schema.schema},
                    });
                }
                OutputMode::JsonObject => body["response_format"] = json!({"type": "json_object"}),
                OutputMode::Plain => {}
            }
        }
        body
    }

    async fn attempt(
        &self,
        request: &ChatRequest,
        mode: OutputMode,
        started: Instant,
        attempts: u32,
    ) -> Attempt {
        let url = self.config.chat_url();
        let mut builder = self.http.post(&url).json(&self.body(request, mode));
        if let Some(key) = self.config.api_key.as_deref().filter(|k| !k.is_empty()) {
            builder = builder.bearer_auth(key);
        } else if let Some((user, password)) = &self.config.basic_auth {
            builder = builder.basic_auth(user, password.as_ref());
        }
        let response = match builder.send().await {
            Ok(r) => r,
            Err(e) => return self.transport_error(&e, attempts),
        };
        let status = response.status();
        let after = retry_after(response.headers());
        let proxy_cost = response_cost(response.headers());
        let body = match read_limited(response, self.config.max_answer_bytes).await {
            Ok(Some(b)) => b,
            Ok(None) => {
                return Attempt::Fatal(LlmError::Malformed {
                    url,
                    detail: format!(
                        "the answer is larger than {} bytes, the limit (ACE_MAX_ANSWER_BYTES or max_answer_bytes in the configuration); nothing of it was used",
                        self.config.max_answer_bytes
                    ),
                });
            }
            Err(e) => return self.transport_error(&e, attempts),
        };
        if !status.is_success() {
            return self.status_error(status.as_u16(), &body, after, mode, request, attempts);
        }
        let completion: Completion = match serde_json::from_str(&body) {
            Ok(c) => c,
            // A cut or garbled body from a proxy or a dying server: worth another try.
            Err(e) => {
                return Attempt::Retry {
                    error: LlmError::Malformed {
                        url,
                        detail: format!("the response body is not valid JSON ({e})"),
                    },
                    retry_after: None,
                };
            }
        };
        let Some(choice) = completion.choices.into_iter().next() else {
            return Attempt::Fatal(LlmError::Malformed {
                url,
                detail: "the response has no choices".into(),
            });
        };
        let usage = completion
            .usage
            .map(|u| Usage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
                cached_prompt_tokens: u
                    .prompt_tokens_details
                    .map_or(0, |d| d.cached_tokens.min(u.prompt_tokens)),
            })
            .unwrap_or_default();
        let model = if completion.model.is_empty() {
            self.config.model.clone()
        } else {
            completion.model
        };
        // a LiteLLM proxy says what the call cost; that figure wins over our price table
        let cost_usd = proxy_cost.unwrap_or_else(|| self.prices.cost(&model, usage));
        Attempt::Done(ChatResponse {
            content: choice.message.and_then(|m| m.content).unwrap_or_default(),
            model,
            usage,
            latency: started.elapsed(),
            finish_reason: choice.finish_reason.filter(|f| !f.is_empty()),
            attempts,
            mode,
            cost_usd,
        })
    }

    fn transport_error(&self, e: &reqwest::Error, attempts: u32) -> Attempt {
        let url = self.config.chat_url();
        let error = if e.is_timeout() {
            LlmError::Timeout {
                url,
                timeout_secs: self.config.timeout.as_secs_f64(),
                attempts,
            }
        } else {
            let mut detail = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                detail = format!("{detail}: {s}");
                source = s.source();
            }
            LlmError::Connection {
                url,
                attempts,
                detail,
            }
        };
        Attempt::Retry {
            error,
            retry_after: None,
        }
    }

    fn status_error(
        &self,
        status: u16,
        body: &str,
        after: Option<Duration>,
        mode: OutputMode,
        request: &ChatRequest,
        attempts: u32,
    ) -> Attempt {
        let url = self.config.chat_url();
        let message = server_message(body);
        match status {
            400 | 422
                if request.schema.is_some()
                    && mode != OutputMode::Plain
                    && mentions_format(&message) =>
            {
                Attempt::FormatRefused
            }
            401 => Attempt::Fatal(LlmError::Unauthorized { url }),
            403 => Attempt::Fatal(LlmError::Forbidden { url, message }),
            404 => Attempt::Fatal(LlmError::NotFound {
                url,
                model: self.config.model.clone(),
                message,
            }),
            408 | 429 | 500..=599 => Attempt::Retry {
                error: LlmError::ServerError {
                    url,
                    status,
                    attempts,
                    message,
                },
                retry_after: after,
            },
            _ => Attempt::Fatal(LlmError::Rejected {
                url,
                status,
                message,
            }),
        }
    }

    /// What a call is expected to cost, for a spending limit: its prompt's tokens (cl100k) at the
    /// input price and the answer's limit (or 1,024 tokens) at the output price; 0 for a model with
    /// no known price.
    fn estimate(&self, request: &ChatRequest) -> f64 {
        let Some(price) = self.prices.price(&self.config.model) else {
            return 0.0;
        };
        let bpe = tiktoken_rs::cl100k_base_singleton();
        let input: usize = request
            .messages
            .iter()
            .map(|m| bpe.encode_ordinary(&m.content).len() + 4)
            .sum();
        let output = request
            .max_tokens
            .or(self.config.max_tokens)
            .unwrap_or(1024);
        (input as f64 * price.input_per_mtok + f64::from(output) * price.output_per_mtok) / 1e6
    }

    /// A call within the ledger's spending limit: refused before it is sent when its estimated cost
    /// would pass the limit.
    async fn run(
        &self,
        request: &ChatRequest,
        cancel: &CancellationToken,
    ) -> Result<ChatResponse, LlmError> {
        if !self.ledger.has_budget() {
            return self.run_unbudgeted(request, cancel).await;
        }
        let estimate = self.estimate(request);
        self.ledger
            .reserve(estimate)
            .map_err(|o| LlmError::OverBudget {
                spent_usd: o.spent_usd,
                estimate_usd: o.estimate_usd,
                max_usd: o.max_usd,
            })?;
        let result = self.run_unbudgeted(request, cancel).await;
        self.ledger.release(estimate);
        result
    }

    async fn run_unbudgeted(
        &self,
        request: &ChatRequest,
        cancel: &CancellationToken,
    ) -> Result<ChatResponse, LlmError> {
        let started = Instant::now();
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(self.config.min_backoff)
            .with_max_delay(Duration::from_secs(10))
            .with_max_times(self.config.max_retries as usize)
            .with_jitter()
            .build();
        let mut attempts = 0u32;
        loop {
            let mode = if request.schema.is_some() {
                self.mode()
            } else {
                OutputMode::Plain
            };
            attempts += 1;
            let permit = tokio::select! {
                p = self.permits.acquire() => p.map_err(|_| LlmError::Cancelled)?,
                _ = cancel.cancelled() => return Err(LlmError::Cancelled),
            };
            let outcome = tokio::select! {
                o = self.attempt(request, mode, started, attempts) => o,
                _ = cancel.cancelled() => return Err(LlmError::Cancelled),
            };
            drop(permit);
            match outcome {
                Attempt::Done(response) => {
                    tracing::info!(
                        attempts,
                        prompt_tokens = response.usage.prompt_tokens,
                        completion_tokens = response.usage.completion_tokens,
                        latency_ms = response.latency.as_millis() as u64,
                        cost_usd = response.cost_usd,
                        mode = ?response.mode,
                        outcome = "ok",
                        "llm call"
                    );
                    self.ledger.record(
                        request.role,
                        response.usage,
                        response.latency,
                        attempts,
                        response.cost_usd,
                    );
                    let role = request.role.as_str();
                    metrics::counter!("ace_model_calls_total", "role" => role).increment(1);
                    metrics::counter!("ace_tokens_total", "role" => role, "direction" => "in")
                        .increment(response.usage.prompt_tokens);
                    metrics::counter!("ace_tokens_total", "role" => role, "direction" => "out")
                        .increment(response.usage.completion_tokens);
                    metrics::counter!("ace_cost_usd_micros_total", "role" => role)
                        .increment((response.cost_usd * 1e6).round() as u64);
                    return Ok(response);
                }
                Attempt::FormatRefused => {
                    let next = if mode == OutputMode::JsonSchema { 1 } else { 2 };
                    tracing::warn!(?mode, "server refused response_format; falling back");
                    self.mode.fetch_max(next, Ordering::Relaxed);
                    attempts -= 1; // a format probe is not a retry
                }
                Attempt::Fatal(error) => {
                    tracing::warn!(attempts, error = %error, outcome = "failed", "llm call");
                    self.ledger.record_failure(request.role);
                    return Err(error);
                }
                Attempt::Retry { error, retry_after } => {
                    // Stop when the backoff is spent, whatever Retry-After says (or a server that always
                    // sends it would be retried forever); a given Retry-After replaces the delay, capped.
                    let Some(delay) = backoff.next() else {
                        tracing::warn!(attempts, error = %error, outcome = "gave up", "llm call");
                        self.ledger.record_failure(request.role);
                        return Err(with_attempts(error, attempts));
                    };
                    let delay = retry_after.map_or(delay, |r| r.min(self.config.retry_after_cap));
                    tracing::debug!(attempts, error = %error, delay_ms = delay.as_millis() as u64, "retrying");
                    self.ledger.notify_retry(RetryNotice {
                        role: request.role,
                        attempt: attempts,
                        of: self.config.max_retries + 1,
                        delay,
                        error: retry_reason(&error),
                    });
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = cancel.cancelled() => return Err(LlmError::Cancelled),
                    }
                }
            }
        }
    }

    /// Lists the models the server offers (`GET /models`), for `ace doctor` and the Ollama probe.
    pub async fn list_models(&self) -> Result<Vec<String>, LlmError> {
        let url = format!("{}/models", self.config.base_url.trim_end_matches('/'));
        let mut builder = self.http.get(&url);
        if let Some(key) = self.config.api_key.as_deref().filter(|k| !k.is_empty()) {
            builder = builder.bearer_auth(key);
        } else if let Some((user, password)) = &self.config.basic_auth {
            builder = builder.basic_auth(user, password.as_ref());
        }
        let response = builder.send().await.map_err(|e| LlmError::Connection {
            url: url.clone(),
            attempts: 1,
            detail: e.to_string(),
        })?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        match status {
            200..=299 => {}
            401 => return Err(LlmError::Unauthorized { url }),
            _ => {
                return Err(LlmError::Rejected {
                    url,
                    status,
                    message: server_message(&body),
                });
            }
        }
        let value: Value = serde_json::from_str(&body).map_err(|e| LlmError::Malformed {
            url,
            detail: e.to_string(),
        })?;
        Ok(value["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["id"].as_str().map(str::to_string))
            .collect())
    }
}

/// What one failed attempt ran into (the final error counts attempts; this names one).
fn retry_reason(error: &LlmError) -> String {
    match error {
        LlmError::ServerError {
            url,
            status,
            message,
            ..
        } => format!("HTTP {status} from {url}: {message}"),
        LlmError::Timeout {
            url, timeout_secs, ..
        } => format!("no answer from {url} within {timeout_secs} s"),
        LlmError::Connection { url, detail, .. } => format!("cannot reach {url}: {detail}"),
        other => other.to_string(),
    }
}

fn with_attempts(error: LlmError, attempts: u32) -> LlmError {
    match error {
        LlmError::ServerError {
            url,
            status,
            message,
            ..
        } => LlmError::ServerError {
            url,
            status,
            attempts,
            message,
        },
        LlmError::Timeout {
            url, timeout_secs, ..
        } => LlmError::Timeout {
            url,
            timeout_secs,
            attempts,
        },
        LlmError::Connection { url, detail, .. } => LlmError::Connection {
            url,
            attempts,
            detail,
        },
        other => other,
    }
}

/// The cost a LiteLLM proxy reports for a call (`x-litellm-response-cost`, US dollars).
fn response_cost(headers: &reqwest::header::HeaderMap) -> Option<f64> {
    headers
        .get("x-litellm-response-cost")?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|c| c.is_finite() && *c >= 0.0)
}

impl LlmClient for OpenAiClient {
    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        let span = tracing::info_span!(
            "llm",
            role = request.role.as_str(),
            model = self.config.model.as_str(),
            prompt = request.prompt_version.as_str(),
            run = request.trace.run.as_deref().unwrap_or(""),
            sample = request.trace.sample.as_deref().unwrap_or(""),
        );
        Box::pin(self.run(request, cancel).instrument(span))
    }

    fn endpoint(&self) -> &EndpointConfig {
        &self.config
    }
}
