//! `ace doctor`: the effective model configuration (keys masked) and one tiny call per role.

use std::io::Write;

use anyhow::Result;
use tokio_util::sync::CancellationToken;

use crate::config::{self, ModelConfig};
use crate::llm::openai::mask_key;
use crate::llm::{ChatRequest, LlmClient, Message, OpenAiClient, Role, TraceIds};

/// One role's settings and what its check found.
#[derive(Debug, serde::Serialize)]
struct RoleReport {
    role: &'static str,
    base_url: String,
    model: String,
    /// Masked.
    key: String,
    timeout_secs: f64,
    concurrency: usize,
    retries: u32,
    ok: bool,
    detail: String,
    /// How this role's structured answers will be asked for: json_schema, json_object or plain
    /// (the first the server accepts).
    structured_output: Option<crate::llm::OutputMode>,
    /// Latency and speed of the structured probe.
    probe_ms: Option<u64>,
    tokens_per_second: Option<f64>,
}

pub async fn run(config: &ModelConfig, out: &mut impl Write, json: bool) -> Result<bool> {
    let file = config.file.as_ref().map(|p| p.display().to_string());
    let endpoints = match config::resolve(config).await {
        Ok(e) => e,
        Err(e) => {
            if json {
                super::print::json(
                    out,
                    &serde_json::json!({"config_file": file, "problem": e.to_string()}),
                )?;
            } else {
                writeln!(out, "config file: {}", file.as_deref().unwrap_or("none"))?;
                writeln!(out, "\nproblem: {e}")?;
            }
            return Ok(false);
        }
    };
    let mut reports = Vec::new();
    for (role, endpoint) in endpoints {
        let mut report = RoleReport {
            role: role.as_str(),
            base_url: endpoint.base_url.clone(),
            model: endpoint.model.clone(),
            key: endpoint
                .api_key
                .as_deref()
                .map_or_else(|| "none".to_string(), mask_key),
            timeout_secs: endpoint.timeout.as_secs_f64(),
            concurrency: endpoint.concurrency,
            retries: endpoint.max_retries,
            ok: false,
            detail: String::new(),
            structured_output: None,
            probe_ms: None,
            tokens_per_second: None,
        };
        let mut endpoint = endpoint;
        endpoint.max_retries = endpoint.max_retries.min(1);
        let client = OpenAiClient::new(endpoint, Default::default(), config.prices.clone())?;
        match check(&client, role).await {
            Ok(line) => (report.ok, report.detail) = (true, line),
            Err(problem) => report.detail = problem,
        }
        // then the mode a structured answer will use (json_schema, else json_object, else text)
        if report.ok {
            match probe(&client, role).await {
                Ok((mode, ms, speed)) => {
                    report.structured_output = Some(mode);
                    report.probe_ms = Some(ms);
                    report.tokens_per_second = speed;
                }
                Err(problem) => {
                    report.ok = false;
                    report.detail = format!("structured output: {problem}");
                }
            }
        }
        reports.push(report);
    }
    let healthy = reports.iter().all(|r| r.ok);
    if json {
        super::print::json(
            out,
            &serde_json::json!({"config_file": file, "healthy": healthy, "roles": reports}),
        )?;
        return Ok(healthy);
    }
    match &config.file {
        Some(p) => writeln!(out, "config file: {}", p.display())?,
        None => writeln!(
            out,
            "config file: none (looked for {}); using environment variables and defaults",
            config::config_path(&config::process_env)
                .map_or_else(|| "-".into(), |p| p.display().to_string())
        )?,
    }
    for r in &reports {
        writeln!(
            out,
            "{:<10} {}  model {}  key {}  timeout {:.0} s  concurrency {}  retries {}",
            r.role, r.base_url, r.model, r.key, r.timeout_secs, r.concurrency, r.retries
        )?;
    }
    writeln!(out)?;
    for r in &reports {
        if r.ok {
            writeln!(
                out,
                "{:<10} ok: {}; structured answers as {}{}",
                r.role,
                r.detail,
                r.structured_output
                    .map_or("?".to_string(), |m| serde_json::to_value(m)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()),
                match (r.probe_ms, r.tokens_per_second) {
                    (Some(ms), Some(tps)) => format!(" ({ms} ms, {tps:.0} tokens/s)"),
                    (Some(ms), None) => format!(" ({ms} ms)"),
                    _ => String::new(),
                }
            )?;
        } else {
            writeln!(out, "{:<10} PROBLEM: {}", r.role, r.detail)?;
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
        // a ping needs a word, not a page (a small local model may otherwise write until its limit)
        max_tokens: Some(16),
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

/// A small structured request: the client falls back from json_schema to json_object to text
/// as the server refuses them, and says which it used.
async fn probe(
    client: &OpenAiClient,
    role: Role,
) -> Result<(crate::llm::OutputMode, u64, Option<f64>), String> {
    let request = ChatRequest {
        role,
        messages: vec![
            Message::system(format!(
                "You are the ACE {}. This is a structured-output check from `ace doctor`.",
                capitalized(role)
            )),
            Message::user("Answer with the JSON object {\"ok\": true} and nothing else."),
        ],
        schema: Some(crate::llm::OutputSchema {
            name: "doctor_probe".into(),
            schema: serde_json::json!({
                "type": "object",
                "properties": {"ok": {"type": "boolean"}},
                "required": ["ok"],
                "additionalProperties": false
            }),
        }),
        prompt_version: "doctor-probe".into(),
        trace: TraceIds::default(),
        max_tokens: Some(16),
    };
    let response = client
        .chat(&request, &CancellationToken::new())
        .await
        .map_err(|e| e.to_string())?;
    let secs = response.latency.as_secs_f64();
    let speed = (secs > 0.0 && response.usage.completion_tokens > 0)
        .then(|| response.usage.completion_tokens as f64 / secs);
    Ok((response.mode, response.latency.as_millis() as u64, speed))
}

fn capitalized(role: Role) -> String {
    let s = role.as_str();
    s[..1].to_uppercase() + &s[1..]
}
