//! A scripted, OpenAI-compatible model server for tests, benchmarks and demos (`ace mock-model`).
//!
//! It speaks just enough HTTP/1.1 (keep-alive, `Content-Length` bodies) to serve
//! `POST …/chat/completions` and `GET …/models` on loopback. Each request is answered by the first
//! script rule that matches it (role, text it must or must not contain, uses left), or by a fault the
//! rule injects: an HTTP status with optional `Retry-After`, a delay, a raw body, a cut-off body.
//! Every response's `model` is `scripted:<name>`, so nobody mistakes it for a real model.
//! The script format is documented in docs/MOCK_MODEL.md.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// A script: a model name and rules, tried in order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    #[serde(default = "default_model")]
    pub model: String,
    /// `response_format` types to refuse with HTTP 400 (`json_schema`, `json_object`), like servers
    /// that do not support structured output.
    #[serde(default)]
    pub reject_formats: Vec<String>,
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// How `POST …/embeddings` answers: the first rule whose words all occur in a text gives its
    /// vector (or fails the request with its status); a text no rule matches gets a vector of its
    /// words hashed into 64 dimensions, so equal texts are alike and unrelated ones are not.
    #[serde(default)]
    pub embeddings: Vec<EmbedRule>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedRule {
    #[serde(default)]
    pub when_contains: Vec<String>,
    #[serde(default)]
    pub vector: Option<Vec<f32>>,
    /// Fail the whole request with this HTTP status instead.
    #[serde(default)]
    pub status: Option<u16>,
    /// How many texts this rule answers; absent = unlimited.
    #[serde(default)]
    pub times: Option<u32>,
}

/// A text's words hashed into 64 dimensions, normalised.
pub fn hashed_vector(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; 64];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() > 1)
    {
        let h = crate::delta::content_hash(word.to_lowercase().as_bytes());
        v[(h % 64) as usize] += 1.0;
    }
    let norm = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::EPSILON);
    v.iter().map(|x| x / norm).collect()
}

fn default_model() -> String {
    "demo".into()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// `generator`, `reflector` or `curator` (found in the system prompt as "ACE Generator" …);
    /// absent or `*` matches any request.
    #[serde(default)]
    pub role: Option<String>,
    /// Every one of these must occur in the request's messages.
    #[serde(default)]
    pub when_contains: Vec<String>,
    /// None of these may occur.
    #[serde(default)]
    pub unless_contains: Vec<String>,
    /// How many requests this rule answers (then it is used up); absent = unlimited.
    #[serde(default)]
    pub times: Option<u32>,
    /// The answer: a JSON value is sent as its JSON text, a string as is.
    #[serde(default)]
    pub reply: Option<Value>,
    /// HTTP status to answer with instead of a completion (e.g. 500, 429, 401).
    #[serde(default)]
    pub status: Option<u16>,
    /// `Retry-After` header value sent with `status`.
    #[serde(default)]
    pub retry_after: Option<String>,
    /// A raw response body, sent with `status` (default 200) instead of a completion.
    #[serde(default)]
    pub body: Option<String>,
    /// Send a completion's headers and half its body, then close the connection.
    #[serde(default)]
    pub truncate: bool,
    /// Wait this long before answering.
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// `finish_reason` of the completion (default `stop`).
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// A call's cost as a LiteLLM proxy reports it (`x-litellm-response-cost`, US dollars).
    #[serde(default)]
    pub response_cost: Option<f64>,
    /// Prompt tokens reported as served from the server's cache (`prompt_tokens_details`).
    #[serde(default)]
    pub cached_tokens: Option<u64>,
}

/// One request the server received, for tests to inspect.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub role: Option<String>,
    pub body: Value,
    /// Index of the rule that answered, if any.
    pub rule: Option<usize>,
}

impl Recorded {
    /// All message contents joined.
    pub fn text(&self) -> String {
        messages_text(&self.body)
    }

    pub fn response_format(&self) -> Option<String> {
        self.body
            .pointer("/response_format/type")
            .and_then(Value::as_str)
            .map(str::to_string)
    }
}

struct State {
    script: Script,
    uses: Mutex<Vec<u32>>,
    embed_uses: Mutex<Vec<u32>>,
    log: Mutex<Vec<Recorded>>,
    /// How many of the latest requests the log keeps.
    keep: std::sync::atomic::AtomicUsize,
    /// Requests received in all (kept in the log or not).
    received: std::sync::atomic::AtomicU64,
    latency: Duration,
    counter: std::sync::atomic::AtomicU64,
}

