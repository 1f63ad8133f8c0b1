//! The three ACE roles end to end against the loopback scripted model.

use std::time::Duration;

use crate::common::*;
use ace::delta::DeltaOp;
use ace::llm::mock::{MockServer, Rule, Script};
use ace::llm::{EndpointConfig, Ledger, OpenAiClient, PriceTable, Role, TraceIds};
use ace::playbook::Playbook;
use ace::roles::{self, CuratorInput, GeneratorInput, ReflectorInput, RoleError, Tag};
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn rule(role: &str, reply: serde_json::Value) -> Rule {
    Rule {
        role: Some(role.into()),
        reply: Some(reply),
        ..Rule::default()
    }
}

async fn setup(rules: Vec<Rule>) -> (MockServer, OpenAiClient) {
    let server = MockServer::start_local(Script {
        model: "roles".into(),
        reject_formats: vec![],
        embeddings: vec![],
        rules,
    })
    .await
    .unwrap();
    let mut cfg = EndpointConfig::new(server.base_url(), "m");
    cfg.min_backoff = Duration::from_millis(5);
    let client = OpenAiClient::new(cfg, Ledger::default(), PriceTable::default()).unwrap();
    (server, client)
}

fn playbook() -> Playbook {
    let mut store = store_with(
        "fin",
        &[
            "FORMULAS AND CALCULATIONS",
            "COMMON MISTAKES TO AVOID",
            "OTHERS",
        ],
    );
    apply(
        &mut store,
        "fin",
        batch(
            "seed",
            vec![
                add(
                    "FORMULAS AND CALCULATIONS",
                    "Current ratio = current assets / current liabilities.",
                ),
                add(
                    "COMMON MISTAKES TO AVOID",
                    "Strip thousands separators before dividing.",
                ),
                add("OTHERS", "Answer with exactly two decimals."),
            ],
        ),
    );
    store.load_playbook("fin").unwrap()
}

const QUESTION: &str = "A firm has current assets of $1,000,000 and current liabilities of $500,000. Find the current ratio.";

