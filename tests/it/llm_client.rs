//! The OpenAI-compatible client against a real loopback HTTP server playing scripted faults.

use std::time::{Duration, Instant};

use ace::llm::mock::{MockServer, Rule, Script};
use ace::llm::{
    ChatRequest, EndpointConfig, Ledger, LlmClient, LlmError, Message, OpenAiClient, OutputMode,
    PriceTable, Role, TraceIds,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn ok_rule() -> Rule {
    Rule {
        reply: Some(json!({"final_answer": "42"})),
        ..Rule::default()
    }
}

fn fault(f: impl FnOnce(&mut Rule)) -> Rule {
    let mut r = Rule {
        times: Some(1),
        ..Rule::default()
    };
    f(&mut r);
    r
}

async fn server(rules: Vec<Rule>) -> MockServer {
    MockServer::start_local(Script {
        model: "test".into(),
        reject_formats: vec![],
        embeddings: vec![],
        rules,
    })
    .await
    .unwrap()
}

fn client(server: &MockServer, tweak: impl FnOnce(&mut EndpointConfig)) -> OpenAiClient {
    let mut c = EndpointConfig::new(server.base_url(), "test-model");
    c.api_key = Some("sk-test-key-0123456789".into());
    c.timeout = Duration::from_secs(5);
    c.min_backoff = Duration::from_millis(10);
    c.max_retries = 3;
    tweak(&mut c);
    OpenAiClient::new(c, Ledger::default(), PriceTable::default()).unwrap()
}

fn request(with_schema: bool) -> ChatRequest {
    ChatRequest {
        role: Role::Generator,
        messages: vec![
            Message::system("You are the ACE Generator."),
            Message::user("What is 6 x 7? Reply in JSON."),
        ],
        schema: with_schema.then(|| ace::prompts::schema(Role::Generator)),
        prompt_version: "test".into(),
        max_tokens: None,
        trace: TraceIds::default(),
    }
}

async fn chat(c: &OpenAiClient) -> Result<ace::llm::ChatResponse, LlmError> {
    c.chat(&request(true), &CancellationToken::new()).await
}

#[tokio::test]
async fn a_plain_call_returns_content_model_usage_and_latency() {
    let s = server(vec![ok_rule()]).await;
    let c = client(&s, |_| {});
    let r = chat(&c).await.unwrap();
    assert_eq!(r.content, r#"{"final_answer":"42"}"#);
    assert_eq!(
        r.model, "scripted:test",
        "the scripted server always says it is scripted"
    );
    assert!(r.usage.prompt_tokens > 0 && r.usage.completion_tokens > 0);
    assert_eq!(
        (r.attempts, r.finish_reason.as_deref(), r.mode),
        (1, Some("stop"), OutputMode::JsonSchema)
    );
    let sent = &s.requests()[0];
    assert_eq!(sent.body["model"], "test-model");
    assert_eq!(
        sent.body["response_format"]["json_schema"]["name"],
        "ace_generator"
    );
    assert_eq!(sent.body["response_format"]["json_schema"]["strict"], true);
}

#[tokio::test]
async fn server_errors_are_retried_until_an_answer_comes() {
    let s = server(vec![
        fault(|r| {
            r.status = Some(500);
            r.times = Some(2)
        }),
        ok_rule(),
    ])
    .await;
    let c = client(&s, |_| {});
    let mut notices = c.ledger().subscribe_retries();
    let r = chat(&c).await.unwrap();
    assert_eq!(r.attempts, 3);
    assert_eq!(s.requests().len(), 3);
    assert_eq!(c.ledger().snapshot()[&Role::Generator].retries, 2);
    // each retry was announced as it happened, naming the role, the attempt and the reason
    for attempt in 1..=2 {
        let n = notices.try_recv().unwrap();
        assert_eq!((n.role, n.attempt, n.of), (Role::Generator, attempt, 4));
        let text = n.to_string();
        assert!(
            text.starts_with(&format!(
                "generator call failed (attempt {attempt} of 4), retrying in "
            )),
            "{text}"
        );
        assert!(
            text.contains(" s: HTTP 500 from http://127.0.0.1:"),
            "{text}"
        );
    }
    assert!(notices.try_recv().is_err(), "no third retry");
}

#[tokio::test]
async fn retry_after_on_429_and_503_is_honoured() {
    let s = server(vec![
        fault(|r| {
            r.status = Some(429);
            r.retry_after = Some("1".into())
        }),
        fault(|r| {
            r.status = Some(503);
            r.retry_after = Some("1".into())
        }),
        ok_rule(),
    ])
    .await;
    let c = client(&s, |_| {});
    let start = Instant::now();
    let r = chat(&c).await.unwrap();
    assert_eq!(r.attempts, 3);
    // backoff alone would take ~30 ms; two Retry-After: 1 make it at least 2 s
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn retries_stop_when_the_backoff_is_spent_even_if_the_server_keeps_sending_retry_after() {
    let s = server(vec![Rule {
        status: Some(429),
        retry_after: Some("0".into()),
        ..Rule::default()
    }])
    .await;
    let c = client(&s, |c| c.max_retries = 2);
    let err = chat(&c).await.unwrap_err();
    assert!(
        matches!(
            err,
            LlmError::ServerError {
                status: 429,
                attempts: 3,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(s.requests().len(), 3);
    assert_eq!(c.ledger().snapshot()[&Role::Generator].failed, 1);
}

#[tokio::test]
async fn a_retry_after_longer_than_the_cap_is_capped() {
    let s = server(vec![
        fault(|r| {
            r.status = Some(429);
            r.retry_after = Some("3600".into())
        }),
        ok_rule(),
    ])
    .await;
    let c = client(&s, |c| c.retry_after_cap = Duration::from_millis(200));
    let start = Instant::now();
    chat(&c).await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn slow_answers_time_out_and_are_retried() {
    let s = server(vec![fault(|r| r.delay_ms = Some(3000)), ok_rule()]).await;
    let c = client(&s, |c| c.timeout = Duration::from_millis(300));
    let r = chat(&c).await.unwrap();
    assert_eq!(r.attempts, 2);

    let s = server(vec![Rule {
        delay_ms: Some(3000),
        ..ok_rule()
    }])
    .await;
    let c = client(&s, |c| {
        c.timeout = Duration::from_millis(200);
        c.max_retries = 1;
    });
    let err = chat(&c).await.unwrap_err();
    assert!(
        matches!(err, LlmError::Timeout { attempts: 2, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with(&format!("no answer from {}", s.base_url())),
        "{err}"
    );
}

#[tokio::test]
async fn cut_off_and_garbled_bodies_are_retried() {
    let s = server(vec![
        fault(|r| r.truncate = true),
        fault(|r| r.body = Some("{\"choices\": [".into())),
        ok_rule(),
    ])
    .await;
    let c = client(&s, |_| {});
    let r = chat(&c).await.unwrap();
    assert_eq!(r.attempts, 3);
    assert_eq!(r.content, r#"{"final_answer":"42"}"#);
}

#[tokio::test]
async fn client_errors_are_never_retried_and_say_what_is_wrong() {
    for (status, expect) in [
        (401, "rejected the API key (HTTP 401)"),
        (403, "refused the request (HTTP 403)"),
        (404, "has no such endpoint or model 'test-model' (HTTP 404)"),
        (
            400,
            "rejected the request (HTTP 400): scripted fault: HTTP 400",
        ),
    ] {
        let s = server(vec![Rule {
            status: Some(status),
            ..Rule::default()
        }])
        .await;
        let c = client(&s, |_| {});
        let err = c
            .chat(&request(false), &CancellationToken::new())
            .await
            .unwrap_err();
        assert!(err.to_string().contains(expect), "{status}: {err}");
        assert!(
            err.to_string().contains(&s.base_url()),
            "the message names the server: {err}"
        );
        assert_eq!(s.requests().len(), 1, "HTTP {status} must not be retried");
    }
}

#[tokio::test]
async fn a_refused_response_format_falls_back_to_json_object_then_plain() {
    let s = MockServer::start_local(Script {
        model: "t".into(),
        reject_formats: vec!["json_schema".into()],
        embeddings: vec![],
        rules: vec![ok_rule()],
    })
    .await
    .unwrap();
    let c = client(&s, |_| {});
    let r = chat(&c).await.unwrap();
    assert_eq!((r.mode, r.attempts), (OutputMode::JsonObject, 1));
    let formats: Vec<_> = s.requests().iter().map(|r| r.response_format()).collect();
    assert_eq!(
        formats,
        [
            Some("json_schema".to_string()),
            Some("json_object".to_string())
        ]
    );
    chat(&c).await.unwrap();
    assert_eq!(
        s.requests().last().unwrap().response_format().as_deref(),
        Some("json_object"),
        "the client remembers"
    );

    let s = MockServer::start_local(Script {
        model: "t".into(),
        reject_formats: vec!["json_schema".into(), "json_object".into()],
        embeddings: vec![],
        rules: vec![ok_rule()],
    })
    .await
    .unwrap();
    let c = client(&s, |_| {});
    assert_eq!(chat(&c).await.unwrap().mode, OutputMode::Plain);
    assert_eq!(s.requests().last().unwrap().response_format(), None);
}

#[tokio::test]
async fn cancellation_stops_an_in_flight_call_at_once() {
    let s = server(vec![Rule {
        delay_ms: Some(20_000),
        ..ok_rule()
    }])
    .await;
    let c = client(&s, |c| c.timeout = Duration::from_secs(60));
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        trigger.cancel();
    });
    let start = Instant::now();
    let err = c.chat(&request(true), &cancel).await.unwrap_err();
    assert!(matches!(err, LlmError::Cancelled));
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn the_concurrency_limit_holds() {
    let s = server(vec![Rule {
        delay_ms: Some(300),
        ..ok_rule()
    }])
    .await;
    let c = client(&s, |c| c.concurrency = 2);
    let start = Instant::now();
    let (a, b, c3, d) = tokio::join!(chat(&c), chat(&c), chat(&c), chat(&c));
    for r in [a, b, c3, d] {
        r.unwrap();
    }
    // 4 calls, 2 at a time, 300 ms each: at least two rounds
    assert!(
        start.elapsed() >= Duration::from_millis(600),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn the_ledger_counts_tokens_and_cost_per_role() {
    let s = server(vec![ok_rule()]).await;
    let prices = price_table("scripted", 1_000_000.0, 0.0, None);
    let mut cfg = EndpointConfig::new(s.base_url(), "m");
    cfg.min_backoff = Duration::from_millis(10);
    let ledger = Ledger::default();
    let c = OpenAiClient::new(cfg, ledger.clone(), prices).unwrap();
    let r1 = chat(&c).await.unwrap();
    let r2 = chat(&c).await.unwrap();
    let g = ledger.snapshot()[&Role::Generator];
    assert_eq!(g.calls, 2);
    assert_eq!(
        g.prompt_tokens,
        r1.usage.prompt_tokens + r2.usage.prompt_tokens
    );
    assert!(
        (g.cost_usd - g.prompt_tokens as f64).abs() < 1e-6,
        "priced by model-name prefix: {}",
        g.cost_usd
    );
}

#[test]
fn the_api_key_never_shows_in_debug_output() {
    let mut c = EndpointConfig::new("http://x/v1", "m");
    c.api_key = Some("sk-live-abcdefghijklmnopqrstuvwxyz".into());
    let shown = format!("{c:?}");
    assert!(!shown.contains("abcdefghijklmnopqrstuvwxyz"), "{shown}");
    assert!(shown.contains("sk-…wxyz"));
    assert!(
        !serde_json::to_string(&c).unwrap().contains("sk-live"),
        "never serialised either"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_a_connection_error_after_retries() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    drop(listener);
    let mut cfg = EndpointConfig::new(url.clone(), "m");
    cfg.min_backoff = Duration::from_millis(5);
    cfg.max_retries = 1;
    let c = OpenAiClient::new(cfg, Ledger::default(), PriceTable::default()).unwrap();
    let err = chat(&c).await.unwrap_err();
    assert!(
        matches!(err, LlmError::Connection { attempts: 2, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with(&format!("cannot reach {url}/chat/completions")),
        "{err}"
    );
}

#[tokio::test]
async fn an_answer_over_the_size_limit_is_a_clear_error_and_not_read_on() {
    let huge = "x".repeat(64 * 1024);
    let big = || {
        let huge = huge.clone();
        fault(move |r| r.reply = Some(serde_json::Value::String(huge)))
    };
    let s = server(vec![big(), big()]).await;
    let c = client(&s, |e| e.max_answer_bytes = 16 * 1024);
    let err = chat(&c).await.unwrap_err().to_string();
    assert!(err.contains("larger than 16384 bytes"), "{err}");
    assert!(err.contains("ACE_MAX_ANSWER_BYTES"), "{err}");
    assert_eq!(s.request_count(), 1, "not retried");
    // under the limit the same answer is read
    let c = client(&s, |e| e.max_answer_bytes = 1 << 20);
    assert!(chat(&c).await.is_ok());
}

#[tokio::test]
async fn credentials_in_a_base_url_are_never_shown_or_kept_in_it() {
    let e = EndpointConfig::new("https://ana:s%40cret@proxy.example/v1", "m");
    assert_eq!(e.base_url, "https://proxy.example/v1");
    assert_eq!(
        e.basic_auth,
        Some(("ana".to_string(), Some("s@cret".to_string())))
    );
    assert!(!format!("{e:?}").contains("cret"));
    assert!(!serde_json::to_string(&e).unwrap().contains("cret"));
    let plain = EndpointConfig::new("http://127.0.0.1:8080/v1", "m");
    assert_eq!(plain.base_url, "http://127.0.0.1:8080/v1");
    assert_eq!(plain.basic_auth, None);
    // an error about an unreachable server names the server, not the password
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = EndpointConfig::new(format!("http://ana:hunter2@127.0.0.1:{port}/v1"), "m");
    cfg.max_retries = 0;
    let c = OpenAiClient::new(cfg, Ledger::default(), PriceTable::default()).unwrap();
    let err = chat(&c).await.unwrap_err().to_string();
    assert!(!err.contains("hunter2"), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
}

#[tokio::test]
async fn sampling_fields_and_server_extras_reach_the_request_body() {
    let s = server(vec![ok_rule()]).await;
    let c = client(&s, |e| {
        e.top_p = Some(0.5);
        e.seed = Some(42);
        e.presence_penalty = Some(0.25);
        let mut extra = serde_json::Map::new();
        extra.insert("repeat_penalty".into(), json!(1.1));
        extra.insert("model".into(), json!("not-this-one"));
        e.extra_body = Some(extra);
    });
    chat(&c).await.unwrap();
    let body = &s.requests()[0].body;
    assert_eq!(body["top_p"], json!(0.5));
    assert_eq!(body["seed"], json!(42));
    assert_eq!(body["presence_penalty"], json!(0.25));
    assert_eq!(body["repeat_penalty"], json!(1.1));
    assert_eq!(
        body["model"],
        json!("test-model"),
        "extras never replace the model"
    );
    assert!(
        body.get("frequency_penalty").is_none(),
        "unset fields are not sent"
    );
}

#[tokio::test]
async fn a_cost_a_litellm_proxy_reports_wins_over_the_price_table() {
    let mut rule = ok_rule();
    rule.response_cost = Some(0.0123);
    let s = server(vec![rule]).await;
    let prices = price_table("scripted", 1_000_000.0, 1_000_000.0, None);
    let ledger = Ledger::default();
    let c = OpenAiClient::new(
        EndpointConfig::new(s.base_url(), "m"),
        ledger.clone(),
        prices,
    )
    .unwrap();
    let r = chat(&c).await.unwrap();
    assert!((r.cost_usd - 0.0123).abs() < 1e-12, "{}", r.cost_usd);
    assert!((ledger.total().cost_usd - 0.0123).abs() < 1e-12);
}

#[test]
fn built_in_prices_cover_common_models_and_the_configuration_overrides_them() {
    let table = PriceTable::default().with_built_ins();
    let mini = table.price("gpt-4o-mini-2024-07-18").unwrap();
    assert_eq!((mini.input_per_mtok, mini.output_per_mtok), (0.15, 0.60));
    let mine = price_table("gpt-4o-mini", 9.0, 9.0, None);
    assert_eq!(
        mine.with_built_ins()
            .price("gpt-4o-mini")
            .unwrap()
            .input_per_mtok,
        9.0
    );
}

#[tokio::test]
async fn prompt_tokens_from_the_servers_cache_are_counted_apart_and_priced_at_their_rate() {
    let mut rule = ok_rule();
    rule.cached_tokens = Some(10);
    let s = server(vec![rule]).await;
    let prices = price_table("scripted", 1_000_000.0, 0.0, Some(0.0));
    let c = OpenAiClient::new(
        EndpointConfig::new(s.base_url(), "m"),
        Ledger::default(),
        prices,
    )
    .unwrap();
    let r = chat(&c).await.unwrap();
    assert_eq!(r.usage.cached_prompt_tokens, 10);
    assert!(
        (r.cost_usd - (r.usage.prompt_tokens - 10) as f64).abs() < 1e-6,
        "cached tokens at their own (here free) rate: {} for {} prompt tokens",
        r.cost_usd,
        r.usage.prompt_tokens
    );
}

/// A price table holding one model's price (dollars a million tokens).
fn price_table(model: &str, input: f64, output: f64, cached: Option<f64>) -> PriceTable {
    let mut table = PriceTable::default();
    table.0.insert(
        model.into(),
        ace::llm::ledger::Price {
            input_per_mtok: input,
            output_per_mtok: output,
            cached_input_per_mtok: cached,
        },
    );
    table
}