/// A running server; stops when dropped or on [`MockServer::shutdown`].
pub struct MockServer {
    addr: SocketAddr,
    state: Arc<State>,
    stop: CancellationToken,
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl State {
    fn record(&self, request: Recorded) {
        self.received
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let keep = self.keep.load(std::sync::atomic::Ordering::Relaxed);
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.push(request);
        // trimmed in bulk, so keeping the latest N costs O(1) a request
        if log.len() > keep.saturating_mul(2).max(1) {
            let cut = log.len() - keep;
            log.drain(..cut);
        }
    }
}

impl Script {
    pub fn from_json(text: &str) -> Result<Script, String> {
        serde_json::from_str(text).map_err(|e| format!("invalid model script: {e}"))
    }
}

impl MockServer {
    /// Binds `addr` (use port 0 for any free port) and serves until dropped.
    pub async fn start(
        script: Script,
        addr: SocketAddr,
        latency: Duration,
    ) -> std::io::Result<MockServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            uses: Mutex::new(vec![0; script.rules.len()]),
            embed_uses: Mutex::new(vec![0; script.embeddings.len()]),
            script,
            log: Mutex::new(Vec::new()),
            keep: std::sync::atomic::AtomicUsize::new(usize::MAX),
            received: Default::default(),
            latency,
            counter: Default::default(),
        });
        let stop = CancellationToken::new();
        let (st, token) = (state.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        if let Ok((stream, _)) = accepted {
                            let (st, token) = (st.clone(), token.clone());
                            tokio::spawn(async move {
                                tokio::select! {
                                    _ = serve(stream, st) => {}
                                    _ = token.cancelled() => {}
                                }
                            });
                        }
                    }
                    _ = token.cancelled() => break,
                }
            }
        });
        Ok(MockServer { addr, state, stop })
    }

    /// Starts on a free loopback port.
    pub async fn start_local(script: Script) -> std::io::Result<MockServer> {
        Self::start(
            script,
            SocketAddr::from(([127, 0, 0, 1], 0)),
            Duration::ZERO,
        )
        .await
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL to configure a client with (`http://127.0.0.1:PORT/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Keeps only the latest `n` requests for [`MockServer::requests`] (a long-lived server, a
    /// benchmark); by default every request is kept.
    pub fn keep_requests(&self, n: usize) {
        self.state
            .keep
            .store(n, std::sync::atomic::Ordering::Relaxed);
        let mut log = self.state.log.lock().unwrap_or_else(|e| e.into_inner());
        let cut = log.len().saturating_sub(n);
        log.drain(..cut);
    }

    /// How many requests the server received, whether its log kept them or not.
    pub fn request_count(&self) -> u64 {
        self.state
            .received
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The requests received (the latest ones, if [`MockServer::keep_requests`] limited them).
    pub fn requests(&self) -> Vec<Recorded> {
        self.state
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn shutdown(self) {
        self.stop.cancel();
    }
}

fn messages_text(body: &Value) -> String {
    body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["content"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The ACE role a request serves, read from its system prompt ("ACE Generator", …).
pub fn detect_role(body: &Value) -> Option<String> {
    let system = body["messages"]
        .as_array()?
        .iter()
        .find(|m| m["role"] == "system")?;
    let text = system["content"].as_str()?.to_ascii_lowercase();
    ["generator", "reflector", "curator"]
        .into_iter()
        .find(|r| text.contains(&format!("ace {r}")))
        .map(str::to_string)
}

struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
    close: bool,
}

async fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let (mut length, mut close) = (0usize, false);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await.ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().ok()?,
                "connection" => close = value.trim().eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length.min(64 * 1024 * 1024)];
    reader.read_exact(&mut body).await.ok()?;
    Some(Request {
        method,
        path,
        body,
        close,
    })
}

async fn write_response(
    stream: &mut BufReader<TcpStream>,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
    cut: bool,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let stream = stream.get_mut();
    stream.write_all(head.as_bytes()).await?;
    let sent = if cut { &body[..body.len() / 2] } else { body };
    stream.write_all(sent).await?;
    stream.flush().await
}

async fn serve(stream: TcpStream, state: Arc<State>) {
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader).await {
        let reply = answer(&state, &request).await;
        let result = write_response(
            &mut reader,
            reply.status,
            &reply.headers,
            reply.body.as_bytes(),
            reply.cut,
        )
        .await;
        if result.is_err() || reply.cut || request.close {
            let _ = reader.get_mut().shutdown().await;
            return;
        }
    }
}

struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    cut: bool,
}

fn error_reply(status: u16, message: &str) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: json!({"error": {"message": message, "type": "scripted"}}).to_string(),
        cut: false,
    }
}

fn embeddings(state: &State, request: &Request) -> Reply {
    let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
        return error_reply(400, "scripted model: the request body is not JSON");
    };
    let texts: Vec<String> = match body.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .collect(),
        _ => {
            return error_reply(
                400,
                "scripted model: \"input\" must be a string or an array",
            );
        }
    };
    state.record(Recorded {
        role: Some("embedding".into()),
        body: body.clone(),
        rule: None,
    });
    let mut vectors = Vec::with_capacity(texts.len());
    {
        let mut uses = state.embed_uses.lock().unwrap_or_else(|e| e.into_inner());
        for text in &texts {
            let found = state.script.embeddings.iter().enumerate().find(|(i, r)| {
                r.times.is_none_or(|t| uses[*i] < t)
                    && r.when_contains.iter().all(|w| text.contains(w.as_str()))
            });
            match found {
                Some((i, rule)) => {
                    uses[i] += 1;
                    if let Some(status) = rule.status {
                        return error_reply(status, &format!("scripted fault: HTTP {status}"));
                    }
                    vectors.push(rule.vector.clone().unwrap_or_else(|| hashed_vector(text)));
                }
                None => vectors.push(hashed_vector(text)),
            }
        }
    }
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(i, v)| json!({"object": "embedding", "index": i, "embedding": v}))
        .collect();
    let tokens: usize = texts.iter().map(|t| t.len().div_ceil(4)).sum();
    Reply {
        status: 200,
        headers: Vec::new(),
        body: json!({"object": "list", "data": data, "model": format!("scripted:{}", state.script.model),
                     "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
        .to_string(),
        cut: false,
    }
}

async fn answer(state: &State, request: &Request) -> Reply {
    if !state.latency.is_zero() {
        tokio::time::sleep(state.latency).await;
    }
    let model = format!("scripted:{}", state.script.model);
    if request.method == "GET" && request.path.ends_with("/models") {
        return Reply { status: 200, headers: Vec::new(), body: json!({"object": "list", "data": [{"id": model, "object": "model", "owned_by": "ace mock-model"}]}).to_string(), cut: false };
    }
    if request.method == "POST" && request.path.ends_with("/embeddings") {
        return embeddings(state, request);
    }
    if request.method != "POST" || !request.path.ends_with("/chat/completions") {
        return error_reply(
            404,
            &format!(
                "scripted model: no route {} {}",
                request.method, request.path
            ),
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
        return error_reply(400, "scripted model: the request body is not JSON");
    };
    let role = detect_role(&body);
    let format = body
        .pointer("/response_format/type")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(f) = &format
        && state.script.reject_formats.iter().any(|r| r == f)
    {
        state.record(Recorded {
            role,
            body,
            rule: None,
        });
        return error_reply(
            400,
            &format!("response_format type '{f}' is not supported by this server"),
        );
    }
    let text = messages_text(&body);
    let chosen = {
        let mut uses = state.uses.lock().unwrap_or_else(|e| e.into_inner());
        let found = state.script.rules.iter().enumerate().find(|(i, rule)| {
            let role_ok = match rule.role.as_deref() {
                None | Some("*") => true,
                Some(r) => role.as_deref() == Some(r),
            };
            role_ok
                && rule.times.is_none_or(|t| uses[*i] < t)
                && rule.when_contains.iter().all(|w| text.contains(w.as_str()))
                && !rule
                    .unless_contains
                    .iter()
                    .any(|w| text.contains(w.as_str()))
        });
        if let Some((i, _)) = found {
            uses[i] += 1;
        }
        found.map(|(i, r)| (i, r.clone()))
    };
    state.record(Recorded {
        role: role.clone(),
        body,
        rule: chosen.as_ref().map(|(i, _)| *i),
    });
    let Some((_, rule)) = chosen else {
        return error_reply(
            422,
            &format!(
                "scripted model: no rule answers this {} request",
                role.as_deref().unwrap_or("unknown-role")
            ),
        );
    };
    if let Some(ms) = rule.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let mut headers = Vec::new();
    if let Some(after) = &rule.retry_after {
        headers.push(("retry-after", after.clone()));
    }
    if let Some(cost) = rule.response_cost {
        headers.push(("x-litellm-response-cost", cost.to_string()));
    }
    if let Some(raw) = rule.body {
        return Reply {
            status: rule.status.unwrap_or(200),
            headers,
            body: raw,
            cut: rule.truncate,
        };
    }
    if let Some(status) = rule.status.filter(|s| *s != 200) {
        let mut reply = error_reply(status, &format!("scripted fault: HTTP {status}"));
        reply.headers = headers;
        return reply;
    }
    let content = match rule.reply {
        Some(Value::String(s)) => s,
        Some(v) => v.to_string(),
        None => String::new(),
    };
    let n = state
        .counter
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let completion = json!({
        "id": format!("chatcmpl-scripted-{n}"),
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": rule.finish_reason.unwrap_or_else(|| "stop".into())}],
        "usage": {"prompt_tokens": text.len().div_ceil(4), "completion_tokens": content.len().div_ceil(4), "total_tokens": text.len().div_ceil(4) + content.len().div_ceil(4)},
    });
    let mut completion = completion;
    if let Some(cached) = rule.cached_tokens {
        completion["usage"]["prompt_tokens_details"] = json!({"cached_tokens": cached});
    }
    Reply {
        status: 200,
        headers,
        body: completion.to_string(),
        cut: rule.truncate,
    }
}