#[tokio::test]
async fn the_generator_keeps_only_cited_ids_that_exist() {
    let reply = json!({
        "reasoning": "Apply [calc-00001]; mind [err-00002] and the two-letter [ab-00017].",
        "bullet_ids": ["calc-00001", "misc-00099"],
        "final_answer": "2.00"
    });
    let (server, client) = setup(vec![rule("generator", reply)]).await;
    let pb = playbook();
    let input = GeneratorInput {
        playbook: &pb,
        question: QUESTION,
        context: "",
        reflection: None,
        shown: None,
    };
    let out = roles::generate(
        &client,
        &input,
        &TraceIds::default(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(out.final_answer, "2.00");
    assert_eq!(out.bullet_ids, ["calc-00001", "err-00002"]);
    assert_eq!(out.unknown_ids, ["misc-00099", "ab-00017"]);
    assert_eq!(out.calls.len(), 1);
    assert!(out.calls[0].prompt_version.starts_with("generator-v2-"));
    let sent = server.requests()[0].text();
    assert!(
        sent.contains("[calc-00001] Current ratio") && !sent.contains("helpful=0"),
        "the playbook is in the prompt, without the counters that change every batch"
    );
    assert!(sent.contains(QUESTION));
}

#[tokio::test]
async fn malformed_output_gets_one_repair_request_quoting_the_error() {
    let rules = vec![
        Rule {
            role: Some("generator".into()),
            times: Some(1),
            reply: Some(json!("Sure! {\"reasoning\": \"x\", \"final_answer\": ")),
            ..Rule::default()
        },
        rule(
            "generator",
            json!(
                "```json\n{\"reasoning\": \"fixed\", \"bullet_ids\": [], \"final_answer\": \"2.00\",}\n```"
            ),
        ),
    ];
    let (server, client) = setup(rules).await;
    let pb = playbook();
    let input = GeneratorInput {
        playbook: &pb,
        question: QUESTION,
        context: "",
        reflection: None,
        shown: None,
    };
    let out = roles::generate(
        &client,
        &input,
        &TraceIds::default(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(out.final_answer, "2.00");
    assert_eq!(out.calls.len(), 2);
    let repair = server.requests()[1].body["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        repair.starts_with("Your reply could not be used: the JSON object is cut off"),
        "{repair}"
    );
    assert!(out.calls[1].prompt_version.ends_with("+repair"));
}

#[tokio::test]
async fn output_that_stays_unusable_is_a_typed_error_with_the_raw_text() {
    let (server, client) = setup(vec![rule(
        "generator",
        json!({"reasoning": "no answer field"}),
    )])
    .await;
    let pb = playbook();
    let input = GeneratorInput {
        playbook: &pb,
        question: QUESTION,
        context: "",
        reflection: None,
        shown: None,
    };
    let err = roles::generate(
        &client,
        &input,
        &TraceIds::default(),
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    match &err {
        RoleError::Unusable {
            role, error, raw, ..
        } => {
            assert_eq!(*role, Role::Generator);
            assert_eq!(error, "the field \"final_answer\" is missing");
            assert!(raw.contains("no answer field"));
        }
        other => panic!("{other}"),
    }
    assert_eq!(server.requests().len(), 2, "exactly one repair");
}

fn reflection(insight: &str, tags: serde_json::Value) -> serde_json::Value {
    json!({"reasoning": "r", "error_identification": "used the wrong formula", "root_cause_analysis": "missing formula",
           "correct_approach": "divide current assets by current liabilities", "key_insight": insight, "bullet_tags": tags})
}

#[tokio::test]
async fn the_reflector_refines_over_rounds_and_tags_only_used_bullets() {
    let tags = json!([{"id": "calc-00001", "tag": "HARMFUL"}, {"id": "misc-00003", "tag": "helpful"}, {"id": "zz-00009", "tag": "helpful"}]);
    let rules = vec![
        Rule {
            times: Some(1),
            ..rule("reflector", reflection("first thought", tags.clone()))
        },
        Rule {
            times: Some(1),
            ..rule("reflector", reflection("sharper", tags.clone()))
        },
        rule("reflector", reflection("sharper", tags)),
    ];
    let (server, client) = setup(rules).await;
    let pb = playbook();
    let used = vec![pb.bullet("calc-00001").unwrap().clone()];
    let input = ReflectorInput {
        question: QUESTION,
        context: "",
        reasoning: "I multiplied.",
        answer: "500000",
        ground_truth: Some("2.0"),
        feedback: "wrong: expected 2.0",
        used: &used,
    };
    let (r, calls) = roles::reflect(
        &client,
        &input,
        5,
        &TraceIds::default(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(r.key_insight, "sharper");
    assert_eq!(
        calls.len(),
        3,
        "round 3 repeated round 2, so the reflector stopped early"
    );
    assert_eq!(r.bullet_tags.len(), 1);
    assert_eq!(
        (r.bullet_tags[0].id.as_str(), r.bullet_tags[0].tag),
        ("calc-00001", Tag::Harmful)
    );
    let second = server.requests()[1].text();
    assert!(
        second.contains("YOUR PREVIOUS REFLECTION") && second.contains("first thought"),
        "each round sees the previous"
    );
    assert!(server.requests()[0].text().contains("CORRECT ANSWER:\n2.0"));
}

#[tokio::test]
async fn without_ground_truth_only_feedback_reaches_the_reflector() {
    let (server, client) = setup(vec![rule("reflector", reflection("k", json!([])))]).await;
    let input = ReflectorInput {
        question: QUESTION,
        context: "",
        reasoning: "r",
        answer: "2.00",
        ground_truth: None,
        feedback: "the checker accepted the format",
        used: &[],
    };
    roles::reflect(
        &client,
        &input,
        1,
        &TraceIds::default(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    let text = server.requests()[0].text();
    assert!(!text.contains("CORRECT ANSWER"));
    assert!(text.contains("the checker accepted the format"));
}

#[tokio::test]
async fn the_curator_emits_normalised_deduplicated_ops_with_stable_keys() {
    let reply = json!({"reasoning": "lessons", "operations": [
        {"type": "ADD", "section": "formulas and calculations", "content": "Quick ratio = (current assets - inventory) / current liabilities.", "bullet_id": null, "helpful": null, "harmful": null, "neutral": null},
        {"type": "ADD", "section": "COMMON MISTAKES TO AVOID", "content": "strip thousands separators before dividing.", "bullet_id": null, "helpful": null, "harmful": null, "neutral": null},
        {"type": "TAG", "bullet_id": "[calc-00001]", "helpful": 1, "section": null, "content": null, "harmful": null, "neutral": null},
        {"type": "UPDATE", "bullet_id": "misc-00404", "content": "x", "section": null, "helpful": null, "harmful": null, "neutral": null},
        {"type": "REMOVE", "bullet_id": "misc-00003", "section": null, "content": null, "helpful": null, "harmful": null, "neutral": null}
    ]});
    let (server, client) = setup(vec![rule("curator", reply)]).await;
    let pb = playbook();
    let r = serde_json::from_value::<ace::roles::Reflection>(reflection(
        "use the quick ratio",
        json!([]),
    ))
    .unwrap();
    let input = CuratorInput {
        shown: None,
        size_tokens: None,
        playbook: &pb,
        reflections: &[(QUESTION.to_string(), r)],
        token_budget: Some(2000),
    };
    let out = roles::curate(
        &client,
        &input,
        &TraceIds::default(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    let ops: Vec<String> = out.operations.iter().map(|o| o.op.describe()).collect();
    assert_eq!(
        ops,
        [
            "ADD to 'FORMULAS AND CALCULATIONS': \"Quick ratio = (current assets - inventor…\"",
            "MERGE \"strip thousands separators before dividi…\" into err-00002",
            "TAG calc-00001 helpful+1 harmful+0 neutral+0",
            "REMOVE misc-00003",
        ]
    );
    assert!(
        matches!(&out.operations[0].op, DeltaOp::Add(a) if a.section == "FORMULAS AND CALCULATIONS")
    );
    assert_eq!(out.dropped.len(), 2);
    assert!(
        out.dropped
            .iter()
            .any(|(_, why)| why == "bullet misc-00404 is not in the playbook")
    );
    assert!(out.operations.iter().all(|o| o.key.starts_with("c-")));
    let text = server.requests()[0].text();
    assert!(
        text.contains("key insight: use the quick ratio")
            || text.contains("Key insight: use the quick ratio"),
        "{text}"
    );
    assert!(text.contains(" tokens (budget 2000)"), "{text}");
    assert!(
        text.contains("helpful=0 harmful=0 ::"),
        "the curator sees the counters"
    );
}

#[tokio::test]
async fn a_curator_op_of_unknown_type_is_repaired_or_rejected_never_half_used() {
    let bad =
        json!({"reasoning": "x", "operations": [{"type": "MERGE", "bullet_id": "calc-00001"}]});
    let (server, client) = setup(vec![rule("curator", bad)]).await;
    let pb = playbook();
    let input = CuratorInput {
        shown: None,
        size_tokens: None,
        playbook: &pb,
        reflections: &[],
        token_budget: None,
    };
    let err = roles::curate(
        &client,
        &input,
        &TraceIds::default(),
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("unknown type 'MERGE'"), "{err}");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_server_error_surfaces_as_a_role_error_naming_the_role() {
    let (_server, client) = setup(vec![Rule {
        status: Some(401),
        ..Rule::default()
    }])
    .await;
    let pb = playbook();
    let input = GeneratorInput {
        playbook: &pb,
        question: QUESTION,
        context: "",
        reflection: None,
        shown: None,
    };
    let err = roles::generate(
        &client,
        &input,
        &TraceIds::default(),
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("generator call failed: the server at"),
        "{err}"
    );
}

#[tokio::test]
async fn an_answer_cut_off_at_the_token_limit_is_asked_again_with_a_larger_limit() {
    let cut = Rule {
        role: Some("generator".into()),
        times: Some(1),
        reply: Some(serde_json::Value::String(
            "{\"reasoning\": \"first I will list every step of the long".into(),
        )),
        finish_reason: Some("length".into()),
        ..Rule::default()
    };
    let good = rule(
        "generator",
        json!({"reasoning": "short", "bullet_ids": [], "final_answer": "2.00"}),
    );
    let (server, client) = setup(vec![cut, good]).await;
    let pb = playbook();
    let input = GeneratorInput {
        playbook: &pb,
        question: QUESTION,
        context: "",
        reflection: None,
        shown: None,
    };
    let out = roles::generate(
        &client,
        &input,
        &TraceIds::default(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(out.final_answer, "2.00");
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[0].body.get("max_tokens").is_none());
    let raised = requests[1].body["max_tokens"].as_u64().unwrap();
    assert!(raised >= 256, "{raised}");
    assert!(requests[1].text().contains("answer again, shorter"));
    assert!(
        out.calls[1]
            .prompt_version
            .contains(&format!("+repair(max_tokens={raised})")),
        "{}",
        out.calls[1].prompt_version
    );
}
