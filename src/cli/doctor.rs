//! `ace doctor`: the effective model configuration (keys masked) and one tiny call per role.

use std::io::Write;

use anyhow::Result;
use tokio_util::sync::CancellationToken;

use crate::config::{self, ModelConfig};
use crate::llm::openai::mask_key;
use crate::llm::{ChatRequest, LlmClient, Message, OpenAiClient, Role, TraceIds};

pub async fn run(config: &ModelConfig, out: &mut impl Write) -> Result<bool> {
    match &config.file {
        Some(p) => writeln!(out, "config file: {}", p.display())?,
        None => writeln!(
            out,
            "config file: none (looked for {}); using environment variables and defaults",
            config::config_path(&config::process_env)
                .map_or_else(|| "-".into(), |p| p.display().to_string())
        )?,
    }
    let endpoints = match config::resolve(config).await {
        Ok(e) => e,
        Err(e) => {
            writeln!(out, "\nproblem: {e}")?;
            return Ok(false);
        }
    };
    for (role, e) in &endpoints {
        let key = e
            .api_key
            .as_deref()
            .map_or_else(|| "none".to_string(), mask_key);
        writeln!(
            out,
            "{:<10} {}  model {}  key {key}  timeout {:.0} s  concurrency {}  retries {}",
            role.as_str(),
            e.base_url,
            e.model,
            e.timeout.as_secs_f64(),
            e.concurrency,
            e.max_retries
        )?;
    }
    writeln!(out)?;
    let mut healthy = true;
    for (role, endpoint) in endpoints {
        let mut endpoint = endpoint;
        endpoint.max_retries = endpoint.max_retries.min(1);
        let client = OpenAiClient::new(endpoint, Default::default(), config.prices.clone())?;
        let verdict = check(&client, role).await;
        match verdict {
            Ok(line) => writeln!(out, "{:<10} ok: {line}", role.as_str())?,
            Err(problem) => {
                healthy = false;
                writeln!(out, "{:<10} PROBLEM: {problem}", role.as_str())?;
            }
        }
    }
    Ok(healthy)
}

async fn check(client: &OpenAiClient, role: Role) -> Result<String, String> {
    let request = ChatRequest {
        role,
        messages: vec![
            Message::system(format!(
                "You are the ACE {}. This is a connectivity check from `ace doctor`.",
                capitalized(role)
            )),
            Message::user("Reply with the single word OK."),
        ],
        schema: None,
        prompt_version: "doctor".into(),
        trace: TraceIds::default(),
    };
    let response = client
        .chat(&request, &CancellationToken::new())
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "{} answered in {} ms ({} + {} tokens)",
        response.model,
        response.latency.as_millis(),
        response.usage.prompt_tokens,
        response.usage.completion_tokens
    ))
}

fn capitalized(role: Role) -> String {
    let s = role.as_str();
    s[..1].to_uppercase() + &s[1..]
}
