//! Embeddings through the OpenAI-compatible `POST /embeddings` (OpenAI, Ollama, vLLM, LiteLLM):
//! vectors for de-duplicating lessons and ranking bullets. Retries what is worth retrying, like the
//! chat client; the caller falls back to lexical similarity when it still fails.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::openai::{retry_after, server_message};
use super::{BoxFuture, EndpointConfig, LlmError};

/// A text embedding model.
pub trait Embedder: Send + Sync {
    /// The model's name (vectors are cached per model).
    fn model(&self) -> &str;
    /// One vector per text, in order.
    fn embed<'a>(
        &'a self,
        texts: &'a [String],
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, LlmError>>;
}

/// Texts sent in one request (servers cap the batch; 256 is inside every documented limit).
const BATCH: usize = 256;

pub struct OpenAiEmbedder {
    config: EndpointConfig,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(default)]
    index: Option<usize>,
    embedding: Vec<f32>,
}

impl OpenAiEmbedder {
    pub fn new(config: EndpointConfig) -> Result<Self, LlmError> {
        super::install_crypto_provider();
        if config.base_url.trim().is_empty() {
            return Err(LlmError::Config(
                "the embedding endpoint has no base URL".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| LlmError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(OpenAiEmbedder { config, http })
    }

    fn url(&self) -> String {
        format!("{}/embeddings", self.config.base_url.trim_end_matches('/'))
    }

    /// One request; `Ok(None)` means "retry" with an optional server-given delay.
    async fn attempt(
        &self,
        texts: &[String],
        attempts: u32,
    ) -> Result<Result<Vec<Vec<f32>>, (LlmError, Option<Duration>)>, LlmError> {
        let url = self.url();
        let mut builder = self
            .http
            .post(&url)
            .json(&json!({"model": self.config.model, "input": texts}));
        if let Some(key) = self.config.api_key.as_deref().filter(|k| !k.is_empty()) {
            builder = builder.bearer_auth(key);
        } else if let Some((user, password)) = &self.config.basic_auth {
            builder = builder.basic_auth(user, password.as_ref());
        }
        let response = match builder.send().await {
            Ok(r) => r,
            Err(e) => {
                let error = if e.is_timeout() {
                    LlmError::Timeout {
                        url,
                        timeout_secs: self.config.timeout.as_secs_f64(),
                        attempts,
                    }
                } else {
                    LlmError::Connection {
                        url,
                        attempts,
                        detail: e.to_string(),
                    }
                };
                return Ok(Err((error, None)));
            }
        };
        let status = response.status().as_u16();
        let after = retry_after(response.headers());
        let body = response.text().await.unwrap_or_default();
        match status {
            200..=299 => {}
            401 => return Err(LlmError::Unauthorized { url }),
            404 => {
                return Err(LlmError::NotFound {
                    url,
                    model: self.config.model.clone(),
                    message: server_message(&body),
                });
            }
            408 | 429 | 500..=599 => {
                let error = LlmError::ServerError {
                    url,
                    status,
                    attempts,
                    message: server_message(&body),
                };
                return Ok(Err((error, after)));
            }
            _ => {
                return Err(LlmError::Rejected {
                    url,
                    status,
                    message: server_message(&body),
                });
            }
        }
        let parsed: Response = serde_json::from_str(&body).map_err(|e| LlmError::Malformed {
            url: url.clone(),
            detail: format!("not an embeddings response: {e}"),
        })?;
        if parsed.data.len() != texts.len() {
            return Err(LlmError::Malformed {
                url,
                detail: format!("{} vectors for {} texts", parsed.data.len(), texts.len()),
            });
        }
        let mut items = parsed.data;
        items.sort_by_key(|i| i.index.unwrap_or(usize::MAX));
        Ok(Ok(items.into_iter().map(|i| i.embedding).collect()))
    }

    async fn batch(
        &self,
        texts: &[String],
        cancel: &CancellationToken,
    ) -> Result<Vec<Vec<f32>>, LlmError> {
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(self.config.min_backoff)
            .with_max_delay(Duration::from_secs(10))
            .with_max_times(self.config.max_retries as usize)
            .with_jitter()
            .build();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let outcome = tokio::select! {
                o = self.attempt(texts, attempts) => o?,
                _ = cancel.cancelled() => return Err(LlmError::Cancelled),
            };
            match outcome {
                Ok(vectors) => return Ok(vectors),
                Err((error, after)) => {
                    let Some(delay) = backoff.next() else {
                        return Err(error);
                    };
                    let delay = after.map_or(delay, |a| a.min(self.config.retry_after_cap));
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = cancel.cancelled() => return Err(LlmError::Cancelled),
                    }
                }
            }
        }
    }
}

impl Embedder for OpenAiEmbedder {
    fn model(&self) -> &str {
        &self.config.model
    }

    fn embed<'a>(
        &'a self,
        texts: &'a [String],
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, LlmError>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(texts.len());
            for chunk in texts.chunks(BATCH) {
                out.extend(self.batch(chunk, cancel).await?);
            }
            Ok(out)
        })
    }
}
