//! `ace serve`: the playbook over HTTP for agents (axum on the tokio runtime), a layer over
//! [`crate::agent`]. Every request needs the bearer token; writes only ever queue (see the agent
//! module). The API is described in `docs/openapi.json`, which the server also serves.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::agent::{AgentError, Agents, Judgement, RenderRequest};

/// The API's description, served at `/openapi.json` (the file is the one checked in).
pub const OPENAPI: &str = include_str!("../docs/openapi.json");

/// Request bodies larger than this are refused (413) by default.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

#[derive(Clone)]
pub struct ServerState {
    pub agents: Agents,
    token: String,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    learner: String,
}

impl ServerState {
    pub fn new(
        agents: Agents,
        token: String,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
        learner: String,
    ) -> Self {
        ServerState {
            agents,
            token,
            metrics,
            learner,
        }
    }
}

/// An error as the API answers it: a status and `{"error": message}`.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = crate::text::visible(&self.1).into_owned();
        (self.0, Json(json!({ "error": message }))).into_response()
    }
}

impl From<AgentError> for ApiError {
    fn from(e: AgentError) -> Self {
        let status = match &e {
            AgentError::NotFound(_) => StatusCode::NOT_FOUND,
            AgentError::BadRequest(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AgentError::Full(_) => StatusCode::TOO_MANY_REQUESTS,
            AgentError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError(status, e.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = r.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "the request body is larger than the server's limit (--max-body)".to_string()
        } else {
            r.body_text()
        };
        ApiError(status, message)
    }
}

type ApiResult<T> = std::result::Result<T, ApiError>;

/// Equal-time comparison, so the token cannot be guessed byte by byte from response times.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn auth(State(state): State<ServerState>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(t) if same(t.as_bytes(), state.token.as_bytes()) => next.run(request).await,
        _ => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(
                json!({"error": "a valid bearer token is required (Authorization: Bearer TOKEN)"}),
            ),
        )
            .into_response(),
    }
}

/// The API's routes (for the server and for tests that serve it on their own listener).
pub fn router(state: ServerState, body_limit: usize) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/playbooks", get(playbooks))
        .route("/v1/playbooks/{name}", get(playbook))
        .route("/v1/playbooks/{name}/search", get(search))
        .route("/v1/playbooks/{name}/bullets/{id}", get(bullet))
        .route("/v1/playbooks/{name}/traces", post(traces))
        .route("/v1/playbooks/{name}/feedback", post(feedback))
        .route("/v1/playbooks/{name}/proposals", post(proposals))
        .fallback(|| async {
            ApiError(
                StatusCode::NOT_FOUND,
                "no such endpoint (see /openapi.json)".into(),
            )
        })
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn ready(State(s): State<ServerState>) -> ApiResult<Json<Value>> {
    let inbox = s.agents.inbox().await?;
    Ok(Json(
        json!({"ready": true, "learner": s.learner, "inbox": inbox}),
    ))
}

async fn metrics(State(s): State<ServerState>) -> ApiResult<Response> {
    let Some(handle) = &s.metrics else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "metrics are off (start the server with --metrics)".into(),
        ));
    };
    if let Ok(inbox) = s.agents.inbox().await {
        metrics::gauge!("ace_trace_inbox", "status" => "pending").set(inbox.pending as f64);
        metrics::gauge!("ace_trace_inbox", "status" => "taken").set(inbox.taken as f64);
        metrics::gauge!("ace_trace_inbox", "status" => "failed").set(inbox.failed as f64);
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response())
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn playbooks(State(s): State<ServerState>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "playbooks": s.agents.playbooks().await? })))
}

/// The rendering, or `304 Not Modified` when the request names its entity tag in `If-None-Match`
/// (an agent that polls the playbook downloads it again only after it changed).
async fn playbook(
    State(s): State<ServerState>,
    UrlPath(name): UrlPath<String>,
    Query(req): Query<RenderRequest>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    let encoded = s.agents.render_encoded(&name, req).await?;
    let held = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == encoded.etag || t == "*");
    let tags = [
        (header::ETAG, encoded.etag.clone()),
        (header::CACHE_CONTROL, "no-cache".to_string()),
    ];
    if held {
        return Ok((StatusCode::NOT_MODIFIED, tags).into_response());
    }
    Ok((
        tags,
        [(header::CONTENT_TYPE, "application/json")],
        encoded.body,
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchQuery {
    q: String,
    limit: Option<usize>,
}

async fn search(
    State(s): State<ServerState>,
    UrlPath(name): UrlPath<String>,
    Query(q): Query<SearchQuery>,
) -> ApiResult<Json<Value>> {
    let hits = s.agents.search(&name, &q.q, q.limit.unwrap_or(10)).await?;
    Ok(Json(json!({ "bullets": hits })))
}

async fn bullet(
    State(s): State<ServerState>,
    UrlPath((name, id)): UrlPath<(String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(s.agents.bullet(&name, &id).await?)))
}

fn object(
    body: std::result::Result<Json<Value>, JsonRejection>,
) -> ApiResult<serde_json::Map<String, Value>> {
    match body? {
        Json(Value::Object(o)) => Ok(o),
        _ => Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the body must be a JSON object".into(),
        )),
    }
}

async fn traces(
    State(s): State<ServerState>,
    UrlPath(name): UrlPath<String>,
    body: std::result::Result<Json<Value>, JsonRejection>,
) -> ApiResult<Response> {
    let trace = object(body)?;
    let received = s.agents.record_trace(&name, trace).await?;
    Ok((StatusCode::ACCEPTED, Json(received)).into_response())
}

async fn feedback(
    State(s): State<ServerState>,
    UrlPath(name): UrlPath<String>,
    body: std::result::Result<Json<Value>, JsonRejection>,
) -> ApiResult<Response> {
    let mut body = object(body)?;
    if let Some(k) = body.keys().find(|k| k.as_str() != "judgements") {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "unknown field \"{k}\" (the body is {{\"judgements\": [{{\"bullet_id\", \"tag\"}}]}})"
            ),
        ));
    }
    let judgements: Vec<Judgement> =
        serde_json::from_value(body.remove("judgements").unwrap_or(Value::Null)).map_err(|e| {
            ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("\"judgements\": {e}"),
            )
        })?;
    let received = s.agents.feedback(&name, judgements).await?;
    let status = if received.status == "applied" {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(received)).into_response())
}

async fn proposals(
    State(s): State<ServerState>,
    UrlPath(name): UrlPath<String>,
    body: std::result::Result<Json<Value>, JsonRejection>,
) -> ApiResult<Response> {
    let mut body = object(body)?;
    if let Some(k) = body
        .keys()
        .find(|k| !["operations", "reason"].contains(&k.as_str()))
    {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("unknown field \"{k}\" (the body is {{\"operations\": [...], \"reason\"?}})"),
        ));
    }
    let reason = body
        .remove("reason")
        .and_then(|r| r.as_str().map(str::to_string));
    let operations = body.remove("operations").unwrap_or(Value::Null);
    let received = s.agents.propose(&name, operations, reason).await?;
    Ok((StatusCode::ACCEPTED, Json(received)).into_response())
}

/// The API token: read from `path`, or created there (random, readable by this user only) and
/// returned with `true` so the caller can show it once.
pub fn token(path: &Path) -> Result<(String, bool)> {
    if path.exists() {
        let token = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the token file {}", path.display()))?
            .trim()
            .to_string();
        if token.len() < 16 {
            bail!(
                "the token in {} is shorter than 16 characters; use a longer one (or delete the file to have one made)",
                path.display()
            );
        }
        return Ok((token, false));
    }
    let mut bytes = [0u8; 32];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read random bytes for a token")?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write;
    options
        .open(path)
        .and_then(|mut f| f.write_all(token.as_bytes()))
        .with_context(|| format!("cannot write the token file {}", path.display()))?;
    Ok((token, true))
}

/// Where the token lives unless `--token-file` says: `serve-token` in the config dir.
pub fn default_token_path() -> PathBuf {
    directories::ProjectDirs::from("", "", "ace")
        .map(|d| d.config_dir().join("serve-token"))
        .unwrap_or_else(|| PathBuf::from("ace-serve-token"))
}

/// Refuses a non-loopback address unless allowed, and warns when allowed.
pub fn check_bind(addr: SocketAddr, allow_remote: bool) -> Result<()> {
    if addr.ip().is_loopback() {
        return Ok(());
    }
    if !allow_remote {
        bail!(
            "{addr} is not a loopback address: the playbook and its queue would be reachable from the network; pass --allow-remote to do it anyway (put TLS in front)"
        );
    }
    eprintln!(
        "warning: serving on {addr}, reachable from the network; every request still needs the token, but the traffic is not encrypted (put TLS in front)"
    );
    Ok(())
}
